package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/keys"
	"github.com/imtgt/imtgt-node/store"
)

// MigratedSuffix is appended to a bbolt file a migration moved away from,
// so that nothing opens it again by mistake (it would fork the node).
const MigratedSuffix = ".migrated"

// MigrateResult is what MigrateStore did.
type MigrateResult struct {
	To      string         // the database, its password left out
	Keys    map[string]int // keys copied per bucket path
	Total   int
	Counts  map[string]int // the store check's counts on the database
	Kept    string         // where the old bbolt file is now
	Took    time.Duration
	Buckets int
}

// MigrateStore moves the stopped bbolt node in dir into the empty
// PostgreSQL database at url: it copies every bucket, key and sequence in
// one transaction (store.Copy: the database gets all of it or none),
// compares the copy with the file key by key and records the move in the
// audit log in that same transaction, runs the store check on the
// database (the audit chain, every log gap-free, every sealed record
// opens with this node's data key), and only then switches config.yaml's store.url and renames the file
// (MigratedSuffix). A failure before the switch leaves the node as it
// was, on its file.
func MigrateStore(ctx context.Context, dir, url string) (*MigrateResult, error) {
	start := time.Now()
	cfg, ks, err := loadDir(dir)
	if err != nil {
		return nil, err
	}
	if cfg.Store.URL != "" {
		return nil, fmt.Errorf("the node in %s is on PostgreSQL already (store.url %s)", dir, redactURL(cfg.Store.URL))
	}
	if err := ValidateStoreURL(url); err != nil {
		return nil, fmt.Errorf("--to: %w", err)
	}
	path := StorePath(dir)
	src, err := store.Open(path, store.Options{ReadOnly: true, LockTimeout: 200 * time.Millisecond})
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("%w: stop the node first, then migrate", err)
	}
	if errors.Is(err, store.ErrCorrupt) {
		return nil, damaged(dir, err)
	}
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if err := checkStoreOwnerOf(src, cfg, ks); err != nil {
		return nil, err
	}
	dst, err := openURL(ctx, url, store.Options{})
	if err != nil {
		return nil, err
	}
	defer dst.Close()
	rep, err := store.Copy(ctx, dst, src, &audit.Entry{Kind: audit.AdminStore, Time: time.Now().UTC(), Actor: "operator (CLI, node stopped)",
		Reason: fmt.Sprintf("store moved from the bbolt file %s to PostgreSQL %s, compared key by key in the copy's transaction", path, redactURL(url))})
	if errors.Is(err, store.ErrNotEmpty) {
		return nil, fmt.Errorf("%s: %w: it already holds a node's store; migrate into a new, empty database", redactURL(url), store.ErrNotEmpty)
	}
	if err != nil {
		return nil, err
	}
	check := dst.Check(ctx, ks.Data)
	if !check.OK() {
		return nil, fmt.Errorf("the store check of the copy in %s found %d problem(s), first: %s; the node stays on %s (empty the database before trying again)",
			redactURL(url), len(check.Problems)+check.More, check.Problems[0], path)
	}
	cfg.Store.URL = url
	rendered, err := cfg.Render()
	if err != nil {
		return nil, err
	}
	if err := replaceFile(filepath.Join(dir, ConfigFile), rendered); err != nil {
		return nil, fmt.Errorf("switch config.yaml to the database: %w (the data is in the database; set store.url to %s by hand)", err, redactURL(url))
	}
	kept := path + MigratedSuffix
	if err := src.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(path, kept); err != nil {
		return nil, fmt.Errorf("config.yaml now uses the database, but moving %s aside failed: %w; move it yourself so nothing opens it again", path, err)
	}
	return &MigrateResult{To: redactURL(url), Keys: rep.Keys, Total: rep.Total, Buckets: rep.Buckets, Counts: check.Counts, Kept: kept, Took: time.Since(start)}, nil
}

// checkStoreOwnerOf is checkStoreOwner for a store the node has not opened.
func checkStoreOwnerOf(db *store.DB, cfg Config, ks *keys.Set) error {
	n := &Node{Store: db, Config: cfg, Keys: ks}
	return n.checkStoreOwner()
}

// replaceFile writes data to path atomically: a temporary file in the same
// directory, synced, renamed over path, and the directory synced.
func replaceFile(path string, data []byte) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
