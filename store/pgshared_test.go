package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/access"
	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/internal/pgtest"
	"github.com/imtgt/imtgt-node/keys"
	"github.com/imtgt/imtgt-node/sellers"
	"github.com/imtgt/imtgt-node/store"
)

// twoReplicas opens two handles on one fresh PostgreSQL store, as two
// replicas of a node would.
func twoReplicas(t *testing.T) (a, b *store.DB) {
	url := store.PGURLForTest(t)
	return openURL(t, url), openURL(t, url)
}

// TestReplicasSeeEachOthersWrites: what one replica commits the other
// reads at once.
func TestReplicasSeeEachOthersWrites(t *testing.T) {
	ctx := context.Background()
	a, b := twoReplicas(t)
	require.True(t, a.Shared())
	p := access.Principal{Role: access.Seller, Subject: "sel_1"}
	require.NoError(t, a.CreateSeller(ctx, &sellers.Record{ID: "sel_1", BusinessID: "B1", Status: sellers.StatusPending}, "h1", p))
	got, err := b.Seller(ctx, "sel_1")
	require.NoError(t, err)
	require.Equal(t, "B1", got.BusinessID)
	_, err = b.UpdateSeller(ctx, "sel_1", func(r *sellers.Record) error { r.Status = sellers.StatusActive; return nil })
	require.NoError(t, err)
	got, err = a.Seller(ctx, "sel_1")
	require.NoError(t, err)
	require.Equal(t, sellers.StatusActive, got.Status)
	// The unique business ID holds across replicas.
	require.ErrorIs(t, b.CreateSeller(ctx, &sellers.Record{ID: "sel_2", BusinessID: "B1"}, "h2", p), sellers.ErrDuplicate)
}

// TestReplicasConcurrentWritesLoseNothing: two replicas doing
// read-modify-writes at once (2×200 seller updates, 2×200 audit appends)
// lose none: the counter ends at 400 and the audit chain is one unbroken
// chain of 400 unique seqs that verifies.
func TestReplicasConcurrentWritesLoseNothing(t *testing.T) {
	ctx := context.Background()
	a, b := twoReplicas(t)
	require.NoError(t, a.CreateSeller(ctx, &sellers.Record{ID: "sel_1", BusinessID: "B1", LegalName: "0"}, "h1",
		access.Principal{Role: access.Seller, Subject: "sel_1"}))
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for r, db := range []*store.DB{a, b} {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range n {
				_, err := db.UpdateSeller(ctx, "sel_1", func(rec *sellers.Record) error {
					c, err := strconv.Atoi(rec.LegalName)
					rec.LegalName = strconv.Itoa(c + 1)
					return err
				})
				errs <- err
			}
		}()
		go func() {
			defer wg.Done()
			for i := range n {
				errs <- db.AppendAudit(ctx, &audit.Entry{Kind: audit.AdminManifest, Reason: "replica " + strconv.Itoa(r) + " #" + strconv.Itoa(i)})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got, err := b.Seller(ctx, "sel_1")
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(2*n), got.LegalName)

	var seqs []uint64
	prev := ""
	require.NoError(t, a.AuditScan(ctx, 1, func(e *audit.Entry) error {
		seqs = append(seqs, e.Seq)
		require.Equal(t, prev, e.Prev, "entry %d links to the one before", e.Seq)
		prev = e.Hash
		return nil
	}))
	require.Len(t, seqs, 2*n)
	for i, s := range seqs {
		require.Equal(t, uint64(i+1), s)
	}
	head, hash, err := b.AuditHead(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(2*n), head)
	require.Equal(t, prev, hash)
	require.NoError(t, a.SetNodeMeta(store.NodeMeta{Country: "TH", NodePublicKey: "00", CreatedAt: time.Now()}))
	r := a.Check(ctx, nil)
	require.True(t, r.OK(), "%v", r.Problems)
}

// TestChangeFeed: a write transaction's changes are rows in commit order
// under their bucket's name; Listen delivers the seq of each commit, and a
// listener that was away catches up from the head its first call gives.
func TestChangeFeed(t *testing.T) {
	ctx := context.Background()
	a, b := twoReplicas(t)
	head0, err := b.ChangesHead(ctx)
	require.NoError(t, err)

	listen := func(ctx context.Context) (<-chan uint64, <-chan error) {
		seqs, done := make(chan uint64, 100), make(chan error, 1)
		go func() { done <- b.Listen(ctx, func(seq uint64) { seqs <- seq }) }()
		return seqs, done
	}
	lctx, stop := context.WithCancel(ctx)
	seqs, done := listen(lctx)
	first := <-seqs // listening now
	require.Equal(t, head0, first)

	require.NoError(t, a.ApplyLocal(ctx, "TH", []catalog.Change{{Listing: &catalog.Listing{ID: "lst_1", Origin: "TH"}}, {Listing: &catalog.Listing{ID: "lst_2", Origin: "TH"}}}, nil))
	require.NoError(t, a.SavePolicy([]byte("policy v1"), 1))
	notice1, notice2 := <-seqs, <-seqs
	require.Less(t, notice1, notice2)

	cs, err := b.Changes(ctx, head0, 0)
	require.NoError(t, err)
	var got []string
	for _, c := range cs {
		got = append(got, c.Bucket+" "+string(c.Key))
	}
	require.Equal(t, []string{"listings lst_1", "listings lst_2", "policy versions", "policy current"}, got)
	require.Equal(t, notice1, cs[1].Seq, "the notice carries the transaction's highest seq")
	require.Equal(t, notice2, cs[3].Seq)
	for i := 1; i < len(cs); i++ {
		require.Less(t, cs[i-1].Seq, cs[i].Seq)
	}
	stop()
	require.NoError(t, <-done, "a listener stopped by its context returns nil")

	// Writes while nobody listens: the next Listen's first call brings
	// the head past them, and Changes returns them.
	require.NoError(t, a.ApplyLocal(ctx, "TH", []catalog.Change{{DeleteID: "lst_1"}}, nil))
	lctx, stop = context.WithCancel(ctx)
	defer stop()
	seqs, _ = listen(lctx)
	caughtUp := <-seqs
	missed, err := b.Changes(ctx, notice2, 0)
	require.NoError(t, err)
	require.Len(t, missed, 1)
	require.Equal(t, "lst_1", string(missed[0].Key))
	require.Equal(t, missed[0].Seq, caughtUp)

	// Writes outside the feed's buckets add no rows.
	require.NoError(t, a.PutToken(ctx, "hash", access.Principal{Role: access.Operator, Subject: "op"}))
	h, err := b.ChangesHead(ctx)
	require.NoError(t, err)
	require.Equal(t, caughtUp, h)

	// Pruning keeps the newest row, so the head stays.
	all, err := b.Changes(ctx, 0, 0)
	require.NoError(t, err)
	floor, err := b.ChangesFloor(ctx)
	require.NoError(t, err)
	require.Equal(t, all[0].Seq, floor)
	n, err := b.PruneChanges(ctx, time.Now().Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, len(all)-1, n)
	floor, err = b.ChangesFloor(ctx)
	require.NoError(t, err)
	require.Equal(t, caughtUp, floor)
	h, err = b.ChangesHead(ctx)
	require.NoError(t, err)
	require.Equal(t, caughtUp, h)
}

// TestLease: one holder at a time; renewal; expiry on the database clock
// lets another take over with a higher epoch; the old holder's renewals
// and fenced writes are refused afterwards and its fenced write leaves
// nothing; the new holder's fenced writes go through.
func TestLease(t *testing.T) {
	ctx := context.Background()
	a, b := twoReplicas(t)
	e1, ok, err := a.AcquireLease(ctx, "federation", "A", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, uint64(1), e1)
	_, ok, err = b.AcquireLease(ctx, "federation", "B", time.Minute)
	require.NoError(t, err)
	require.False(t, ok, "held by A")
	ok, err = a.RenewLease(ctx, "federation", "A", e1, time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	holder, epoch, expires, err := b.Lease(ctx, "federation")
	require.NoError(t, err)
	require.Equal(t, "A", holder)
	require.Equal(t, e1, epoch)
	require.True(t, expires.After(time.Now().Add(30*time.Second)))

	fa := a.Fenced("federation", "A", e1)
	require.NoError(t, fa.SavePolicy([]byte("by A"), 1))

	// A lets its lease run short and stops renewing: B takes over once it
	// expires.
	ok, err = a.RenewLease(ctx, "federation", "A", e1, 50*time.Millisecond)
	require.NoError(t, err)
	require.True(t, ok)
	var e2 uint64
	deadline := time.Now().Add(10 * time.Second)
	for {
		e2, ok, err = b.AcquireLease(ctx, "federation", "B", time.Minute)
		require.NoError(t, err)
		if ok {
			break
		}
		require.True(t, time.Now().Before(deadline), "B never took the expired lease")
		time.Sleep(20 * time.Millisecond) // polling the database clock's expiry
	}
	require.Equal(t, e1+1, e2)

	ok, err = a.RenewLease(ctx, "federation", "A", e1, time.Minute)
	require.NoError(t, err)
	require.False(t, ok, "A lost the lease")
	err = fa.SavePolicy([]byte("late write by A"), 2)
	require.ErrorIs(t, err, store.ErrFenced)
	require.ErrorIs(t, fa.AppendAudit(ctx, &audit.Entry{Kind: audit.AdminManifest}), store.ErrFenced)
	raw, err := b.Policy()
	require.NoError(t, err)
	require.Equal(t, "by A", string(raw), "a fenced write leaves nothing")
	vs, err := b.PolicyVersions()
	require.NoError(t, err)
	require.Len(t, vs, 1)

	fb := b.Fenced("federation", "B", e2)
	require.NoError(t, fb.SavePolicy([]byte("by B"), 2))
	// Fenced views read as their store does, and unfenced writes (the
	// API's) go on whoever leads.
	raw, err = fa.Policy()
	require.NoError(t, err)
	require.Equal(t, "by B", string(raw))
	require.NoError(t, a.SavePolicy([]byte("by the API on A"), 3))
	require.NoError(t, fa.Close(), "closing a view closes nothing")
	_, err = a.Policy()
	require.NoError(t, err)

	require.NoError(t, b.ReleaseLease(ctx, "federation", "B", e2))
	holder, _, _, err = a.Lease(ctx, "federation")
	require.NoError(t, err)
	require.Empty(t, holder)
	require.ErrorIs(t, fb.SavePolicy([]byte("after release"), 4), store.ErrFenced)
	e3, ok, err := a.AcquireLease(ctx, "federation", "A", time.Minute)
	require.NoError(t, err)
	require.True(t, ok, "a released lease is free at once")
	require.Equal(t, e2+1, e3)
}

// TestOpenURLTogether: replicas starting together on a new database
// migrate it once and both open.
func TestOpenURLTogether(t *testing.T) {
	url := store.PGURLForTest(t)
	var wg sync.WaitGroup
	dbs := make([]*store.DB, 3)
	errs := make([]error, 3)
	for i := range dbs {
		wg.Go(func() { dbs[i], errs[i] = store.OpenURL(context.Background(), url, store.Options{}) })
	}
	wg.Wait()
	for i, db := range dbs {
		require.NoError(t, errs[i])
		defer db.Close()
		v, err := db.SchemaVersion()
		require.NoError(t, err)
		require.Equal(t, store.SchemaVersion, v)
	}
}

// TestNotSharedOnBbolt: on bbolt the feed and the lease are refused, Ping
// passes and Fenced is the store itself.
func TestNotSharedOnBbolt(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	require.False(t, db.Shared())
	require.NoError(t, db.Ping(ctx))
	require.Same(t, db, db.Fenced("federation", "A", 1))
	_, err := db.ChangesHead(ctx)
	require.ErrorIs(t, err, store.ErrNotShared)
	_, err = db.Changes(ctx, 0, 10)
	require.ErrorIs(t, err, store.ErrNotShared)
	_, _, err = db.AcquireLease(ctx, "federation", "A", time.Second)
	require.ErrorIs(t, err, store.ErrNotShared)
	require.ErrorIs(t, db.Listen(ctx, func(uint64) {}), store.ErrNotShared)
}

// TestOpenURLUnreachable: a database server that is not there is
// ErrUnavailable at open, and Ping says so too.
func TestOpenURLUnreachable(t *testing.T) {
	_, err := store.OpenURL(context.Background(), "postgres://imtgt@127.0.0.1:1/x?sslmode=disable&connect_timeout=5", store.Options{})
	require.ErrorIs(t, err, store.ErrUnavailable)
	require.True(t, store.IsURL("postgres://h/db") && store.IsURL("postgresql://h/db"))
	require.False(t, store.IsURL("/var/lib/imtgt/node.db"))
	_, err = store.OpenURL(context.Background(), "postgres://[::1", store.Options{})
	require.Error(t, err)
	require.False(t, errors.Is(err, store.ErrUnavailable), "a bad URL is not an outage")
}

// TestServerGone: with the database server stopped, reads, writes, Ping
// and Listen fail with ErrUnavailable (not a hang: each is bounded), the
// failed write is not half-done, and once the server is back the store
// works again without reopening.
func TestServerGone(t *testing.T) {
	ctx := context.Background()
	c := pgtest.StartCluster(t)
	db := openURL(t, c.CreateDB(t))
	p := access.Principal{Role: access.Seller, Subject: "sel_1"}
	require.NoError(t, db.CreateSeller(ctx, &sellers.Record{ID: "sel_1", BusinessID: "B1"}, "h1", p))
	listening := make(chan struct{})
	listenErr := make(chan error, 1)
	go func() {
		listenErr <- db.Listen(ctx, func(uint64) {
			select {
			case <-listening:
			default:
				close(listening)
			}
		})
	}()
	<-listening

	c.Stop(t)
	require.ErrorIs(t, <-listenErr, store.ErrUnavailable)
	require.ErrorIs(t, db.Ping(ctx), store.ErrUnavailable)
	_, err := db.Seller(ctx, "sel_1")
	require.ErrorIs(t, err, store.ErrUnavailable)
	err = db.CreateSeller(ctx, &sellers.Record{ID: "sel_2", BusinessID: "B2"}, "h2", p)
	require.ErrorIs(t, err, store.ErrUnavailable)
	_, _, err = db.AcquireLease(ctx, "federation", "A", time.Minute)
	require.ErrorIs(t, err, store.ErrUnavailable)

	c.Start(t)
	require.NoError(t, db.Ping(ctx))
	got, err := db.Seller(ctx, "sel_1")
	require.NoError(t, err)
	require.Equal(t, "B1", got.BusinessID)
	_, err = db.Seller(ctx, "sel_2")
	require.ErrorIs(t, err, sellers.ErrNotFound, "the write refused while the server was down left nothing")
	require.NoError(t, db.CreateSeller(ctx, &sellers.Record{ID: "sel_2", BusinessID: "B2"}, "h2", p))
}

// TestCheckOnPostgres: a bbolt store copied into PostgreSQL passes the
// node's invariants there (Check without bbolt's page check) with the
// same counts, and a break of the audit chain is found.
func TestCheckOnPostgres(t *testing.T) {
	ctx := context.Background()
	key, err := keys.NewDataKey(make([]byte, 32))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "node.db")
	filledStore(t, path, 500, key)
	src, err := store.Open(path, store.Options{ReadOnly: true})
	require.NoError(t, err)
	defer src.Close()
	want := src.Check(ctx, key)
	require.True(t, want.OK(), "%v", want.Problems)

	url := store.PGURLForTest(t)
	dst := openURL(t, url)
	_, err = store.Copy(ctx, dst, src)
	require.NoError(t, err)
	got := dst.Check(ctx, key)
	require.True(t, got.OK(), "%v", got.Problems)
	require.Equal(t, want.Counts, got.Counts)
	require.Zero(t, dst.Size())

	// Overwrite one audit entry behind the store's back.
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	tag, err := conn.Exec(ctx, `UPDATE kv SET value = 'x' || value WHERE bucket = 'audit' AND key = '\x0000000000000007'::bytea`)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected())
	require.False(t, dst.Check(ctx, key).OK())
}

// Pruning removes a prefix of the feed only: rows are not in time order
// (at is a transaction's start, seqs are taken at commit), and a hole in
// the middle would never be seen by a reader checking the floor.
func TestPruneChangesCutsOnlyAPrefix(t *testing.T) {
	ctx := context.Background()
	u := store.PGURLForTest(t)
	db := openURL(t, u)
	for i := range 4 {
		require.NoError(t, db.ApplyLocal(ctx, "TH", []catalog.Change{{Listing: &catalog.Listing{ID: fmt.Sprintf("lst_%d", i), Origin: "TH", Version: 1}}}, nil))
	}
	all, err := db.Changes(ctx, 0, 0)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(all), 4)
	conn, err := pgx.Connect(ctx, u)
	require.NoError(t, err)
	defer conn.Close(ctx)
	// Every row is recent except one in the middle.
	mid := all[len(all)-2].Seq
	_, err = conn.Exec(ctx, "UPDATE changes SET at = now() - interval '1 hour' WHERE seq = $1", int64(mid))
	require.NoError(t, err)
	n, err := db.PruneChanges(ctx, time.Now().Add(-time.Minute))
	require.NoError(t, err)
	require.Zero(t, n, "a row in the middle is not cut out")
	// The older rows, up to that one, all old: a prefix goes.
	_, err = conn.Exec(ctx, "UPDATE changes SET at = now() - interval '1 hour' WHERE seq <= $1", int64(mid))
	require.NoError(t, err)
	n, err = db.PruneChanges(ctx, time.Now().Add(-time.Minute))
	require.NoError(t, err)
	require.Equal(t, len(all)-1, n)
	floor, err := db.ChangesFloor(ctx)
	require.NoError(t, err)
	require.Equal(t, all[len(all)-1].Seq, floor)
}
