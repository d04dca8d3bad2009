package orders

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/imtgt/imtgt-node/aftersale"
	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/policy"
)

// After-sale issues travel between the two nodes of their order as
// issue_message, in the order's message sequence (shared with its status
// messages), through the outbox and inbox like every order message: exactly
// once, in order, with a signed receipt, through crashes and partitions.
//
// The buyer's node is the issue's authority: the buyer country's consumer
// rules set its deadlines and its operator records the escalation body's
// decision. Every change made there goes to the seller's node as the whole
// issue after the change (as the buyer country's policy lets it cross),
// which the seller's node adopts. A change the seller makes is applied on
// the seller's node and sent as the response with the version it acted on;
// the buyer's node applies it with the same rules (aftersale.Respond). When
// both sides acted at once the versions differ: the buyer's node applies the
// response if the rules still allow it, or refuses it, and in both cases
// sends its issue as it now is (event sync), so both converge on the
// buyer's node's issue.

// KindIssue is the outbox, inbox and receipt kind of issue messages.
const KindIssue = "issue"

// Issue events: what an issue message says happened.
const (
	EventOpen     = "open"
	EventRespond  = "respond"
	EventEscalate = "escalate"
	EventDecide   = "decide"
	EventRefund   = "refund"
	EventSync     = "sync"
)

// Limits.
const (
	// MaxIssues is how many issues one order may have.
	MaxIssues = 10
	// DeliveryWindow is how long after the seller accepted an order a buyer
	// may say the goods never came, though the seller has not shipped
	// them: the node's expected delivery until listings carry a delivery
	// promise of their own.
	DeliveryWindow = 30 * 24 * time.Hour
)

// Errors of issues.
var (
	ErrIssueNotFound = errors.New("issue not found")
	ErrTooManyIssues = errors.New("too many issues on this order")
)

// IssueKey is what an Idempotency-Key opened: the request's hash and the
// issue it made.
type IssueKey struct {
	Hash    []byte `json:"hash"`
	IssueID string `json:"issue_id"`
}

// IssueRef is an issue with the order it is about.
type IssueRef struct {
	Order *Order
	Issue *aftersale.Issue
}

// Actor is who acts on an issue through the API: the role, and the
// marketplace's or seller's ID ("" for the operator and the system).
type Actor struct {
	Role aftersale.Actor
	ID   string
}

// sees reports whether a may see (and act on) the issues of o.
func (a Actor) sees(o *Order) bool {
	switch a.Role {
	case aftersale.ByMarketplace:
		return o.Side == SideBuyer && o.MarketplaceID == a.ID
	case aftersale.BySeller:
		return o.Side == SideSeller && o.SellerID == a.ID
	}
	return true
}

// IssueView builds what the issue rules need of o.
func (o *Order) IssueView() aftersale.OrderView {
	v := aftersale.OrderView{ID: o.ID, MarketplaceID: o.MarketplaceID, BuyerCountry: o.BuyerCountry, SellerCountry: o.SellerCountry,
		SellerID: o.SellerID, Status: string(o.Status), Paid: o.Quote.LandedTotal, Refunds: o.Refunds}
	for _, it := range o.Items {
		v.Items = append(v.Items, aftersale.ItemQty{ListingID: it.ListingID, Quantity: it.Quantity})
	}
	for _, e := range o.History {
		if e.Status == Accepted {
			v.ExpectedDelivery = e.At.Add(DeliveryWindow)
			break
		}
	}
	return v
}

// issue returns o's issue id, or nil.
func (o *Order) issue(id string) *aftersale.Issue {
	for _, is := range o.Issues {
		if is.ID == id {
			return is
		}
	}
	return nil
}

// collectRefunds sets o.Refunds from its issues.
func (o *Order) collectRefunds() {
	o.Refunds = nil
	for _, is := range o.Issues {
		o.Refunds = append(o.Refunds, is.Refunds...)
	}
}

// issueRow builds the outbox row carrying one change of an issue to the
// other side, projected by this node's policy for the purpose "issue".
func (s *Service) issueRow(o *Order, e *policy.IssueEvent) (OutboxRow, error) {
	dest := o.peer()
	o.OutSeq++
	e.OrderID, e.Seq, e.Consent = o.ID, o.OutSeq, o.Consent
	msg, t, err := s.cfg.Policy().Project(e, dest, policy.PurposeIssue)
	if err != nil {
		return OutboxRow{}, &RuleError{Err: ErrNoLegalBasis, Msg: fmt.Sprintf("the issue may not go to %s: %v", dest, err)}
	}
	payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return OutboxRow{}, err
	}
	return OutboxRow{Dest: dest, Kind: KindIssue, OrderID: o.ID, MsgSeq: o.OutSeq, Payload: payload, CreatedAt: e.At, NextRetry: e.At, Transfer: t}, nil
}

// snapshotRow is the buyer's node telling the seller's node about its
// issue after a change.
func (s *Service) snapshotRow(o *Order, is *aftersale.Issue, event string, by aftersale.Actor, now time.Time, basedOn uint64) (OutboxRow, error) {
	return s.issueRow(o, &policy.IssueEvent{Event: event, Actor: string(by), At: now, BasedOn: basedOn, Issue: is})
}

// stepEntry is the audit entry of one step of an issue on this node. Its
// reason holds key=value pairs an auditor's report counts; never free text.
func stepEntry(o *Order, is *aftersale.Issue, event string, actor string, extra ...string) *audit.Entry {
	kv := []string{"event=" + event, "side=" + string(o.Side), "category=" + string(is.Category), "status=" + string(is.Status)}
	if is.Remedy != nil {
		kv = append(kv, "remedy="+string(is.Remedy.Kind))
	}
	if d := is.Decision; d != nil && event == EventDecide {
		kv = append(kv, "outcome="+string(d.Outcome))
	}
	kv = append(kv, extra...)
	return &audit.Entry{Kind: audit.IssueStep, Peer: o.peer(), Purpose: string(policy.PurposeIssue), Records: []string{is.ID, o.ID},
		Count: 1, Actor: actor, Reason: strings.Join(kv, " ")}
}

// deadlineTags says which of an issue's deadlines a step met or missed: the
// seller's first response against respond_by, the end of the issue
// (resolved, closed, or escalated for want of either) against resolve_by.
func deadlineTags(before, after *aftersale.Issue, at time.Time) []string {
	var out []string
	if before.Status == aftersale.StatusOpen && after.Status != aftersale.StatusOpen {
		if after.Status == aftersale.StatusEscalated && at.After(after.RespondBy) {
			out = append(out, "respond=missed")
		} else if !at.After(after.RespondBy) {
			out = append(out, "respond=met")
		} else {
			out = append(out, "respond=missed")
		}
	}
	ended := func(st aftersale.Status) bool {
		return st == aftersale.StatusResolved || st == aftersale.StatusClosed || st == aftersale.StatusEscalated
	}
	if !ended(before.Status) && ended(after.Status) {
		if after.Status != aftersale.StatusEscalated && !at.After(after.ResolveBy) {
			out = append(out, "resolve=met")
		} else {
			out = append(out, "resolve=missed")
		}
	}
	return out
}

func requestHashOf(v any) []byte {
	b, _ := json.Marshal(v)
	h := sha256.Sum256(b)
	return h[:]
}

// OpenIssue is a marketplace opening an issue on its order for its buyer,
// under an Idempotency-Key (key, may be empty): the same key and body get
// the issue made the first time (replayed = true).
func (s *Service) OpenIssue(ctx context.Context, marketplaceID, orderID, key string, in aftersale.OpenInput) (is *aftersale.Issue, replayed bool, err error) {
	if s.cfg.Catalog.Reconciling() {
		return nil, false, catalog.ErrReconciling
	}
	hash := requestHashOf(in)
	rules, _ := s.cfg.Policy().Consumer()
	deadlines := aftersale.Deadlines{RespondWithin: rules.RespondWithinHours, ResolveWithin: rules.ResolveWithinDays}
	_, err = s.cfg.Store.ChangeOrder(ctx, orderID, func(o *Order) (Applied, error) {
		is, replayed = nil, false
		if o.Side != SideBuyer || o.MarketplaceID != marketplaceID {
			return Applied{}, fmt.Errorf("%w: %s", ErrNotFound, orderID)
		}
		if k, ok := o.IssueKeys[key]; ok && key != "" {
			if string(k.Hash) != string(hash) {
				return Applied{}, ErrIdempotency
			}
			is, replayed = o.issue(k.IssueID), true
			return Applied{}, errReplayed
		}
		if len(o.Issues) >= MaxIssues {
			return Applied{}, fmt.Errorf("%w: order %s has %d issues, the most one order may have", ErrTooManyIssues, o.ID, len(o.Issues))
		}
		now := s.cfg.Now().UTC()
		n, err := aftersale.Open(o.IssueView(), in, deadlines, now)
		if err != nil {
			return Applied{}, err
		}
		row, err := s.snapshotRow(o, n, EventOpen, aftersale.ByMarketplace, now, 0)
		if err != nil {
			return Applied{}, err
		}
		o.Issues = append(o.Issues, n)
		if key != "" {
			if o.IssueKeys == nil {
				o.IssueKeys = map[string]IssueKey{}
			}
			o.IssueKeys[key] = IssueKey{Hash: hash, IssueID: n.ID}
		}
		o.UpdatedAt = now
		is = n
		return Applied{Rows: []OutboxRow{row}, Audit: []*audit.Entry{stepEntry(o, n, EventOpen, "marketplace "+marketplaceID)}}, nil
	})
	if errors.Is(err, errReplayed) {
		return is, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	s.Wake()
	return is, false, nil
}

// errReplayed ends a ChangeOrder that found its Idempotency-Key: nothing
// is written.
var errReplayed = errors.New("replayed")

// Issue returns an issue and its order, if a may see it (else
// ErrIssueNotFound).
func (s *Service) Issue(ctx context.Context, a Actor, id string) (*Order, *aftersale.Issue, error) {
	if !aftersale.ValidID(id) {
		return nil, nil, fmt.Errorf("%w: %s", ErrIssueNotFound, id)
	}
	orderID, err := s.cfg.Store.IssueOrder(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	o, err := s.cfg.Store.Order(ctx, orderID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, fmt.Errorf("%w: %s", ErrIssueNotFound, id)
	}
	if err != nil {
		return nil, nil, err
	}
	is := o.issue(id)
	if is == nil || !a.sees(o) {
		return nil, nil, fmt.Errorf("%w: %s", ErrIssueNotFound, id)
	}
	return o, is, nil
}

// Issues lists the issues a may see that keep passes (nil: all), by ID
// after the cursor.
func (s *Service) Issues(ctx context.Context, a Actor, keep func(*aftersale.Issue) bool, cursor string, limit int) ([]IssueRef, string, error) {
	refs, err := s.cfg.Store.Issues(ctx, func(o *Order, is *aftersale.Issue) bool {
		return a.sees(o) && (keep == nil || keep(is))
	}, cursor, limit+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(refs) > limit {
		refs = refs[:limit]
		next = refs[limit-1].Issue.ID
	}
	return refs, next, nil
}

// changeIssue applies step to issue id of an order a may see, in one
// transaction with the message it sends and its audit entries. step gets
// the order and the issue (changed in place only if it succeeds) and
// returns the event to send and any extra audit tags.
func (s *Service) changeIssue(ctx context.Context, a Actor, id string, step func(o *Order, is *aftersale.Issue, now time.Time) (Applied, error)) (*aftersale.Issue, error) {
	if s.cfg.Catalog.Reconciling() {
		// After a restore an order's message sequence may be behind what
		// the other side holds until it is recovered.
		return nil, catalog.ErrReconciling
	}
	if !aftersale.ValidID(id) {
		return nil, fmt.Errorf("%w: %s", ErrIssueNotFound, id)
	}
	orderID, err := s.cfg.Store.IssueOrder(ctx, id)
	if err != nil {
		return nil, err
	}
	var out *aftersale.Issue
	_, err = s.cfg.Store.ChangeOrder(ctx, orderID, func(o *Order) (Applied, error) {
		is := o.issue(id)
		if is == nil || !a.sees(o) {
			return Applied{}, fmt.Errorf("%w: %s", ErrIssueNotFound, id)
		}
		now := s.cfg.Now().UTC()
		ap, err := step(o, is, now)
		if err != nil {
			return Applied{}, err
		}
		o.collectRefunds()
		o.UpdatedAt = now
		out = is
		return ap, nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrIssueNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	s.Wake()
	return out, nil
}

// actorName is how the audit log names a.
func (a Actor) name() string {
	if a.ID == "" {
		return string(a.Role)
	}
	return string(a.Role) + " " + a.ID
}

// buyerStep finishes a change made on the buyer's node: the issue after
// it goes to the seller's node, with the step's audit entry.
func (s *Service) buyerStep(o *Order, before aftersale.Issue, is *aftersale.Issue, event string, a Actor, now time.Time) (Applied, error) {
	row, err := s.snapshotRow(o, is, event, a.Role, now, before.Version())
	if err != nil {
		return Applied{}, err
	}
	return Applied{Rows: []OutboxRow{row}, Audit: []*audit.Entry{stepEntry(o, is, event, a.name(), deadlineTags(&before, is, now)...)}}, nil
}

// RespondIssue is a response to an issue: the seller's on the seller's
// node (accept, propose, reject, return_received, replacement_shipped),
// the marketplace's on the buyer's node (accept or decline a proposal,
// accept a rejection, return_shipped, resolve). On the seller's node a
// return received puts the goods back into stock, once, in the same
// transaction.
func (s *Service) RespondIssue(ctx context.Context, a Actor, id string, in aftersale.ResponseInput) (*aftersale.Issue, error) {
	if a.Role != aftersale.ByMarketplace && a.Role != aftersale.BySeller {
		return nil, fmt.Errorf("%w: the %s does not respond to issues", aftersale.ErrForbidden, a.Role)
	}
	if a.Role == aftersale.BySeller && in.Action == aftersale.ActionReturnReceived {
		return s.returnReceived(ctx, a, id, in)
	}
	return s.changeIssue(ctx, a, id, func(o *Order, is *aftersale.Issue, now time.Time) (Applied, error) {
		return s.respond(o, is, a, in, now)
	})
}

// respond applies a response on this node and builds what it sends.
func (s *Service) respond(o *Order, is *aftersale.Issue, a Actor, in aftersale.ResponseInput, now time.Time) (Applied, error) {
	before := *is
	if err := is.Respond(o.IssueView(), a.Role, in, now); err != nil {
		return Applied{}, err
	}
	if o.Side == SideBuyer {
		return s.buyerStep(o, before, is, EventRespond, a, now)
	}
	row, err := s.issueRow(o, &policy.IssueEvent{IssueID: is.ID, Event: EventRespond, Actor: string(a.Role), At: now, BasedOn: before.Version(), Input: &in})
	if err != nil {
		return Applied{}, err
	}
	tags := append([]string{"action=" + string(in.Action)}, deadlineTags(&before, is, now)...)
	return Applied{Rows: []OutboxRow{row}, Audit: []*audit.Entry{stepEntry(o, is, EventRespond, a.name(), tags...)}}, nil
}

// returnReceived is the seller saying the goods came back: the response,
// and the issue's items back into the listings' stock, decided under the
// catalog lock like every stock change (see move).
func (s *Service) returnReceived(ctx context.Context, a Actor, id string, in aftersale.ResponseInput) (*aftersale.Issue, error) {
	var out *aftersale.Issue
	var back *StockBack
	var gone []string
	var o *Order
	err := s.cfg.Catalog.Exclusive(func() error {
		for stale := 0; ; stale++ {
			var err error
			out, err = s.changeIssue(ctx, a, id, func(ord *Order, is *aftersale.Issue, now time.Time) (Applied, error) {
				back, gone, o = nil, nil, ord
				ap, err := s.respond(ord, is, a, in, now)
				if err != nil {
					return Applied{}, err
				}
				if items := aftersale.Restock(is); len(items) > 0 && !slices.Contains(ord.Restocked, is.ID) {
					back, gone = s.restock(ord, items, now)
					ord.Restocked = append(ord.Restocked, is.ID)
				}
				ap.Stock = back
				return ap, nil
			})
			if err == nil {
				s.indexStockBack(o, back, gone)
			}
			if !errors.Is(err, catalog.ErrStale) || stale == staleRetries {
				return err
			}
			if err := s.cfg.Catalog.Refresh(ctx, listingIDs(back)...); err != nil {
				return err
			}
		}
	})
	return out, err
}

// restock is the stock a return gives back: items' quantities onto their
// listings, as stockBack does for a cancelled order.
func (s *Service) restock(o *Order, items []aftersale.ItemQty, now time.Time) (*StockBack, []string) {
	c := *o
	c.Items = nil
	for _, it := range items {
		c.Items = append(c.Items, Item{ListingID: it.ListingID, Quantity: it.Quantity})
	}
	c.Status = Cancelled                         // stockBack's condition: what the order held comes back
	c.History = []Event{{Status: Cancelled}}     // a note on a listing deleted meanwhile lands here
	back, gone := s.stockBack(&c, Received, now) // (from a state that held stock)
	if len(gone) > 0 {
		o.History = append(o.History, Event{Status: o.Status, At: now, By: "system", Reason: c.History[0].Reason})
	}
	return back, gone
}

// EscalateIssue is the marketplace handing an issue to the buyer country's
// escalation body (aftersale.Escalate says when it may).
func (s *Service) EscalateIssue(ctx context.Context, marketplaceID, id string) (*aftersale.Issue, error) {
	a := Actor{Role: aftersale.ByMarketplace, ID: marketplaceID}
	return s.changeIssue(ctx, a, id, func(o *Order, is *aftersale.Issue, now time.Time) (Applied, error) {
		before := *is
		if err := is.Escalate(aftersale.ByMarketplace, now); err != nil {
			return Applied{}, err
		}
		return s.buyerStep(o, before, is, EventEscalate, a, now)
	})
}

// DecideIssue is the buyer country's operator recording the escalation
// body's decision, which binds the seller's side. Only the buyer's node
// decides.
func (s *Service) DecideIssue(ctx context.Context, id string, in aftersale.DecisionInput) (*aftersale.Issue, error) {
	a := Actor{Role: aftersale.ByOperator}
	return s.changeIssue(ctx, a, id, func(o *Order, is *aftersale.Issue, now time.Time) (Applied, error) {
		if o.Side != SideBuyer {
			return Applied{}, fmt.Errorf("%w: decisions are recorded by the buyer country's node (%s)", aftersale.ErrForbidden, o.BuyerCountry)
		}
		before := *is
		if err := is.Decide(o.IssueView(), aftersale.ByOperator, in, now); err != nil {
			return Applied{}, err
		}
		return s.buyerStep(o, before, is, EventDecide, a, now)
	})
}

// RefundIssue is the marketplace reporting a refund it paid the buyer, with
// the payment reference both sides reconcile with.
func (s *Service) RefundIssue(ctx context.Context, marketplaceID, id string, in aftersale.RefundInput) (*aftersale.Issue, error) {
	a := Actor{Role: aftersale.ByMarketplace, ID: marketplaceID}
	return s.changeIssue(ctx, a, id, func(o *Order, is *aftersale.Issue, now time.Time) (Applied, error) {
		before := *is
		if err := is.AddRefund(o.IssueView(), aftersale.ByMarketplace, in, now); err != nil {
			return Applied{}, err
		}
		return s.buyerStep(o, before, is, EventRefund, a, now)
	})
}

// SweepIssues escalates, on the buyer's node, every issue whose deadline
// passed at now (aftersale.Due): the system acting for the buyer country's
// consumer rules. It returns how many it escalated.
func (s *Service) SweepIssues(ctx context.Context) (int, error) {
	if s.cfg.Catalog.Reconciling() {
		return 0, nil
	}
	now := s.cfg.Now().UTC()
	var due []string
	cursor := ""
	for {
		refs, err := s.cfg.Store.Issues(ctx, func(o *Order, is *aftersale.Issue) bool {
			ok, _ := aftersale.Due(is, now)
			return o.Side == SideBuyer && ok
		}, cursor, 256)
		if err != nil {
			return 0, err
		}
		for _, r := range refs {
			due = append(due, r.Issue.ID)
		}
		if len(refs) < 256 {
			break
		}
		cursor = refs[len(refs)-1].Issue.ID
	}
	n := 0
	a := Actor{Role: aftersale.BySystem}
	for _, id := range due {
		_, err := s.changeIssue(ctx, a, id, func(o *Order, is *aftersale.Issue, now time.Time) (Applied, error) {
			before := *is
			if err := is.Escalate(aftersale.BySystem, now); err != nil {
				return Applied{}, err
			}
			return s.buyerStep(o, before, is, EventEscalate, a, now)
		})
		switch {
		case err == nil:
			n++
			s.log.Info("issue escalated: deadline passed", "issue", id)
		case errors.Is(err, aftersale.ErrTooEarly), errors.Is(err, aftersale.ErrIllegalTransition), errors.Is(err, aftersale.ErrForbidden):
			// Moved on meanwhile (a response arrived).
		default:
			return n, err
		}
	}
	return n, nil
}

// HandleIssue is a node receiving the other side's change of an issue.
// Messages apply in the order's seq order, with its status messages; a
// repeat gets the original receipt.
func (s *Service) HandleIssue(ctx context.Context, from string, m *pb.IssueMessage) ([]byte, error) {
	hash, err := PayloadHash(m)
	if err != nil {
		return nil, err
	}
	key := InboxKey(from, m.OrderId, KindIssue, m.Seq)
	if rec, err := s.repeat(ctx, key, hash, m.OrderId); rec != nil || err != nil {
		return rec, err
	}
	if !aftersale.ValidID(m.IssueId) && m.IssueId != "" {
		return nil, fmt.Errorf("bad issue message: issue id %q", m.IssueId)
	}
	now := s.cfg.Now().UTC()
	var summary string
	o, receipt, err := s.cfg.Store.ApplyReceived(ctx, key, hash, m.OrderId, func(o *Order) (Applied, error) {
		if o.peer() != from {
			return Applied{}, fmt.Errorf("%w: order %s is not shared with %s", ErrNotFound, o.ID, from)
		}
		if m.Seq != o.InSeq+1 {
			return Applied{}, fmt.Errorf("out of order: order %s expects message %d, got %d", o.ID, o.InSeq+1, m.Seq)
		}
		o.InSeq = m.Seq
		var ap Applied
		var result, reason, status string
		if o.Side == SideSeller {
			result, reason, status = s.adoptIssue(o, m, now)
		} else {
			result, reason, status, ap = s.applyResponse(o, m, now)
		}
		o.collectRefunds()
		receipt, err := s.cfg.Sign(&pb.Receipt{OrderId: o.ID, Kind: KindIssue, Seq: m.Seq, PayloadHash: hash, Receiver: s.cfg.Country,
			ReceivedUnixMs: now.UnixMilli(), Result: result, Reason: reason, Status: status})
		if err != nil {
			return Applied{}, err
		}
		summary = result
		ap.Receipt = receipt
		ap.Audit = append(receivedIssueEntries(from, o.ID, m, hash, receipt, result), ap.Audit...)
		return ap, nil
	})
	if errors.Is(err, ErrConflict) {
		return s.repeat(ctx, key, hash, m.OrderId)
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("issue message received", "order", o.ID, "issue", m.IssueId, "event", m.Event, "from", from, "result", summary)
	if summary != ResultRefused {
		s.Wake()
	}
	return receipt, nil
}

// adoptIssue is the seller's node taking the buyer's node's issue as it now
// is, after checking it against the order. A message it cannot take is
// refused (the receipt says why) so the order's later messages still flow.
func (s *Service) adoptIssue(o *Order, m *pb.IssueMessage, now time.Time) (result, reason, status string) {
	if len(m.Issue) == 0 {
		return ResultRefused, "an issue message from the buyer's node carries the issue", ""
	}
	is, err := aftersale.DecodeIssue(m.Issue, o.IssueView())
	if err != nil {
		return ResultRefused, err.Error(), ""
	}
	if is.ID != m.IssueId {
		return ResultRefused, fmt.Sprintf("the message is about issue %s, its issue is %s", m.IssueId, is.ID), ""
	}
	held := o.issue(is.ID)
	switch {
	case held == nil && m.Event != EventOpen:
		return ResultRefused, fmt.Sprintf("issue %s is not held here", is.ID), ""
	case held == nil && len(o.Issues) >= MaxIssues:
		return ResultRefused, fmt.Sprintf("order %s has %d issues, the most one order may have", o.ID, len(o.Issues)), ""
	case held == nil:
		o.Issues = append(o.Issues, is)
		o.UpdatedAt = now
		return ResultReceived, "", string(is.Status)
	case held.Category != is.Category || held.RemedyRequested != is.RemedyRequested || !slices.Equal(held.Items, is.Items):
		return ResultRefused, fmt.Sprintf("issue %s changed what it is about (category, remedy requested or items)", is.ID), string(held.Status)
	}
	o.Issues[slices.Index(o.Issues, held)] = is
	o.UpdatedAt = now
	return ResultApplied, "", string(is.Status)
}

// applyResponse is the buyer's node applying the seller's response with
// the issue rules. A response made on another version than the one held
// (both sides acted at once) is applied if the rules still allow it, or
// refused; either way the buyer's node then sends its issue as it is, so
// the seller's node converges on it.
func (s *Service) applyResponse(o *Order, m *pb.IssueMessage, now time.Time) (result, reason, status string, ap Applied) {
	is := o.issue(m.IssueId)
	if is == nil {
		return ResultRefused, fmt.Sprintf("issue %s is not held here", m.IssueId), "", ap
	}
	status = string(is.Status)
	if m.Event != EventRespond || m.Actor != string(aftersale.BySeller) {
		return ResultRefused, fmt.Sprintf("the seller's node may only send responses, not %s by %s", m.Event, m.Actor), status, ap
	}
	held := is.Version()
	in, err := aftersale.DecodeResponse(m.Input)
	if err != nil {
		result, reason = ResultRefused, "response: "+err.Error()
	} else {
		at := time.UnixMilli(m.AtUnixMs).UTC()
		if at.After(now) || at.Before(is.UpdatedAt) {
			at = now // a clock ahead, or behind the issue's last change
		}
		before := *is
		if err := is.Respond(o.IssueView(), aftersale.BySeller, in, at); err != nil {
			result, reason = ResultRefused, err.Error()
		} else {
			result = ResultApplied
			tags := append([]string{"action=" + string(in.Action)}, deadlineTags(&before, is, at)...)
			ap.Audit = append(ap.Audit, stepEntry(o, is, EventRespond, "seller "+o.SellerID, tags...))
		}
	}
	status = string(is.Status)
	if result == ResultRefused || m.BasedOn != held {
		row, err := s.snapshotRow(o, is, EventSync, aftersale.BySystem, now, is.Version())
		if err != nil {
			s.log.Error("issue: cannot send the buyer's node's issue back", "issue", is.ID, "err", err)
			return result, reason, status, ap
		}
		ap.Rows = append(ap.Rows, row)
	}
	return result, reason, status, ap
}

// recoverableIssues are o's issues as this node sends them to a restored
// peer (RecoveredOrder.issues): projected by this node's policy for the
// purpose "issue", each a recorded crossing; an issue the policy no longer
// lets go is left out, and that refusal recorded.
func (s *Service) recoverableIssues(pol *policy.Policy, peer string, o *Order) ([][]byte, []*audit.Entry) {
	var out [][]byte
	var entries []*audit.Entry
	for _, is := range o.Issues {
		if pol == nil {
			break
		}
		msg, t, err := pol.Project(&policy.IssueEvent{OrderID: o.ID, Event: EventSync, Actor: string(aftersale.BySystem), Issue: is, Consent: o.Consent}, peer, policy.PurposeIssue)
		if err != nil {
			entries = append(entries, &audit.Entry{Kind: audit.Rejection, Peer: peer, Purpose: string(policy.PurposeIssue), Records: []string{is.ID, o.ID},
				Count: 1, Reason: "recovery: the issue is not sent again: " + err.Error()})
			continue
		}
		raw := msg.(*pb.IssueMessage).Issue
		out = append(out, raw)
		entries = append(entries, &audit.Entry{Kind: audit.IssueEgress, Peer: peer, Purpose: string(policy.PurposeIssue), Records: []string{is.ID, o.ID},
			Count: 1, Fields: t.Fields, PolicyVersion: t.Version, Rules: t.Rules, LegalBasis: t.LegalBasis, PayloadHash: audit.HashHex(raw),
			Reason: "recovery: sent again after " + peer + "'s restore"})
	}
	return out, entries
}

// adoptRecovered takes a peer's copies of o's issues after this node's
// restore: an issue it lost, or, from the issue's authority (the buyer's
// node), one it holds at another version; from the seller's node only one
// it holds at an older version. It reports whether o changed, with the
// audit entries of what it took.
func adoptRecovered(o *Order, from string, raws [][]byte) (bool, []*audit.Entry, error) {
	if len(raws) > MaxIssues {
		return false, nil, fmt.Errorf("%w: order %s: %d issues (at most %d)", ErrBadRecovery, o.ID, len(raws), MaxIssues)
	}
	changed := false
	var entries []*audit.Entry
	for _, raw := range raws {
		is, err := aftersale.DecodeIssue(raw, o.IssueView())
		if err != nil {
			return false, nil, fmt.Errorf("%w: order %s: %v", ErrBadRecovery, o.ID, err)
		}
		held := o.issue(is.ID)
		switch {
		case held == nil && len(o.Issues) >= MaxIssues:
			continue
		case held == nil:
			o.Issues = append(o.Issues, is)
		case o.Side == SideSeller && held.Version() != is.Version(), o.Side == SideBuyer && is.Version() > held.Version():
			o.Issues[slices.Index(o.Issues, held)] = is
		default:
			continue
		}
		changed = true
		entries = append(entries, &audit.Entry{Kind: audit.IssueIngress, Peer: from, Purpose: string(policy.PurposeIssue), Records: []string{is.ID, o.ID},
			Count: 1, Fields: issueFields(&pb.IssueMessage{Issue: raw}), PayloadHash: audit.HashHex(raw),
			Reason: "recovery: re-delivered by " + from + " after this node's restore"})
	}
	if changed {
		o.collectRefunds()
	}
	return changed, entries, nil
}
