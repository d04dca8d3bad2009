package catalog

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	memdb "github.com/hashicorp/go-memdb"
)

// ErrInvalidListing is returned by Upsert and Restore for a listing that
// cannot be indexed: nil, a missing or malformed ID, or a NUL byte in a
// field that is part of an index key.
var ErrInvalidListing = errors.New("invalid listing")

// maxIDLen bounds listing IDs ("lst_" + a 26-character ULID is 30 bytes) so
// that a cursor cannot smuggle in an arbitrarily long seek key.
const maxIDLen = 128

// entry is the object stored in memdb for one listing. Its exported fields
// exist for memdb's reflection-based indexers; they are derived from Listing
// once, at insert time, so that searching never re-tokenizes.
//
// An entry, and the Listing it points to, is immutable once inserted: memdb
// hands the same pointer to every reader without copying or locking, and an
// update inserts a new entry. Callers of Upsert and Restore must therefore
// not mutate a Listing after passing it in, nor one returned by Get, BySeller
// or Search.
type entry struct {
	ID       string
	Origin   string
	SellerID string
	HSCode   string
	ShipFrom string
	// HSPrefixes are the prefixes of HSCode of length 2..maxHSIndexed
	// ("09", "090", "0901", ...), so that an HS prefix filter is an exact
	// lookup in the "hs" index.
	HSPrefixes []string
	// Tokens are sorted and deduplicated (Tokens returns them so): sorted so
	// that Search can test membership by binary search.
	Tokens  []string
	Listing *Listing
}

// originCount is a row of the origin_counts table. It is replaced, never
// mutated, like every memdb object.
type originCount struct {
	Key    string // "o/" + Origin: memdb refuses an empty primary key
	Origin string
	N      int
}

func originKey(origin string) string { return "o/" + origin }

// state is one generation of the catalog: a database, and a channel closed
// when Restore replaces it, so that watchers of the old database (whose own
// channels will never fire again) wake up.
type state struct {
	db       *memdb.MemDB
	replaced chan struct{}
}

// Index is the in-memory searchable catalog. It is safe for concurrent use:
// readers work on memdb's immutable snapshots and never block, and writers
// are serialised.
type Index struct {
	st atomic.Pointer[state]
	// wmu serialises writers around the load of st. memdb already allows one
	// write transaction at a time, but without wmu an Upsert could load the
	// old database, Restore could swap in the new one, and the Upsert would
	// then commit into the discarded database and be lost although it
	// finished after Restore began.
	wmu sync.Mutex
}

// NewIndex returns an empty catalog.
func NewIndex() *Index {
	ix := &Index{}
	ix.st.Store(newState())
	return ix
}

func newState() *state {
	db, err := memdb.NewMemDB(dbSchema())
	if err != nil {
		// The schema is a constant of this package; the schema test proves
		// it valid, so this is a programming error, not a run-time one.
		panic(fmt.Sprintf("catalog: invalid memdb schema: %v", err))
	}
	return &state{db: db, replaced: make(chan struct{})}
}

func (ix *Index) db() *memdb.MemDB { return ix.st.Load().db }

// validID reports whether id can be a primary key: non-empty, bounded,
// valid UTF-8 and free of NUL. Search relies on the last two: NUL ends a
// value in memdb keys, and valid UTF-8 never contains the byte 0xFF, which
// Search uses as "after every ID".
func validID(id string) bool {
	return id != "" && len(id) <= maxIDLen && utf8.ValidString(id) && strings.IndexByte(id, 0) < 0
}

// newEntry derives the indexed form of a listing. It does the expensive part
// of an insert (tokenizing), so callers run it before taking any lock.
func newEntry(l *Listing) (*entry, error) {
	if l == nil {
		return nil, fmt.Errorf("%w: nil", ErrInvalidListing)
	}
	if !validID(l.ID) {
		return nil, fmt.Errorf("%w: bad id %q", ErrInvalidListing, l.ID)
	}
	for _, f := range [...]struct{ name, v string }{
		{"origin", l.Origin}, {"seller id", l.SellerID}, {"ship from", l.ShipFrom}, {"hs code", l.HSCode},
	} {
		// A NUL would end the value early in memdb's keys and put the
		// entry under another value's posting list.
		if strings.IndexByte(f.v, 0) >= 0 {
			return nil, fmt.Errorf("%w: %s of %s contains NUL", ErrInvalidListing, f.name, l.ID)
		}
	}
	return &entry{
		ID:         l.ID,
		Origin:     l.Origin,
		SellerID:   l.SellerID,
		HSCode:     l.HSCode,
		ShipFrom:   l.ShipFrom,
		HSPrefixes: hsPrefixes(l.HSCode),
		Tokens:     Tokens(searchText(l)),
		Listing:    l,
	}, nil
}

// searchText is everything a buyer can search a listing by, joined by a
// newline so that words (and Thai runs) never join across fields.
func searchText(l *Listing) string {
	var b strings.Builder
	n := len(l.Title) + len(l.Description) + len(l.Seller.LegalName) + 2
	for _, v := range l.Attributes {
		n += len(v) + 1
	}
	b.Grow(n)
	b.WriteString(l.Title)
	b.WriteByte('\n')
	b.WriteString(l.Description)
	b.WriteByte('\n')
	b.WriteString(l.Seller.LegalName)
	for _, v := range l.Attributes {
		b.WriteByte('\n')
		b.WriteString(v)
	}
	return b.String()
}

func hsPrefixes(code string) []string {
	if len(code) < 2 {
		return nil
	}
	n := min(len(code), maxHSIndexed)
	ps := make([]string, 0, n-1)
	for i := 2; i <= n; i++ {
		ps = append(ps, code[:i])
	}
	return ps
}

// Upsert inserts or replaces listings, all in one write transaction: either
// all of them are applied or, on error, none. Later listings in ls win over
// earlier ones with the same ID.
func (ix *Index) Upsert(ls ...*Listing) error {
	es := make([]*entry, len(ls))
	for i, l := range ls {
		e, err := newEntry(l)
		if err != nil {
			return err
		}
		es[i] = e
	}
	ix.wmu.Lock()
	defer ix.wmu.Unlock()
	txn := ix.db().Txn(true)
	defer txn.Abort() // no-op after Commit
	for _, e := range es {
		if err := insertEntry(txn, e); err != nil {
			return err
		}
	}
	txn.Commit()
	return nil
}

func insertEntry(txn *memdb.Txn, e *entry) error {
	old, err := txn.First(tableListings, indexID, e.ID)
	if err != nil {
		return fmt.Errorf("catalog: look up %s: %w", e.ID, err)
	}
	if old != nil {
		if err := addCount(txn, old.(*entry).Origin, -1); err != nil {
			return err
		}
	}
	if err := txn.Insert(tableListings, e); err != nil {
		return fmt.Errorf("catalog: insert %s: %w", e.ID, err)
	}
	return addCount(txn, e.Origin, 1)
}

func addCount(txn *memdb.Txn, origin string, delta int) error {
	key := originKey(origin)
	raw, err := txn.First(tableOriginCounts, indexID, key)
	if err != nil {
		return fmt.Errorf("catalog: origin count: %w", err)
	}
	n := delta
	if raw != nil {
		n += raw.(*originCount).N
	}
	if n <= 0 {
		if raw != nil {
			return txn.Delete(tableOriginCounts, raw)
		}
		return nil
	}
	return txn.Insert(tableOriginCounts, &originCount{Key: key, Origin: origin, N: n})
}

// Delete removes listings by ID in one write transaction. IDs that are not
// in the catalog are ignored.
func (ix *Index) Delete(ids ...string) error {
	ix.wmu.Lock()
	defer ix.wmu.Unlock()
	txn := ix.db().Txn(true)
	defer txn.Abort()
	for _, id := range ids {
		raw, err := txn.First(tableListings, indexID, id)
		if err != nil {
			return fmt.Errorf("catalog: look up %q: %w", id, err)
		}
		if raw == nil {
			continue
		}
		if err := txn.Delete(tableListings, raw); err != nil {
			return fmt.Errorf("catalog: delete %s: %w", id, err)
		}
		if err := addCount(txn, raw.(*entry).Origin, -1); err != nil {
			return err
		}
	}
	txn.Commit()
	return nil
}

// Get returns the listing with the given ID.
func (ix *Index) Get(id string) (*Listing, bool) {
	raw, err := ix.db().Txn(false).First(tableListings, indexID, id)
	if err != nil || raw == nil {
		return nil, false
	}
	return raw.(*entry).Listing, true
}

// Restore replaces the whole catalog with ls, Nomad-style: it builds a fresh
// database in one transaction, off to the side, then swaps it in atomically.
// Readers see either the old catalog or the new one, never a mix. On error
// the catalog is unchanged.
//
// Restore is meant for start-up, before writes begin. Writers are
// serialised, so a concurrent Upsert or Delete is never lost into the
// discarded database, but one that completes while Restore is building is
// overwritten by ls: Restore wins over every write that finished before it
// returned.
func (ix *Index) Restore(ls []*Listing) error {
	es := make([]*entry, len(ls))
	for i, l := range ls {
		e, err := newEntry(l)
		if err != nil {
			return err
		}
		es[i] = e
	}
	next := newState()
	txn := next.db.Txn(true)
	defer txn.Abort()
	for _, e := range es {
		if err := insertEntry(txn, e); err != nil {
			return err
		}
	}
	txn.Commit()

	// Only the swap needs the writers' lock: building outside it keeps
	// Upserts flowing during a long restore, and the result is the same as
	// if they had all happened just before Restore.
	ix.wmu.Lock()
	prev := ix.st.Swap(next)
	ix.wmu.Unlock()
	close(prev.replaced)
	return nil
}

// Count returns the number of listings in the catalog.
func (ix *Index) Count() int {
	n := 0
	for _, c := range ix.counts() {
		n += c.N
	}
	return n
}

// CountByOrigin returns the number of listings per origin country. Listings
// without an Origin are counted under "".
func (ix *Index) CountByOrigin() map[string]int {
	cs := ix.counts()
	m := make(map[string]int, len(cs))
	for _, c := range cs {
		m[c.Origin] = c.N
	}
	return m
}

func (ix *Index) counts() []*originCount {
	it, err := ix.db().Txn(false).Get(tableOriginCounts, indexID)
	if err != nil {
		return nil // impossible: the table and index are constants
	}
	var cs []*originCount
	for raw := it.Next(); raw != nil; raw = it.Next() {
		cs = append(cs, raw.(*originCount))
	}
	return cs
}

// BySeller returns all the listings of a seller, newest first.
func (ix *Index) BySeller(sellerID string) []*Listing {
	txn := ix.db().Txn(false)
	s := newStream(txn, indexSeller, sellerID)
	var ls []*Listing
	for s.seek(afterAll); !s.done; s.next() {
		ls = append(ls, s.cur.Listing)
	}
	return ls
}

// Watch adds to ws a channel that is closed on the next change to the
// catalog: an Upsert or Delete that changes a listing, or a Restore. Call it
// before reading, then block on ws: a change between the two then wakes the
// caller at once instead of being missed.
func (ix *Index) Watch(ws memdb.WatchSet) {
	st := ix.st.Load()
	ws.Add(st.replaced)
	// With no arguments, Get seeks to the root of the id index, whose watch
	// channel memdb closes on any commit that touches the index: every
	// insert, update and delete of a listing does.
	if it, err := st.db.Txn(false).Get(tableListings, indexID); err == nil {
		ws.Add(it.WatchCh())
	}
}
