package catalog

// Internal tests: the schema and the key layout Search depends on are
// unexported, so they are checked from inside the package.

import (
	"fmt"
	"hash/maphash"
	"testing"
	"unique"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/stretchr/testify/require"
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

// testSeed keys the token hashes of test entries; it is never changed.
var testSeed = maphash.MakeSeed()

// testEntry makes an entry as newEntry would.
func testEntry(id string, tokens ...string) *entry {
	e := &entry{ID: id, Origin: "TH", origin: unique.Make("TH"), Listing: &Listing{ID: id, Origin: "TH"}}
	e.setTokens(testSeed, tokens)
	return e
}

func TestHasTokenConfirmsCollisions(t *testing.T) {
	// Hand-made equal hashes stand in for a maphash collision: the
	// string decides.
	e := &entry{Tokens: []string{"a", "b", "c"}, tokenHashes: []uint64{1, 5, 5}}
	require.True(t, e.hasToken("b", 5))
	require.True(t, e.hasToken("c", 5))
	require.False(t, e.hasToken("d", 5))
	require.False(t, e.hasToken("a", 5))
	require.True(t, e.hasToken("a", 1))
	require.False(t, e.hasToken("a", 2))

	e = testEntry("lst_1", "rice", "kopi", "ข้", "rice")
	for _, tok := range []string{"rice", "kopi", "ข้"} {
		require.True(t, e.hasToken(tok, maphash.String(testSeed, tok)), tok)
	}
	require.False(t, e.hasToken("ric", maphash.String(testSeed, "ric")))
}

// TestNonUniqueKeyLayout pins down what go-memdb v1.3.5 does and Search
// relies on: a non-unique index key is value + "\x00" + id + "\x00"
// (StringSliceFieldIndex and StringFieldIndex both terminate with NUL, and
// the primary key is appended), so ReverseLowerBound with the argument
// value+"\x00"+id lands exactly on that entry, and otherwise on the next
// smaller key.
func TestNonUniqueKeyLayout(t *testing.T) {
	db, err := memdb.NewMemDB(dbSchema())
	require.NoError(t, err)
	txn := db.Txn(true)
	for _, e := range []*entry{
		testEntry("lst_1", "rice"),
		testEntry("lst_3", "rice"),
		testEntry("lst_5", "rice"),
		testEntry("lst_7", "ric", "rice"), // also in the previous token's range
	} {
		require.NoError(t, txn.Insert(tableListings, e))
	}
	txn.Commit()

	first := func(arg string) string {
		it, err := db.Txn(false).ReverseLowerBound(tableListings, indexToken, arg)
		require.NoError(t, err)
		raw := it.Next()
		if raw == nil {
			return ""
		}
		return raw.(*entry).ID
	}
	require.Equal(t, "lst_5", first("rice\x00lst_5"), "exact key")
	require.Equal(t, "lst_3", first("rice\x00lst_4"), "next smaller id")
	require.Equal(t, "lst_7", first("rice\x00"+afterAll), "newest of the token")
	// Below the token's first id the iterator runs on into the previous
	// token's range ("ric" < "rice"): that is why streams check each entry.
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
		testEntry("lst_1", "rice"),
		testEntry("lst_2", "ric", "rice"),
		testEntry("lst_3", "rice", "ricf"),
		testEntry("lst_4", "ric"),
		testEntry("lst_5", "rich", "rice"),
		testEntry("lst_9", "ric", "rice", "ricea"),
	} {
		require.NoError(t, txn.Insert(tableListings, e))
	}
	txn.Commit()
	r := db.Txn(false)

	tests := []struct {
		token, bound string
		want         []string
	}{
		{"rice", afterAll, []string{"lst_9", "lst_5", "lst_3", "lst_2", "lst_1"}},
		{"rice", "lst_5", []string{"lst_5", "lst_3", "lst_2", "lst_1"}},
		{"rice", "lst_4", []string{"lst_3", "lst_2", "lst_1"}},
		{"rice", "lst_0", nil},
		{"ric", afterAll, []string{"lst_9", "lst_4", "lst_2"}},
		{"ricea", afterAll, []string{"lst_9"}},
		{"ricf", afterAll, []string{"lst_3"}},
		{"ricd", afterAll, nil}, // absent, between "ric" and "rice"
		{"zzz", afterAll, nil},  // after every token
		{"a", afterAll, nil},    // before every token
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s<=%s", tt.token, tt.bound), func(t *testing.T) {
			require.Equal(t, tt.want, streamIDs(newStream(r, postingKey{indexToken, tt.token}, testSeed), tt.bound))
		})
	}

}

// TestPostingStatsFollowWrites checks that the planner's counts match a
// recount of the posting lists after inserts, updates (that change tokens
// and origin), duplicate IDs in one call, deletes and a restore.
func TestPostingStatsFollowWrites(t *testing.T) {
	recount := func(ix *Index) map[postingKey]int {
		m := map[postingKey]int{}
		it, err := ix.db().Txn(false).Get(tableListings, indexID)
		require.NoError(t, err)
		for raw := it.Next(); raw != nil; raw = it.Next() {
			forEachPosting(raw.(*entry), func(k postingKey) { m[k]++ })
		}
		return m
	}
	l := func(id, origin, title string) *Listing {
		return &Listing{ID: id, Origin: origin, SellerID: "s-" + origin, ShipFrom: origin + "-1", HSCode: "090111", Title: title}
	}
	ix := NewIndex()
	steps := []func() error{
		func() error { return ix.Upsert(l("lst_1", "TH", "kopi rice"), l("lst_2", "MY", "kopi luwak")) },
		func() error { return ix.Upsert(l("lst_1", "ID", "teh hijau")) },
		func() error { return ix.Upsert(l("lst_3", "TH", "a b c"), l("lst_3", "TH", "ข้าวหอม")) },
		func() error { return ix.Delete("lst_2", "lst_9") },
		func() error {
			return ix.Restore([]*Listing{l("lst_7", "TH", "durian"), l("lst_7", "TH", "durian monthong")})
		},
		func() error { return ix.Delete("lst_7") },
	}
	for i, step := range steps {
		require.NoError(t, step())
		st := ix.st.Load()
		require.Equal(t, recount(ix), st.stats.n, "after step %d", i)
	}
}

func TestPlanDriverPicksShortestList(t *testing.T) {
	stats := newPostingStats()
	var es []*entry
	for i := range 10 {
		e := &entry{ID: fmt.Sprintf("lst_%d", i), Origin: "TH", ShipFrom: "TH-10", Tokens: []string{"kopi"}}
		if i < 5 {
			e.HSPrefixes = hsPrefixes("090111")
		}
		if i < 3 {
			e.Tokens = []string{"kopi", "luwak"}
		}
		if i == 0 {
			e.SellerID = "s1"
		}
		es = append(es, e)
	}
	stats.apply(es, nil)
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
			require.Equal(t, tt.want, planDriver(stats, tt.q, tt.tokens))
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
