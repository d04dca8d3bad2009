package orders

import (
	"errors"
	"fmt"
	"time"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/policy"
)

// The seller's node does not take the buyer's node's word for what an
// order costs: it prices every handoff again from its own listings and the
// buyer country's signed policy of the version the quote names (each
// member's policy travels to every other, /imtgt/policy/1.0.0), and
// rejects one whose prices or quote differ (quote_mismatch, with an audit
// entry) or that the policy does not allow. A forged quote (say, no duty)
// then never becomes an order the seller ships.

// ErrPolicyNotHeld is a handoff priced with a version of the buyer
// country's policy this node does not hold yet: the buyer's node installed
// it and its offer has not arrived. It is not a refusal: the buyer's node
// keeps the handoff in its outbox and retries, and the order is decided
// once the policy came.
var ErrPolicyNotHeld = errors.New("the buyer country's policy version that priced this order has not reached this node yet")

// quoteSlack is how far, in minor units, a total may differ for each of
// the quote's lines: another implementation may round each line once
// differently; anything beyond is a different price.
const quoteSlack = 1

// buyerPolicy returns the buyer country's policy of the version h's quote
// names, or ErrPolicyNotHeld while this node holds only older versions.
// (nil, nil) means no check: no PeerPolicy configured (tests of this
// package alone).
func (s *Service) buyerPolicy(from string, h *pb.OrderHandoff) (*policy.Policy, error) {
	if s.cfg.PeerPolicy == nil {
		return nil, nil
	}
	want := h.GetQuote().GetPolicyVersion()
	p, held, err := s.cfg.PeerPolicy(from, want)
	if err != nil {
		return nil, err
	}
	if p != nil {
		return p, nil
	}
	if want == 0 || want < held {
		// No version named, or an older one than the newest held that
		// this node never stored: the quote cannot be checked, so the
		// order cannot be taken (checkQuote says why).
		return &policy.Policy{Country: from}, nil
	}
	return nil, fmt.Errorf("%w: %s's policy version %d (this node holds %d)", ErrPolicyNotHeld, from, want, held)
}

// checkQuote prices the order again with p and the seller's listings as
// current finds them, and returns why the handoff must be rejected ("" if
// it stands): a rule the policy applies, or quote_mismatch naming what
// differs.
func (s *Service) checkQuote(p *policy.Policy, h *pb.OrderHandoff, current func(string) (*catalog.Listing, bool)) string {
	q := h.GetQuote()
	if p.Version == 0 {
		return fmt.Sprintf("quote_mismatch: the quote names %s's policy version %d, which this node does not hold and cannot price with", h.BuyerCountry, q.GetPolicyVersion())
	}
	items := make([]policy.QuoteItem, 0, len(h.Items))
	for _, it := range h.Items {
		l, ok := current(it.ListingId)
		if !ok {
			return fmt.Sprintf("listing %s no longer exists", it.ListingId)
		}
		got := amount(it.UnitPrice)
		if got != l.Price {
			return fmt.Sprintf("quote_mismatch: items[%s].unit_price is %s; the listing's price is %s", it.ListingId, got, l.Price)
		}
		items = append(items, policy.QuoteItem{Listing: policy.Listing{ID: l.ID, Origin: l.Origin, HSCode: l.HSCode, UnitPrice: l.Price},
			Quantity: it.Quantity})
	}
	// The policy in force when the buyer's node placed the order, as it
	// did: its rules may depend on the date.
	at := time.UnixMilli(h.CreatedUnixMs).UTC()
	pq, err := policy.MakeOrderQuote(p, items, "", at)
	if err != nil {
		return "policy_refused: " + err.Error()
	}
	if !pq.Orderable {
		why := "not orderable"
		if len(pq.Reasons) > 0 {
			why = pq.Reasons[0].Rule + ": " + pq.Reasons[0].Message
		}
		return fmt.Sprintf("policy_refused: %s's policy version %d: %s", h.BuyerCountry, p.Version, why)
	}
	want := quoteOf(pq)
	slack := int64(quoteSlack * max(1, len(want.Lines)))
	for _, f := range []struct {
		name      string
		got, want money.Amount
	}{
		{"item_total", amount(q.GetItemTotal()), want.ItemTotal},
		{"duties_total", amount(q.GetDutiesTotal()), want.DutiesTotal},
		{"taxes_total", amount(q.GetTaxesTotal()), want.TaxesTotal},
		{"landed_total", amount(q.GetLandedTotal()), want.LandedTotal},
	} {
		d := f.got.Minor - f.want.Minor
		if f.got.Currency != f.want.Currency || d > slack || d < -slack {
			return fmt.Sprintf("quote_mismatch: quote.%s is %s; %s's policy version %d gives %s", f.name, f.got, h.BuyerCountry, p.Version, f.want)
		}
	}
	return ""
}
