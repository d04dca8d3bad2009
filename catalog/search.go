package catalog

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"

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
// SellerID, an HS prefix of 2 to maxHSIndexed characters) is an ID-sorted
// posting list; Search walks them all backwards from the cursor at once,
// leapfrogging each list to the smallest ID any of them is at, so it reads
// about as many entries as the rarest list holds before the page is full.
// The other conditions (prices, Filter) are checked on each candidate. The
// worst case is a common word combined with a price range or Filter that
// almost nothing passes: that reads the word's whole posting list.
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

	txn := ix.db().Txn(false)
	var ss []*stream
	for _, tok := range Tokens(q.Text) {
		ss = append(ss, newStream(txn, indexToken, tok))
	}
	if q.Origin != "" {
		ss = append(ss, newStream(txn, indexOrigin, q.Origin))
	}
	if q.Region != "" {
		ss = append(ss, newStream(txn, indexRegion, q.Region))
	}
	if q.SellerID != "" {
		ss = append(ss, newStream(txn, indexSeller, q.SellerID))
	}
	if len(q.HS) >= 2 && len(q.HS) <= maxHSIndexed {
		ss = append(ss, newStream(txn, indexHS, q.HS))
	}
	if len(ss) == 0 {
		ss = append(ss, newStream(txn, indexID, ""))
	}

	page := Page{Items: make([]*Listing, 0, min(limit, 32))}
	for _, s := range ss {
		s.seek(start)
		if !s.done && s.cur.ID == start {
			s.next() // the cursor is the last item of the previous page
		}
		if s.done {
			return page, nil // some condition has no (more) entries at all
		}
	}
	p := newPredicate(q)
	var last *entry
	intersect(ss, func(e *entry) bool {
		if !p.match(e) {
			return true
		}
		if len(page.Items) == limit {
			// One more match than the page holds: there is a next page.
			page.NextCursor = encodeCursor(last.ID)
			return false
		}
		page.Items = append(page.Items, e.Listing)
		last = e
		return true
	})
	return page, nil
}

// predicate is the whole query as a test on one entry. Search checks it on
// every candidate, including conditions the posting lists already ensured:
// it is cheap, and it keeps results correct whichever lists Search used.
type predicate struct {
	q        Query
	thaiRuns []string
}

func newPredicate(q Query) predicate { return predicate{q: q, thaiRuns: thaiRuns(q.Text)} }

func (p predicate) match(e *entry) bool {
	q := &p.q
	l := e.Listing
	if q.Origin != "" && e.Origin != q.Origin ||
		q.Region != "" && e.ShipFrom != q.Region ||
		q.SellerID != "" && e.SellerID != q.SellerID ||
		!strings.HasPrefix(e.HSCode, q.HS) {
		return false
	}
	if q.MinPrice != nil {
		price, ok := p.convert(l.Price, q.MinPrice.Currency)
		if !ok || price.Minor < q.MinPrice.Minor {
			return false
		}
	}
	if q.MaxPrice != nil {
		price, ok := p.convert(l.Price, q.MaxPrice.Currency)
		if !ok || price.Minor > q.MaxPrice.Minor {
			return false
		}
	}
	for _, run := range p.thaiRuns {
		if !containsText(l, run) {
			return false
		}
	}
	return q.Filter == nil || q.Filter(l)
}

func (p predicate) convert(price money.Amount, currency string) (money.Amount, bool) {
	if price.Currency == currency {
		return price, true
	}
	if p.q.Convert == nil {
		return money.Amount{}, false
	}
	c, ok := p.q.Convert(price, currency)
	return c, ok && c.Currency == currency
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

// linearSkips is how many steps a posting list walks before it re-seeks
// through the tree instead. A step costs tens of nanoseconds, a seek
// (ReverseLowerBound) about a microsecond and a few allocations, so dense
// lists walk and sparse gaps are jumped.
const linearSkips = 16

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

func newStream(txn *memdb.Txn, index, value string) *stream {
	s := &stream{txn: txn, index: index, value: value}
	switch index {
	case indexToken:
		s.has = func(e *entry) bool { _, ok := slices.BinarySearch(e.Tokens, value); return ok }
	case indexOrigin:
		s.has = func(e *entry) bool { return e.Origin == value }
	case indexSeller:
		s.has = func(e *entry) bool { return e.SellerID == value }
	case indexRegion:
		s.has = func(e *entry) bool { return e.ShipFrom == value }
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
var DbgSeeks, DbgNexts int

func (s *stream) seek(bound string) {
	DbgSeeks++
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
	DbgNexts++
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

// skipTo moves to the greatest ID <= target.
func (s *stream) skipTo(target string) {
	for range linearSkips {
		if s.done || s.cur.ID <= target {
			return
		}
		s.next()
	}
	if !s.done && s.cur.ID > target {
		s.seek(target)
	}
}

// intersect calls yield with each entry that is in every stream, by
// descending ID, until yield returns false or a stream ends. Every stream
// must have been seeked.
func intersect(ss []*stream, yield func(*entry) bool) {
	for {
		// No entry above the smallest current ID can be in every stream.
		target := ss[0].cur.ID
		for _, s := range ss[1:] {
			target = min(target, s.cur.ID)
		}
		all := true
		for _, s := range ss {
			if s.cur.ID != target {
				s.skipTo(target)
				if s.done {
					return
				}
				all = all && s.cur.ID == target
			}
		}
		if !all {
			continue
		}
		if !yield(ss[0].cur) {
			return
		}
		for _, s := range ss {
			s.next()
			if s.done {
				return
			}
		}
	}
}
