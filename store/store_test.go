package store_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/imtgt/imtgt-node/access"
	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/sellers"
	"github.com/imtgt/imtgt-node/store"
)

// mustOpen opens a fresh store in a temporary directory.
func mustOpen(tb testing.TB) *store.DB {
	tb.Helper()
	db, err := store.Open(filepath.Join(tb.TempDir(), "node.db"), store.Options{})
	require.NoError(tb, err)
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.db")
	db, err := store.Open(path, store.Options{})
	require.NoError(t, err)
	v, err := db.SchemaVersion()
	require.NoError(t, err)
	require.Equal(t, store.SchemaVersion, v)
	require.NoError(t, db.Close())

	// A store from a newer binary is refused, not silently rewritten.
	bdb, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, bdb.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), []byte(strconv.Itoa(store.SchemaVersion+1)))
	}))
	require.NoError(t, bdb.Close())
	_, err = store.Open(path, store.Options{})
	require.ErrorIs(t, err, store.ErrNewerSchema)
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.db")
	db, err := store.Open(path, store.Options{})
	require.NoError(t, err)
	defer db.Close()
	_, err = store.Open(path, store.Options{LockTimeout: 50 * time.Millisecond})
	require.ErrorIs(t, err, store.ErrLocked)
}

func TestSellers(t *testing.T) { forEachBackend(t, testSellers) }

func testSellers(t *testing.T, open func(t *testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	p := access.Principal{Role: access.Seller, Subject: "sel_1"}
	rec := &sellers.Record{ID: "sel_1", BusinessID: "0105537001232", Status: sellers.StatusPending, Sealed: []byte{1, 2, 3}}
	require.NoError(t, db.CreateSeller(ctx, rec, "hash1", p))

	dup := &sellers.Record{ID: "sel_2", BusinessID: "0105537001232"}
	require.ErrorIs(t, db.CreateSeller(ctx, dup, "hash2", p), sellers.ErrDuplicate)
	_, err := db.Principal(ctx, "hash2")
	require.ErrorIs(t, err, access.ErrUnknownToken, "a refused registration must not leave its token behind")

	got, err := db.Principal(ctx, "hash1")
	require.NoError(t, err)
	require.Equal(t, p, got)

	_, err = db.Seller(ctx, "sel_none")
	require.ErrorIs(t, err, sellers.ErrNotFound)

	up, err := db.UpdateSeller(ctx, "sel_1", func(r *sellers.Record) error { r.Status = sellers.StatusActive; return nil })
	require.NoError(t, err)
	require.Equal(t, sellers.StatusActive, up.Status)
	_, err = db.UpdateSeller(ctx, "sel_none", func(*sellers.Record) error { return nil })
	require.ErrorIs(t, err, sellers.ErrNotFound)

	for i := 3; i <= 7; i++ {
		id := "sel_" + strconv.Itoa(i)
		require.NoError(t, db.CreateSeller(ctx, &sellers.Record{ID: id, BusinessID: id, Status: sellers.StatusPending}, "h"+id, p))
	}
	page, err := db.Sellers(ctx, "", "", 3)
	require.NoError(t, err)
	require.Len(t, page, 3)
	page2, err := db.Sellers(ctx, "", page[2].ID, 10)
	require.NoError(t, err)
	require.Len(t, page2, 3)
	require.Equal(t, "sel_5", page2[0].ID) // page 1 was sel_1, sel_3, sel_4
	active, err := db.Sellers(ctx, sellers.StatusActive, "", 10)
	require.NoError(t, err)
	require.Len(t, active, 1)
}

func TestListingsAndBackup(t *testing.T) { forEachBackend(t, testListingsAndBackup) }

func testListingsAndBackup(t *testing.T, open func(t *testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	ls := []*catalog.Listing{
		{ID: "lst_1", Origin: "TH", Title: "ข้าวหอมมะลิ", Price: money.Amount{Minor: 26500, Currency: "THB"}},
		{ID: "lst_2", Origin: "TH", Title: "coffee"},
	}
	require.NoError(t, db.ApplyLocal(ctx, "TH", []catalog.Change{{Listing: ls[0]}, {Listing: ls[1]}}, nil))
	require.NoError(t, db.ApplyLocal(ctx, "TH", []catalog.Change{{Listing: &catalog.Listing{ID: "lst_3", Origin: "TH"}}}, nil))
	require.NoError(t, db.ApplyLocal(ctx, "TH", []catalog.Change{{DeleteID: "lst_2"}}, nil))
	require.NoError(t, db.ApplyLocal(ctx, "TH", []catalog.Change{{DeleteID: "lst_missing"}}, nil))
	all, err := db.Listings(ctx)
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, "ข้าวหอมมะลิ", all[0].Title)
	require.Equal(t, int64(26500), all[0].Price.Minor)

	var buf bytes.Buffer
	if db.Shared() {
		// PostgreSQL is backed up with its own tools.
		_, err := db.Backup(&buf, nil)
		require.ErrorIs(t, err, store.ErrNoBackup)
		return
	}
	var announced int64
	n, err := db.Backup(&buf, func(size int64) { announced = size })
	require.NoError(t, err)
	require.Equal(t, announced, n)
	require.Equal(t, int64(buf.Len()), n)

	path := filepath.Join(t.TempDir(), "copy.db")
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o600))
	cp, err := store.Open(path, store.Options{ReadOnly: true})
	require.NoError(t, err)
	defer cp.Close()
	got, err := cp.Listings(ctx)
	require.NoError(t, err)
	require.Len(t, got, 2)
}

// BenchmarkBoltBatchInsert is the floor for bulk import: raw bbolt puts of
// pre-encoded listing records in one durable transaction of 1,000.
func BenchmarkBoltBatchInsert(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, nil)
	require.NoError(b, err)
	defer db.Close()
	val := bytes.Repeat([]byte("x"), 420) // about one encoded listing
	b.ResetTimer()
	i := 0
	for b.Loop() {
		require.NoError(b, db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("listings"))
			if err != nil {
				return err
			}
			for j := 0; j < 1000; j++ {
				i++
				if err := bk.Put([]byte("lst_"+strconv.Itoa(i)), val); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "records/s")
}

func TestCatalogLogs(t *testing.T) { forEachBackend(t, testCatalogLogs) }

func testCatalogLogs(t *testing.T, open func(t *testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	seal := func(first uint64, cs []catalog.Change) ([][]byte, error) {
		out := make([][]byte, len(cs))
		for i := range cs {
			out[i] = []byte("TH record " + strconv.FormatUint(first+uint64(i), 10))
		}
		return out, nil
	}
	require.NoError(t, db.ApplyLocal(ctx, "TH", []catalog.Change{{Listing: &catalog.Listing{ID: "lst_1"}}, {Listing: &catalog.Listing{ID: "lst_2"}}}, seal))
	require.NoError(t, db.ApplyLocal(ctx, "TH", []catalog.Change{{DeleteID: "lst_1"}}, seal))
	heads, err := db.Heads(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]uint64{"TH": 3}, heads)
	recs, head, err := db.LogRange(ctx, "TH", 2, 10, 1<<20)
	require.NoError(t, err)
	require.Equal(t, uint64(3), head)
	require.Equal(t, [][]byte{[]byte("TH record 2"), []byte("TH record 3")}, recs)
	recs, _, err = db.LogRange(ctx, "TH", 1, 10, 5)
	require.NoError(t, err)
	require.Len(t, recs, 1, "the byte budget stops the range, but never below one record")
	recs, head, err = db.LogRange(ctx, "MY", 1, 10, 1<<20)
	require.NoError(t, err)
	require.Empty(t, recs)
	require.Zero(t, head)

	// A seal failure writes nothing.
	failing := func(uint64, []catalog.Change) ([][]byte, error) { return nil, errors.New("no key") }
	require.Error(t, db.ApplyLocal(ctx, "TH", []catalog.Change{{Listing: &catalog.Listing{ID: "lst_9"}}}, failing))
	all, err := db.Listings(ctx)
	require.NoError(t, err)
	require.Len(t, all, 1)

	// Remote records: repeats are skipped, gaps refused, deletes applied.
	my := func(seq uint64, id string, del bool) catalog.RemoteRecord {
		r := catalog.RemoteRecord{Seq: seq, Raw: []byte("MY " + strconv.FormatUint(seq, 10))}
		if del {
			r.DeleteID = id
		} else {
			r.Listing = &catalog.Listing{ID: id, Origin: "MY"}
		}
		return r
	}
	applied, err := db.ApplyRemote(ctx, "MY", []catalog.RemoteRecord{my(1, "lst_m1", false), my(2, "lst_m2", false)}, nil)
	require.NoError(t, err)
	require.Len(t, applied, 2)
	applied, err = db.ApplyRemote(ctx, "MY", []catalog.RemoteRecord{my(2, "lst_m2", false), my(3, "lst_m1", true)}, nil)
	require.NoError(t, err)
	require.Len(t, applied, 1)
	_, err = db.ApplyRemote(ctx, "MY", []catalog.RemoteRecord{my(5, "lst_m5", false)}, nil)
	require.ErrorIs(t, err, catalog.ErrLogGap)
	heads, err = db.Heads(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]uint64{"TH": 3, "MY": 3}, heads)
	all, err = db.Listings(ctx)
	require.NoError(t, err)
	var ids []string
	for _, l := range all {
		ids = append(ids, l.ID)
	}
	require.ElementsMatch(t, []string{"lst_2", "lst_m2"}, ids)
}

// A checkpoint at a seq already stored (another replica made it) keeps
// the stored one and its witnesses.
func TestPutCheckpointKeepsTheStoredOne(t *testing.T) {
	forEachBackend(t, testPutCheckpointKeepsTheStoredOne)
}

func testPutCheckpointKeepsTheStoredOne(t *testing.T, open func(t *testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	cp := &audit.Checkpoint{Node: "TH", Seq: 3, Head: "aa", Signature: []byte("first")}
	got, err := db.PutCheckpoint(ctx, cp)
	require.NoError(t, err)
	require.Equal(t, cp, got)
	require.NoError(t, db.AddWitness(ctx, 3, audit.Witness{Node: "MY"}))
	got, err = db.PutCheckpoint(ctx, &audit.Checkpoint{Node: "TH", Seq: 3, Head: "aa", Signature: []byte("second")})
	require.NoError(t, err)
	require.Equal(t, []byte("first"), got.Signature, "the stored checkpoint is the one peers countersign")
	require.Len(t, got.Witnesses, 1)
	last, err := db.LastCheckpoint(ctx)
	require.NoError(t, err)
	require.Len(t, last.Witnesses, 1, "the countersignature stays")
}
