package catalog

import (
	"cmp"
	"errors"
	"fmt"
	"runtime"
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
// exist for memdb's reflection-based indexers (Origin, for the origin
// counts) and are the Listing's own strings.
//
// The indexed fields of an entry never change once it is inserted: memdb
// hands the same pointer to every reader without copying or locking. Its
// Listing may: an update that keeps the ID, Origin and SellerID (a new
// price, title, quantity: nearly all of them) keeps the entry and swaps in
// the new Listing atomically, at commit. That spares memdb the delete and
// re-insert of every index key of the listing, which was most of the cost
// of such an update. A reader of an older memdb snapshot may then see a
// newer version of a listing; never a half-updated one, since Listings are
// immutable: callers of Upsert and Restore must not mutate a Listing after
// passing it in, nor one returned by Get, BySeller or Search.
//
// doc, the listing's searchable form, is shared by every version of the
// listing and only Search, under the postings lock, reads it (see doc). Get
// and BySeller, which read memdb without that lock, use listing only.
type entry struct {
	ID       string
	Origin   string
	SellerID string
	listing  atomic.Pointer[Listing]
	doc      *doc
}

// originCount is a row of the origin_counts table. It is replaced, never
// mutated, like every memdb object.
type originCount struct {
	Key    string // "o/" + Origin: memdb refuses an empty primary key
	Origin string
	N      int
}

func originKey(origin string) string { return "o/" + origin }

// state is one generation of the catalog: a database and the inverted index
// that goes with it. Restore replaces the whole state at once.
type state struct {
	db   *memdb.MemDB
	post *postings
}

// Index is the in-memory searchable catalog. It is safe for concurrent use.
// Get, BySeller, Count and CountByOrigin work on memdb's immutable snapshots
// and never block. Search holds a read lock on the inverted index for its
// walk (but for a query without indexed condition, which scans a memdb
// snapshot); a writer holds that lock only to commit, once per call (see
// postings.go). Writers are serialised.
type Index struct {
	st atomic.Pointer[state]
	// changed is closed, and replaced by a new channel, after every commit
	// that changes the catalog: see Watch.
	changed atomic.Pointer[chan struct{}]
	// wmu serialises writers around the load of st, and around changed.
	// Without it an Upsert could load the old state, Restore could swap in
	// the new one, and the Upsert would then commit into the discarded
	// state and be lost although it finished after Restore began. It also
	// makes each writer the only one to change the postings, which lets a
	// writer read them without their lock while it prepares a commit.
	wmu sync.Mutex
}

// NewIndex returns an empty catalog.
func NewIndex() *Index {
	ix := &Index{}
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
	// database, and snapshots are not primary. Tracking those channels
	// costs on every insert, and once a transaction touches more than 8,192
	// nodes of an index go-immutable-radix falls back to comparing the whole
	// old and new trees at commit. The Index signals changes itself instead,
	// with one channel per commit (see Watch).
	return &state{db: db.Snapshot(), post: newPostings()}
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

// staged is a listing on its way into the index: its doc's fields, and its
// tokens, not yet resolved to posting lists (that needs the postings, so it
// happens under the writers' lock).
type staged struct {
	l    *Listing
	f    docFields
	toks tokList
	d    *doc // Restore's doc for it
}

// tokList is a listing's tokens, as substrings of one string: two
// allocations instead of one per token. Only the writer reads it, once.
type tokList struct {
	all  string
	ends []int32
}

// stage validates and tokenizes a listing: the expensive part of an insert,
// which writers do before taking any lock.
func stage(l *Listing, t *tokenizer) (staged, error) {
	if l == nil {
		return staged{}, fmt.Errorf("%w: nil", ErrInvalidListing)
	}
	if !validID(l.ID) {
		return staged{}, fmt.Errorf("%w: bad id %q", ErrInvalidListing, l.ID)
	}
	for _, f := range [...]struct{ name, v string }{
		{"origin", l.Origin}, {"seller id", l.SellerID}, {"ship from", l.ShipFrom}, {"hs code", l.HSCode},
	} {
		// A NUL would end the value early in memdb's keys and put the
		// entry under another value's posting list. Origin, region and HS
		// code are no longer memdb keys, but they were, and the rule stays
		// part of what Upsert accepts.
		if strings.IndexByte(f.v, 0) >= 0 {
			return staged{}, fmt.Errorf("%w: %s of %s contains NUL", ErrInvalidListing, f.name, l.ID)
		}
	}
	s := staged{
		l: l,
		f: docFields{
			listing:    l,
			hsCode:     unique.Make(l.HSCode).Value(),
			origin:     unique.Make(l.Origin),
			seller:     unique.Make(l.SellerID),
			region:     unique.Make(l.ShipFrom),
			currency:   unique.Make(l.Price.Currency),
			priceMinor: l.Price.Minor,
		},
	}
	// Everything a buyer can search a listing by. Each field is tokenized
	// on its own, so that words (and Thai runs) never join across fields.
	t.reset()
	t.add(l.Title)
	t.add(l.Description)
	t.add(l.Seller.LegalName)
	for _, v := range l.Attributes {
		t.add(v)
	}
	if len(t.ends) > 0 {
		s.toks.all = string(t.buf)
		s.toks.ends = make([]int32, len(t.ends))
		for i, end := range t.ends {
			s.toks.ends[i] = int32(end)
		}
	}
	return s, nil
}

var tokenizers = sync.Pool{New: func() any { return new(tokenizer) }}

// parallelMin is the batch size from which staging is spread over the
// CPUs: tokenizing is most of the cost of a bulk write, and it needs no
// lock.
const parallelMin = 256

// stageAll stages ls, in parallel for a large batch. On error it returns the
// error of the first invalid listing.
func stageAll(ls []*Listing) ([]staged, error) {
	out := make([]staged, len(ls))
	workers := min(runtime.GOMAXPROCS(0), (len(ls)+parallelMin-1)/parallelMin)
	errs := make([]error, max(workers, 1))
	run := func(w, lo, hi int) {
		t := tokenizers.Get().(*tokenizer)
		defer tokenizers.Put(t)
		for i := lo; i < hi; i++ {
			s, err := stage(ls[i], t)
			if err != nil {
				errs[w] = err
				return
			}
			out[i] = s
		}
	}
	if workers <= 1 {
		run(0, 0, len(ls))
	} else {
		var wg sync.WaitGroup
		chunk := (len(ls) + workers - 1) / workers
		for w := range workers {
			wg.Go(func() { run(w, w*chunk, min(len(ls), (w+1)*chunk)) })
		}
		wg.Wait()
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// lastWins drops every staged listing that a later one with the same ID
// replaces. Order is otherwise kept.
func lastWins(ss []staged) []staged {
	if len(ss) < 2 || slices.IsSortedFunc(ss, func(a, b staged) int {
		// Strictly increasing IDs, the usual case, have no duplicates.
		return cmp.Or(strings.Compare(a.l.ID, b.l.ID), -1)
	}) {
		return ss
	}
	last := make(map[string]int, len(ss))
	for i, s := range ss {
		last[s.l.ID] = i
	}
	out := ss[:0]
	for i, s := range ss {
		if last[s.l.ID] == i {
			out = append(out, s)
		}
	}
	return out
}

// hsPrefixes returns the prefixes of an HS code that have posting lists:
// those of length 2 to maxHSIndexed ("09", "090", "0901", ...).
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
	ss, err := stageAll(ls)
	if err != nil {
		return err
	}
	if len(ss) == 0 {
		return nil // no commit, so no spurious wake-up of watchers
	}
	ss = lastWins(ss)

	ix.wmu.Lock()
	defer ix.wmu.Unlock()
	st := ix.st.Load()
	r := newResolver(st.post, false)
	resolve := func() {
		for i := range ss {
			ss[i].f.keys = r.docKeys(&ss[i])
		}
	}
	// A large batch resolves its tokens on another CPU while this one
	// stages the memdb transaction: they share nothing but ss, of which
	// the resolver writes the keys (ss[i].f) and this one reads the
	// listings (ss[i].l).
	var wg sync.WaitGroup
	if len(ss) >= parallelMin {
		wg.Go(resolve)
	} else {
		resolve()
	}
	defer wg.Wait() // on error too: the resolver reads the postings

	txn := st.db.Txn(true)
	defer txn.Abort() // no-op after Commit
	c := &change{r: r}
	es := make([]*entry, len(ss))
	olds := make([]*entry, len(ss))
	counts := make(map[string]int, 4)
	for i := range ss {
		l := ss[i].l
		raw, err := txn.First(tableListings, indexID, l.ID)
		if err != nil {
			return fmt.Errorf("catalog: look up %s: %w", l.ID, err)
		}
		if raw != nil {
			old := raw.(*entry)
			olds[i] = old
			if old.Origin == l.Origin && old.SellerID == l.SellerID {
				// Nothing memdb indexes changes: keep the entry, and
				// swap in the new listing at commit (see entry).
				es[i] = old
				c.swaps = append(c.swaps, listingSwap{old, l})
				continue
			}
			counts[old.Origin]--
		}
		// The doc is set below, after the resolver is done: memdb does not
		// read it, and nobody sees the entry before the commit.
		es[i] = newEntry(l, nil)
		if err := txn.Insert(tableListings, es[i]); err != nil {
			return fmt.Errorf("catalog: insert %s: %w", l.ID, err)
		}
		counts[l.Origin]++
	}
	if err := addCounts(txn, counts); err != nil {
		return err
	}
	wg.Wait()

	for i := range ss {
		if old := olds[i]; old != nil {
			// The listing keeps its doc.
			es[i].doc = old.doc
			c.update(old.doc, ss[i].f)
		} else {
			es[i].doc = &doc{id: ss[i].l.ID, docFields: ss[i].f}
			c.inserted = append(c.inserted, es[i].doc)
		}
	}
	ix.commit(st, txn, c)
	return nil
}

func newEntry(l *Listing, d *doc) *entry {
	e := &entry{ID: l.ID, Origin: l.Origin, SellerID: l.SellerID, doc: d}
	e.listing.Store(l)
	return e
}

// commit makes a prepared write visible: memdb and the postings together,
// for Search, then wakes the watchers. The caller holds wmu.
func (ix *Index) commit(st *state, txn *memdb.Txn, c *change) {
	st.post.mu.Lock()
	txn.Commit()
	for _, sw := range c.swaps {
		sw.e.listing.Store(sw.l)
	}
	st.post.apply(c)
	st.post.mu.Unlock()
	ix.notifyChanged()
}

// addCounts adds deltas to the origin counts.
func addCounts(txn *memdb.Txn, deltas map[string]int) error {
	for origin, delta := range deltas {
		if delta == 0 {
			continue
		}
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
				if err := txn.Delete(tableOriginCounts, raw); err != nil {
					return fmt.Errorf("catalog: origin count: %w", err)
				}
			}
			continue
		}
		if err := txn.Insert(tableOriginCounts, &originCount{Key: key, Origin: origin, N: n}); err != nil {
			return fmt.Errorf("catalog: origin count: %w", err)
		}
	}
	return nil
}

// Delete removes listings by ID in one write transaction. IDs that are not
// in the catalog are ignored.
func (ix *Index) Delete(ids ...string) error {
	ix.wmu.Lock()
	defer ix.wmu.Unlock()
	st := ix.st.Load()
	txn := st.db.Txn(true)
	defer txn.Abort()
	c := &change{}
	counts := make(map[string]int, 4)
	for _, id := range ids {
		raw, err := txn.First(tableListings, indexID, id)
		if err != nil {
			return fmt.Errorf("catalog: look up %q: %w", id, err)
		}
		if raw == nil {
			continue // missing, or already deleted by this call
		}
		e := raw.(*entry)
		if err := txn.Delete(tableListings, e); err != nil {
			return fmt.Errorf("catalog: delete %s: %w", id, err)
		}
		counts[e.Origin]--
		c.deleted = append(c.deleted, e.doc)
	}
	if len(counts) == 0 {
		return nil // nothing deleted: no commit, no wake-up
	}
	if err := addCounts(txn, counts); err != nil {
		return err
	}
	ix.commit(st, txn, c)
	return nil
}

// Get returns the listing with the given ID.
func (ix *Index) Get(id string) (*Listing, bool) {
	raw, err := ix.db().Txn(false).First(tableListings, indexID, id)
	if err != nil || raw == nil {
		return nil, false
	}
	return raw.(*entry).listing.Load(), true
}

// Restore replaces the whole catalog with ls, Nomad-style: it builds a fresh
// state off to the side, then swaps it in atomically. Readers see either
// the old catalog or the new one, never a mix. On error the catalog is
// unchanged.
//
// The build takes no lock, since nothing can see the new state yet, and
// keeps both CPUs busy: the memdb transaction is filled on one goroutine
// from the start, while the listings are tokenized (on all CPUs), sorted by
// ID (the store returns them sorted, so this is usually a check) and put
// into the inverted index, where every posting is then an append.
//
// Restore is meant for start-up, before writes begin. Writers are
// serialised, so a concurrent Upsert or Delete is never lost into the
// discarded state, but one that completes while Restore is building is
// overwritten by ls: Restore wins over every write that finished before it
// returned.
func (ix *Index) Restore(ls []*Listing) error {
	next := newState()
	docs := make([]*doc, len(ls))
	for i, l := range ls {
		if l != nil {
			docs[i] = &doc{id: l.ID}
		}
	}
	// The memdb goroutine inserts every listing in ls order, so that of
	// two with the same ID the last wins, as below; it reads only the
	// listings and writes only the entries, and the docs' fields are filled
	// in here meanwhile. It then waits for the origin counts (nil: give up)
	// to commit.
	countsc := make(chan map[string]int, 1)
	var dbErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		txn := next.db.Txn(true)
		defer txn.Abort()
		for i, l := range ls {
			if l == nil || !validID(l.ID) {
				continue // stageAll reports it
			}
			if err := txn.Insert(tableListings, newEntry(l, docs[i])); err != nil {
				dbErr = fmt.Errorf("catalog: insert %s: %w", l.ID, err)
				break
			}
		}
		counts := <-countsc
		if counts == nil || dbErr != nil {
			return
		}
		if dbErr = addCounts(txn, counts); dbErr == nil {
			txn.Commit()
		}
	})
	err := restorePostings(next.post, ls, docs, countsc)
	wg.Wait()
	if err != nil {
		return err
	}
	if dbErr != nil {
		return dbErr
	}

	// Only the swap needs the writers' lock: building outside it keeps
	// Upserts flowing during a long restore, and the result is the same as
	// if they had all happened just before Restore.
	ix.wmu.Lock()
	ix.st.Store(next)
	ix.notifyChanged()
	ix.wmu.Unlock()
	return nil
}

// restorePostings is Restore's half of the build: it fills post, unseen by
// readers, with ls and docs, and sends the origin counts on countsc, or nil
// on error.
func restorePostings(post *postings, ls []*Listing, docs []*doc, countsc chan<- map[string]int) error {
	ss, err := stageAll(ls)
	if err != nil {
		countsc <- nil
		return err
	}
	for i := range ss {
		ss[i].d = docs[i]
	}
	idOrder := func(a, b staged) int { return strings.Compare(a.l.ID, b.l.ID) }
	if !slices.IsSortedFunc(ss, idOrder) {
		// Stable, so that among equal IDs the last in ls stays last.
		slices.SortStableFunc(ss, idOrder)
	}
	// Keep the last of each run of equal IDs.
	out := ss[:0]
	for i := range ss {
		if i+1 < len(ss) && ss[i+1].l.ID == ss[i].l.ID {
			continue
		}
		out = append(out, ss[i])
	}
	ss = out

	counts := make(map[string]int, 4)
	r := newResolver(post, true)
	sorted := make([]*doc, len(ss)) // docs is the memdb goroutine's
	for i := range ss {
		s := &ss[i]
		s.f.keys = r.docKeys(s)
		s.d.docFields = s.f
		sorted[i] = s.d
		counts[s.l.Origin]++
	}
	countsc <- counts
	post.build(sorted)
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
	s := newStream(txn, postingKey{indexSeller, sellerID})
	var ls []*Listing
	for s.seek(afterAll); !s.done; s.next() {
		ls = append(ls, s.cur.listing.Load())
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
