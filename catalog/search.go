package catalog

import (
	"encoding/base64"
	"errors"
	"hash/maphash"
	"slices"
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
// Every condition that has an index (each text token, Origin, Region,
// SellerID, an HS prefix of 2 to maxHSIndexed characters) has an ID-sorted
// posting list. Search walks the shortest of them backwards from the cursor
// and tests each entry it meets against the whole query, stopping one match
// after the page is full. A token with no postings is the shortest list of
// all, so such a query ends at once.
//
// The work is bounded by the shortest list, not by the result: the worst
// case is a common word combined with a price range or Filter that almost
// nothing passes, which reads the word's whole posting list.
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

	st := ix.st.Load()
	p := newPredicate(q, ix.seed)
	s := newStream(st.db.Txn(false), planDriver(st.stats, q, p.tokens), ix.seed)
	page := Page{Items: make([]*Listing, 0, min(limit, 32))}
	s.seek(start)
	if !s.done && s.cur.ID == start {
		s.next() // the cursor is the last item of the previous page
	}
	var last *entry
	for ; !s.done; s.next() {
		if !p.match(s.cur) {
			continue
		}
		if len(page.Items) == limit {
			// One more match than the page holds: there is a next page.
			page.NextCursor = encodeCursor(last.ID)
			break
		}
		page.Items = append(page.Items, s.cur.Listing)
		last = s.cur
	}
	return page, nil
}

// planDriver chooses the posting list Search walks: the shortest one among
// the query's indexed conditions, or the whole id index if it has none.
//
// The original design merged all the lists (leapfrogging each to the
// smallest ID any was at). Measured on 100,000 listings (bench_test.go)
// that took up to 15 ms for "organic coffee" in one region and 55 ms for
// "น้ำพริก" (six bigram lists) under a price bound: a merge walks every list
// entry by entry wherever the others are denser than one match per few
// entries, and on a large catalog each step through memdb's tree costs up
// to half a microsecond of cache misses. Testing an entry for the other
// conditions instead (a binary search in its token hashes, a pointer
// comparison) costs little once the entry is loaded, so walking only the
// shortest list reads at most as many entries as the merge and usually far
// fewer; those two queries now take 0.3 and 1 ms with a cold cache.
func planDriver(stats *postingStats, q Query, tokens []string) postingKey {
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
		if n := stats.count(c.index, c.value); bestN < 0 || n < bestN {
			best, bestN = c, n
		}
	}
	return best
}

// predicate is the whole query as a test on one entry. Search checks it on
// every entry of the list it walks, including the condition that list
// already ensures: that is cheap, and keeps results correct whichever list
// the planner chose.
type predicate struct {
	q           Query
	tokens      []string
	tokenHashes []uint64
	thaiRuns    []string
	// The query's codes as handles, compared with the entries' (see entry).
	origin, region, seller unique.Handle[string]
	minCur, maxCur         unique.Handle[string]
}

func newPredicate(q Query, seed maphash.Seed) *predicate {
	p := &predicate{q: q, tokens: Tokens(q.Text), thaiRuns: thaiRuns(q.Text)}
	for _, t := range p.tokens {
		p.tokenHashes = append(p.tokenHashes, maphash.String(seed, t))
	}
	p.origin, p.region, p.seller = unique.Make(q.Origin), unique.Make(q.Region), unique.Make(q.SellerID)
	if q.MinPrice != nil {
		p.minCur = unique.Make(q.MinPrice.Currency)
	}
	if q.MaxPrice != nil {
		p.maxCur = unique.Make(q.MaxPrice.Currency)
	}
	return p
}

// match tests the cheap conditions first: most candidates fail on one, and
// the Listing itself is read only for the Thai phrase check and Filter.
func (p *predicate) match(e *entry) bool {
	q := &p.q
	if q.Origin != "" && e.origin != p.origin ||
		q.Region != "" && e.region != p.region ||
		q.SellerID != "" && e.seller != p.seller ||
		!strings.HasPrefix(e.HSCode, q.HS) {
		return false
	}
	if q.MinPrice != nil {
		price, ok := p.price(e, q.MinPrice.Currency, p.minCur)
		if !ok || price < q.MinPrice.Minor {
			return false
		}
	}
	if q.MaxPrice != nil {
		price, ok := p.price(e, q.MaxPrice.Currency, p.maxCur)
		if !ok || price > q.MaxPrice.Minor {
			return false
		}
	}
	for i, t := range p.tokens {
		if !e.hasToken(t, p.tokenHashes[i]) {
			return false
		}
	}
	for _, run := range p.thaiRuns {
		if !containsText(e.Listing, run) {
			return false
		}
	}
	return q.Filter == nil || q.Filter(e.Listing)
}

// price is the entry's price in minor units of currency (whose handle is
// cur), converted with q.Convert if it is in another currency.
func (p *predicate) price(e *entry, currency string, cur unique.Handle[string]) (int64, bool) {
	if e.currency == cur {
		return e.priceMinor, true
	}
	if p.q.Convert == nil {
		return 0, false
	}
	c, ok := p.q.Convert(money.Amount{Minor: e.priceMinor, Currency: e.currency.Value()}, currency)
	return c.Minor, ok && c.Currency == currency
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

// stream walks one posting list (the entries under one value of one index)
// by descending ID.
//
// memdb's iterators return objects, not keys, and ReverseLowerBound does not
// stop at the end of the value's key range: it goes on into the previous
// value's entries. A stream detects that end with two checks on each entry:
// it must have the stream's value (has), and its ID must be below the last
// one returned (or at most the seek bound, for the first). An entry past the
// end that has the value is also in the range, so it either was already
// returned or lies above the seek bound; either way its ID fails the check.
//
// For tokens, has tests the hash only (see newStream), so a token stream
// may in theory return an entry without the token; Search's predicate
// compares the strings.
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

// newStream returns an unpositioned stream over the posting list k; seed is
// the index's token hash seed.
func newStream(txn *memdb.Txn, k postingKey, seed maphash.Seed) *stream {
	index, value := k.index, k.value
	s := &stream{txn: txn, index: index, value: value}
	switch index {
	case indexToken:
		// The hash alone: it answers from the entry's hash array without
		// reading a token string, and a (seeded, 64-bit) collision would
		// only let the walk run on past the list's end into entries that
		// Search's predicate, which compares the strings, then rejects.
		h := maphash.String(seed, value)
		s.has = func(e *entry) bool { _, ok := slices.BinarySearch(e.tokenHashes, h); return ok }
	case indexOrigin:
		h := unique.Make(value)
		s.has = func(e *entry) bool { return e.origin == h }
	case indexSeller:
		h := unique.Make(value)
		s.has = func(e *entry) bool { return e.seller == h }
	case indexRegion:
		h := unique.Make(value)
		s.has = func(e *entry) bool { return e.region == h }
	case indexHS:
		// For 2 <= len(value) <= maxHSIndexed (the only HS streams Search
		// makes) this is exactly "value is one of e.HSPrefixes".
		s.has = func(e *entry) bool { return strings.HasPrefix(e.HSCode, value) }
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
