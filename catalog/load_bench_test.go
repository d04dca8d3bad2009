package catalog_test

import (
	"bytes"
	"context"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/store"
)

// benchScale is the number of listings of the scale benchmarks (see
// benchListings).
func benchScale(*testing.B) int { return benchListings() }

// filledStore writes n corpus listings into a new bbolt store, as records
// of their origins' logs (as sync stores them), and closes it.
func filledStore(b *testing.B, n int) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "node.db")
	db, err := store.Open(path, store.Options{NoAudit: true})
	if err != nil {
		b.Fatal(err)
	}
	ls := genCorpus(n, false).ls
	seq := map[string]uint64{}
	batch := map[string][]catalog.RemoteRecord{}
	flush := func(origin string) {
		if _, err := db.ApplyRemote(context.Background(), origin, batch[origin], nil); err != nil {
			b.Fatal(err)
		}
		batch[origin] = batch[origin][:0]
	}
	for _, l := range ls {
		seq[l.Origin]++
		batch[l.Origin] = append(batch[l.Origin], catalog.RemoteRecord{Seq: seq[l.Origin], Raw: []byte(l.ID), Listing: l})
		if len(batch[l.Origin]) == 5000 {
			flush(l.Origin)
		}
	}
	for o := range batch {
		if len(batch[o]) > 0 {
			flush(o)
		}
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkLoad is a node's cold start: open the store (which reads the
// whole file to check it), read and decode every listing, build the index,
// on a heap with nothing else on it. It reports the whole time and its
// parts, and the heap the loaded catalog holds per listing (listings and
// index together).
func BenchmarkLoad(b *testing.B) {
	n := benchScale(b)
	path := filledStore(b, n)
	var openMs, loadMs []float64
	var heapPer float64
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		start := time.Now()
		db, err := store.Open(path, store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		opened := time.Now()
		c := catalog.New(db, catalog.NewIndex(), catalog.Config{Country: "XX", Currency: "USD"})
		if err := c.Load(context.Background()); err != nil {
			b.Fatal(err)
		}
		openMs = append(openMs, float64(opened.Sub(start).Microseconds())/1000)
		loadMs = append(loadMs, float64(time.Since(opened).Microseconds())/1000)
		b.StopTimer()
		if c.Index().Count() != n {
			b.Fatalf("loaded %d listings of %d", c.Index().Count(), n)
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		heapPer = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
		runtime.KeepAlive(c)
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(median(openMs), "open-ms")
	b.ReportMetric(median(loadMs), "load-ms")
	b.ReportMetric(median(openMs)+median(loadMs), "start-ms")
	b.ReportMetric(heapPer, "heap-B/listing")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d listings", n)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkImportIntoFull is BenchmarkImportDurable (bbolt) into a node
// that already holds IMTGT_BENCH_LISTINGS listings, loaded and indexed: a
// national node's import, where the store's B+tree and the index are
// large. The store grows by the imports themselves (1,000 a loop), which
// is small against its size.
func BenchmarkImportIntoFull(b *testing.B) {
	n := benchScale(b)
	db, err := store.Open(filledStore(b, n), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	c := catalog.New(db, catalog.NewIndex(), catalog.Config{Country: "TH", Currency: "THB", Seal: benchSeal(b)})
	ctx := context.Background()
	if err := c.Load(ctx); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	data := importCSV()
	for b.Loop() {
		rows, bad, err := catalog.ParseImport(bytes.NewReader(data), catalog.FormatCSV, "THB")
		if err != nil {
			b.Fatal(err)
		}
		rep, err := c.Import(ctx, seller, rows, bad)
		if err != nil || rep.Imported != importBatch {
			b.Fatalf("import: %v (%d imported)", err, rep.Imported)
		}
	}
	b.ReportMetric(float64(b.N*importBatch)/b.Elapsed().Seconds(), "listings/s")
	b.ReportMetric(0, "ns/op")
	b.Logf("into %d listings", n)
}
