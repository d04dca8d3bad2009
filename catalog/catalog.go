package catalog

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/validation"
)

// Change is one local change to the catalog: an upsert (Listing set) or a
// withdrawal (DeleteID set).
type Change struct {
	Listing  *Listing
	DeleteID string
	// DeletedVersion is, for a delete, the version of the listing the
	// delete was decided on (0: not checked).
	DeletedVersion uint64
}

// ErrStale is a local change built on a listing that is no longer the
// stored one. Every change bumps a listing's Version by one, so the store
// refuses an update whose Version is not the stored one's plus one, or a
// delete of another version, and writes nothing. On one machine the
// catalog lock makes that impossible; replicas sharing a PostgreSQL store
// each read their own index, so two of them may build on the same
// version: the second is refused, re-reads the listing from the store and
// tries again, and neither edit (nor a stock decrement) is lost.
var ErrStale = errors.New("the listing changed since it was read (on another replica)")

// SealFunc turns local changes into the origin-signed records of this
// node's catalog log, numbered first, first+1, ... It is called inside the
// store's write transaction (possibly more than once, if the transaction is
// retried), so it must be pure.
type SealFunc func(first uint64, changes []Change) ([][]byte, error)

// RemoteRecord is a verified record of another origin's catalog log.
type RemoteRecord struct {
	Seq      uint64
	Raw      []byte   // the origin-signed envelope, stored and relayed as is
	Listing  *Listing // set for an upsert
	DeleteID string   // set for a withdrawal
	// HeldAtOrigin marks a withdrawal of a listing the origin's export
	// rules keep at home (not deleted by its seller).
	HeldAtOrigin bool
	// Withheld, when not nil, is why the listing it carries must not be
	// shown: its text breaks this node's text rule (CheckText). The record
	// still continues the log, which is signed and must stay gap-free; the
	// listing is not stored or searchable here.
	Withheld error
}

// ErrLogGap is returned when remote records do not continue an origin's
// log: the puller must ask again from its head.
var ErrLogGap = errors.New("records do not continue the log")

// Store is what the catalog needs from persistent storage. Writes are
// durable before they return.
type Store interface {
	// ApplyLocal stores local changes and, when seal is not nil, appends
	// their signed records to origin's log, all in one transaction.
	ApplyLocal(ctx context.Context, origin string, changes []Change, seal SealFunc) error
	// ApplyRemote appends records to origin's log and applies them to the
	// listings in one transaction. Records at or below the stored head are
	// skipped (a repeated pull is harmless); a record that leaves a gap is
	// ErrLogGap. It returns the records it applied.
	// ApplyRemote also appends ev (nil: nothing), completed with the
	// applied records' range, count and hash, to the audit log in the same
	// transaction.
	ApplyRemote(ctx context.Context, origin string, recs []RemoteRecord, ev *audit.Entry) ([]RemoteRecord, error)
	// Heads returns the last sequence number of every origin's log.
	Heads(ctx context.Context) (map[string]uint64, error)
	// LogRange returns consecutive records of origin's log from from (inclusive),
	// at most max of them and about maxBytes, and the log's head.
	LogRange(ctx context.Context, origin string, from uint64, max, maxBytes int) ([][]byte, uint64, error)
	// Listings returns every stored listing, for rebuilding the index.
	Listings(ctx context.Context) ([]*Listing, error)
	// ReclaimOwn is ApplyRemote for this node's own origin, after a
	// restore (Catalog.Reclaim).
	ReclaimOwn(ctx context.Context, origin string, recs []RemoteRecord, ev *audit.Entry) ([]RemoteRecord, error)
	// ListingsByID returns the stored listings among ids (absent: not
	// stored).
	ListingsByID(ctx context.Context, ids []string) (map[string]*Listing, error)
	// LogRecord returns one stored record of origin's log (nil if none).
	LogRecord(ctx context.Context, origin string, seq uint64) ([]byte, error)
	// ApplyLocalOnce is ApplyLocal under an idempotency key: in the same
	// transaction it stores out under k, unless k is stored already; then
	// it writes nothing and returns the stored outcome (replayed = true),
	// or ErrIdempotency if k was stored with another hash.
	ApplyLocalOnce(ctx context.Context, origin string, changes []Change, seal SealFunc, k Keyed, out *Outcome) (stored *Outcome, replayed bool, err error)
	// KeyedOutcome returns the outcome stored under k (false if none), or
	// ErrIdempotency if k was stored with another hash.
	KeyedOutcome(ctx context.Context, k Keyed) (*Outcome, bool, error)
}

// Config is the node-specific part of a catalog.
type Config struct {
	Country  string // ISO 3166-1 alpha-2 of this node
	Currency string // ISO 4217 of this node; local listings are priced in it
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Seal signs local changes into log records; nil keeps no log (a node
	// outside any federation, and unit tests).
	Seal SealFunc
	// Published is called after local changes are durable and indexed, so
	// the federation can announce the new head. It must not block.
	Published func()
	// ExportHolds returns the export rules that keep a listing at home
	// (nil: publish). Nil means no export rules.
	ExportHolds func(*Listing) []Hold
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
	mu *sync.Mutex
	// reconciling stops local changes: see SetReconciling.
	reconciling *atomic.Bool
	// remote orders the indexing of other origins' records (remoteapply.go).
	remote *remoteOrders
}

// New returns a catalog over store and index.
func New(store Store, index *Index, cfg Config) *Catalog {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Catalog{store: store, index: index, cfg: cfg, mu: new(sync.Mutex), reconciling: new(atomic.Bool), remote: &remoteOrders{by: map[string]*remoteOrder{}}}
}

// WithStore returns the catalog writing through st instead: same index,
// configuration, edit lock and reconciling state. The federation leader of
// a node run as replicas writes what it syncs through a fenced view of the
// shared store, so that a deposed leader's late write is refused.
func (c *Catalog) WithStore(st Store) *Catalog {
	d := *c
	d.store = st
	return &d
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

func (c *Catalog) holds(l *Listing) {
	if c.cfg.ExportHolds != nil {
		l.Held = c.cfg.ExportHolds(l)
	}
}

// reindex brings the index in step with stored changes: upserts, then
// deletions.
func (c *Catalog) reindex(ups []*Listing, dels []string) error {
	if len(ups) > 0 {
		if err := c.index.Upsert(ups...); err != nil {
			return err
		}
	}
	if len(dels) > 0 {
		return c.index.Delete(dels...)
	}
	return nil
}

// published tells the federation there is a new head.
func (c *Catalog) published() {
	if c.cfg.Published != nil {
		c.cfg.Published()
	}
}

// Create validates and publishes a new listing for seller.
func (c *Catalog) Create(ctx context.Context, seller SellerProfile, in Input) (*Listing, error) {
	l, _, err := c.CreateOnce(ctx, seller, in, "")
	return l, err
}

// apply stores local changes with their log records, then indexes them
// and tells the federation.
func (c *Catalog) apply(ctx context.Context, changes []Change) error {
	if c.reconciling.Load() {
		return ErrReconciling
	}
	if err := c.store.ApplyLocal(ctx, c.cfg.Country, changes, c.cfg.Seal); err != nil {
		return err
	}
	return c.stored(changes)
}

// stored indexes local changes that are durable, and tells the federation.
func (c *Catalog) stored(changes []Change) error {
	var ups []*Listing
	var dels []string
	for _, ch := range changes {
		if ch.Listing != nil {
			ups = append(ups, ch.Listing)
		} else {
			dels = append(dels, ch.DeleteID)
		}
	}
	if err := c.reindex(ups, dels); err != nil {
		return err
	}
	c.published()
	return nil
}

// ApplyRemote stores verified records of another origin's log and indexes
// them. It returns how many were new.
func (c *Catalog) ApplyRemote(ctx context.Context, origin string, recs []RemoteRecord, ev *audit.Entry) (int, error) {
	if origin == c.cfg.Country {
		return 0, fmt.Errorf("%w: records of this node's own origin %s come only from itself", ErrLogGap, origin)
	}
	n, job, err := c.storeRemote(ctx, origin, recs, ev)
	if err != nil {
		return 0, err
	}
	<-job.done
	if job.err != nil {
		return 0, job.err
	}
	return n, nil
}

// finalState is what a run of applied records leaves of each listing they
// touch, in log order: within one batch a listing may change more than
// once, and the index takes the final state.
func finalState(applied []RemoteRecord) (ups []*Listing, dels []string) {
	final := make(map[string]*RemoteRecord, len(applied))
	var order []string
	for i := range applied {
		id := applied[i].DeleteID
		if applied[i].Listing != nil {
			id = applied[i].Listing.ID
		}
		if _, seen := final[id]; !seen {
			order = append(order, id)
		}
		final[id] = &applied[i]
	}
	for _, id := range order {
		if r := final[id]; r.Listing != nil {
			ups = append(ups, r.Listing)
		} else {
			dels = append(dels, id)
		}
	}
	return ups, dels
}

// Reexport re-applies the export rules to every local listing after a
// policy change: a listing newly held is withdrawn from peers (its record
// becomes a tombstone), one newly allowed is published. It returns how many
// listings changed.
func (c *Catalog) Reexport(ctx context.Context) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var changes []Change
	// The index holds every local listing: walk it rather than decode the
	// whole store again (this runs at every start and policy install).
	for cursor := ""; ; {
		page, err := c.index.Search(Query{Origin: c.cfg.Country, Limit: MaxLimit, Cursor: cursor})
		if err != nil {
			return 0, err
		}
		for _, l := range page.Items {
			if ch, ok := c.rehold(l); ok {
				changes = append(changes, ch)
			}
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(changes) == 0 {
		return 0, nil
	}
	return len(changes), c.apply(ctx, changes)
}

// rehold returns the change that brings a listing's export hold in line
// with the current rules, if it needs one.
func (c *Catalog) rehold(l *Listing) (Change, bool) {
	var held []Hold
	if c.cfg.ExportHolds != nil {
		held = c.cfg.ExportHolds(l)
	}
	if (len(held) > 0) == (len(l.Held) > 0) {
		return Change{}, false
	}
	n := *l
	n.Held = held
	n.Version++
	n.UpdatedAt = c.cfg.Now().UTC()
	return Change{Listing: &n}, true
}

// Exclusive runs fn holding the lock every read-modify-write of local
// listings takes, for writers outside the catalog (an order decrementing
// stock) that must not lose a concurrent seller edit, nor be lost by it.
func (c *Catalog) Exclusive(fn func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fn()
}

// Indexed brings the index in step with local listings another writer
// stored (with their log records), and tells the federation.
func (c *Catalog) Indexed(ls ...*Listing) error {
	if err := c.index.Upsert(ls...); err != nil {
		return err
	}
	c.published()
	return nil
}

// Seal returns the catalog's record sealer, for writers that append to
// this node's log in their own transaction.
func (c *Catalog) Seal() SealFunc { return c.cfg.Seal }

// Heads returns the last sequence number of every origin's log.
func (c *Catalog) Heads(ctx context.Context) (map[string]uint64, error) { return c.store.Heads(ctx) }

// LogRange returns records of origin's log for a peer.
func (c *Catalog) LogRange(ctx context.Context, origin string, from uint64, max, maxBytes int) ([][]byte, uint64, error) {
	return c.store.LogRange(ctx, origin, from, max, maxBytes)
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
	var out *Listing
	err := c.retryStale(ctx, id, func() (err error) {
		out, err = c.update(ctx, seller, id, p)
		return err
	})
	return out, err
}

func (c *Catalog) update(ctx context.Context, seller SellerProfile, id string, p Patch) (*Listing, error) {
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
	c.holds(&l)
	if err := c.apply(ctx, []Change{{Listing: &l}}); err != nil {
		return nil, err
	}
	return &l, nil
}

// Delete withdraws a seller's listing.
func (c *Catalog) Delete(ctx context.Context, sellerID, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.retryStale(ctx, id, func() error {
		l, err := c.owned(sellerID, id)
		if err != nil {
			return err
		}
		return c.apply(ctx, []Change{{DeleteID: id, DeletedVersion: l.Version}})
	})
}

// staleRetries is how often a change refused as stale is rebuilt on the
// stored listing: each retry follows a write another replica committed.
const staleRetries = 5

// retryStale runs fn, and after each ErrStale refreshes listing id from
// the store into the index and runs it again.
func (c *Catalog) retryStale(ctx context.Context, id string, fn func() error) error {
	for i := 0; ; i++ {
		err := fn()
		if !errors.Is(err, ErrStale) || i == staleRetries {
			return err
		}
		if err := c.Refresh(ctx, id); err != nil {
			return err
		}
	}
}

// Refresh re-reads listings from the store into the index: another
// replica sharing the store changed them (or removed them).
func (c *Catalog) Refresh(ctx context.Context, ids ...string) error {
	stored, err := c.store.ListingsByID(ctx, ids)
	if err != nil {
		return fmt.Errorf("refresh listings: %w", err)
	}
	var ups []*Listing
	var dels []string
	for _, id := range ids {
		if l, ok := stored[id]; ok {
			ups = append(ups, l)
		} else {
			dels = append(dels, id)
		}
	}
	return c.reindex(ups, dels)
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
	rep, _, err := c.ImportOnce(ctx, seller, rows, refused, "")
	return rep, err
}

// prepareImport validates rows into listings and the report of an import
// that stores them (IDs of the good rows, errors of the bad by line).
func (c *Catalog) prepareImport(seller SellerProfile, rows []Row, refused []RowError) (*ImportReport, []*Listing) {
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
		c.holds(l)
		good = append(good, l)
	}
	for _, l := range good {
		rep.IDs = append(rep.IDs, l.ID)
	}
	sort.SliceStable(rep.Errors, func(i, j int) bool { return rep.Errors[i].Line < rep.Errors[j].Line })
	rep.Imported, rep.Failed = len(good), len(rep.Errors)
	return rep, good
}
