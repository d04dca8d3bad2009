package store

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestKVPutOnCommittedBucket (review of issue 12): a Put or Delete of a key
// that is a nested bucket committed by an earlier transaction is refused by
// bbolt (ErrIncompatibleValue). The PostgreSQL backend only checks buckets
// made in the same transaction: it accepts the write, answers the queued
// value to a Get in the same transaction, and the upsert's
// "WHERE kv.value IS NOT NULL" then drops it silently at flush, so the
// caller was told the write happened.
func TestKVPutOnCommittedBucket(t *testing.T) {
	run := func(be backend) []string {
		var out []string
		require.NoError(t, be.update(func(tx kvTx) error {
			top, err := tx.CreateBucketIfNotExists([]byte("top"))
			require.NoError(t, err)
			_, err = top.CreateBucketIfNotExists([]byte("nested"))
			return err
		}))
		err := be.update(func(tx kvTx) error {
			top := tx.Bucket([]byte("top"))
			out = append(out, fmt.Sprintf("put: %v", top.Put([]byte("nested"), []byte("v"))))
			out = append(out, fmt.Sprintf("get: %q", top.Get([]byte("nested"))))
			out = append(out, fmt.Sprintf("delete: %v", top.Delete([]byte("nested"))))
			return nil
		})
		out = append(out, fmt.Sprintf("update: %v", err))
		return out
	}
	want := run(testBoltKV(t))
	got := run(testPGKV(t))
	require.Equal(t, want, got)
}
