package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/imtgt/imtgt-node/catalog"
)

// testBoltKV is a bbolt backend on a fresh file.
func testBoltKV(t *testing.T) backend {
	bdb, err := bolt.Open(filepath.Join(t.TempDir(), "kv.db"), 0o600, nil)
	require.NoError(t, err)
	t.Cleanup(func() { bdb.Close() })
	return boltKV{bdb}
}

// testPGKV is a PostgreSQL backend on a fresh, migrated database.
func testPGKV(t *testing.T) *pgKV {
	pool, err := pgxpool.New(context.Background(), pgURL(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, pgMigrate(context.Background(), pool))
	return newPGKV(pool)
}

// transcript records what a backend answered, to compare two backends.
type transcript []string

func (tr *transcript) add(format string, args ...any) {
	for i, a := range args {
		if b, ok := a.([]byte); ok {
			if b == nil {
				args[i] = "<nil>"
			} else {
				args[i] = fmt.Sprintf("%q", b)
			}
		}
	}
	*tr = append(*tr, fmt.Sprintf(format, args...))
}

// walkCursor records a cursor's moves.
func (tr *transcript) cursor(name string, c kvCursor, moves ...string) {
	for _, m := range moves {
		var k, v []byte
		switch {
		case m == "first":
			k, v = c.First()
		case m == "last":
			k, v = c.Last()
		case m == "next":
			k, v = c.Next()
		case m == "prev":
			k, v = c.Prev()
		case strings.HasPrefix(m, "seek:"):
			k, v = c.Seek([]byte(strings.TrimPrefix(m, "seek:")))
		}
		tr.add("%s %s -> %v %v", name, m, k, v)
	}
}

func errName(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

var errTestAbort = errors.New("abort")

// kvCases run the same operations on each backend; the transcripts must
// be the same.
var kvCases = []struct {
	name string
	run  func(t *testing.T, b backend, tr *transcript)
}{
	{"put get delete nested", func(t *testing.T, b backend, tr *transcript) {
		require.NoError(t, b.update(func(tx kvTx) error {
			top, err := tx.CreateBucketIfNotExists([]byte("top"))
			require.NoError(t, err)
			require.NoError(t, top.Put([]byte("a"), []byte("1")))
			require.NoError(t, top.Put([]byte("empty"), []byte{}))
			require.NoError(t, top.Put([]byte("gone"), []byte("x")))
			sub, err := top.CreateBucketIfNotExists([]byte("sub"))
			require.NoError(t, err)
			require.NoError(t, sub.Put([]byte("a"), []byte("nested")))
			deep, err := sub.CreateBucketIfNotExists([]byte("deep"))
			require.NoError(t, err)
			return deep.Put([]byte("z"), []byte("deepest"))
		}))
		require.NoError(t, b.update(func(tx kvTx) error {
			top := tx.Bucket([]byte("top"))
			tr.add("delete gone: %s", errName(top.Delete([]byte("gone"))))
			tr.add("delete missing: %s", errName(top.Delete([]byte("never"))))
			tr.add("put a: %s", errName(top.Put([]byte("a"), []byte("2"))))
			for i, v := range top.GetMany([][]byte{[]byte("a"), []byte("gone"), []byte("empty")}) {
				tr.add("getMany in the writer %d = %v (nil %v)", i, v, v == nil)
			}
			return nil
		}))
		require.NoError(t, b.view(func(tx kvTx) error {
			top := tx.Bucket([]byte("top"))
			for _, k := range []string{"a", "empty", "gone", "sub", "never"} {
				v := top.Get([]byte(k))
				tr.add("get %s = %v (nil %v, len %d)", k, v, v == nil, len(v))
			}
			for i, v := range top.GetMany([][]byte{[]byte("a"), []byte("empty"), []byte("gone"), []byte("sub"), []byte("never"), []byte("a")}) {
				tr.add("getMany %d = %v (nil %v, len %d)", i, v, v == nil, len(v))
			}
			tr.add("bucket on a value: %v", top.Bucket([]byte("a")) == nil)
			tr.add("missing top bucket: %v", tx.Bucket([]byte("nope")) == nil)
			sub := top.Bucket([]byte("sub"))
			tr.add("sub a = %v", sub.Get([]byte("a")))
			tr.add("deep z = %v", sub.Bucket([]byte("deep")).Get([]byte("z")))
			tr.add("keyN top %d sub %d", top.KeyN(), sub.KeyN())
			return tx.ForEachBucket(func(name []byte, b kvBucket) error {
				tr.add("top-level %v keyN %d", name, b.KeyN())
				return nil
			})
		}))
	}},
	{"errors", func(t *testing.T, b backend, tr *transcript) {
		require.NoError(t, b.update(func(tx kvTx) error {
			_, err := tx.CreateBucketIfNotExists(nil)
			tr.add("empty bucket name: %s", errName(err))
			top, err := tx.CreateBucketIfNotExists([]byte("top"))
			require.NoError(t, err)
			tr.add("empty key: %s", errName(top.Put(nil, []byte("v"))))
			require.NoError(t, top.Put([]byte("v"), []byte("1")))
			_, err = top.CreateBucketIfNotExists([]byte("v"))
			tr.add("bucket over a value: %s", errName(err))
			_, err = top.CreateBucketIfNotExists([]byte("sub"))
			require.NoError(t, err)
			tr.add("put over a new bucket: %s", errName(top.Put([]byte("sub"), []byte("x"))))
			tr.add("delete a new bucket: %s", errName(top.Delete([]byte("sub"))))
			again, err := top.CreateBucketIfNotExists([]byte("sub"))
			tr.add("create again: %s %v", errName(err), again != nil)
			return nil
		}))
		require.NoError(t, b.view(func(tx kvTx) error {
			top := tx.Bucket([]byte("top"))
			tr.add("put in a view: %s", errName(top.Put([]byte("k"), []byte("v"))))
			_, err := tx.CreateBucketIfNotExists([]byte("other"))
			tr.add("create in a view: %s", errName(err))
			_, err = top.NextSequence()
			tr.add("sequence in a view: %s", errName(err))
			tr.add("sub still a bucket: %v", top.Bucket([]byte("sub")) != nil)
			return nil
		}))
	}},
	{"cursor across pages", func(t *testing.T, b backend, tr *transcript) {
		// 300 keys: more than a cursor's first page, so moves cross pages
		// both ways; a nested bucket in the middle shows with a nil value.
		require.NoError(t, b.update(func(tx kvTx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("c"))
			require.NoError(t, err)
			for i := range 300 {
				require.NoError(t, bk.Put(fmt.Appendf(nil, "k%04d", i*2), fmt.Appendf(nil, "v%d", i)))
			}
			_, err = bk.CreateBucketIfNotExists([]byte("k0101"))
			return err
		}))
		require.NoError(t, b.view(func(tx kvTx) error {
			bk := tx.Bucket([]byte("c"))
			var fwd, back []string
			c := bk.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				fwd = append(fwd, string(k))
			}
			for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
				back = append(back, string(k))
			}
			tr.add("forward %d: %s … %s", len(fwd), fwd[0], fwd[len(fwd)-1])
			tr.add("forward all: %s", strings.Join(fwd, ","))
			tr.add("backward all: %s", strings.Join(back, ","))
			tr.cursor("c", bk.Cursor(), "seek:k0101", "next", "prev", "prev", "seek:k0300", "prev", "next", "next")
			tr.cursor("c", bk.Cursor(), "seek:k9", "prev", "prev", "seek:", "prev")
			tr.cursor("c", bk.Cursor(), "last", "next", "prev", "first", "prev", "next", "prev", "prev", "next")
			tr.cursor("c", bk.Cursor(), "seek:k0063", "prev", "prev", "next", "seek:k0126", "next", "next")
			// Walk 100 back from a seek, crossing a page boundary.
			c = bk.Cursor()
			k, _ := c.Seek([]byte("k0500"))
			var walk []string
			for i := 0; i < 100 && k != nil; i++ {
				walk = append(walk, string(k))
				k, _ = c.Prev()
			}
			tr.add("back from k0500: %s", strings.Join(walk, ","))
			n := 0
			require.NoError(t, bk.ForEach(func(k, v []byte) error {
				if v == nil {
					tr.add("foreach nested %v", k)
				}
				n++
				return nil
			}))
			tr.add("foreach %d keyN %d", n, bk.KeyN())
			require.NoError(t, bk.ForEachBucket(func(k []byte) error {
				tr.add("foreachbucket %v", k)
				return nil
			}))
			tr.cursor("empty", mustBucket(t, tx, "c", "k0101").Cursor(), "first", "last", "seek:a", "next", "prev")
			return nil
		}))
	}},
	{"foreach many with writes from the callback", func(t *testing.T, b backend, tr *transcript) {
		require.NoError(t, b.update(func(tx kvTx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("many"))
			require.NoError(t, err)
			for i := range 2500 {
				require.NoError(t, bk.Put(fmt.Appendf(nil, "%05d", i), []byte("v")))
			}
			return nil
		}))
		require.NoError(t, b.update(func(tx kvTx) error {
			many, err := tx.CreateBucketIfNotExists([]byte("many"))
			require.NoError(t, err)
			copied, err := tx.CreateBucketIfNotExists([]byte("copied"))
			require.NoError(t, err)
			n := 0
			require.NoError(t, many.ForEach(func(k, v []byte) error {
				n++
				// The callback reads and writes in the same transaction.
				if copied.Get(k) != nil {
					return fmt.Errorf("%s copied twice", k)
				}
				return copied.Put(k, append(v, k...))
			}))
			tr.add("visited %d", n)
			return nil
		}))
		// (KeyN is read after commit: bbolt's counts only committed pages.)
		require.NoError(t, b.view(func(tx kvTx) error {
			tr.add("copied %d", tx.Bucket([]byte("copied")).KeyN())
			tr.add("copied 01234 = %v", tx.Bucket([]byte("copied")).Get([]byte("01234")))
			return nil
		}))
	}},
	{"sequences", func(t *testing.T, b backend, tr *transcript) {
		require.NoError(t, b.update(func(tx kvTx) error {
			x, _ := tx.CreateBucketIfNotExists([]byte("x"))
			y, _ := tx.CreateBucketIfNotExists([]byte("y"))
			sub, _ := x.CreateBucketIfNotExists([]byte("sub"))
			for _, bk := range []kvBucket{x, x, y, x, sub} {
				n, err := bk.NextSequence()
				tr.add("next %d %s", n, errName(err))
			}
			tr.add("x at %d, y at %d", x.Sequence(), y.Sequence())
			require.NoError(t, y.SetSequence(41))
			n, err := y.NextSequence()
			tr.add("after set: %d %s", n, errName(err))
			return nil
		}))
		require.Error(t, b.update(func(tx kvTx) error {
			_, _ = tx.Bucket([]byte("x")).NextSequence()
			return errTestAbort
		}))
		require.NoError(t, b.view(func(tx kvTx) error {
			tr.add("x after rollback %d", tx.Bucket([]byte("x")).Sequence())
			return nil
		}))
	}},
	{"read your writes", func(t *testing.T, b backend, tr *transcript) {
		require.NoError(t, b.update(func(tx kvTx) error {
			r, _ := tx.CreateBucketIfNotExists([]byte("r"))
			require.NoError(t, r.Put([]byte("b"), []byte("1")))
			tr.add("get queued %v", r.Get([]byte("b")))
			require.NoError(t, r.Put([]byte("a"), []byte("0")))
			require.NoError(t, r.Put([]byte("c"), []byte("2")))
			tr.cursor("r", r.Cursor(), "first", "next", "next", "next")
			require.NoError(t, r.Delete([]byte("b")))
			tr.add("get deleted %v", r.Get([]byte("b")))
			tr.cursor("r", r.Cursor(), "last", "prev", "prev")
			sub, _ := r.CreateBucketIfNotExists([]byte("s"))
			require.NoError(t, sub.Put([]byte("k"), []byte("v")))
			tr.add("new bucket seen %v, get %v", r.Bucket([]byte("s")) != nil, r.Bucket([]byte("s")).Get([]byte("k")))
			return nil
		}))
		require.NoError(t, b.view(func(tx kvTx) error {
			r := tx.Bucket([]byte("r"))
			tr.cursor("r committed", r.Cursor(), "first", "next", "next", "next")
			return nil
		}))
	}},
	// From the review of issue 12 (TestKVPutOnCommittedBucket): bbolt
	// refuses a Put or Delete of a key that is a bucket committed before.
	{"put delete on a committed bucket", func(t *testing.T, b backend, tr *transcript) {
		require.NoError(t, b.update(func(tx kvTx) error {
			top, err := tx.CreateBucketIfNotExists([]byte("top"))
			require.NoError(t, err)
			_, err = top.CreateBucketIfNotExists([]byte("nested"))
			return err
		}))
		err := b.update(func(tx kvTx) error {
			top := tx.Bucket([]byte("top"))
			tr.add("put: %s", errName(top.Put([]byte("nested"), []byte("v"))))
			tr.add("get: %v", top.Get([]byte("nested")))
			tr.add("delete: %s", errName(top.Delete([]byte("nested"))))
			return nil
		})
		tr.add("update: %s", errName(err))
		require.NoError(t, b.view(func(tx kvTx) error {
			top := tx.Bucket([]byte("top"))
			tr.add("still a bucket %v, get %v", top.Bucket([]byte("nested")) != nil, top.Get([]byte("nested")))
			return nil
		}))
	}},
	{"rollback on error", func(t *testing.T, b backend, tr *transcript) {
		require.NoError(t, b.update(func(tx kvTx) error {
			r, _ := tx.CreateBucketIfNotExists([]byte("r"))
			return r.Put([]byte("kept"), []byte("1"))
		}))
		err := b.update(func(tx kvTx) error {
			r := tx.Bucket([]byte("r"))
			require.NoError(t, r.Put([]byte("kept"), []byte("changed")))
			require.NoError(t, r.Put([]byte("new"), []byte("x")))
			_, err := tx.CreateBucketIfNotExists([]byte("rolled back"))
			require.NoError(t, err)
			_ = r.Get([]byte("kept")) // sent before the read
			return errTestAbort
		})
		tr.add("update: %s", errName(err))
		require.NoError(t, b.view(func(tx kvTx) error {
			r := tx.Bucket([]byte("r"))
			tr.add("kept %v new %v bucket %v", r.Get([]byte("kept")), r.Get([]byte("new")), tx.Bucket([]byte("rolled back")) == nil)
			return nil
		}))
		// A bucket made in a rolled-back transaction can be made again.
		require.NoError(t, b.update(func(tx kvTx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("rolled back"))
			tr.add("made again: %s %v", errName(err), bk.KeyN())
			return err
		}))
	}},
}

func mustBucket(t *testing.T, tx kvTx, path ...string) kvBucket {
	b := tx.Bucket([]byte(path[0]))
	for _, p := range path[1:] {
		require.NotNil(t, b)
		b = b.Bucket([]byte(p))
	}
	require.NotNil(t, b)
	return b
}

// TestKVConformance runs the same operations on bbolt and on PostgreSQL:
// the PostgreSQL backend answers exactly as bbolt does.
func TestKVConformance(t *testing.T) {
	for _, c := range kvCases {
		t.Run(c.name, func(t *testing.T) {
			var want, got transcript
			c.run(t, testBoltKV(t), &want)
			c.run(t, testPGKV(t), &got)
			require.NotEmpty(t, want)
			require.Equal(t, want, got)
		})
	}
}

// TestPGReadErrorAbortsWrite: a read that fails makes update return its
// error (whatever fn returned) and write nothing, and later reads in the
// transaction return nil without asking the database.
func TestPGReadErrorAbortsWrite(t *testing.T) {
	kv := testPGKV(t)
	require.NoError(t, kv.update(func(tx kvTx) error {
		_, err := tx.CreateBucketIfNotExists([]byte("b"))
		return err
	}))
	err := kv.update(func(tx kvTx) error {
		b := tx.Bucket([]byte("b"))
		require.NoError(t, b.Put([]byte("k"), []byte("v")))
		// Break the transaction under the store's feet.
		_, err := tx.(*pgTx).tx.Exec(context.Background(), "SELECT 1/0")
		require.Error(t, err)
		require.Nil(t, b.Get([]byte("other")))
		// A failed look-up is a bucket that reads nothing, never nil.
		x := b.Bucket([]byte("x"))
		require.NotNil(t, x)
		require.Nil(t, x.Get([]byte("k")))
		require.Nil(t, x.Bucket([]byte("y")).Get([]byte("k")))
		c := b.Cursor()
		k, _ := c.First()
		require.Nil(t, k)
		require.Zero(t, b.KeyN())
		return nil // the code took the nils for "absent"
	})
	require.Error(t, err)
	require.Contains(t, err.Error(), "current transaction is aborted")
	require.NoError(t, kv.view(func(tx kvTx) error {
		require.Nil(t, tx.Bucket([]byte("b")).Get([]byte("k")))
		return nil
	}))
}

// TestPGPutOnBucketOfAnotherReplica: a Put or Delete of a key that
// another replica made a nested bucket (so not known to this process)
// fails the transaction with ErrIncompatibleValue at its flush, and
// nothing of it is written (no value, no change-feed row), rather than
// being dropped in silence.
func TestPGPutOnBucketOfAnotherReplica(t *testing.T) {
	kv := testPGKV(t)
	other := newPGKV(kv.pool) // its own cache of known buckets
	require.NoError(t, other.update(func(tx kvTx) error {
		top, err := tx.CreateBucketIfNotExists([]byte("listings"))
		require.NoError(t, err)
		_, err = top.CreateBucketIfNotExists([]byte("nested"))
		return err
	}))
	for _, c := range []struct {
		name  string
		write func(b kvBucket) error
		read  bool // a read after the write sends it first
	}{
		{"put at commit", func(b kvBucket) error { return b.Put([]byte("nested"), []byte("v")) }, false},
		{"put before a read", func(b kvBucket) error { return b.Put([]byte("nested"), []byte("v")) }, true},
		{"delete at commit", func(b kvBucket) error { return b.Delete([]byte("nested")) }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			fresh := newPGKV(kv.pool)
			err := fresh.update(func(tx kvTx) error {
				b := tx.Bucket([]byte("listings"))
				require.NoError(t, b.Put([]byte("other"), []byte("x")))
				require.NoError(t, c.write(b))
				if c.read {
					require.Nil(t, b.Get([]byte("k")))
				}
				return nil
			})
			require.ErrorIs(t, err, bolt.ErrIncompatibleValue)
			require.NotErrorIs(t, err, ErrUnavailable)
			var rows, feed int
			require.NoError(t, kv.pool.QueryRow(context.Background(),
				"SELECT count(*) FROM kv WHERE bucket = 'listings' AND key = 'other'").Scan(&rows))
			require.NoError(t, kv.pool.QueryRow(context.Background(), "SELECT count(*) FROM changes WHERE key = 'other'").Scan(&feed))
			require.Zero(t, rows)
			require.Zero(t, feed)
			require.NoError(t, kv.view(func(tx kvTx) error {
				require.NotNil(t, tx.Bucket([]byte("listings")).Bucket([]byte("nested")))
				return nil
			}))
		})
	}
}

// failLookup is a tracer that cancels the look-up of one nested bucket,
// as a lost connection would fail it.
type failLookup struct {
	countTracer
	on          atomic.Bool
	bucket, key string
}

func (f *failLookup) TraceQueryStart(ctx context.Context, conn *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if f.on.Load() && strings.HasPrefix(d.SQL, "SELECT value IS NULL") && len(d.Args) == 2 &&
		string(d.Args[0].([]byte)) == f.bucket && string(d.Args[1].([]byte)) == f.key {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		return ctx
	}
	return ctx
}

// TestPGFailedLookupInAChain: the first look-up of outbox/TH failing in
// OutboxAfter (tx.Bucket(outbox).Bucket(dest).Cursor()) does not panic
// the process: the read returns the error.
func TestPGFailedLookupInAChain(t *testing.T) {
	cfg, err := pgxpool.ParseConfig(pgURL(t))
	require.NoError(t, err)
	tracer := &failLookup{bucket: "outbox", key: "TH"}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, pgMigrate(context.Background(), pool))
	require.NoError(t, newPGKV(pool).update(func(tx kvTx) error {
		out, err := tx.CreateBucketIfNotExists(bucketOutbox)
		require.NoError(t, err)
		q, err := out.CreateBucketIfNotExists([]byte("TH"))
		require.NoError(t, err)
		return q.Put(seqKey(1), []byte(`{"dest":"TH","seq":1}`))
	}))
	// A process that has not seen outbox/TH yet looks it up.
	tracer.on.Store(true)
	db := &DB{kv: newPGKV(pool), pool: pool}
	rows, err := db.OutboxAfter(context.Background(), nil)
	require.ErrorIs(t, err, context.Canceled)
	require.Nil(t, rows)
}

// TestPGWritesAreFewRoundTrips: a 25,000-key transaction sends its puts
// in one round trip (three array statements of at most pgChunk rows), not
// 25,000 (counted with a tracer on the pool).
func TestPGWritesAreFewRoundTrips(t *testing.T) {
	url := pgURL(t)
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	tracer := &countTracer{}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, pgMigrate(context.Background(), pool))
	kv := newPGKV(pool)
	tracer.n.Store(0)
	require.NoError(t, kv.update(func(tx kvTx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("listings"))
		if err != nil {
			return err
		}
		for i := range 25000 {
			if err := b.Put(fmt.Appendf(nil, "L%05d", i), []byte(`{"id":"x"}`)); err != nil {
				return err
			}
		}
		return nil
	}))
	// BEGIN, the lock, the bucket look-up, one batch (upsert + feed), COMMIT.
	require.LessOrEqual(t, tracer.n.Load(), int64(6), "round trips")
	var rows, feed int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM kv WHERE bucket = 'listings'").Scan(&rows))
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM changes WHERE bucket = 'listings'").Scan(&feed))
	require.Equal(t, 25000, rows)
	require.Equal(t, 25000, feed)
}

// TestPGUnavailable: a database that cannot be reached is ErrUnavailable,
// for reads and writes.
func TestPGUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now
	pool, err := pgxpool.New(context.Background(), "postgres://imtgt@"+addr+"/x?sslmode=disable&connect_timeout=5")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	kv := newPGKV(pool)
	require.ErrorIs(t, kv.view(func(kvTx) error { return nil }), ErrUnavailable)
	require.ErrorIs(t, kv.update(func(kvTx) error { return nil }), ErrUnavailable)
}

// TestPGConnectionKilledIsUnavailable: the server ending a transaction's
// connection (57P01, as on a shutdown) is ErrUnavailable, and the write is
// not committed.
func TestPGConnectionKilledIsUnavailable(t *testing.T) {
	kv := testPGKV(t)
	require.NoError(t, kv.update(func(tx kvTx) error {
		_, err := tx.CreateBucketIfNotExists([]byte("b"))
		return err
	}))
	killer, err := pgxpool.New(context.Background(), pgURL(t))
	require.NoError(t, err)
	t.Cleanup(killer.Close)
	err = kv.update(func(tx kvTx) error {
		b := tx.Bucket([]byte("b"))
		require.NoError(t, b.Put([]byte("k"), []byte("v")))
		var pid int
		require.NoError(t, tx.(*pgTx).tx.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&pid))
		_, err := killer.Exec(context.Background(), "SELECT pg_terminate_backend($1)", pid)
		require.NoError(t, err)
		b.Get([]byte("k2"))
		return nil
	})
	require.ErrorIs(t, err, ErrUnavailable)
	require.NoError(t, kv.view(func(tx kvTx) error {
		require.Nil(t, tx.Bucket([]byte("b")).Get([]byte("k")))
		return nil
	}))
}

// TestPGCommitOutcome: a COMMIT that never left the process fails with
// ErrUnavailable alone (nothing stored); one sent and then not answered
// (here the server ends the session while it commits) is ErrCommitUnknown,
// which is also ErrUnavailable.
func TestPGCommitOutcome(t *testing.T) {
	t.Run("not sent", func(t *testing.T) {
		cfg, err := pgxpool.ParseConfig(pgURL(t))
		require.NoError(t, err)
		tracer := &failCommit{}
		cfg.ConnConfig.Tracer = tracer
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		require.NoError(t, pgMigrate(context.Background(), pool))
		kv := newPGKV(pool)
		tracer.on.Store(true)
		err = kv.update(func(tx kvTx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			require.NoError(t, err)
			return b.Put([]byte("k"), []byte("v"))
		})
		require.ErrorIs(t, err, ErrUnavailable)
		require.NotErrorIs(t, err, ErrCommitUnknown)
		var n int
		require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM kv").Scan(&n))
		require.Zero(t, n, "nothing stored")
	})
	t.Run("sent, connection lost", func(t *testing.T) {
		kv := testPGKV(t)
		_, err := kv.pool.Exec(context.Background(), `
			CREATE FUNCTION die_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				IF NEW.key = 'die' THEN PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5); END IF;
				RETURN NULL;
			END $$;
			CREATE CONSTRAINT TRIGGER die AFTER INSERT ON kv DEFERRABLE INITIALLY DEFERRED
				FOR EACH ROW EXECUTE FUNCTION die_at_commit();`)
		require.NoError(t, err)
		err = kv.update(func(tx kvTx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			require.NoError(t, err)
			return b.Put([]byte("die"), []byte("v"))
		})
		require.ErrorIs(t, err, ErrCommitUnknown)
		require.ErrorIs(t, err, ErrUnavailable)
	})
}

// failCommit cancels COMMIT statements before they are sent.
type failCommit struct {
	countTracer
	on atomic.Bool
}

func (f *failCommit) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if f.on.Load() && strings.EqualFold(d.SQL, "commit") {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		return ctx
	}
	return ctx
}

// TestPGErrorUnavailable: the server's errors that mean "not now" are
// ErrUnavailable (503), the others are returned as they are.
func TestPGErrorUnavailable(t *testing.T) {
	for _, c := range []struct {
		code string
		want bool
	}{
		{"08006", true},  // connection failure
		{"53300", true},  // too_many_connections
		{"53100", true},  // disk_full
		{"53200", true},  // out_of_memory
		{"57014", true},  // query_canceled: a statement_timeout set by the DBA
		{"57P01", true},  // admin_shutdown
		{"57P03", true},  // cannot_connect_now
		{"23505", false}, // unique_violation
		{"42P01", false}, // undefined_table
		{"40001", false}, // serialization_failure
	} {
		err := pgError(fmt.Errorf("get: %w", &pgconn.PgError{Code: c.code, Message: "x"}))
		require.Equal(t, c.want, errors.Is(err, ErrUnavailable), c.code)
	}
}

// TestPGPoolConfig: a connect timeout of 5 s and a pool of 16 unless the
// URL sets them.
func TestPGPoolConfig(t *testing.T) {
	cfg, err := pgPoolConfig("postgres://imtgt@db:5432/imtgt_th")
	require.NoError(t, err)
	require.Equal(t, 5*time.Second, cfg.ConnConfig.ConnectTimeout)
	require.EqualValues(t, pgDefaultMaxConns, cfg.MaxConns)
	cfg, err = pgPoolConfig("postgres://imtgt@db:5432/imtgt_th?connect_timeout=2&pool_max_conns=5")
	require.NoError(t, err)
	require.Equal(t, 2*time.Second, cfg.ConnConfig.ConnectTimeout)
	require.EqualValues(t, 5, cfg.MaxConns)
}

func TestFeedBucket(t *testing.T) {
	for _, c := range []struct {
		path, key string
		want      string
		ok        bool
	}{
		{"listings", "lst_1", "listings", true},
		{"policy", "current", "policy", true},
		{"federation", "manifest", "federation", true},
		{"meta", "reconcile", "meta", true},
		{"meta", "audit_head", "meta", false},
		{"outbox\x00TH", "\x00\x01", "outbox/TH", true},
		{"outbox", "TH", "", false},
		{"peer_policies\x00MY", "\x00\x00\x00\x00\x00\x00\x00\x02", "peer_policies/MY", true},
		{"peer_policies\x00MY\x00x", "y", "", false},
		{"policy\x00versions", "x", "", false},
		{"log\x00TH", "x", "", false},
		{"sellers", "sel_1", "", false},
		{"", "listings", "", false},
	} {
		got, ok := feedBucket([]byte(c.path), []byte(c.key))
		require.Equal(t, c.ok, ok, "%q", c.path)
		require.Equal(t, c.want, got, "%q", c.path)
	}
}

// TestPGImportIsFewRoundTrips: ApplyLocal of 10,000 listings with their
// log records is a handful of round trips, not one per key.
func TestPGImportIsFewRoundTrips(t *testing.T) {
	cfg, err := pgxpool.ParseConfig(pgURL(t))
	require.NoError(t, err)
	tracer := &countTracer{}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	require.NoError(t, pgMigrate(context.Background(), pool))
	db := &DB{kv: newPGKV(pool), pool: pool}
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.upgrade())
	changes := make([]catalog.Change, 10000)
	for i := range changes {
		changes[i] = catalog.Change{Listing: &catalog.Listing{ID: fmt.Sprintf("lst_%05d", i), Origin: "TH", Title: "durian"}}
	}
	seal := func(first uint64, cs []catalog.Change) ([][]byte, error) {
		out := make([][]byte, len(cs))
		for i := range cs {
			out[i] = fmt.Appendf(nil, "record %d", first+uint64(i))
		}
		return out, nil
	}
	tracer.n.Store(0)
	start := time.Now()
	require.NoError(t, db.ApplyLocal(context.Background(), "TH", changes, seal))
	t.Logf("10,000 listings: %d round trips, %v", tracer.n.Load(), time.Since(start))
	require.LessOrEqual(t, tracer.n.Load(), int64(12))
	heads, err := db.Heads(context.Background())
	require.NoError(t, err)
	require.Equal(t, uint64(10000), heads["TH"])
}
