package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/imtgt/imtgt-node/access"
	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/keys"
	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/sellers"
	"github.com/imtgt/imtgt-node/store"
)

// filledStore writes a closed store at path with n listings (each with
// its log record and audit entry) and one seller sealed under key.
func filledStore(tb testing.TB, path string, n int, key *keys.DataKey) {
	tb.Helper()
	ctx := context.Background()
	db, err := store.Open(path, store.Options{})
	require.NoError(tb, err)
	require.NoError(tb, db.SetNodeMeta(store.NodeMeta{Country: "TH", NodePublicKey: strings.Repeat("ab", 32), CreatedAt: time.Now()}))
	if key != nil {
		require.NoError(tb, db.VerifyDataKey(key.Fingerprint(), key))
		rec := &sellers.Record{ID: "sel_1", BusinessID: "0105537001232", Status: sellers.StatusActive, Sealed: key.Seal([]byte(`{"owner":"x"}`), []byte("sel_1"))}
		require.NoError(tb, db.CreateSeller(ctx, rec, "hash1", access.Principal{Role: access.Seller, Subject: "sel_1"}))
	}
	seal := func(first uint64, cs []catalog.Change) ([][]byte, error) {
		out := make([][]byte, len(cs))
		for i := range cs {
			out[i] = []byte(fmt.Sprintf("TH record %d %s", first+uint64(i), strings.Repeat("s", 300)))
		}
		return out, nil
	}
	const batch = 1000
	for i := 0; i < n; i += batch {
		var cs []catalog.Change
		for j := i; j < min(n, i+batch); j++ {
			cs = append(cs, catalog.Change{Listing: &catalog.Listing{
				ID: fmt.Sprintf("lst_%08d", j), Origin: "TH", SellerID: "sel_1", Title: fmt.Sprintf("Jasmine rice %d kg", j),
				Description: strings.Repeat("Hom Mali from Surin. ", 8), HSCode: "100630",
				Price: money.Amount{Minor: int64(10000 + j), Currency: "THB"}, Quantity: 10, ShipFrom: "TH-32",
			}})
		}
		require.NoError(tb, db.ApplyLocal(ctx, "TH", cs, seal))
		var es []*audit.Entry
		for range cs {
			es = append(es, &audit.Entry{Kind: audit.AdminRestore, Actor: "test", Reason: "one entry per listing"})
		}
		require.NoError(tb, db.AppendAudit(ctx, es...))
	}
	require.NoError(tb, db.Close())
}

// liveOffset is the file offset of the in-use (branch or leaf) page
// nearest the middle of the store at path: overwriting free pages damages
// nothing, so a damage test must hit a live one.
func liveOffset(tb testing.TB, path string) int64 {
	tb.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
	require.NoError(tb, err)
	defer db.Close()
	var off int64
	require.NoError(tb, db.View(func(tx *bolt.Tx) error {
		pages := int(tx.Size() / int64(db.Info().PageSize))
		for d := 0; d < pages/2; d++ {
			for _, id := range []int{pages/2 - d, pages/2 + d} {
				if p, err := tx.Page(id); err == nil && p != nil && (p.Type == "leaf" || p.Type == "branch") {
					off = int64(id) * int64(db.Info().PageSize)
					return nil
				}
			}
		}
		return fmt.Errorf("no live page in %s", path)
	}))
	return off
}

func TestOpenRefusesDamagedStore(t *testing.T) {
	key, err := keys.NewDataKey(make([]byte, 32))
	require.NoError(t, err)
	good := filepath.Join(t.TempDir(), "good.db")
	filledStore(t, good, 3000, key)
	orig, err := os.ReadFile(good)
	require.NoError(t, err)
	pageSize := os.Getpagesize()

	for _, tc := range []struct {
		name   string
		damage func(path string, b []byte) []byte
	}{
		{"truncated to half", func(_ string, b []byte) []byte { return b[:len(b)/2] }},
		{"truncated to one page", func(_ string, b []byte) []byte { return b[:pageSize] }},
		{"random 64 KiB in the middle", func(path string, b []byte) []byte {
			off := liveOffset(t, path)
			r := rand.New(rand.NewPCG(1, 2))
			for i := off; i < off+64<<10 && i < int64(len(b)); i++ {
				b[i] = byte(r.UintN(256))
			}
			return b
		}},
		{"zeroed meta pages", func(_ string, b []byte) []byte {
			clear(b[:2*pageSize])
			return b
		}},
		{"not a bbolt file", func(_ string, b []byte) []byte { return []byte(strings.Repeat("not a store\n", 1000)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "node.db")
			require.NoError(t, os.WriteFile(path, orig, 0o600))
			require.NoError(t, os.WriteFile(path, tc.damage(path, append([]byte(nil), orig...)), 0o600))
			for _, opts := range []store.Options{{}, {ReadOnly: true}} {
				var db *store.DB
				require.NotPanics(t, func() { db, err = store.Open(path, opts) })
				if db != nil {
					db.Close()
				}
				require.ErrorIs(t, err, store.ErrCorrupt, "read-only %v", opts.ReadOnly)
				require.Contains(t, err.Error(), path, "the error names the file")
				require.NotContains(t, err.Error(), "\n", "one line")
			}
		})
	}

	t.Run("one zeroed meta page is survivable", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "node.db")
		b := append([]byte(nil), orig...)
		clear(b[:pageSize])
		require.NoError(t, os.WriteFile(path, b, 0o600))
		db, err := store.Open(path, store.Options{ReadOnly: true})
		require.NoError(t, err, "bbolt keeps two meta pages so that one may be lost")
		db.Close()
	})
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	key, err := keys.NewDataKey(make([]byte, 32))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "node.db")
	filledStore(t, path, 2000, key)

	db, err := store.Open(path, store.Options{ReadOnly: true, NoVerify: true})
	require.NoError(t, err)
	r := db.Check(ctx, key)
	require.NoError(t, db.Close())
	require.True(t, r.OK(), "problems: %v", r.Problems)
	require.Equal(t, 2000, r.Counts["listings"])
	require.Equal(t, 2000, r.Counts["log records"])
	require.Equal(t, 2000, r.Counts["audit entries"])
	require.Equal(t, 1, r.Counts["sellers"])

	raw := make([]byte, 32)
	raw[0] = 7
	other, err := keys.NewDataKey(raw)
	require.NoError(t, err)

	for _, tc := range []struct {
		name  string
		edit  func(tx *bolt.Tx) error
		key   *keys.DataKey
		wants string
	}{
		{"a gap in a catalog log", func(tx *bolt.Tx) error {
			k := make([]byte, 8)
			k[7] = 5
			return tx.Bucket([]byte("log")).Bucket([]byte("TH")).Delete(k)
		}, key, "log/TH: record 6 follows 4"},
		{"an altered audit entry", func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("audit"))
			k := make([]byte, 8)
			k[7] = 9
			v := append([]byte(nil), b.Get(k)...)
			v[len(v)/2] ^= 1
			return b.Put(k, v)
		}, key, "audit entry"},
		{"a listing that does not decode", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("listings")).Put([]byte("lst_00000007"), []byte("{not json"))
		}, key, `listings/"lst_00000007" does not decode`},
		{"sealed fields under another key", func(tx *bolt.Tx) error { return nil }, other, "seller sel_1: its sealed personal fields do not open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "node.db")
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(p, b, 0o600))
			bdb, err := bolt.Open(p, 0o600, nil)
			require.NoError(t, err)
			require.NoError(t, bdb.Update(tc.edit))
			require.NoError(t, bdb.Close())
			db, err := store.Open(p, store.Options{ReadOnly: true, NoVerify: true})
			require.NoError(t, err)
			defer db.Close()
			r := db.Check(ctx, tc.key)
			require.False(t, r.OK())
			require.Contains(t, strings.Join(r.Problems, "\n"), tc.wants)
		})
	}

	t.Run("random bytes over live pages", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "node.db")
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		off := liveOffset(t, p)
		rnd := rand.New(rand.NewPCG(3, 4))
		for i := off; i < off+64<<10 && i < int64(len(b)); i++ {
			b[i] = byte(rnd.UintN(256))
		}
		require.NoError(t, os.WriteFile(p, b, 0o600))
		db, err := store.Open(p, store.Options{ReadOnly: true, NoVerify: true})
		require.NoError(t, err)
		defer db.Close()
		var r *store.CheckReport
		require.NotPanics(t, func() { r = db.Check(ctx, key) })
		require.False(t, r.OK())
	})
}

func TestVerifyDataKey(t *testing.T) {
	key, err := keys.NewDataKey(make([]byte, 32))
	require.NoError(t, err)
	raw := make([]byte, 32)
	raw[31] = 1
	other, err := keys.NewDataKey(raw)
	require.NoError(t, err)

	for _, tc := range []struct {
		name string
		// setup prepares the store at path; it is then opened and
		// checked with other.
		setup func(t *testing.T, path string)
		want  error
	}{
		{"a recorded fingerprint of another key", func(t *testing.T, path string) { filledStore(t, path, 10, key) }, store.ErrWrongDataKey},
		{"an old store without fingerprint, sealed under another key", func(t *testing.T, path string) {
			filledStore(t, path, 10, key)
			bdb, err := bolt.Open(path, 0o600, nil)
			require.NoError(t, err)
			require.NoError(t, bdb.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Delete([]byte("data_key_fingerprint")) }))
			require.NoError(t, bdb.Close())
		}, store.ErrWrongDataKey},
		{"an old store without fingerprint and nothing sealed", func(t *testing.T, path string) { filledStore(t, path, 10, nil) }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "node.db")
			tc.setup(t, path)
			db, err := store.Open(path, store.Options{})
			require.NoError(t, err)
			defer db.Close()
			err = db.VerifyDataKey(other.Fingerprint(), other)
			if tc.want == nil {
				require.NoError(t, err)
				fp, err := db.DataKeyFingerprint()
				require.NoError(t, err)
				require.Equal(t, other.Fingerprint(), fp, "the first key seen is recorded")
				require.ErrorIs(t, db.VerifyDataKey(key.Fingerprint(), key), store.ErrWrongDataKey, "and then no other")
				return
			}
			require.ErrorIs(t, err, tc.want)
			fp, err := db.DataKeyFingerprint()
			require.NoError(t, err)
			require.NotEqual(t, other.Fingerprint(), fp, "a refused key is not recorded")
			require.NoError(t, db.VerifyDataKey(key.Fingerprint(), key), "the right key passes")
		})
	}
}

// BenchmarkOpenVerify100k measures what the open-time read of the whole
// file and the full Check cost on a store of 100,000 listings with their
// log records and audit entries.
func BenchmarkOpenVerify100k(b *testing.B) {
	key, err := keys.NewDataKey(make([]byte, 32))
	require.NoError(b, err)
	path := filepath.Join(b.TempDir(), "node.db")
	filledStore(b, path, 100_000, key)
	fi, err := os.Stat(path)
	require.NoError(b, err)
	b.Logf("store: %d MB", fi.Size()>>20)
	b.Run("open", func(b *testing.B) {
		for b.Loop() {
			db, err := store.Open(path, store.Options{ReadOnly: true})
			require.NoError(b, err)
			b.ReportMetric(float64(db.VerifyTook().Microseconds())/1000, "verify-ms")
			db.Close()
		}
	})
	b.Run("check", func(b *testing.B) {
		db, err := store.Open(path, store.Options{ReadOnly: true, NoVerify: true})
		require.NoError(b, err)
		defer db.Close()
		for b.Loop() {
			require.True(b, db.Check(context.Background(), key).OK())
		}
	})
}
