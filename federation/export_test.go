package federation

import "github.com/libp2p/go-libp2p/core/peer"

// PartitionForTest cuts this node off from ids, as a network partition
// would: connections are closed and new ones refused both ways (the other
// side's workers fail to dial, since this side refuses them).
func (s *Service) PartitionForTest(ids ...peer.ID) {
	m := make(map[peer.ID]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	s.blocked.Store(&m)
	for _, id := range ids {
		s.h().Network().ClosePeer(id)
	}
}

// HealForTest ends a partition made by PartitionForTest.
func (s *Service) HealForTest() {
	s.blocked.Store(nil)
	s.mu.Lock()
	for _, w := range s.workers {
		w.retryNow()
	}
	s.mu.Unlock()
}
