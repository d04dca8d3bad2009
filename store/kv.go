package store

import "context"

// The store's code is written once, against the bucket tree documented in
// store.go, and runs on two backends: the embedded bbolt file (boltkv.go,
// the default) and a PostgreSQL database shared by a node's replicas
// (pgkv.go). The interfaces below are the part of bbolt's API that the
// store uses, with bbolt's meaning:
//
//   - a transaction sees one consistent state: a read transaction a
//     snapshot, a write transaction everything committed before it and its
//     own writes; write transactions are serialised (bbolt has one writer;
//     PostgreSQL write transactions take one advisory transaction lock), so
//     a read-modify-write inside one is never lost;
//   - keys sort bytewise; a nested bucket shows in its parent's ForEach and
//     cursor as a key with a nil value;
//   - a write transaction commits durably (fsync) or not at all.
//
// bbolt's Get and cursor moves cannot fail, PostgreSQL's can. So a
// PostgreSQL transaction remembers the first error of a read (and returns
// nil data for it); view and update return that error whatever the
// function returned, and update rolls the transaction back: code that went
// on with a nil it took for "absent" never gets its writes committed.
// Bucket never answers nil for a look-up that failed: it returns a bucket
// whose reads return nil, so a chain tx.Bucket(x).Bucket(y).Cursor()
// cannot panic on a failed transaction.

// kvTx is one transaction.
type kvTx interface {
	// Bucket returns a top-level bucket, or nil if there is none.
	Bucket(name []byte) kvBucket
	// CreateBucketIfNotExists returns a top-level bucket, making it first
	// if needed (write transactions only).
	CreateBucketIfNotExists(name []byte) (kvBucket, error)
	// ForEachBucket calls fn with every top-level bucket, by name.
	ForEachBucket(fn func(name []byte, b kvBucket) error) error
}

// kvBucket is a bucket of a transaction. Slices it returns are valid only
// until the transaction ends.
type kvBucket interface {
	Get(key []byte) []byte
	// GetMany is Get of each key (nil where absent or a nested bucket):
	// one round trip on PostgreSQL, where Gets one by one pay one each.
	GetMany(keys [][]byte) [][]byte
	Put(key, value []byte) error
	Delete(key []byte) error
	// Bucket returns a nested bucket, or nil.
	Bucket(name []byte) kvBucket
	CreateBucketIfNotExists(name []byte) (kvBucket, error)
	// ForEach calls fn with every key in order; v is nil for a nested bucket.
	ForEach(fn func(k, v []byte) error) error
	// ForEachBucket calls fn with the name of every nested bucket, in order.
	ForEachBucket(fn func(k []byte) error) error
	Cursor() kvCursor
	// KeyN counts the keys (nested buckets included).
	KeyN() int
	// NextSequence returns the bucket's next autoincrement integer.
	NextSequence() (uint64, error)
	// Sequence and SetSequence read and set that integer (a copy of a
	// store carries it over).
	Sequence() uint64
	SetSequence(v uint64) error
}

// kvCursor walks a bucket's keys in order. A nil key means the end.
type kvCursor interface {
	First() (k, v []byte)
	Last() (k, v []byte)
	Seek(seek []byte) (k, v []byte)
	Next() (k, v []byte)
	Prev() (k, v []byte)
}

// backend runs transactions. viewCtx and updateCtx run the transaction's
// statements under ctx (a request that goes away cancels them; a
// PostgreSQL statement is still bounded to 30 s, and a COMMIT once sent
// is not cancelled); bbolt, which never waits on a network, ignores it.
// view and update are theirs with no context of the caller's.
type backend interface {
	view(fn func(kvTx) error) error
	update(fn func(kvTx) error) error
	viewCtx(ctx context.Context, fn func(kvTx) error) error
	updateCtx(ctx context.Context, fn func(kvTx) error) error
	close() error
}
