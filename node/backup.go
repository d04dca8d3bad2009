package node

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/keys"
	"github.com/imtgt/imtgt-node/store"
)

// BackupResult tells what Backup wrote.
type BackupResult struct {
	Path  string
	Bytes int64
}

// Backup asks the running node in dir for a consistent copy of its store
// (GET /v1/admin/backup with the operator token), and writes it to out
// atomically: a temporary file, checked to be a store of this node, synced,
// then renamed. A failed backup leaves no file at out.
func Backup(ctx context.Context, dir, out string) (*BackupResult, error) {
	cfg, err := LoadConfig(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, err
	}
	if err := refuseShared(cfg); err != nil {
		return nil, err
	}
	token, err := ReadOperatorToken(dir)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+cfg.HTTP.Addr+"/v1/admin/backup", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("backup needs the node running at %s: %w", cfg.HTTP.Addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("backup refused by the node: %s: %s", resp.Status, body)
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(abs), "."+filepath.Base(abs)+".partial-")
	if err != nil {
		return nil, fmt.Errorf("create backup file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	n, err := io.Copy(tmp, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("backup cut short: got %d of %d bytes", n, resp.ContentLength)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("write backup: %w", err)
	}
	ks, err := keys.Load(filepath.Join(dir, KeysDir))
	if err != nil {
		return nil, err
	}
	if err := checkBackup(tmp.Name(), ks, cfg.Node.Country); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), abs); err != nil {
		return nil, fmt.Errorf("move backup into place: %w", err)
	}
	return &BackupResult{Path: abs, Bytes: n}, nil
}

// ErrWrongBackup is returned for a file that is not a backup of this node.
var ErrWrongBackup = errors.New("not a backup of this node")

// checkBackup opens a backup read-only and checks it is a store of the node
// with these keys and country.
func checkBackup(path string, ks *keys.Set, country string) error {
	db, err := store.Open(path, store.Options{ReadOnly: true, LockTimeout: 100 * time.Millisecond})
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrWrongBackup, path, err)
	}
	defer db.Close()
	v, err := db.SchemaVersion()
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrWrongBackup, path, err)
	}
	if v > store.SchemaVersion {
		return fmt.Errorf("%w: %s has schema version %d; this binary knows up to %d", ErrWrongBackup, path, v, store.SchemaVersion)
	}
	meta, err := db.NodeMeta()
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrWrongBackup, path, err)
	}
	pub := hex.EncodeToString(ks.Node.Public().(ed25519.PublicKey))
	if meta.NodePublicKey != pub || meta.Country != country {
		return fmt.Errorf("%w: %s was taken from another node (%s)", ErrWrongBackup, path, meta.Country)
	}
	return nil
}

// RestoreResult tells what Restore did.
type RestoreResult struct {
	Restored string // the store file now in place
	Previous string // where the replaced store was moved ("" if none)
}

// Restore puts a backup back as the store of the (stopped) node in dir. It
// refuses while the node runs, and refuses a file that is not a backup of
// this node. The replaced store is kept beside it, never deleted.
func Restore(dir, from string, now time.Time) (*RestoreResult, error) {
	cfg, ks, err := loadDir(dir)
	if err != nil {
		return nil, err
	}
	if err := refuseShared(cfg); err != nil {
		return nil, err
	}
	if err := checkBackup(from, ks, cfg.Node.Country); err != nil {
		return nil, err
	}
	target := StorePath(dir)
	if _, err := os.Stat(target); err == nil {
		// Taking the lock proves no node is running on this store, also
		// when the store is too damaged to open (what a restore is for).
		lock, err := store.Lock(target, 200*time.Millisecond)
		if err != nil {
			return nil, fmt.Errorf("stop the node before restoring: %w", err)
		}
		defer lock.Close() // held until the swap is done
	}
	src, err := os.Open(from)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(filepath.Dir(target), ".restore-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, src)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("copy backup: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return nil, err
	}
	res := &RestoreResult{Restored: target}
	if _, err := os.Stat(target); err == nil {
		res.Previous = target + ".before-restore-" + now.UTC().Format("20060102T150405Z")
	}
	// A restore rewinds the audit log to the backup's head: the restored
	// chain says so itself, and where the entries after it are kept. Peers
	// refuse this node's checkpoints until the chain passes what they
	// witnessed (docs/OPERATIONS.md, "Backup and restore").
	if err := recordRestore(tmp.Name(), from, res.Previous, now); err != nil {
		return nil, err
	}
	if res.Previous != "" {
		if err := os.Rename(target, res.Previous); err != nil {
			return nil, fmt.Errorf("keep the current store: %w", err)
		}
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return nil, fmt.Errorf("move restored store into place: %w", err)
	}
	if d, err := os.Open(filepath.Dir(target)); err == nil {
		d.Sync() // make the renames durable
		d.Close()
	}
	return res, nil
}

// recordRestore appends the admin.restore entry to a restored store and
// marks it for reconciliation: until the node has reconciled with every
// member it publishes nothing (docs/OPERATIONS.md, "Backup and restore").
func recordRestore(path, from, previous string, now time.Time) error {
	db, err := store.Open(path, store.Options{})
	if err != nil {
		return fmt.Errorf("open restored store: %w", err)
	}
	reason := fmt.Sprintf("restored from backup %s", filepath.Base(from))
	if previous != "" {
		reason += "; the replaced store, with any entries after the backup, is kept as " + filepath.Base(previous)
	}
	err = markRestored(db, reason, now)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// ErrSharedStore refuses the file-level commands (backup, restore) on a
// node whose store is a PostgreSQL database.
var ErrSharedStore = errors.New("the node's store is a PostgreSQL database: back it up and restore it with PostgreSQL's tools (pg_dump, or base backups with WAL archiving; docs/OPERATIONS.md, \"PostgreSQL store\"), then run imtgt-node restore --dir DIR --mark-only")

// refuseShared returns ErrSharedStore for a node in dir with a store URL.
func refuseShared(cfg Config) error {
	if cfg.Store.URL != "" {
		return ErrSharedStore
	}
	return nil
}

// MarkRestored only marks the store of the (stopped) node in dir for
// reconciliation, as Restore does after it put a backup back: for an
// operator who restored the store by other means (a PostgreSQL database
// from pg_dump or a base backup, a file copied back by hand). It works on
// both backends.
func MarkRestored(ctx context.Context, dir string, now time.Time) error {
	cfg, err := LoadConfig(filepath.Join(dir, ConfigFile))
	if err != nil {
		return err
	}
	db, err := openStore(ctx, dir, cfg, store.Options{LockTimeout: 200 * time.Millisecond})
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("stop the node before marking its store restored: %w", err)
	}
	if err != nil {
		return err
	}
	err = markRestored(db, "restored by the operator outside imtgt-node (restore --mark-only)", now)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// markRestored sets the reconcile mark on a restored store and appends
// the admin.restore entry: the node reconciles with every member before it
// publishes again.
func markRestored(db *store.DB, reason string, now time.Time) error {
	last, err := db.LastAuditTime()
	var prev *store.Reconcile
	if err == nil {
		prev, err = db.PendingReconcile()
	}
	if err == nil {
		since := time.Time{}
		if !last.IsZero() {
			since = last.Add(-reconcileSkew)
		}
		if prev != nil && prev.Since.Before(since) {
			// A backup taken while an earlier restore was still being
			// reconciled: what that one lacked is still to be asked for.
			since = prev.Since
			reason += "; " + prev.Reason + " was not yet reconciled"
		}
		err = db.SetReconcile(store.Reconcile{Reason: reason, Since: since, Started: now.UTC()},
			&audit.Entry{Kind: audit.AdminRestore, Time: now, Actor: "operator (CLI, node stopped)", Reason: reason + "; the node reconciles with every member before it publishes again"})
	}
	return err
}

// RestoreFromPeers makes a new, empty store for the (stopped) node in dir
// whose store was lost with no backup: same keys, same operator token. It
// is marked for reconciliation, so when the node runs (with the manifest
// installed again) it takes back its own catalog records from the peers,
// continues its log above the highest sequence they hold, and recovers
// every order they placed with it. What never left the node (sellers'
// personal data, their tokens, marketplaces, the audit log) is not
// recovered. A store that exists is kept beside, never deleted.
func RestoreFromPeers(dir string, now time.Time) (*RestoreResult, error) {
	cfg, ks, err := loadDir(dir)
	if err != nil {
		return nil, err
	}
	if err := refuseShared(cfg); err != nil {
		return nil, err
	}
	token, err := ReadOperatorToken(dir)
	if err != nil {
		return nil, err
	}
	target := StorePath(dir)
	res := &RestoreResult{Restored: target}
	if _, err := os.Stat(target); err == nil {
		lock, err := store.Lock(target, 200*time.Millisecond)
		if err != nil {
			return nil, fmt.Errorf("stop the node before restoring: %w", err)
		}
		defer lock.Close() // held until the swap is done
		res.Previous = target + ".before-restore-" + now.UTC().Format("20060102T150405Z")
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return nil, err
	}
	tmp := filepath.Join(filepath.Dir(target), ".restore-peers-"+now.UTC().Format("20060102T150405.000000000Z"))
	defer os.Remove(tmp)
	reason := "store made anew: the node's store was lost with no backup"
	if res.Previous != "" {
		reason += "; the replaced store is kept as " + filepath.Base(res.Previous)
	}
	db, err := store.Open(tmp, store.Options{})
	if err != nil {
		return nil, err
	}
	if _, err := createStore(db, ks, cfg.Node.Country, token, "restore --from-peers: the country's default policy", &store.Reconcile{Reason: reason, Started: now.UTC()},
		&audit.Entry{Kind: audit.AdminRestore, Time: now, Actor: "operator (CLI, node stopped)", Reason: reason + "; the node takes its catalog log and orders back from the members before it publishes again"}); err != nil {
		return nil, err
	}
	if res.Previous != "" {
		if err := os.Rename(target, res.Previous); err != nil {
			return nil, fmt.Errorf("keep the current store: %w", err)
		}
	}
	if err := os.Rename(tmp, target); err != nil {
		return nil, fmt.Errorf("move the new store into place: %w", err)
	}
	if d, err := os.Open(filepath.Dir(target)); err == nil {
		d.Sync()
		d.Close()
	}
	return res, nil
}
