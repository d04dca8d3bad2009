package federation

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/membership"
	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/store"
)

const benchListings = 100_000

// buildOriginStore returns a TH store whose log holds benchListings
// signed records.
func buildOriginStore(b *testing.B, th identity) *store.DB {
	b.Helper()
	db, err := store.Open(filepath.Join(b.TempDir(), "origin.db"), store.Options{})
	require.NoError(b, err)
	seal := RecordSealer(th.key, "TH", time.Now, defaultPolicy(b, "TH"))
	titles := []string{"ข้าวหอมมะลิ 5 กก. jasmine rice", "Kopi robusta Chumphon coffee", "ทุเรียนหมอนทอง อบแห้ง dried durian", "Dried squid Songkhla 500 g", "หมอนยางพาราแท้ latex pillow"}
	hs := []string{"100630", "090111", "081340", "030749", "940490"}
	now := time.Now().UTC()
	for start := 0; start < benchListings; start += 1000 {
		changes := make([]catalog.Change, 1000)
		for i := range changes {
			n := start + i
			changes[i] = catalog.Change{Listing: &catalog.Listing{
				ID: fmt.Sprintf("lst_%026d", n), Origin: "TH", SellerID: "sel_1",
				Seller: catalog.SellerProfile{ID: "sel_1", LegalName: "Surat Thani Rice & Coffee Co., Ltd.", BusinessID: "0845560012346", Region: "TH-84"},
				Title:  fmt.Sprintf("%s #%d", titles[n%len(titles)], n), Description: "Product of southern Thailand",
				HSCode: hs[n%len(hs)], Price: money.Amount{Minor: int64(10000 + n%90000), Currency: "THB"},
				Quantity: 10, ShipFrom: "TH-84", CreatedAt: now, UpdatedAt: now, Version: 1,
			}}
		}
		require.NoError(b, db.ApplyLocal(context.Background(), "TH", changes, seal))
	}
	return db
}

func benchNode(b *testing.B, me identity, db *store.DB, raw []byte, psk []byte, audited bool) *testNode {
	b.Helper()
	m, err := membership.Parse(raw)
	require.NoError(b, err)
	key, err := ParsePSK(psk)
	require.NoError(b, err)
	tn := &testNode{reg: prometheus.NewRegistry()}
	cfg := Config{
		Country: me.country, Key: me.key, ListenAddr: me.addr, PSK: key, Manifest: m, ManifestRaw: raw,
		CatalogFunc: func() *catalog.Catalog { return tn.cat },
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: tn.reg, SyncInterval: time.Hour,
	}
	if audited {
		cfg.Audit, cfg.Policy = db.AppendAudit, defaultPolicy(b, me.country)
	}
	tn.svc, err = New(cfg)
	require.NoError(b, err)
	tn.cat = catalog.New(db, catalog.NewIndex(), catalog.Config{Country: me.country, Currency: "THB",
		Seal: RecordSealer(me.key, me.country, time.Now, defaultPolicy(b, me.country)), Published: tn.svc.Published})
	require.NoError(b, tn.cat.Load(context.Background()))
	require.NoError(b, tn.svc.Start(context.Background()))
	return tn
}

// BenchmarkFullSync100k: a fresh peer pulls 100,000 listings from their
// origin over loopback (verify, store, index), with the audit log on as a
// node runs: the origin records each range it serves before sending it, the
// peer records each range it stores in the same transaction. Compare with
// BenchmarkFullSyncUnaudited100k (the same without the audit log) and
// BenchmarkFullSyncNoNetwork100k (the work without the network).
func BenchmarkFullSync100k(b *testing.B) { benchFullSync(b, true) }

// BenchmarkFullSyncUnaudited100k is BenchmarkFullSync100k with the audit
// log off on both nodes: the cost of auditing is the ratio of the two.
func BenchmarkFullSyncUnaudited100k(b *testing.B) { benchFullSync(b, false) }

func benchFullSync(b *testing.B, audited bool) {
	th, my := newIdentity(b, "TH"), newIdentity(b, "MY")
	origin := buildOriginStore(b, th)
	defer origin.Close()
	for b.Loop() {
		b.StopTimer()
		th.addr, my.addr = freeAddr(b), freeAddr(b)
		_, raw := testManifest(b, th, my)
		psk, _ := NewPSK()
		src := benchNode(b, th, origin, raw, psk, audited)
		db, err := store.Open(filepath.Join(b.TempDir(), fmt.Sprintf("peer-%d.db", time.Now().UnixNano())), store.Options{NoAudit: !audited})
		require.NoError(b, err)
		b.StartTimer()
		start := time.Now()
		dst := benchNode(b, my, db, raw, psk, audited)
		for dst.cat.Index().Count() < benchListings {
			ws := memdb.NewWatchSet()
			dst.cat.Index().Watch(ws)
			if dst.cat.Index().Count() >= benchListings {
				break
			}
			ws.WatchCtx(context.Background())
		}
		elapsed := time.Since(start)
		b.StopTimer()
		if audited {
			seq, _, err := db.AuditHead(context.Background())
			require.NoError(b, err)
			require.NotZero(b, seq, "the audited run wrote no audit entries")
		}
		b.ReportMetric(benchListings/elapsed.Seconds(), "listings/s")
		dst.svc.Close()
		src.svc.Close()
		db.Close()
		b.StartTimer()
	}
}

// BenchmarkSyncVerifyFloor100k is a floor of BenchmarkFullSync100k: only
// the signature checks of the same 100,000 records, in ranges as they
// arrive, batch-verified on every core as fetch does (OpenRecords), with
// no network, storage or index. Sync cannot be faster than this; the
// ratio says what the rest of the work costs.
func BenchmarkSyncVerifyFloor100k(b *testing.B) {
	th := newIdentity(b, "TH")
	origin := buildOriginStore(b, th)
	defer origin.Close()
	ctx := context.Background()
	var chunks [][][]byte
	for from := uint64(1); from <= benchListings; {
		recs, _, err := origin.LogRange(ctx, "TH", from, MaxRangeCount, rangeReplyBytes)
		require.NoError(b, err)
		chunks = append(chunks, recs)
		from += uint64(len(recs))
	}
	for b.Loop() {
		start := time.Now()
		for _, recs := range chunks {
			_, errs := OpenRecords(recs, th.id)
			for _, err := range errs {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(benchListings/time.Since(start).Seconds(), "listings/s")
	}
}

// BenchmarkVerifyOneByOne100k is the same check with go-libp2p's
// one-signature-at-a-time verification (crypto/ed25519) on every core:
// what batch verification replaced.
func BenchmarkVerifyOneByOne100k(b *testing.B) {
	th := newIdentity(b, "TH")
	origin := buildOriginStore(b, th)
	defer origin.Close()
	recs, _, err := origin.LogRange(context.Background(), "TH", 1, MaxRangeCount, rangeReplyBytes)
	require.NoError(b, err)
	for b.Loop() {
		start := time.Now()
		require.NoError(b, parallel(len(recs), func(i int) error { _, _, err := OpenRecord(recs[i]); return err }))
		b.ReportMetric(float64(len(recs))/time.Since(start).Seconds(), "listings/s")
	}
}

// BenchmarkPropagation: one listing created on TH, until both MY and ID
// have it indexed; p50 and p99 over the iterations.
func BenchmarkPropagation(b *testing.B) {
	th, my, id := newIdentity(b, "TH"), newIdentity(b, "MY"), newIdentity(b, "ID")
	_, raw := testManifest(b, th, my, id)
	psk, _ := NewPSK()
	var nodes []*testNode
	for _, who := range []identity{th, my, id} {
		db, err := store.Open(filepath.Join(b.TempDir(), who.country+".db"), store.Options{})
		require.NoError(b, err)
		defer db.Close()
		n := benchNode(b, who, db, raw, psk, true)
		defer n.svc.Close()
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		require.Eventually(b, func() bool { return len(n.svc.Host().Network().Peers()) == 2 }, 10*time.Second, 10*time.Millisecond)
	}
	seller := catalog.SellerProfile{ID: "sel_1", LegalName: "Songkhla Seafood Export Co., Ltd.", BusinessID: "0105537001232", Region: "TH-90"}
	ctx := context.Background()
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		l, err := nodes[0].cat.Create(ctx, seller, catalog.Input{Title: "ปลาหมึกแห้ง dried squid", HSCode: "030749",
			Price: money.Wire{Amount: "420.00", Currency: "THB"}, Quantity: 5, ShipFrom: "TH-90"})
		require.NoError(b, err)
		for _, n := range nodes[1:] {
			for {
				ws := memdb.NewWatchSet()
				n.cat.Index().Watch(ws)
				if _, ok := n.cat.Get(l.ID); ok {
					break
				}
				wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				if ws.WatchCtx(wctx) != nil {
					cancel()
					b.Fatalf("listing did not reach %v", n.svc.cfg.Country)
				}
				cancel()
			}
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "p99-ms")
}
