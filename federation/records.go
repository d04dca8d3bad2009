package federation

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/policy"
	"github.com/imtgt/imtgt-node/refdata"
)

// RecordSealer returns the catalog's SealFunc: each local change becomes a
// ListingRecord built by the policy's Project and signed with the node key.
// A listing that export rules hold at home, or that no transfer rule lets
// leave, becomes a tombstone: peers withdraw any copy they had. Records are
// signed in parallel: a bulk import of thousands of listings would
// otherwise spend most of its transaction signing.
func RecordSealer(key crypto.PrivKey, origin string, now func() time.Time, pol func() *policy.Policy) catalog.SealFunc {
	return func(first uint64, changes []catalog.Change) ([][]byte, error) {
		out := make([][]byte, len(changes))
		at := now().UnixMilli()
		p := pol()
		seal := func(i int) error {
			c := changes[i]
			rec := &pb.ListingRecord{Origin: origin, Seq: first + uint64(i), CreatedUnixMs: at}
			var pl *pb.Listing
			if c.Listing != nil && len(c.Listing.Held) == 0 && p != nil {
				pl, _ = p.ProjectListing(c.Listing, policy.AllMembers)
			}
			if pl != nil {
				rec.Op, rec.ListingId, rec.Listing = pb.ListingRecord_OP_UPSERT, c.Listing.ID, pl
			} else if c.Listing != nil {
				rec.Op, rec.ListingId, rec.Withheld = pb.ListingRecord_OP_DELETE, c.Listing.ID, true
			} else {
				rec.Op, rec.ListingId = pb.ListingRecord_OP_DELETE, c.DeleteID
			}
			b, err := SealRecord(key, rec)
			out[i] = b
			return err
		}
		if len(changes) < 64 {
			for i := range changes {
				if err := seal(i); err != nil {
					return nil, err
				}
			}
			return out, nil
		}
		return out, parallel(len(changes), seal)
	}
}

// parallel runs fn(0..n-1) on GOMAXPROCS workers and returns the first error.
func parallel(n int, fn func(i int) error) error {
	workers := min(runtime.GOMAXPROCS(0), n)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if err := fn(i); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// toRemote checks a verified record's content and converts it into the
// catalog's form. The origin's signature proves who wrote it, not that it
// is well formed: a buggy or hostile member must not be able to put a
// listing into our catalog that our own sellers could not.
func toRemote(rec *pb.ListingRecord, raw []byte) (catalog.RemoteRecord, error) {
	r := catalog.RemoteRecord{Seq: rec.Seq, Raw: raw}
	if !strings.HasPrefix(rec.ListingId, "lst_") || len(rec.ListingId) > 64 {
		return r, fmt.Errorf("%w: listing id %q", ErrBadRecord, rec.ListingId)
	}
	switch rec.Op {
	case pb.ListingRecord_OP_DELETE:
		r.DeleteID, r.HeldAtOrigin = rec.ListingId, rec.Withheld
		return r, nil
	case pb.ListingRecord_OP_UPSERT:
	default:
		return r, fmt.Errorf("%w: op %v", ErrBadRecord, rec.Op)
	}
	l := rec.Listing
	if l == nil || l.Id != rec.ListingId {
		return r, fmt.Errorf("%w: upsert without its listing", ErrBadRecord)
	}
	if l.Price == nil || l.Seller == nil {
		return r, fmt.Errorf("%w: listing %s lacks price or seller", ErrBadRecord, l.Id)
	}
	if _, err := money.Exponent(l.Price.Currency); err != nil || l.Price.Minor <= 0 || l.Price.Minor > money.MaxMinor {
		return r, fmt.Errorf("%w: listing %s price", ErrBadRecord, l.Id)
	}
	if err := refdata.ValidListingHS(l.HsCode); err != nil {
		return r, fmt.Errorf("%w: listing %s: %v", ErrBadRecord, l.Id, err)
	}
	if err := refdata.ValidRegion(rec.Origin, l.ShipFrom); err != nil {
		return r, fmt.Errorf("%w: listing %s: %v", ErrBadRecord, l.Id, err)
	}
	if utf8.RuneCountInString(l.Title) > catalog.MaxTitle || utf8.RuneCountInString(l.Description) > catalog.MaxDescription ||
		len(l.Images) > catalog.MaxImages || len(l.Attributes) > catalog.MaxAttributes || l.Quantity < 0 || l.Quantity > catalog.MaxQuantity {
		return r, fmt.Errorf("%w: listing %s exceeds the listing limits", ErrBadRecord, l.Id)
	}
	r.Listing = &catalog.Listing{
		ID: l.Id, Origin: rec.Origin, SellerID: l.Seller.Id,
		Seller:      catalog.SellerProfile{ID: l.Seller.Id, LegalName: l.Seller.LegalName, BusinessID: l.Seller.BusinessId, Region: l.Seller.Region},
		Title:       l.Title,
		Description: l.Description,
		HSCode:      l.HsCode,
		Price:       money.Amount{Minor: l.Price.Minor, Currency: l.Price.Currency},
		Quantity:    l.Quantity,
		ShipFrom:    l.ShipFrom,
		Images:      l.Images,
		Attributes:  l.Attributes,
		CreatedAt:   time.UnixMilli(l.CreatedUnixMs).UTC(),
		UpdatedAt:   time.UnixMilli(l.UpdatedUnixMs).UTC(),
		Version:     l.Version,
	}
	// The same text rule as for this node's own sellers: a member must not
	// be able to inject controls, bidi overrides or invalid UTF-8.
	// A record signed before the rule (or by a member without it) cannot be
	// replaced by another copy, so refusing it would stop the origin's log
	// there for good: it is kept in the log, and its listing withheld
	// (Withheld; see fetch).
	if err := catalog.CheckText(r.Listing); err != nil {
		r.Withheld = fmt.Errorf("%w: listing %s: %w", ErrBadRecord, l.Id, err)
	}
	return r, nil
}
