package store

import (
	"context"
	"time"

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
	return db.createWithToken(bucketMarketplaces, m.ID, m, tokenHash, p)
}

// Marketplaces lists the marketplaces.
func (db *DB) Marketplaces(ctx context.Context) ([]Marketplace, error) {
	return listJSON[Marketplace](db, bucketMarketplaces)
}
