package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/imtgt/imtgt-node/access"
	"github.com/imtgt/imtgt-node/aftersale"
	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/orders"
	"github.com/imtgt/imtgt-node/store"
)

// Marketplaces creates and lists marketplaces.
type Marketplaces interface {
	CreateMarketplace(ctx context.Context, m store.Marketplace, tokenHash string, p access.Principal) error
	Marketplaces(ctx context.Context) ([]store.Marketplace, error)
}

func (s *Server) createMarketplace(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	id, name, token, err := s.createTokenHolder(r, p, access.Marketplace, "mkt_",
		func(ctx context.Context, id, name string, now time.Time, hash string, holder access.Principal) error {
			return s.cfg.Marketplaces.CreateMarketplace(ctx, store.Marketplace{ID: id, Name: name, CreatedAt: now}, hash, holder)
		})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "name": name, "token": token})
	return nil
}

// createTokenHolder is the part createMarketplace and createAuditor
// share. It reads a body holding only a name (required, at most 200
// characters), gives the new holder of role the ID prefix+ULID and a
// token, stores it with create (given the token's hash and the principal
// it stands for), then logs and records the act. It returns the ID, the
// name and the token for the response.
func (s *Server) createTokenHolder(r *http.Request, p *access.Principal, role access.Role, prefix string,
	create func(ctx context.Context, id, name string, now time.Time, hash string, holder access.Principal) error,
) (id, name, token string, err error) {
	var req struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return "", "", "", err
	}
	if strings.TrimSpace(req.Name) == "" || len(req.Name) > 200 {
		he := errorf(http.StatusUnprocessableEntity, "required", "name is required (at most 200 characters)")
		he.Field = "name"
		return "", "", "", he
	}
	now := time.Now().UTC()
	id = prefix + ulid.Make().String()
	token, hash, err := access.NewToken(role)
	if err != nil {
		return "", "", "", err
	}
	if err := create(r.Context(), id, req.Name, now, hash, access.Principal{Role: role, Subject: id, CreatedAt: now}); err != nil {
		return "", "", "", err
	}
	s.log.Info(string(role)+" created", string(role), id)
	s.record(r, tokenEntry(role, id, actor(p, "")))
	return id, req.Name, token, nil
}

func (s *Server) listMarketplaces(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	ms, err := s.cfg.Marketplaces.Marketplaces(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": ms})
	return nil
}

type orderItemView struct {
	ListingID string     `json:"listing_id"`
	Title     string     `json:"title"`
	HSCode    string     `json:"hs_code"`
	Quantity  int64      `json:"quantity"`
	UnitPrice money.Wire `json:"unit_price"`
}

type quoteLineView struct {
	Kind   string     `json:"kind"`
	Rule   string     `json:"rule"`
	Name   string     `json:"name"`
	Rate   string     `json:"rate"`
	Amount money.Wire `json:"amount"`
	// ListingID names the item of the line; absent for the consignment.
	ListingID string `json:"listing_id,omitempty"`
}

type orderQuoteView struct {
	ItemTotal     money.Wire      `json:"item_total"`
	DutiesTotal   money.Wire      `json:"duties_total"`
	TaxesTotal    money.Wire      `json:"taxes_total"`
	LandedTotal   money.Wire      `json:"landed_total"`
	Lines         []quoteLineView `json:"lines"`
	RatesDate     string          `json:"rates_date"`
	PolicyVersion uint64          `json:"policy_version"`
}

// orderIssueRef names one issue of an order (GET /v1/issues/{id} has it
// whole).
type orderIssueRef struct {
	ID       string             `json:"id"`
	Status   aftersale.Status   `json:"status"`
	Category aftersale.Category `json:"category"`
}

type orderView struct {
	ID             string          `json:"id"`
	Status         orders.Status   `json:"status"`
	Side           orders.Side     `json:"side"`
	MarketplaceID  string          `json:"marketplace_id,omitempty"`
	BuyerCountry   string          `json:"buyer_country"`
	SellerCountry  string          `json:"seller_country"`
	SellerID       string          `json:"seller_id"`
	Items          []orderItemView `json:"items"`
	Quote          orderQuoteView  `json:"quote"`
	Consent        bool            `json:"consent"`
	LegalBasis     string          `json:"legal_basis,omitempty"`
	TransferRules  []string        `json:"transfer_rules,omitempty"`
	Reason         string          `json:"reason,omitempty"`
	Tracking       string          `json:"tracking,omitempty"`
	History        []orders.Event  `json:"history"`
	Delivered      bool            `json:"handoff_receipt"`
	Buyer          *orders.Buyer   `json:"buyer,omitempty"`     // buyer's node, to the marketplace and operator
	Recipient      *orders.Buyer   `json:"recipient,omitempty"` // seller's node, to the seller and operator
	PersonalErased *time.Time      `json:"personal_data_erased_at,omitempty"`
	// Refunds are those the marketplace reported for the order's issues,
	// the same on both nodes; Issues name the order's issues.
	Refunds   []aftersale.Refund `json:"refunds"`
	Issues    []orderIssueRef    `json:"issues"`
	CreatedAt time.Time          `json:"created_at"`
	UpdatedAt time.Time          `json:"updated_at"`
}

func wire(a money.Amount) money.Wire {
	if a.Currency == "" {
		return money.Wire{Amount: "0", Currency: ""}
	}
	return a.ToWire()
}

// viewOrder builds an order's JSON view. Callers have checked mayView:
// the caller may see the personal data this side holds.
func (s *Server) viewOrder(o *orders.Order) (orderView, error) {
	v := orderView{ID: o.ID, Status: o.Status, Side: o.Side, MarketplaceID: o.MarketplaceID, BuyerCountry: o.BuyerCountry,
		SellerCountry: o.SellerCountry, SellerID: o.SellerID, Consent: o.Consent, LegalBasis: o.LegalBasis, TransferRules: o.TransferRules,
		Reason: o.Reason, Tracking: o.Tracking, History: o.History, Delivered: len(o.Receipt) > 0, PersonalErased: o.ErasedAt,
		CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt, Items: []orderItemView{},
		Refunds: append([]aftersale.Refund{}, o.Refunds...), Issues: []orderIssueRef{}}
	for _, is := range o.Issues {
		v.Issues = append(v.Issues, orderIssueRef{ID: is.ID, Status: is.Status, Category: is.Category})
	}
	for _, it := range o.Items {
		v.Items = append(v.Items, orderItemView{ListingID: it.ListingID, Title: it.Title, HSCode: it.HSCode, Quantity: it.Quantity, UnitPrice: wire(it.UnitPrice)})
	}
	q := o.Quote
	v.Quote = orderQuoteView{ItemTotal: wire(q.ItemTotal), DutiesTotal: wire(q.DutiesTotal), TaxesTotal: wire(q.TaxesTotal),
		LandedTotal: wire(q.LandedTotal), RatesDate: q.RatesDate, PolicyVersion: q.PolicyVersion, Lines: []quoteLineView{}}
	for _, l := range q.Lines {
		v.Quote.Lines = append(v.Quote.Lines, quoteLineView{Kind: l.Kind, Rule: l.Rule, Name: l.Name, Rate: l.Rate, Amount: wire(l.Amount), ListingID: l.ListingID})
	}
	if len(o.Sealed) > 0 {
		opened, err := s.cfg.Orders.Open(o)
		if err != nil {
			return v, err
		}
		b := opened.Personal.Buyer
		if o.Side == orders.SideBuyer {
			v.Buyer = &b
		} else {
			v.Recipient = &b
		}
	}
	return v, nil
}

// mayView says whether p may see order o, and its personal data.
func mayView(p *access.Principal, o *orders.Order) bool {
	switch p.Role {
	case access.Operator:
		return true
	case access.Marketplace:
		return o.Side == orders.SideBuyer && o.MarketplaceID == p.Subject
	case access.Seller:
		return o.Side == orders.SideSeller && o.SellerID == p.Subject
	}
	return false
}

func (s *Server) placeOrder(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	key := strings.TrimSpace(r.Header.Get("Idempotency-Key"))
	if key == "" || len(key) > 200 {
		he := errorf(http.StatusBadRequest, "idempotency_key", "the Idempotency-Key header is required (at most 200 characters): retrying with the same key never places a second order")
		he.Field = "Idempotency-Key"
		return he
	}
	var req orders.PlaceRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	os, replayed, err := s.cfg.Orders.Place(r.Context(), p.Subject, key, req)
	if err != nil {
		return err
	}
	views, err := s.viewOrders(os)
	if err != nil {
		return err
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	// The first order's fields at the top level (one seller: the order);
	// every order of the split in "orders".
	out := map[string]any{"id": views[0].ID, "status": views[0].Status, "seller_country": views[0].SellerCountry,
		"items": views[0].Items, "quote": views[0].Quote, "orders": views}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Server) getOrder(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	o, err := s.cfg.Orders.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !mayView(p, o) {
		return errorf(http.StatusNotFound, "not_found", "order %s not found", o.ID)
	}
	return s.writeOrder(w, o)
}

func (s *Server) listOrders(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	limit, cursor, err := pageParams(r)
	if err != nil {
		return err
	}
	status := orders.Status(r.URL.Query().Get("status"))
	os, next, err := s.cfg.Orders.List(r.Context(), func(o *orders.Order) bool {
		return mayView(p, o) && (status == "" || o.Status == status)
	}, cursor, limit)
	if err != nil {
		return err
	}
	views, err := s.viewOrders(os)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": views, "next_cursor": next})
	return nil
}

func (s *Server) cancelOrder(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	var req struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
	}
	o, err := s.cfg.Orders.Cancel(r.Context(), p.Subject, r.PathValue("id"), req.Reason)
	if err != nil {
		return err
	}
	return s.writeOrder(w, o)
}

func (s *Server) transitionOrder(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	var req struct {
		To       orders.Status `json:"to"`
		Reason   string        `json:"reason"`
		Tracking string        `json:"tracking"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if !slices.Contains(orders.SellerTransitions, req.To) {
		he := errorf(http.StatusUnprocessableEntity, "bad_status", "to must be one of accepted, rejected, packed, shipped, delivered, cancelled")
		he.Field = "to"
		return he
	}
	o, err := s.cfg.Orders.Transition(r.Context(), p.Subject, r.PathValue("id"), req.To, req.Reason, req.Tracking)
	if err != nil {
		return err
	}
	return s.writeOrder(w, o)
}

func (s *Server) outbox(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	rows, err := s.cfg.Orders.Backlog(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": rows})
	return nil
}

// orderError maps the order errors that need more than a status.
func orderError(err error) *httpError {
	var te *orders.TransitionError
	var re *orders.RuleError
	switch {
	case errors.As(err, &te):
		he := errorf(http.StatusConflict, "illegal_transition", "%s: the order is %s", err.Error(), te.From)
		he.Field = "to"
		return he
	case errors.As(err, &re):
		he := errorf(http.StatusUnprocessableEntity, "policy_refused", "%s", re.Msg)
		he.Field = re.Field
		return he
	case errors.Is(err, orders.ErrIdempotency):
		he := errorf(http.StatusConflict, "idempotency_key_reused", "%s", err.Error())
		he.Field = "Idempotency-Key"
		return he
	case errors.Is(err, orders.ErrNotFound):
		return errorf(http.StatusNotFound, "not_found", "%s", err.Error())
	}
	return nil
}

func (s *Server) viewOrders(os []*orders.Order) ([]orderView, error) {
	views := make([]orderView, 0, len(os))
	for _, o := range os {
		v, err := s.viewOrder(o)
		if err != nil {
			return nil, err
		}
		views = append(views, v)
	}
	return views, nil
}

func (s *Server) writeOrder(w http.ResponseWriter, o *orders.Order) error {
	v, err := s.viewOrder(o)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
