package orders

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/money"
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
// node in country from. It answers with a signed receipt; a repeated
// delivery gets the original receipt, the same order ID with other
// content is refused (ErrConflict).
func (s *Service) HandleHandoff(ctx context.Context, from string, h *pb.OrderHandoff) ([]byte, error) {
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
	key := InboxKey(from, h.OrderId, KindHandoff, 1)
	if rec, err := s.repeat(ctx, key, hash, h.OrderId); rec != nil || err != nil {
		return rec, err
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
	var receipt []byte
	var changed []*catalog.Listing
	err = s.cfg.Catalog.Exclusive(func() error {
		result, reason := ResultReceived, ""
		changed = nil
		for _, it := range o.Items {
			l, ok := s.cfg.Catalog.Get(it.ListingID)
			switch {
			case !ok || l.Origin != s.cfg.Country:
				result, reason = ResultRejected, fmt.Sprintf("listing %s no longer exists", it.ListingID)
			case l.SellerID != o.SellerID:
				result, reason = ResultRejected, fmt.Sprintf("listing %s is not seller %s's", it.ListingID, o.SellerID)
			case it.Quantity < 1 || it.Quantity > l.Quantity:
				result, reason = ResultRejected, fmt.Sprintf("out of stock: listing %s has %d, the order asks %d", it.ListingID, l.Quantity, it.Quantity)
			default:
				n := *l
				n.Quantity -= it.Quantity
				n.Version++
				n.UpdatedAt = now
				changed = append(changed, &n)
				continue
			}
			break
		}
		if result == ResultRejected {
			changed = nil
			_ = o.transition(Rejected, now, "system", reason, "")
		} else {
			_ = o.transition(Received, now, "system", "", "")
		}
		var err error
		receipt, err = s.cfg.Sign(&pb.Receipt{OrderId: o.ID, Kind: KindHandoff, Seq: 1, PayloadHash: hash, Receiver: s.cfg.Country,
			ReceivedUnixMs: now.UnixMilli(), Result: result, Reason: reason, Status: string(o.Status)})
		if err != nil {
			return err
		}
		o.Receipt = receipt
		if err := s.cfg.Store.ReceiveHandoff(ctx, key, InboxEntry{Hash: hash, Receipt: receipt}, o, changed, s.cfg.Country, s.cfg.Catalog.Seal()); err != nil {
			return err
		}
		// Index the new stock before the next handoff reads it.
		if len(changed) > 0 {
			if err := s.cfg.Catalog.Indexed(changed...); err != nil {
				s.log.Error("index after stock change", "order", o.ID, "err", err)
			}
		}
		return nil
	})
	if errors.Is(err, ErrConflict) {
		// A concurrent delivery of the same message won the race…
		if rec, err := s.repeat(ctx, key, hash, h.OrderId); rec != nil || err != nil {
			return rec, err
		}
		// …or another member's node sent an order ID this node holds.
		s.metrics.conflicts.Inc()
		s.log.Warn("refused a handoff: the order ID is taken", "order", h.OrderId, "from", from)
		return nil, fmt.Errorf("%w: order %s exists", ErrConflict, h.OrderId)
	}
	if err != nil {
		return nil, err
	}
	s.metrics.received.WithLabelValues(string(o.Status)).Inc()
	s.log.Info("order received", "order", o.ID, "from", from, "status", o.Status)
	return receipt, nil
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
		return nil, fmt.Errorf("%w: order %s", ErrConflict, orderID)
	}
	s.metrics.duplicates.Inc()
	return e.Receipt, nil
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
	o, receipt, err := s.cfg.Store.ApplyReceived(ctx, key, hash, st.OrderId, func(o *Order) ([]OutboxRow, []byte, error) {
		other := o.SellerCountry
		if o.Side == SideSeller {
			other = o.BuyerCountry
		}
		if other != from {
			return nil, nil, fmt.Errorf("%w: order %s is not shared with %s", ErrNotFound, o.ID, from)
		}
		if st.Seq != o.InSeq+1 {
			return nil, nil, fmt.Errorf("out of order: order %s expects message %d, got %d", o.ID, o.InSeq+1, st.Seq)
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
			if err := o.transition(Cancelled, now, "marketplace", st.Reason, ""); err != nil {
				result, reason = ResultRefused, fmt.Sprintf("cannot cancel an order that is %s", o.Status)
			}
		}
		receipt, err := s.cfg.Sign(&pb.Receipt{OrderId: o.ID, Kind: KindStatus, Seq: st.Seq, PayloadHash: hash, Receiver: s.cfg.Country,
			ReceivedUnixMs: now.UnixMilli(), Result: result, Reason: reason, Status: string(o.Status)})
		return nil, receipt, err
	})
	if errors.Is(err, ErrConflict) {
		return s.repeat(ctx, key, hash, st.OrderId)
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("order status received", "order", o.ID, "from", from, "status", o.Status)
	return receipt, nil
}
