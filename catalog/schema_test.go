package catalog

// Internal tests: the schema, the key layout Search depends on and the
// inverted index's invariants are unexported, so they are checked from
// inside the package.

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unique"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/money"
)

func TestSchemaBuilds(t *testing.T) {
	s := dbSchema()
	_, err := memdb.NewMemDB(s)
	require.NoError(t, err)
	require.NotEmpty(t, s.Tables)
	for name, table := range s.Tables {
		require.Equal(t, name, table.Name, "table registered under its own name")
		id, ok := table.Indexes[indexID]
		require.True(t, ok, "table %s has an id index", name)
		require.True(t, id.Unique, "table %s: id index is unique", name)
		for iname, idx := range table.Indexes {
			require.Equal(t, iname, idx.Name, "table %s: index registered under its own name", name)
		}
	}
}

// sellerEntry makes a memdb row for the key layout tests.
func sellerEntry(id, seller string) *entry {
	return newEntry(&Listing{ID: id, SellerID: seller}, nil)
}

// TestNonUniqueKeyLayout pins down what go-memdb v1.3.5 does and Search
// relies on: a non-unique index key is value + "\x00" + id + "\x00"
// (StringFieldIndex terminates with NUL, and the primary key is appended),
// so ReverseLowerBound with the argument value+"\x00"+id lands exactly on
// that entry, and otherwise on the next smaller key.
func TestNonUniqueKeyLayout(t *testing.T) {
	db, err := memdb.NewMemDB(dbSchema())
	require.NoError(t, err)
	txn := db.Txn(true)
	for _, e := range []*entry{
		sellerEntry("lst_1", "rice"),
		sellerEntry("lst_3", "rice"),
		sellerEntry("lst_5", "rice"),
		sellerEntry("lst_7", "ric"), // the previous value's range
	} {
		require.NoError(t, txn.Insert(tableListings, e))
	}
	txn.Commit()

	first := func(arg string) string {
		it, err := db.Txn(false).ReverseLowerBound(tableListings, indexSeller, arg)
		require.NoError(t, err)
		raw := it.Next()
		if raw == nil {
			return ""
		}
		return raw.(*entry).ID
	}
	require.Equal(t, "lst_5", first("rice\x00lst_5"), "exact key")
	require.Equal(t, "lst_3", first("rice\x00lst_4"), "next smaller id")
	require.Equal(t, "lst_5", first("rice\x00"+afterAll), "newest of the value")
	// Below the value's first id the iterator runs on into the previous
	// value's range ("ric" < "rice"): that is why streams check each entry.
	require.Equal(t, "lst_7", first("rice\x00lst_0"))
}

func streamIDs(s *stream, bound string) []string {
	var ids []string
	for s.seek(bound); !s.done; s.next() {
		ids = append(ids, s.cur.ID)
	}
	return ids
}

func TestStreamStopsAtEndOfRange(t *testing.T) {
	db, err := memdb.NewMemDB(dbSchema())
	require.NoError(t, err)
	txn := db.Txn(true)
	for _, e := range []*entry{
		sellerEntry("lst_1", "rice"),
		sellerEntry("lst_2", "ric"),
		sellerEntry("lst_3", "rice"),
		sellerEntry("lst_4", "ric"),
		sellerEntry("lst_5", "rice"),
		sellerEntry("lst_6", "ricf"),
		sellerEntry("lst_9", "rice"),
		sellerEntry("lst_8", "ricea"),
	} {
		require.NoError(t, txn.Insert(tableListings, e))
	}
	txn.Commit()
	r := db.Txn(false)

	tests := []struct {
		value, bound string
		want         []string
	}{
		{"rice", afterAll, []string{"lst_9", "lst_5", "lst_3", "lst_1"}},
		{"rice", "lst_5", []string{"lst_5", "lst_3", "lst_1"}},
		{"rice", "lst_4", []string{"lst_3", "lst_1"}},
		{"rice", "lst_0", nil},
		{"ric", afterAll, []string{"lst_4", "lst_2"}},
		{"ricea", afterAll, []string{"lst_8"}},
		{"ricf", afterAll, []string{"lst_6"}},
		{"ricd", afterAll, nil}, // absent, between "ric" and "rice"
		{"zzz", afterAll, nil},  // after every value
		{"a", afterAll, nil},    // before every value
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s<=%s", tt.value, tt.bound), func(t *testing.T) {
			require.Equal(t, tt.want, streamIDs(newStream(r, postingKey{indexSeller, tt.value}), tt.bound))
		})
	}
	require.Equal(t, []string{"lst_9", "lst_8", "lst_6", "lst_5", "lst_4", "lst_3", "lst_2", "lst_1"},
		streamIDs(newStream(r, postingKey{indexID, ""}), afterAll))
}

// listingTokens is the definition of a listing's tokens: those of its
// searchable fields, each on its own.
func listingTokens(l *Listing) []string {
	toks := Tokens(l.Title)
	toks = append(toks, Tokens(l.Description)...)
	toks = append(toks, Tokens(l.Seller.LegalName)...)
	for _, v := range l.Attributes {
		toks = append(toks, Tokens(v)...)
	}
	slices.Sort(toks)
	return slices.Compact(toks)
}

// checkPostings checks every invariant of the inverted index against a
// recount from the memdb rows: each live listing has a doc whose fields
// are its own; each list holds exactly the docs with its key, sorted by
// ID; the maps, the lists and the free numbers agree; and the planner's
// counts are exact.
func checkPostings(t *testing.T, ix *Index) {
	t.Helper()
	st := ix.st.Load()
	p := st.post
	p.mu.RLock()
	defer p.mu.RUnlock()

	want := map[uint32][]*doc{}
	sellers := map[string]int{}
	it, err := st.db.Txn(false).Get(tableListings, indexID)
	require.NoError(t, err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		e := raw.(*entry)
		l, d := e.listing.Load(), e.doc
		require.NotNil(t, d, e.ID)
		require.Equal(t, e.ID, d.id)
		require.Same(t, l, d.listing, e.ID)
		require.Equal(t, l.HSCode, d.hsCode)
		require.Equal(t, unique.Make(l.Origin), d.origin)
		require.Equal(t, unique.Make(l.ShipFrom), d.region)
		require.Equal(t, unique.Make(l.SellerID), d.seller)
		require.Equal(t, unique.Make(l.Price.Currency), d.currency)
		require.Equal(t, l.Price.Minor, d.priceMinor)
		var keys []uint32
		for _, tok := range listingTokens(l) {
			n, ok := p.lookup(kindToken, tok)
			require.True(t, ok, "%s: token %q has a list", e.ID, tok)
			keys = append(keys, n)
		}
		for _, pre := range hsPrefixes(l.HSCode) {
			n, ok := p.lookup(kindHS, pre)
			require.True(t, ok, "%s: hs %q has a list", e.ID, pre)
			keys = append(keys, n)
		}
		for k, v := range map[kind]string{kindOrigin: l.Origin, kindRegion: l.ShipFrom} {
			if v == "" {
				continue
			}
			n, ok := p.lookup(k, v)
			require.True(t, ok, "%s: %q has a list", e.ID, v)
			keys = append(keys, n)
		}
		slices.Sort(keys)
		if len(keys) == 0 {
			keys = nil
		}
		require.Equal(t, keys, d.keys, e.ID)
		for _, k := range d.keys {
			want[k] = append(want[k], d) // in ID order: the id index's
		}
		if l.SellerID != "" {
			sellers[l.SellerID]++
		}
	}
	require.Equal(t, sellers, p.sellers, "planner counts")

	free := map[uint32]bool{}
	for _, n := range p.free {
		require.False(t, free[n], "free number %d listed twice", n)
		free[n] = true
	}
	for n, l := range p.lists {
		n := uint32(n)
		if free[n] {
			require.Equal(t, plist{}, l, "free list %d is empty", n)
			continue
		}
		require.NotEmpty(t, l.key, "list %d is in use or free", n)
		m, ok := p.lookup(l.kind, l.key)
		require.True(t, ok, "list %d (%q) is in its map", n, l.key)
		require.Equal(t, n, m)
		require.Equal(t, want[n], l.docs, "list %d (%q)", n, l.key)
	}
	used := 0
	for _, m := range p.keys {
		used += len(m)
	}
	require.Equal(t, len(p.lists), used+len(p.free), "every number is a key's or free")
}

func TestPostingsFollowWrites(t *testing.T) {
	l := func(id, origin, title string) *Listing {
		return &Listing{ID: id, Origin: origin, SellerID: "s-" + origin, ShipFrom: origin + "-1", HSCode: "090111", Title: title,
			Price: money.Amount{Minor: 100, Currency: "THB"}}
	}
	ix := NewIndex()
	steps := []func() error{
		func() error { return ix.Upsert(l("lst_1", "TH", "kopi rice"), l("lst_2", "MY", "kopi luwak")) },
		func() error { return ix.Upsert(l("lst_1", "ID", "teh hijau")) },
		func() error { return ix.Upsert(l("lst_3", "TH", "a b c"), l("lst_3", "TH", "ข้าวหอม")) },
		func() error { return ix.Upsert(l("lst_0", "TH", "kopi"), l("lst_5", "", "rice")) }, // lst_0: not an append
		func() error { return ix.Delete("lst_2", "lst_9") },
		func() error { return ix.Upsert(l("lst_4", "MY", "luwak")) }, // reuses a freed number
		func() error {
			return ix.Restore([]*Listing{l("lst_7", "TH", "durian"), l("lst_7", "TH", "durian monthong"), l("lst_6", "TH", "durian")})
		},
		func() error { return ix.Delete("lst_7") },
		func() error { return ix.Delete("lst_6") },
	}
	for i, step := range steps {
		require.NoError(t, step(), "step %d", i)
		checkPostings(t, ix)
	}
	require.Equal(t, len(ix.st.Load().post.lists), len(ix.st.Load().post.free), "an empty catalog has no lists")
}

// TestPostingsRandomWrites applies random batches of inserts (in and out of
// ID order), updates (that keep, add and drop tokens, and move origin),
// repeated IDs and deletes, checking the inverted index after each, and
// Search against a scan at the end.
func TestPostingsRandomWrites(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	words := []string{"kopi", "rice", "durian", "premium", "asli", "ข้าวหอม", "กาแฟ", "tea", "500g", "batik"}
	hs := []string{"", "0", "09", "090111", "0901119900", "100630", "10063012345"}
	origins := []string{"TH", "MY", "ID", ""}
	mk := func(n int) *Listing {
		var title []string
		for range rng.IntN(4) {
			title = append(title, words[rng.IntN(len(words))])
		}
		o := origins[rng.IntN(len(origins))]
		l := &Listing{
			ID: fmt.Sprintf("lst_%05d", n), Origin: o, SellerID: fmt.Sprintf("s%d", rng.IntN(5)), ShipFrom: o + "-1",
			HSCode: hs[rng.IntN(len(hs))], Title: strings.Join(title, " "),
			Price: money.Amount{Minor: int64(rng.IntN(100)), Currency: "THB"},
		}
		if rng.IntN(3) == 0 {
			l.Attributes = map[string]string{"brand": fmt.Sprintf("brand%d", rng.IntN(30))}
		}
		return l
	}
	ix := NewIndex()
	live := map[string]*Listing{}
	next := 0
	for step := range 300 {
		switch op := rng.IntN(10); {
		case op < 5: // a batch of upserts
			var batch []*Listing
			for range 1 + rng.IntN(40) {
				var n int
				switch {
				case rng.IntN(3) == 0 && next > 0: // update, or re-insert
					n = rng.IntN(next)
				case rng.IntN(4) == 0 && next > 0: // out of order: an old, unused or deleted ID
					n = rng.IntN(next)
				default:
					n = next
					next++
				}
				batch = append(batch, mk(n))
			}
			require.NoError(t, ix.Upsert(batch...))
			for _, l := range batch {
				live[l.ID] = l
			}
		case op < 9: // deletes
			var ids []string
			for range 1 + rng.IntN(30) {
				id := fmt.Sprintf("lst_%05d", rng.IntN(next+1))
				ids = append(ids, id)
				delete(live, id)
			}
			require.NoError(t, ix.Delete(ids...))
		default:
			if rng.IntN(10) == 0 {
				var ls []*Listing
				for _, l := range live {
					ls = append(ls, l)
				}
				require.NoError(t, ix.Restore(ls))
			}
		}
		checkPostings(t, ix)
		require.Equal(t, len(live), ix.Count(), "step %d", step)
	}

	// Search over the churned index agrees with a scan.
	for range 300 {
		q := Query{Limit: 1 + rng.IntN(10)}
		for range rng.IntN(3) {
			q.Text += " " + words[rng.IntN(len(words))]
		}
		if rng.IntN(2) == 0 {
			q.Origin = origins[rng.IntN(3)]
		}
		if rng.IntN(2) == 0 {
			q.HS = []string{"09", "0901", "090111", "10", "1006301"}[rng.IntN(5)]
		}
		if rng.IntN(3) == 0 {
			q.SellerID = fmt.Sprintf("s%d", rng.IntN(5))
		}
		var want []string
		for _, l := range live {
			has := listingTokens(l)
			ok := (q.Origin == "" || l.Origin == q.Origin) && strings.HasPrefix(l.HSCode, q.HS) &&
				(q.SellerID == "" || l.SellerID == q.SellerID)
			for _, tok := range Tokens(q.Text) {
				ok = ok && slices.Contains(has, tok)
			}
			for _, run := range thaiRuns(q.Text) {
				ok = ok && containsText(l, run)
			}
			if ok {
				want = append(want, l.ID)
			}
		}
		slices.Sort(want)
		slices.Reverse(want)
		var got []string
		for {
			page, err := ix.Search(q)
			require.NoError(t, err)
			for _, l := range page.Items {
				got = append(got, l.ID)
			}
			if page.NextCursor == "" {
				break
			}
			q.Cursor = page.NextCursor
		}
		require.Equal(t, want, got, "%+v", q)
	}
}

// TestSpliceApply checks the in-place splice of a posting list against
// set arithmetic, for random lists and batches.
func TestSpliceApply(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 9))
	for range 2000 {
		all := make([]*doc, 60)
		for i := range all {
			all[i] = &doc{id: fmt.Sprintf("lst_%03d", i)}
		}
		var in, out []*doc
		for _, d := range all {
			if rng.IntN(2) == 0 {
				in = append(in, d)
			} else {
				out = append(out, d)
			}
		}
		s := &splice{}
		for _, d := range in {
			if rng.IntN(4) == 0 {
				s.rem = append(s.rem, d)
			}
		}
		for _, d := range out {
			if rng.IntN(4) == 0 {
				s.add = append(s.add, d)
			}
		}
		rng.Shuffle(len(s.rem), func(i, j int) { s.rem[i], s.rem[j] = s.rem[j], s.rem[i] })
		rng.Shuffle(len(s.add), func(i, j int) { s.add[i], s.add[j] = s.add[j], s.add[i] })
		var want []*doc
		for _, d := range all {
			if slices.Contains(in, d) && !slices.Contains(s.rem, d) || slices.Contains(s.add, d) {
				want = append(want, d)
			}
		}
		list := slices.Clip(slices.Clone(in))
		if rng.IntN(2) == 0 {
			list = slices.Grow(list, rng.IntN(20)) // spare capacity, or none
		}
		got := s.apply(list)
		if len(want) == 0 {
			require.Empty(t, got)
			continue
		}
		require.Equal(t, want, got)
	}
}

func TestPlanDriverPicksShortestList(t *testing.T) {
	ix := NewIndex()
	var ls []*Listing
	for i := range 10 {
		l := &Listing{ID: fmt.Sprintf("lst_%d", i), Origin: "TH", ShipFrom: "TH-10", Title: "kopi"}
		if i < 5 {
			l.HSCode = "090111"
		}
		if i < 3 {
			l.Title = "kopi luwak"
		}
		if i == 0 {
			l.SellerID = "s1"
		}
		ls = append(ls, l)
	}
	require.NoError(t, ix.Upsert(ls...))
	post := ix.st.Load().post
	tests := []struct {
		name   string
		q      Query
		tokens []string
		want   postingKey
	}{
		{"nothing indexed", Query{MaxPrice: nil}, nil, postingKey{indexID, ""}},
		{"hs too short to be indexed", Query{HS: "0"}, nil, postingKey{indexID, ""}},
		{"rarer token", Query{}, []string{"kopi", "luwak"}, postingKey{indexToken, "luwak"}},
		{"token without postings", Query{}, []string{"kopi", "zzz"}, postingKey{indexToken, "zzz"}},
		{"seller rarer than token", Query{SellerID: "s1"}, []string{"luwak"}, postingKey{indexSeller, "s1"}},
		{"hs", Query{HS: "0901", Origin: "TH"}, []string{"kopi"}, postingKey{indexHS, "0901"}},
		{"region", Query{Region: "MY-01", Origin: "TH"}, nil, postingKey{indexRegion, "MY-01"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, planDriver(post, tt.q, tt.tokens))
		})
	}
}

func TestHSPrefixes(t *testing.T) {
	require.Nil(t, hsPrefixes(""))
	require.Nil(t, hsPrefixes("0"))
	require.Equal(t, []string{"09", "090", "0901"}, hsPrefixes("0901"))
	require.Len(t, hsPrefixes("010203040506"), maxHSIndexed-1)
}

func TestThaiRuns(t *testing.T) {
	require.Equal(t, []string{"หอมมะลิ"}, thaiRuns("Rice หอมมะลิ ข้"))
	require.Nil(t, thaiRuns("kopi luwak"))
}

func TestDocHasKey(t *testing.T) {
	d := &doc{docFields: docFields{keys: []uint32{1, 5, 9}}}
	for k, want := range map[uint32]bool{0: false, 1: true, 4: false, 5: true, 9: true, 10: false} {
		require.Equal(t, want, d.hasKey(k), "key %d", k)
	}
}
