package sellers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/imtgt/imtgt-node/access"
	"github.com/imtgt/imtgt-node/keys"
)

// Errors a Store returns; the Registry passes them through.
var (
	ErrNotFound  = errors.New("seller not found")
	ErrDuplicate = errors.New("a seller with this business_id is already registered")
)

// Store is what the registry needs from persistent storage. Every method is
// durable before it returns.
type Store interface {
	// CreateSeller stores a new seller and its bearer-token hash in one
	// transaction; ErrDuplicate if the business ID is taken.
	CreateSeller(ctx context.Context, rec *Record, tokenHash string, p access.Principal) error
	Seller(ctx context.Context, id string) (*Record, error)
	// UpdateSeller applies fn to the stored record in one transaction.
	UpdateSeller(ctx context.Context, id string, fn func(*Record) error) (*Record, error)
	// Sellers lists sellers by ID after the given one, optionally of one status.
	Sellers(ctx context.Context, status Status, after string, limit int) ([]*Record, error)
}

// Registry is the seller service of one node.
type Registry struct {
	store   Store
	key     *keys.DataKey
	country string
	now     func() time.Time
}

// NewRegistry returns a registry for sellers of country.
func NewRegistry(store Store, key *keys.DataKey, country string) *Registry {
	return &Registry{store: store, key: key, country: country, now: time.Now}
}

// Register validates and stores a new pending seller and returns it with its
// bearer token, which is shown this once.
func (r *Registry) Register(ctx context.Context, reg Registration) (*Seller, string, error) {
	if err := reg.Validate(r.country); err != nil {
		return nil, "", err
	}
	now := r.now().UTC()
	s := &Seller{
		ID:         "sel_" + ulid.Make().String(),
		LegalName:  reg.LegalName,
		BusinessID: reg.BusinessID,
		Region:     reg.Region,
		Contact:    reg.Contact,
		Status:     StatusPending,
		CreatedAt:  now,
		UpdatedAt:  now,
		Personal:   Personal{Owner: reg.Owner, BankAccount: reg.BankAccount},
	}
	rec, err := r.seal(s)
	if err != nil {
		return nil, "", err
	}
	token, hash, err := access.NewToken(access.Seller)
	if err != nil {
		return nil, "", err
	}
	if err := r.store.CreateSeller(ctx, rec, hash, access.Principal{Role: access.Seller, Subject: s.ID, CreatedAt: now}); err != nil {
		return nil, "", err
	}
	return s, token, nil
}

// Get returns a seller with its personal fields opened.
func (r *Registry) Get(ctx context.Context, id string) (*Seller, error) {
	rec, err := r.store.Seller(ctx, id)
	if err != nil {
		return nil, err
	}
	return r.open(rec)
}

// Approve makes a pending or suspended seller active.
func (r *Registry) Approve(ctx context.Context, id string) (*Seller, error) {
	return r.setStatus(ctx, id, StatusActive)
}

// Suspend stops a seller from publishing.
func (r *Registry) Suspend(ctx context.Context, id string) (*Seller, error) {
	return r.setStatus(ctx, id, StatusSuspended)
}

func (r *Registry) setStatus(ctx context.Context, id string, to Status) (*Seller, error) {
	rec, err := r.store.UpdateSeller(ctx, id, func(rec *Record) error {
		if rec.Status == to {
			return nil // approving an active seller again is harmless
		}
		rec.Status = to
		rec.UpdatedAt = r.now().UTC()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r.open(rec)
}

// List returns up to limit sellers after cursor, optionally of one status,
// and the cursor of the next page ("" at the end). Personal fields are
// opened: only the operator lists sellers.
func (r *Registry) List(ctx context.Context, status Status, cursor string, limit int) ([]*Seller, string, error) {
	recs, err := r.store.Sellers(ctx, status, cursor, limit+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(recs) > limit {
		recs = recs[:limit]
		next = recs[limit-1].ID
	}
	out := make([]*Seller, 0, len(recs))
	for _, rec := range recs {
		s, err := r.open(rec)
		if err != nil {
			return nil, "", err
		}
		out = append(out, s)
	}
	return out, next, nil
}

func (r *Registry) seal(s *Seller) (*Record, error) {
	pt, err := json.Marshal(s.Personal)
	if err != nil {
		return nil, fmt.Errorf("encode personal fields: %w", err)
	}
	return &Record{
		ID: s.ID, LegalName: s.LegalName, BusinessID: s.BusinessID, Region: s.Region,
		Contact: s.Contact, Status: s.Status, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
		Sealed: r.key.Seal(pt, []byte(s.ID)),
	}, nil
}

func (r *Registry) open(rec *Record) (*Seller, error) {
	s := &Seller{
		ID: rec.ID, LegalName: rec.LegalName, BusinessID: rec.BusinessID, Region: rec.Region,
		Contact: rec.Contact, Status: rec.Status, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt,
	}
	pt, err := r.key.Open(rec.Sealed, []byte(rec.ID))
	if err != nil {
		return nil, fmt.Errorf("seller %s: personal fields: %w", rec.ID, err)
	}
	if err := json.Unmarshal(pt, &s.Personal); err != nil {
		return nil, fmt.Errorf("seller %s: decode personal fields: %w", rec.ID, err)
	}
	return s, nil
}

// Public returns a seller without opening its personal fields: the cheap
// look-up for authorising a seller's listing writes.
func (r *Registry) Public(ctx context.Context, id string) (*Seller, error) {
	rec, err := r.store.Seller(ctx, id)
	if err != nil {
		return nil, err
	}
	return &Seller{
		ID: rec.ID, LegalName: rec.LegalName, BusinessID: rec.BusinessID, Region: rec.Region,
		Contact: rec.Contact, Status: rec.Status, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt,
	}, nil
}
