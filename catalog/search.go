package catalog

import (
	"encoding/base64"
	"errors"
	"strings"
	"unique"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/imtgt/imtgt-node/money"
)

// Page size limits.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// ErrBadCursor is returned by Search for a cursor it did not issue.
var ErrBadCursor = errors.New("bad cursor")

// Query is a catalog search. All its conditions must hold (AND); zero
// fields are no condition. Results are ordered newest first.
type Query struct {
	// Text is free text; a listing must contain every one of its tokens
	// (see Tokens) in its title, description, attribute values or seller's
	// legal name. Text with no tokens (only punctuation) is no condition.
	Text string
	// HS is a prefix of the listing's HS code: "0901" matches "090111".
	HS string
	// Origin is the exact origin country of the listing.
	Origin string
	// Region is the exact ShipFrom subdivision of the listing.
	Region   string
	SellerID string
	// MinPrice and MaxPrice are inclusive bounds. A listing priced in
	// another currency than a bound never matches it, unless Convert is set.
	MinPrice, MaxPrice *money.Amount
	// Convert, if non-nil, converts a listing's price into the currency of
	// a price bound; false means it cannot, and the listing does not match.
	// It is called only for listings in another currency than the bound.
	Convert func(price money.Amount, currency string) (money.Amount, bool)
	// Filter, if non-nil, is an extra condition, checked last.
	Filter func(*Listing) bool
	// Limit is the page size: DefaultLimit if zero or negative, at most
	// MaxLimit.
	Limit int
	// Cursor is Page.NextCursor of the previous page; empty for the first.
	Cursor string
}

// Page is one page of search results.
type Page struct {
	Items []*Listing // never nil
	// NextCursor fetches the next page; empty when there are no more results.
	NextCursor string
}

// cursorEncoding is strict so that each cursor has exactly one spelling.
var cursorEncoding = base64.RawURLEncoding.Strict()

func encodeCursor(id string) string { return cursorEncoding.EncodeToString([]byte(id)) }

func decodeCursor(c string) (string, error) {
	if len(c) > cursorEncoding.EncodedLen(maxIDLen) {
		return "", ErrBadCursor
	}
	b, err := cursorEncoding.DecodeString(c)
	if err != nil || !validID(string(b)) {
		return "", ErrBadCursor
	}
	return string(b), nil
}

// Search returns one page of the listings matching q, newest first.
//
// Every condition that has an index (each text token, an HS prefix of 2 to
// maxHSIndexed characters, Origin and Region in the inverted index;
// SellerID in memdb) has an ID-sorted posting list. Search walks the
// shortest of them backwards from the cursor and tests each listing it
// meets against the whole query, stopping one match after the page is full.
// A token with no postings means no results at all, at once.
//
// The work is bounded by the shortest list, not by the result: the worst
// case is a common word combined with a price range or Filter that almost
// nothing passes, which reads the word's whole posting list.
//
// Search holds the inverted index's read lock while it walks a list, and
// calls q.Filter and q.Convert under it: they must not write to the Index
// (that would deadlock), nor search it again. A query without an indexed
// condition takes no lock: it scans the whole catalog, in a memdb snapshot.
func (ix *Index) Search(q Query) (Page, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	start := afterAll
	if q.Cursor != "" {
		id, err := decodeCursor(q.Cursor)
		if err != nil {
			return Page{}, err
		}
		start = id
	}
	pg := pager{limit: limit, start: start, page: Page{Items: make([]*Listing, 0, min(limit, 32))}}
	p := newPredicate(q) // tokenizing needs no lock
	st := ix.st.Load()

	if !p.indexed() {
		// Every listing is a candidate, and only its Listing is needed to
		// test it (see matchListing): walk memdb's id index in a snapshot,
		// as memdb is made for, rather than hold the lock for a scan of the
		// whole catalog.
		s := newStream(st.db.Txn(false), postingKey{indexID, ""})
		for s.seek(start); !s.done; s.next() {
			if l := s.cur.listing.Load(); p.matchListing(l) && !pg.add(l.ID, l) {
				break
			}
		}
		return pg.page, nil
	}

	post := st.post
	post.mu.RLock()
	defer post.mu.RUnlock()
	if !p.resolve(post) {
		return pg.page, nil // a token no listing has
	}
	next := driver(st, planDriver(post, q, p.tokens), start)
	for d := next(); d != nil; d = next() {
		if p.match(d) && !pg.add(d.id, d.listing) {
			break
		}
	}
	return pg.page, nil
}

// pager collects the matches of a walk into a page.
type pager struct {
	limit int
	start string // the cursor's ID, or afterAll
	last  string // the ID of the last item
	page  Page
}

// add adds a match, in descending ID order, and reports whether the walk
// should go on.
func (pg *pager) add(id string, l *Listing) bool {
	if id == pg.start {
		return true // the cursor is the last item of the previous page
	}
	if len(pg.page.Items) == pg.limit {
		// One more match than the page holds: there is a next page.
		pg.page.NextCursor = encodeCursor(pg.last)
		return false
	}
	pg.page.Items = append(pg.page.Items, l)
	pg.last = id
	return true
}

// driver returns an iterator over the posting list k, newest first from
// the greatest ID <= start; it returns nil at the end. The caller holds the
// postings' read lock.
func driver(st *state, k postingKey, start string) func() *doc {
	if kd, ok := kindOf(k.index); ok {
		var docs []*doc
		if n, ok := st.post.lookup(kd, k.value); ok {
			docs = st.post.lists[n].docs
		}
		// The last doc with an ID <= start.
		i := search(docs, start)
		if i == len(docs) || docs[i].id != start {
			i--
		}
		return func() *doc {
			if i < 0 {
				return nil
			}
			d := docs[i]
			i--
			return d
		}
	}
	// A seller's list, in memdb. The snapshot is taken under the postings'
	// read lock, so it is the same commit as the docs it points to.
	s := newStream(st.db.Txn(false), k)
	s.seek(start)
	first := true
	return func() *doc {
		if !first {
			s.next()
		}
		first = false
		if s.done {
			return nil
		}
		return s.cur.doc
	}
}

// planDriver chooses the posting list Search walks: the shortest one among
// the query's indexed conditions, or the whole id index if it has none.
// Lengths are exact: the inverted index's lists know theirs, and it counts
// the sellers'. The caller holds the postings' read lock.
//
// The original design merged all the lists (leapfrogging each to the
// smallest ID any was at). Measured on 100,000 listings (bench_test.go)
// that took up to 15 ms for "organic coffee" in one region and 55 ms for
// "น้ำพริก" (six bigram lists) under a price bound: a merge walks every list
// entry by entry wherever the others are denser than one match per few
// entries. Testing a candidate for the other conditions instead (a binary
// search in its posting numbers, a pointer comparison) costs little once
// it is loaded, so walking only the shortest list reads at most as many
// entries as the merge and usually far fewer.
func planDriver(post *postings, q Query, tokens []string) postingKey {
	conds := make([]postingKey, 0, len(tokens)+4)
	for _, t := range tokens {
		conds = append(conds, postingKey{indexToken, t})
	}
	for _, c := range [...]postingKey{{indexOrigin, q.Origin}, {indexRegion, q.Region}, {indexSeller, q.SellerID}} {
		if c.value != "" {
			conds = append(conds, c)
		}
	}
	if len(q.HS) >= 2 && len(q.HS) <= maxHSIndexed {
		conds = append(conds, postingKey{indexHS, q.HS})
	}
	best, bestN := postingKey{indexID, ""}, -1
	for _, c := range conds {
		if n := post.length(c); bestN < 0 || n < bestN {
			best, bestN = c, n
		}
	}
	return best
}

// length is the number of docs on the posting list k.
func (p *postings) length(k postingKey) int {
	if kd, ok := kindOf(k.index); ok {
		if n, ok := p.lookup(kd, k.value); ok {
			return len(p.lists[n].docs)
		}
		return 0
	}
	return p.sellers[k.value] // the seller index, the only other one
}

// predicate is the whole query as a test on one doc. Search checks it on
// every doc of the list it walks, including the condition that list
// already ensures: that is cheap, and keeps results correct whichever list
// the planner chose.
type predicate struct {
	q        Query
	tokens   []string
	keys     []uint32 // the tokens' posting list numbers (see resolve)
	thaiRuns []string
	// The query's codes as handles, compared with the docs' (see docFields).
	origin, region, seller unique.Handle[string]
	minCur, maxCur         unique.Handle[string]
}

func newPredicate(q Query) *predicate {
	p := &predicate{q: q, tokens: Tokens(q.Text), thaiRuns: thaiRuns(q.Text)}
	p.origin, p.region, p.seller = unique.Make(q.Origin), unique.Make(q.Region), unique.Make(q.SellerID)
	if q.MinPrice != nil {
		p.minCur = unique.Make(q.MinPrice.Currency)
	}
	if q.MaxPrice != nil {
		p.maxCur = unique.Make(q.MaxPrice.Currency)
	}
	return p
}

// resolve looks up the posting list numbers of the query's tokens. It
// returns false if a token has none: then nothing matches. The caller holds
// the postings' read lock, and keeps it as long as it uses p: a list number
// is reused once its list empties.
func (p *predicate) resolve(post *postings) bool {
	p.keys = make([]uint32, len(p.tokens))
	for i, t := range p.tokens {
		n, ok := post.lookup(kindToken, t)
		if !ok {
			return false
		}
		p.keys[i] = n
	}
	return true
}

// match tests the cheap conditions first: most candidates fail on one, and
// the Listing itself is read only for the Thai phrase check and Filter.
func (p *predicate) match(d *doc) bool {
	q := &p.q
	if q.Origin != "" && d.origin != p.origin ||
		q.Region != "" && d.region != p.region ||
		q.SellerID != "" && d.seller != p.seller ||
		!strings.HasPrefix(d.hsCode, q.HS) {
		return false
	}
	if q.MinPrice != nil {
		price, ok := p.price(d, q.MinPrice.Currency, p.minCur)
		if !ok || price < q.MinPrice.Minor {
			return false
		}
	}
	if q.MaxPrice != nil {
		price, ok := p.price(d, q.MaxPrice.Currency, p.maxCur)
		if !ok || price > q.MaxPrice.Minor {
			return false
		}
	}
	for _, k := range p.keys {
		if !d.hasKey(k) {
			return false
		}
	}
	for _, run := range p.thaiRuns {
		if !containsText(d.listing, run) {
			return false
		}
	}
	return q.Filter == nil || q.Filter(d.listing)
}

// price is the doc's price in minor units of currency (whose handle is
// cur), converted with q.Convert if it is in another currency.
func (p *predicate) price(d *doc, currency string, cur unique.Handle[string]) (int64, bool) {
	if d.currency == cur {
		return d.priceMinor, true
	}
	return p.convert(money.Amount{Minor: d.priceMinor, Currency: d.currency.Value()}, currency)
}

// convert returns a price in minor units of currency, converted with
// q.Convert if it is in another currency.
func (p *predicate) convert(a money.Amount, currency string) (int64, bool) {
	if a.Currency == currency {
		return a.Minor, true
	}
	if p.q.Convert == nil {
		return 0, false
	}
	c, ok := p.q.Convert(a, currency)
	return c.Minor, ok && c.Currency == currency
}

// indexed reports whether the query has a condition with a posting list:
// then planDriver picks one, and otherwise it falls back on the id index.
func (p *predicate) indexed() bool {
	q := &p.q
	return len(p.tokens) > 0 || q.Origin != "" || q.Region != "" || q.SellerID != "" ||
		len(q.HS) >= 2 && len(q.HS) <= maxHSIndexed
}

// matchListing is match for a query that is not indexed: it has no tokens
// (so no Thai runs either), no Origin, Region or SellerID, and any HS
// prefix is too short or too long for a list; the rest needs only the
// immutable Listing, so it is safe without the postings' lock.
func (p *predicate) matchListing(l *Listing) bool {
	q := &p.q
	if !strings.HasPrefix(l.HSCode, q.HS) {
		return false
	}
	if q.MinPrice != nil {
		price, ok := p.convert(l.Price, q.MinPrice.Currency)
		if !ok || price < q.MinPrice.Minor {
			return false
		}
	}
	if q.MaxPrice != nil {
		price, ok := p.convert(l.Price, q.MaxPrice.Currency)
		if !ok || price > q.MaxPrice.Minor {
			return false
		}
	}
	return q.Filter == nil || q.Filter(l)
}

// containsText reports whether s occurs verbatim in one of the listing's
// searchable fields. It is used only for Thai runs, which have no case.
func containsText(l *Listing, s string) bool {
	if strings.Contains(l.Title, s) || strings.Contains(l.Description, s) || strings.Contains(l.Seller.LegalName, s) {
		return true
	}
	for _, v := range l.Attributes {
		if strings.Contains(v, s) {
			return true
		}
	}
	return false
}

// afterAll is an ID bound above every valid ID: IDs are valid UTF-8, and the
// byte 0xFF never occurs in valid UTF-8.
const afterAll = "\xff"

// stream walks one of memdb's posting lists (the entries of one seller, or
// all of them in the id index) by descending ID.
//
// A stream reads only the entries' own fields, never their docs: BySeller,
// and Search over the id index, use it without the postings' lock.
//
// memdb's iterators return objects, not keys, and ReverseLowerBound does not
// stop at the end of the value's key range: it goes on into the previous
// value's entries. A stream detects that end with two checks on each entry:
// it must have the stream's value (has), and its ID must be below the last
// one returned (or at most the seek bound, for the first). An entry past the
// end that has the value is also in the range, so it either was already
// returned or lies above the seek bound; either way its ID fails the check.
type stream struct {
	txn   *memdb.Txn
	index string
	value string // "" for the id index
	has   func(*entry) bool

	it        memdb.ResultIterator
	cur       *entry
	done      bool
	upper     string // IDs still to come are < upper (<= while inclusive)
	inclusive bool
}

// newStream returns an unpositioned stream over memdb's posting list k.
func newStream(txn *memdb.Txn, k postingKey) *stream {
	index, value := k.index, k.value
	s := &stream{txn: txn, index: index, value: value}
	switch index {
	case indexSeller:
		s.has = func(e *entry) bool { return e.SellerID == value }
	default:
		s.has = func(*entry) bool { return true }
	}
	return s
}

// seek positions the stream at its greatest ID <= bound.
func (s *stream) seek(bound string) {
	// The id index key is "<id>\x00", every other key "<value>\x00<id>\x00";
	// the indexers' FromArgs append the final NUL, so this argument seeks
	// to exactly the key the entry with ID bound has, or would have.
	arg := bound
	if s.index != indexID {
		arg = s.value + "\x00" + bound
	}
	it, err := s.txn.ReverseLowerBound(tableListings, s.index, arg)
	if err != nil { // impossible: table and index names are constants
		s.done, s.cur = true, nil
		return
	}
	s.it, s.upper, s.inclusive = it, bound, true
	s.next()
}

// next moves to the next older entry.
func (s *stream) next() {
	raw := s.it.Next()
	if raw == nil {
		s.done, s.cur = true, nil
		return
	}
	e := raw.(*entry)
	if !(e.ID < s.upper || s.inclusive && e.ID == s.upper) || !s.has(e) {
		s.done, s.cur = true, nil
		return
	}
	s.cur, s.upper, s.inclusive = e, e.ID, false
}
