package catalog

import (
	"slices"
	"strings"
	"sync"
	"unique"
)

// The inverted index: one posting list per search token, HS code prefix,
// origin and region, kept outside go-memdb.
//
// In memdb each token posting was a key of a StringSliceFieldIndex: about
// 450 bytes of radix nodes, leaf and per-node watch channels, and an insert
// copied several nodes. With ~35 postings a listing, that made an Upsert
// cost ~190 µs and 2,000 allocations, a restore of 100,000 listings 11 to
// 15 s and the heap ~19 KB a listing. Here a posting is one pointer in a
// slice sorted by ID: 8 bytes, and adding one is usually an append, because
// IDs are "lst_"+ULID and arrive in increasing order.
//
// More than the tokens moved here, for the same reason, measured:
//   - HS prefixes (memdb's "hs" StringSliceFieldIndex): a six-digit code is
//     five keys ("10" ... "100630"), a national tariff line nine, each as
//     costly in memdb as a token.
//   - Origin and region: a handful of values, each with a list of tens of
//     thousands of listings, which is what an inverted index is for. As
//     memdb indexes they were a third of what was left of the write cost
//     once the tokens had moved (on the 2-core benchmark machine, bulk
//     upsert of 1,000 into 100,000: 19-23 µs a listing with them, 14-17
//     without; a single update 42 µs against 29) and ~900 bytes of heap a
//     listing.
//
// memdb keeps what it is good at: the listings table with its unique id
// index and the seller index, one key each, which give Get and BySeller
// lock-free snapshots, and the origin counts.
//
// Concurrency: postings.mu guards everything here and also orders memdb
// commits with respect to Search. A writer (serialised by Index.wmu) does
// the expensive work first, without mu: it tokenizes, stages its memdb
// transaction, and resolves tokens to posting list numbers (reading the
// maps, which only writers change, so a writer may read them unlocked). It
// then takes mu once per batch to commit memdb and splice the postings.
// Search holds mu for reading for its whole walk, so it sees memdb and the
// postings at the same commit.

// Posting kinds: the names, in postingKey, of the inverted index's lists.
// indexOrigin and indexRegion were memdb indexes, and keep their names.
const (
	indexToken  = "token"
	indexHS     = "hs"
	indexOrigin = "origin"
	indexRegion = "region"
)

// kind is a kind of posting list of the inverted index.
type kind uint8

const (
	kindToken kind = iota
	kindHS
	kindOrigin
	kindRegion
	numKinds
)

// kindOf returns the kind of the lists of index, if they are here.
func kindOf(index string) (kind, bool) {
	switch index {
	case indexToken:
		return kindToken, true
	case indexHS:
		return kindHS, true
	case indexOrigin:
		return kindOrigin, true
	case indexRegion:
		return kindRegion, true
	}
	return 0, false
}

// postingKey names one posting list: an index (a memdb index or a posting
// kind) and a value.
type postingKey struct{ index, value string }

// doc is the searchable form of one listing. Posting lists hold docs, and
// a listing keeps its doc for as long as it is in the index: an update
// overwrites the fields in place (under postings.mu) and touches only the
// posting lists of the tokens it adds or removes. Most updates (a price, a
// quantity) change no token at all, and then cost no posting work.
//
// A doc is mutable, so it must only be read with postings.mu held (or by
// the writer). The memdb row (entry) points to its doc for Search, which
// holds the lock; Get and BySeller read memdb without it and use
// entry.listing only.
type doc struct {
	id string // the listing ID; fixed for the doc's life
	docFields
}

// docFields is everything about a doc that an update replaces. All of it
// is derived from the Listing once, at insert time, so that searching never
// re-tokenizes and rarely has to touch the Listing itself.
//
// The code fields are interned (unique.Handle): thousands of docs then
// share one copy of "TH" or "MYR", and Search compares a candidate's codes
// with the query's as pointers, without reading the strings. A Search may
// walk thousands of docs scattered over a large heap, and every string it
// does not have to read is a cache miss saved.
type docFields struct {
	listing *Listing
	hsCode  string
	// keys are the numbers of the posting lists the doc is on (its tokens',
	// HS prefixes', origin's and region's), ascending. Search tests the
	// query's tokens on every doc it walks: a binary search each, in a few
	// adjacent words.
	keys                             []uint32
	origin, seller, region, currency unique.Handle[string]
	priceMinor                       int64
}

// hasKey reports whether d is on posting list k.
func (d *doc) hasKey(k uint32) bool {
	_, ok := slices.BinarySearch(d.keys, k)
	return ok
}

// plist is one posting list.
type plist struct {
	key  string // the token, HS prefix, origin or region
	kind kind
	docs []*doc // sorted by id, no duplicates
}

// postings is the inverted index of one generation of the catalog.
type postings struct {
	mu sync.RWMutex
	// keys maps a token, HS prefix, origin or region to its posting list
	// number, by kind.
	keys [numKinds]map[string]uint32
	// lists is indexed by posting list number. An emptied list is removed
	// from its map and its number reused (free), so memory follows the
	// catalog, not its history.
	lists []plist
	free  []uint32
	// sellers is the number of docs of each seller: the lengths of memdb's
	// seller lists, which memdb cannot count, for the planner. Exact, and
	// updated in the same critical section as the lists.
	sellers map[string]int
}

func newPostings() *postings {
	p := &postings{sellers: make(map[string]int)}
	for k := range p.keys {
		p.keys[k] = make(map[string]uint32)
	}
	return p
}

// lookup returns the posting list number of a key of kind k. The caller
// holds mu, or is the writer.
func (p *postings) lookup(k kind, key string) (uint32, bool) {
	n, ok := p.keys[k][key]
	return n, ok
}

// resolver turns keys into posting list numbers for a writer. Keys
// without a list get numbers reserved for new lists, which install creates.
// A resolver over a postings that no reader can see yet (direct) creates
// the lists at once instead.
type resolver struct {
	p      *postings
	direct bool
	// fresh are the lists to create, numbered; pending maps their keys.
	fresh    []freshList
	pending  [numKinds]map[string]uint32
	usedFree int    // numbers taken from the end of p.free
	next     uint32 // the next new number, after len(p.lists) and fresh
	scratch  []uint32
}

type freshList struct {
	n    uint32
	key  string
	kind kind
}

func newResolver(p *postings, direct bool) *resolver {
	return &resolver{p: p, direct: direct, next: uint32(len(p.lists))}
}

// key returns the posting list number of a key of kind k.
func (r *resolver) key(k kind, key string) uint32 {
	if n, ok := r.p.lookup(k, key); ok {
		return n
	}
	if n, ok := r.pending[k][key]; ok {
		return n
	}
	// The key may be a substring of a listing's whole token text: copy it,
	// so that the map does not keep the rest alive.
	key = strings.Clone(key)
	var n uint32
	free := r.p.free
	switch {
	case r.direct && len(free) > 0:
		n, r.p.free = free[len(free)-1], free[:len(free)-1]
	case r.direct:
		n = uint32(len(r.p.lists))
	case r.usedFree < len(free):
		n = free[len(free)-1-r.usedFree]
		r.usedFree++
	default:
		n = r.next
		r.next++
	}
	if r.direct {
		r.p.create(n, key, k)
		return n
	}
	if r.pending[k] == nil {
		r.pending[k] = make(map[string]uint32)
	}
	r.pending[k][key] = n
	r.fresh = append(r.fresh, freshList{n, key, k})
	return n
}

// docKeys returns the sorted posting list numbers of the listing s.
func (r *resolver) docKeys(s *staged) []uint32 {
	ks := r.scratch[:0]
	start := int32(0)
	for _, end := range s.toks.ends { // in any order, duplicates allowed
		ks = append(ks, r.key(kindToken, s.toks.all[start:end]))
		start = end
	}
	for _, pre := range hsPrefixes(s.f.hsCode) {
		ks = append(ks, r.key(kindHS, pre))
	}
	// An empty value is no condition in a query, so it is not indexed.
	if o := s.l.Origin; o != "" {
		ks = append(ks, r.key(kindOrigin, o))
	}
	if rg := s.l.ShipFrom; rg != "" {
		ks = append(ks, r.key(kindRegion, rg))
	}
	slices.Sort(ks)
	ks = slices.Compact(ks)
	r.scratch = ks
	if len(ks) == 0 {
		return nil
	}
	return slices.Clone(ks)
}

// create makes the empty list n for key.
func (p *postings) create(n uint32, key string, k kind) {
	if int(n) >= len(p.lists) {
		p.lists = append(p.lists, make([]plist, int(n)+1-len(p.lists))...)
	}
	p.lists[n] = plist{key: key, kind: k}
	p.keys[k][key] = n
}

// install creates the lists the resolver reserved. The caller holds mu.
func (r *resolver) install() {
	for _, f := range r.fresh {
		r.p.create(f.n, f.key, f.kind)
	}
	r.p.free = r.p.free[:len(r.p.free)-r.usedFree]
	r.fresh, r.pending = nil, [numKinds]map[string]uint32{}
	r.usedFree, r.next = 0, uint32(len(r.p.lists))
}

// change is what a write does to the postings, prepared without the lock
// and applied with it.
type change struct {
	r *resolver
	// inserted are new docs, deleted docs leaving the catalog: all their
	// keys' lists change.
	inserted, deleted []*doc
	// updates are docs whose fields an update replaces; adds and removes
	// are the postings the update changes (doc d onto or off list n).
	updates       []docUpdate
	adds, removes []posting
	// swaps are memdb entries kept by an update, and their new listings.
	swaps []listingSwap
}

type listingSwap struct {
	e *entry
	l *Listing
}

type docUpdate struct {
	d *doc
	f docFields
}

type posting struct {
	n uint32
	d *doc
}

// update stages replacing the fields of d, a doc in the catalog, by f. Only
// the lists of keys that f adds or drops change.
func (c *change) update(d *doc, f docFields) {
	old, nw := d.keys, f.keys
	for len(old) > 0 || len(nw) > 0 {
		switch {
		case len(nw) == 0 || len(old) > 0 && old[0] < nw[0]:
			c.removes = append(c.removes, posting{old[0], d})
			old = old[1:]
		case len(old) == 0 || nw[0] < old[0]:
			c.adds = append(c.adds, posting{nw[0], d})
			nw = nw[1:]
		default:
			old, nw = old[1:], nw[1:]
		}
	}
	c.updates = append(c.updates, docUpdate{d, f})
}

// apply makes the change. The caller holds p.mu for writing.
func (p *postings) apply(c *change) {
	if c.r != nil {
		c.r.install()
	}
	var slow splices
	// Removals first, while the docs still have their old keys.
	for _, d := range c.deleted {
		for _, k := range d.keys {
			slow.remove(k, d)
		}
		p.count(&d.docFields, -1)
	}
	for _, a := range c.removes {
		slow.remove(a.n, a.d)
	}
	for i := range c.updates {
		u := &c.updates[i]
		if u.d.seller != u.f.seller {
			p.count(&u.d.docFields, -1)
			p.count(&u.f, +1)
		}
		u.d.docFields = u.f
	}
	for _, d := range c.inserted {
		for _, k := range d.keys {
			p.add(&slow, k, d)
		}
		p.count(&d.docFields, +1)
	}
	for _, a := range c.adds {
		p.add(&slow, a.n, a.d)
	}
	for n, s := range slow {
		l := &p.lists[n]
		l.docs = s.apply(l.docs)
		if len(l.docs) == 0 {
			delete(p.keys[l.kind], l.key)
			*l = plist{}
			p.free = append(p.free, n)
		}
	}
}

// add puts d on list n. Appends at the end of a list are the common case
// (new listings have the newest IDs) and cost nothing to find. Everything
// else is grouped by list in slow and spliced in one pass per list, so that
// a batch touching a long list many times moves its tail once, not once per
// posting.
func (p *postings) add(slow *splices, n uint32, d *doc) {
	l := &p.lists[n]
	if k := len(l.docs); k == 0 || l.docs[k-1].id < d.id {
		l.docs = append(l.docs, d)
		return
	}
	s := slow.get(n)
	s.add = append(s.add, d)
}

// count adds delta to the count of the seller of a doc with fields f.
func (p *postings) count(f *docFields, delta int) {
	seller := f.seller.Value()
	if seller == "" {
		return // not indexed by memdb (AllowMissing), so not counted
	}
	if n := p.sellers[seller] + delta; n > 0 {
		p.sellers[seller] = n
	} else {
		delete(p.sellers, seller)
	}
}

// splices are the postings of one batch that are not appends, by list.
type splices map[uint32]*splice

func (ss *splices) get(n uint32) *splice {
	if *ss == nil {
		*ss = make(splices)
	}
	s := (*ss)[n]
	if s == nil {
		s = &splice{}
		(*ss)[n] = s
	}
	return s
}

func (ss *splices) remove(n uint32, d *doc) {
	s := ss.get(n)
	s.rem = append(s.rem, d)
}

// splice is the postings of one batch for one list that are not appends.
type splice struct{ rem, add []*doc }

func byID(a, b *doc) int { return strings.Compare(a.id, b.id) }

// search returns the position of the first doc in docs whose id is >= id.
func search(docs []*doc, id string) int {
	i, _ := slices.BinarySearchFunc(docs, id, func(d *doc, id string) int { return strings.Compare(d.id, id) })
	return i
}

// apply removes s.rem from docs and inserts s.add, each with one binary
// search and the moves of the elements in between, in place.
func (s *splice) apply(docs []*doc) []*doc {
	if len(s.rem) > 0 {
		slices.SortFunc(s.rem, byID)
		w := -1 // docs[:w] is final; -1 until the first removal
		r := 0  // next element of docs to keep
		for _, d := range s.rem {
			i := r + search(docs[r:], d.id)
			if i == len(docs) || docs[i] != d {
				panic("catalog: posting to remove is not in its list")
			}
			if w < 0 {
				w = i
			} else {
				w += copy(docs[w:], docs[r:i])
			}
			r = i + 1
		}
		w += copy(docs[w:], docs[r:])
		clear(docs[w:]) // let the removed docs be collected
		docs = docs[:w]
		// Bounded memory: a list that shrank to a quarter of its capacity
		// gives the rest back.
		if cap(docs) > 64 && len(docs) < cap(docs)/4 {
			docs = slices.Clone(docs)
		}
	}
	if len(s.add) > 0 {
		slices.SortFunc(s.add, byID)
		old := len(docs)
		docs = slices.Grow(docs, len(s.add))[:old+len(s.add)]
		// From the back: each run of old elements moves up by the number of
		// additions still to place before it.
		end := old
		for j := len(s.add) - 1; j >= 0; j-- {
			i := search(docs[:end], s.add[j].id)
			copy(docs[i+j+1:end+j+1], docs[i:end])
			docs[i+j] = s.add[j]
			end = i
		}
	}
	return docs
}

// build fills an empty, unpublished postings with docs, which are sorted
// by id without duplicates: every posting is then an append. The lists are
// sized exactly first, which saves growing them and leaves no slack.
func (p *postings) build(docs []*doc) {
	lens := make([]int32, len(p.lists))
	for _, d := range docs {
		for _, k := range d.keys {
			lens[k]++
		}
	}
	for k, n := range lens {
		if n > 0 {
			p.lists[k].docs = make([]*doc, 0, n)
		}
	}
	for _, d := range docs {
		for _, k := range d.keys {
			p.lists[k].docs = append(p.lists[k].docs, d)
		}
		p.count(&d.docFields, +1)
	}
}
