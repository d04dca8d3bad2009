package catalog_test

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/money"
)

func thb(s string) *money.Amount { return amount(s, "THB") }
func myr(s string) *money.Amount { return amount(s, "MYR") }

func amount(s, cur string) *money.Amount {
	a, err := money.Parse(s, cur)
	if err != nil {
		panic(err)
	}
	return &a
}

func with(hs, region string, price *money.Amount) func(*catalog.Listing) {
	return func(l *catalog.Listing) {
		l.HSCode, l.ShipFrom, l.Price = hs, region, *price
	}
}

// fixture is a small catalog; listing n is the n-th oldest.
func fixture(t *testing.T) *catalog.Index {
	t.Helper()
	ix := catalog.NewIndex()
	require.NoError(t, ix.Upsert(
		listing(1, "TH", "Jasmine Rice Premium 5kg", with("100630", "TH-10", thb("250")), func(l *catalog.Listing) {
			l.SellerID, l.Seller.LegalName = "s1", "Siam Rice Co., Ltd."
		}),
		listing(2, "TH", "ข้าวหอมมะลิ 100% 5 กก.", with("100630", "TH-50", thb("300")), func(l *catalog.Listing) {
			l.SellerID = "s2"
		}),
		listing(3, "MY", "Kopi Luwak Asli 250g", with("090121", "MY-01", myr("120")), func(l *catalog.Listing) {
			l.SellerID = "s3"
		}),
		listing(4, "ID", "Kopi Arabika Gayo 500g", with("090111", "ID-AC", amount("150000", "IDR")), func(l *catalog.Listing) {
			l.SellerID = "s4"
		}),
		listing(5, "ID", "Batik Tulis Sutra", with("500720", "ID-JT", amount("850000", "IDR")), func(l *catalog.Listing) {
			l.SellerID = "s4"
			l.Quantity = 0
		}),
		listing(6, "TH", "ทุเรียนหมอนทอง Durian Monthong", with("081060", "TH-22", thb("500")), func(l *catalog.Listing) {
			l.SellerID, l.Seller.LegalName = "s1", "Siam Rice Co., Ltd."
			l.Attributes = map[string]string{"grade": "AAA premium", "ripeness": "ready"}
		}),
		listing(7, "MY", "Beras Wangi Premium", with("100630", "MY-10", myr("45.90")), func(l *catalog.Listing) {
			l.SellerID = "s3"
			l.Description = "Jasmine rice grown in Thailand, packed in Johor."
		}),
		// Has every bigram of "หอมมะลิ" but not the word itself.
		listing(8, "TH", "หอมม่วง มะลิ", with("070310", "TH-10", thb("80")), func(l *catalog.Listing) {
			l.SellerID = "s2"
		}),
	))
	return ix
}

func TestSearch(t *testing.T) {
	ix := fixture(t)
	thbToMYR := func(a money.Amount, cur string) (money.Amount, bool) {
		if a.Currency == "THB" && cur == "MYR" {
			return money.Amount{Minor: a.Minor * 13 / 100, Currency: "MYR"}, true
		}
		return money.Amount{}, false
	}
	tests := []struct {
		name string
		q    catalog.Query
		want []int // listing ordinals, newest first
	}{
		{"everything", catalog.Query{}, []int{8, 7, 6, 5, 4, 3, 2, 1}},
		{"one word, title description and seller name", catalog.Query{Text: "rice"}, []int{7, 6, 1}},
		{"words are ANDed", catalog.Query{Text: "jasmine RICE"}, []int{7, 1}},
		{"attribute values", catalog.Query{Text: "premium"}, []int{7, 6, 1}},
		{"attribute keys are not indexed", catalog.Query{Text: "ripeness"}, nil},
		{"malay", catalog.Query{Text: "kopi"}, []int{4, 3}},
		{"malay two words", catalog.Query{Text: "Kopi Luwak"}, []int{3}},
		{"unknown word", catalog.Query{Text: "kopi zzzz"}, nil},
		{"only punctuation is no text filter", catalog.Query{Text: "?!", Origin: "MY"}, []int{7, 3}},
		{"thai substring", catalog.Query{Text: "หอมมะลิ"}, []int{2}},
		{"thai whole title", catalog.Query{Text: "ข้าวหอมมะลิ"}, []int{2}},
		{"thai short word in two listings", catalog.Query{Text: "มะลิ"}, []int{8, 2}},
		{"thai and latin", catalog.Query{Text: "ทุเรียน durian"}, []int{6}},
		{"hs heading", catalog.Query{HS: "1006"}, []int{7, 2, 1}},
		{"hs chapter", catalog.Query{HS: "09"}, []int{4, 3}},
		{"hs one digit", catalog.Query{HS: "0"}, []int{8, 6, 4, 3}},
		{"hs subheading", catalog.Query{HS: "090111"}, []int{4}},
		{"hs longer than the code", catalog.Query{HS: "09011100"}, nil},
		{"hs and text", catalog.Query{Text: "premium", HS: "1006"}, []int{7, 1}},
		{"origin", catalog.Query{Origin: "ID"}, []int{5, 4}},
		{"origin and text", catalog.Query{Text: "premium", Origin: "TH"}, []int{6, 1}},
		{"origin is exact", catalog.Query{Origin: "T"}, nil},
		{"region", catalog.Query{Region: "MY-01"}, []int{3}},
		{"region and text", catalog.Query{Region: "TH-10", Text: "rice"}, []int{1}},
		{"seller", catalog.Query{SellerID: "s4"}, []int{5, 4}},
		{"seller and origin", catalog.Query{SellerID: "s1", Origin: "TH"}, []int{6, 1}},
		{"price range inclusive", catalog.Query{MinPrice: thb("250"), MaxPrice: thb("300")}, []int{2, 1}},
		{"min price only", catalog.Query{MinPrice: thb("300.01")}, []int{6}},
		{"other currency never matches", catalog.Query{MaxPrice: myr("1000")}, []int{7, 3}},
		{"convert", catalog.Query{MaxPrice: myr("40"), Convert: thbToMYR}, []int{8, 2, 1}},
		{"filter func", catalog.Query{Text: "batik", Filter: func(l *catalog.Listing) bool { return l.Quantity > 0 }}, nil},
		{"filter func passes", catalog.Query{Origin: "ID", Filter: func(l *catalog.Listing) bool { return l.Quantity > 0 }}, []int{4}},
		{"everything at once", catalog.Query{Text: "rice", Origin: "TH", Region: "TH-10", SellerID: "s1", HS: "10", MaxPrice: thb("250")}, []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := ix.Search(tt.q)
			require.NoError(t, err)
			want := []string{}
			for _, n := range tt.want {
				want = append(want, idAt(n))
			}
			require.Equal(t, want, ids(page.Items))
			require.Empty(t, page.NextCursor)
		})
	}
}

func TestSearchPagination(t *testing.T) {
	ix := catalog.NewIndex()
	var all []*catalog.Listing
	for n := range 50 {
		origin := []string{"TH", "MY"}[n%2]
		all = append(all, listing(n, origin, fmt.Sprintf("durian grade %d", n%5)))
	}
	// Shuffled: insertion order must not matter.
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	require.NoError(t, ix.Upsert(all...))

	newest := func(keep func(n int) bool) []string {
		var out []string
		for n := 49; n >= 0; n-- {
			if keep(n) {
				out = append(out, idAt(n))
			}
		}
		return out
	}
	tests := []struct {
		name  string
		q     catalog.Query
		want  []string
		pages int
	}{
		{"no text", catalog.Query{Limit: 20}, newest(func(int) bool { return true }), 3},
		{"text", catalog.Query{Text: "durian", Limit: 20}, newest(func(int) bool { return true }), 3},
		{"origin", catalog.Query{Origin: "TH", Limit: 10}, newest(func(n int) bool { return n%2 == 0 }), 3},
		{"text and origin", catalog.Query{Text: "durian grade", Origin: "MY", Limit: 10}, newest(func(n int) bool { return n%2 == 1 }), 3},
		{"exact multiple: no empty last page", catalog.Query{Text: "durian", Origin: "TH", Limit: 5}, newest(func(n int) bool { return n%2 == 0 }), 5},
		{"filter", catalog.Query{Text: "durian", Limit: 4, Filter: func(l *catalog.Listing) bool { return l.Title == "durian grade 3" }}, newest(func(n int) bool { return n%5 == 3 }), 3},
		{"default limit", catalog.Query{}, newest(func(int) bool { return true }), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			q, pages := tt.q, 0
			for {
				page, err := ix.Search(q)
				require.NoError(t, err)
				pages++
				got = append(got, ids(page.Items)...)
				if page.NextCursor == "" {
					break
				}
				require.NotEmpty(t, page.Items)
				require.Less(t, pages, 100, "runaway paging")
				q.Cursor = page.NextCursor
			}
			require.Equal(t, tt.want, got, "each item once, newest first, no gaps")
			require.Equal(t, tt.pages, pages)
		})
	}
}

func TestSearchLimits(t *testing.T) {
	ix := catalog.NewIndex()
	var ls []*catalog.Listing
	for n := range 150 {
		ls = append(ls, listing(n, "TH", "rice"))
	}
	require.NoError(t, ix.Upsert(ls...))
	for _, tt := range []struct{ limit, want int }{{0, 20}, {-1, 20}, {1, 1}, {100, 100}, {1000, 100}} {
		page, err := ix.Search(catalog.Query{Text: "rice", Limit: tt.limit})
		require.NoError(t, err)
		require.Len(t, page.Items, tt.want, "limit %d", tt.limit)
		require.NotEmpty(t, page.NextCursor)
	}
}

func TestSearchBadCursor(t *testing.T) {
	ix := fixture(t)
	enc := base64.RawURLEncoding.EncodeToString
	for _, c := range []string{
		"!!!",
		"bHN0X===",
		"bHN0Xw=", // stray padding
		enc([]byte("lst_\x00")),
		enc([]byte("\xff\xfe")),
		enc([]byte(strings.Repeat("x", 200))),
		"bHN0XB", // "lst\\" with non-zero trailing bits: each cursor has one spelling
	} {
		_, err := ix.Search(catalog.Query{Cursor: c})
		require.ErrorIs(t, err, catalog.ErrBadCursor, "cursor %q", c)
	}
	// A well-formed cursor for an ID that is not in the catalog is not an
	// error: the listing may have been deleted since. The page continues
	// below that ID.
	page, err := ix.Search(catalog.Query{Cursor: enc([]byte(idAt(5)))})
	require.NoError(t, err)
	require.Equal(t, []string{idAt(4), idAt(3), idAt(2), idAt(1)}, ids(page.Items))
}

func TestSearchCursorSurvivesDeletion(t *testing.T) {
	ix := fixture(t)
	page, err := ix.Search(catalog.Query{Limit: 3})
	require.NoError(t, err)
	require.Equal(t, []string{idAt(8), idAt(7), idAt(6)}, ids(page.Items))
	require.NoError(t, ix.Delete(idAt(6), idAt(5)))
	page, err = ix.Search(catalog.Query{Limit: 3, Cursor: page.NextCursor})
	require.NoError(t, err)
	require.Equal(t, []string{idAt(4), idAt(3), idAt(2)}, ids(page.Items))
}

func TestSearchAfterChanges(t *testing.T) {
	ix := fixture(t)
	search := func(q catalog.Query) []string {
		page, err := ix.Search(q)
		require.NoError(t, err)
		return ids(page.Items)
	}

	t.Run("delete removes from results", func(t *testing.T) {
		require.NoError(t, ix.Delete(idAt(3)))
		require.Equal(t, []string{idAt(4)}, search(catalog.Query{Text: "kopi"}))
		require.Equal(t, []string{idAt(7)}, search(catalog.Query{Origin: "MY"}))
		require.Empty(t, search(catalog.Query{Region: "MY-01"}))
		require.Empty(t, search(catalog.Query{HS: "090121"}))
	})
	t.Run("upsert replaces tokens", func(t *testing.T) {
		l := listing(4, "ID", "Teh Hijau Organik", with("090210", "ID-JB", amount("50000", "IDR")))
		require.NoError(t, ix.Upsert(l))
		require.Empty(t, search(catalog.Query{Text: "kopi"}), "old words no longer match")
		require.Empty(t, search(catalog.Query{Text: "gayo"}))
		require.Empty(t, search(catalog.Query{HS: "0901"}))
		require.Empty(t, search(catalog.Query{Region: "ID-AC"}))
		require.Equal(t, []string{idAt(4)}, search(catalog.Query{Text: "teh organik"}))
		require.Equal(t, []string{idAt(4)}, search(catalog.Query{HS: "0902"}))
		require.Equal(t, []string{idAt(5), idAt(4)}, search(catalog.Query{Origin: "ID"}), "position kept: it is the ID")
	})
}

// TestSearchMatchesBruteForce compares Search, page by page, with a plain
// scan over a random catalog, for random queries: the merge of posting
// lists must find exactly what the definition of a match says.
func TestSearchMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	words := []string{"rice", "kopi", "durian", "batik", "sutra", "premium", "organik", "asli", "tea", "500g", "ข้าว", "หอมมะลิ", "กาแฟ"}
	origins := []string{"TH", "MY", "ID"}
	hs := []string{"100630", "090111", "090121", "0902", "081060", "500720"}
	ix := catalog.NewIndex()
	var all []*catalog.Listing
	for n := range 600 {
		var title []string
		for range 1 + rng.IntN(4) {
			title = append(title, words[rng.IntN(len(words))])
		}
		o := origins[rng.IntN(3)]
		l := listing(n, o, strings.Join(title, " "), with(hs[rng.IntN(len(hs))], fmt.Sprintf("%s-%d", o, rng.IntN(3)),
			&money.Amount{Minor: int64(rng.IntN(1000)) * 100, Currency: currencyOf(o)}))
		l.SellerID = fmt.Sprintf("s%d", rng.IntN(20))
		all = append(all, l)
	}
	require.NoError(t, ix.Upsert(all...))
	// Delete some, so the posting lists have holes.
	for n := 0; n < 600; n += 7 {
		require.NoError(t, ix.Delete(idAt(n)))
		all[n] = nil
	}

	matches := func(q catalog.Query, l *catalog.Listing) bool {
		have := catalog.Tokens(l.Title)
		for _, tok := range catalog.Tokens(q.Text) {
			if !slices.Contains(have, tok) {
				return false
			}
		}
		for _, f := range strings.Fields(q.Text) {
			if catalog.Tokens(f) != nil && !strings.Contains(l.Title, f) {
				return false // every query word here is also a whole title word
			}
		}
		return (q.Origin == "" || l.Origin == q.Origin) &&
			(q.Region == "" || l.ShipFrom == q.Region) &&
			(q.SellerID == "" || l.SellerID == q.SellerID) &&
			strings.HasPrefix(l.HSCode, q.HS) &&
			(q.MaxPrice == nil || l.Price.Currency == q.MaxPrice.Currency && l.Price.Minor <= q.MaxPrice.Minor)
	}
	pick := func(xs []string) string {
		if rng.IntN(2) == 0 {
			return ""
		}
		return xs[rng.IntN(len(xs))]
	}
	for i := range 400 {
		q := catalog.Query{Limit: 1 + rng.IntN(15)}
		for range rng.IntN(3) {
			q.Text += " " + words[rng.IntN(len(words))]
		}
		q.Origin = pick(origins)
		if rng.IntN(3) == 0 {
			q.HS = pick([]string{"10", "0901", "090111", "0902", "5"})
		}
		if rng.IntN(4) == 0 {
			q.Region = fmt.Sprintf("%s-%d", origins[rng.IntN(3)], rng.IntN(3))
		}
		if rng.IntN(4) == 0 {
			q.SellerID = fmt.Sprintf("s%d", rng.IntN(20))
		}
		if rng.IntN(4) == 0 {
			q.MaxPrice = &money.Amount{Minor: int64(rng.IntN(1000)) * 100, Currency: currencyOf(origins[rng.IntN(3)])}
		}
		var want []string
		for n := len(all) - 1; n >= 0; n-- {
			if all[n] != nil && matches(q, all[n]) {
				want = append(want, all[n].ID)
			}
		}
		var got []string
		for {
			page, err := ix.Search(q)
			require.NoError(t, err)
			got = append(got, ids(page.Items)...)
			if page.NextCursor == "" {
				break
			}
			q.Cursor = page.NextCursor
		}
		q.Cursor = ""
		require.Equal(t, want, got, "query %d: %+v", i, q)
	}
}

func FuzzSearchCursor(f *testing.F) {
	ix := catalog.NewIndex()
	var ls []*catalog.Listing
	for n := range 30 {
		ls = append(ls, listing(n, []string{"TH", "MY", "ID"}[n%3], fmt.Sprintf("kopi rice %d ข้าวหอม", n%4)))
	}
	if err := ix.Upsert(ls...); err != nil {
		f.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	for _, s := range []string{"", "!!!", enc([]byte(idAt(10))), enc([]byte("\xff")), enc([]byte("a\x00b")), "AAAA", "____"} {
		f.Add(s, "kopi")
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, cursor, text string) {
		for _, q := range []catalog.Query{
			{Cursor: cursor, Limit: 3},
			{Cursor: cursor, Text: text, Limit: 3},
			{Cursor: cursor, Text: text, Origin: "MY", Limit: 3},
		} {
			page, err := ix.Search(q)
			if err != nil {
				require.ErrorIs(t, err, catalog.ErrBadCursor)
				continue
			}
			require.NotNil(t, page.Items)
			for i := 1; i < len(page.Items); i++ {
				require.Greater(t, page.Items[i-1].ID, page.Items[i].ID)
			}
		}
	})
}
