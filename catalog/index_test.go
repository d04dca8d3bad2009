package catalog_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/money"
)

// testEpoch is the creation time of listing 0 in tests.
var testEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// idAt returns the ID of the n-th listing: a ULID one second after the
// previous one, so that a higher n is newer and sorts after.
func idAt(n int) string {
	t := testEpoch.Add(time.Duration(n) * time.Second)
	return "lst_" + ulid.MustNew(ulid.Timestamp(t), nil).String()
}

// listing builds a listing with the given ordinal and title; opts adjust it.
func listing(n int, origin, title string, opts ...func(*catalog.Listing)) *catalog.Listing {
	l := &catalog.Listing{
		ID:       idAt(n),
		Origin:   origin,
		SellerID: "sel_" + origin,
		Title:    title,
		Price:    money.Amount{Minor: 100_00, Currency: currencyOf(origin)},
		Quantity: 1,
		ShipFrom: origin + "-10",
		Version:  1,
	}
	for _, o := range opts {
		o(l)
	}
	return l
}

func currencyOf(origin string) string {
	switch origin {
	case "MY":
		return "MYR"
	case "ID":
		return "IDR"
	}
	return "THB"
}

func ids(ls []*catalog.Listing) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.ID
	}
	return out
}

func TestUpsertGetDelete(t *testing.T) {
	ix := catalog.NewIndex()
	a := listing(1, "TH", "Jasmine rice")
	b := listing(2, "MY", "Kopi Luwak Asli")
	require.NoError(t, ix.Upsert(a, b))

	got, ok := ix.Get(a.ID)
	require.True(t, ok)
	require.Same(t, a, got)
	_, ok = ix.Get("lst_missing")
	require.False(t, ok)
	require.Equal(t, 2, ix.Count())

	require.NoError(t, ix.Delete(a.ID, "lst_missing", ""), "missing ids are ignored")
	_, ok = ix.Get(a.ID)
	require.False(t, ok)
	require.Equal(t, 1, ix.Count())
	require.Equal(t, map[string]int{"MY": 1}, ix.CountByOrigin())
}

func TestUpsertRejectsInvalidListingsAtomically(t *testing.T) {
	tests := []struct {
		name string
		bad  *catalog.Listing
	}{
		{"nil", nil},
		{"empty id", listing(1, "TH", "x", func(l *catalog.Listing) { l.ID = "" })},
		{"nul in id", listing(1, "TH", "x", func(l *catalog.Listing) { l.ID = "lst_\x00" })},
		{"invalid utf-8 id", listing(1, "TH", "x", func(l *catalog.Listing) { l.ID = "lst_\xff" })},
		{"nul in origin", listing(1, "TH", "x", func(l *catalog.Listing) { l.Origin = "T\x00H" })},
		{"nul in hs code", listing(1, "TH", "x", func(l *catalog.Listing) { l.HSCode = "09\x0001" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := catalog.NewIndex()
			good := listing(2, "TH", "good")
			require.ErrorIs(t, ix.Upsert(good, tt.bad), catalog.ErrInvalidListing)
			require.Zero(t, ix.Count(), "nothing applied")
			require.ErrorIs(t, ix.Restore([]*catalog.Listing{good, tt.bad}), catalog.ErrInvalidListing)
			require.Zero(t, ix.Count())
		})
	}
}

func TestCounts(t *testing.T) {
	ix := catalog.NewIndex()
	require.Zero(t, ix.Count())
	require.Empty(t, ix.CountByOrigin())
	require.NoError(t, ix.Upsert(
		listing(1, "TH", "a1"), listing(2, "TH", "a2"), listing(3, "MY", "b"), listing(4, "ID", "c"),
		listing(5, "", "no origin"),
	))
	require.Equal(t, 5, ix.Count())
	require.Equal(t, map[string]int{"TH": 2, "MY": 1, "ID": 1, "": 1}, ix.CountByOrigin())

	// An update that moves a listing to another origin moves its count;
	// the same ID twice in one call counts once.
	require.NoError(t, ix.Upsert(listing(1, "MY", "a1"), listing(1, "ID", "a1")))
	require.Equal(t, 5, ix.Count())
	require.Equal(t, map[string]int{"TH": 1, "MY": 1, "ID": 2, "": 1}, ix.CountByOrigin())

	require.NoError(t, ix.Delete(idAt(2), idAt(5)))
	require.Equal(t, map[string]int{"MY": 1, "ID": 2}, ix.CountByOrigin())
}

func TestBySellerNewestFirst(t *testing.T) {
	ix := catalog.NewIndex()
	seller := func(id string) func(*catalog.Listing) {
		return func(l *catalog.Listing) { l.SellerID = id }
	}
	// Inserted out of order on purpose: the order comes from the IDs.
	require.NoError(t, ix.Upsert(
		listing(3, "TH", "c", seller("s1")),
		listing(1, "TH", "a", seller("s1")),
		listing(2, "TH", "b", seller("s2")),
		listing(5, "TH", "e", seller("s1")),
		listing(4, "TH", "d", seller("s10")), // "s1" is a prefix: must not leak in
	))
	require.Equal(t, []string{idAt(5), idAt(3), idAt(1)}, ids(ix.BySeller("s1")))
	require.Equal(t, []string{idAt(2)}, ids(ix.BySeller("s2")))
	require.Empty(t, ix.BySeller("s"))
	require.Empty(t, ix.BySeller(""))
}

func TestRestoreReplacesEverything(t *testing.T) {
	ix := catalog.NewIndex()
	require.NoError(t, ix.Upsert(listing(1, "TH", "old durian"), listing(2, "TH", "old rice")))

	ws := memdb.NewWatchSet()
	ix.Watch(ws)
	require.NoError(t, ix.Restore([]*catalog.Listing{listing(3, "MY", "new kopi"), listing(4, "ID", "new batik")}))
	require.False(t, ws.Watch(time.After(time.Second)), "Restore wakes watchers of the old catalog")

	require.Equal(t, 2, ix.Count())
	require.Equal(t, map[string]int{"MY": 1, "ID": 1}, ix.CountByOrigin())
	_, ok := ix.Get(idAt(1))
	require.False(t, ok)
	page, err := ix.Search(catalog.Query{Text: "old"})
	require.NoError(t, err)
	require.Empty(t, page.Items)
	page, err = ix.Search(catalog.Query{Text: "new"})
	require.NoError(t, err)
	require.Equal(t, []string{idAt(4), idAt(3)}, ids(page.Items))

	// The restored catalog takes writes as usual.
	require.NoError(t, ix.Upsert(listing(5, "TH", "new durian")))
	require.Equal(t, 3, ix.Count())
}

func TestWatch(t *testing.T) {
	ix := catalog.NewIndex()
	require.NoError(t, ix.Upsert(listing(1, "TH", "a")))

	ws := memdb.NewWatchSet()
	ix.Watch(ws)
	require.True(t, ws.Watch(time.After(20*time.Millisecond)), "no change, times out")
	require.NoError(t, ix.Delete("lst_missing"))
	require.NoError(t, ix.Upsert())
	require.True(t, ws.Watch(time.After(20*time.Millisecond)), "no-op writes do not wake")

	for _, change := range []struct {
		name string
		do   func() error
	}{
		{"insert", func() error { return ix.Upsert(listing(2, "TH", "b")) }},
		{"update", func() error { return ix.Upsert(listing(1, "TH", "a2")) }},
		{"delete", func() error { return ix.Delete(idAt(2)) }},
	} {
		ws := memdb.NewWatchSet()
		ix.Watch(ws)
		go func() { _ = change.do() }()
		require.False(t, ws.Watch(time.After(5*time.Second)), "%s wakes the watcher", change.name)
	}
}

// TestConcurrentReadersAndWriters is for the race detector: readers search
// while writers upsert and delete, and every page a reader sees is ordered.
func TestConcurrentReadersAndWriters(t *testing.T) {
	ix := catalog.NewIndex()
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := range 200 {
				n := w*1000 + i
				require.NoError(t, ix.Upsert(listing(n, "TH", fmt.Sprintf("rice batch %d", i%7))))
				if i%3 == 0 {
					require.NoError(t, ix.Delete(idAt(n-1)))
				}
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for range 200 {
				page, err := ix.Search(catalog.Query{Text: "rice", Origin: "TH", Limit: 50})
				require.NoError(t, err)
				for i := 1; i < len(page.Items); i++ {
					require.Greater(t, page.Items[i-1].ID, page.Items[i].ID)
				}
				_ = ix.Count()
			}
		})
	}
	wg.Wait()
	require.Equal(t, ix.Count(), len(ix.BySeller("sel_TH")))
}

// TestConcurrentUpdatesAndRestore is for the race detector too: updates
// that keep a listing's memdb entry (same origin and seller: the listing is
// swapped in place) and ones that move it, deletes and restores, against
// Get, BySeller and both kinds of Search (a posting list walk under the
// read lock, and the lock-free scan of a query without indexed condition).
func TestConcurrentUpdatesAndRestore(t *testing.T) {
	ix := catalog.NewIndex()
	var base []*catalog.Listing
	for n := range 100 {
		base = append(base, listing(n, "TH", fmt.Sprintf("durian grade %d", n%5)))
	}
	require.NoError(t, ix.Restore(base))
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 300 {
			n := i % 100
			l := listing(n, "TH", fmt.Sprintf("durian grade %d v%d", n%5, i))
			if i%7 == 0 {
				l.Origin, l.SellerID = "MY", "sel_MY" // a new memdb entry
			}
			require.NoError(t, ix.Upsert(l))
			if i%11 == 0 {
				require.NoError(t, ix.Delete(idAt((n+50)%100)))
			}
		}
	})
	wg.Go(func() {
		for range 5 {
			require.NoError(t, ix.Restore(base))
		}
	})
	for range 3 {
		wg.Go(func() {
			for i := range 300 {
				id := idAt(i % 100)
				if l, ok := ix.Get(id); ok {
					require.Equal(t, id, l.ID)
				}
				for _, l := range ix.BySeller("sel_TH") {
					require.Equal(t, "sel_TH", l.SellerID)
				}
				for _, q := range []catalog.Query{
					{Text: "durian", Limit: 30},
					{Origin: "TH", Limit: 30},
					{MaxPrice: thb("1000"), Limit: 30}, // no indexed condition
				} {
					page, err := ix.Search(q)
					require.NoError(t, err)
					for i := 1; i < len(page.Items); i++ {
						require.Greater(t, page.Items[i-1].ID, page.Items[i].ID)
					}
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, ix.Count(), len(ix.BySeller("sel_TH"))+len(ix.BySeller("sel_MY")))
}

func TestUpdateIsSeenEverywhere(t *testing.T) {
	ix := catalog.NewIndex()
	v1 := listing(1, "TH", "Jasmine rice")
	require.NoError(t, ix.Upsert(v1, listing(2, "TH", "Durian")))
	for _, v2 := range []*catalog.Listing{
		listing(1, "TH", "Jasmine rice", func(l *catalog.Listing) { l.Version = 2; l.Price.Minor = 1 }),  // same entry
		listing(1, "TH", "Hom mali rice", func(l *catalog.Listing) { l.Version = 3 }),                    // new tokens
		listing(1, "TH", "Hom mali rice", func(l *catalog.Listing) { l.Version = 4; l.SellerID = "s9" }), // new seller
	} {
		require.NoError(t, ix.Upsert(v2))
		got, ok := ix.Get(v2.ID)
		require.True(t, ok)
		require.Same(t, v2, got)
		require.Contains(t, ix.BySeller(v2.SellerID), v2)
		page, err := ix.Search(catalog.Query{Text: "rice"})
		require.NoError(t, err)
		require.Equal(t, []*catalog.Listing{v2}, page.Items)
		page, err = ix.Search(catalog.Query{MaxPrice: thb("1000")})
		require.NoError(t, err)
		require.Len(t, page.Items, 2)
		require.Same(t, v2, page.Items[1])
		require.Equal(t, 2, ix.Count())
	}
	require.Equal(t, []string{idAt(2)}, ids(ix.BySeller("sel_TH")), "the moved listing left its old seller")
}
