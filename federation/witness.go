package federation

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/federation/pb"
)

// ProtoAudit carries audit checkpoints to be countersigned by a peer.
const ProtoAudit = protocol.ID("/imtgt/audit/1.0.0")

// maxCheckpointBytes bounds a checkpoint's JSON (a few hundred bytes, plus
// witnesses).
const maxCheckpointBytes = 16 << 10

// Witness asks country's node to countersign cp, a checkpoint of this
// node's audit chain, and returns the verified countersignature.
func (s *Service) Witness(ctx context.Context, country string, cp *audit.Checkpoint) (audit.Witness, error) {
	if s.Host() == nil {
		return audit.Witness{}, ErrNoManifest
	}
	p, err := s.memberPeer(country)
	if err != nil {
		return audit.Witness{}, err
	}
	if s.backingOff(p) {
		// Checkpoints come every few seconds; a member that refuses or
		// fails is dialled on the worker's schedule only, and countersigns
		// a later checkpoint.
		return audit.Witness{}, fmt.Errorf("%w: %s's node is not connected and its dial is backing off", ErrUnreachable, country)
	}
	bare := *cp
	bare.Witnesses = nil // a peer signs the node's statement, not others' witnesses
	raw, err := json.Marshal(&bare)
	if err != nil {
		return audit.Witness{}, err
	}
	reply, err := s.request(ctx, p, ProtoAudit, &pb.Message{Body: &pb.Message_AuditCheckpoint{AuditCheckpoint: &pb.AuditCheckpoint{Checkpoint: raw}}}, false)
	if err != nil {
		return audit.Witness{}, err
	}
	var w audit.Witness
	if err := json.Unmarshal(reply.GetAuditWitness().GetWitness(), &w); err != nil {
		return audit.Witness{}, fmt.Errorf("%w: witness: %v", ErrMalformed, err)
	}
	if w.PeerID != p.String() || w.Node != country {
		return audit.Witness{}, fmt.Errorf("%w: witness by %s (%s), not by %s's node", ErrBadSignature, w.PeerID, w.Node, country)
	}
	if err := w.Verify(&bare); err != nil {
		return audit.Witness{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return w, nil
}

// serveAudit countersigns a member's checkpoint of its own chain, once the
// node's store accepted it as consistent with what it witnessed before.
func (s *Service) serveAudit(ctx context.Context, from peer.ID, msg *pb.Message) (*pb.Message, error) {
	raw := msg.GetAuditCheckpoint().GetCheckpoint()
	if raw == nil {
		return nil, fmt.Errorf("%w: expected audit_checkpoint", ErrMalformed)
	}
	if len(raw) > maxCheckpointBytes {
		return nil, fmt.Errorf("%w: checkpoint of %d bytes", ErrMalformed, len(raw))
	}
	var cp audit.Checkpoint
	if err := json.Unmarshal(raw, &cp); err != nil {
		return nil, fmt.Errorf("%w: checkpoint: %v", ErrMalformed, err)
	}
	country, err := s.countryOf(from)
	if err != nil {
		return nil, err
	}
	if cp.PeerID != from.String() || cp.Node != country {
		return nil, fmt.Errorf("%w: a checkpoint of %s (%s) sent by %s's node", ErrBadSignature, cp.PeerID, cp.Node, country)
	}
	if err := cp.Verify(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if s.cfg.WitnessPeer == nil {
		return nil, fmt.Errorf("this node does not witness checkpoints")
	}
	if err := s.cfg.WitnessPeer(ctx, country, &cp); err != nil {
		return nil, err
	}
	w, err := audit.Countersign(s.cfg.Key, s.cfg.Country, &cp, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(&w)
	if err != nil {
		return nil, err
	}
	return &pb.Message{Body: &pb.Message_AuditWitness{AuditWitness: &pb.AuditWitness{Witness: out}}}, nil
}
