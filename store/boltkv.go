package store

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// boltKV is the bbolt backend: the interfaces of kv.go are bbolt's own
// types, wrapped so that a missing bucket is a nil interface.
type boltKV struct{ db *bolt.DB }

func (b boltKV) view(fn func(kvTx) error) error {
	return b.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

func (b boltKV) update(fn func(kvTx) error) error {
	return b.db.Update(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

func (b boltKV) viewCtx(_ context.Context, fn func(kvTx) error) error { return b.view(fn) }

func (b boltKV) updateCtx(_ context.Context, fn func(kvTx) error) error { return b.update(fn) }

func (b boltKV) close() error { return b.db.Close() }

type boltTx struct{ tx *bolt.Tx }

func (t boltTx) Bucket(name []byte) kvBucket { return wrapBucket(t.tx.Bucket(name)) }

func (t boltTx) CreateBucketIfNotExists(name []byte) (kvBucket, error) {
	b, err := t.tx.CreateBucketIfNotExists(name)
	if err != nil {
		return nil, err
	}
	return boltBucket{b}, nil
}

func (t boltTx) ForEachBucket(fn func(name []byte, b kvBucket) error) error {
	return t.tx.ForEach(func(name []byte, b *bolt.Bucket) error { return fn(name, boltBucket{b}) })
}

func wrapBucket(b *bolt.Bucket) kvBucket {
	if b == nil {
		return nil
	}
	return boltBucket{b}
}

type boltBucket struct{ b *bolt.Bucket }

func (b boltBucket) Get(key []byte) []byte { return b.b.Get(key) }
func (b boltBucket) GetMany(keys [][]byte) [][]byte {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = b.b.Get(k)
	}
	return out
}
func (b boltBucket) Put(key, value []byte) error              { return b.b.Put(key, value) }
func (b boltBucket) Delete(key []byte) error                  { return b.b.Delete(key) }
func (b boltBucket) Bucket(name []byte) kvBucket              { return wrapBucket(b.b.Bucket(name)) }
func (b boltBucket) ForEach(fn func(k, v []byte) error) error { return b.b.ForEach(fn) }
func (b boltBucket) ForEachBucket(fn func(k []byte) error) error {
	return b.b.ForEachBucket(fn)
}
func (b boltBucket) Cursor() kvCursor              { return b.b.Cursor() }
func (b boltBucket) KeyN() int                     { return b.b.Stats().KeyN }
func (b boltBucket) NextSequence() (uint64, error) { return b.b.NextSequence() }
func (b boltBucket) Sequence() uint64              { return b.b.Sequence() }
func (b boltBucket) SetSequence(v uint64) error    { return b.b.SetSequence(v) }

func (b boltBucket) CreateBucketIfNotExists(name []byte) (kvBucket, error) {
	s, err := b.b.CreateBucketIfNotExists(name)
	if err != nil {
		return nil, err
	}
	return boltBucket{s}, nil
}
