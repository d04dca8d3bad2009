package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/store"
)

// forEachBackend runs fn on each store backend: a bbolt file, and a
// PostgreSQL database when IMTGT_TEST_POSTGRES names a server (skipped
// otherwise). open returns a fresh store.
func forEachBackend(t *testing.T, fn func(t *testing.T, open func(t *testing.T) *store.DB)) {
	t.Run("bbolt", func(t *testing.T) { fn(t, func(t *testing.T) *store.DB { return mustOpen(t) }) })
	t.Run("postgres", func(t *testing.T) { fn(t, openPG) })
}

// openPG opens a store on a fresh PostgreSQL database.
func openPG(t *testing.T) *store.DB {
	t.Helper()
	return openURL(t, store.PGURLForTest(t))
}

// openURL opens (another handle on) the PostgreSQL store at url: two
// handles on one URL are two replicas.
func openURL(t testing.TB, url string) *store.DB {
	t.Helper()
	db, err := store.OpenURL(context.Background(), url, store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func init() { copyTargets["postgres"] = openPG }
