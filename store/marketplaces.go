package store

import (
	"context"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/imtgt/imtgt-node/access"
)

var bucketMarketplaces = []byte("marketplaces")

// Marketplace is a buyer-facing shop that places orders through this node.
type Marketplace struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateMarketplace stores a marketplace and its token hash in one
// transaction.
func (db *DB) CreateMarketplace(ctx context.Context, m Marketplace, tokenHash string, p access.Principal) error {
	return db.bolt.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketMarketplaces)
		if err != nil {
			return err
		}
		if err := putJSON(b, []byte(m.ID), m); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketTokens), []byte(tokenHash), p)
	})
}

// Marketplaces lists the marketplaces.
func (db *DB) Marketplaces(ctx context.Context) ([]Marketplace, error) {
	out := []Marketplace{}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMarketplaces)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var m Marketplace
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			out = append(out, m)
			return nil
		})
	})
	return out, err
}
