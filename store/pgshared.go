package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// What a PostgreSQL store's replicas share beyond the bucket tree: the
// change feed (what another replica wrote, so a replica's caches follow)
// and the federation lease (one replica leads federation; a fencing epoch
// refuses the writes of a leader that lost it).

// Changed is one row of the change feed: a key of Bucket (a bucket path
// joined with "/": "listings", "policy", "federation", "meta", or
// "outbox/<country>") that a committed write transaction put or deleted.
type Changed struct {
	Seq    uint64
	Bucket string
	Key    []byte
	At     time.Time // when its transaction began: tells a rewritten seq from the one a reader applied
}

// ChangesHead is the highest seq committed (0 if none).
func (db *DB) ChangesHead(ctx context.Context) (uint64, error) {
	return db.feedNumber(ctx, "SELECT coalesce(max(seq), 0) FROM changes")
}

// ChangesFloor is the lowest seq still kept (0 if none): a reader that has
// seen less than ChangesFloor-1 missed pruned rows and reloads.
func (db *DB) ChangesFloor(ctx context.Context) (uint64, error) {
	return db.feedNumber(ctx, "SELECT coalesce(min(seq), 0) FROM changes")
}

func (db *DB) feedNumber(ctx context.Context, q string) (uint64, error) {
	if db.pool == nil {
		return 0, ErrNotShared
	}
	var n int64
	if err := db.pool.QueryRow(ctx, q).Scan(&n); err != nil {
		return 0, pgError(err)
	}
	return uint64(n), nil
}

// DefaultChangesLimit is Changes' page when limit is not positive.
const DefaultChangesLimit = 1000

// Changes returns up to limit rows with seq > after, ascending. Write
// transactions commit one at a time (the write lock) and take their seqs
// under it, so the rows a reader sees are every change up to the last
// one it sees.
func (db *DB) Changes(ctx context.Context, after uint64, limit int) ([]Changed, error) {
	if db.pool == nil {
		return nil, ErrNotShared
	}
	if limit <= 0 {
		limit = DefaultChangesLimit
	}
	rows, err := db.pool.Query(ctx, "SELECT seq, bucket, key, at FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2", int64(after), limit)
	if err != nil {
		return nil, pgError(err)
	}
	var out []Changed
	for rows.Next() {
		var c Changed
		var seq int64
		if err := rows.Scan(&seq, &c.Bucket, &c.Key, &c.At); err != nil {
			rows.Close()
			return nil, pgError(err)
		}
		c.Seq = uint64(seq)
		out = append(out, c)
	}
	return out, pgError(rows.Err())
}

// PruneChanges deletes the rows written before before, except the newest
// (which keeps ChangesHead), and returns how many went.
func (db *DB) PruneChanges(ctx context.Context, before time.Time) (int, error) {
	if db.pool == nil {
		return 0, ErrNotShared
	}
	// A prefix of seqs only: at is a transaction's start, and seqs are
	// taken in commit order, so rows are not in at order; deleting by at
	// alone could cut a hole in the middle that a reader behind it would
	// never see (it checks only the floor).
	tag, err := db.pool.Exec(ctx, `DELETE FROM changes WHERE seq < (SELECT max(seq) FROM changes)
		AND seq < coalesce((SELECT min(seq) FROM changes WHERE at >= $1), (SELECT max(seq) FROM changes))`, before)
	if err != nil {
		return 0, pgError(err)
	}
	return int(tag.RowsAffected()), nil
}

// Listen holds one connection of its own LISTENing on the change feed's
// channel. Once it listens it calls fn with ChangesHead, then with the seq
// of each notice (the highest seq of a committed write transaction), so a
// caller that catches up with Changes in fn misses nothing: whatever
// committed before the first call is at or below its seq, and whatever
// committed after sends a notice. It returns nil when ctx ends, or the
// error that broke the connection (ErrUnavailable): the caller listens
// again, and the first call of fn brings it up to date.
func (db *DB) Listen(ctx context.Context, fn func(seq uint64)) error {
	if db.pool == nil {
		return ErrNotShared
	}
	conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig.Copy())
	if err != nil {
		return listenErr(ctx, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgChannel); err != nil {
		return listenErr(ctx, err)
	}
	var head int64
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(seq), 0) FROM changes").Scan(&head); err != nil {
		return listenErr(ctx, err)
	}
	fn(uint64(head))
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return listenErr(ctx, err)
		}
		// Anyone who may connect can NOTIFY the channel: a payload that
		// is not a seq says nothing and is skipped.
		if seq, err := parseNotice(n.Payload); err == nil {
			fn(seq)
		}
	}
}

func listenErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	if e := pgError(err); e != err {
		return e
	}
	// A listening connection that fails is lost whatever the cause.
	return fmt.Errorf("%w: listen: %w", ErrUnavailable, err)
}

// parseNotice reads a change-feed notice's payload: the decimal seq.
func parseNotice(payload string) (uint64, error) {
	seq, err := strconv.ParseUint(payload, 10, 64)
	if err != nil || seq == 0 {
		return 0, fmt.Errorf("change notice %.40q: not a seq", payload)
	}
	return seq, nil
}

// --- the lease ---

// AcquireLease takes lease name for holder (a random ID of the replica
// process) for ttl if it is free, expired (database clock) or already
// holder's, and bumps its epoch; ok is false when another holder has it.
// A takeover (or holder's renewal) runs under the write lock, so it is
// ordered after every write of the old holder, and every fenced write
// after it checks the new epoch. A lease another holder keeps unexpired
// is answered from one read without the lock: followers try every 500 ms
// and must not queue behind (or hold up) the node's writes.
func (db *DB) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (epoch uint64, ok bool, err error) {
	if db.pool == nil {
		return 0, false, ErrNotShared
	}
	if holder == "" || ttl <= 0 {
		return 0, false, fmt.Errorf("acquire lease %s: holder %q, ttl %v: need a holder and a positive ttl", name, holder, ttl)
	}
	var held bool
	err = db.pool.QueryRow(ctx, `SELECT holder <> '' AND holder <> $2 AND expires > clock_timestamp()
		FROM leases WHERE name = $1`, name, holder).Scan(&held)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, false, fmt.Errorf("acquire lease %s: %w", name, pgError(err))
	}
	if held {
		// Held by another: the locked upsert below would refuse it too
		// (an expiry is only ever pushed later by its holder, or the
		// lease released, so a lease seen held stays so or is free).
		return 0, false, nil
	}
	err = pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", pgWriteLock); err != nil {
			return err
		}
		var e int64
		err := tx.QueryRow(ctx, `INSERT INTO leases AS l (name, holder, epoch, expires)
				VALUES ($1, $2, 1, clock_timestamp() + $3 * interval '1 microsecond')
			ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, epoch = l.epoch + 1, expires = EXCLUDED.expires
				WHERE l.holder = EXCLUDED.holder OR l.holder = '' OR l.expires <= clock_timestamp()
			RETURNING epoch`, name, holder, ttl.Microseconds()).Scan(&e)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		epoch, ok = uint64(e), err == nil
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("acquire lease %s: %w", name, pgError(err))
	}
	return epoch, ok, nil
}

// RenewLease extends holder's lease at epoch to ttl from now; false if it
// is no longer holder's at that epoch (taken over). A lease that expired
// but was not taken over is still holder's: nobody else wrote under it.
func (db *DB) RenewLease(ctx context.Context, name, holder string, epoch uint64, ttl time.Duration) (bool, error) {
	if db.pool == nil {
		return false, ErrNotShared
	}
	tag, err := db.pool.Exec(ctx, `UPDATE leases SET expires = clock_timestamp() + $4 * interval '1 microsecond'
		WHERE name = $1 AND holder = $2 AND epoch = $3`, name, holder, int64(epoch), ttl.Microseconds())
	if err != nil {
		return false, fmt.Errorf("renew lease %s: %w", name, pgError(err))
	}
	return tag.RowsAffected() == 1, nil
}

// ReleaseLease gives holder's lease up (no-op if it is not holder's at
// epoch any more), so another replica can take it without waiting out
// the ttl.
func (db *DB) ReleaseLease(ctx context.Context, name, holder string, epoch uint64) error {
	if db.pool == nil {
		return ErrNotShared
	}
	_, err := db.pool.Exec(ctx, `UPDATE leases SET holder = '', expires = '-infinity'
		WHERE name = $1 AND holder = $2 AND epoch = $3`, name, holder, int64(epoch))
	if err != nil {
		return fmt.Errorf("release lease %s: %w", name, pgError(err))
	}
	return nil
}

// Lease reads lease name: its holder ("" when free), epoch and expiry
// (zero when never held or released).
func (db *DB) Lease(ctx context.Context, name string) (holder string, epoch uint64, expires time.Time, err error) {
	if db.pool == nil {
		return "", 0, time.Time{}, ErrNotShared
	}
	var e int64
	var exp pgtype.Timestamptz
	err = db.pool.QueryRow(ctx, "SELECT holder, epoch, expires FROM leases WHERE name = $1", name).Scan(&holder, &e, &exp)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", 0, time.Time{}, nil
	}
	if err != nil {
		return "", 0, time.Time{}, fmt.Errorf("lease %s: %w", name, pgError(err))
	}
	if exp.InfinityModifier != pgtype.Finite {
		return holder, uint64(e), time.Time{}, nil // never held, or released
	}
	return holder, uint64(e), exp.Time, nil
}

// Fenced returns a view of db (same pool and caches) whose write
// transactions first check, under the write lock, that holder still holds
// lease name at epoch and that it has not expired (database clock);
// otherwise they fail with ErrFenced and write nothing. Reads are db's.
// On bbolt it returns db. Closing the view closes nothing: db owns the
// pool.
func (db *DB) Fenced(name, holder string, epoch uint64) *DB {
	p, ok := db.kv.(*pgKV)
	if !ok {
		return db
	}
	kv := &pgKV{pool: p.pool, timeout: p.timeout, known: p.known, fence: &pgFence{name: name, holder: holder, epoch: epoch}}
	// A DB of its own (so its own group commit: a batch of fenced writes
	// never carries an unfenced one), sharing the rest.
	return &DB{kv: kv, pool: db.pool, path: db.path, noAudit: db.noAudit, readOnly: db.readOnly, verifyTook: db.verifyTook}
}
