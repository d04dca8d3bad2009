package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	bolt "go.etcd.io/bbolt"
)

// pgKV is the PostgreSQL backend of kv.go: the bucket tree as rows of the
// kv table (migrations/001_kv.sql), shared by the replicas of one node.
//
// A transaction queues its puts and deletes and sends them, as two
// statements over arrays, before its next read and at commit: a read sees
// the transaction's own writes, and a bulk import of thousands of listings
// is a handful of round trips instead of one per key.
type pgKV struct {
	pool    *pgxpool.Pool
	timeout time.Duration
	// fence, when set, is checked by every write transaction right after
	// the write lock (DB.Fenced).
	fence *pgFence
	// known holds the paths of buckets seen committed. The store never
	// deletes a bucket, so a bucket once seen exists for good and need not
	// be looked up again. (A read snapshot older than the bucket's
	// creation then finds it empty rather than absent, which the store's
	// code treats alike.) Shared by the fenced views of one pool.
	known *sync.Map
}

// pgFence is the lease a fenced view's writes require.
type pgFence struct {
	name, holder string
	epoch        uint64
}

const (
	// pgWriteLock is the advisory transaction lock every write transaction
	// takes first, so that writes are serialised across replicas as bbolt's
	// one writer serialises them in a process (and change-feed seq order is
	// commit order). AcquireLease takes it too.
	pgWriteLock int64 = 0x696d7467_74770001
	// pgTxTimeout bounds each statement (and the lock wait, and the
	// commit), so that nothing waits forever on a database that stopped
	// answering. A transaction as a whole is not bounded: copying a large
	// store into PostgreSQL is one transaction of many statements.
	pgTxTimeout = 30 * time.Second
	// pgChannel is the NOTIFY channel of the change feed.
	pgChannel = "imtgt_changes"
	// Keyset pages: cursors start small (a cursor usually reads a page of
	// a listing API) and grow; ForEach reads everything, so it starts big.
	pgFirstPage   = 64
	pgForEachPage = 1024
	pgMaxPage     = 4096
	// pgChunk is the most rows one array statement carries.
	pgChunk = 10000
)

func newPGKV(pool *pgxpool.Pool) *pgKV {
	return &pgKV{pool: pool, timeout: pgTxTimeout, known: new(sync.Map)}
}

// close closes the pool; a fenced view's close does nothing (its DB owns
// the pool).
func (p *pgKV) close() error {
	if p.fence == nil {
		p.pool.Close()
	}
	return nil
}

func (p *pgKV) view(fn func(kvTx) error) error { return p.viewCtx(context.Background(), fn) }

func (p *pgKV) update(fn func(kvTx) error) error { return p.updateCtx(context.Background(), fn) }

// viewCtx runs fn in a read transaction whose statements run under ctx,
// each bounded to p.timeout.
func (p *pgKV) viewCtx(ctx context.Context, fn func(kvTx) error) error {
	bctx, cancel := context.WithTimeout(ctx, p.timeout)
	tx, err := p.pool.BeginTx(bctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	cancel()
	if err != nil {
		return pgError(err)
	}
	defer p.rollback(tx)
	t := newPGTx(ctx, tx, p, false)
	err = fn(t)
	if t.err != nil {
		return pgError(t.err)
	}
	return err
}

// updateCtx runs fn in a write transaction whose statements (the wait
// for the write lock included) run under ctx, each bounded to p.timeout;
// the COMMIT, once the transaction gets there, is not cancelled by ctx
// (that would only make its outcome unknown).
func (p *pgKV) updateCtx(ctx context.Context, fn func(kvTx) error) error {
	lctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	tx, err := p.pool.BeginTx(lctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return pgError(err)
	}
	defer p.rollback(tx)
	// Read committed: each statement after the lock sees every write
	// transaction committed before this one took it.
	if err := p.lockAndFence(lctx, tx); err != nil {
		return pgError(err)
	}
	t := newPGTx(ctx, tx, p, true)
	err = fn(t)
	if t.err != nil {
		return pgError(t.err)
	}
	if err != nil {
		return err
	}
	if err := t.commit(); err != nil {
		return err
	}
	for _, path := range t.created {
		p.known.Store(path, struct{}{})
	}
	return nil
}

// rollback ends a transaction that did not commit (a no-op after Commit).
func (p *pgKV) rollback(tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	_ = tx.Rollback(ctx)
}

// lockAndFence takes the write lock and, on a fenced view, checks the
// lease under it (one round trip).
func (p *pgKV) lockAndFence(ctx context.Context, tx pgx.Tx) error {
	if p.fence == nil {
		_, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", pgWriteLock)
		return err
	}
	b := &pgx.Batch{}
	b.Queue("SELECT pg_advisory_xact_lock($1)", pgWriteLock)
	var held bool
	b.Queue(`SELECT coalesce((SELECT holder = $2 AND epoch = $3 AND expires > clock_timestamp()
		FROM leases WHERE name = $1), false)`, p.fence.name, p.fence.holder, int64(p.fence.epoch)).
		QueryRow(func(r pgx.Row) error { return r.Scan(&held) })
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if !held {
		return fmt.Errorf("%w: lease %s epoch %d", ErrFenced, p.fence.name, p.fence.epoch)
	}
	return nil
}

// pgError marks connection-level failures as ErrUnavailable: the
// database could not be reached, or stopped answering, so the write may
// be retried later; other errors are returned as they are.
func pgError(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrFenced) {
		return err
	}
	if pgUnavailable(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

func pgUnavailable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// 08: connection exceptions; 53: insufficient resources (too
		// many connections, disk full, out of memory); 57014: a
		// statement timeout the DBA set (or a cancel); 57P01-03:
		// admin/crash shutdown, cannot connect now. All pass: retry later.
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "53") ||
			pe.Code == "57014" || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// pgTx is one transaction: kv.go's first-read-error rule lives here.
type pgTx struct {
	ctx      context.Context // the caller's: each statement runs under it
	tx       pgx.Tx
	kv       *pgKV
	writable bool
	err      error // the first error of a read (or of a flush)

	ops   []pgOp           // queued writes, last one per key wins
	index map[pgOpKey]int  // into ops
	made  map[string]bool  // bucket paths created in this transaction
	feed  map[pgOpKey]bool // change-feed rows, by (bucket text, key)
	feeds []pgOpKey        // in the order first written

	created []string // paths of made, for pgKV.known after commit
}

type pgOp struct {
	bucket, key, value []byte
	del                bool
	isBucket           bool // value is NULL: a nested bucket
}

type pgOpKey struct{ bucket, key string }

func newPGTx(ctx context.Context, tx pgx.Tx, kv *pgKV, writable bool) *pgTx {
	return &pgTx{ctx: ctx, tx: tx, kv: kv, writable: writable, index: map[pgOpKey]int{}, made: map[string]bool{}, feed: map[pgOpKey]bool{}}
}

// stmt is the context of one statement: the caller's, bounded to
// pgTxTimeout.
func (t *pgTx) stmt() (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.ctx, t.kv.timeout)
}

// root is the bucket of the top-level buckets; its path is empty, not
// nil (nil is NULL).
func (t *pgTx) root() *pgBucket { return &pgBucket{tx: t, path: []byte{}, root: true} }

func (t *pgTx) Bucket(name []byte) kvBucket { return t.root().Bucket(name) }

func (t *pgTx) CreateBucketIfNotExists(name []byte) (kvBucket, error) {
	return t.root().CreateBucketIfNotExists(name)
}

func (t *pgTx) ForEachBucket(fn func(name []byte, b kvBucket) error) error {
	root := t.root()
	return root.ForEachBucket(func(k []byte) error {
		return fn(k, &pgBucket{tx: t, path: root.child(k)})
	})
}

// fail keeps the first read error; it reports whether err was one.
func (t *pgTx) fail(err error) bool {
	if err == nil {
		return false
	}
	if t.err == nil {
		t.err = err
	}
	return true
}

// ready sends the queued writes before a read; false when the
// transaction already failed (the read then returns nil).
func (t *pgTx) ready() bool {
	if t.err != nil {
		return false
	}
	if len(t.ops) > 0 {
		b := &pgx.Batch{}
		t.queueFlush(b)
		ctx, cancel := t.stmt()
		defer cancel()
		if t.fail(t.tx.SendBatch(ctx, b).Close()) {
			return false
		}
	}
	return true
}

const (
	// A nested bucket's row is never overwritten nor deleted (bbolt
	// refuses to Put or Delete a bucket's key; the store never deletes
	// buckets). Put and Delete refuse the buckets this process knows of;
	// one made by another replica is found here: the upsert answers how
	// many rows it wrote, the delete whether it met a bucket, and the
	// flush fails with bolt.ErrIncompatibleValue rather than drop the
	// write in silence.
	pgUpsert = `WITH up AS (INSERT INTO kv (bucket, key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[])
		ON CONFLICT (bucket, key) DO UPDATE SET value = EXCLUDED.value WHERE kv.value IS NOT NULL
		RETURNING 1)
		SELECT count(*) FROM up`
	pgDelete = `WITH d AS (SELECT * FROM unnest($1::bytea[], $2::bytea[]) AS d(bucket, key)),
		del AS (DELETE FROM kv USING d WHERE kv.bucket = d.bucket AND kv.key = d.key AND kv.value IS NOT NULL)
		SELECT EXISTS (SELECT 1 FROM kv JOIN d USING (bucket, key) WHERE kv.value IS NULL)`
	pgFeed = `WITH ins AS (INSERT INTO changes (bucket, key)
			SELECT b, k FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY AS u(b, k, n) ORDER BY n
			RETURNING seq)
		SELECT pg_notify('` + pgChannel + `', max(seq)::text) FROM ins`
)

// queueFlush adds the queued writes to b (at most two statements) and
// empties the queue.
func (t *pgTx) queueFlush(b *pgx.Batch) {
	var ub, uk, uv, db, dk [][]byte
	for _, op := range t.ops {
		switch {
		case op.del:
			db, dk = append(db, op.bucket), append(dk, op.key)
		default:
			// nil: NULL, a nested bucket; a put's value is never nil.
			ub, uk, uv = append(ub, op.bucket), append(uk, op.key), append(uv, op.value)
		}
	}
	// Statements of at most pgChunk rows, all in the one batch: one round
	// trip either way, but no single parameter of hundreds of megabytes.
	for i := 0; i < len(db); i += pgChunk {
		j := min(i+pgChunk, len(db))
		b.Queue(pgDelete, db[i:j], dk[i:j]).QueryRow(func(r pgx.Row) error {
			var bucket bool
			if err := r.Scan(&bucket); err != nil {
				return err
			}
			if bucket {
				return fmt.Errorf("delete: a key deleted is a nested bucket (made by another replica): %w", bolt.ErrIncompatibleValue)
			}
			return nil
		})
	}
	for i := 0; i < len(ub); i += pgChunk {
		j := min(i+pgChunk, len(ub))
		b.Queue(pgUpsert, ub[i:j], uk[i:j], uv[i:j]).QueryRow(func(r pgx.Row) error {
			var n int
			if err := r.Scan(&n); err != nil {
				return err
			}
			if n != j-i {
				return fmt.Errorf("put: %d of the keys written are nested buckets (made by another replica): %w", j-i-n, bolt.ErrIncompatibleValue)
			}
			return nil
		})
	}
	t.ops = t.ops[:0]
	clear(t.index)
}

// commit sends the last writes and the change-feed rows with their
// notice in one round trip, then commits. A failure before COMMIT went
// out leaves nothing stored (ErrUnavailable when the database is the
// cause); a COMMIT sent but not answered is ErrCommitUnknown.
func (t *pgTx) commit() error {
	b := &pgx.Batch{}
	t.queueFlush(b)
	if len(t.feeds) > 0 {
		buckets := make([]string, len(t.feeds))
		keys := make([][]byte, len(t.feeds))
		for i, f := range t.feeds {
			buckets[i], keys[i] = f.bucket, []byte(f.key)
		}
		for i := 0; i < len(buckets); i += pgChunk {
			j := min(i+pgChunk, len(buckets))
			b.Queue(pgFeed, buckets[i:j], keys[i:j])
		}
	}
	ctx, cancel := t.stmt()
	defer cancel()
	if b.Len() > 0 {
		if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
			// No COMMIT sent: the server rolls the transaction back.
			return pgError(err)
		}
	}
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(t.ctx), t.kv.timeout)
	defer ccancel()
	err := t.tx.Commit(cctx)
	if err == nil {
		return nil
	}
	if pgCommitUnknown(err) {
		return fmt.Errorf("%w: %w", ErrCommitUnknown, err)
	}
	return pgError(err)
}

// pgCommitUnknown says whether err, from a COMMIT, leaves its outcome
// unknown: the connection failed after the COMMIT may have gone out, or
// the server ended the session (a backend terminated while it waits for
// a synchronous standby has already committed locally). An error the
// server answered the COMMIT with is a refusal: nothing was committed.
func pgCommitUnknown(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P")
	}
	// SafeToRetry: the COMMIT never left this process.
	return pgUnavailable(err) && !pgconn.SafeToRetry(err)
}

// queue records a write; the last one per key wins.
func (t *pgTx) queue(op pgOp) {
	k := pgOpKey{string(op.bucket), string(op.key)}
	if i, ok := t.index[k]; ok {
		t.ops[i] = op
	} else {
		t.index[k] = len(t.ops)
		t.ops = append(t.ops, op)
	}
	if bucket, ok := feedBucket(op.bucket, op.key); ok {
		fk := pgOpKey{bucket, string(op.key)}
		if !t.feed[fk] {
			t.feed[fk] = true
			t.feeds = append(t.feeds, fk)
		}
	}
}

// feedBucket says whether a write of key in the bucket at path goes to
// the change feed (what other replicas cache: the listings, the top-level
// keys of policy and federation, the reconcile mark, the outbox queues,
// each member's policy files as peer_policies/<country>) and under which name (the path joined with "/"). The rest of meta is
// left out: the audit head changes with every audited write, and no
// replica caches it.
func feedBucket(path, key []byte) (string, bool) {
	switch string(path) {
	case "listings", "policy", "federation":
		return string(path), true
	case "meta":
		return "meta", string(key) == "reconcile"
	}
	if rest, ok := strings.CutPrefix(string(path), "peer_policies\x00"); ok && rest != "" && !strings.Contains(rest, "\x00") {
		return "peer_policies/" + rest, true
	}
	if rest, ok := strings.CutPrefix(string(path), "outbox\x00"); ok && rest != "" {
		return "outbox/" + strings.ReplaceAll(rest, "\x00", "/"), true
	}
	return "", false
}

// pgBucket is a bucket by path.
type pgBucket struct {
	tx   *pgTx
	path []byte
	root bool
}

func (b *pgBucket) child(name []byte) []byte {
	if b.root {
		return slices.Clone(name)
	}
	p := make([]byte, 0, len(b.path)+1+len(name))
	return append(append(append(p, b.path...), 0), name...)
}

func (b *pgBucket) GetMany(keys [][]byte) [][]byte {
	t := b.tx
	out := make([][]byte, len(keys))
	if t.err != nil || len(keys) == 0 {
		return out
	}
	var ask [][]byte
	at := map[string][]int{}
	for i, k := range keys {
		if j, ok := t.index[pgOpKey{string(b.path), string(k)}]; ok {
			out[i] = t.ops[j].value // a queued write answers (see Get)
			continue
		}
		if _, dup := at[string(k)]; !dup {
			ask = append(ask, k)
		}
		at[string(k)] = append(at[string(k)], i)
	}
	if len(ask) == 0 {
		return out
	}
	ctx, cancel := t.stmt()
	defer cancel()
	rows, err := t.tx.Query(ctx, "SELECT key, value FROM kv WHERE bucket = $1 AND key = ANY($2) AND value IS NOT NULL", b.path, ask)
	if t.fail(err) {
		return out
	}
	defer rows.Close()
	for rows.Next() {
		var k, v []byte
		if t.fail(rows.Scan(&k, &v)) {
			return make([][]byte, len(keys))
		}
		for _, i := range at[string(k)] {
			out[i] = v
		}
	}
	if t.fail(rows.Err()) {
		return make([][]byte, len(keys))
	}
	return out
}

func (b *pgBucket) Get(key []byte) []byte {
	t := b.tx
	if t.err != nil {
		return nil
	}
	if i, ok := t.index[pgOpKey{string(b.path), string(key)}]; ok {
		// Answered from the queue: no need to send it first.
		return t.ops[i].value
	}
	// A key the queue does not hold is not changed by any queued write
	// (each is of one exact key), so a point read need not send the queue
	// first: a transaction that reads and writes in turn (an order: its
	// idempotency key, the listing, the outbox) would otherwise pay one
	// more round trip per read, all of them under the write lock.
	var v []byte
	ctx, cancel := t.stmt()
	defer cancel()
	err := t.tx.QueryRow(ctx, "SELECT value FROM kv WHERE bucket = $1 AND key = $2", b.path, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if t.fail(err) {
		return nil
	}
	if v == nil {
		return nil // a nested bucket
	}
	return v
}

func (b *pgBucket) Put(key, value []byte) error {
	t := b.tx
	switch {
	case !t.writable:
		return bolt.ErrTxNotWritable
	case len(key) == 0:
		return bolt.ErrKeyRequired
	case len(key) > bolt.MaxKeySize:
		return bolt.ErrKeyTooLarge
	case int64(len(value)) > bolt.MaxValueSize:
		return bolt.ErrValueTooLarge
	}
	if b.isKnownBucket(key) {
		return bolt.ErrIncompatibleValue
	}
	if value == nil {
		value = []byte{}
	}
	t.queue(pgOp{bucket: b.path, key: slices.Clone(key), value: slices.Clone(value)})
	return nil
}

func (b *pgBucket) Delete(key []byte) error {
	t := b.tx
	if !t.writable {
		return bolt.ErrTxNotWritable
	}
	if b.isKnownBucket(key) {
		return bolt.ErrIncompatibleValue
	}
	t.queue(pgOp{bucket: b.path, key: slices.Clone(key), del: true})
	return nil
}

// isKnownBucket says, without a round trip, whether key is a nested
// bucket made in this transaction or seen committed by this process. A
// write's flush catches the others (pgUpsert), so that Put and Delete
// stay queued rather than read the key first.
func (b *pgBucket) isKnownBucket(key []byte) bool {
	path := string(b.child(key))
	if b.tx.made[path] {
		return true
	}
	_, ok := b.tx.kv.known.Load(path)
	return ok
}

// lookup says whether name is a key of b and whether it is a bucket.
func (b *pgBucket) lookup(name []byte) (exists, isBucket bool) {
	t := b.tx
	path := b.child(name)
	if t.made[string(path)] {
		return true, true
	}
	if _, ok := t.kv.known.Load(string(path)); ok {
		return true, true
	}
	if i, ok := t.index[pgOpKey{string(b.path), string(name)}]; ok {
		op := t.ops[i]
		return !op.del, op.isBucket
	}
	if t.err != nil {
		return false, false // a point read: see Get
	}
	ctx, cancel := t.stmt()
	defer cancel()
	err := t.tx.QueryRow(ctx, "SELECT value IS NULL FROM kv WHERE bucket = $1 AND key = $2", b.path, name).Scan(&isBucket)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false
	}
	if t.fail(err) {
		return false, false
	}
	if isBucket {
		t.kv.known.Store(string(path), struct{}{})
	}
	return true, isBucket
}

func (b *pgBucket) Bucket(name []byte) kvBucket {
	if len(name) == 0 {
		return nil
	}
	_, isBucket := b.lookup(name)
	if b.tx.err != nil {
		// The look-up failed (or the transaction had already): not nil,
		// which the store's chains (tx.Bucket(x).Bucket(y).Cursor()) take
		// for granted as bbolt never fails there, but a bucket whose reads
		// return nil; view and update return the error anyway.
		return &pgBucket{tx: b.tx, path: b.child(name)}
	}
	if !isBucket {
		return nil
	}
	return &pgBucket{tx: b.tx, path: b.child(name)}
}

func (b *pgBucket) CreateBucketIfNotExists(name []byte) (kvBucket, error) {
	t := b.tx
	switch {
	case !t.writable:
		return nil, bolt.ErrTxNotWritable
	case len(name) == 0:
		return nil, bolt.ErrBucketNameRequired
	case len(name) > bolt.MaxKeySize:
		return nil, bolt.ErrKeyTooLarge
	}
	exists, isBucket := b.lookup(name)
	if t.err != nil {
		return nil, t.err
	}
	path := b.child(name)
	if !exists {
		t.queue(pgOp{bucket: b.path, key: slices.Clone(name), isBucket: true})
		t.made[string(path)] = true
		t.created = append(t.created, string(path))
	} else if !isBucket {
		return nil, bolt.ErrIncompatibleValue
	}
	return &pgBucket{tx: t, path: path}, nil
}

type pgRow struct{ k, v []byte }

// page bounds for pgBucket.page.
const (
	pgFrom   = iota // key >= bound, ascending ('' : from the first)
	pgAfter         // key > bound, ascending
	pgBefore        // key < bound, descending
	pgLast          // descending from the last
)

// page reads up to limit keys of b (only nested buckets if bucketsOnly),
// returned in ascending order, and whether the page was full (more may
// follow in its direction). nil, false when the transaction failed.
func (b *pgBucket) page(mode int, bound []byte, limit int, bucketsOnly bool) ([]pgRow, bool) {
	t := b.tx
	if !t.ready() {
		return nil, false
	}
	var q strings.Builder
	q.WriteString("SELECT key, value FROM kv WHERE bucket = $1")
	if bucketsOnly {
		q.WriteString(" AND value IS NULL")
	}
	args := []any{b.path, limit}
	switch mode {
	case pgFrom:
		q.WriteString(" AND key >= $3 ORDER BY key LIMIT $2")
	case pgAfter:
		q.WriteString(" AND key > $3 ORDER BY key LIMIT $2")
	case pgBefore:
		q.WriteString(" AND key < $3 ORDER BY key DESC LIMIT $2")
	case pgLast:
		q.WriteString(" ORDER BY key DESC LIMIT $2")
	}
	if mode != pgLast {
		if bound == nil {
			bound = []byte{}
		}
		args = append(args, bound)
	}
	ctx, cancel := t.stmt()
	defer cancel()
	rows, err := t.tx.Query(ctx, q.String(), args...)
	if t.fail(err) {
		return nil, false
	}
	var out []pgRow
	for rows.Next() {
		var r pgRow
		if t.fail(rows.Scan(&r.k, &r.v)) {
			rows.Close()
			return nil, false
		}
		out = append(out, r)
	}
	if t.fail(rows.Err()) {
		return nil, false
	}
	if mode == pgBefore || mode == pgLast {
		slices.Reverse(out)
	}
	return out, len(out) == limit
}

// forEach pages through b; no rows object stays open across fn, which may
// read (or write) in the same transaction.
func (b *pgBucket) forEach(bucketsOnly bool, fn func(k, v []byte) error) error {
	mode, size := pgFrom, pgForEachPage
	var bound []byte
	for {
		rows, full := b.page(mode, bound, size, bucketsOnly)
		if b.tx.err != nil {
			return b.tx.err
		}
		for _, r := range rows {
			if err := fn(r.k, r.v); err != nil {
				return err
			}
		}
		if !full {
			return nil
		}
		mode, bound, size = pgAfter, rows[len(rows)-1].k, min(2*size, pgMaxPage)
	}
}

func (b *pgBucket) ForEach(fn func(k, v []byte) error) error { return b.forEach(false, fn) }

func (b *pgBucket) ForEachBucket(fn func(k []byte) error) error {
	return b.forEach(true, func(k, _ []byte) error { return fn(k) })
}

func (b *pgBucket) KeyN() int {
	t := b.tx
	if !t.ready() {
		return 0
	}
	// The keys of nested buckets count too, as in bbolt's Stats.
	var n int
	ctx, cancel := t.stmt()
	defer cancel()
	if t.fail(t.tx.QueryRow(ctx, `SELECT count(*) FROM kv WHERE bucket = $1
		OR (bucket >= $1 || '\x00'::bytea AND bucket < $1 || '\x01'::bytea)`, b.path).Scan(&n)) {
		return 0
	}
	return n
}

func (b *pgBucket) NextSequence() (uint64, error) {
	t := b.tx
	if !t.writable {
		return 0, bolt.ErrTxNotWritable
	}
	if !t.ready() {
		return 0, t.err
	}
	var seq int64
	ctx, cancel := t.stmt()
	defer cancel()
	err := t.tx.QueryRow(ctx, `INSERT INTO kv_seq (bucket, seq) VALUES ($1, 1)
		ON CONFLICT (bucket) DO UPDATE SET seq = kv_seq.seq + 1 RETURNING seq`, b.path).Scan(&seq)
	if t.fail(err) {
		return 0, err
	}
	return uint64(seq), nil
}

func (b *pgBucket) Cursor() kvCursor { return &pgCursor{b: b, i: -1} }

// pgCursor buffers one keyset page, ascending, with the position i in it;
// a move past either end of the page reads the next page that way.
type pgCursor struct {
	b              *pgBucket
	rows           []pgRow
	i              int
	loMore, hiMore bool   // keys may exist below rows[0] / above the last row
	bound          []byte // the Seek key, when rows is empty after a Seek
	size           int
}

func (c *pgCursor) grow() int {
	if c.size == 0 {
		c.size = pgFirstPage
	} else {
		c.size = min(2*c.size, pgMaxPage)
	}
	return c.size
}

func (c *pgCursor) at() (k, v []byte) {
	if c.i < 0 || c.i >= len(c.rows) {
		return nil, nil
	}
	r := c.rows[c.i]
	return r.k, r.v
}

func (c *pgCursor) First() (k, v []byte) {
	c.size = 0
	c.rows, c.hiMore = c.b.page(pgFrom, nil, c.grow(), false)
	c.loMore, c.i, c.bound = false, 0, nil
	return c.at()
}

func (c *pgCursor) Last() (k, v []byte) {
	c.size = 0
	c.rows, c.loMore = c.b.page(pgLast, nil, c.grow(), false)
	c.hiMore, c.i, c.bound = false, len(c.rows)-1, nil
	return c.at()
}

func (c *pgCursor) Seek(seek []byte) (k, v []byte) {
	c.size = 0
	c.rows, c.hiMore = c.b.page(pgFrom, seek, c.grow(), false)
	c.loMore, c.i, c.bound = true, 0, slices.Clone(seek)
	return c.at()
}

func (c *pgCursor) Next() (k, v []byte) {
	if c.i+1 < len(c.rows) {
		c.i++
		return c.at()
	}
	if c.hiMore && len(c.rows) > 0 {
		rows, full := c.b.page(pgAfter, c.rows[len(c.rows)-1].k, c.grow(), false)
		if len(rows) > 0 {
			c.rows, c.hiMore, c.loMore, c.i, c.bound = rows, full, true, 0, nil
			return c.at()
		}
	}
	// At the end the cursor stays on the last key, as bbolt's does: Prev
	// then returns the one before it.
	c.hiMore = false
	c.i = len(c.rows) - 1
	return nil, nil
}

func (c *pgCursor) Prev() (k, v []byte) {
	if c.i-1 >= 0 && c.i-1 < len(c.rows) {
		c.i--
		return c.at()
	}
	if c.loMore {
		bound := c.bound
		if len(c.rows) > 0 {
			bound = c.rows[0].k
		}
		rows, full := c.b.page(pgBefore, bound, c.grow(), false)
		if len(rows) > 0 {
			c.rows, c.loMore, c.hiMore, c.i, c.bound = rows, full, true, len(rows)-1, nil
			return c.at()
		}
	}
	// At the start the cursor stays on the first key.
	c.loMore = false
	c.i = min(0, len(c.rows)-1)
	return nil, nil
}

func (b *pgBucket) Sequence() uint64 {
	t := b.tx
	if !t.ready() {
		return 0
	}
	var seq int64
	ctx, cancel := t.stmt()
	defer cancel()
	if t.fail(t.tx.QueryRow(ctx, "SELECT coalesce((SELECT seq FROM kv_seq WHERE bucket = $1), 0)", b.path).Scan(&seq)) {
		return 0
	}
	return uint64(seq)
}

func (b *pgBucket) SetSequence(v uint64) error {
	t := b.tx
	if !t.writable {
		return bolt.ErrTxNotWritable
	}
	if !t.ready() {
		return t.err
	}
	ctx, cancel := t.stmt()
	defer cancel()
	_, err := t.tx.Exec(ctx, `INSERT INTO kv_seq (bucket, seq) VALUES ($1, $2)
		ON CONFLICT (bucket) DO UPDATE SET seq = EXCLUDED.seq`, b.path, int64(v))
	t.fail(err)
	return err
}
