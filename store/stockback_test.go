package store_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/orders"
	"github.com/imtgt/imtgt-node/store"
)

// Stock an order gives back is stored with the order's change and the
// listing's catalog log record in one transaction, on the seller's
// transition and on a received cancellation; a change built on a listing
// version that is no longer the stored one stores nothing.
func TestOrderStockBack(t *testing.T) { forEachBackend(t, testOrderStockBack) }

func testOrderStockBack(t *testing.T, open func(t *testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	seal := func(first uint64, cs []catalog.Change) ([][]byte, error) {
		out := make([][]byte, len(cs))
		for i := range cs {
			out[i] = []byte("TH record " + strconv.FormatUint(first+uint64(i), 10))
		}
		return out, nil
	}
	listing := &catalog.Listing{ID: "lst_1", Origin: "TH", SellerID: "sel_1", Quantity: 4, Version: 1}
	require.NoError(t, db.ApplyLocal(ctx, "TH", []catalog.Change{{Listing: listing}}, seal))
	for _, id := range []string{"ord_a", "ord_b"} {
		o := &orders.Order{ID: id, Side: orders.SideSeller, BuyerCountry: "MY", SellerCountry: "TH", SellerID: "sel_1",
			Items: []orders.Item{{ListingID: "lst_1", Quantity: 3}}, Status: orders.Received}
		require.NoError(t, db.ReceiveHandoffs(ctx, []orders.ReceivedHandoff{{Key: orders.InboxKey("MY", id, orders.KindHandoff, 1), Order: o}}, nil, "TH", seal))
	}
	at := func(version uint64, qty int64) *orders.StockBack {
		l := *listing
		l.Version, l.Quantity = version, qty
		return &orders.StockBack{Listings: []*catalog.Listing{&l}, Origin: "TH", Seal: seal}
	}
	check := func(version uint64, qty int64, head uint64) {
		t.Helper()
		got, ok, err := db.Listing(ctx, "lst_1")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, version, got.Version)
		require.Equal(t, qty, got.Quantity)
		heads, err := db.Heads(ctx)
		require.NoError(t, err)
		require.Equal(t, head, heads["TH"])
	}
	cancel := func(o *orders.Order) { o.Status = orders.Cancelled }

	// The seller cancels ord_a: order, listing v2 and log record 2.
	o, err := db.UpdateOrderStock(ctx, "ord_a", func(o *orders.Order) ([]orders.OutboxRow, *orders.StockBack, error) {
		cancel(o)
		return nil, at(2, 7), nil
	})
	require.NoError(t, err)
	require.Equal(t, orders.Cancelled, o.Status)
	check(2, 7, 2)

	// Built on version 1 again (another replica's stale index): refused,
	// nothing stored.
	_, err = db.UpdateOrderStock(ctx, "ord_b", func(o *orders.Order) ([]orders.OutboxRow, *orders.StockBack, error) {
		cancel(o)
		return nil, at(2, 10), nil
	})
	require.ErrorIs(t, err, catalog.ErrStale)
	stored, err := db.Order(ctx, "ord_b")
	require.NoError(t, err)
	require.Equal(t, orders.Received, stored.Status, "a refused stock change leaves the order as it was")
	key := orders.InboxKey("MY", "ord_b", orders.KindStatus, 1)
	_, _, err = db.ApplyReceived(ctx, key, []byte("h"), "ord_b", func(o *orders.Order) (orders.Applied, error) {
		cancel(o)
		return orders.Applied{Receipt: []byte("r"), Stock: at(2, 10)}, nil
	})
	require.ErrorIs(t, err, catalog.ErrStale)
	e, err := db.Inbox(ctx, key)
	require.NoError(t, err)
	require.Nil(t, e, "a refused stock change stores no inbox entry")
	check(2, 7, 2)

	// The buyer's cancellation of ord_b, on version 2: once.
	o, receipt, err := db.ApplyReceived(ctx, key, []byte("h"), "ord_b", func(o *orders.Order) (orders.Applied, error) {
		cancel(o)
		return orders.Applied{Receipt: []byte("r"), Stock: at(3, 10)}, nil
	})
	require.NoError(t, err)
	require.Equal(t, []byte("r"), receipt)
	require.Equal(t, orders.Cancelled, o.Status)
	check(3, 10, 3)
	_, _, err = db.ApplyReceived(ctx, key, []byte("h"), "ord_b", func(o *orders.Order) (orders.Applied, error) {
		return orders.Applied{Receipt: []byte("r"), Stock: at(4, 13)}, nil
	})
	require.ErrorIs(t, err, orders.ErrConflict)
	check(3, 10, 3)

	// No stock: the order alone, no log record.
	_, err = db.UpdateOrderStock(ctx, "ord_a", func(o *orders.Order) ([]orders.OutboxRow, *orders.StockBack, error) {
		o.Reason = "noted"
		return nil, nil, nil
	})
	require.NoError(t, err)
	check(3, 10, 3)
}
