package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/imtgt/imtgt-node/audit"
)

// ErrNotEmpty is Copy into a store that already belongs to a node.
var ErrNotEmpty = errors.New("the destination store is not empty")

// CopyReport says what Copy copied: keys per bucket path ("log/TH"), and
// the totals.
type CopyReport struct {
	Keys    map[string]int
	Buckets int
	Total   int
}

// Copy copies every bucket, key and bucket sequence of src into dst, in
// one read transaction of src and one write transaction of dst: either
// all of it is in dst afterwards or none of it is. dst must be a new store
// (its bucket tree may exist, but no node may own it: no meta/node), so a
// copy never merges two nodes' state. Before it commits, Copy compares
// the copy with src key by key (as Compare does) and fails, writing
// nothing, if they differ; then it appends entries to dst's audit chain
// (continuing src's) in the same transaction, so the copy and the entry
// that records it commit together.
//
// It is how `imtgt-node store migrate` moves a stopped bbolt node into
// PostgreSQL: both backends hold the same bucket tree, so the copy is
// exact, and every count, hash chain and signature the node had holds.
func Copy(ctx context.Context, dst, src *DB, entries ...*audit.Entry) (*CopyReport, error) {
	r := &CopyReport{Keys: map[string]int{}}
	err := src.kv.view(func(stx kvTx) error {
		return dst.kv.update(func(dtx kvTx) error {
			if m := dtx.Bucket(bucketMeta); m != nil && m.Get(keyNode) != nil {
				return ErrNotEmpty
			}
			err := stx.ForEachBucket(func(name []byte, sb kvBucket) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				db, err := dtx.CreateBucketIfNotExists(name)
				if err != nil {
					return fmt.Errorf("bucket %s: %w", name, err)
				}
				return copyBucket(ctx, string(name), db, sb, r)
			})
			if err != nil {
				return err
			}
			// The write transaction reads its own writes (on PostgreSQL,
			// from the database once they are sent).
			if err := compareTx(ctx, dtx, stx); err != nil {
				return fmt.Errorf("the copy differs from the original: %w", err)
			}
			if err := dst.appendAudit(dtx, entries...); err != nil {
				return fmt.Errorf("audit the copy: %w", err)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("copy store: %w", err)
	}
	return r, nil
}

func copyBucket(ctx context.Context, path string, dst, src kvBucket, r *CopyReport) error {
	r.Buckets++
	if err := dst.SetSequence(src.Sequence()); err != nil {
		return fmt.Errorf("bucket %s: sequence: %w", path, err)
	}
	n := 0
	err := src.ForEach(func(k, v []byte) error {
		if v == nil {
			sub := src.Bucket(k)
			if sub == nil {
				return fmt.Errorf("bucket %s: key %q has no value and is not a bucket", path, k)
			}
			d, err := dst.CreateBucketIfNotExists(k)
			if err != nil {
				return fmt.Errorf("bucket %s/%s: %w", path, k, err)
			}
			return copyBucket(ctx, path+"/"+string(k), d, sub, r)
		}
		n++
		if n%10000 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return dst.Put(k, v)
	})
	if err != nil {
		return err
	}
	r.Keys[path] += n
	r.Total += n
	return nil
}

// Compare reads both stores whole and returns an error naming the first
// bucket, key or sequence where they differ (nil: the same tree).
func Compare(ctx context.Context, a, b *DB) error {
	return a.kv.view(func(atx kvTx) error {
		return b.kv.view(func(btx kvTx) error { return compareTx(ctx, atx, btx) })
	})
}

func compareTx(ctx context.Context, atx, btx kvTx) error {
	an, bn := topNames(atx), topNames(btx)
	if !slices.EqualFunc(an, bn, bytes.Equal) {
		return fmt.Errorf("top-level buckets %s and %s", joinNames(an), joinNames(bn))
	}
	for _, name := range an {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := compareBucket(string(name), atx.Bucket(name), btx.Bucket(name)); err != nil {
			return err
		}
	}
	return nil
}

func topNames(tx kvTx) [][]byte {
	var out [][]byte
	_ = tx.ForEachBucket(func(name []byte, _ kvBucket) error {
		out = append(out, bytes.Clone(name))
		return nil
	})
	return out
}

func joinNames(ns [][]byte) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = string(n)
	}
	return "[" + strings.Join(s, " ") + "]"
}

func compareBucket(path string, a, b kvBucket) error {
	if a.Sequence() != b.Sequence() {
		return fmt.Errorf("bucket %s: sequence %d and %d", path, a.Sequence(), b.Sequence())
	}
	ca, cb := a.Cursor(), b.Cursor()
	ka, va := ca.First()
	kb, vb := cb.First()
	for ka != nil || kb != nil {
		switch {
		case !bytes.Equal(ka, kb):
			return fmt.Errorf("bucket %s: key %q and %q", path, ka, kb)
		case (va == nil) != (vb == nil):
			return fmt.Errorf("bucket %s: key %q is a bucket in one store only", path, ka)
		case va == nil:
			if err := compareBucket(path+"/"+string(ka), a.Bucket(ka), b.Bucket(kb)); err != nil {
				return err
			}
		case !bytes.Equal(va, vb):
			return fmt.Errorf("bucket %s: key %q has another value", path, ka)
		}
		ka, va = ca.Next()
		kb, vb = cb.Next()
	}
	return nil
}
