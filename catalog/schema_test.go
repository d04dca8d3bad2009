package catalog

// Internal tests: the schema and the key layout Search depends on are
// unexported, so they are checked from inside the package.

import (
	"fmt"
	"slices"
	"testing"

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

// testEntry makes an entry as newEntry would, with its tokens sorted.
func testEntry(id string, tokens ...string) *entry {
	slices.Sort(tokens)
	return &entry{ID: id, Origin: "TH", Tokens: tokens, Listing: &Listing{ID: id, Origin: "TH"}}
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
			require.Equal(t, tt.want, streamIDs(newStream(r, indexToken, tt.token), tt.bound))
		})
	}

	// skipTo walks or re-seeks, with the same result.
	s := newStream(r, indexToken, "rice")
	s.seek(afterAll)
	s.skipTo("lst_4")
	require.Equal(t, "lst_3", s.cur.ID)
	s.skipTo("lst_0")
	require.True(t, s.done)
}

func TestIntersectLeapfrogs(t *testing.T) {
	db, err := memdb.NewMemDB(dbSchema())
	require.NoError(t, err)
	txn := db.Txn(true)
	// "a1" is on every entry, "b2" on every third, "c3" on every fifth:
	// the intersection of all three is every fifteenth.
	var want []string
	for i := 999; i >= 0; i-- {
		toks := []string{"a1"}
		if i%3 == 0 {
			toks = append(toks, "b2")
		}
		if i%5 == 0 {
			toks = append(toks, "c3")
		}
		id := fmt.Sprintf("lst_%04d", i)
		if i%15 == 0 {
			want = append(want, id)
		}
		require.NoError(t, txn.Insert(tableListings, testEntry(id, toks...)))
	}
	txn.Commit()
	r := db.Txn(false)
	var ss []*stream
	for _, tok := range []string{"a1", "b2", "c3"} {
		s := newStream(r, indexToken, tok)
		s.seek(afterAll)
		ss = append(ss, s)
	}
	var got []string
	intersect(ss, func(e *entry) bool { got = append(got, e.ID); return true })
	require.Equal(t, want, got)
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
