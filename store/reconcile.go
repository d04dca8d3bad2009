package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/catalog"
)

// meta/reconcile holds the pending reconciliation of a restored store (JSON
// Reconcile); absent when there is none.
var keyReconcile = []byte("reconcile")

// Reconcile says that a store was restored from a backup, or made anew for
// a node whose store was lost, and that the node must reconcile with every
// peer before it publishes anything: take back its own catalog records the
// peers hold beyond its head, and recover the orders they placed with it
// since the backup.
type Reconcile struct {
	// Reason is what happened ("restored from backup th.db").
	Reason string `json:"reason"`
	// Since is the time from which orders may be missing: the last entry
	// of the restored audit log, less a margin for clock skew (zero: all).
	Since time.Time `json:"since"`
	// Started is when the restore was made.
	Started time.Time `json:"started"`
}

// SetReconcile marks the store as restored, with its audit entry, in one
// transaction.
func (db *DB) SetReconcile(r Reconcile, entries ...*audit.Entry) error {
	return db.kv.update(func(tx kvTx) error {
		if err := putJSON(tx.Bucket(bucketMeta), keyReconcile, r); err != nil {
			return err
		}
		return db.appendAudit(tx, entries...)
	})
}

// PendingReconcile returns the pending reconciliation, or nil.
func (db *DB) PendingReconcile() (*Reconcile, error) {
	var r *Reconcile
	err := db.kv.view(func(tx kvTx) error {
		v := tx.Bucket(bucketMeta).Get(keyReconcile)
		if v == nil {
			return nil
		}
		r = &Reconcile{}
		return json.Unmarshal(v, r)
	})
	return r, err
}

// FinishReconcile clears the pending reconciliation, with its audit entry.
func (db *DB) FinishReconcile(ctx context.Context, entries ...*audit.Entry) error {
	return db.kv.updateCtx(ctx, func(tx kvTx) error {
		if err := tx.Bucket(bucketMeta).Delete(keyReconcile); err != nil {
			return err
		}
		return db.appendAudit(tx, entries...)
	})
}

// LastAuditTime is the time of the audit log's last entry (zero if none):
// what a restored store last recorded.
func (db *DB) LastAuditTime() (time.Time, error) {
	var t time.Time
	err := db.kv.view(func(tx kvTx) error {
		h, err := readAuditHead(tx)
		if err != nil {
			return err
		}
		t = h.Time
		return nil
	})
	return t, err
}

// LogRecord returns the stored record seq of origin's log (nil if none).
func (db *DB) LogRecord(ctx context.Context, origin string, seq uint64) ([]byte, error) {
	var out []byte
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		if log := tx.Bucket(bucketLog).Bucket([]byte(origin)); log != nil {
			if v := log.Get(seqKey(seq)); v != nil {
				out = append([]byte(nil), v...)
			}
		}
		return nil
	})
	return out, err
}

// ReclaimOwn implements catalog.Store: it appends records of this node's
// own log, taken back from a peer after a restore, and applies them to the
// listings, as ApplyRemote does for other origins. A tombstone of a
// listing this node holds at home (its export rules keep it from peers),
// or one that says so itself (HeldAtOrigin), leaves the listing: that is
// what the tombstone meant.
func (db *DB) ReclaimOwn(ctx context.Context, origin string, recs []catalog.RemoteRecord, ev *audit.Entry) ([]catalog.RemoteRecord, error) {
	return db.applyRecords(origin, recs, ev, func(listings kvBucket, r catalog.RemoteRecord) (catalog.RemoteRecord, error) {
		if r.Listing == nil {
			if v := listings.Get([]byte(r.DeleteID)); v != nil {
				var l catalog.Listing
				if err := json.Unmarshal(v, &l); err != nil {
					return r, fmt.Errorf("listing %s: %w", r.DeleteID, err)
				}
				if len(l.Held) > 0 || r.HeldAtOrigin {
					if len(l.Held) == 0 {
						// Held by a policy installed after the backup: held
						// until the export rules are applied again.
						l.Held = []catalog.Hold{{Rule: "restore", Source: "reconciliation after a restore",
							Message: "withheld from the federation when this node last published it; the export rules in force apply when the reconciliation ends"}}
						if err := putListing(listings, &l, ""); err != nil {
							return r, err
						}
					}
					return catalog.RemoteRecord{Seq: r.Seq, Raw: r.Raw, Listing: &l}, nil
				}
			}
		}
		return r, putListing(listings, r.Listing, r.DeleteID)
	})
}
