package catalog

import (
	"cmp"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
	"unique"

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
// exist for memdb's reflection-based indexers; all fields are derived from
// Listing once, at insert time, so that searching never re-tokenizes and
// rarely has to touch the Listing itself.
//
// An entry, and the Listing it points to, is immutable once inserted: memdb
// hands the same pointer to every reader without copying or locking, and an
// update inserts a new entry. Callers of Upsert and Restore must therefore
// not mutate a Listing after passing it in, nor one returned by Get, BySeller
// or Search.
//
// The code fields are interned (unique.Handle): thousands of entries then
// share one copy of "TH" or "MYR", and Search compares a candidate's codes
// with the query's as pointers, without reading the strings. A Search may
// walk thousands of entries scattered over a large heap, and every string it
// does not have to read is a cache miss saved.
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
	// Tokens are deduplicated and ordered by tokenHashes.
	Tokens  []string
	Listing *Listing

	// tokenHashes[i] is the hash of Tokens[i] under the index's seed, in
	// ascending order. Search tests token membership on every entry it
	// walks; a binary search over strings would read a dozen scattered
	// strings on a cold cache, over hashes it reads a few adjacent words,
	// then one string to confirm.
	tokenHashes []uint64

	// The handles behind Origin, SellerID, HSCode and ShipFrom (which are
	// their Values), and Listing.Price split the same way. Holding the
	// handles keeps the canonical copies alive, so later entries and
	// queries get the same ones.
	origin, seller, hs, region, currency unique.Handle[string]
	priceMinor                           int64
}

// hasToken reports whether e has token tok, whose hash is h.
func (e *entry) hasToken(tok string, h uint64) bool {
	i, ok := slices.BinarySearch(e.tokenHashes, h)
	for ; ok && i < len(e.tokenHashes) && e.tokenHashes[i] == h; i++ {
		if e.Tokens[i] == tok {
			return true
		}
	}
	return false
}

// setTokens stores toks in e ordered by their hashes.
func (e *entry) setTokens(seed maphash.Seed, toks []string) {
	type th struct {
		h   uint64
		tok string
	}
	ths := make([]th, len(toks))
	for i, t := range toks {
		ths[i] = th{maphash.String(seed, t), t}
	}
	slices.SortFunc(ths, func(a, b th) int { return cmp.Or(cmp.Compare(a.h, b.h), strings.Compare(a.tok, b.tok)) })
	e.Tokens = make([]string, len(ths))
	e.tokenHashes = make([]uint64, len(ths))
	for i, x := range ths {
		e.Tokens[i], e.tokenHashes[i] = x.tok, x.h
	}
}

// originCount is a row of the origin_counts table. It is replaced, never
// mutated, like every memdb object.
type originCount struct {
	Key    string // "o/" + Origin: memdb refuses an empty primary key
	Origin string
	N      int
}

func originKey(origin string) string { return "o/" + origin }

// state is one generation of the catalog: a database and the posting counts
// that go with it. Restore replaces the whole state at once.
type state struct {
	db    *memdb.MemDB
	stats *postingStats
}

// Index is the in-memory searchable catalog. It is safe for concurrent use:
// readers work on memdb's immutable snapshots and never block, and writers
// are serialised.
type Index struct {
	st atomic.Pointer[state]
	// changed is closed, and replaced by a new channel, after every commit
	// that changes the catalog: see Watch.
	changed atomic.Pointer[chan struct{}]
	// wmu serialises writers around the load of st, and around changed.
	// memdb already allows one write transaction at a time, but without
	// wmu an Upsert could load the old database, Restore could swap in the
	// new one, and the Upsert would then commit into the discarded
	// database and be lost although it finished after Restore began.
	wmu sync.Mutex
	// seed keys the token hashes. It is random per Index so that a seller
	// cannot craft a word whose hash collides with a popular one. Results
	// stay exact even then (matches compare the strings), but a collision
	// costs extra work.
	seed maphash.Seed
}

// NewIndex returns an empty catalog.
func NewIndex() *Index {
	ix := &Index{seed: maphash.MakeSeed()}
	ix.st.Store(newState())
	ch := make(chan struct{})
	ix.changed.Store(&ch)
	return ix
}

func newState() *state {
	db, err := memdb.NewMemDB(dbSchema())
	if err != nil {
		// The schema is a constant of this package; the schema test proves
		// it valid, so this is a programming error, not a run-time one.
		panic(fmt.Sprintf("catalog: invalid memdb schema: %v", err))
	}
	// Write to a snapshot of the new database rather than the database
	// itself: memdb enables per-node watch channels only on the "primary"
	// database, and snapshots are not primary. Those channels are what made
	// writes slow: tracking them costs on every insert, and once a
	// transaction touches more than 8,192 nodes of an index (a batch of a
	// few hundred listings in the token index) go-immutable-radix falls
	// back to comparing the whole old and new trees at commit, which took
	// seconds per batch on 100,000 listings. The Index signals changes
	// itself instead, with one channel per commit (see Watch).
	return &state{db: db.Snapshot(), stats: newPostingStats()}
}

// notifyChanged wakes the watchers. Writers call it with wmu held, after
// the commit, so that a woken watcher sees the change.
func (ix *Index) notifyChanged() {
	ch := make(chan struct{})
	close(*ix.changed.Swap(&ch))
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
func (ix *Index) newEntry(l *Listing) (*entry, error) {
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
	e := &entry{
		ID:         l.ID,
		Listing:    l,
		origin:     unique.Make(l.Origin),
		seller:     unique.Make(l.SellerID),
		hs:         unique.Make(l.HSCode),
		region:     unique.Make(l.ShipFrom),
		currency:   unique.Make(l.Price.Currency),
		priceMinor: l.Price.Minor,
	}
	e.Origin, e.SellerID, e.HSCode, e.ShipFrom = e.origin.Value(), e.seller.Value(), e.hs.Value(), e.region.Value()
	e.HSPrefixes = hsPrefixes(e.HSCode)
	e.setTokens(ix.seed, Tokens(searchText(l)))
	return e, nil
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
		e, err := ix.newEntry(l)
		if err != nil {
			return err
		}
		es[i] = e
	}
	if len(es) == 0 {
		return nil // no commit, so no spurious wake-up of watchers
	}
	ix.wmu.Lock()
	defer ix.wmu.Unlock()
	st := ix.st.Load()
	txn := st.db.Txn(true)
	defer txn.Abort() // no-op after Commit
	replaced, err := insertEntries(txn, es)
	if err != nil {
		return err
	}
	txn.Commit()
	st.stats.apply(es, replaced)
	ix.notifyChanged()
	return nil
}

// insertEntries inserts es and returns the entries they replaced.
func insertEntries(txn *memdb.Txn, es []*entry) ([]*entry, error) {
	var replaced []*entry
	for _, e := range es {
		raw, err := txn.First(tableListings, indexID, e.ID)
		if err != nil {
			return nil, fmt.Errorf("catalog: look up %s: %w", e.ID, err)
		}
		if raw != nil {
			old := raw.(*entry)
			replaced = append(replaced, old)
			if err := addCount(txn, old.Origin, -1); err != nil {
				return nil, err
			}
		}
		if err := txn.Insert(tableListings, e); err != nil {
			return nil, fmt.Errorf("catalog: insert %s: %w", e.ID, err)
		}
		if err := addCount(txn, e.Origin, 1); err != nil {
			return nil, err
		}
	}
	return replaced, nil
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
	st := ix.st.Load()
	txn := st.db.Txn(true)
	defer txn.Abort()
	var deleted []*entry
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
		deleted = append(deleted, raw.(*entry))
	}
	txn.Commit()
	st.stats.apply(nil, deleted)
	if len(deleted) > 0 {
		ix.notifyChanged()
	}
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
		e, err := ix.newEntry(l)
		if err != nil {
			return err
		}
		es[i] = e
	}
	next := newState()
	txn := next.db.Txn(true)
	defer txn.Abort()
	replaced, err := insertEntries(txn, es) // replaced: duplicates in ls
	if err != nil {
		return err
	}
	txn.Commit()
	next.stats.apply(es, replaced)

	// Only the swap needs the writers' lock: building outside it keeps
	// Upserts flowing during a long restore, and the result is the same as
	// if they had all happened just before Restore.
	ix.wmu.Lock()
	ix.st.Store(next)
	ix.notifyChanged()
	ix.wmu.Unlock()
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
	s := newStream(txn, postingKey{indexSeller, sellerID}, ix.seed)
	var ls []*Listing
	for s.seek(afterAll); !s.done; s.next() {
		ls = append(ls, s.cur.Listing)
	}
	return ls
}

// Watch adds to ws a channel that is closed on the next change to the
// catalog: an Upsert, a Delete that removes a listing, or a Restore. Call it
// before reading, then block on ws: a change between the two then wakes the
// caller at once instead of being missed.
func (ix *Index) Watch(ws memdb.WatchSet) {
	ws.Add(*ix.changed.Load())
}

// postingStats counts the entries under each value of each posting-list
// index (each token, origin, region, seller and HS prefix). Search uses the
// counts only to choose the shortest list to walk. They are updated just
// after each commit, under the writers' lock, so a reader may see them a
// moment stale: that can cost a slower plan, never a wrong result.
//
// The counts live beside memdb rather than in it because keeping a memdb row
// per token would add dozens of tree inserts to every Upsert for numbers
// that need not be exact.
type postingStats struct {
	mu sync.RWMutex
	n  map[postingKey]int
}

type postingKey struct{ index, value string }

func newPostingStats() *postingStats { return &postingStats{n: make(map[postingKey]int)} }

// apply counts the postings of added entries in and those of removed ones
// out. Additions go first so that an update that keeps most of its tokens
// does not delete and re-create their map slots.
func (s *postingStats) apply(added, removed []*entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range added {
		forEachPosting(e, func(k postingKey) { s.n[k]++ })
	}
	for _, e := range removed {
		forEachPosting(e, func(k postingKey) {
			if s.n[k] <= 1 {
				delete(s.n, k)
			} else {
				s.n[k]--
			}
		})
	}
}

// count is the number of entries under value in index.
func (s *postingStats) count(index, value string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.n[postingKey{index, value}]
}

// forEachPosting calls f with every posting list e is on, except the id
// index's.
func forEachPosting(e *entry, f func(postingKey)) {
	for _, t := range e.Tokens {
		f(postingKey{indexToken, t})
	}
	for _, p := range e.HSPrefixes {
		f(postingKey{indexHS, p})
	}
	// Empty values are not indexed (AllowMissing), so not counted.
	for _, kv := range [...]postingKey{{indexOrigin, e.Origin}, {indexRegion, e.ShipFrom}, {indexSeller, e.SellerID}} {
		if kv.value != "" {
			f(kv)
		}
	}
}
