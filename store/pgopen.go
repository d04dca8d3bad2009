package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"
)

// Errors of the shared (PostgreSQL) store.
var (
	// ErrUnavailable wraps the failures of reaching the store's database
	// (refused or lost connections, a server shutting down, no answer in
	// time): the request may succeed later.
	ErrUnavailable = errors.New("the store's database is unavailable")
	// ErrNotShared is returned by the change-feed and lease methods of a
	// bbolt store, which only this process writes.
	ErrNotShared = errors.New("the store is not shared")
	// ErrFenced refuses a fenced write (DB.Fenced) once the lease it was
	// made for has passed to another replica or expired.
	ErrFenced = errors.New("this replica no longer holds the federation lease")
	// ErrCommitUnknown is a write transaction whose COMMIT was sent but
	// not answered (the connection was lost, or no answer in time): it
	// may or may not have committed. It is also ErrUnavailable
	// (errors.Is matches both); unlike a failure before the commit, it
	// does not mean that nothing was stored.
	ErrCommitUnknown error = errCommitUnknown{}
)

type errCommitUnknown struct{}

func (errCommitUnknown) Error() string {
	return "the store's database is unavailable: the commit's outcome is unknown"
}

func (errCommitUnknown) Is(target error) bool { return target == ErrUnavailable }

// pgMigrations are the PostgreSQL schema's migrations, applied in order
// by OpenURL (tern keeps the version applied in imtgt_schema_version).
//
//go:embed migrations/*.sql
var pgMigrations embed.FS

// pgDefaultMaxConns is the pool size unless the URL sets pool_max_conns.
const pgDefaultMaxConns = 16

// pgVersionTable is tern's table of the migration version applied.
const pgVersionTable = "imtgt_schema_version"

// pgMigrate applies the migrations not yet applied. tern's Migrator takes
// a session advisory lock (pg_advisory_lock) on its connection around
// creating its version table and around the whole run, and reads the
// version under it, so replicas starting together migrate once: the
// second waits, then finds nothing left to do.
func pgMigrate(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return pgError(err)
	}
	defer conn.Release()
	m, err := migrate.NewMigrator(ctx, conn.Conn(), pgVersionTable)
	if err != nil {
		return fmt.Errorf("migrations: %w", pgError(err))
	}
	sub, err := fs.Sub(pgMigrations, "migrations")
	if err != nil {
		return err
	}
	if err := m.LoadMigrations(sub); err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", pgError(err))
	}
	return nil
}

// IsURL says whether s names a PostgreSQL store (postgres:// or
// postgresql://) rather than a bbolt file.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// OpenURL opens the PostgreSQL store at url (postgres://...; the password
// comes from PGPASSWORD or the passfile, as with libpq, never from the
// configuration), applies the schema migrations under tern's lock,
// creates the bucket tree (upgrade, in a write transaction, so under the
// write lock) and returns it. Of opts only NoAudit applies.
func OpenURL(ctx context.Context, url string, opts Options) (*DB, error) {
	cfg, err := pgPoolConfig(url)
	if err != nil {
		return nil, err
	}
	name := redactedURL(cfg)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, pgError(err))
	}
	ctx, cancel := context.WithTimeout(ctx, pgTxTimeout)
	defer cancel()
	if err := pgMigrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	db := &DB{kv: newPGKV(pool), pool: pool, path: name, noAudit: opts.NoAudit}
	if err := db.upgrade(); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return db, nil
}

// pgConnectTimeout bounds a connection attempt unless the URL sets
// connect_timeout: without it a database host that drops packets (powered
// off, partitioned) holds each connect for the whole statement bound.
const pgConnectTimeout = 5 * time.Second

// pgPoolConfig parses the store URL with the node's defaults for what the
// URL leaves out.
func pgPoolConfig(url string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgconn's parse errors leave the password out.
		return nil, fmt.Errorf("store URL: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		// pgxpool's default (4 on a 2-core host) is too few: a write
		// waiting for the write lock holds a connection, and the reads of
		// the HTTP API must not queue behind it.
		cfg.MaxConns = pgDefaultMaxConns
	}
	if !strings.Contains(url, "connect_timeout") {
		cfg.ConnConfig.ConnectTimeout = pgConnectTimeout
	}
	return cfg, nil
}

// redactedURL names the database for messages and Path: user, host, port
// and database, no password.
func redactedURL(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("postgres://%s@%s/%s", c.User, net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port))), c.Database)
}

// Shared says whether other processes (a node's other replicas) may write
// the store: true on PostgreSQL.
func (db *DB) Shared() bool { return db.pool != nil }

// Ping checks that the store's database answers: ErrUnavailable when it
// cannot be reached; always nil on bbolt.
func (db *DB) Ping(ctx context.Context) error {
	if db.pool == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, pgTxTimeout)
	defer cancel()
	if err := db.pool.Ping(ctx); err != nil {
		if pgError(err) == err {
			// Whatever stops a ping from answering makes the store unusable.
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return pgError(err)
	}
	return nil
}
