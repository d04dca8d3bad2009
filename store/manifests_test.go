package store_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/internal/audittest"
	"github.com/imtgt/imtgt-node/store"
)

// TestManifestVersions: every installed manifest is kept under its version
// with the time of its audit entry, in the install's transaction; a store
// written before the history (only federation/manifest) reports its one
// manifest; a manifest that does not parse is refused and nothing of the
// install is written.
func TestManifestVersions(t *testing.T) { forEachBackend(t, testManifestVersions) }

func testManifestVersions(t *testing.T, open func(t *testing.T) *store.DB) {
	f := audittest.Federation(t)
	v1 := f.SignedManifest(1, 2, audittest.Countries, audittest.Countries...)
	v2 := f.SignedManifest(2, 2, []string{"MY", "TH"}, "MY", "TH")

	t.Run("history", func(t *testing.T) {
		db := open(t)
		vs, err := db.ManifestVersions()
		require.NoError(t, err)
		require.Empty(t, vs, "no manifest installed")
		for _, raw := range []string{v1, v2} {
			e := &audit.Entry{Kind: audit.AdminManifest, PayloadHash: audit.HashHex([]byte(raw))}
			require.NoError(t, db.SaveManifest([]byte(raw), e))
		}
		vs, err = db.ManifestVersions()
		require.NoError(t, err)
		require.Len(t, vs, 2)
		var entries []audit.Entry
		require.NoError(t, db.AuditScan(t.Context(), 1, func(e *audit.Entry) error { entries = append(entries, *e); return nil }))
		require.Len(t, entries, 2)
		for i, raw := range []string{v1, v2} {
			require.Equal(t, uint64(i+1), vs[i].Version)
			require.Equal(t, raw, string(vs[i].Raw))
			require.True(t, vs[i].InstalledAt.Equal(entries[i].Time), "installed at its audit entry's time")
		}
		cur, err := db.Manifest()
		require.NoError(t, err)
		require.Equal(t, v2, string(cur))

		require.Error(t, db.SaveManifest([]byte("not: a manifest"), &audit.Entry{Kind: audit.AdminManifest}))
		cur, err = db.Manifest()
		require.NoError(t, err)
		require.Equal(t, v2, string(cur), "a refused install changes nothing")
		seq, _, err := db.AuditHead(t.Context())
		require.NoError(t, err)
		require.Equal(t, uint64(2), seq, "and writes no audit entry")
	})

	t.Run("a store from before the history", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "node.db")
		db, err := store.Open(path, store.Options{})
		require.NoError(t, err)
		require.NoError(t, db.Close())
		bdb, err := bolt.Open(path, 0o600, nil)
		require.NoError(t, err)
		require.NoError(t, bdb.Update(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("federation")).Put([]byte("manifest"), []byte(v1))
		}))
		require.NoError(t, bdb.Close())
		db, err = store.Open(path, store.Options{})
		require.NoError(t, err)
		defer db.Close()
		vs, err := db.ManifestVersions()
		require.NoError(t, err)
		require.Equal(t, []store.ManifestVersion{{Version: 1, Raw: []byte(v1)}}, vs)

		before := time.Now()
		require.NoError(t, db.SaveManifest([]byte(v2)))
		vs, err = db.ManifestVersions()
		require.NoError(t, err)
		require.Len(t, vs, 2, "the old manifest is still reported beside the new one")
		require.Equal(t, uint64(1), vs[0].Version)
		require.True(t, vs[0].InstalledAt.IsZero())
		require.Equal(t, uint64(2), vs[1].Version)
		require.False(t, vs[1].InstalledAt.Before(before.Truncate(time.Second)))
	})
}
