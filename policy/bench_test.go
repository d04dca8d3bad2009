package policy_test

import (
	"testing"
	"time"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/configs"
	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/policy"
)

// BenchmarkEvaluate is the import decision for one listing (it runs for
// every search result and for orderable=true filtering). Target ≤ 2 µs.
func BenchmarkEvaluate(b *testing.B) {
	p := defaultPolicy(b, "ID")
	l := policy.Listing{Origin: "MY", HSCode: "090111", UnitPrice: money.Amount{Minor: 60000, Currency: "MYR"}}
	b.ReportAllocs()
	for b.Loop() {
		_ = policy.Evaluate(p, l, inForce)
	}
}

// mixedCatalog is a catalog of listings from both other members for each
// default policy: HS codes with and without rules (prohibited, permit,
// heading-only), prices on both sides of Indonesia's FOB floor, in the
// origin's currency. It is what the node evaluates, not one easy listing.
func mixedCatalog(n int, country string) []policy.Listing {
	hs := []string{"090111", "100630", "030749", "080450", "851712", "330499", "490199", "420222", "520852", "610910",
		"640399", "871200", "720851", "240412", "930190", "1006", "6109", "854340", "910111", "220421"}
	others := map[string][]string{"ID": {"TH", "MY"}, "TH": {"MY", "ID"}, "MY": {"TH", "ID"}}[country]
	cur := map[string]string{"TH": "THB", "MY": "MYR", "ID": "IDR"}
	scale := map[string]int64{"THB": 3600, "MYR": 470, "IDR": 1_600_000} // about one US dollar, in minor units
	out := make([]policy.Listing, n)
	for i := range out {
		o := others[i%2]
		usd := int64(1 + (i*37)%400) // 1 to 400 US dollars
		out[i] = policy.Listing{Origin: o, HSCode: hs[(i/2)%len(hs)], UnitPrice: money.Amount{Minor: usd * scale[cur[o]], Currency: cur[o]}}
	}
	return out
}

// BenchmarkEvaluateMixed is the import decision over a mixed catalog
// (mixedCatalog), for each default policy: ns and allocations per listing.
// BenchmarkOrderableMixed is the same decision as the orderable filter
// takes it (Orderable: no reasons built).
func BenchmarkEvaluateMixed(b *testing.B) {
	benchMixed(b, func(p *policy.Policy, l policy.Listing) { _ = policy.Evaluate(p, l, inForce) })
}

func BenchmarkOrderableMixed(b *testing.B) {
	benchMixed(b, func(p *policy.Policy, l policy.Listing) { _ = policy.Orderable(p, l, inForce) })
}

// benchMixed times decide over each default policy's mixed catalog.
func benchMixed(b *testing.B, decide func(*policy.Policy, policy.Listing)) {
	for _, c := range []string{"ID", "TH", "MY"} {
		b.Run(c, func(b *testing.B) {
			p, ls := defaultPolicy(b, c), mixedCatalog(1000, c)
			b.ReportAllocs()
			for b.Loop() {
				for _, l := range ls {
					decide(p, l)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ls)), "ns/listing")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkQuote is a landed-cost quote with duty and VAT.
func BenchmarkQuote(b *testing.B) {
	p := defaultPolicy(b, "ID")
	l := policy.Listing{Origin: "MY", HSCode: "090111", UnitPrice: money.Amount{Minor: 60000, Currency: "MYR"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := policy.MakeQuote(p, l, 2, "ID-SU", inForce); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProject is the egress projection of one listing. Target ≤ 5 µs.
func BenchmarkProject(b *testing.B) {
	p := defaultPolicy(b, "TH")
	l := &catalog.Listing{ID: "lst_01JDXYZ", Origin: "TH", SellerID: "sel_1",
		Seller: catalog.SellerProfile{ID: "sel_1", LegalName: "Songkhla Seafood Export Co., Ltd.", BusinessID: "0105537001232", Region: "TH-90"},
		Title:  "ปลาหมึกแห้ง สงขลา (Songkhla dried squid) 500 g", Description: "Sun-dried squid from the Songkhla lagoon.",
		HSCode: "030749", Price: money.Amount{Minor: 42000, Currency: "THB"}, Quantity: 300, ShipFrom: "TH-90",
		Images: []string{"https://img.example/squid.jpg"}, Attributes: map[string]string{"weight": "500 g"},
		CreatedAt: time.Now(), UpdatedAt: time.Now(), Version: 1}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := p.Project(l, policy.AllMembers, policy.PurposeCatalog); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReannotate100k evaluates the import decision of a 100,000-
// listing catalog: what a node does, lazily, after a policy install (the
// decision is computed per request from the installed policy, so nothing
// is stored to rewrite).
func BenchmarkReannotate100k(b *testing.B) {
	p := defaultPolicy(b, "ID")
	hs := []string{"090111", "330499", "490199", "420222", "520852", "100630", "854340"}
	ls := make([]policy.Listing, 100_000)
	for i := range ls {
		ls[i] = policy.Listing{Origin: []string{"TH", "MY"}[i%2], HSCode: hs[i%len(hs)],
			UnitPrice: money.Amount{Minor: int64(1000 + i%100000), Currency: []string{"THB", "MYR"}[i%2]}}
	}
	for b.Loop() {
		n := 0
		for _, l := range ls {
			if policy.Evaluate(p, l, inForce).Orderable {
				n++
			}
		}
		if n == 0 {
			b.Fatal("nothing orderable")
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/catalog")
}

// BenchmarkParse loads and checks a default policy file.
func BenchmarkParse(b *testing.B) {
	raw, _ := configs.DefaultPolicy("ID")
	for b.Loop() {
		if _, err := policy.Parse("policy-ID.yaml", raw); err != nil {
			b.Fatal(err)
		}
	}
}
