package node_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/internal/pgtest"
	"github.com/imtgt/imtgt-node/internal/testnet"
	"github.com/imtgt/imtgt-node/money"
)

// followerListings is the catalog BenchmarkFollowerSearch searches.
const followerListings = 100_000

// BenchmarkFollowerSearch: TH as two replicas on one PostgreSQL database
// (skipped without IMTGT_TEST_POSTGRES); 100,000 TH listings imported
// through the leader (CSV, 1,000 a transaction, as a seller's bulk
// import); once the follower's index holds them all (through the change
// feed), the Thai queries of catalog's BenchmarkSearchThai run b.N times
// on each replica's index, alternating, and the p50 and p99 of both are
// reported: a follower's search is the same in-memory search as the
// leader's, fed by the feed instead of by the writes it made.
func BenchmarkFollowerSearch(b *testing.B) {
	url := pgtest.URL(b)
	dir, op, err := testnet.InitShared(b, "TH", url)
	require.NoError(b, err)
	a := testnet.StartReplica(b, dir, "TH", op)
	c := testnet.StartReplica(b, dir, "TH", op)
	var leader, follower *testnet.Node
	testnet.Eventually(b, 10*time.Second, func() bool {
		switch {
		case a.Role() == "leader" && c.Role() == "follower":
			leader, follower = a, c
		case c.Role() == "leader" && a.Role() == "follower":
			leader, follower = c, a
		}
		return leader != nil
	}, "one replica leads")
	id, _ := leader.ActiveSeller(testnet.THSeller("Surat Thani Rice & Coffee Co., Ltd.", 3))
	seller := catalog.SellerProfile{ID: id, LegalName: "Surat Thani Rice & Coffee Co., Ltd.", BusinessID: "0845560012346", Region: "TH-90"}

	ctx := context.Background()
	rng := rand.New(rand.NewPCG(2025, 12))
	start := time.Now()
	for n := 0; n < followerListings; n += 1000 {
		rows, bad, err := catalog.ParseImport(bytes.NewReader(followerCSV(rng, 1000)), catalog.FormatCSV, "THB")
		require.NoError(b, err)
		require.Empty(b, bad)
		rep, err := leader.Catalog.Import(ctx, seller, rows, bad)
		require.NoError(b, err)
		require.Equal(b, 1000, rep.Imported)
	}
	imported := time.Since(start)
	testnet.Eventually(b, 2*time.Minute, func() bool { return follower.Catalog.Index().Count() >= followerListings },
		"the follower's index holds every listing")
	lag := time.Since(start) - imported
	b.Logf("imported %d listings through the leader in %s; the follower's index had them all %s later",
		followerListings, imported.Round(time.Millisecond), lag.Round(time.Millisecond))

	thb := func(s string) *money.Amount { a, err := money.Parse(s, "THB"); require.NoError(b, err); return &a }
	queries := []catalog.Query{ // BenchmarkSearchThai's
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
	}
	for _, q := range queries { // both answer alike
		pl, err := leader.Catalog.Search(q)
		require.NoError(b, err)
		pf, err := follower.Catalog.Search(q)
		require.NoError(b, err)
		require.Equal(b, len(pl.Items), len(pf.Items), "query %q", q.Text)
	}
	var onLeader, onFollower []time.Duration
	search := func(n *testnet.Node, q catalog.Query) time.Duration {
		t0 := time.Now()
		if _, err := n.Catalog.Search(q); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	// b.Loop: the setup above runs once, not once more for b.N = 1.
	for i := 0; b.Loop(); i++ {
		q := queries[i%len(queries)]
		onLeader = append(onLeader, search(leader, q))
		onFollower = append(onFollower, search(follower, q))
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(pct(onLeader, 50)), "leader-p50-µs")
	b.ReportMetric(us(pct(onLeader, 99)), "leader-p99-µs")
	b.ReportMetric(us(pct(onFollower, 50)), "follower-p50-µs")
	b.ReportMetric(us(pct(onFollower, 99)), "follower-p99-µs")
	b.ReportMetric(followerListings/imported.Seconds(), "import-listings/s")
	b.ReportMetric(lag.Seconds(), "follower-lag-s")
	b.ReportMetric(0, "ns/op")
}

// followerCSV is an import file of n TH listings in the words of
// catalog's benchmark corpus (Thai products and words, some English,
// sizes, 3,000 brands).
func followerCSV(rng *rand.Rand, n int) []byte {
	products := []struct{ name, hs string }{
		{"ข้าวหอมมะลิ", "100630"}, {"ทุเรียนหมอนทอง", "081060"}, {"ผ้าไหมไทย", "500720"},
		{"กาแฟดอยช้าง", "090121"}, {"มะม่วงอบแห้ง", "081340"}, {"น้ำพริกเผา", "210390"},
		{"ชาไทย", "090230"}, {"สบู่สมุนไพร", "340111"}, {"น้ำปลาแท้", "210390"},
		{"ทุเรียนทอด", "200899"}, {"ข้าวเหนียว", "100630"}, {"มังคุดสด", "080450"},
		{"ผ้าขาวม้า", "520812"}, {"พริกแกงเขียวหวาน", "210390"}, {"น้ำผึ้งป่า", "040900"},
		{"กาแฟโบราณ", "090121"}, {"ผ้าไหมมัดหมี่", "500720"}, {"ข้าวกล้องหอมมะลิ", "100620"},
	}
	words := []string{"ออร์แกนิก", "พรีเมียม", "ของแท้", "ส่งออก", "แบบดั้งเดิม", "เชียงใหม่", "อุบลราชธานี", "สุรินทร์", "จันทบุรี"}
	english := []string{"Premium", "Organic", "Handmade", "Original", "Fresh", "Spicy", "Sweet", "Traditional", "Export Grade"}
	sizes := []string{"250g", "500g", "1kg", "5kg", "500ml", "1L", "Size M", "10 pcs", "3 packs"}
	regions := []string{"TH-10", "TH-50", "TH-83", "TH-40", "TH-34", "TH-22"}
	syl := []string{"ka", "ri", "ma", "so", "tu", "nga", "la", "pe", "di", "ban", "sri", "jaya", "wat", "chai", "mek"}
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	var b bytes.Buffer
	b.WriteString("title,description,hs_code,price,quantity,ship_from,attr:brand\n")
	for range n {
		p := products[rng.IntN(len(products))]
		title := p.name + pick(words)
		if rng.IntN(3) == 0 {
			title += " " + pick(english)
		}
		title += " " + pick(sizes)
		brand := pick(syl) + pick(syl) + pick(syl)
		fmt.Fprintf(&b, "%s,%s %s จาก%s คุณภาพดี ส่งตรงจาก%s brand %s,%s,%d.00,%d,%s,%s\n",
			title, p.name, pick(words), pick(words), pick(words), brand, p.hs, 20+rng.IntN(5000), 1+rng.IntN(500), pick(regions), brand)
	}
	return b.Bytes()
}
