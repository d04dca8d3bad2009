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
	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/policy"
)

// Receipt results.
const (
	ResultReceived = "received"
	ResultRejected = "rejected"
	ResultApplied  = "applied"
	ResultRefused  = "refused"
)

// PayloadHash is the SHA-256 of a message's deterministic encoding, the
// content half of the inbox key.
func PayloadHash(m proto.Message) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(b)
	return h[:], nil
}

// HandleHandoff is the seller's node receiving an order from the buyer's
// node in country from: HandleHandoffs for one handoff.
func (s *Service) HandleHandoff(ctx context.Context, from string, h *pb.OrderHandoff) ([]byte, error) {
	receipts, errs := s.HandleHandoffs(ctx, from, []*pb.OrderHandoff{h})
	return receipts[0], errs[0]
}

// incoming is a handoff checked and turned into the order it creates.
type incoming struct {
	i    int // its place in the batch
	h    *pb.OrderHandoff
	key  string
	hash []byte
	o    *Order // as received: Submitted, before the stock check
	// policy is the buyer country's policy the quote names (nil: no
	// check), with which receive prices the order again.
	policy *policy.Policy
}

// HandleHandoffs is the seller's node receiving orders from the buyer's
// node in country from. Each handoff gets a signed receipt: a repeated
// delivery gets the original receipt, the same order ID with other
// content is refused (ErrConflict), and a malformed one gets an error.
//
// The batch is one group: one catalog lock, one transaction and one
// fsync for all its new orders, and one catalog record per listing whose
// stock they change, however many orders it sold. That grouping is what
// makes thousands of orders a second possible on a small machine; each
// order is still decided, stored and acknowledged on its own.
func (s *Service) HandleHandoffs(ctx context.Context, from string, hs []*pb.OrderHandoff) ([][]byte, []error) {
	receipts, errs := make([][]byte, len(hs)), make([]error, len(hs))
	if s.cfg.Catalog.Reconciling() {
		// New orders take stock, which publishes catalog records: not
		// before the node has taken back its own log. The buyer's node
		// keeps them in its outbox and retries.
		for i := range errs {
			errs[i] = catalog.ErrReconciling
		}
		return receipts, errs
	}
	var todo []*incoming
	byKey := map[string]*incoming{} // first of each inbox key in the batch
	var dups []*incoming
	for i, h := range hs {
		in, err := s.incoming(from, h)
		if err != nil {
			errs[i] = err
			continue
		}
		in.i = i
		if rec, err := s.repeat(ctx, in.key, in.hash, h.OrderId); rec != nil || err != nil {
			receipts[i], errs[i] = rec, err
			continue
		}
		if _, ok := byKey[in.key]; ok {
			dups = append(dups, in)
			continue
		}
		if in.policy, err = s.buyerPolicy(from, h); err != nil {
			if _, gerr := s.cfg.Store.Order(ctx, h.OrderId); gerr == nil {
				// The ID is taken (receive would refuse it): that, not the
				// policy, is what the sender must hear.
				s.metrics.conflicts.Inc()
				s.rejected(ctx, from, h.OrderId, in.hash, "conflict: the order ID is taken")
				err = fmt.Errorf("%w: order %s exists", ErrConflict, h.OrderId)
			}
			errs[i] = err
			continue
		}
		byKey[in.key] = in
		todo = append(todo, in)
	}
	for stale := 0; len(todo) > 0; {
		err := s.receive(ctx, from, todo, receipts)
		if errors.Is(err, catalog.ErrStale) && stale < staleRetries {
			// Another replica changed a listing these orders take stock
			// from: read the listings again and decide again.
			stale++
			if err = s.cfg.Catalog.Refresh(ctx, stockIDs(todo)...); err == nil {
				continue
			}
		}
		var ce *ConflictError
		if errors.As(err, &ce) {
			in := todo[ce.Index]
			rec, err := s.repeat(ctx, in.key, in.hash, in.h.OrderId)
			if rec == nil && err == nil {
				// Another member's node sent an order ID this node holds.
				s.metrics.conflicts.Inc()
				s.log.Warn("refused a handoff: the order ID is taken", "order", in.h.OrderId, "from", from)
				s.rejected(ctx, from, in.h.OrderId, in.hash, "conflict: the order ID is taken")
				err = fmt.Errorf("%w: order %s exists", ErrConflict, in.h.OrderId)
			}
			receipts[in.i], errs[in.i] = rec, err
			todo = slices.Delete(todo, ce.Index, ce.Index+1)
			continue
		}
		if err != nil {
			for _, in := range todo {
				receipts[in.i], errs[in.i] = nil, err
			}
		}
		break
	}
	// The same message twice in one batch: the second gets the first's
	// answer; the same order with other content is a conflict.
	for _, in := range dups {
		first := byKey[in.key]
		if string(first.hash) != string(in.hash) {
			s.metrics.conflicts.Inc()
			errs[in.i] = fmt.Errorf("%w: order %s", ErrConflict, in.h.OrderId)
			continue
		}
		s.metrics.duplicates.Inc()
		receipts[in.i], errs[in.i] = receipts[first.i], errs[first.i]
	}
	return receipts, errs
}

// incoming checks a handoff and builds the order it creates, its buyer
// fields sealed.
func (s *Service) incoming(from string, h *pb.OrderHandoff) (*incoming, error) {
	if !strings.HasPrefix(h.OrderId, "ord_") || len(h.OrderId) > 64 || h.BuyerCountry != from {
		return nil, fmt.Errorf("bad handoff: order id %q from %s for buyer country %q", h.OrderId, from, h.BuyerCountry)
	}
	if len(h.Items) == 0 || len(h.Items) > MaxItems {
		return nil, fmt.Errorf("bad handoff: order %s has %d items (1 to %d)", h.OrderId, len(h.Items), MaxItems)
	}
	hash, err := PayloadHash(h)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	o := &Order{ID: h.OrderId, Side: SideSeller, BuyerCountry: from, SellerCountry: s.cfg.Country, SellerID: h.SellerId,
		Consent: h.GetConsent().GetCrossBorderTransfer(), LegalBasis: h.LegalBasis, TransferRules: h.Rules,
		Status: Submitted, CreatedAt: time.UnixMilli(h.CreatedUnixMs).UTC(), UpdatedAt: now,
		History: []Event{{Status: Submitted, At: time.UnixMilli(h.CreatedUnixMs).UTC(), By: "peer"}}}
	if q := h.Quote; q != nil {
		o.Quote = Quote{ItemTotal: amount(q.ItemTotal), DutiesTotal: amount(q.DutiesTotal), TaxesTotal: amount(q.TaxesTotal),
			LandedTotal: amount(q.LandedTotal), RatesDate: q.RatesDate, PolicyVersion: q.PolicyVersion}
	}
	for _, it := range h.Items {
		o.Items = append(o.Items, Item{ListingID: it.ListingId, Title: it.Title, HSCode: it.HsCode, Quantity: it.Quantity, UnitPrice: amount(it.UnitPrice)})
	}
	if r := h.Recipient; r != nil {
		// Only what crossed is kept: the buyer's e-mail never arrives.
		if err := s.seal(o, &Personal{Buyer: Buyer{Name: r.Name, Phone: r.Phone, Address: Address{Line1: r.Line1, City: r.City,
			Region: r.Region, Postcode: r.Postcode, Country: r.Country}}}); err != nil {
			return nil, err
		}
	}
	return &incoming{h: h, key: InboxKey(from, h.OrderId, KindHandoff, 1), hash: hash, o: o}, nil
}

// staleRetries bounds how often a group is decided again after
// catalog.ErrStale.
const staleRetries = 5

// stockIDs lists the listings a group of handoffs takes stock from.
func stockIDs(todo []*incoming) []string {
	var ids []string
	for _, in := range todo {
		for _, it := range in.o.Items {
			if !slices.Contains(ids, it.ListingID) {
				ids = append(ids, it.ListingID)
			}
		}
	}
	return ids
}

// receive decides, signs and stores a group of new handoffs under the
// catalog lock, filling in their receipts. A *ConflictError names a
// handoff whose key or ID exists; nothing was stored then.
func (s *Service) receive(ctx context.Context, from string, todo []*incoming, receipts [][]byte) error {
	return s.cfg.Catalog.Exclusive(func() error {
		now := s.cfg.Now().UTC()
		stock := map[string]*catalog.Listing{} // listings this group changed, as changed so far
		var changed []*catalog.Listing         // the same, in first-change order
		current := func(id string) (*catalog.Listing, bool) {
			if l, ok := stock[id]; ok {
				return l, true
			}
			return s.cfg.Catalog.Get(id)
		}
		writes := make([]ReceivedHandoff, len(todo))
		for k, in := range todo {
			o := *in.o
			o.History = slices.Clone(in.o.History)
			result, reason := ResultReceived, ""
			wants := map[string]int64{} // listing → quantity this order takes
			for _, it := range o.Items {
				l, ok := current(it.ListingID)
				wants[it.ListingID] += it.Quantity
				switch {
				case !ok || l.Origin != s.cfg.Country:
					result, reason = ResultRejected, fmt.Sprintf("listing %s no longer exists", it.ListingID)
				case l.SellerID != o.SellerID:
					result, reason = ResultRejected, fmt.Sprintf("listing %s is not seller %s's", it.ListingID, o.SellerID)
				case it.Quantity < 1 || wants[it.ListingID] > l.Quantity:
					result, reason = ResultRejected, fmt.Sprintf("out of stock: listing %s has %d, the order asks %d", it.ListingID, l.Quantity, wants[it.ListingID])
				default:
					continue
				}
				break
			}
			if result == ResultReceived && in.policy != nil {
				if why := s.checkQuote(in.policy, in.h, current); why != "" {
					result, reason = ResultRejected, why
				}
			}
			if result == ResultRejected {
				_ = o.transition(Rejected, now, "system", reason, "")
			} else {
				_ = o.transition(Received, now, "system", "", "")
				for id, q := range wants {
					l, _ := current(id)
					if _, mine := stock[id]; !mine {
						n := *l
						n.Version++
						n.UpdatedAt = now
						l = &n
						stock[id] = l
						changed = append(changed, l)
					}
					l.Quantity -= q
				}
			}
			receipt, err := s.cfg.Sign(&pb.Receipt{OrderId: o.ID, Kind: KindHandoff, Seq: 1, PayloadHash: in.hash, Receiver: s.cfg.Country,
				ReceivedUnixMs: now.UnixMilli(), Result: result, Reason: reason, Status: string(o.Status)})
			if err != nil {
				return err
			}
			o.Receipt = receipt
			entries := receivedEntries(KindHandoff, from, o.ID, in.hash, receipt, result, handoffFields(in.h), in.h.Rules, in.h.LegalBasis)
			if strings.HasPrefix(reason, "quote_mismatch") || strings.HasPrefix(reason, "policy_refused") {
				// What the buyer's node claimed and this node refused is
				// evidence too, with the order that records it.
				entries = append(entries, &audit.Entry{Kind: audit.Rejection, Peer: from, Records: []string{o.ID}, PayloadHash: hexOf(in.hash), Reason: reason})
				s.log.Warn("refused a handoff: its price is not what this node computes", "order", o.ID, "from", from, "reason", reason)
			}
			writes[k] = ReceivedHandoff{Key: in.key, Entry: InboxEntry{Hash: in.hash, Receipt: receipt}, Order: &o, Audit: entries}
		}
		if err := s.cfg.Store.ReceiveHandoffs(ctx, writes, changed, s.cfg.Country, s.cfg.Catalog.Seal()); err != nil {
			return err
		}
		// Index the new stock before the next group reads it.
		if len(changed) > 0 {
			if err := s.cfg.Catalog.Indexed(changed...); err != nil {
				s.log.Error("index after stock change", "orders", len(todo), "err", err)
			}
		}
		for k, in := range todo {
			o := writes[k].Order
			receipts[in.i] = o.Receipt
			s.metrics.received.WithLabelValues(string(o.Status)).Inc()
			s.log.Info("order received", "order", o.ID, "from", from, "status", o.Status)
		}
		return nil
	})
}

// repeat returns the stored receipt of a message received before, or
// ErrConflict if the same key came with other content.
func (s *Service) repeat(ctx context.Context, key string, hash []byte, orderID string) ([]byte, error) {
	e, err := s.cfg.Store.Inbox(ctx, key)
	if err != nil || e == nil {
		return nil, err
	}
	if string(e.Hash) != string(hash) {
		s.metrics.conflicts.Inc()
		s.log.Warn("refused a message: same order and sequence, different content", "order", orderID)
		origin, _, _ := strings.Cut(key, "\x00")
		s.rejected(ctx, origin, orderID, hash, "conflict: same order and sequence, different content")
		return nil, fmt.Errorf("%w: order %s", ErrConflict, orderID)
	}
	s.metrics.duplicates.Inc()
	return e.Receipt, nil
}

// rejected records a refused order message.
func (s *Service) rejected(ctx context.Context, from, orderID string, hash []byte, reason string) {
	if err := s.cfg.Audit(ctx, &audit.Entry{Kind: audit.Rejection, Peer: from, Records: []string{orderID}, PayloadHash: hexOf(hash), Reason: reason}); err != nil {
		s.log.Error("audit a refused order message", "order", orderID, "err", err)
	}
}

func amount(m *pb.Money) money.Amount {
	if m == nil {
		return money.Amount{}
	}
	return money.Amount{Minor: m.Minor, Currency: m.Currency}
}

// HandleStatus is a node receiving the other side's state change of an
// order: the seller's progress on the buyer's node, or the marketplace's
// cancellation on the seller's node. Messages apply in seq order.
func (s *Service) HandleStatus(ctx context.Context, from string, st *pb.OrderStatus) ([]byte, error) {
	hash, err := PayloadHash(st)
	if err != nil {
		return nil, err
	}
	key := InboxKey(from, st.OrderId, KindStatus, st.Seq)
	if rec, err := s.repeat(ctx, key, hash, st.OrderId); rec != nil || err != nil {
		return rec, err
	}
	to := Status(st.Status)
	if !ValidStatus(to) {
		return nil, fmt.Errorf("bad status %q", st.Status)
	}
	now := s.cfg.Now().UTC()
	var back *StockBack
	var gone []string
	fn := func(o *Order) (Applied, error) {
		back, gone = nil, nil
		if o.peer() != from {
			return Applied{}, fmt.Errorf("%w: order %s is not shared with %s", ErrNotFound, o.ID, from)
		}
		if st.Seq != o.InSeq+1 {
			return Applied{}, fmt.Errorf("out of order: order %s expects message %d, got %d", o.ID, o.InSeq+1, st.Seq)
		}
		o.InSeq = st.Seq
		result, reason := ResultApplied, ""
		switch {
		case o.Side == SideBuyer:
			// After receipt the seller's node is the authority: show its
			// state even where the buyer side moved meanwhile.
			if o.Status != to {
				if err := o.transition(to, now, "seller", st.Reason, st.Tracking); err != nil {
					o.Status, o.Reason, o.Tracking, o.UpdatedAt = to, st.Reason, st.Tracking, now
					o.History = append(o.History, Event{Status: to, At: now, By: "seller", Reason: "seller's state: " + st.Reason, Tracking: st.Tracking})
				}
			}
		case to != Cancelled:
			result, reason = ResultRefused, "a buyer's node may only cancel"
		default:
			was := o.Status
			if err := o.transition(Cancelled, now, "marketplace", st.Reason, ""); err != nil {
				result, reason = ResultRefused, fmt.Sprintf("cannot cancel an order that is %s", o.Status)
				break
			}
			if back, gone = s.stockBack(o, was, now); back != nil && s.cfg.Catalog.Reconciling() {
				// Stock given back publishes catalog records: not before
				// the node has taken back its own log. The buyer's node
				// retries.
				return Applied{}, catalog.ErrReconciling
			}
		}
		receipt, err := s.cfg.Sign(&pb.Receipt{OrderId: o.ID, Kind: KindStatus, Seq: st.Seq, PayloadHash: hash, Receiver: s.cfg.Country,
			ReceivedUnixMs: now.UnixMilli(), Result: result, Reason: reason, Status: string(o.Status)})
		if err != nil {
			return Applied{}, err
		}
		return Applied{Receipt: receipt, Audit: receivedEntries(KindStatus, from, o.ID, hash, receipt, result, statusFields(st), nil, ""), Stock: back}, nil
	}
	var o *Order
	var receipt []byte
	if to != Cancelled {
		o, receipt, err = s.cfg.Store.ApplyReceived(ctx, key, hash, st.OrderId, fn)
	} else {
		// A cancellation on the seller's node gives the order's stock back
		// in the same transaction as its inbox entry, decided under the
		// catalog lock as a handoff takes it: a repeat finds the inbox key
		// and gives nothing back twice.
		err = s.cfg.Catalog.Exclusive(func() error {
			for stale := 0; ; stale++ {
				if o, receipt, err = s.cfg.Store.ApplyReceived(ctx, key, hash, st.OrderId, fn); err == nil {
					// Index the stock before the next writer reads it.
					s.indexStockBack(o, back, gone)
				}
				if !errors.Is(err, catalog.ErrStale) || stale == staleRetries {
					return err
				}
				// Another replica changed a listing the order gives back
				// to: read it again and decide again.
				if err := s.cfg.Catalog.Refresh(ctx, listingIDs(back)...); err != nil {
					return err
				}
			}
		})
	}
	if errors.Is(err, ErrConflict) {
		return s.repeat(ctx, key, hash, st.OrderId)
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("order status received", "order", o.ID, "from", from, "status", o.Status)
	return receipt, nil
}
