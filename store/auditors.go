package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/imtgt/imtgt-node/access"
)

var bucketAuditors = []byte("auditors")

// Auditor is an external reviewer (a data protection authority, a trade
// ministry) holding a read-only token for the audit routes.
type Auditor struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateAuditor stores an auditor and its token hash in one transaction.
func (db *DB) CreateAuditor(ctx context.Context, a Auditor, tokenHash string, p access.Principal) error {
	return db.createWithToken(bucketAuditors, a.ID, a, tokenHash, p)
}

// Auditors lists the auditors, in ID (creation) order.
func (db *DB) Auditors(ctx context.Context) ([]Auditor, error) {
	return listJSON[Auditor](db, bucketAuditors)
}

// createWithToken stores v under id in bucket, and the principal p under
// its token hash, in one transaction.
func (db *DB) createWithToken(bucket []byte, id string, v any, tokenHash string, p access.Principal) error {
	return db.kv.update(func(tx kvTx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		if err := putJSON(b, []byte(id), v); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketTokens), []byte(tokenHash), p)
	})
}

// listJSON decodes every value of a top-level bucket, in key order (an
// empty list, not nil, when there is none).
func listJSON[T any](db *DB, bucket []byte) ([]T, error) {
	out := []T{}
	err := db.kv.view(func(tx kvTx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil // a store opened read-only before its first upgrade
		}
		return b.ForEach(func(k, v []byte) error {
			var x T
			if err := json.Unmarshal(v, &x); err != nil {
				return err
			}
			out = append(out, x)
			return nil
		})
	})
	return out, err
}
