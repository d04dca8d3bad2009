package store

// The bucket tree. Keys and values are bytes; values are JSON unless noted.
//
//	meta/
//	  schema_version            decimal string, currently "3"
//	  node                      {"country", "node_public_key", "created_at"}
//	  audit_head                the audit chain's last entry: seq, time (8-byte BE each), hex hash
//	  data_key_fingerprint      hex HMAC-SHA256(data key, "imtgt data key fingerprint v1")
//	tokens/
//	  <sha256 hex of token>     access.Principal {"role", "subject", "created_at"}
//	sellers/
//	  <seller id>               sellers.Record (personal fields sealed)
//	sellers_by_business_id/
//	  <business id>             seller id (uniqueness of business IDs)
//	listings/
//	  <listing id>              catalog.Listing (local and federated)
//	listing_keys/               (made by the first keyed listing write)
//	  <seller id> NUL <Idempotency-Key>   {"hash", "created_at", "outcome": {"listing"} | {"report"}}
//	federation/
//	  manifest                  the installed membership manifest, its exact signed YAML
//	  federation_key_sealed     PostgreSQL only: swarm.key sealed with the data key (AAD "federation key")
//	  manifests/
//	    <version, 8-byte BE>    every manifest installed: install time (8-byte BE Unix ns), then
//	                            its exact YAML (what was in force when; see manifests.go)
//	marketplaces/
//	  <marketplace id>          store.Marketplace
//	auditors/
//	  <auditor id>              store.Auditor (its token is in tokens/, role auditor)
//	orders/
//	  <order id>                orders.Order (personal fields sealed)
//	issues/
//	  <issue id>                the ID of the order holding the issue (orders.Order.Issues)
//	order_keys/
//	  <marketplace id> NUL <Idempotency-Key>   {"hash", "orders": [ids]}
//	outbox/
//	  <dest country>/
//	    <seq, 8-byte BE>        orders.OutboxRow waiting for delivery (no payload)
//	outbox_payloads/
//	  <dest country>/
//	    <seq, 8-byte BE>        the row's payload, deterministic protobuf
//	inbox/
//	  <origin> NUL <order id> NUL <kind> NUL <seq>   orders.InboxEntry (hash, receipt)
//	policy/
//	  current                   the installed signed policy file, exact bytes
//	  versions/
//	    <version, 8-byte BE>    every policy ever installed (what was in force when)
//	peer_policies/              (created on the first save)
//	  <country>/
//	    <version, 8-byte BE>    each member's signed policy file, exact bytes;
//	                            the highest version is current
//	log/
//	  <origin country>/         one append-only catalog log per origin
//	    <seq, 8-byte big-endian> the origin-signed record envelope, as received
//	receipts/
//	  <dest> NUL <order id> NUL <kind> NUL <seq>   a peer's signed receipt
//	                            envelope (raw) for a message this node sent
//	audit/
//	  <seq, 8-byte BE>          audit.Entry (MarshalBinary: compact fields + hash), hash-chained; appended in the same
//	                            transaction as the change it records
//	audit_checkpoints/
//	  <seq, 8-byte BE>          audit.Checkpoint of this node's chain, signed,
//	                            with the peers' countersignatures
//	audit_peers/
//	  <country>                 the last checkpoint of that peer this node
//	                            countersigned (a rewind or a second head is refused)
//
// Every write that acknowledges something to a user is committed with
// fsync before the acknowledgement. Single writes that arrive in bursts
// (registrations, single listings) go through DB.Batch, so concurrent
// requests share one commit.
//
// On PostgreSQL (OpenURL, pgkv.go) the same tree is the table kv (bucket,
// key, value): bucket is the path of names joined by 0x00 ('' the root),
// a nested bucket a row of its parent with a NULL value; kv_seq holds the
// buckets' sequences, changes the change feed, leases the federation
// lease (migrations/*.sql). Write transactions take one advisory lock.

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	bolt "go.etcd.io/bbolt"

	"github.com/imtgt/imtgt-node/access"
	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/sellers"
)

// SchemaVersion is the version of the bucket tree this code writes.
const SchemaVersion = 3

var (
	bucketMeta         = []byte("meta")
	bucketTokens       = []byte("tokens")
	bucketSellers      = []byte("sellers")
	bucketSellersByBID = []byte("sellers_by_business_id")
	bucketListings     = []byte("listings")
	bucketLog          = []byte("log")
	bucketFederation   = []byte("federation")
	keyManifest        = []byte("manifest")
	bucketPolicy       = []byte("policy")
	bucketOrders       = []byte("orders")
	bucketOrderKeys    = []byte("order_keys")
	bucketOutbox       = []byte("outbox")
	bucketInbox        = []byte("inbox")
	bucketVersions     = []byte("versions")
	keyCurrent         = []byte("current")

	keySchemaVersion = []byte("schema_version")
	keyNode          = []byte("node")

	allBuckets = [][]byte{bucketMeta, bucketTokens, bucketSellers, bucketSellersByBID, bucketListings, bucketLog, bucketFederation, bucketPolicy, bucketOrders, bucketOrderKeys, bucketOutbox, bucketInbox, bucketMarketplaces,
		bucketAudit, bucketAuditCheckpoints, bucketAuditPeers, bucketReceipts, bucketAuditors, bucketIssues}
)

// Errors.
var (
	// ErrLocked means another process (a running node) holds the database.
	ErrLocked = errors.New("the store is in use by another process (is the node running?)")
	// ErrNewerSchema means the file was written by a newer imtgt-node.
	ErrNewerSchema = errors.New("store was written by a newer imtgt-node")
	// ErrNotInitialised means the file has no meta bucket: not a node store.
	ErrNotInitialised = errors.New("not an imtgt-node store")
)

// NodeMeta identifies the node a store belongs to, so that a backup of one
// node cannot be restored into another by mistake.
type NodeMeta struct {
	Country       string    `json:"country"`
	NodePublicKey string    `json:"node_public_key"` // hex Ed25519
	CreatedAt     time.Time `json:"created_at"`
}

// DB is an open node store.
type DB struct {
	// kv runs the transactions (boltKV or the PostgreSQL backend); bolt is
	// the bbolt file for what only bbolt has (its size, a physical copy, a
	// page check), nil on PostgreSQL.
	kv   backend
	bolt *bolt.DB
	// pool is the PostgreSQL pool (the change feed, the lease), nil on
	// bbolt.
	pool *pgxpool.Pool
	path string
	gc   groupCommit
	// noAudit: see Options.NoAudit.
	noAudit    bool
	readOnly   bool
	verifyTook time.Duration
	// full is set while writes fail for want of disk space (space.go).
	full spaceFlag
}

// Options for Open.
type Options struct {
	// LockTimeout is how long Open waits for another process's file lock.
	// Zero means DefaultLockTimeout.
	LockTimeout time.Duration
	// ReadOnly opens the file without taking the write lock.
	ReadOnly bool
	// NoAudit writes no audit entries. Only benchmarks set it, to measure
	// what auditing costs against the same run without it; a node always
	// audits.
	NoAudit bool
	// NoVerify skips reading the whole file at open. Only a caller that
	// runs Check right after sets it: Check reports every problem, where
	// the open-time read stops at the first.
	NoVerify bool
}

// DefaultLockTimeout is how long Open waits for the file lock.
const DefaultLockTimeout = time.Second

// Open opens (and if new, creates) the store at path, checks it, and
// upgrades its schema. A damaged file (cut short, overwritten, not a
// bbolt file) is refused with a *CorruptError (ErrCorrupt), never a crash;
// see check.go.
func Open(path string, opts Options) (*DB, error) {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if err := preflight(path); err != nil {
		return nil, err
	}
	var bdb *bolt.DB
	err := guard(path, func() (err error) {
		// The freelist is read at open even read-only, inside the guard.
		bdb, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, ReadOnly: opts.ReadOnly, PreLoadFreelist: true})
		return err
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
	}
	if errors.Is(err, bolt.ErrInvalid) || errors.Is(err, bolt.ErrVersionMismatch) || errors.Is(err, bolt.ErrChecksum) {
		return nil, corrupt(path, "%v", err)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db := &DB{kv: boltKV{bdb}, bolt: bdb, path: path, noAudit: opts.NoAudit, readOnly: opts.ReadOnly}
	if !opts.NoVerify {
		start := time.Now()
		err := guard(path, func() error { return db.kv.view(walk) })
		if err != nil {
			bdb.Close()
			if !errors.Is(err, ErrCorrupt) {
				err = corrupt(path, "%v", err)
			}
			return nil, err
		}
		db.verifyTook = time.Since(start)
	}
	if !opts.ReadOnly {
		if err := guard(path, db.upgrade); err != nil {
			bdb.Close()
			return nil, err
		}
	}
	return db, nil
}

// VerifyTook is how long Open's read of the whole file took (zero with
// Options.NoVerify), for the start-up log.
func (db *DB) VerifyTook() time.Duration { return db.verifyTook }

// upgrade creates the bucket tree of a new store, or brings an older one up
// to SchemaVersion. There is one version so far; the switch is where the
// next one goes.
func (db *DB) upgrade() error {
	return db.kv.update(func(tx kvTx) error {
		meta := tx.Bucket(bucketMeta)
		version := 0
		if meta != nil {
			v, err := strconv.Atoi(string(meta.Get(keySchemaVersion)))
			if err != nil {
				return fmt.Errorf("meta/schema_version %q: %w", meta.Get(keySchemaVersion), err)
			}
			version = v
		}
		if version > SchemaVersion {
			return fmt.Errorf("%w: schema version %d, this binary knows up to %d", ErrNewerSchema, version, SchemaVersion)
		}
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		// version 0 -> 1: the buckets above; 1 -> 2: the audit buckets
		// (a version 1 binary would write changes without their audit
		// entries, so it must refuse a version 2 store); 2 -> 3: orders
		// hold after-sale issues, indexed in issues/ (a version 2 binary
		// would rewrite an order without its issues).
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, []byte(strconv.Itoa(SchemaVersion)))
	})
}

// Close closes the database file.
func (db *DB) Close() error { return db.kv.close() }

// Path is the database file's path.
func (db *DB) Path() string { return db.path }

// SchemaVersion reads meta/schema_version.
func (db *DB) SchemaVersion() (int, error) {
	var v int
	err := db.kv.view(func(tx kvTx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return ErrNotInitialised
		}
		var err error
		v, err = strconv.Atoi(string(meta.Get(keySchemaVersion)))
		return err
	})
	return v, err
}

// SetNodeMeta records which node the store belongs to (at init).
func (db *DB) SetNodeMeta(m NodeMeta) error {
	return db.kv.update(func(tx kvTx) error { return putJSON(tx.Bucket(bucketMeta), keyNode, m) })
}

// NodeMeta reads which node the store belongs to.
func (db *DB) NodeMeta() (NodeMeta, error) {
	var m NodeMeta
	err := db.kv.view(func(tx kvTx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil || meta.Get(keyNode) == nil {
			return ErrNotInitialised
		}
		return json.Unmarshal(meta.Get(keyNode), &m)
	})
	return m, err
}

// Size is the size of the database file in bytes as of a consistent read
// (0 on PostgreSQL, whose size is the database server's business).
func (db *DB) Size() int64 {
	if db.bolt == nil {
		return 0
	}
	var n int64
	_ = db.bolt.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

// ErrNoBackup is Backup on PostgreSQL: the database server's own tools
// (pg_dump, base backups and WAL) back it up; docs/OPERATIONS.md.
var ErrNoBackup = errors.New("a PostgreSQL store is backed up with pg_dump or base backups and WAL archiving (docs/OPERATIONS.md), not by the node")

// Backup writes a consistent copy of the whole database to w while the
// node keeps serving (a read transaction sees one snapshot). If onSize is
// not nil it is called first with the exact number of bytes that follow,
// so an HTTP reply can carry a Content-Length.
func (db *DB) Backup(w io.Writer, onSize func(int64)) (int64, error) {
	if db.bolt == nil {
		return 0, ErrNoBackup
	}
	var n int64
	err := db.bolt.View(func(tx *bolt.Tx) error {
		if onSize != nil {
			onSize(tx.Size())
		}
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

func putJSON(b kvBucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Put(key, data)
}

// --- federation ---

// SaveManifest stores the installed manifest's exact bytes, and keeps
// them in the history of versions, in one transaction.
func (db *DB) SaveManifest(raw []byte, entries ...*audit.Entry) error {
	return db.kv.update(func(tx kvTx) error {
		if err := db.appendAudit(tx, entries...); err != nil {
			return err
		}
		return putManifest(tx, raw, installTime(entries))
	})
}

// keyFederationKey holds the federation key (swarm.key), sealed with the
// node's data key, on a store replicas share: a manifest installed through
// one replica reaches the others through the store, and so must its key.
var keyFederationKey = []byte("federation_key_sealed")

// SaveFederationKey stores the sealed federation key.
func (db *DB) SaveFederationKey(sealed []byte) error {
	return db.kv.update(func(tx kvTx) error { return tx.Bucket(bucketFederation).Put(keyFederationKey, sealed) })
}

// FederationKey returns the sealed federation key, or nil.
func (db *DB) FederationKey() ([]byte, error) {
	return db.value(bucketFederation, keyFederationKey)
}

// Manifest returns the installed manifest's bytes, or nil.
func (db *DB) Manifest() ([]byte, error) {
	return db.value(bucketFederation, keyManifest)
}

// value returns a copy of the value of key in a top-level bucket, or nil.
func (db *DB) value(bucket, key []byte) ([]byte, error) {
	var raw []byte
	err := db.kv.view(func(tx kvTx) error {
		if v := tx.Bucket(bucket).Get(key); v != nil {
			raw = append([]byte(nil), v...)
		}
		return nil
	})
	return raw, err
}

// --- policy ---

// SavePolicy installs a policy file as current and keeps it in the history
// under its version, in one transaction.
func (db *DB) SavePolicy(raw []byte, version uint64, entries ...*audit.Entry) error {
	return db.kv.update(func(tx kvTx) error {
		if err := db.appendAudit(tx, entries...); err != nil {
			return err
		}
		b := tx.Bucket(bucketPolicy)
		versions, err := b.CreateBucketIfNotExists(bucketVersions)
		if err != nil {
			return err
		}
		if err := versions.Put(seqKey(version), raw); err != nil {
			return err
		}
		return b.Put(keyCurrent, raw)
	})
}

// PolicyVersions returns every policy file ever installed, by version.
func (db *DB) PolicyVersions() (map[uint64][]byte, error) {
	out := map[uint64][]byte{}
	err := db.kv.view(func(tx kvTx) error {
		vs := tx.Bucket(bucketPolicy).Bucket(bucketVersions)
		if vs == nil {
			return nil
		}
		return vs.ForEach(func(k, v []byte) error {
			out[binary.BigEndian.Uint64(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	return out, err
}

// AtRest counts what the store keeps: sellers, this node's own listings,
// other members' listings (replicas) and orders.
func (db *DB) AtRest(country string) (sellers, own, replicas, orders int, err error) {
	err = db.kv.view(func(tx kvTx) error {
		sellers = tx.Bucket(bucketSellers).KeyN()
		orders = tx.Bucket(bucketOrders).KeyN()
		return tx.Bucket(bucketListings).ForEach(func(k, v []byte) error {
			var l struct {
				Origin string `json:"origin"`
			}
			if err := json.Unmarshal(v, &l); err != nil {
				return err
			}
			if l.Origin == country {
				own++
			} else {
				replicas++
			}
			return nil
		})
	})
	return
}

// Policy returns the installed policy file, or nil.
func (db *DB) Policy() ([]byte, error) {
	return db.value(bucketPolicy, keyCurrent)
}

// --- tokens ---

// PutToken stores a token hash for a principal.
func (db *DB) PutToken(ctx context.Context, hash string, p access.Principal) error {
	return db.kv.updateCtx(ctx, func(tx kvTx) error { return putJSON(tx.Bucket(bucketTokens), []byte(hash), p) })
}

// Principal looks up a token hash.
func (db *DB) Principal(ctx context.Context, hash string) (access.Principal, error) {
	var p access.Principal
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		v := tx.Bucket(bucketTokens).Get([]byte(hash))
		if v == nil {
			return access.ErrUnknownToken
		}
		return json.Unmarshal(v, &p)
	})
	return p, err
}

// --- sellers (sellers.Store) ---

// CreateSeller implements sellers.Store.
func (db *DB) CreateSeller(ctx context.Context, rec *sellers.Record, tokenHash string, p access.Principal) error {
	return db.batch(func(tx kvTx) error {
		byBID := tx.Bucket(bucketSellersByBID)
		if byBID.Get([]byte(rec.BusinessID)) != nil {
			return sellers.ErrDuplicate
		}
		if err := putJSON(tx.Bucket(bucketSellers), []byte(rec.ID), rec); err != nil {
			return err
		}
		if err := byBID.Put([]byte(rec.BusinessID), []byte(rec.ID)); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketTokens), []byte(tokenHash), p)
	})
}

// Seller implements sellers.Store.
func (db *DB) Seller(ctx context.Context, id string) (*sellers.Record, error) {
	var rec sellers.Record
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		v := tx.Bucket(bucketSellers).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("%w: %s", sellers.ErrNotFound, id)
		}
		return json.Unmarshal(v, &rec)
	})
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

// UpdateSeller implements sellers.Store.
func (db *DB) UpdateSeller(ctx context.Context, id string, fn func(*sellers.Record) error) (*sellers.Record, error) {
	var rec sellers.Record
	err := db.kv.updateCtx(ctx, func(tx kvTx) error {
		b := tx.Bucket(bucketSellers)
		v := b.Get([]byte(id))
		if v == nil {
			return fmt.Errorf("%w: %s", sellers.ErrNotFound, id)
		}
		if err := json.Unmarshal(v, &rec); err != nil {
			return err
		}
		if err := fn(&rec); err != nil {
			return err
		}
		return putJSON(b, []byte(id), &rec)
	})
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

// Sellers implements sellers.Store.
func (db *DB) Sellers(ctx context.Context, status sellers.Status, after string, limit int) ([]*sellers.Record, error) {
	var out []*sellers.Record
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		c := tx.Bucket(bucketSellers).Cursor()
		for k, v := seekAfter(c, after); k != nil && len(out) < limit; k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			var rec sellers.Record
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("seller %s: %w", k, err)
			}
			if status != "" && rec.Status != status {
				continue
			}
			out = append(out, &rec)
		}
		return nil
	})
	return out, err
}

// seekAfter positions c at the first key after the key after ("": the
// first key), for listing a bucket a page at a time.
func seekAfter(c kvCursor, after string) (k, v []byte) {
	if after == "" {
		return c.First()
	}
	k, v = c.Seek([]byte(after))
	if k != nil && string(k) == after {
		return c.Next()
	}
	return k, v
}

// --- listings and catalog logs (catalog.Store) ---

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

func logHead(b kvBucket) uint64 {
	if b == nil {
		return 0
	}
	k, _ := b.Cursor().Last()
	if k == nil {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

// ApplyLocal implements catalog.Store. One change goes through Batch so
// that concurrent single writes share a commit; many (a bulk import) are one
// transaction of their own.
func (db *DB) ApplyLocal(ctx context.Context, origin string, changes []catalog.Change, seal catalog.SealFunc) error {
	apply := func(tx kvTx) error { return applyLocal(tx, origin, changes, seal) }
	if len(changes) == 1 {
		return db.batch(apply)
	}
	return db.noted(db.kv.updateCtx(ctx, apply))
}

// applyLocal writes local listing changes and their log records inside tx.
func applyLocal(tx kvTx, origin string, changes []catalog.Change, seal catalog.SealFunc) error {
	listings := tx.Bucket(bucketListings)
	for _, c := range changes {
		if err := checkVersion(listings, c); err != nil {
			return err
		}
		if err := putListing(listings, c.Listing, c.DeleteID); err != nil {
			return err
		}
	}
	if seal == nil {
		return nil
	}
	log, err := tx.Bucket(bucketLog).CreateBucketIfNotExists([]byte(origin))
	if err != nil {
		return err
	}
	first := logHead(log) + 1
	recs, err := seal(first, changes)
	if err != nil {
		return fmt.Errorf("seal log records: %w", err)
	}
	for i, rec := range recs {
		if err := log.Put(seqKey(first+uint64(i)), rec); err != nil {
			return err
		}
	}
	return nil
}

// putListing stores l, or when l is nil deletes the listing deleteID.
// checkVersion refuses a local change built on another version of the
// listing than the stored one (catalog.ErrStale). A new listing (version
// 1) is not looked up: its ID is a fresh ULID, and a bulk import of
// thousands must not read once per listing.
func checkVersion(listings kvBucket, c catalog.Change) error {
	id, want := c.DeleteID, c.DeletedVersion
	if c.Listing != nil {
		if c.Listing.Version <= 1 {
			return nil
		}
		id, want = c.Listing.ID, c.Listing.Version-1
	}
	if want == 0 {
		return nil
	}
	var stored struct {
		Version uint64 `json:"version"`
	}
	v := listings.Get([]byte(id))
	if v == nil {
		return fmt.Errorf("listing %s: %w: it is gone", id, catalog.ErrStale)
	}
	if err := json.Unmarshal(v, &stored); err != nil {
		return fmt.Errorf("listing %s: %w", id, err)
	}
	if stored.Version != want {
		return fmt.Errorf("listing %s: %w: stored version %d, the change was built on %d", id, catalog.ErrStale, stored.Version, want)
	}
	return nil
}

func putListing(listings kvBucket, l *catalog.Listing, deleteID string) error {
	if l != nil {
		return putJSON(listings, []byte(l.ID), l)
	}
	return listings.Delete([]byte(deleteID))
}

// ApplyRemote implements catalog.Store.
func (db *DB) ApplyRemote(ctx context.Context, origin string, recs []catalog.RemoteRecord, ev *audit.Entry) ([]catalog.RemoteRecord, error) {
	return db.applyRecords(origin, recs, ev, func(listings kvBucket, r catalog.RemoteRecord) (catalog.RemoteRecord, error) {
		return r, putListing(listings, r.Listing, r.DeleteID)
	})
}

// applyRecords appends records that continue origin's log, applies each to
// the listings with apply (which returns the record as applied), and
// appends ev (nil: nothing), completed with the applied range, count and
// hash, all in one transaction. Records at or below the head are skipped;
// one that leaves a gap is ErrLogGap.
func (db *DB) applyRecords(origin string, recs []catalog.RemoteRecord, ev *audit.Entry,
	apply func(listings kvBucket, r catalog.RemoteRecord) (catalog.RemoteRecord, error)) ([]catalog.RemoteRecord, error) {
	var applied []catalog.RemoteRecord
	err := db.kv.update(func(tx kvTx) error {
		applied = applied[:0]
		log, err := tx.Bucket(bucketLog).CreateBucketIfNotExists([]byte(origin))
		if err != nil {
			return err
		}
		head := logHead(log)
		listings := tx.Bucket(bucketListings)
		for _, r := range recs {
			if r.Seq <= head {
				continue
			}
			if r.Seq != head+1 {
				return fmt.Errorf("%w: %s record %d after head %d", catalog.ErrLogGap, origin, r.Seq, head)
			}
			if err := log.Put(seqKey(r.Seq), r.Raw); err != nil {
				return err
			}
			r, err := apply(listings, r)
			if err != nil {
				return err
			}
			head = r.Seq
			applied = append(applied, r)
		}
		if ev == nil || len(applied) == 0 {
			return nil
		}
		e := *ev
		h := sha256.New()
		for _, r := range applied {
			h.Write(r.Raw)
		}
		e.Records = []string{fmt.Sprintf("%s#%d-%d", origin, applied[0].Seq, head)}
		e.Count = len(applied)
		e.PayloadHash = hex.EncodeToString(h.Sum(nil))
		if origin != e.Peer && e.Reason == "" {
			e.Reason = "relayed by " + e.Peer + ": records of " + origin + "'s log"
		}
		return db.appendAudit(tx, &e)
	})
	if err != nil {
		return nil, err
	}
	return applied, nil
}

// Heads implements catalog.Store.
func (db *DB) Heads(ctx context.Context) (map[string]uint64, error) {
	heads := make(map[string]uint64)
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		return tx.Bucket(bucketLog).ForEachBucket(func(k []byte) error {
			if h := logHead(tx.Bucket(bucketLog).Bucket(k)); h > 0 {
				heads[string(k)] = h
			}
			return nil
		})
	})
	return heads, err
}

// LogRange implements catalog.Store.
func (db *DB) LogRange(ctx context.Context, origin string, from uint64, max, maxBytes int) ([][]byte, uint64, error) {
	var out [][]byte
	var head uint64
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		log := tx.Bucket(bucketLog).Bucket([]byte(origin))
		head = logHead(log)
		if log == nil {
			return nil
		}
		size := 0
		c := log.Cursor()
		for k, v := c.Seek(seqKey(from)); k != nil && len(out) < max; k, v = c.Next() {
			if len(out) > 0 && size+len(v) > maxBytes {
				break
			}
			// bbolt's bytes are valid only inside the transaction.
			out = append(out, append([]byte(nil), v...))
			size += len(v)
		}
		return nil
	})
	return out, head, err
}

// Listing reads one stored listing (for tools that run beside a stopped
// node); false if there is none.
func (db *DB) Listing(ctx context.Context, id string) (*catalog.Listing, bool, error) {
	var l *catalog.Listing
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		v := tx.Bucket(bucketListings).Get([]byte(id))
		if v == nil {
			return nil
		}
		l = &catalog.Listing{}
		return json.Unmarshal(v, l)
	})
	return l, l != nil, err
}

// ListingsByID implements catalog.Store: the stored listings among ids,
// in one read transaction (on PostgreSQL one statement per 1,000).
func (db *DB) ListingsByID(ctx context.Context, ids []string) (map[string]*catalog.Listing, error) {
	out := make(map[string]*catalog.Listing, len(ids))
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		b := tx.Bucket(bucketListings)
		for start := 0; start < len(ids); start += 1000 {
			chunk := ids[start:min(len(ids), start+1000)]
			keys := make([][]byte, len(chunk))
			for i, id := range chunk {
				keys[i] = []byte(id)
			}
			for i, v := range b.GetMany(keys) {
				if v == nil {
					continue
				}
				l := &catalog.Listing{}
				if err := json.Unmarshal(v, l); err != nil {
					return fmt.Errorf("listing %s: %w", chunk[i], err)
				}
				out[chunk[i]] = l
			}
		}
		return nil
	})
	return out, err
}

// Listings implements catalog.Store. Decoding the JSON is most of a
// node's start-up, so the values are decoded on every core, inside the
// read transaction (bbolt's values live as long as it does); the listings
// come back in key order and an error names the first bad one in it.
func (db *DB) Listings(ctx context.Context) ([]*catalog.Listing, error) {
	var out []*catalog.Listing
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		var keys, vals [][]byte
		if err := tx.Bucket(bucketListings).ForEach(func(k, v []byte) error {
			keys, vals = append(keys, k), append(vals, v)
			return nil
		}); err != nil {
			return err
		}
		out = make([]*catalog.Listing, len(vals))
		errs := make([]error, len(vals))
		workers := max(1, min(runtime.GOMAXPROCS(0), len(vals)/256))
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				// One allocation per listing, not a slab per worker: a
				// listing replaced later must not keep its neighbours'
				// old versions alive.
				for i := w * len(vals) / workers; i < (w+1)*len(vals)/workers; i++ {
					l := &catalog.Listing{}
					if err := json.Unmarshal(vals[i], l); err != nil {
						errs[i] = fmt.Errorf("listing %s: %w", keys[i], err)
						continue
					}
					out[i] = l
				}
			})
		}
		wg.Wait()
		return firstError(errs)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// firstError is the first non-nil error of errs, or nil.
func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
