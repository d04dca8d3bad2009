package orders

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/policy"
)

// Recovery after the seller's node was restored from a backup (or lost its
// store): the orders it received after the backup, and the progress it
// reported on them, are gone from it, while each buyer's node still holds
// them, with the seller node's signed receipts. The restored node asks every
// buyer's node (Recoverable on their side) and applies what they hold
// (Recover on its side), exactly once: the inbox key of a handoff is written
// with the order it creates, as for any delivery.

// ErrBadRecovery is a recovered order the restored node refuses.
var ErrBadRecovery = errors.New("bad recovered order")

// deliveredAAD binds a kept handoff to its order, apart from Personal.
func deliveredAAD(orderID string) []byte { return []byte(orderID + "\x00handoff") }

// sealDelivered seals a delivered handoff for keeping (Order.Delivered).
func (s *Service) sealDelivered(orderID string, body proto.Message) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(body)
	if err != nil {
		return nil, err
	}
	return s.cfg.Key.Seal(b, deliveredAAD(orderID)), nil
}

// Recoverable is the buyer's node answering a restored seller's node in
// country seller: a page of the orders placed here for that country's
// sellers, delivered and last changed at or after since, ordered by ID
// after the given one. Each carries the handoff as delivered, the seller
// node's receipt of it, and the state this node last learned; the
// handoff only where the policy in force still lets its fields go to that
// country, since sending it again is a crossing like the first. It
// returns the audit entries of those crossings (the caller appends them
// before the reply leaves), and whether another page follows.
func (s *Service) Recoverable(ctx context.Context, seller string, since time.Time, after string, max int) ([]*pb.RecoveredOrder, []*audit.Entry, bool, error) {
	keep := func(o *Order) bool {
		return o.Side == SideBuyer && o.SellerCountry == seller && len(o.Receipt) > 0 && !o.UpdatedAt.Before(since)
	}
	batch, err := s.cfg.Store.Orders(ctx, keep, after, max+1)
	if err != nil {
		return nil, nil, false, err
	}
	more := len(batch) > max
	if more {
		batch = batch[:max]
	}
	var pol *policy.Policy
	if s.cfg.Policy != nil {
		pol = s.cfg.Policy()
	}
	out := make([]*pb.RecoveredOrder, 0, len(batch))
	var entries []*audit.Entry
	for _, o := range batch {
		r := &pb.RecoveredOrder{OrderId: o.ID, Status: string(o.Status), StatusSeq: o.InSeq, BuyerSeq: o.OutSeq,
			Reason: o.Reason, Tracking: o.Tracking, UpdatedUnixMs: o.UpdatedAt.UnixMilli(), Receipt: o.Receipt}
		if len(o.Delivered) > 0 {
			b, err := s.cfg.Key.Open(o.Delivered, deliveredAAD(o.ID))
			if err != nil {
				return nil, nil, false, fmt.Errorf("order %s: kept handoff: %w", o.ID, err)
			}
			var h pb.OrderHandoff
			if err := proto.Unmarshal(b, &h); err != nil {
				return nil, nil, false, fmt.Errorf("order %s: kept handoff: %w", o.ID, err)
			}
			e, err := recoveryEgress(pol, seller, o.ID, &h, b, o.Receipt)
			if err != nil {
				entries = append(entries, &audit.Entry{Kind: audit.Rejection, Peer: seller, Purpose: string(policy.PurposeOrderHandoff),
					Records: []string{o.ID}, Count: 1, Reason: "recovery: the handoff is not sent again: " + err.Error()})
			} else {
				r.Handoff = &h
				entries = append(entries, e)
			}
		}
		out = append(out, r)
	}
	return out, entries, more, nil
}

// recoveryEgress is the audit entry of a handoff sent again, after the
// policy in force lets each of its fields go to the seller's country.
func recoveryEgress(pol *policy.Policy, dest, orderID string, h *pb.OrderHandoff, payload, receipt []byte) (*audit.Entry, error) {
	fields := handoffFields(h)
	e := &audit.Entry{Kind: audit.HandoffEgress, Peer: dest, Purpose: string(policy.PurposeOrderHandoff), Records: []string{orderID}, Count: 1,
		Fields: fields, Rules: h.Rules, LegalBasis: h.LegalBasis, PayloadHash: hexOf(sha(payload)), ReceiptHash: audit.HashHex(receipt),
		Reason: "sent again to the seller's node after its restore"}
	if pol == nil {
		return e, nil
	}
	allowed := map[string][]string{}
	for _, f := range fields {
		kind, name, _ := strings.Cut(f, ".")
		fs, seen := allowed[kind]
		if !seen {
			t, err := pol.Transfer(kind, dest, policy.PurposeOrderHandoff)
			if err != nil {
				return nil, err
			}
			fs = t.Fields
			allowed[kind] = fs
			e.PolicyVersion = t.Version
		}
		if !slices.Contains(fs, name) {
			return nil, fmt.Errorf("field %s to %s is allowed by no rule of policy version %d", f, dest, pol.Version)
		}
	}
	return e, nil
}

func sha(b []byte) []byte { h := sha256.Sum256(b); return h[:] }

// RecoverResult counts what Recover did with one page.
type RecoverResult struct {
	Restored     int // orders this node had lost, stored again
	FastForwards int // orders this node held in an older state, brought up to date
	Unchanged    int // orders this node already held as the buyer's node knows them
}

// Recover is the restored seller's node applying a page of orders that
// the buyer's node in country from holds (its Recoverable). An order this
// node lost is stored again with the original receipt, its inbox key
// written with it, so a later delivery of the same handoff gets that
// receipt back and nothing is stored twice. It is stored without taking
// stock: the catalog records of the stock it took were taken back from the
// peers before orders are recovered. An order this node holds in an older
// state than the buyer's node learned from it is brought forward, so the
// next status it sends continues the sequence the buyer's node expects.
func (s *Service) Recover(ctx context.Context, from string, recs []*pb.RecoveredOrder) (RecoverResult, error) {
	var res RecoverResult
	var lost []ReceivedHandoff // stored together: one transaction a page
	for _, r := range recs {
		if r.Status != "" && !ValidStatus(Status(r.Status)) {
			return res, fmt.Errorf("%w: order %s has status %q", ErrBadRecovery, r.OrderId, r.Status)
		}
		o, err := s.cfg.Store.Order(ctx, r.OrderId)
		switch {
		case errors.Is(err, ErrNotFound):
			if r.Handoff == nil {
				// The buyer's node no longer keeps what it delivered: there
				// is nothing to store. Said in the audit log.
				s.rejected(ctx, from, r.OrderId, nil, "recovery: the buyer's node no longer keeps this order's handoff")
				continue
			}
			h, err := s.recovered(from, r)
			if err != nil {
				return res, err
			}
			lost = append(lost, h)
		case err != nil:
			return res, err
		case o.Side != SideSeller || o.BuyerCountry != from:
			return res, fmt.Errorf("%w: order %s is not one %s placed with this node", ErrBadRecovery, r.OrderId, from)
		case r.StatusSeq > o.OutSeq || r.BuyerSeq > o.InSeq:
			if _, err := s.cfg.Store.UpdateOrder(ctx, o.ID, func(o *Order) ([]OutboxRow, error) {
				forward(o, from, r, s.cfg.Now().UTC())
				return nil, nil
			}); err != nil {
				return res, err
			}
			res.FastForwards++
		default:
			res.Unchanged++
		}
	}
	for len(lost) > 0 {
		err := s.cfg.Store.ReceiveHandoffs(ctx, lost, nil, s.cfg.Country, nil)
		var ce *ConflictError
		if errors.As(err, &ce) {
			// The same order twice in the page, or stored meanwhile by a
			// concurrent recovery: it is held once; store the others.
			lost = slices.Delete(lost, ce.Index, ce.Index+1)
			res.Unchanged++
			continue
		}
		if err != nil {
			return res, err
		}
		for _, h := range lost {
			s.metrics.received.WithLabelValues(string(h.Order.Status)).Inc()
			s.log.Info("order recovered", "order", h.Order.ID, "from", from, "status", h.Order.Status)
		}
		res.Restored += len(lost)
		break
	}
	return res, nil
}

// forward brings an order to the state the buyer's node learned of it.
func forward(o *Order, from string, r *pb.RecoveredOrder, now time.Time) {
	if r.StatusSeq >= o.OutSeq && r.Status != "" && Status(r.Status) != o.Status {
		o.Status, o.Reason, o.Tracking = Status(r.Status), r.Reason, r.Tracking
		o.History = append(o.History, Event{Status: o.Status, At: now, By: "system",
			Reason: "restored from " + from + "'s record after this node's restore", Tracking: r.Tracking})
	}
	o.OutSeq = max(o.OutSeq, r.StatusSeq)
	o.InSeq = max(o.InSeq, r.BuyerSeq)
	o.UpdatedAt = now
}

// recovered checks a lost order against the receipt this node signed for
// it and builds it, as received then and as the buyer's node knows it now.
func (s *Service) recovered(from string, r *pb.RecoveredOrder) (ReceivedHandoff, error) {
	in, err := s.incoming(from, r.Handoff)
	if err != nil {
		return ReceivedHandoff{}, fmt.Errorf("%w: %v", ErrBadRecovery, err)
	}
	if in.h.OrderId != r.OrderId {
		return ReceivedHandoff{}, fmt.Errorf("%w: handoff of order %s under %s", ErrBadRecovery, in.h.OrderId, r.OrderId)
	}
	if s.cfg.OwnReceipt == nil {
		return ReceivedHandoff{}, fmt.Errorf("%w: this node cannot check its receipts", ErrBadRecovery)
	}
	rc, err := s.cfg.OwnReceipt(r.Receipt)
	if err != nil {
		return ReceivedHandoff{}, fmt.Errorf("%w: order %s: the receipt is not this node's: %v", ErrBadRecovery, r.OrderId, err)
	}
	if rc.OrderId != r.OrderId || rc.Kind != KindHandoff || rc.Seq != 1 || string(rc.PayloadHash) != string(in.hash) || rc.Receiver != s.cfg.Country {
		return ReceivedHandoff{}, fmt.Errorf("%w: order %s: the receipt acknowledges another message", ErrBadRecovery, r.OrderId)
	}
	o := in.o
	o.History = slices.Clone(o.History)
	at := time.UnixMilli(rc.ReceivedUnixMs).UTC()
	if rc.Result == ResultRejected {
		_ = o.transition(Rejected, at, "system", rc.Reason, "")
	} else {
		_ = o.transition(Received, at, "system", "", "")
	}
	o.Receipt = r.Receipt
	forward(o, from, r, s.cfg.Now().UTC())
	entries := receivedEntries(KindHandoff, from, o.ID, in.hash, r.Receipt, rc.Result, handoffFields(in.h), in.h.Rules, in.h.LegalBasis)
	for _, e := range entries {
		e.Reason = "re-delivered by " + from + " after this node's restore (receipt of " + at.Format(time.RFC3339) + ")"
	}
	return ReceivedHandoff{Key: in.key, Entry: InboxEntry{Hash: in.hash, Receipt: r.Receipt}, Order: o, Audit: entries}, nil
}
