package federation

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/membership"
	"github.com/imtgt/imtgt-node/policy"
)

// ProtoPolicy carries a member's signed policy file to the others: the
// seller's node prices a cross-border order with the buyer's country's
// installed policy, so every node holds every member's (docs/PROTOCOL.md
// 6.9).
const ProtoPolicy = protocol.ID("/imtgt/policy/1.0.0")

// MaxPolicyBytes bounds an offered policy file (a few kilobytes in
// practice).
const MaxPolicyBytes = 1 << 20

// ErrBadPolicy labels an offered policy file this node refuses: it does
// not parse, is another country's, is not signed by the sender's
// governance key in the installed manifest, or is older than the one
// held.
var ErrBadPolicy = errors.New("bad_policy")

// PolicyChanged tells the service this node installed a new policy: each
// member is offered it in a round that starts at once.
func (s *Service) PolicyChanged() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.workers {
		w.kick()
	}
}

// maybeOfferPolicy offers this node's policy file to p, once per file and
// manifest (a refused file is not offered again until one of them
// changes: the refusal is the receiver's to record).
func (s *Service) maybeOfferPolicy(ctx context.Context, p peer.ID) {
	if s.cfg.OwnPolicy == nil {
		return
	}
	raw := s.cfg.OwnPolicy()
	if raw == nil {
		return
	}
	_, mver := s.federationID()
	sum := sha256.Sum256(raw)
	var sent bool
	s.withPeer(p, func(i *peerInfo) { sent = i.policySent == sum && i.policyManifest == mver })
	if sent {
		return
	}
	if _, err := s.offerPolicy(ctx, p, raw); err != nil {
		if !errors.Is(err, errPeerRefused) {
			s.log.Debug("policy offer failed", "peer", p, "err", err)
			return // a transport failure: offered again next round
		}
		s.log.Warn("peer refused our policy", "peer", p, "err", err)
	}
	s.withPeer(p, func(i *peerInfo) { i.policySent, i.policyManifest = sum, mver })
}

// OfferPolicy offers raw, a signed policy file, to country's node and
// returns the version it holds of this node's country's policy after the
// offer. The service offers the node's own on its own (OwnPolicy); this
// is the same offer for any bytes, so that the receiver's checks can be
// driven from outside (a refused offer returns the receiver's reason).
func (s *Service) OfferPolicy(ctx context.Context, country string, raw []byte) (uint64, error) {
	if s.Host() == nil {
		return 0, ErrNoManifest
	}
	p, err := s.memberPeer(country)
	if err != nil {
		return 0, err
	}
	return s.offerPolicy(ctx, p, raw)
}

func (s *Service) offerPolicy(ctx context.Context, p peer.ID, raw []byte) (uint64, error) {
	reply, err := s.request(ctx, p, ProtoPolicy, &pb.Message{Body: &pb.Message_PolicyOffer{PolicyOffer: &pb.PolicyOffer{Policy: raw}}}, false)
	if err != nil {
		return 0, err
	}
	pr := reply.GetPolicyReply()
	if pr == nil {
		return 0, fmt.Errorf("%w: expected policy_reply", ErrMalformed)
	}
	return pr.Version, nil
}

// servePolicy checks a member's offered policy file and hands it to the
// node to store: it must parse, be the sender's country's, be signed by
// that country's governance key in the installed manifest, and not be
// older than the one held (the node's SavePeerPolicy decides that under
// its store's transaction).
func (s *Service) servePolicy(ctx context.Context, from peer.ID, msg *pb.Message) (*pb.Message, error) {
	offer := msg.GetPolicyOffer()
	if offer == nil {
		return nil, fmt.Errorf("%w: expected policy_offer", ErrMalformed)
	}
	country, err := s.countryOf(from)
	if err != nil {
		return nil, err
	}
	p, err := s.checkPeerPolicy(country, offer.Policy)
	if err != nil {
		return nil, err
	}
	if s.cfg.SavePeerPolicy == nil {
		return nil, errors.New("this node does not keep the members' policies")
	}
	stored, err := s.cfg.SavePeerPolicy(ctx, country, from, p, offer.Policy)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPolicy, err)
	}
	if stored {
		s.log.Info("stored a member's policy", "peer_country", country, "version", p.Version)
	}
	return &pb.Message{Body: &pb.Message_PolicyReply{PolicyReply: &pb.PolicyReply{Stored: stored, Version: p.Version}}}, nil
}

// checkPeerPolicy verifies raw as country's policy file under the
// service's installed manifest.
func (s *Service) checkPeerPolicy(country string, raw []byte) (*policy.Policy, error) {
	st, err := s.current()
	if err != nil {
		return nil, err
	}
	return checkPeerPolicy(st.m, country, raw)
}

// checkPeerPolicy verifies raw, offered by country's node, under manifest
// m: it parses, is country's, and is signed by country's governance key
// in m. Every refusal wraps ErrBadPolicy.
func checkPeerPolicy(m *membership.Manifest, country string, raw []byte) (*policy.Policy, error) {
	if len(raw) > MaxPolicyBytes {
		return nil, fmt.Errorf("%w: a policy file of %d bytes (at most %d)", ErrBadPolicy, len(raw), MaxPolicyBytes)
	}
	p, err := policy.Parse(country+"'s policy", raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPolicy, err)
	}
	if p.Country != country {
		return nil, fmt.Errorf("%w: a policy of %s offered by %s's node", ErrBadPolicy, p.Country, country)
	}
	key, ok := m.GovernancePublicKey(country)
	if !ok {
		return nil, fmt.Errorf("%w: manifest version %d has no governance key for %s", ErrBadPolicy, m.Version, country)
	}
	if err := policy.Verify(raw, p, key); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPolicy, err)
	}
	return p, nil
}
