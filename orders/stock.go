package orders

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/imtgt/imtgt-node/catalog"
)

// holdsStock says whether a seller's order in status st holds stock: the
// seller's node took it when it received the handoff (a rejected handoff
// took none), and the goods leave with it when it ships.
func holdsStock(o *Order, st Status) bool {
	return o.Side == SideSeller && (st == Received || st == Accepted || st == Packed)
}

// stockBack returns what o gives back to its listings now that it moved
// from status from to Cancelled (by either side) or Rejected (by its
// seller): nil if it held no stock or ends otherwise. It reads the
// listings from the catalog's index, so the caller holds the catalog lock
// (Catalog.Exclusive); the store refuses a listing changed meanwhile by
// another replica (catalog.ErrStale) and the caller decides again after
// Catalog.Refresh. A listing deleted since the order took stock gets
// nothing back: the order's last history event says so, and gone lists
// those listings for the caller to log.
func (s *Service) stockBack(o *Order, from Status, now time.Time) (back *StockBack, gone []string) {
	if !holdsStock(o, from) || (o.Status != Cancelled && o.Status != Rejected) {
		return nil, nil
	}
	back = &StockBack{Origin: s.cfg.Country, Seal: s.cfg.Catalog.Seal()}
	byID := map[string]*catalog.Listing{}
	for _, it := range o.Items {
		if slices.Contains(gone, it.ListingID) {
			continue
		}
		n, ok := byID[it.ListingID]
		if !ok {
			l, ok := s.cfg.Catalog.Get(it.ListingID)
			if !ok || l.Origin != s.cfg.Country || l.SellerID != o.SellerID {
				gone = append(gone, it.ListingID)
				continue
			}
			c := *l
			c.Version++
			c.UpdatedAt = now
			n = &c
			byID[it.ListingID] = n
			back.Listings = append(back.Listings, n)
		}
		// A seller may have raised the stock to the limit meanwhile.
		n.Quantity = min(n.Quantity+max(it.Quantity, 0), catalog.MaxQuantity)
	}
	if len(gone) > 0 {
		e := &o.History[len(o.History)-1]
		note := fmt.Sprintf("stock not given back to %s: deleted by the seller", strings.Join(gone, ", "))
		if e.Reason != "" {
			note = e.Reason + "; " + note
		}
		e.Reason = note
	}
	if len(back.Listings) == 0 {
		back = nil
	}
	return back, gone
}

// indexStockBack shows the stock an order gave back in the catalog's
// index (which tells the federation) and logs the listings that got none.
func (s *Service) indexStockBack(o *Order, back *StockBack, gone []string) {
	if back != nil {
		if err := s.cfg.Catalog.Indexed(back.Listings...); err != nil {
			s.log.Error("index after stock given back", "order", o.ID, "err", err)
		}
		s.log.Info("stock given back", "order", o.ID, "status", o.Status, "listings", len(back.Listings))
	}
	for _, id := range gone {
		s.log.Warn("stock not given back: the listing was deleted", "order", o.ID, "listing", id)
	}
}

// listingIDs lists the listings of back.
func listingIDs(back *StockBack) []string {
	if back == nil {
		return nil
	}
	ids := make([]string, len(back.Listings))
	for i, l := range back.Listings {
		ids[i] = l.ID
	}
	return ids
}
