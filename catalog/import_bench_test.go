package catalog_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/configs"
	"github.com/imtgt/imtgt-node/federation"
	"github.com/imtgt/imtgt-node/policy"
	"github.com/imtgt/imtgt-node/store"
)

const importBatch = 1000

// importCSV is a realistic 1,000-row import file.
func importCSV() []byte {
	var b bytes.Buffer
	b.WriteString("title,description,hs_code,price,quantity,ship_from,attr:weight\n")
	titles := []string{"ข้าวหอมมะลิ 5 กก.", "Kopi robusta Chumphon coffee beans 1 kg", "ทุเรียนหมอนทอง อบแห้ง", "Dried squid Songkhla 500 g", "หมอนยางพาราแท้ natural latex pillow"}
	hs := []string{"100630", "090111", "081340", "030749", "940490"}
	for i := 0; i < importBatch; i++ {
		fmt.Fprintf(&b, "%s #%d,Sun-dried product of southern Thailand batch %d,%s,%d.50,%d,TH-90,500 g\n",
			titles[i%len(titles)], i, i, hs[i%len(hs)], 100+i%900, 1+i%50)
	}
	return b.Bytes()
}

// benchSeal signs log records as a federated node does.
func benchSeal(b *testing.B) catalog.SealFunc {
	_, raw, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(b, err)
	key, _, err := federation.Identity(raw)
	require.NoError(b, err)
	raw2, err := configs.DefaultPolicy("TH")
	require.NoError(b, err)
	p, err := policy.Parse("TH", raw2)
	require.NoError(b, err)
	return federation.RecordSealer(key, "TH", time.Now, func() *policy.Policy { return p })
}

// BenchmarkImportDurable is the whole bulk-import path of a federated
// node: parse CSV, validate, sign the log records, store listings and
// records in one durable bbolt transaction, index.
func BenchmarkImportDurable(b *testing.B) {
	data := importCSV()
	ctx := context.Background()
	dir := b.TempDir()
	i := 0
	for b.Loop() {
		// A fresh node per import: the figure is for importing into a
		// node, not into one that grows by a thousand listings per loop.
		b.StopTimer()
		i++
		db, err := store.Open(filepath.Join(dir, fmt.Sprintf("node-%d.db", i)), store.Options{})
		require.NoError(b, err)
		c := catalog.New(db, catalog.NewIndex(), catalog.Config{Country: "TH", Currency: "THB", Seal: benchSeal(b)})
		b.StartTimer()
		rows, bad, err := catalog.ParseImport(bytes.NewReader(data), catalog.FormatCSV, "THB")
		require.NoError(b, err)
		rep, err := c.Import(ctx, seller, rows, bad)
		require.NoError(b, err)
		require.Equal(b, importBatch, rep.Imported)
		b.StopTimer()
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*importBatch)/b.Elapsed().Seconds(), "listings/s")
}

// BenchmarkImportFloorBoltBatch is the floor for BenchmarkImportDurable:
// raw bbolt puts of the same records, already encoded, in one durable
// transaction per 1,000.
func BenchmarkImportFloorBoltBatch(b *testing.B) {
	bdb, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, nil)
	require.NoError(b, err)
	defer bdb.Close()
	// Encode the same listings the import would store.
	db, err := store.Open(filepath.Join(b.TempDir(), "enc.db"), store.Options{})
	require.NoError(b, err)
	c := catalog.New(db, catalog.NewIndex(), catalog.Config{Country: "TH", Currency: "THB"})
	rows, bad, err := catalog.ParseImport(bytes.NewReader(importCSV()), catalog.FormatCSV, "THB")
	require.NoError(b, err)
	rep, err := c.Import(context.Background(), seller, rows, bad)
	require.NoError(b, err)
	vals := make([][]byte, 0, importBatch)
	for _, id := range rep.IDs {
		l, _ := c.Get(id)
		v, err := json.Marshal(l)
		require.NoError(b, err)
		vals = append(vals, v)
	}
	db.Close()
	n := 0
	for b.Loop() {
		require.NoError(b, bdb.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("listings"))
			if err != nil {
				return err
			}
			for _, v := range vals {
				n++
				if err := bk.Put(fmt.Appendf(nil, "lst_%026d", n), v); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	b.ReportMetric(float64(b.N*importBatch)/b.Elapsed().Seconds(), "listings/s")
}
