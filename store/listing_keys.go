package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/imtgt/imtgt-node/catalog"
)

// listing_keys/<seller id> NUL <Idempotency-Key> holds what a seller's
// keyed listing request (POST /v1/listings, POST /v1/listings/import)
// stored, written in the same transaction as its listings. The bucket is
// made by the first keyed write, so a store from before it needs no
// upgrade, and a reader finds none there.
var bucketListingKeys = []byte("listing_keys")

// listingKey is the value of a listing_keys entry.
type listingKey struct {
	Hash      []byte          `json:"hash"`
	CreatedAt time.Time       `json:"created_at"`
	Outcome   catalog.Outcome `json:"outcome"`
}

func listingKeyID(k catalog.Keyed) []byte { return []byte(k.SellerID + "\x00" + k.Key) }

// keyedOutcome reads the outcome under k in b (b may be nil: none).
func keyedOutcome(b kvBucket, k catalog.Keyed) (*catalog.Outcome, bool, error) {
	if b == nil {
		return nil, false, nil
	}
	v := b.Get(listingKeyID(k))
	if v == nil {
		return nil, false, nil
	}
	var lk listingKey
	if err := json.Unmarshal(v, &lk); err != nil {
		return nil, false, fmt.Errorf("listing key of seller %s: %w", k.SellerID, err)
	}
	if !bytes.Equal(lk.Hash, k.Hash) {
		return nil, false, catalog.ErrIdempotency
	}
	return &lk.Outcome, true, nil
}

// KeyedOutcome implements catalog.Store.
func (db *DB) KeyedOutcome(ctx context.Context, k catalog.Keyed) (*catalog.Outcome, bool, error) {
	var out *catalog.Outcome
	var found bool
	err := db.kv.viewCtx(ctx, func(tx kvTx) error {
		var err error
		out, found, err = keyedOutcome(tx.Bucket(bucketListingKeys), k)
		return err
	})
	return out, found, err
}

// ApplyLocalOnce implements catalog.Store. The key is checked inside the
// write transaction too: of two concurrent requests with one key, the
// second to commit finds the first's and stores nothing.
func (db *DB) ApplyLocalOnce(ctx context.Context, origin string, changes []catalog.Change, seal catalog.SealFunc, k catalog.Keyed, out *catalog.Outcome) (*catalog.Outcome, bool, error) {
	var stored *catalog.Outcome
	apply := func(tx kvTx) error {
		stored = nil // the function may run more than once
		b, err := tx.CreateBucketIfNotExists(bucketListingKeys)
		if err != nil {
			return err
		}
		prev, found, err := keyedOutcome(b, k)
		if err != nil || found {
			stored = prev
			return err
		}
		if len(changes) > 0 {
			if err := applyLocal(tx, origin, changes, seal); err != nil {
				return err
			}
		}
		return putJSON(b, listingKeyID(k), listingKey{Hash: k.Hash, CreatedAt: k.At, Outcome: *out})
	}
	var err error
	if len(changes) <= 1 {
		err = db.batch(apply)
	} else {
		err = db.noted(db.kv.updateCtx(ctx, apply))
	}
	if err != nil {
		return nil, false, err
	}
	if stored != nil {
		return stored, true, nil
	}
	return out, false, nil
}

// PruneListingKeys forgets the listing Idempotency-Keys stored before
// before (see catalog.KeyRetention) and returns how many.
func (db *DB) PruneListingKeys(ctx context.Context, before time.Time) (int, error) {
	n := 0
	err := db.noted(db.kv.updateCtx(ctx, func(tx kvTx) error {
		n = 0
		b := tx.Bucket(bucketListingKeys)
		if b == nil {
			return nil
		}
		var old [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var lk struct {
				CreatedAt time.Time `json:"created_at"`
			}
			if err := json.Unmarshal(v, &lk); err != nil {
				return fmt.Errorf("listing key %q: %w", k, err)
			}
			if lk.CreatedAt.Before(before) {
				old = append(old, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		// Deleted after the walk: a bbolt cursor may skip a key after a delete.
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(old)
		return nil
	}))
	return n, err
}
