package catalog

import (
	"time"

	"github.com/imtgt/imtgt-node/money"
)

// Listing is one product offer in the catalog. A listing is created on its
// seller's home node (its Origin) and, from the federation issue on, copied
// to the other members' catalogs. Every field here is public: the seller's
// personal data never appears in a listing.
type Listing struct {
	ID       string `json:"id"`     // "lst_" + ULID; sorts by creation time
	Origin   string `json:"origin"` // ISO 3166-1 alpha-2 country of the seller's home node
	SellerID string `json:"seller_id"`
	// Seller is the seller's public profile, copied into the listing so that
	// a federated catalog can show it without reaching back to the origin.
	Seller      SellerProfile     `json:"seller"`
	Title       string            `json:"title"`
	Description string            `json:"description,omitempty"`
	HSCode      string            `json:"hs_code"` // HS 2022 heading (4 digits) or subheading (6 digits)
	Price       money.Amount      `json:"price"`
	Quantity    int64             `json:"quantity"`
	ShipFrom    string            `json:"ship_from"` // ISO 3166-2 subdivision code
	Images      []string          `json:"images,omitempty"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	// Version increases by one on every change, starting at 1.
	Version uint64 `json:"version"`
	// Held, when not empty, says why this node's export rules keep the
	// listing at home: it is searchable here but not published to peers.
	Held []Hold `json:"held,omitempty"`
}

// Hold is an export rule that keeps a listing from being published.
type Hold struct {
	Rule    string `json:"rule"`
	Source  string `json:"source"`
	Message string `json:"message"`
}

// SellerProfile is the public part of a seller: what consumer-protection law
// requires a seller to publish, and nothing else.
type SellerProfile struct {
	ID         string `json:"id"`
	LegalName  string `json:"legal_name"`
	BusinessID string `json:"business_id"`
	Region     string `json:"region,omitempty"`
}
