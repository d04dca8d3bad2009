package orders

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/keys"
	"github.com/imtgt/imtgt-node/policy"
	"github.com/imtgt/imtgt-node/refdata"
	"github.com/imtgt/imtgt-node/validation"
)

// Limits of an order request.
const (
	MaxItems    = 50
	MaxQuantity = 1_000_000
)

// Config wires a Service.
type Config struct {
	Country string
	Store   Store
	Catalog *catalog.Catalog
	Policy  func() *policy.Policy
	Key     *keys.DataKey
	Seal    catalog.SealFunc // signs catalog log records of stock changes
	Sign    func(*pb.Receipt) ([]byte, error)
	// OwnReceipt opens a receipt envelope and checks this node signed it:
	// a buyer's node hands back this node's receipts after a restore.
	OwnReceipt func([]byte) (*pb.Receipt, error)
	// PeerReceipt opens a receipt envelope and checks the node of country
	// signed it.
	PeerReceipt func(raw []byte, country string) (*pb.Receipt, error)
	// PeerPolicy returns version v of country's signed policy if this
	// node holds it, and the newest version it holds (0: none): the
	// seller's node prices each handoff again with the buyer country's
	// policy (quotecheck.go). Nil: handoffs are not priced again.
	PeerPolicy func(country string, v uint64) (*policy.Policy, uint64, error)
	Now        func() time.Time
	Logger     *slog.Logger
	Registry   prometheus.Registerer
	// Audit appends entries that record no stored change (refusals); nil
	// records nothing.
	Audit func(ctx context.Context, es ...*audit.Entry) error
}

// Service is the order side of one node: buyer's and seller's.
type Service struct {
	cfg     Config
	log     *slog.Logger
	wake    chan struct{}
	metrics *metrics
	relay   *relayState
}

// New returns an order service.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Audit == nil {
		cfg.Audit = func(context.Context, ...*audit.Entry) error { return nil }
	}
	return &Service{cfg: cfg, log: cfg.Logger.With("system", "orders"), wake: make(chan struct{}, 1), metrics: newMetrics(cfg.Registry),
		relay: &relayState{seen: map[string]uint64{}, rows: map[string]map[uint64]*OutboxRow{}, busy: map[string]bool{}}}
}

// WithStore returns the service writing through st instead, sharing
// everything else (the relay's state, its wake-up, the metrics): the
// federation leader of a node run as replicas relays and takes handoffs
// through a fenced view of the shared store, so that a deposed leader's
// late write is refused.
func (s *Service) WithStore(st Store) *Service {
	d := *s
	d.cfg.Store = st
	return &d
}

// Wake tells the relay there is something to deliver.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// PlaceRequest is the body of POST /v1/orders.
type PlaceRequest struct {
	Buyer   Buyer `json:"buyer"`
	Consent struct {
		CrossBorderTransfer bool `json:"cross_border_transfer"`
	} `json:"consent"`
	Items []struct {
		ListingID string `json:"listing_id"`
		Quantity  int64  `json:"quantity"`
	} `json:"items"`
}

func (r *PlaceRequest) validate(country string) error {
	b := r.Buyer
	for _, f := range []struct {
		field, value string
		max          int
	}{
		{"buyer.name", b.Name, 200}, {"buyer.phone", b.Phone, 32}, {"buyer.email", b.Email, 254},
		{"buyer.address.line1", b.Address.Line1, 300}, {"buyer.address.city", b.Address.City, 100},
		{"buyer.address.region", b.Address.Region, 16}, {"buyer.address.postcode", b.Address.Postcode, 16},
		{"buyer.address.country", b.Address.Country, 2},
	} {
		if strings.TrimSpace(f.value) == "" {
			return validation.Field(f.field, "required", "%s is required", f.field)
		}
		if !utf8.ValidString(f.value) || utf8.RuneCountInString(f.value) > f.max {
			return validation.Field(f.field, "too_long", "%s must be valid UTF-8 of at most %d characters", f.field, f.max)
		}
	}
	if !strings.Contains(b.Email, "@") {
		return validation.Field("buyer.email", "invalid_email", "buyer.email is not an e-mail address")
	}
	if b.Address.Country != country {
		return validation.Field("buyer.address.country", "wrong_country", "buyer.address.country must be %s: a marketplace orders through its own country's node", country)
	}
	if err := refdata.ValidRegion(country, b.Address.Region); err != nil {
		return validation.Wrap("buyer.address.region", "invalid_region", err)
	}
	if len(r.Items) == 0 || len(r.Items) > MaxItems {
		return validation.Field("items", "count", "an order has 1 to %d items", MaxItems)
	}
	for i, it := range r.Items {
		if it.ListingID == "" {
			return validation.Field(fmt.Sprintf("items[%d].listing_id", i), "required", "listing_id is required")
		}
		if it.Quantity < 1 || it.Quantity > MaxQuantity {
			return validation.Field(fmt.Sprintf("items[%d].quantity", i), "out_of_range", "quantity must be 1 to %d", MaxQuantity)
		}
	}
	return nil
}

// RuleError is a refusal by a policy rule (HTTP 422 citing the rule).
type RuleError struct {
	Err     error
	Field   string
	Reasons []policy.Reason
	Msg     string
}

func (e *RuleError) Error() string { return e.Msg }
func (e *RuleError) Unwrap() error { return e.Err }

func requestHash(r *PlaceRequest) []byte {
	b, _ := json.Marshal(r)
	h := sha256.Sum256(b)
	return h[:]
}

// Place validates and stores a marketplace's order, split into one order
// per seller, each with its outbox row, under the Idempotency-Key. The
// same key and body return the stored orders (replayed = true).
func (s *Service) Place(ctx context.Context, marketplaceID, key string, req PlaceRequest) (out []*Order, replayed bool, err error) {
	if err := req.validate(s.cfg.Country); err != nil {
		return nil, false, err
	}
	// A retry gets what the first request stored, whatever the catalog,
	// stock or policy say now.
	hash := requestHash(&req)
	if stored, ok, err := s.cfg.Store.PlacedOrders(ctx, marketplaceID, key, hash); err != nil || ok {
		return stored, ok, err
	}
	p := s.cfg.Policy()
	now := s.cfg.Now().UTC()
	type group struct {
		seller, country string
		items           []Item
		listings        []*catalog.Listing
	}
	var groups []*group
	byKey := map[string]*group{}
	for i, it := range req.Items {
		field := fmt.Sprintf("items[%d].listing_id", i)
		l, ok := s.cfg.Catalog.Get(it.ListingID)
		if !ok {
			return nil, false, validation.Field(field, "unknown_listing", "listing %s is not in the catalog", it.ListingID)
		}
		if l.Origin == s.cfg.Country {
			return nil, false, validation.Field(field, "domestic", "listing %s is from %s: this node hands off cross-border orders only", l.ID, l.Origin)
		}
		d := policy.Evaluate(p, policy.Listing{Origin: l.Origin, HSCode: l.HSCode, UnitPrice: l.Price}, now)
		if !d.Orderable {
			msg := fmt.Sprintf("listing %s may not be ordered by buyers in %s", l.ID, s.cfg.Country)
			if len(d.Reasons) > 0 {
				msg += fmt.Sprintf(": rule %s: %s", d.Reasons[0].Rule, d.Reasons[0].Message)
			}
			return nil, false, &RuleError{Err: ErrNotOrderable, Field: field, Reasons: d.Reasons, Msg: msg}
		}
		if it.Quantity > l.Quantity {
			return nil, false, validation.Field(fmt.Sprintf("items[%d].quantity", i), "insufficient_stock", "listing %s has %d in stock", l.ID, l.Quantity)
		}
		k := l.Origin + "/" + l.SellerID
		g := byKey[k]
		if g == nil {
			g = &group{seller: l.SellerID, country: l.Origin}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.items = append(g.items, Item{ListingID: l.ID, Title: l.Title, HSCode: l.HSCode, Quantity: it.Quantity, UnitPrice: l.Price})
		g.listings = append(g.listings, l)
	}
	var orders []*Order
	var outbox []OutboxRow
	for _, g := range groups {
		o := &Order{
			ID: "ord_" + ulid.Make().String(), Side: SideBuyer, MarketplaceID: marketplaceID,
			BuyerCountry: s.cfg.Country, SellerCountry: g.country, SellerID: g.seller, Items: g.items,
			Consent: req.Consent.CrossBorderTransfer, Status: Created, CreatedAt: now, UpdatedAt: now,
			History: []Event{{Status: Created, At: now, By: "marketplace"}},
		}
		if o.Consent {
			o.ConsentAt = now
		}
		if o.Quote, err = s.quote(p, g.listings, g.items, now); err != nil {
			return nil, false, err
		}
		h := s.handoffInput(o, req.Buyer)
		msg, t, err := p.Project(h, g.country, policy.PurposeOrderHandoff)
		if err != nil {
			// A crossing the policy refused is evidence too.
			if aerr := s.cfg.Audit(ctx, &audit.Entry{Kind: audit.Rejection, Peer: g.country, Purpose: string(policy.PurposeOrderHandoff),
				Records: []string{o.ID}, Actor: "marketplace " + marketplaceID, Reason: "policy: " + err.Error()}); aerr != nil {
				s.log.Error("audit a refused order", "err", aerr)
			}
			if errors.Is(err, policy.ErrNoConsent) {
				return nil, false, &RuleError{Err: ErrNoLegalBasis, Field: "consent.cross_border_transfer", Msg: err.Error()}
			}
			return nil, false, &RuleError{Err: ErrNoLegalBasis, Msg: err.Error()}
		}
		o.LegalBasis, o.TransferRules = t.LegalBasis, t.Rules
		payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
		if err != nil {
			return nil, false, err
		}
		if err := o.transition(Submitted, now, "system", "", ""); err != nil {
			return nil, false, err
		}
		if err := s.seal(o, &Personal{Buyer: req.Buyer}); err != nil {
			return nil, false, err
		}
		orders = append(orders, o)
		outbox = append(outbox, OutboxRow{Dest: g.country, Kind: KindHandoff, OrderID: o.ID, MsgSeq: 1, Payload: payload, CreatedAt: now, NextRetry: now, Transfer: t})
	}
	stored, replayed, err := s.cfg.Store.PlaceOrders(ctx, marketplaceID, key, hash, orders, outbox)
	if err != nil {
		return nil, false, err
	}
	if !replayed {
		s.metrics.placed.Add(float64(len(stored)))
		s.Wake()
	}
	return stored, replayed, nil
}

func (s *Service) handoffInput(o *Order, b Buyer) *policy.OrderHandoff {
	h := &policy.OrderHandoff{OrderID: o.ID, BuyerCountry: o.BuyerCountry, SellerID: o.SellerID, Consent: o.Consent, ConsentAt: o.ConsentAt, CreatedAt: o.CreatedAt,
		Quote: policy.OrderQuote{ItemTotal: o.Quote.ItemTotal, DutiesTotal: o.Quote.DutiesTotal, TaxesTotal: o.Quote.TaxesTotal,
			LandedTotal: o.Quote.LandedTotal, RatesDate: o.Quote.RatesDate, PolicyVersion: o.Quote.PolicyVersion},
		Buyer: policy.OrderBuyer{Name: b.Name, Email: b.Email, Phone: b.Phone, Line1: b.Address.Line1, City: b.Address.City,
			Region: b.Address.Region, Postcode: b.Address.Postcode, AddressCountry: b.Address.Country}}
	for _, it := range o.Items {
		h.Items = append(h.Items, policy.OrderItem{ListingID: it.ListingID, Title: it.Title, HSCode: it.HSCode, Quantity: it.Quantity, UnitPrice: it.UnitPrice})
	}
	return h
}

// quote is the order's landed cost: one quote for the whole consignment
// (one order is one seller's goods, shipped together), so de minimis and
// tax thresholds are decided on its total, as customs decide them
// (docs/POLICY.md, 5.3).
func (s *Service) quote(p *policy.Policy, ls []*catalog.Listing, items []Item, now time.Time) (Quote, error) {
	qi := make([]policy.QuoteItem, len(ls))
	for i, l := range ls {
		qi[i] = policy.QuoteItem{Listing: policy.Listing{ID: l.ID, Origin: l.Origin, HSCode: l.HSCode, UnitPrice: l.Price}, Quantity: items[i].Quantity}
	}
	pq, err := policy.MakeOrderQuote(p, qi, "", now)
	if err != nil {
		return Quote{}, err
	}
	return quoteOf(pq), nil
}

func (s *Service) seal(o *Order, p *Personal) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	o.Sealed = s.cfg.Key.Seal(b, []byte(o.ID))
	return nil
}

// Open returns an order with its personal data opened (for those allowed
// to see it); erased data stays erased.
func (s *Service) Open(o *Order) (*Order, error) {
	if len(o.Sealed) == 0 {
		return o, nil
	}
	b, err := s.cfg.Key.Open(o.Sealed, []byte(o.ID))
	if err != nil {
		return nil, fmt.Errorf("order %s: %w", o.ID, err)
	}
	var p Personal
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, err
	}
	o.Personal = &p
	return o, nil
}

// Get returns an order.
func (s *Service) Get(ctx context.Context, id string) (*Order, error) {
	return s.cfg.Store.Order(ctx, id)
}

// List returns orders passing keep, by ID.
func (s *Service) List(ctx context.Context, keep func(*Order) bool, cursor string, limit int) ([]*Order, string, error) {
	os, err := s.cfg.Store.Orders(ctx, keep, cursor, limit+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(os) > limit {
		os = os[:limit]
		next = os[limit-1].ID
	}
	return os, next, nil
}

// statusRow builds the outbox row that tells the other side of o about its
// new state, projected by this node's policy for order_status.
func (s *Service) statusRow(o *Order, now time.Time) (OutboxRow, error) {
	dest := o.peer()
	o.OutSeq++
	st := &policy.OrderStatus{OrderID: o.ID, Seq: o.OutSeq, Status: string(o.Status), Reason: o.Reason, Tracking: o.Tracking, UpdatedAt: now}
	msg, t, err := s.cfg.Policy().Project(st, dest, policy.PurposeOrderStatus)
	if err != nil {
		return OutboxRow{}, err
	}
	payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return OutboxRow{}, err
	}
	for i, f := range t.Fields {
		t.Fields[i] = policy.KindOrder + "." + f // as the audit log names fields
	}
	return OutboxRow{Dest: dest, Kind: KindStatus, OrderID: o.ID, MsgSeq: o.OutSeq, Payload: payload, CreatedAt: now, NextRetry: now, Transfer: t}, nil
}

// Cancel is a marketplace cancelling its order on the buyer's node. The
// cancellation is sent to the seller's node, which refuses it if the order
// is past packed there (the buyer's node then shows the seller's state).
func (s *Service) Cancel(ctx context.Context, marketplaceID, id, reason string) (*Order, error) {
	return s.move(ctx, id, func(o *Order) bool {
		return o.Side == SideBuyer && (marketplaceID == "" || o.MarketplaceID == marketplaceID)
	}, Cancelled, "marketplace", reason, "")
}

// Transition is a seller moving its order on the seller's node; the new
// state is sent to the buyer's node.
func (s *Service) Transition(ctx context.Context, sellerID, id string, to Status, reason, tracking string) (*Order, error) {
	return s.move(ctx, id, func(o *Order) bool { return o.Side == SideSeller && o.SellerID == sellerID }, to, "seller", reason, tracking)
}

// move transitions order id, if mine says it is the caller's (else
// ErrNotFound), and queues the status message to the other side.
func (s *Service) move(ctx context.Context, id string, mine func(*Order) bool, to Status, by, reason, tracking string) (*Order, error) {
	if s.cfg.Catalog.Reconciling() {
		// After a restore an order's message sequence may be behind what
		// the other side holds until it is recovered.
		return nil, catalog.ErrReconciling
	}
	var back *StockBack
	var gone []string
	update := func() (*Order, error) {
		return s.cfg.Store.UpdateOrderStock(ctx, id, func(o *Order) ([]OutboxRow, *StockBack, error) {
			back, gone = nil, nil
			if !mine(o) {
				return nil, nil, fmt.Errorf("%w: %s", ErrNotFound, id)
			}
			now := s.cfg.Now().UTC()
			from := o.Status
			if err := o.transition(to, now, by, reason, tracking); err != nil {
				return nil, nil, err
			}
			back, gone = s.stockBack(o, from, now)
			row, err := s.statusRow(o, now)
			if err != nil {
				return nil, nil, err
			}
			return []OutboxRow{row}, back, nil
		})
	}
	var o *Order
	var err error
	if to != Cancelled && to != Rejected {
		o, err = update()
	} else {
		// An order that took stock gives it back in its own transaction,
		// decided under the catalog lock as a handoff takes it.
		err = s.cfg.Catalog.Exclusive(func() error {
			for stale := 0; ; stale++ {
				if o, err = update(); err == nil {
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
	if err == nil {
		s.Wake()
	}
	return o, err
}
