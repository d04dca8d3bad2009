package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/aftersale"
	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/orders"
	"github.com/imtgt/imtgt-node/store"
)

// Issues are stored in their order and indexed by ID in the order's
// transaction, on both backends: found by ID, listed in ID order after a
// cursor, filtered; a failed change stores nothing.
func TestIssuesIndex(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(t *testing.T) *store.DB) {
		db := open(t)
		ctx := context.Background()
		at := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
		var ids []string
		for i := range 3 {
			oid := fmt.Sprintf("ord_%d", i)
			_, _, err := db.PlaceOrders(ctx, "mkt_1", "k"+oid, []byte("h"), []*orders.Order{{ID: oid, Side: orders.SideBuyer, MarketplaceID: "mkt_1", SellerCountry: "TH"}}, nil)
			require.NoError(t, err)
			for j := range 2 {
				id := aftersale.NewID(at.Add(time.Duration(i*2+j) * time.Second))
				ids = append(ids, id)
				st := aftersale.StatusOpen
				if j == 1 {
					st = aftersale.StatusEscalated
				}
				_, err := db.ChangeOrder(ctx, oid, func(o *orders.Order) (orders.Applied, error) {
					o.Issues = append(o.Issues, &aftersale.Issue{ID: id, OrderID: oid, Status: st})
					return orders.Applied{Audit: []*audit.Entry{{Kind: audit.IssueStep, Records: []string{id, oid}, Reason: "event=open"}}}, nil
				})
				require.NoError(t, err)
			}
		}
		for i, id := range ids {
			oid, err := db.IssueOrder(ctx, id)
			require.NoError(t, err)
			require.Equal(t, fmt.Sprintf("ord_%d", i/2), oid)
		}
		_, err := db.IssueOrder(ctx, aftersale.NewID(at))
		require.ErrorIs(t, err, orders.ErrIssueNotFound)

		all, err := db.Issues(ctx, nil, "", 100)
		require.NoError(t, err)
		require.Len(t, all, 6)
		for i, r := range all {
			require.Equal(t, ids[i], r.Issue.ID, "in ID order")
			require.Equal(t, r.Order.ID, r.Issue.OrderID)
		}
		page, err := db.Issues(ctx, nil, ids[2], 2)
		require.NoError(t, err)
		require.Equal(t, []string{ids[3], ids[4]}, []string{page[0].Issue.ID, page[1].Issue.ID})
		esc, err := db.Issues(ctx, func(_ *orders.Order, is *aftersale.Issue) bool { return is.Status == aftersale.StatusEscalated }, "", 100)
		require.NoError(t, err)
		require.Len(t, esc, 3)

		// A change that fails stores neither the issue nor its index entry nor its audit entry.
		head, _, err := db.AuditHead(ctx)
		require.NoError(t, err)
		lost := aftersale.NewID(at.Add(time.Hour))
		_, err = db.ChangeOrder(ctx, "ord_0", func(o *orders.Order) (orders.Applied, error) {
			o.Issues = append(o.Issues, &aftersale.Issue{ID: lost, OrderID: "ord_0", Status: aftersale.StatusOpen})
			return orders.Applied{Audit: []*audit.Entry{{Kind: audit.IssueStep}}}, fmt.Errorf("refused")
		})
		require.ErrorContains(t, err, "refused")
		_, err = db.IssueOrder(ctx, lost)
		require.ErrorIs(t, err, orders.ErrIssueNotFound)
		after, _, err := db.AuditHead(ctx)
		require.NoError(t, err)
		require.Equal(t, head, after)
	})
}
