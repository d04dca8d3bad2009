package federation

import (
	"context"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Renewal after expiry.
//
// An expired manifest fails closed: no catalog, order or audit traffic,
// and the connections that were open when it expired are dropped. One
// door stays open, or a federation whose manifest lapsed could never
// recover without every agency installing the renewal by hand: a node
// whose manifest expired still accepts connections from the members of
// that manifest (and only from them), and serves them the manifest
// protocol alone. There it installs only what membership.CheckInstall
// allows: a strictly newer, unexpired manifest of the same federation,
// signed by its own threshold and by the expired manifest's quorum with
// unchanged governance keys. The first node an operator installs the
// renewal on dials the others as usual; their sync refuses it, and it
// offers its manifest instead (offerRenewal). Once a node installed the
// renewal, it does the same for the rest.

// renewalPeer reports whether id may reach this node while its manifest
// is expired: it is a member of the expired manifest.
func (s *Service) renewalPeer(id peer.ID) bool {
	if b := s.blocked.Load(); b != nil && (*b)[id] {
		return false
	}
	st := s.state.Load()
	if st == nil || !st.m.Expired(s.cfg.Now()) {
		return false
	}
	_, ok := st.byPeer[id]
	return ok
}

// mayOfferManifest is the signer check of the manifest protocol: a
// member of the valid manifest, or of the expired one.
func (s *Service) mayOfferManifest(id peer.ID) bool {
	return s.isMember(id) || s.renewalPeer(id)
}

// newRenewalOpener is the Opener of the manifest protocol: the same
// checks as every other protocol's (and the same replay set), with
// mayOfferManifest for membership.
func (s *Service) newRenewalOpener() *Opener {
	return &Opener{now: s.opener.now, isMember: s.mayOfferManifest, federation: s.opener.federation, seen: s.opener.seen}
}

// manifestInstalled reports whether any manifest is installed, expired or
// not: the gater then accepts connections, and InterceptSecured decides.
func (s *Service) manifestInstalled() bool { return s.state.Load() != nil }

// dropExpired is the worker's fail-closed step while the manifest is not
// valid: it closes the connections to p that were opened before the
// manifest expired. Connections opened since can only be a member's
// renewal offer (the gater admits nothing else), so they stay.
func (s *Service) dropExpired(p peer.ID) {
	st := s.state.Load()
	for _, c := range s.h().Network().ConnsToPeer(p) {
		if st == nil || c.Stat().Opened.Before(st.m.Expires) {
			_ = c.Close()
		}
	}
}

// offerRenewal offers this node's manifest to p after a failed round, if
// p is known to run an older one or its version is unknown: a member
// whose manifest expired refuses everything but this offer. p answers
// with its version, so the offer is not repeated once p has ours.
func (s *Service) offerRenewal(ctx context.Context, p peer.ID) {
	if _, err := s.current(); err != nil || s.h().Network().Connectedness(p) != network.Connected {
		return
	}
	s.maybeOfferManifest(ctx, p)
}
