package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/imtgt/imtgt-node/access"
	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/policy"
)

// Policies is the node's installed policy, as the API needs it.
type Policies interface {
	Policy() (*policy.Policy, []byte)
	InstallPolicy(ctx context.Context, raw []byte) (*policy.Policy, error)
}

type policySummary struct {
	Country   string `json:"country"`
	Version   uint64 `json:"version"`
	IssuedBy  string `json:"issued_by"`
	Effective string `json:"effective"`
	Expires   string `json:"expires"`
	Currency  string `json:"currency"`
	RatesDate string `json:"rates_date"`
	Rules     int    `json:"rules"`
	Signed    bool   `json:"signed"`
}

func summarizePolicy(p *policy.Policy) policySummary {
	rules := len(p.Transfers) + len(p.Retention) + len(p.Imports.Rules) + len(p.Imports.Taxes) + len(p.Exports)
	if p.Imports.Duty.ID != "" {
		rules++
	}
	if p.Imports.MinUnitPrice != nil {
		rules++
	}
	return policySummary{Country: p.Country, Version: p.Version, IssuedBy: p.IssuedBy,
		Effective: p.Effective.UTC().Format(time.RFC3339), Expires: p.Expires.UTC().Format(time.RFC3339),
		Currency: p.Currency, RatesDate: p.Rates.Date, Rules: rules, Signed: p.Signature != nil}
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	p, raw := s.cfg.Policies.Policy()
	writeJSON(w, http.StatusOK, map[string]any{"summary": summarizePolicy(p), "policy": string(raw)})
	return nil
}

func (s *Server) installPolicy(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	var req struct {
		Policy string `json:"policy"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Policy) == "" {
		he := errorf(http.StatusBadRequest, "required", "policy (the signed policy file) is required")
		he.Field = "policy"
		return he
	}
	p, err := s.cfg.Policies.InstallPolicy(r.Context(), []byte(req.Policy))
	if err != nil {
		if errors.Is(err, s.cfg.PolicyRefused) {
			return errorf(http.StatusUnprocessableEntity, "policy_refused", "%s", err.Error())
		}
		return err
	}
	writeJSON(w, http.StatusOK, summarizePolicy(p))
	return nil
}

// importView is how this node's buyers may import a listing.
type importView = policy.Decision

// exportView tells a seller whether its listing is published to peers.
type exportView struct {
	Published bool           `json:"published"`
	Reasons   []catalog.Hold `json:"reasons"`
}

func (s *Server) decide(l *catalog.Listing, now time.Time) *importView {
	if s.cfg.Policies == nil {
		return nil
	}
	p, _ := s.cfg.Policies.Policy()
	d := policy.Evaluate(p, tradeListing(l), now)
	return &d
}

// tradeListing is what the policy judges of a catalog listing.
func tradeListing(l *catalog.Listing) policy.Listing {
	return policy.Listing{ID: l.ID, Origin: l.Origin, HSCode: l.HSCode, UnitPrice: l.Price}
}

type QuoteView struct {
	ListingID     string           `json:"listing_id"`
	Quantity      int64            `json:"quantity"`
	Region        string           `json:"region,omitempty"`
	Orderable     bool             `json:"orderable"`
	Reasons       []policy.Reason  `json:"reasons"`
	Permits       []policy.Permit  `json:"permits"`
	UnitPrice     money.Wire       `json:"unit_price"`
	ItemTotal     money.Wire       `json:"item_total"`
	Duties        []LineView       `json:"duties"`
	Taxes         []LineView       `json:"taxes"`
	LandedTotal   money.Wire       `json:"landed_total"`
	Notes         []policy.Reason  `json:"notes"`
	RatesDate     string           `json:"rates_date"`
	RatesSource   string           `json:"rates_source"`
	PolicyVersion uint64           `json:"policy_version"`
	Listing       *ListingQuoteRef `json:"listing"`
}

type ListingQuoteRef struct {
	Origin string     `json:"origin"`
	Title  string     `json:"title"`
	HSCode string     `json:"hs_code"`
	Price  money.Wire `json:"price"`
}

type LineView struct {
	Rule   string     `json:"rule"`
	Name   string     `json:"name"`
	Rate   string     `json:"rate"`
	Base   money.Wire `json:"base"`
	Amount money.Wire `json:"amount"`
}

func lines(ls []policy.Line) []LineView {
	out := make([]LineView, 0, len(ls))
	for _, l := range ls {
		out = append(out, LineView{Rule: l.Rule, Name: l.Name, Rate: l.Rate, Base: l.Base.ToWire(), Amount: l.Amount.ToWire()})
	}
	return out
}

// Quote builds the quote of a listing for this node's buyers; the CLI's
// "policy explain" prints the same.
func Quote(p *policy.Policy, l *catalog.Listing, quantity int64, region string, now time.Time) (*QuoteView, error) {
	q, err := policy.MakeQuote(p, tradeListing(l), quantity, region, now)
	if err != nil {
		return nil, err
	}
	return &QuoteView{ListingID: l.ID, Quantity: quantity, Region: region, Orderable: q.Orderable, Reasons: q.Reasons, Permits: q.Permits,
		UnitPrice: q.UnitPrice.ToWire(), ItemTotal: q.ItemTotal.ToWire(), Duties: lines(q.Duties), Taxes: lines(q.Taxes),
		LandedTotal: q.LandedTotal.ToWire(), Notes: q.Notes, RatesDate: q.RatesDate, RatesSource: q.RatesSource, PolicyVersion: q.PolicyVersion,
		Listing: &ListingQuoteRef{Origin: l.Origin, Title: l.Title, HSCode: l.HSCode, Price: l.Price.ToWire()}}, nil
}

func (s *Server) quoteListing(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	id := r.PathValue("id")
	l, ok := s.cfg.Catalog.Get(id)
	if !ok {
		return errorf(http.StatusNotFound, "not_found", "listing %s not found", id)
	}
	quantity := int64(1)
	if v := r.URL.Query().Get("quantity"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > catalog.MaxQuantity {
			he := errorf(http.StatusBadRequest, "bad_quantity", "quantity must be a whole number from 1 to %d", catalog.MaxQuantity)
			he.Field = "quantity"
			return he
		}
		quantity = n
	}
	region := strings.ToUpper(r.URL.Query().Get("region"))
	p, _ := s.cfg.Policies.Policy()
	qv, err := Quote(p, l, quantity, region, time.Now())
	if err != nil {
		he := errorf(http.StatusBadRequest, "bad_region", "%v", err)
		he.Field = "region"
		return he
	}
	writeJSON(w, http.StatusOK, qv)
	return nil
}
