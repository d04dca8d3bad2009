package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"time"
)

// ErrIdempotency means an Idempotency-Key was used before by the same
// seller for a different request. Nothing was stored.
var ErrIdempotency = errors.New("Idempotency-Key reused with a different request")

// KeyRetention is how long the node keeps a seller's Idempotency-Key: a
// retry within it gets the first request's answer; after it, the key is
// forgotten and the same key starts a new request. A week covers any
// client's retry schedule (they give up after minutes or hours) and keeps
// the stored answers (an import's report lists every ID) bounded.
const KeyRetention = 7 * 24 * time.Hour

// MaxKeyLength bounds an Idempotency-Key, as for orders.
const MaxKeyLength = 200

// Keyed names a request a seller may retry safely: the seller, its
// Idempotency-Key, a hash of what the request asked, and when it came.
type Keyed struct {
	SellerID string
	Key      string
	Hash     []byte
	At       time.Time
}

// Outcome is what a keyed request stored, kept under its key in the same
// transaction as the listings, so that a retry gets the same answer: the
// listing a create made, or the report of an import.
type Outcome struct {
	Listing *Listing      `json:"listing,omitempty"`
	Report  *ImportReport `json:"report,omitempty"`
}

// requestHash is the hash of a keyed request: its kind and what it asked,
// as parsed (so that the same content sent twice is the same request).
func requestHash(kind string, parts ...any) []byte {
	h := sha256.New()
	h.Write([]byte(kind))
	for _, p := range parts {
		h.Write([]byte{0})
		b, _ := json.Marshal(p) // plain data: cannot fail
		h.Write(b)
	}
	return h.Sum(nil)
}

// keyed returns the Keyed of a seller's request, or nil without a key.
func (c *Catalog) keyed(sellerID, key string, hash func() []byte) *Keyed {
	if key == "" {
		return nil
	}
	return &Keyed{SellerID: sellerID, Key: key, Hash: hash(), At: c.cfg.Now().UTC()}
}

// CreateOnce is Create under the seller's Idempotency-Key (none: "").
// The same key with the same input returns the listing the first request
// created (replayed = true), stored nothing new; the same key with
// another input is ErrIdempotency.
func (c *Catalog) CreateOnce(ctx context.Context, seller SellerProfile, in Input, key string) (*Listing, bool, error) {
	k := c.keyed(seller.ID, key, func() []byte { return requestHash("listing", in) })
	if k != nil {
		if out, ok, err := c.store.KeyedOutcome(ctx, *k); err != nil || ok {
			return listingOf(out), ok, err
		}
	}
	l, err := c.build(seller, &in, c.cfg.Now().UTC())
	if err != nil {
		return nil, false, err
	}
	c.holds(l)
	out, replayed, err := c.applyOnce(ctx, []Change{{Listing: l}}, k, &Outcome{Listing: l})
	if err != nil {
		return nil, false, err
	}
	return listingOf(out), replayed, nil
}

func listingOf(o *Outcome) *Listing {
	if o == nil {
		return nil
	}
	return o.Listing
}

// ImportOnce is Import under the seller's Idempotency-Key (none: ""):
// the same key with the same rows returns the first import's report
// (replayed = true) and stores nothing new; the same key with other rows
// is ErrIdempotency. The key and the report are stored in the same
// transaction as the rows, so a request that died after its commit is
// answered on retry, and one that died before it is imported then.
func (c *Catalog) ImportOnce(ctx context.Context, seller SellerProfile, rows []Row, refused []RowError, key string) (*ImportReport, bool, error) {
	k := c.keyed(seller.ID, key, func() []byte { return requestHash("import", rows, refused) })
	if k != nil {
		if out, ok, err := c.store.KeyedOutcome(ctx, *k); err != nil || ok {
			return reportOf(out), ok, err
		}
	}
	rep, good := c.prepareImport(seller, rows, refused)
	changes := make([]Change, len(good))
	for i, l := range good {
		changes[i] = Change{Listing: l}
	}
	out, replayed, err := c.applyOnce(ctx, changes, k, &Outcome{Report: rep})
	if err != nil {
		return nil, false, err
	}
	return reportOf(out), replayed, nil
}

func reportOf(o *Outcome) *ImportReport {
	if o == nil {
		return nil
	}
	return o.Report
}

// applyOnce is apply, with k (nil: no key) and its outcome stored in the
// same transaction. A replay indexes and announces nothing: the first
// request did.
func (c *Catalog) applyOnce(ctx context.Context, changes []Change, k *Keyed, out *Outcome) (*Outcome, bool, error) {
	if k == nil {
		if len(changes) == 0 {
			return out, false, nil
		}
		return out, false, c.apply(ctx, changes)
	}
	if c.reconciling.Load() && len(changes) > 0 {
		return nil, false, ErrReconciling
	}
	stored, replayed, err := c.store.ApplyLocalOnce(ctx, c.cfg.Country, changes, c.cfg.Seal, *k, out)
	if err != nil || replayed {
		return stored, replayed, err
	}
	if len(changes) == 0 {
		return stored, false, nil
	}
	return stored, false, c.stored(changes)
}
