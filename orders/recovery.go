package orders

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/imtgt/imtgt-node/aftersale"
	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/policy"
	"github.com/imtgt/imtgt-node/validation"
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
//
// The orders the restored node placed here as the buyer's node come too
// (placed_by_you), with the restored node's own receipts of the status
// messages this node sent it: from them it brings its copies forward.
func (s *Service) Recoverable(ctx context.Context, seller string, since time.Time, after string, limit int) ([]*pb.RecoveredOrder, []*audit.Entry, bool, error) {
	keep := func(o *Order) bool {
		if o.UpdatedAt.Before(since) {
			return false
		}
		return (o.Side == SideBuyer && o.SellerCountry == seller && len(o.Receipt) > 0) || (o.Side == SideSeller && o.BuyerCountry == seller)
	}
	batch, err := s.cfg.Store.Orders(ctx, keep, after, limit+1)
	if err != nil {
		return nil, nil, false, err
	}
	more := len(batch) > limit
	if more {
		batch = batch[:limit]
	}
	var pol *policy.Policy
	if s.cfg.Policy != nil {
		pol = s.cfg.Policy()
	}
	out := make([]*pb.RecoveredOrder, 0, len(batch))
	var entries []*audit.Entry
	for _, o := range batch {
		if o.Side == SideSeller {
			r := &pb.RecoveredOrder{OrderId: o.ID, PlacedByYou: true, Status: string(o.Status), StatusSeq: o.OutSeq, UpdatedUnixMs: o.UpdatedAt.UnixMilli()}
			if r.StatusReceipts, _, err = statusEnvelopes(s.cfg.Store.OrderReceipts(ctx, seller, o.ID)); err != nil {
				return nil, nil, false, err
			}
			if r.SellerReceipts, _, err = statusEnvelopes(s.cfg.Store.InboxReceipts(ctx, seller, o.ID)); err != nil {
				return nil, nil, false, err
			}
			var es []*audit.Entry
			r.Issues, es = s.recoverableIssues(pol, seller, o)
			entries = append(entries, es...)
			out = append(out, r)
			continue
		}
		// The seller's state as this node learned it from the seller's
		// node (not a local cancellation still on its way), and the
		// seller's receipts of this node's own messages.
		st := sellerState(o)
		r := &pb.RecoveredOrder{OrderId: o.ID, Status: string(st.Status), StatusSeq: o.InSeq,
			Reason: st.Reason, Tracking: st.Tracking, UpdatedUnixMs: o.UpdatedAt.UnixMilli(), Receipt: o.Receipt}
		if r.StatusReceipts, r.BuyerSeq, err = statusEnvelopes(s.cfg.Store.OrderReceipts(ctx, seller, o.ID)); err != nil {
			return nil, nil, false, err
		}
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
		var es []*audit.Entry
		r.Issues, es = s.recoverableIssues(pol, seller, o)
		entries = append(entries, es...)
		out = append(out, r)
	}
	return out, entries, more, nil
}

// recoveryEgress is the audit entry of a handoff sent again, after the
// policy in force lets each of its fields go to the seller's country.
func recoveryEgress(pol *policy.Policy, dest, orderID string, h *pb.OrderHandoff, payload, receipt []byte) (*audit.Entry, error) {
	fields := handoffFields(h)
	e := &audit.Entry{Kind: audit.HandoffEgress, Peer: dest, Purpose: string(policy.PurposeOrderHandoff), Records: []string{orderID}, Count: 1,
		Fields: fields, Rules: h.Rules, LegalBasis: h.LegalBasis, PayloadHash: audit.HashHex(payload), ReceiptHash: audit.HashHex(receipt),
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
	var kept []string          // orders the buyer's node no longer keeps the handoff of
	var placed []string        // orders this node placed that it lost
	for _, r := range recs {
		if r.Status != "" && !ValidStatus(Status(r.Status)) {
			return res, fmt.Errorf("%w: order %s has status %q", ErrBadRecovery, r.OrderId, r.Status)
		}
		if r.StatusSeq > maxStatusSeq {
			return res, fmt.Errorf("%w: order %s: status seq %d (an order has at most %d)", ErrBadRecovery, r.OrderId, r.StatusSeq, maxStatusSeq)
		}
		own, err := s.ownStatusReceipts(r)
		if err != nil {
			return res, err
		}
		o, err := s.cfg.Store.Order(ctx, r.OrderId)
		if r.PlacedByYou {
			theirs, terr := s.peerStatusReceipts(from, r)
			if terr != nil {
				return res, terr
			}
			// This node is the buyer's: its own receipts say what it had
			// applied of the seller's messages.
			switch {
			case errors.Is(err, ErrNotFound):
				placed = append(placed, r.OrderId)
			case err != nil:
				return res, err
			case o.Side != SideBuyer || o.SellerCountry != from:
				return res, fmt.Errorf("%w: order %s is not one this node placed with %s", ErrBadRecovery, r.OrderId, from)
			case own.seq > o.InSeq || theirs.seq > o.OutSeq:
				if _, err := s.cfg.Store.UpdateOrder(ctx, o.ID, func(o *Order) ([]OutboxRow, error) {
					now := s.cfg.Now().UTC()
					if own.seq > o.InSeq {
						o.InSeq, o.UpdatedAt = own.seq, now
						if rc := own.last; rc != nil && Status(rc.Status) != o.Status && ValidStatus(Status(rc.Status)) {
							o.Status = Status(rc.Status)
							o.History = append(o.History, Event{Status: o.Status, At: now, By: "seller",
								Reason: "restored after this node's restore, from its own receipt of " + from + "'s message"})
						}
					}
					if theirs.seq > o.OutSeq {
						o.OutSeq, o.UpdatedAt = theirs.seq, now
						if rc := theirs.last; rc != nil && rc.Result == ResultApplied && Status(rc.Status) == Cancelled && o.Status != Cancelled {
							o.Status = Cancelled
							o.History = append(o.History, Event{Status: o.Status, At: now, By: "peer",
								Reason: "restored after this node's restore: cancelled, as " + from + "'s receipt says"})
						}
					}
					return nil, nil
				}); err != nil {
					return res, err
				}
				res.FastForwards++
			default:
				res.Unchanged++
			}
			if o != nil && err == nil && len(r.Issues) > 0 {
				if err := s.recoverIssues(ctx, from, o.ID, r.Issues); err != nil {
					return res, err
				}
			}
			continue
		}
		switch {
		case errors.Is(err, ErrNotFound):
			if r.Handoff == nil {
				kept = append(kept, r.OrderId)
				continue
			}
			h, err := s.recovered(from, r, own)
			if err != nil {
				return res, err
			}
			_, es, err := adoptRecovered(h.Order, from, r.Issues)
			if err != nil {
				return res, err
			}
			h.Audit = append(h.Audit, es...)
			lost = append(lost, h)
		case err != nil:
			return res, err
		case o.Side != SideSeller || o.BuyerCountry != from:
			return res, fmt.Errorf("%w: order %s is not one %s placed with this node", ErrBadRecovery, r.OrderId, from)
		case behind(o, r, own):
			if _, err := s.cfg.Store.UpdateOrder(ctx, o.ID, func(o *Order) ([]OutboxRow, error) {
				forward(o, from, r, own, s.cfg.Now().UTC())
				return nil, nil
			}); err != nil {
				return res, err
			}
			res.FastForwards++
		default:
			res.Unchanged++
		}
		if err == nil && len(r.Issues) > 0 {
			if err := s.recoverIssues(ctx, from, o.ID, r.Issues); err != nil {
				return res, err
			}
		}
	}
	if len(placed) > 0 && s.cfg.Audit != nil {
		_ = s.cfg.Audit(ctx, &audit.Entry{Kind: audit.Rejection, Peer: from, Purpose: string(policy.PurposeOrderHandoff), Records: placed, Count: len(placed),
			Reason: "recovery: orders this node placed after the backup; " + from + "'s node holds them, their buyers' data was lost with the store"})
	}
	if len(kept) > 0 && s.cfg.Audit != nil {
		// Said in the audit log, once a page: there is nothing to store.
		_ = s.cfg.Audit(ctx, &audit.Entry{Kind: audit.Rejection, Peer: from, Purpose: string(policy.PurposeOrderHandoff), Records: kept, Count: len(kept),
			Reason: "recovery: the buyer's node no longer keeps these orders' handoffs"})
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

// maxStatusSeq bounds the message seqs of one order a recovery accepts:
// the order state machine lets a side send only a handful of status
// messages, and each of its issues (at most MaxIssues) a bounded number of
// issue messages (maxIssueMessages: every step of the issue state machine,
// its refunds, and a sync after each conflict).
const maxStatusSeq = 16 + MaxIssues*maxIssueMessages

// maxIssueMessages bounds what one side sends of one issue.
// (13 states: a path visits each at most once; syncs at most double it.)
const maxIssueMessages = 2 * (13 + aftersale.MaxRefunds)

// ownReceipts is what this node signed of the other node's messages of one
// order: the last seq (status and issue messages share it), and the
// receipt of the last status message (nil if none).
type ownReceipts struct {
	seq  uint64
	last *pb.Receipt
}

// statusEnvelopes keeps the status receipts of a list of kept receipts,
// and the highest seq among them.
func statusEnvelopes(kept []KeptReceipt, err error) ([][]byte, uint64, error) {
	var out [][]byte
	var last uint64
	for _, k := range kept {
		if k.Kind == KindStatus || k.Kind == KindIssue {
			out = append(out, k.Envelope)
			last = max(last, k.Seq)
		}
	}
	return out, last, err
}

// ownStatusReceipts checks the status receipts a buyer's node hands back:
// each must be this node's own, for this order.
func (s *Service) ownStatusReceipts(r *pb.RecoveredOrder) (ownReceipts, error) {
	return checkStatusReceipts(r, r.StatusReceipts, s.cfg.Country, "this node's", s.cfg.OwnReceipt)
}

// peerStatusReceipts checks the receipts a seller's node signed of this
// node's status messages for one order, handed back after this node's
// restore.
func (s *Service) peerStatusReceipts(from string, r *pb.RecoveredOrder) (ownReceipts, error) {
	var open func([]byte) (*pb.Receipt, error)
	if s.cfg.PeerReceipt != nil {
		open = func(raw []byte) (*pb.Receipt, error) { return s.cfg.PeerReceipt(raw, from) }
	}
	return checkStatusReceipts(r, r.SellerReceipts, from, from+"'s", open)
}

// checkStatusReceipts opens receipts that receiver signed (open checks the
// signer) of status messages of r's order, and returns the last.
func checkStatusReceipts(r *pb.RecoveredOrder, raws [][]byte, receiver, whose string, open func([]byte) (*pb.Receipt, error)) (ownReceipts, error) {
	var got ownReceipts
	if len(raws) > maxStatusSeq {
		return got, fmt.Errorf("%w: order %s: %d status receipts", ErrBadRecovery, r.OrderId, len(raws))
	}
	for _, raw := range raws {
		if open == nil {
			return got, fmt.Errorf("%w: this node cannot check %s receipts", ErrBadRecovery, whose)
		}
		rc, err := open(raw)
		if err != nil {
			return got, fmt.Errorf("%w: order %s: a status receipt is not %s: %v", ErrBadRecovery, r.OrderId, whose, err)
		}
		if rc.OrderId != r.OrderId || (rc.Kind != KindStatus && rc.Kind != KindIssue) || rc.Receiver != receiver || rc.Seq == 0 || rc.Seq > maxStatusSeq {
			return got, fmt.Errorf("%w: order %s: a status receipt acknowledges another message", ErrBadRecovery, r.OrderId)
		}
		got.seq = max(got.seq, rc.Seq)
		if rc.Kind == KindStatus && (got.last == nil || rc.Seq > got.last.Seq) {
			got.last = rc
		}
	}
	return got, nil
}

// sellerState is the last state the buyer's node learned from the seller's
// node: the handoff's receipt, a status message, or a refusal.
func sellerState(o *Order) Event {
	for i := len(o.History) - 1; i >= 0; i-- {
		if e := o.History[i]; e.By == "seller" || e.By == "peer" {
			return e
		}
	}
	return Event{Status: o.Status}
}

// behind says whether an order this node holds is older than what the
// buyer's node learned of it.
func behind(o *Order, r *pb.RecoveredOrder, own ownReceipts) bool {
	return r.StatusSeq > o.OutSeq || own.seq > o.InSeq
}

// reachable says whether the state machine leads from one state to another.
func reachable(from, to Status) bool {
	seen := map[Status]bool{from: true}
	for queue := []Status{from}; len(queue) > 0; queue = queue[1:] {
		for _, n := range next[queue[0]] {
			if n == to {
				return true
			}
			if !seen[n] {
				seen[n] = true
				queue = append(queue, n)
			}
		}
	}
	return false
}

// forward brings an order to the state the buyer's node learned of it.
// The buyer's own messages count only with this node's receipts of them
// (own); the seller state it reports is its word, so it moves the order
// only forward along the state machine. The sequences always move on, so
// the next message either side sends is the one the other expects.
func forward(o *Order, from string, r *pb.RecoveredOrder, own ownReceipts, now time.Time) {
	set := func(to Status, reason, tracking, why string) {
		o.Status, o.Reason, o.Tracking = to, reason, tracking
		o.History = append(o.History, Event{Status: to, At: now, By: "system", Reason: why, Tracking: tracking})
	}
	if own.seq > o.InSeq {
		o.InSeq = own.seq
		if rc := own.last; rc != nil && rc.Result == ResultApplied && Status(rc.Status) == Cancelled && o.Status != Cancelled {
			set(Cancelled, "", "", "restored after this node's restore: cancelled by the buyer, as this node's receipt says")
		}
	}
	if r.StatusSeq > o.OutSeq {
		o.OutSeq = r.StatusSeq
		to := Status(r.Status)
		if to != "" && to != o.Status && reachable(o.Status, to) {
			reason, tracking := r.Reason, r.Tracking
			if validation.Text("reason", reason, validation.Line) != nil || validation.Text("tracking", tracking, validation.Line) != nil {
				reason, tracking = "", ""
			}
			set(to, reason, tracking, "restored from "+from+"'s record after this node's restore")
		}
	}
	o.UpdatedAt = now
}

// recovered checks a lost order against the receipt this node signed for
// it and builds it, as received then and as the buyer's node knows it now.
func (s *Service) recovered(from string, r *pb.RecoveredOrder, own ownReceipts) (ReceivedHandoff, error) {
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
	forward(o, from, r, own, s.cfg.Now().UTC())
	entries := receivedEntries(KindHandoff, from, o.ID, in.hash, r.Receipt, rc.Result, handoffFields(in.h), in.h.Rules, in.h.LegalBasis)
	for _, e := range entries {
		e.Reason = "re-delivered by " + from + " after this node's restore (receipt of " + at.Format(time.RFC3339) + ")"
	}
	return ReceivedHandoff{Key: in.key, Entry: InboxEntry{Hash: in.hash, Receipt: r.Receipt}, Order: o, Audit: entries}, nil
}

// recoverIssues adopts a peer's copies of an order's issues that this node,
// restored, lost or holds behind (adoptRecovered), with their audit
// entries, in one transaction.
func (s *Service) recoverIssues(ctx context.Context, from, orderID string, raws [][]byte) error {
	_, err := s.cfg.Store.ChangeOrder(ctx, orderID, func(o *Order) (Applied, error) {
		changed, entries, err := adoptRecovered(o, from, raws)
		if err != nil || !changed {
			return Applied{}, err
		}
		o.UpdatedAt = s.cfg.Now().UTC()
		return Applied{Audit: entries}, nil
	})
	return err
}
