package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAcquireLeaseHeldTakesNoLock: while another replica holds the lease
// unexpired, AcquireLease answers not-ok without the write lock (here
// held by a long write), so followers' attempts do not queue behind the
// node's writes; a takeover of an expired lease still waits for the
// lock, so it is ordered after the old leader's writes.
func TestAcquireLeaseHeldTakesNoLock(t *testing.T) {
	ctx := context.Background()
	db, err := OpenURL(ctx, pgURL(t), Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	_, ok, err := db.AcquireLease(ctx, "federation", "A", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)

	// A write transaction of another replica holds the write lock.
	writer, err := db.pool.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = writer.Rollback(context.Background()) })
	_, err = writer.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", pgWriteLock)
	require.NoError(t, err)

	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, ok, err = db.AcquireLease(short, "federation", "B", time.Minute)
	require.NoError(t, err, "B's attempt waited for the write lock")
	require.False(t, ok, "held by A")

	// A's lease expires: B's takeover waits for the writer to finish.
	_, err = db.pool.Exec(ctx, "UPDATE leases SET expires = clock_timestamp() - interval '1 second' WHERE name = 'federation'")
	require.NoError(t, err)
	type result struct {
		epoch uint64
		ok    bool
		err   error
	}
	done := make(chan result, 1)
	go func() {
		e, ok, err := db.AcquireLease(ctx, "federation", "B", time.Minute)
		done <- result{e, ok, err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		require.NoError(t, db.pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&waiting))
		if waiting > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the takeover never waited for the write lock")
		time.Sleep(10 * time.Millisecond) // polling pg_locks
	}
	select {
	case r := <-done:
		t.Fatalf("took over while a write held the lock: %+v", r)
	default:
	}
	require.NoError(t, writer.Rollback(ctx))
	r := <-done
	require.NoError(t, r.err)
	require.True(t, r.ok)
	require.Equal(t, uint64(2), r.epoch)
}
