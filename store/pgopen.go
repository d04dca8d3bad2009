package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"

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
)

// pgMigrations are the PostgreSQL schema's migrations, applied in order
// by OpenURL (tern keeps the version applied in imtgt_schema_version).
//
//go:embed migrations/*.sql
var pgMigrations embed.FS

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
