package catalog_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/money"
)

// benchListings is the size of the benchmark catalog: 100,000, or
// IMTGT_BENCH_LISTINGS (scripts/bench-scale.sh runs the catalog benchmarks
// at 1,000,000, a national node).
var benchListings = sync.OnceValue(func() int {
	if v := os.Getenv("IMTGT_BENCH_LISTINGS"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			return n
		}
		panic("IMTGT_BENCH_LISTINGS=" + v + ": want a positive number")
	}
	return 100_000
})

type product struct {
	name string
	hs   string
}

// The benchmark corpus: products per language with realistic HS codes.
// Thai titles are a third of the catalog (every TH listing), some with an
// English word mixed in, as sellers write them.
var (
	thaiProducts = []product{
		{"ข้าวหอมมะลิ", "100630"}, {"ทุเรียนหมอนทอง", "081060"}, {"ผ้าไหมไทย", "500720"},
		{"กาแฟดอยช้าง", "090121"}, {"มะม่วงอบแห้ง", "081340"}, {"น้ำพริกเผา", "210390"},
		{"ชาไทย", "090230"}, {"สบู่สมุนไพร", "340111"}, {"น้ำปลาแท้", "210390"},
		{"ทุเรียนทอด", "200899"}, {"ข้าวเหนียว", "100630"}, {"มังคุดสด", "080450"},
		{"ผ้าขาวม้า", "520812"}, {"พริกแกงเขียวหวาน", "210390"}, {"น้ำผึ้งป่า", "040900"},
		{"กาแฟโบราณ", "090121"}, {"ผ้าไหมมัดหมี่", "500720"}, {"ข้าวกล้องหอมมะลิ", "100620"},
	}
	thaiWords = []string{"ออร์แกนิก", "พรีเมียม", "ของแท้", "ส่งออก", "แบบดั้งเดิม", "เชียงใหม่", "อุบลราชธานี", "สุรินทร์", "จันทบุรี"}
	malay     = []product{
		{"Beras Wangi", "100630"}, {"Kopi Tongkat Ali", "210111"}, {"Kopi Luwak", "090121"},
		{"Teh Tarik", "210120"}, {"Kuih Bahulu", "190590"}, {"Sambal Belacan", "210390"},
		{"Dodol Durian", "170490"}, {"Minyak Kelapa", "151311"}, {"Kain Songket", "500720"},
		{"Keropok Lekor", "160420"}, {"Madu Kelulut", "040900"}, {"Gula Melaka", "170290"},
	}
	malayWords = []string{"Asli", "Segar", "Pedas", "Istimewa", "Buatan Tangan", "Terengganu", "Kelantan", "Johor", "Sabah"}
	indo       = []product{
		{"Kopi Gayo", "090111"}, {"Kopi Toraja", "090111"}, {"Teh Melati", "090230"},
		{"Keripik Singkong", "200899"}, {"Sambal Bawang", "210390"}, {"Batik Tulis", "520852"},
		{"Kain Tenun", "500720"}, {"Gula Aren", "170290"}, {"Rendang Kering", "160250"},
		{"Kerupuk Udang", "190590"}, {"Minyak Kayu Putih", "330129"}, {"Kopi Luwak", "090121"},
	}
	indoWords = []string{"Asli", "Murah", "Pedas", "Organik", "Premium", "Kualitas Ekspor", "Bandung", "Bali", "Yogyakarta"}
	english   = []product{
		{"Jasmine Rice", "100630"}, {"Coffee Beans", "090111"}, {"Green Tea", "090210"},
		{"Dried Mango", "081340"}, {"Coconut Oil", "151311"}, {"Palm Sugar", "170290"},
		{"Silk Scarf", "621410"}, {"Rubber Slippers", "640220"}, {"Batik Shirt", "620520"},
		{"Durian Chips", "200899"}, {"Shrimp Paste", "160420"}, {"Fish Sauce", "210390"},
		{"Herbal Soap", "340111"}, {"Rattan Basket", "460219"}, {"Teak Bowl", "441990"},
		{"Cashew Nuts", "080132"}, {"Instant Noodles", "190230"}, {"Curry Paste", "210390"},
	}
	englishWords = []string{"Premium", "Organic", "Handmade", "Original", "Fresh", "Spicy", "Sweet", "Traditional", "Export Grade"}
	sizes        = []string{"250g", "500g", "1kg", "5kg", "500ml", "1L", "Size M", "10 pcs", "3 packs"}
	regions      = map[string][]string{
		"TH": {"TH-10", "TH-50", "TH-83", "TH-40", "TH-34", "TH-22"},
		"MY": {"MY-01", "MY-07", "MY-10", "MY-14", "MY-12", "MY-03"},
		"ID": {"ID-JK", "ID-JB", "ID-JT", "ID-BA", "ID-SU", "ID-AC"},
	}
	syllables = []string{"ka", "ri", "ma", "so", "tu", "nga", "la", "pe", "di", "ban", "sri", "jaya", "wat", "chai", "mek"}
)

type benchCorpus struct {
	ix     *catalog.Index
	ls     []*catalog.Listing
	brands []string
}

// benchData builds the 100,000-listing catalog once per test binary: it is
// shared by all benchmarks, and takes seconds to build.
var benchData = sync.OnceValue(func() *benchCorpus { return genCorpus(benchListings(), true) })

// genCorpus generates n listings of the benchmark corpus (the same ones,
// in the same order, for the same n), with their index when indexed.
func genCorpus(n int, indexed bool) *benchCorpus {
	rng := rand.New(rand.NewPCG(2025, 11))
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	// 3,000 brand names: rare words, a few dozen listings each.
	brands := make([]string, 0, 3000)
	seen := map[string]bool{}
	for len(brands) < cap(brands) {
		b := pick(syllables) + pick(syllables) + pick(syllables)
		if !seen[b] {
			seen[b] = true
			brands = append(brands, b)
		}
	}
	titleCase := func(s string) string { return strings.ToUpper(s[:1]) + s[1:] }
	origins := []string{"TH", "MY", "ID"}
	ls := make([]*catalog.Listing, n)
	for n := range ls {
		origin := origins[rng.IntN(3)]
		brand := titleCase(brands[rng.IntN(len(brands))])
		var p product
		var title, desc, legal, cur string
		var minor int64
		switch {
		case origin == "TH":
			p = thaiProducts[rng.IntN(len(thaiProducts))]
			title = p.name + pick(thaiWords)
			if rng.IntN(3) == 0 {
				title += " " + pick(englishWords)
			}
			desc = fmt.Sprintf("%s %s จาก%s คุณภาพดี ส่งตรงจาก%s brand %s", p.name, pick(thaiWords), pick(thaiWords), pick(thaiWords), brand)
			legal = "บริษัท " + brand + " จำกัด"
			cur, minor = "THB", int64(20+rng.IntN(5000))*100
		case rng.IntN(4) == 0: // English titles from MY and ID sellers
			p = english[rng.IntN(len(english))]
			title = pick(englishWords) + " " + p.name
			desc = fmt.Sprintf("%s %s by %s. Shipped from %s, packed fresh.", pick(englishWords), p.name, brand, origin)
			legal = brand + " Trading"
			if origin == "MY" {
				cur, minor = "MYR", int64(5+rng.IntN(500))*100
			} else {
				cur, minor = "IDR", int64(10+rng.IntN(2000))*1000_00
			}
		case origin == "MY":
			p = malay[rng.IntN(len(malay))]
			title = p.name + " " + pick(malayWords)
			desc = fmt.Sprintf("%s %s dari %s, jenama %s. Dihantar dari %s.", p.name, pick(malayWords), pick(malayWords), brand, pick(malayWords))
			legal = brand + " Sdn. Bhd."
			cur, minor = "MYR", int64(5+rng.IntN(500))*100
		default:
			p = indo[rng.IntN(len(indo))]
			title = p.name + " " + pick(indoWords)
			desc = fmt.Sprintf("%s %s asli dari %s, merek %s. Dikirim dari %s.", p.name, pick(indoWords), pick(indoWords), brand, pick(indoWords))
			legal = "PT " + brand + " Sejahtera"
			cur, minor = "IDR", int64(10+rng.IntN(2000))*1000_00
		}
		title += " " + pick(sizes)
		seller := fmt.Sprintf("sel_%s_%04d", origin, rng.IntN(2000))
		ls[n] = &catalog.Listing{
			ID:          idAt(n),
			Origin:      origin,
			SellerID:    seller,
			Seller:      catalog.SellerProfile{ID: seller, LegalName: legal, Region: pick(regions[origin])},
			Title:       title,
			Description: desc,
			HSCode:      p.hs,
			Price:       money.Amount{Minor: minor, Currency: cur},
			Quantity:    int64(rng.IntN(500)),
			ShipFrom:    pick(regions[origin]),
			Attributes:  map[string]string{"brand": brand},
			CreatedAt:   testEpoch.Add(time.Duration(n) * time.Second),
			Version:     1,
		}
	}
	if !indexed {
		return &benchCorpus{ls: ls, brands: brands}
	}
	ix := catalog.NewIndex()
	if err := ix.Restore(ls); err != nil {
		panic(err)
	}
	// Pay the build's garbage collection now: otherwise its concurrent
	// mark phase runs during the first benchmark and shows up as latency
	// that a node in steady state does not have.
	runtime.GC()
	return &benchCorpus{ix: ix, ls: ls, brands: brands}
}

// benchSearch runs the queries in turn, one per op, and reports the median
// and 99th percentile latency of a single search next to the mean.
func benchSearch(b *testing.B, qs []catalog.Query) {
	d := benchData()
	items := 0
	for _, q := range qs {
		page, err := d.ix.Search(q)
		if err != nil {
			b.Fatal(err)
		}
		items += len(page.Items)
	}
	if items == 0 {
		b.Fatal("no query matches anything: the benchmark would measure nothing")
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if _, err := d.ix.Search(qs[i%len(qs)]); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportPercentiles(b, lat)
	b.ReportMetric(float64(items)/float64(len(qs)), "items/query")
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(p float64) float64 { return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Nanoseconds()) }
	b.ReportMetric(at(0.50), "p50-ns")
	b.ReportMetric(at(0.99), "p99-ns")
}

func BenchmarkSearchOneWord(b *testing.B) {
	brands := benchData().brands
	benchSearch(b, []catalog.Query{
		{Text: "kopi", Origin: "ID"},            // common, both MY and ID
		{Text: "premium", MaxPrice: myr("100")}, // very common, all languages
		{Text: "luwak", Origin: "MY"},           // moderate
		{Text: brands[17], Origin: "TH"},        // rare brand
		{Text: "batik", MaxPrice: amount("500000", "IDR")},
		{Text: "songket", Origin: "MY"},               // rare-ish product
		{Text: "500g", Origin: "TH"},                  // common size
		{Text: "sambal", MaxPrice: myr("20")},         // MY and ID; only MYR prices can pass
		{Text: brands[2024], Region: "ID-BA"},         // rare brand, region
		{Text: "rice", HS: "1006"},                    // English only
		{Text: "sejahtera", Origin: "ID"},             // every Indonesian legal name
		{Text: "terengganu", MaxPrice: myr("250.50")}, // Malay place
	})
}

func BenchmarkSearchTwoWords(b *testing.B) {
	brands := benchData().brands
	benchSearch(b, []catalog.Query{
		{Text: "jasmine rice", Origin: "MY"},
		{Text: "kopi luwak", MaxPrice: myr("300")},
		{Text: "batik tulis", Origin: "ID"},
		{Text: "organic coffee", Region: "ID-JK"},
		{Text: "gula melaka", Origin: "MY"},
		{Text: brands[99] + " premium", Origin: "ID"},
		{Text: "keripik pedas", MaxPrice: amount("1000000", "IDR")},
		{Text: "durian chips", HS: "2008"},
		{Text: "kopi asli", Origin: "ID"},
		{Text: "teh tarik", MaxPrice: myr("50")},
		{Text: "madu " + brands[7], Origin: "MY"},
		{Text: "sdn bhd", MaxPrice: myr("10")},
	})
}

func BenchmarkSearchThai(b *testing.B) {
	benchSearch(b, []catalog.Query{
		{Text: "หอมมะลิ"},
		{Text: "ทุเรียน", MaxPrice: thb("1000")},
		{Text: "ผ้าไหม", Region: "TH-50"},
		{Text: "กาแฟ"},
		{Text: "มะม่วงอบ", Origin: "TH"},
		{Text: "น้ำพริก", MaxPrice: thb("80")},
		{Text: "ชาไทย"},
		{Text: "ทุเรียนหมอนทอง"},
		{Text: "มัดหมี่"},
		{Text: "ข้าวเหนียว premium"},
		{Text: "สุรินทร์", HS: "1006"},
		{Text: "น้ำผึ้งป่า"},
	})
}

// BenchmarkSearchWorstCase is the query shapes the index has no good
// driver for yet (issue 14): a very common word with a selective price
// bound, a price range alone, a bound in another currency (every listing
// converted), and filters with no indexed condition. They walk a whole
// posting list, or the whole catalog, to fill a page.
func BenchmarkSearchWorstCase(b *testing.B) {
	benchSearch(b, []catalog.Query{
		{Text: "premium", MaxPrice: myr("5.50")},       // common word, few cheap enough
		{MinPrice: thb("4999"), MaxPrice: thb("5000")}, // a price range alone
		{Text: "asli", MaxPrice: amount("10100000", "IDR")},
		{Text: "kopi", MinPrice: myr("499")}, // the top of the MYR range
		{Origin: "TH", MinPrice: thb("4995")},
		{Text: "500g", MaxPrice: thb("21")},
	})
}

// BenchmarkIndexUpsert replaces one listing at a time in the full catalog
// with a new version of itself, as a seller's edit does; the catalog's
// content is unchanged for the other benchmarks.
func BenchmarkIndexUpsert(b *testing.B) {
	d := benchData()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l := *d.ls[(i*7919)%len(d.ls)]
		l.Version++
		start := time.Now()
		if err := d.ix.Upsert(&l); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportPercentiles(b, lat)
}

// bulkBatch is the size of one bulk Upsert: what a CSV import or one pull of
// a federation sync hands the index.
const bulkBatch = 1000

// BenchmarkIndexUpsertBulk upserts 1,000 listings per op into an index of
// 100,000 (its own, built from the corpus), and reports the cost per
// listing.
//   - new: listings with fresh, newer IDs, as an import or a sync brings
//     them; they are deleted again, off the clock, so the index stays at
//     100,000.
//   - update: new versions of 1,000 existing listings, spread over the
//     catalog (every token list gets a removal and an insertion in the
//     middle).
func BenchmarkIndexUpsertBulk(b *testing.B) {
	d := benchData()
	ix := catalog.NewIndex()
	if err := ix.Restore(d.ls); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	b.Run("new", func(b *testing.B) {
		next := benchListings()
		batch := make([]*catalog.Listing, bulkBatch)
		delIDs := make([]string, bulkBatch)
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			for i := range batch {
				l := *d.ls[(next*7919)%len(d.ls)]
				l.ID = idAt(next)
				next++
				batch[i], delIDs[i] = &l, l.ID
			}
			b.StartTimer()
			if err := ix.Upsert(batch...); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := ix.Delete(delIDs...); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*bulkBatch), "µs/listing")
		if ix.Count() != benchListings() {
			b.Fatalf("count %d", ix.Count())
		}
	})
	b.Run("update", func(b *testing.B) {
		k := 0
		batch := make([]*catalog.Listing, bulkBatch)
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			for i := range batch {
				l := *d.ls[(k*7919)%len(d.ls)]
				k++
				l.Version++
				batch[i] = &l
			}
			b.StartTimer()
			if err := ix.Upsert(batch...); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*bulkBatch), "µs/listing")
	})
}

// BenchmarkRestore rebuilds an index of the benchmark corpus (benchListings), as
// a node does at start-up, and reports the heap the index holds per
// listing (the listings themselves excluded: they exist before and after).
func BenchmarkRestore(b *testing.B) {
	d := benchData()
	var ix *catalog.Index
	for b.Loop() {
		b.StopTimer()
		ix = nil
		runtime.GC()
		b.StartTimer()
		ix = catalog.NewIndex()
		if err := ix.Restore(d.ls); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// The heap figure, from one more Restore between two full collections.
	ix = nil
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ix = catalog.NewIndex()
	if err := ix.Restore(d.ls); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(ix)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(len(d.ls)), "heap-B/listing")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/restore")
}

// BenchmarkIndexDelete withdraws one listing at a time from the full
// catalog, anywhere in it, and puts it back off the clock.
func BenchmarkIndexDelete(b *testing.B) {
	d := benchData()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l := d.ls[(i*7919)%len(d.ls)]
		start := time.Now()
		if err := d.ix.Delete(l.ID); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		b.StopTimer()
		if err := d.ix.Upsert(l); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	reportPercentiles(b, lat)
}
