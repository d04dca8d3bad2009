package node_test

// A cancelled order gives its stock back on the seller's node (issue 13),
// in one process on real loopback: TH holds the listing, MY orders.

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/internal/testnet"
	"github.com/imtgt/imtgt-node/orders"
)

// waitStock waits for the listing's stock and version on TH (index and API
// agree) and for MY's catalog to show the same stock (the catalog log
// record of the change reached the federation); it returns TH's version.
func (on *orderNet) waitStock(t *testing.T, want int64, msg string) uint64 {
	t.Helper()
	testnet.Eventually(t, 10*time.Second, func() bool { l, _ := on.th.Catalog.Get(on.listing); return l != nil && l.Quantity == want }, msg+" (TH)")
	require.Equal(t, want, on.thStock(t))
	testnet.Eventually(t, 10*time.Second, func() bool { l, _ := on.my.Catalog.Get(on.listing); return l != nil && l.Quantity == want }, msg+" (MY)")
	l, _ := on.th.Catalog.Get(on.listing)
	return l.Version
}

// received places an order of qty on MY and waits until TH took its
// stock.
func (on *orderNet) received(t *testing.T, key string, qty int, stock int64) string {
	t.Helper()
	oid := placeHTTP(t, on, key, qty)
	testnet.Eventually(t, 10*time.Second, func() bool {
		return on.my.Do("GET", "/v1/orders/"+oid, on.shop, nil).JSON["status"] == "received"
	}, "the order was not received")
	on.waitStock(t, stock-int64(qty), "stock not taken")
	return oid
}

func (on *orderNet) transition(t *testing.T, oid string, to string, want int) {
	t.Helper()
	r := on.th.Do("POST", "/v1/orders/"+oid+"/transitions", on.seller, map[string]string{"to": to, "reason": "test: " + to})
	require.Equal(t, want, r.Status, string(r.Body))
}

// Every way an order that took stock ends before it ships gives the stock
// back once, with one new listing version, seen by TH and MY alike.
func TestCancelGivesStockBack(t *testing.T) {
	on := newOrderNet(t, 100)
	cases := []struct {
		name   string
		steps  []string // seller transitions before the end
		byShop bool     // the marketplace cancels on MY (else the seller on TH)
		end    string
	}{
		{"seller cancels a received order", nil, false, "cancelled"},
		{"seller cancels an accepted order", []string{"accepted"}, false, "cancelled"},
		{"seller cancels a packed order", []string{"accepted", "packed"}, false, "cancelled"},
		{"seller rejects a received order", nil, false, "rejected"},
		{"marketplace cancels a received order", nil, true, "cancelled"},
		{"marketplace cancels an accepted order", []string{"accepted"}, true, "cancelled"},
		{"marketplace cancels a packed order", []string{"accepted", "packed"}, true, "cancelled"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := on.thStock(t)
			oid := on.received(t, "back-"+string(rune('a'+i)), 3, before)
			for _, to := range c.steps {
				on.transition(t, oid, to, http.StatusOK)
			}
			l, _ := on.th.Catalog.Get(on.listing)
			taken := l.Version
			if c.byShop {
				if len(c.steps) > 0 {
					testnet.Eventually(t, 10*time.Second, func() bool {
						return on.my.Do("GET", "/v1/orders/"+oid, on.shop, nil).JSON["status"] == c.steps[len(c.steps)-1]
					}, "MY did not see the seller's state")
				}
				r := on.my.Do("POST", "/v1/orders/"+oid+"/cancel", on.shop, map[string]string{"reason": "changed my mind"})
				require.Equal(t, http.StatusOK, r.Status, string(r.Body))
			} else {
				on.transition(t, oid, c.end, http.StatusOK)
			}
			v := on.waitStock(t, before, "stock not given back")
			require.Equal(t, taken+1, v, "one new version gives the stock back")
			o, err := on.th.Orders.Get(context.Background(), oid)
			require.NoError(t, err)
			require.Equal(t, orders.Status(c.end), o.Status)
			testnet.Eventually(t, 10*time.Second, func() bool {
				return on.my.Do("GET", "/v1/orders/"+oid, on.shop, nil).JSON["status"] == c.end
			}, "MY does not show the end")
			require.Never(t, func() bool { l, _ := on.th.Catalog.Get(on.listing); return l == nil || l.Quantity != before }, 200*time.Millisecond, 20*time.Millisecond, "stock given back once")
		})
	}
}

// A repeated cancellation message (network or straight into the service)
// gets its original receipt and gives nothing back twice.
func TestCancelStockNotTwice(t *testing.T) {
	on := newOrderNet(t, 10)
	ctx := context.Background()
	oid := on.received(t, "twice-1", 4, 10)
	st := &pb.OrderStatus{OrderId: oid, Seq: 1, Status: string(orders.Cancelled), Reason: "buyer changed mind", UpdatedUnixMs: time.Now().UnixMilli()}
	first, err := on.my.Fed.DeliverOrder(ctx, "TH", statusMsg(st))
	require.NoError(t, err)
	rc, err := on.my.Fed.OpenReceipt(first, "TH")
	require.NoError(t, err)
	require.Equal(t, orders.ResultApplied, rc.Result)
	require.Equal(t, string(orders.Cancelled), rc.Status)
	v := on.waitStock(t, 10, "stock not given back")
	for range 3 {
		again, err := on.th.Orders.HandleStatus(ctx, "MY", proto.Clone(st).(*pb.OrderStatus))
		require.NoError(t, err)
		require.Equal(t, first, again)
		again, err = on.my.Fed.DeliverOrder(ctx, "TH", statusMsg(st))
		require.NoError(t, err)
		require.Equal(t, first, again)
	}
	require.Equal(t, int64(10), on.thStock(t))
	l, _ := on.th.Catalog.Get(on.listing)
	require.Equal(t, v, l.Version, "no second version")
	// The seller cannot cancel it again either.
	on.transition(t, oid, "cancelled", http.StatusConflict)
	require.Equal(t, int64(10), on.thStock(t))
}

// An order that took no stock (rejected on arrival) gives none back, and
// one that shipped cannot be cancelled: the stock stays with the goods.
func TestCancelStockNotWithoutStock(t *testing.T) {
	on := newOrderNet(t, 5)
	ctx := context.Background()

	// Rejected on arrival: more than the stock (placed by hand, MY's
	// catalog would refuse it).
	h := on.handoff(t, 9)
	raw, err := on.my.Fed.DeliverOrder(ctx, "TH", handoffMsg(h))
	require.NoError(t, err)
	rc, err := on.my.Fed.OpenReceipt(raw, "TH")
	require.NoError(t, err)
	require.Equal(t, orders.ResultRejected, rc.Result)
	st := &pb.OrderStatus{OrderId: h.OrderId, Seq: 1, Status: string(orders.Cancelled), UpdatedUnixMs: time.Now().UnixMilli()}
	raw, err = on.my.Fed.DeliverOrder(ctx, "TH", statusMsg(st))
	require.NoError(t, err)
	rc, err = on.my.Fed.OpenReceipt(raw, "TH")
	require.NoError(t, err)
	require.Equal(t, orders.ResultRefused, rc.Result)
	require.Contains(t, rc.Reason, "cannot cancel an order that is rejected")
	on.transition(t, h.OrderId, "cancelled", http.StatusConflict)
	require.Equal(t, int64(5), on.thStock(t))

	// Shipped: neither side may cancel, the stock stays taken.
	oid := on.received(t, "shipped-1", 2, 5)
	for _, to := range []string{"accepted", "packed"} {
		on.transition(t, oid, to, http.StatusOK)
	}
	r := on.th.Do("POST", "/v1/orders/"+oid+"/transitions", on.seller, map[string]string{"to": "shipped", "tracking": "TH1"})
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	on.transition(t, oid, "cancelled", http.StatusConflict)
	st = &pb.OrderStatus{OrderId: oid, Seq: 1, Status: string(orders.Cancelled), UpdatedUnixMs: time.Now().UnixMilli()}
	raw, err = on.my.Fed.DeliverOrder(ctx, "TH", statusMsg(st))
	require.NoError(t, err)
	rc, err = on.my.Fed.OpenReceipt(raw, "TH")
	require.NoError(t, err)
	require.Equal(t, orders.ResultRefused, rc.Result)
	require.Equal(t, string(orders.Shipped), rc.Status)
	require.Equal(t, int64(3), on.thStock(t))
}

// A listing the seller deleted meanwhile gets nothing back (it is not
// brought back to life); the order's history says so.
func TestCancelStockListingDeleted(t *testing.T) {
	on := newOrderNet(t, 10)
	ctx := context.Background()
	oid := on.received(t, "deleted-1", 2, 10)
	r := on.th.Do("DELETE", "/v1/listings/"+on.listing, on.seller, nil)
	require.Equal(t, http.StatusNoContent, r.Status, string(r.Body))
	on.transition(t, oid, "cancelled", http.StatusOK)
	_, ok := on.th.Catalog.Get(on.listing)
	require.False(t, ok, "a deleted listing stays deleted")
	_, ok, err := on.th.Store.Listing(ctx, on.listing)
	require.NoError(t, err)
	require.False(t, ok)
	o, err := on.th.Orders.Get(ctx, oid)
	require.NoError(t, err)
	require.Equal(t, orders.Cancelled, o.Status)
	last := o.History[len(o.History)-1]
	require.Contains(t, last.Reason, "stock not given back to "+on.listing)
	require.Contains(t, last.Reason, "test: cancelled", "the seller's reason is kept")
	require.Equal(t, "test: cancelled", o.Reason, "the reason sent to the buyer's node is the seller's")
	require.Contains(t, on.th.Logs(), "stock not given back")
}

// A listing changed behind the index (as another replica sharing the
// store would) is read again: the stock comes back on top of that change,
// neither is lost.
func TestCancelStockStaleListing(t *testing.T) {
	on := newOrderNet(t, 10)
	ctx := context.Background()
	for _, byShop := range []bool{false, true} {
		before := on.thStock(t)
		oid := on.received(t, "stale-"+map[bool]string{false: "seller", true: "shop"}[byShop], 3, before)
		stored, ok, err := on.th.Store.Listing(ctx, on.listing)
		require.NoError(t, err)
		require.True(t, ok)
		other := *stored
		other.Version++
		other.Quantity += 50 // the seller restocked through another replica
		require.NoError(t, on.th.Store.ApplyLocal(ctx, "TH", []catalog.Change{{Listing: &other}}, on.th.Catalog.Seal()))
		l, _ := on.th.Catalog.Get(on.listing)
		require.Equal(t, stored.Version, l.Version, "the index is behind the store")
		if byShop {
			r := on.my.Do("POST", "/v1/orders/"+oid+"/cancel", on.shop, nil)
			require.Equal(t, http.StatusOK, r.Status, string(r.Body))
		} else {
			on.transition(t, oid, "cancelled", http.StatusOK)
		}
		v := on.waitStock(t, before+50, "stock not given back on top of the other change")
		require.Equal(t, other.Version+1, v)
		got, _, err := on.th.Store.Listing(ctx, on.listing)
		require.NoError(t, err)
		require.Equal(t, before+50, got.Quantity)
	}
}
