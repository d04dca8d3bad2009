package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/access"
)

// TestPGCallersContext: a store method's statements run under its ctx, so
// a request that goes away (or a caller's own short deadline) cancels
// them rather than wait out the 30 s statement bound: a read blocked
// behind a table lock, a write waiting for the write lock.
func TestPGCallersContext(t *testing.T) {
	ctx := context.Background()
	db, err := OpenURL(ctx, pgURL(t), Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	p := access.Principal{Role: access.Operator}
	require.NoError(t, db.PutToken(ctx, "h1", p))

	blocker, err := db.pool.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = blocker.Rollback(context.Background()) })
	_, err = blocker.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", pgWriteLock)
	require.NoError(t, err)
	_, err = blocker.Exec(ctx, "LOCK TABLE kv IN ACCESS EXCLUSIVE MODE")
	require.NoError(t, err)

	for _, c := range []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"read", func(ctx context.Context) error { _, err := db.Principal(ctx, "h1"); return err }},
		{"write", func(ctx context.Context) error { return db.PutToken(ctx, "h2", p) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := c.call(short)
			require.Error(t, err)
			require.Less(t, time.Since(start), 5*time.Second, "waited past the caller's deadline: %v", err)
		})
	}

	require.NoError(t, blocker.Rollback(ctx))
	got, err := db.Principal(ctx, "h1")
	require.NoError(t, err)
	require.Equal(t, p, got)
	_, err = db.Principal(ctx, "h2")
	require.ErrorIs(t, err, access.ErrUnknownToken, "the cancelled write stored nothing")
}
