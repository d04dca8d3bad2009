package store

import (
	"context"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"

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
	return db.bolt.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketAuditors)
		if err != nil {
			return err
		}
		if err := putJSON(b, []byte(a.ID), a); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketTokens), []byte(tokenHash), p)
	})
}

// Auditors lists the auditors, in ID (creation) order.
func (db *DB) Auditors(ctx context.Context) ([]Auditor, error) {
	out := []Auditor{}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAuditors)
		if b == nil {
			return nil // a store opened read-only before its first upgrade
		}
		return b.ForEach(func(k, v []byte) error {
			var a Auditor
			if err := json.Unmarshal(v, &a); err != nil {
				return err
			}
			out = append(out, a)
			return nil
		})
	})
	return out, err
}
