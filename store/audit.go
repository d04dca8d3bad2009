package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/imtgt/imtgt-node/audit"
)

var (
	bucketAudit            = []byte("audit")
	bucketAuditCheckpoints = []byte("audit_checkpoints")
	bucketAuditPeers       = []byte("audit_peers")
	keyAuditHead           = []byte("audit_head")
	bucketReceipts         = []byte("receipts")
)

// Errors of witnessing a peer's checkpoint.
var (
	// ErrRewind means a peer presented a checkpoint older than one this
	// node already witnessed for it.
	ErrRewind = errors.New("checkpoint rewinds a chain this node witnessed further")
	// ErrEquivocation means a peer presented two different heads for the
	// same sequence number: its history was rewritten.
	ErrEquivocation = errors.New("checkpoint contradicts one this node witnessed")
)

// auditHead is meta/audit_head: the chain's last entry, so an append
// needs no scan. Stored as 8-byte BE seq, 8-byte BE Unix nanoseconds,
// then the hex hash.
type auditHead struct {
	Seq  uint64
	Hash string
	Time time.Time
}

func (h auditHead) bytes() []byte {
	b := binary.BigEndian.AppendUint64(nil, h.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(h.Time.UnixNano()))
	return append(b, h.Hash...)
}

func readAuditHead(tx kvTx) (auditHead, error) {
	v := tx.Bucket(bucketMeta).Get(keyAuditHead)
	if v == nil {
		return auditHead{}, nil
	}
	if len(v) < 16 {
		return auditHead{}, fmt.Errorf("meta/audit_head: %d bytes", len(v))
	}
	return auditHead{Seq: binary.BigEndian.Uint64(v), Time: time.Unix(0, int64(binary.BigEndian.Uint64(v[8:]))).UTC(), Hash: string(v[16:])}, nil
}

// appendAudit links entries onto the chain inside tx: the caller's
// transaction, so an entry exists exactly when the change it records
// does. Entries without a time get the commit's.
func (db *DB) appendAudit(tx kvTx, es ...*audit.Entry) error {
	if len(es) == 0 || db.noAudit {
		return nil
	}
	h, err := readAuditHead(tx)
	if err != nil {
		return err
	}
	b := tx.Bucket(bucketAudit)
	now := time.Now()
	for _, e := range es {
		if e.Time.IsZero() {
			e.Time = now
		}
		// Entries are in time order, so a period is one run of the chain;
		// a clock stepping back must not break that.
		if e.Time.Before(h.Time) {
			e.Time = h.Time
		}
		e.Link(h.Seq, h.Hash)
		v, err := e.MarshalBinary()
		if err != nil {
			return err
		}
		if err := b.Put(seqKey(e.Seq), v); err != nil {
			return err
		}
		h = auditHead{Seq: e.Seq, Hash: e.Hash, Time: e.Time}
	}
	return tx.Bucket(bucketMeta).Put(keyAuditHead, h.bytes())
}

// AppendAudit appends entries in a transaction of their own (shared with
// concurrent writers).
func (db *DB) AppendAudit(ctx context.Context, es ...*audit.Entry) error {
	if len(es) == 0 {
		return nil
	}
	return db.batch(func(tx kvTx) error { return db.appendAudit(tx, es...) })
}

// AuditHead returns the chain's last sequence number and hash (0, "" when
// empty).
func (db *DB) AuditHead(ctx context.Context) (uint64, string, error) {
	var h auditHead
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		var err error
		h, err = readAuditHead(tx)
		return err
	})
	return h.Seq, h.Hash, err
}

// AuditScan calls fn for every entry from seq from on, in order, until fn
// returns ErrStop or an error. It reads one consistent snapshot.
func (db *DB) AuditScan(ctx context.Context, from uint64, fn func(*audit.Entry) error) error {
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.Seek(seqKey(max(from, 1))); k != nil; k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			var e audit.Entry
			if err := e.UnmarshalBinary(v); err != nil {
				return fmt.Errorf("audit entry %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if err := fn(&e); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}

// ErrStop ends a scan early without error.
var ErrStop = errors.New("stop")

// AuditEntry returns the entry with sequence number seq, or nil.
func (db *DB) AuditEntry(ctx context.Context, seq uint64) (*audit.Entry, error) {
	var e *audit.Entry
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		v := tx.Bucket(bucketAudit).Get(seqKey(seq))
		if v == nil {
			return nil
		}
		e = &audit.Entry{}
		return e.UnmarshalBinary(v)
	})
	return e, err
}

// PutCheckpoint stores a new checkpoint of this node's chain and returns
// the one stored at its seq: a checkpoint stored there already (by another
// replica) is kept, and returned, since peers' countersignatures are of
// its exact bytes (AddWitness adds them).
func (db *DB) PutCheckpoint(ctx context.Context, cp *audit.Checkpoint) (*audit.Checkpoint, error) {
	stored := cp
	err := db.batch(func(tx kvTx) error {
		stored = cp
		b := tx.Bucket(bucketAuditCheckpoints)
		if v := b.Get(seqKey(cp.Seq)); v != nil {
			var have audit.Checkpoint
			if err := json.Unmarshal(v, &have); err != nil {
				return fmt.Errorf("audit checkpoint %d: %w", cp.Seq, err)
			}
			stored = &have
			return nil
		}
		return putJSON(b, seqKey(cp.Seq), cp)
	})
	return stored, err
}

// AddWitness adds a peer's countersignature to the checkpoint at seq (a
// witness by the same peer replaces its earlier one).
func (db *DB) AddWitness(ctx context.Context, seq uint64, w audit.Witness) error {
	return db.batch(func(tx kvTx) error {
		b := tx.Bucket(bucketAuditCheckpoints)
		v := b.Get(seqKey(seq))
		if v == nil {
			return fmt.Errorf("no checkpoint at seq %d", seq)
		}
		var cp audit.Checkpoint
		if err := json.Unmarshal(v, &cp); err != nil {
			return err
		}
		ws := cp.Witnesses[:0]
		for _, o := range cp.Witnesses {
			if o.PeerID != w.PeerID {
				ws = append(ws, o)
			}
		}
		cp.Witnesses = append(ws, w)
		return putJSON(b, seqKey(seq), &cp)
	})
}

// AuditCheckpoints returns this node's checkpoints with from ≤ seq ≤ to
// (to 0: no upper bound), in order.
func (db *DB) AuditCheckpoints(ctx context.Context, from, to uint64) ([]audit.Checkpoint, error) {
	var out []audit.Checkpoint
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		c := tx.Bucket(bucketAuditCheckpoints).Cursor()
		for k, v := c.Seek(seqKey(from)); k != nil; k, v = c.Next() {
			var cp audit.Checkpoint
			if err := json.Unmarshal(v, &cp); err != nil {
				return err
			}
			if to != 0 && cp.Seq > to {
				break
			}
			out = append(out, cp)
		}
		return nil
	})
	return out, err
}

// LastCheckpoint returns this node's latest checkpoint, or nil.
func (db *DB) LastCheckpoint(ctx context.Context) (*audit.Checkpoint, error) {
	var cp *audit.Checkpoint
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		_, v := tx.Bucket(bucketAuditCheckpoints).Cursor().Last()
		if v == nil {
			return nil
		}
		cp = &audit.Checkpoint{}
		return json.Unmarshal(v, cp)
	})
	return cp, err
}

// WitnessPeer records a peer's checkpoint this node is about to
// countersign, refusing one that goes back on what it witnessed before:
// an older seq (ErrRewind) or another head at the same seq
// (ErrEquivocation).
func (db *DB) WitnessPeer(ctx context.Context, country string, cp *audit.Checkpoint) error {
	return db.batch(func(tx kvTx) error {
		b := tx.Bucket(bucketAuditPeers)
		if v := b.Get([]byte(country)); v != nil {
			var last audit.Checkpoint
			if err := json.Unmarshal(v, &last); err != nil {
				return err
			}
			switch {
			case cp.Seq < last.Seq:
				return fmt.Errorf("%w: %s presented seq %d after seq %d", ErrRewind, country, cp.Seq, last.Seq)
			case cp.Seq == last.Seq && cp.Head != last.Head:
				return fmt.Errorf("%w: %s presented two heads for seq %d", ErrEquivocation, country, cp.Seq)
			}
		}
		return putJSON(b, []byte(country), cp)
	})
}

// PeerCheckpoints returns the last checkpoint this node witnessed for
// each peer country.
func (db *DB) PeerCheckpoints(ctx context.Context) (map[string]audit.Checkpoint, error) {
	out := map[string]audit.Checkpoint{}
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		return tx.Bucket(bucketAuditPeers).ForEach(func(k, v []byte) error {
			var cp audit.Checkpoint
			if err := json.Unmarshal(v, &cp); err != nil {
				return err
			}
			out[string(k)] = cp
			return nil
		})
	})
	return out, err
}
