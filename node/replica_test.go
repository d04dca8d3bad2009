package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/store"
)

func TestLeaseClock(t *testing.T) {
	t0 := time.Now()
	c := leaseClock{ttl: 4 * time.Second, margin: time.Second}
	c.renewed(t0)
	for _, tt := range []struct {
		after   time.Duration
		expired bool
	}{
		{0, false},
		{2 * time.Second, false},
		{3*time.Second - time.Nanosecond, false},
		{3 * time.Second, true}, // TTL − margin after the renewal's start
		{4 * time.Second, true},
	} {
		require.Equal(t, tt.expired, c.expired(t0.Add(tt.after)), "%s after the renewal", tt.after)
	}
	// A renewal that started later moves the deadline from its own start,
	// not from when it returned.
	c.renewed(t0.Add(2500 * time.Millisecond))
	require.False(t, c.expired(t0.Add(5*time.Second)))
	require.True(t, c.expired(t0.Add(5500*time.Millisecond)))
}

// fakeShared is a lease and an empty change feed kept in memory, with
// the database's view of the lease's expiry, and a switch that makes
// every call fail as an unreachable database would.
type fakeShared struct {
	db       *store.DB
	mu       sync.Mutex
	down     bool
	holder   string
	epoch    uint64
	expires  time.Time
	released int
}

var errDown = errors.New("database down")

func (f *fakeShared) setDown(d bool) { f.mu.Lock(); f.down = d; f.mu.Unlock() }

func (f *fakeShared) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (uint64, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return 0, false, errDown
	}
	now := time.Now()
	if f.holder != "" && f.holder != holder && now.Before(f.expires) {
		return 0, false, nil
	}
	f.holder, f.expires = holder, now.Add(ttl)
	f.epoch++
	return f.epoch, true, nil
}

func (f *fakeShared) RenewLease(ctx context.Context, name, holder string, epoch uint64, ttl time.Duration) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return false, errDown
	}
	now := time.Now()
	if f.holder != holder || f.epoch != epoch || !now.Before(f.expires) {
		return false, nil
	}
	f.expires = now.Add(ttl)
	return true, nil
}

func (f *fakeShared) ReleaseLease(ctx context.Context, name, holder string, epoch uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.holder == holder && f.epoch == epoch {
		f.holder, f.expires = "", time.Time{}
		f.released++
	}
	return nil
}

func (f *fakeShared) lease() (string, time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.holder, f.expires
}

func (f *fakeShared) ChangesHead(context.Context) (uint64, error)                   { return 0, nil }
func (f *fakeShared) Changes(context.Context, uint64, int) ([]store.Changed, error) { return nil, nil }
func (f *fakeShared) ChangesFloor(context.Context) (uint64, error)                  { return 0, nil }
func (f *fakeShared) PruneChanges(context.Context, time.Time) (int, error)          { return 0, nil }
func (f *fakeShared) Fenced(name, holder string, epoch uint64) *store.DB            { return f.db }
func (f *fakeShared) Listen(ctx context.Context, fn func(uint64)) error             { <-ctx.Done(); return nil }
func (f *fakeShared) Ping(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errDown
	}
	return nil
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestLeaderLoopStopsBeforeTheLeaseExpires drives the leader loop
// against a lease whose database goes away: the term (the libp2p host
// among it) must be over before the database would let another replica
// take the lease, and the replica leads again once the database is back.
func TestLeaderLoopStopsBeforeTheLeaseExpires(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "th")
	_, err := Init(InitOptions{Dir: dir, Country: "TH", HTTPAddr: "127.0.0.1:0"})
	require.NoError(t, err)
	logs := &syncBuf{}
	ctx := context.Background()
	n, err := Open(ctx, dir, Options{Logger: slog.New(slog.NewTextHandler(io.MultiWriter(logs), nil))})
	require.NoError(t, err)
	fake := &fakeShared{db: n.Store}
	n.shared = fake // what sharedOf returns for a PostgreSQL store
	require.NoError(t, n.Start(ctx))
	defer n.Close(ctx)

	waitFor := func(what string, within time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !ok() {
			require.True(t, time.Now().Before(deadline), "waited %s for: %s", within, what)
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("the leader role", 2*time.Second, func() bool { return n.Role() == "leader" })
	require.Contains(t, logs.String(), "federation leader")
	require.Contains(t, logs.String(), "epoch=1")
	holder, _ := fake.lease()
	require.Equal(t, n.holder, holder)

	// Renewals keep the lease while the database answers.
	time.Sleep(LeaseTTL + time.Second) // longer than a lease: only renewals can keep it
	require.Equal(t, "leader", n.Role())

	fake.setDown(true)
	_, expires := fake.lease()
	waitFor("the follower role", LeaseTTL, func() bool { return n.Role() == "follower" })
	stopped := time.Now()
	require.True(t, stopped.Before(expires), "the term ended at %s, after the lease expired in the database at %s", stopped, expires)
	require.Contains(t, logs.String(), "federation follower")
	dbCheck := func() error {
		for _, c := range n.ready(ctx) {
			if c.Name == "database" {
				return c.Err
			}
		}
		t.Fatal("no database check")
		return nil
	}
	require.Error(t, dbCheck(), "the database check fails")

	fake.setDown(false)
	waitFor("the leader role again", 2*LeaseTTL, func() bool { return n.Role() == "leader" })
	require.Contains(t, logs.String(), "epoch=2")

	require.NoError(t, n.Close(ctx))
	require.Equal(t, 1, fake.released, "Close releases the lease for another replica to take at once")
	require.Equal(t, "follower", n.Role())
}
