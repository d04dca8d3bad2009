package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/orders"
	"github.com/imtgt/imtgt-node/sellers"
)

// A damaged file must be refused with an error, never a crash. bbolt reads
// its file through mmap and trusts what it reads: pages past the end of a
// truncated file fault (SIGBUS/SIGSEGV) and a scrambled page trips one of
// its assertions (a panic). So Open (1) reads the two meta pages itself,
// with ordinary reads, and refuses a file shorter than the pages they
// describe before anything is mapped; (2) opens and walks the file in a
// guard that turns panics, and faults (debug.SetPanicOnFault), into
// ErrCorrupt.

var (
	// ErrCorrupt means the store file is damaged: cut short, overwritten,
	// or not a bbolt file. It must be restored from a backup.
	ErrCorrupt = errors.New("the store is damaged")
	// ErrWrongDataKey means the data key is not the one the store's
	// personal fields are sealed with.
	ErrWrongDataKey = errors.New("the data key does not match the store")
)

// CorruptError names the damaged file and what is wrong with it.
type CorruptError struct {
	Path   string
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("store %s is damaged: %s", e.Path, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

func corrupt(path, format string, args ...any) error {
	reason := fmt.Sprintf(format, args...)
	// One line: it ends up as the single line "run" prints.
	reason = strings.Join(strings.Fields(reason), " ")
	return &CorruptError{Path: path, Reason: reason}
}

// guard runs fn, turning a panic, or a memory fault reading the mapped
// file, into ErrCorrupt. Faults become panics only in this goroutine, and
// only while fn runs.
func guard(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = corrupt(path, "reading it failed: %v", r)
		}
	}()
	return fn()
}

// The on-disk layout of a bbolt meta page (go.etcd.io/bbolt
// internal/common): a 16-byte page header (id, flags, count, overflow),
// then magic, version, page size, flags (4 bytes each), the root bucket
// (root page id, sequence), the freelist page id, the high water mark
// (pgid: pages in use), the txid and an FNV-64a checksum of everything
// from magic to txid. Fields are in the machine's byte order.
const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	boltPageHeader   = 16
	boltMetaSize     = 64
	boltMetaPageFlag = 0x04
	boltNoFreelist   = ^uint64(0)
)

// fileMeta is what the preflight check needs of a meta page.
type fileMeta struct {
	PageSize uint32
	Root     uint64
	Freelist uint64
	Pgid     uint64
	Txid     uint64
}

// Errors of decodeMeta.
var (
	errMetaShort    = errors.New("too short for a meta page")
	errMetaMagic    = errors.New("not a bbolt meta page (bad magic)")
	errMetaVersion  = errors.New("unsupported bbolt file version")
	errMetaChecksum = errors.New("meta page checksum mismatch")
	errMetaFields   = errors.New("meta page fields out of range")
)

// decodeMeta decodes the meta page at the start of b. Only a meta page
// whose checksum matches is returned, as bbolt itself would.
func decodeMeta(b []byte) (fileMeta, error) {
	if len(b) < boltPageHeader+boltMetaSize {
		return fileMeta{}, errMetaShort
	}
	o := binary.NativeEndian
	m := b[boltPageHeader : boltPageHeader+boltMetaSize]
	if o.Uint32(m[0:]) != boltMagic {
		return fileMeta{}, errMetaMagic
	}
	if o.Uint32(m[4:]) != boltVersion {
		return fileMeta{}, errMetaVersion
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if h.Sum64() != o.Uint64(m[56:]) {
		return fileMeta{}, errMetaChecksum
	}
	fm := fileMeta{PageSize: o.Uint32(m[8:]), Root: o.Uint64(m[16:]), Freelist: o.Uint64(m[32:]), Pgid: o.Uint64(m[40:]), Txid: o.Uint64(m[48:])}
	if fm.PageSize < 512 || fm.PageSize > 1<<20 || fm.PageSize&(fm.PageSize-1) != 0 {
		return fileMeta{}, fmt.Errorf("%w: page size %d", errMetaFields, fm.PageSize)
	}
	if fm.Pgid < 2 || fm.Root < 2 || fm.Root >= fm.Pgid || (fm.Freelist != boltNoFreelist && (fm.Freelist < 2 || fm.Freelist >= fm.Pgid)) {
		return fileMeta{}, fmt.Errorf("%w: root %d, freelist %d, %d pages", errMetaFields, fm.Root, fm.Freelist, fm.Pgid)
	}
	return fm, nil
}

// preflight checks the file at path before bbolt maps it: at least one
// valid meta page, and the file as long as the pages the valid metas
// describe. A missing or empty file is a new store.
func preflight(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	size := fi.Size()
	if size == 0 {
		return nil
	}
	readMeta := func(off int64) (fileMeta, error) {
		buf := make([]byte, boltPageHeader+boltMetaSize)
		n, err := f.ReadAt(buf, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return fileMeta{}, err
		}
		return decodeMeta(buf[:n])
	}
	var metas []fileMeta
	m0, err0 := readMeta(0)
	if err0 == nil {
		metas = append(metas, m0)
		if m1, err := readMeta(int64(m0.PageSize)); err == nil {
			metas = append(metas, m1)
		}
	} else {
		// Meta 0 is gone: find meta 1 the way bbolt does, at each page
		// size it may have.
		for ps := int64(1024); ps <= 1<<16; ps *= 2 {
			if m1, err := readMeta(ps); err == nil && int64(m1.PageSize) == ps {
				metas = append(metas, m1)
				break
			}
		}
	}
	if len(metas) == 0 {
		return corrupt(path, "neither of its two bbolt meta pages is valid (%v), so it is not a store or its first pages were overwritten", err0)
	}
	for _, m := range metas {
		if m.Pgid > uint64(size)/uint64(m.PageSize) {
			return corrupt(path, "the file is %d bytes but its pages run to %d bytes: it was cut short", size, m.Pgid*uint64(m.PageSize))
		}
	}
	return nil
}

// walk reads every key and value of every bucket, so that a damaged page
// anywhere in the tree trips here, inside the guard, and not later in a
// request. Touching the first and last byte of each value brings every
// page a value spans into play.
func walk(tx kvTx) error {
	var sink byte
	var visit func(path string, b kvBucket) error
	visit = func(path string, b kvBucket) error {
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			sink ^= k[0] ^ k[len(k)-1]
			if v == nil {
				sub := b.Bucket(k)
				if sub == nil {
					return fmt.Errorf("bucket %s: key %q has no value and is not a bucket", path, k)
				}
				if err := visit(path+"/"+string(k), sub); err != nil {
					return err
				}
				continue
			}
			if len(v) > 0 {
				sink ^= v[0] ^ v[len(v)-1]
			}
		}
		return nil
	}
	err := tx.ForEachBucket(func(name []byte, b kvBucket) error { return visit(string(name), b) })
	_ = sink
	return err
}

// Opener opens sealed personal fields (keys.DataKey).
type Opener interface {
	Open(sealed, aad []byte) ([]byte, error)
}

var keyDataKeyFingerprint = []byte("data_key_fingerprint")

// DataKeyFingerprint returns meta/data_key_fingerprint ("" if none yet).
func (db *DB) DataKeyFingerprint() (string, error) {
	v, err := db.value(bucketMeta, keyDataKeyFingerprint)
	return string(v), err
}

// VerifyDataKey checks that key, whose fingerprint is fingerprint, is the
// key the store's personal fields are sealed with. A store without a
// recorded fingerprint (a new one, or one written before fingerprints)
// gets this one, unless it already holds a sealed record the key cannot
// open; a read-only store is only checked.
func (db *DB) VerifyDataKey(fingerprint string, key Opener) error {
	check := func(tx kvTx) (record bool, err error) {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return false, ErrNotInitialised
		}
		if have := meta.Get(keyDataKeyFingerprint); have != nil {
			if string(have) != fingerprint {
				return false, fmt.Errorf("%w: the store's personal fields are sealed under the key with fingerprint %.16s…, this key's is %.16s…", ErrWrongDataKey, have, fingerprint)
			}
			return false, nil
		}
		id, sealed, err := firstSealed(tx)
		if err != nil {
			return false, err
		}
		if sealed != nil {
			if _, err := key.Open(sealed, []byte(id)); err != nil {
				return false, fmt.Errorf("%w: it cannot open the sealed personal fields of %s", ErrWrongDataKey, id)
			}
		}
		return true, nil
	}
	if db.readOnly {
		return db.kv.view(func(tx kvTx) error { _, err := check(tx); return err })
	}
	var record bool
	err := db.kv.view(func(tx kvTx) (err error) { record, err = check(tx); return err })
	if err != nil || !record {
		return err
	}
	return db.kv.update(func(tx kvTx) error {
		if _, err := check(tx); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyDataKeyFingerprint, []byte(fingerprint))
	})
}

// firstSealed returns one sealed record (a seller, else an order) with its
// ID, or nil if the store holds none.
func firstSealed(tx kvTx) (string, []byte, error) {
	var id string
	var sealed []byte
	err := tx.Bucket(bucketSellers).ForEach(func(k, v []byte) error {
		var r sellers.Record
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("seller %s: %w", k, err)
		}
		if len(r.Sealed) > 0 {
			id, sealed = r.ID, r.Sealed
			return ErrStop
		}
		return nil
	})
	if err == nil {
		err = tx.Bucket(bucketOrders).ForEach(func(k, v []byte) error {
			var o orders.Order
			if err := json.Unmarshal(v, &o); err != nil {
				return fmt.Errorf("order %s: %w", k, err)
			}
			if len(o.Sealed) > 0 {
				id, sealed = o.ID, o.Sealed
				return ErrStop
			}
			return nil
		})
	}
	if errors.Is(err, ErrStop) {
		err = nil
	}
	return id, sealed, err
}

// CheckReport is what Check found.
type CheckReport struct {
	Path          string
	Bytes         int64
	SchemaVersion int
	// Counts of what was checked: "listings", "sellers", "orders",
	// "audit entries", "log records".
	Counts map[string]int
	// Problems, each naming what is wrong and where; empty when the store
	// is consistent.
	Problems []string
	// More counts problems found beyond the listed ones.
	More int
}

// maxProblems bounds the report: a badly damaged store has thousands.
const maxProblems = 50

func (r *CheckReport) problem(format string, args ...any) {
	if len(r.Problems) >= maxProblems {
		r.More++
		return
	}
	r.Problems = append(r.Problems, strings.Join(strings.Fields(fmt.Sprintf(format, args...)), " "))
}

// OK says the check found nothing wrong.
func (r *CheckReport) OK() bool { return len(r.Problems) == 0 && r.More == 0 }

// Check runs the full consistency check of the store: bbolt's own
// (tx.Check: every page reachable or free, none twice, keys in order), a
// read of every key and value, then the node's invariants: the schema
// version, meta/node, every listing, seller and order decodes under its
// key, each origin's catalog log is gap-free from 1 to its head, and the
// audit chain links and hashes verify up to meta/audit_head. With key
// (the data key) set, every sealed record must also open with it.
func (db *DB) Check(ctx context.Context, key Opener) *CheckReport {
	r := &CheckReport{Path: db.path, Counts: map[string]int{}}
	if db.bolt == nil {
		// PostgreSQL checks its own pages; the node's invariants are ours.
		if err := db.kv.viewCtx(ctx, func(tx kvTx) error {
			checkInvariants(ctx, tx, r, key)
			return nil
		}); err != nil {
			r.problem("%v", err)
		}
		return r
	}
	err := guard(db.path, func() error {
		return db.bolt.View(func(btx *bolt.Tx) error {
			r.Bytes = btx.Size()
			for err := range btx.Check() {
				r.problem("bbolt: %v", err)
			}
			tx := boltTx{btx}
			if err := walk(tx); err != nil {
				r.problem("%v", err)
				return nil
			}
			checkInvariants(ctx, tx, r, key)
			return nil
		})
	})
	if err != nil {
		r.problem("%v", err)
	}
	return r
}

func checkInvariants(ctx context.Context, tx kvTx, r *CheckReport, key Opener) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		r.problem("no meta bucket: not an imtgt-node store")
		return
	}
	v, err := strconv.Atoi(string(meta.Get(keySchemaVersion)))
	switch {
	case err != nil:
		r.problem("meta/schema_version %q is not a number", meta.Get(keySchemaVersion))
	case v > SchemaVersion:
		r.problem("meta/schema_version %d is newer than this binary's %d", v, SchemaVersion)
	}
	r.SchemaVersion = v
	var nm NodeMeta
	if raw := meta.Get(keyNode); raw == nil {
		r.problem("meta/node is missing: the store does not say which node it belongs to")
	} else if err := json.Unmarshal(raw, &nm); err != nil || nm.Country == "" || nm.NodePublicKey == "" {
		r.problem("meta/node does not decode to a country and node key")
	}
	for _, b := range allBuckets {
		if tx.Bucket(b) == nil {
			r.problem("bucket %s is missing", b)
		}
	}
	if ctx.Err() != nil || !r.OK() {
		return
	}
	checkRecords(tx, r, key)
	checkLogs(tx, r)
	checkAuditChain(tx, r)
}

// checkRecords decodes every listing, seller and order.
func checkRecords(tx kvTx, r *CheckReport, key Opener) {
	_ = tx.Bucket(bucketListings).ForEach(func(k, v []byte) error {
		r.Counts["listings"]++
		var l catalog.Listing
		if err := json.Unmarshal(v, &l); err != nil {
			r.problem("listings/%q does not decode: %v", k, err)
		} else if l.ID != string(k) {
			r.problem("listings/%q holds listing %q", k, l.ID)
		}
		return nil
	})
	byBID := tx.Bucket(bucketSellersByBID)
	_ = tx.Bucket(bucketSellers).ForEach(func(k, v []byte) error {
		r.Counts["sellers"]++
		var s sellers.Record
		if err := json.Unmarshal(v, &s); err != nil {
			r.problem("sellers/%q does not decode: %v", k, err)
			return nil
		}
		if s.ID != string(k) {
			r.problem("sellers/%q holds seller %q", k, s.ID)
		}
		if got := byBID.Get([]byte(s.BusinessID)); !bytes.Equal(got, k) {
			r.problem("sellers_by_business_id does not point to seller %s", k)
		}
		if key != nil && len(s.Sealed) > 0 {
			if _, err := key.Open(s.Sealed, []byte(s.ID)); err != nil {
				r.problem("seller %s: its sealed personal fields do not open with the data key", k)
			}
		}
		return nil
	})
	_ = tx.Bucket(bucketOrders).ForEach(func(k, v []byte) error {
		r.Counts["orders"]++
		var o orders.Order
		if err := json.Unmarshal(v, &o); err != nil {
			r.problem("orders/%q does not decode: %v", k, err)
			return nil
		}
		if o.ID != string(k) {
			r.problem("orders/%q holds order %q", k, o.ID)
		}
		if key != nil && len(o.Sealed) > 0 {
			if _, err := key.Open(o.Sealed, []byte(o.ID)); err != nil {
				r.problem("order %s: its sealed personal fields do not open with the data key", k)
			}
		}
		return nil
	})
}

// checkLogs checks each origin's catalog log is numbered 1..head.
func checkLogs(tx kvTx, r *CheckReport) {
	logs := tx.Bucket(bucketLog)
	_ = logs.ForEachBucket(func(origin []byte) error {
		var want uint64 = 1
		_ = logs.Bucket(origin).ForEach(func(k, v []byte) error {
			r.Counts["log records"]++
			if len(k) != 8 {
				r.problem("log/%s: key %x is not a sequence number", origin, k)
				return nil
			}
			if seq := binary.BigEndian.Uint64(k); seq != want {
				r.problem("log/%s: record %d follows %d (a gap in the catalog log)", origin, seq, want-1)
				want = seq
			}
			if len(v) == 0 {
				r.problem("log/%s: record %d is empty", origin, want)
			}
			want++
			return nil
		})
		return nil
	})
}

// checkAuditChain verifies the audit chain's links and hashes, and that
// meta/audit_head names its last entry.
func checkAuditChain(tx kvTx, r *CheckReport) {
	var prevSeq uint64
	var prevHash string
	broken := false
	_ = tx.Bucket(bucketAudit).ForEach(func(k, v []byte) error {
		r.Counts["audit entries"]++
		var e audit.Entry
		if err := e.UnmarshalBinary(v); err != nil {
			r.problem("audit entry %x: %v", k, err)
			broken = true
			return nil
		}
		if len(k) != 8 || binary.BigEndian.Uint64(k) != e.Seq {
			r.problem("audit entry %d is stored under key %x", e.Seq, k)
		}
		if err := e.Follows(prevSeq, prevHash); err != nil && !broken {
			r.problem("audit chain: %v", err)
			broken = true // one break is enough to name; the rest follows from it
		}
		prevSeq, prevHash = e.Seq, e.Hash
		return nil
	})
	h, err := readAuditHead(tx)
	if err != nil {
		r.problem("%v", err)
		return
	}
	if h.Seq != prevSeq || h.Hash != prevHash {
		r.problem("meta/audit_head names entry %d (%.12s…) but the chain ends at entry %d (%.12s…)", h.Seq, h.Hash, prevSeq, prevHash)
	}
}
