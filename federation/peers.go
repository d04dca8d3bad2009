package federation

import (
	"context"
	"maps"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// peerInfo is what the node knows of a member's state.
type peerInfo struct {
	heads           map[string]uint64
	lastSync        time.Time
	lastError       string
	manifestVersion uint64
	// policySent is the hash of the policy file last offered to the peer
	// (accepted or refused) under manifest version policyManifest.
	policySent     [32]byte
	policyManifest uint64
}

func (s *Service) withPeer(p peer.ID, fn func(*peerInfo)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if info := s.peers[p]; info != nil {
		fn(info)
	}
}

func (s *Service) notePeerHeads(p peer.ID, h map[string]uint64) {
	s.withPeer(p, func(i *peerInfo) { i.heads = maps.Clone(h) })
}

func (s *Service) notePeerManifest(p peer.ID, v uint64) {
	s.withPeer(p, func(i *peerInfo) { i.manifestVersion = v })
}

func (s *Service) noteSynced(p peer.ID) {
	now := s.cfg.Now()
	s.withPeer(p, func(i *peerInfo) { i.lastSync, i.lastError = now, "" })
}

func (s *Service) notePeerError(p peer.ID, err error) {
	s.withPeer(p, func(i *peerInfo) { i.lastError = err.Error() })
}

// PeerStatus is one member as GET /v1/peers shows it.
type PeerStatus struct {
	Country         string            `json:"country"`
	Agency          string            `json:"agency"`
	PeerID          string            `json:"peer_id"`
	Addrs           []string          `json:"addrs"`
	Self            bool              `json:"self"`
	Connected       bool              `json:"connected"`
	LastSync        *time.Time        `json:"last_sync"`
	LastError       string            `json:"last_error,omitempty"`
	ManifestVersion uint64            `json:"manifest_version"`
	Heads           map[string]uint64 `json:"heads"`
	// Lag is, per origin, how many records this member holds that this
	// node does not yet have.
	Lag map[string]uint64 `json:"lag"`
	// Reconcile is this node's reconciliation with the member after a
	// restore, while one is under way.
	Reconcile *ReconcileProgress `json:"reconcile,omitempty"`
}

// Peers reports every member of the installed manifest, connected or not.
func (s *Service) Peers(ctx context.Context) []PeerStatus {
	st := s.state.Load()
	if st == nil {
		return []PeerStatus{}
	}
	ours, _ := s.heads(ctx)
	_, rec := s.Reconciling()
	out := make([]PeerStatus, 0, len(st.byPeer))
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, mem := range st.byPeer {
		ps := PeerStatus{Country: mem.Country, Agency: mem.Agency, PeerID: mem.PeerID, Addrs: mem.Addrs,
			Self: id == s.self, Heads: map[string]uint64{}, Lag: map[string]uint64{}}
		if ps.Self {
			// A replica that is not the federation leader runs no host:
			// it is not the one the members are connected to.
			ps.Connected = s.Host() != nil
			ps.Heads = maps.Clone(ours)
			ps.ManifestVersion = st.m.Version
		} else if info := s.peers[id]; info != nil {
			if h := s.Host(); h != nil {
				ps.Connected = h.Network().Connectedness(id) == network.Connected
			}
			if !info.lastSync.IsZero() {
				t := info.lastSync.UTC()
				ps.LastSync = &t
			}
			ps.LastError, ps.ManifestVersion = info.lastError, info.manifestVersion
			if info.heads != nil {
				ps.Heads = maps.Clone(info.heads)
			}
			for origin, h := range ps.Heads {
				if h > ours[origin] {
					ps.Lag[origin] = h - ours[origin]
				}
			}
		}
		if p, ok := rec[mem.Country]; ok && !ps.Self {
			ps.Reconcile = &p
		}
		out = append(out, ps)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Country < out[j].Country })
	return out
}
