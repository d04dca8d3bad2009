package catalog

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/imtgt/imtgt-node/validation"
)

// Store is what the catalog needs from persistent storage. Writes are
// durable before they return.
type Store interface {
	// PutListings stores listings in one transaction: all or none.
	PutListings(ctx context.Context, ls ...*Listing) error
	// DeleteListing removes a listing; a missing one is not an error.
	DeleteListing(ctx context.Context, id string) error
	// Listings returns every stored listing, for rebuilding the index.
	Listings(ctx context.Context) ([]*Listing, error)
}

// Config is the node-specific part of a catalog.
type Config struct {
	Country  string // ISO 3166-1 alpha-2 of this node
	Currency string // ISO 4217 of this node; local listings are priced in it
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Catalog is the listing service of one node: it validates sellers'
// listings, stores them durably, and keeps the search index in step.
type Catalog struct {
	store Store
	index *Index
	cfg   Config
	// mu serialises read-modify-write of existing listings (update, delete)
	// so that two concurrent edits cannot lose one another. Creates do not
	// take it: they touch no existing record and group-commit in the store.
	mu sync.Mutex
}

// New returns a catalog over store and index.
func New(store Store, index *Index, cfg Config) *Catalog {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Catalog{store: store, index: index, cfg: cfg}
}

// Index returns the catalog's search index.
func (c *Catalog) Index() *Index { return c.index }

// Load rebuilds the index from the store; call it once at start-up.
func (c *Catalog) Load(ctx context.Context) error {
	ls, err := c.store.Listings(ctx)
	if err != nil {
		return fmt.Errorf("load listings: %w", err)
	}
	return c.index.Restore(ls)
}

func (c *Catalog) build(seller SellerProfile, in *Input, now time.Time) (*Listing, error) {
	price, err := in.validate(c.cfg.Country, c.cfg.Currency)
	if err != nil {
		return nil, err
	}
	return &Listing{
		ID:          "lst_" + ulid.Make().String(),
		Origin:      c.cfg.Country,
		SellerID:    seller.ID,
		Seller:      seller,
		Title:       in.Title,
		Description: in.Description,
		HSCode:      in.HSCode,
		Price:       price,
		Quantity:    in.Quantity,
		ShipFrom:    in.ShipFrom,
		Images:      in.Images,
		Attributes:  in.Attributes,
		CreatedAt:   now,
		UpdatedAt:   now,
		Version:     1,
	}, nil
}

// Create validates and publishes a new listing for seller.
func (c *Catalog) Create(ctx context.Context, seller SellerProfile, in Input) (*Listing, error) {
	l, err := c.build(seller, &in, c.cfg.Now().UTC())
	if err != nil {
		return nil, err
	}
	if err := c.store.PutListings(ctx, l); err != nil {
		return nil, err
	}
	if err := c.index.Upsert(l); err != nil {
		return nil, err
	}
	return l, nil
}

// Get returns a listing by ID.
func (c *Catalog) Get(id string) (*Listing, bool) { return c.index.Get(id) }

// Search runs a catalog query.
func (c *Catalog) Search(q Query) (Page, error) { return c.index.Search(q) }

// BySeller returns a seller's listings, newest first.
func (c *Catalog) BySeller(sellerID string) []*Listing { return c.index.BySeller(sellerID) }

// owned returns the local listing id if it belongs to sellerID.
func (c *Catalog) owned(sellerID, id string) (*Listing, error) {
	l, ok := c.index.Get(id)
	if !ok || l.Origin != c.cfg.Country {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if l.SellerID != sellerID {
		return nil, fmt.Errorf("%w: %s", ErrNotOwner, id)
	}
	return l, nil
}

// Update applies a partial update to a seller's listing.
func (c *Catalog) Update(ctx context.Context, seller SellerProfile, id string, p Patch) (*Listing, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, err := c.owned(seller.ID, id)
	if err != nil {
		return nil, err
	}
	in := p.apply(old)
	price, err := in.validate(c.cfg.Country, c.cfg.Currency)
	if err != nil {
		return nil, err
	}
	l := *old // listings in the index are immutable: build a new one
	l.Seller = seller
	l.Title, l.Description, l.HSCode = in.Title, in.Description, in.HSCode
	l.Price, l.Quantity, l.ShipFrom = price, in.Quantity, in.ShipFrom
	l.Images, l.Attributes = in.Images, in.Attributes
	l.UpdatedAt = c.cfg.Now().UTC()
	l.Version++
	if err := c.store.PutListings(ctx, &l); err != nil {
		return nil, err
	}
	if err := c.index.Upsert(&l); err != nil {
		return nil, err
	}
	return &l, nil
}

// Delete withdraws a seller's listing.
func (c *Catalog) Delete(ctx context.Context, sellerID, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.owned(sellerID, id); err != nil {
		return err
	}
	if err := c.store.DeleteListing(ctx, id); err != nil {
		return err
	}
	return c.index.Delete(id)
}

// ImportReport says what a bulk import stored and what it refused.
type ImportReport struct {
	Imported int        `json:"imported"`
	Failed   int        `json:"failed"`
	IDs      []string   `json:"ids"`
	Errors   []RowError `json:"errors"`
}

// Import validates parsed rows (and takes the parser's refused lines), stores
// every good row in one durable transaction, and reports the bad ones by
// line. Either all good rows are stored or, on a store error, none are.
func (c *Catalog) Import(ctx context.Context, seller SellerProfile, rows []Row, refused []RowError) (*ImportReport, error) {
	now := c.cfg.Now().UTC()
	rep := &ImportReport{IDs: []string{}, Errors: append([]RowError{}, refused...)}
	good := make([]*Listing, 0, len(rows))
	for i := range rows {
		l, err := c.build(seller, &rows[i].Input, now)
		if err != nil {
			re := RowError{Line: rows[i].Line, Code: "invalid", Message: err.Error()}
			if ve, ok := validation.As(err); ok {
				re.Field, re.Code, re.Message = ve.Field, ve.Code, ve.Message
			}
			rep.Errors = append(rep.Errors, re)
			continue
		}
		good = append(good, l)
	}
	if len(good) > 0 {
		if err := c.store.PutListings(ctx, good...); err != nil {
			return nil, err
		}
		if err := c.index.Upsert(good...); err != nil {
			return nil, err
		}
	}
	for _, l := range good {
		rep.IDs = append(rep.IDs, l.ID)
	}
	sort.SliceStable(rep.Errors, func(i, j int) bool { return rep.Errors[i].Line < rep.Errors[j].Line })
	rep.Imported, rep.Failed = len(good), len(rep.Errors)
	return rep, nil
}
