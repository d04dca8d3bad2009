package node

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/imtgt/imtgt-node/keys"
	"github.com/imtgt/imtgt-node/store"
)

// openStore opens the store of the node in dir: the PostgreSQL database
// of the config's store.url, or else DIR/data/node.db. A damaged file is refused
// with what to do about it.
func openStore(ctx context.Context, dir string, cfg Config, opts store.Options) (*store.DB, error) {
	if cfg.Store.URL != "" {
		return openURL(ctx, cfg.Store.URL, opts)
	}
	db, err := store.Open(StorePath(dir), opts)
	if errors.Is(err, store.ErrCorrupt) {
		return nil, damaged(dir, err)
	}
	return db, err
}

// createdStore makes the store of a new node directory dir (init, and a
// store made anew): in the config's PostgreSQL database, or the bbolt file.
func createdStore(dir string, cfg Config) (*store.DB, error) {
	if cfg.Store.URL != "" {
		return openURL(context.Background(), cfg.Store.URL, store.Options{})
	}
	return store.Open(filepath.Join(dir, DataDir, StoreFile), store.Options{})
}

// openURL opens a PostgreSQL store (store.OpenURL).
func openURL(ctx context.Context, u string, opts store.Options) (*store.DB, error) {
	db, err := store.OpenURL(ctx, u, opts)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", redactURL(u), err)
	}
	return db, nil
}

// damaged adds to a store.ErrCorrupt what the operator does next.
func damaged(dir string, err error) error {
	return fmt.Errorf("%w; restore it from a backup: imtgt-node restore --dir %s --from FILE (imtgt-node store check --dir %s lists what is wrong)", err, dir, dir)
}

// checkDataKey refuses a data key the store's personal fields are not
// sealed under (another node's data.key), before anything is sealed with
// it; a store without a recorded fingerprint gets this key's.
func checkDataKey(dir string, db *store.DB, k *keys.DataKey) error {
	if err := db.VerifyDataKey(k.Fingerprint(), k); err != nil {
		return fmt.Errorf("%s: %w; put back this node's own %s (from where DIR/keys is backed up)", filepath.Join(dir, KeysDir, keys.DataKeyFile), err, keys.DataKeyFile)
	}
	return nil
}

// checkKeys is the "keys" readiness check: the node key is the one the
// store belongs to, the data key is the one it seals under, and the data
// key seals and opens.
func (n *Node) checkKeys() error {
	if err := n.checkStoreOwner(); err != nil {
		return err
	}
	fp, err := n.Store.DataKeyFingerprint()
	if err != nil {
		return err
	}
	if fp != n.Keys.Data.Fingerprint() {
		return fmt.Errorf("%s: %w", filepath.Join(n.Dir, KeysDir, keys.DataKeyFile), store.ErrWrongDataKey)
	}
	const probe = "readiness probe"
	pt, err := n.Keys.Data.Open(n.Keys.Data.Seal([]byte(probe), []byte(probe)), []byte(probe))
	if err != nil || string(pt) != probe {
		return fmt.Errorf("data key does not seal and open: %w", cmpErr(err, keys.ErrSealed))
	}
	return nil
}

func cmpErr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// StoreCheck is what "imtgt-node store check" found.
type StoreCheck struct {
	*store.CheckReport
	Took time.Duration
	// WrongDataKey: DIR/keys/data.key is not the key the store records;
	// the remedy is the node's own key, not a restore.
	WrongDataKey bool
}

// CheckStore is "imtgt-node store check": the full consistency check of
// the stopped node's store (store.DB.Check), plus the node's own: the
// store belongs to this node's key and country, and its data key
// fingerprint is this data.key's. It opens the file read-only, so it
// changes nothing, and so it refuses while the node runs (the node holds
// the file's lock). A file too damaged to open is one problem of the
// report, not an error.
func CheckStore(ctx context.Context, dir string) (*StoreCheck, error) {
	cfg, ks, err := loadDir(dir)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var db *store.DB
	if cfg.Store.URL != "" {
		// A PostgreSQL store: the node's invariants only (the database
		// checks its own pages), and it may run beside the replicas.
		if db, err = openURL(ctx, cfg.Store.URL, store.Options{ReadOnly: true, NoVerify: true}); err != nil {
			return nil, err
		}
		defer db.Close()
		return checkOpened(ctx, db, cfg, ks, dir, start), nil
	}
	path := StorePath(dir)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db, err = store.Open(path, store.Options{ReadOnly: true, NoVerify: true, LockTimeout: 200 * time.Millisecond})
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("%w: stop it first; store check reads the file directly", err)
	}
	if errors.Is(err, store.ErrCorrupt) {
		r := &store.CheckReport{Path: path, Bytes: fi.Size(), Counts: map[string]int{}, Problems: []string{err.Error()}}
		return &StoreCheck{CheckReport: r, Took: time.Since(start)}, nil
	}
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return checkOpened(ctx, db, cfg, ks, dir, start), nil
}

// checkOpened runs the store's check and the node's own on an open store.
func checkOpened(ctx context.Context, db *store.DB, cfg Config, ks *keys.Set, dir string, start time.Time) *StoreCheck {
	r := db.Check(ctx, ks.Data)
	res := &StoreCheck{CheckReport: r}
	if r.OK() {
		// Only a store whose tree is sound is asked about its owner.
		if meta, err := db.NodeMeta(); err == nil {
			pub := hex.EncodeToString(ks.Node.Public().(ed25519.PublicKey))
			if meta.NodePublicKey != pub || meta.Country != cfg.Node.Country {
				r.Problems = append(r.Problems, fmt.Sprintf("meta/node: the store belongs to node %.12s… (%s), not to this node %.12s… (%s)", meta.NodePublicKey, meta.Country, pub, cfg.Node.Country))
			}
		}
		if fp, err := db.DataKeyFingerprint(); err != nil {
			r.Problems = append(r.Problems, err.Error())
		} else if fp == "" {
			// An old store: run records it at the next start, after
			// checking the key opens a sealed record.
		} else if fp != ks.Data.Fingerprint() {
			r.Problems = append(r.Problems, fmt.Sprintf("meta/data_key_fingerprint %.16s… is not that of %s (%.16s…)", fp, filepath.Join(dir, KeysDir, keys.DataKeyFile), ks.Data.Fingerprint()))
			res.WrongDataKey = true
		}
	}
	res.Took = time.Since(start)
	return res
}
