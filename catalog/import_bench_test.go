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

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/configs"
	"github.com/imtgt/imtgt-node/federation"
	"github.com/imtgt/imtgt-node/internal/pgtest"
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

// backends are the stores the import benchmarks run on, side by side in one
// run: bbolt in a temporary file, and PostgreSQL in a fresh database of
// the server IMTGT_TEST_POSTGRES names (the sub-benchmark skips without it).
var backends = []struct {
	name string
	open func(b *testing.B, i int) *store.DB
}{
	{"bbolt", func(b *testing.B, i int) *store.DB {
		db, err := store.Open(filepath.Join(b.TempDir(), fmt.Sprintf("node-%d.db", i)), store.Options{})
		require.NoError(b, err)
		return db
	}},
	{"postgres", func(b *testing.B, _ int) *store.DB {
		db, err := store.OpenURL(context.Background(), pgtest.URL(b), store.Options{})
		require.NoError(b, err)
		return db
	}},
}

// BenchmarkImportDurable is the whole bulk-import path of a federated
// node: parse CSV, validate, sign the log records, store listings and
// records in one durable transaction, index; on each backend.
func BenchmarkImportDurable(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) { benchImportDurable(b, be.open) })
	}
}

func benchImportDurable(b *testing.B, open func(*testing.B, int) *store.DB) {
	data := importCSV()
	ctx := context.Background()
	i := 0
	for b.Loop() {
		// A fresh node per import: the figure is for importing into a
		// node, not into one that grows by a thousand listings per loop.
		b.StopTimer()
		i++
		db := open(b, i)
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

// BenchmarkImportFloor is the floor for BenchmarkImportDurable on each
// backend: the least that backend can do to store the same work durably.
func BenchmarkImportFloor(b *testing.B) {
	b.Run("bbolt", benchImportFloorBolt)
	b.Run("postgres", benchImportFloorPostgres)
}

// benchImportFloorBolt: raw bbolt puts of the same listings, already
// encoded, in one durable transaction per 1,000.
func benchImportFloorBolt(b *testing.B) {
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

// benchImportFloorPostgres: every row a signed 1,000-listing import wrote
// (listings, their log records, and the few index and audit rows beside
// them, taken from the store's own table after a real import), copied with
// COPY into a plain two-column table with a primary key, in one committed
// transaction per import: no bucket paths, no upsert, no change feed, no
// advisory lock.
func benchImportFloorPostgres(b *testing.B) {
	ctx := context.Background()
	url := pgtest.URL(b)
	db, err := store.OpenURL(ctx, url, store.Options{})
	require.NoError(b, err)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(b, err)
	defer conn.Close(ctx)
	before := map[string]bool{}
	rowsOf := func() pgx.Rows {
		r, err := conn.Query(ctx, "SELECT bucket || '\\x00'::bytea || key, value FROM kv WHERE value IS NOT NULL")
		require.NoError(b, err)
		return r
	}
	r := rowsOf()
	for r.Next() {
		var k, v []byte
		require.NoError(b, r.Scan(&k, &v))
		before[string(k)] = true
	}
	require.NoError(b, r.Err())
	c := catalog.New(db, catalog.NewIndex(), catalog.Config{Country: "TH", Currency: "THB", Seal: benchSeal(b)})
	rows, bad, err := catalog.ParseImport(bytes.NewReader(importCSV()), catalog.FormatCSV, "THB")
	require.NoError(b, err)
	_, err = c.Import(ctx, seller, rows, bad)
	require.NoError(b, err)
	db.Close()
	var keys, vals [][]byte
	r = rowsOf()
	for r.Next() {
		var k, v []byte
		require.NoError(b, r.Scan(&k, &v))
		if !before[string(k)] {
			keys, vals = append(keys, k), append(vals, v)
		}
	}
	require.NoError(b, r.Err())
	require.Greater(b, len(keys), 2*importBatch-1, "an import writes at least a listing and a log record each")
	_, err = conn.Exec(ctx, "CREATE TABLE raw (key bytea PRIMARY KEY, value bytea NOT NULL)")
	require.NoError(b, err)
	n := 0
	for b.Loop() {
		n++
		prefix := fmt.Appendf(nil, "%06d/", n)
		tx, err := conn.Begin(ctx)
		require.NoError(b, err)
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"raw"}, []string{"key", "value"},
			pgx.CopyFromSlice(len(keys), func(i int) ([]any, error) {
				return []any{append(prefix[:len(prefix):len(prefix)], keys[i]...), vals[i]}, nil
			}))
		require.NoError(b, err)
		require.NoError(b, tx.Commit(ctx))
	}
	b.ReportMetric(float64(b.N*importBatch)/b.Elapsed().Seconds(), "listings/s")
	b.ReportMetric(float64(len(keys))/importBatch, "rows/listing")
}
