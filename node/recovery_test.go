package node_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/imtgt/imtgt-node/federation"
	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/internal/testnet"
	"github.com/imtgt/imtgt-node/orders"
)

// TestRecoverOrders drives the seller's side of order recovery with what a
// buyer's node may send after a restore: genuine pages are applied exactly
// once, without taking stock again, and forged or inconsistent ones are
// refused naming what is wrong.
func TestRecoverOrders(t *testing.T) {
	on := newOrderNet(t, 100)
	ctx := context.Background()
	id := placeHTTP(t, on, "rec-1", 2)
	testnet.Eventually(t, 10*time.Second, func() bool {
		r := on.my.Do("GET", "/v1/orders/"+id, on.shop, nil)
		return r.Status == http.StatusOK && r.JSON["status"] == "received"
	}, "order not delivered")

	// What MY holds of its orders with TH: the handoff as delivered, TH's
	// receipt, the state.
	recs, entries, more, err := on.my.Orders.Recoverable(ctx, "TH", time.Time{}, "", 10)
	require.NoError(t, err)
	require.False(t, more)
	require.Len(t, recs, 1)
	require.NotNil(t, recs[0].Handoff, "MY keeps the delivered handoff")
	require.Len(t, entries, 1, "sending it again is a recorded crossing")
	require.Equal(t, "order.handoff.egress", string(entries[0].Kind))
	none, _, _, err := on.my.Orders.Recoverable(ctx, "TH", time.Now().Add(time.Hour), "", 10)
	require.NoError(t, err)
	require.Empty(t, none, "nothing changed after since")

	thKey, _, err := federation.Identity(on.th.Keys.Node)
	require.NoError(t, err)
	myKey, _, err := federation.Identity(on.my.Keys.Node)
	require.NoError(t, err)
	// lost is an order TH does not hold, with a receipt signed by key.
	lost := func(signer crypto.PrivKey, mutate func(h *pb.OrderHandoff)) *pb.RecoveredOrder {
		h := on.handoff(t, 1)
		hash, err := orders.PayloadHash(h)
		require.NoError(t, err)
		rc := &pb.Receipt{OrderId: h.OrderId, Kind: orders.KindHandoff, Seq: 1, PayloadHash: hash, Receiver: "TH",
			ReceivedUnixMs: time.Now().UnixMilli(), Result: orders.ResultReceived, Status: string(orders.Received)}
		raw, err := federation.SealReceipt(signer, rc)
		require.NoError(t, err)
		if mutate != nil {
			mutate(h)
		}
		return &pb.RecoveredOrder{OrderId: h.OrderId, Handoff: h, Receipt: raw, Status: string(orders.Accepted), StatusSeq: 1}
	}
	stock := on.thStock(t)

	refused := []struct {
		name string
		rec  *pb.RecoveredOrder
		want string
	}{
		{"receipt signed by another node", lost(myKey, nil), "not this node's"},
		{"receipt of other content", lost(thKey, func(h *pb.OrderHandoff) { h.Items[0].Quantity = 9 }), "acknowledges another message"},
		{"handoff under another order ID", func() *pb.RecoveredOrder {
			r := lost(thKey, nil)
			r.OrderId = "ord_" + ulid.Make().String()
			return r
		}(), "handoff of order"},
		{"unknown status", func() *pb.RecoveredOrder { r := lost(thKey, nil); r.Status = "teleported"; return r }(), `status "teleported"`},
		{"no receipt", func() *pb.RecoveredOrder { r := lost(thKey, nil); r.Receipt = nil; return r }(), "not this node's"},
		{"malformed handoff", lost(thKey, func(h *pb.OrderHandoff) { h.Items = nil }), "items"},
		{"status seq beyond any order's", func() *pb.RecoveredOrder { r := lost(thKey, nil); r.StatusSeq = 1 << 63; return r }(), "status seq"},
		{"status receipt signed by another node", func() *pb.RecoveredOrder {
			r := lost(thKey, nil)
			raw, err := federation.SealReceipt(myKey, &pb.Receipt{OrderId: r.OrderId, Kind: orders.KindStatus, Seq: 1, Receiver: "TH",
				Result: orders.ResultApplied, Status: string(orders.Cancelled)})
			require.NoError(t, err)
			r.StatusReceipts = [][]byte{raw}
			return r
		}(), "a status receipt is not this node's"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			_, err := on.th.Orders.Recover(ctx, "MY", []*pb.RecoveredOrder{c.rec})
			require.ErrorIs(t, err, orders.ErrBadRecovery)
			require.Contains(t, err.Error(), c.want)
		})
	}

	// The order TH holds, as MY knows it: unchanged.
	res, err := on.th.Orders.Recover(ctx, "MY", recs)
	require.NoError(t, err)
	require.Equal(t, orders.RecoverResult{Unchanged: 1}, res)
	// MY learned a later state: TH is brought forward.
	ahead := proto.Clone(recs[0]).(*pb.RecoveredOrder)
	ahead.Status, ahead.StatusSeq = string(orders.Accepted), 1
	res, err = on.th.Orders.Recover(ctx, "MY", []*pb.RecoveredOrder{ahead})
	require.NoError(t, err)
	require.Equal(t, orders.RecoverResult{FastForwards: 1}, res)
	r := on.th.Do("GET", "/v1/orders/"+id, on.seller, nil)
	require.Equal(t, "accepted", r.JSON["status"], string(r.Body))
	// The buyer node's word moves an order only forward along the state
	// machine: "received" again is not applied, though the seq moves on.
	back := proto.Clone(recs[0]).(*pb.RecoveredOrder)
	back.Status, back.StatusSeq = string(orders.Received), 2
	res, err = on.th.Orders.Recover(ctx, "MY", []*pb.RecoveredOrder{back})
	require.NoError(t, err)
	require.Equal(t, orders.RecoverResult{FastForwards: 1}, res)
	r = on.th.Do("GET", "/v1/orders/"+id, on.seller, nil)
	require.Equal(t, "accepted", r.JSON["status"], string(r.Body))
	// (That the next status then continues MY's sequence is what
	// TestProcessRestoreRejoinsWithoutLoss shows end to end.)

	// A lost order is stored again exactly once, without taking stock.
	rec := lost(thKey, nil)
	res, err = on.th.Orders.Recover(ctx, "MY", []*pb.RecoveredOrder{rec})
	require.NoError(t, err)
	require.Equal(t, orders.RecoverResult{Restored: 1}, res)
	res, err = on.th.Orders.Recover(ctx, "MY", []*pb.RecoveredOrder{rec})
	require.NoError(t, err)
	require.Equal(t, orders.RecoverResult{Unchanged: 1}, res)
	require.Equal(t, stock, on.thStock(t), "recovery takes no stock: the catalog records of it were taken back")
	r = on.th.Do("GET", "/v1/orders/"+rec.OrderId, on.seller, nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.Equal(t, "accepted", r.JSON["status"])
	// The relay delivering the same handoff later gets the original receipt.
	again, err := on.my.Fed.DeliverOrder(ctx, "TH", handoffMsg(rec.Handoff))
	require.NoError(t, err)
	require.Equal(t, rec.Receipt, again)
	require.Equal(t, stock, on.thStock(t))

	// An order the buyer's node no longer keeps the handoff of: nothing to
	// store, and the gap is on record.
	gone := lost(thKey, nil)
	gone.Handoff = nil
	res, err = on.th.Orders.Recover(ctx, "MY", []*pb.RecoveredOrder{gone})
	require.NoError(t, err)
	require.Equal(t, orders.RecoverResult{}, res)
}

// FuzzRecover feeds the seller's side of recovery arbitrary recovered
// orders, as a member could send: none may be stored unless it carries this
// node's own receipt of exactly its handoff, and none may crash the node.
func FuzzRecover(f *testing.F) {
	on := newOrderNet(f, 100)
	ctx := context.Background()
	seed, _ := proto.Marshal(&pb.RecoveredOrder{OrderId: "ord_1", Status: "shipped", StatusSeq: 2, Receipt: []byte("x"),
		Handoff: &pb.OrderHandoff{OrderId: "ord_1", BuyerCountry: "MY", Items: []*pb.OrderItem{{ListingId: on.listing, Quantity: 1}}}})
	f.Add(seed)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var rec pb.RecoveredOrder
		if proto.Unmarshal(b, &rec) != nil {
			return
		}
		res, err := on.th.Orders.Recover(ctx, "MY", []*pb.RecoveredOrder{&rec})
		if err != nil {
			require.ErrorIs(t, err, orders.ErrBadRecovery)
		}
		require.Zero(t, res.Restored, "stored an order without this node's receipt")
	})
}

// TestRecoverOrdersPlacedByTheRestoredNode: the restored node is the
// buyer's. The seller's node hands back the restored node's own receipts
// of its status messages, and the restored node's copy moves forward, so
// the seller's next status is the one it expects.
func TestRecoverOrdersPlacedByTheRestoredNode(t *testing.T) {
	on := newOrderNet(t, 100)
	ctx := context.Background()
	id := placeHTTP(t, on, "placed-1", 1)
	status := func() string {
		r := on.my.Do("GET", "/v1/orders/"+id, on.shop, nil)
		return r.JSON["status"].(string)
	}
	testnet.Eventually(t, 10*time.Second, func() bool { return status() == "received" }, "order not delivered")
	r := on.th.Do("POST", "/v1/orders/"+id+"/transitions", on.seller, map[string]any{"to": "accepted"})
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	testnet.Eventually(t, 10*time.Second, func() bool { return status() == "accepted" }, "status did not reach MY")

	// MY's copy rewound to before the status (as a restore would).
	_, err := on.my.Store.UpdateOrder(ctx, id, func(o *orders.Order) ([]orders.OutboxRow, error) {
		o.InSeq, o.Status = 0, orders.Received
		return nil, nil
	})
	require.NoError(t, err)
	recs, entries, _, err := on.th.Orders.Recoverable(ctx, "MY", time.Time{}, "", 10)
	require.NoError(t, err)
	require.Empty(t, entries, "no personal data crosses for orders the requester placed")
	require.Len(t, recs, 1)
	require.True(t, recs[0].PlacedByYou)
	require.Nil(t, recs[0].Handoff)
	res, err := on.my.Orders.Recover(ctx, "TH", recs)
	require.NoError(t, err)
	require.Equal(t, orders.RecoverResult{FastForwards: 1}, res)
	require.Equal(t, "accepted", status())

	// A lost order placed here is on record; a forged receipt is refused.
	gone := proto.Clone(recs[0]).(*pb.RecoveredOrder)
	gone.OrderId = "ord_" + ulid.Make().String()
	gone.StatusReceipts = nil
	res, err = on.my.Orders.Recover(ctx, "TH", []*pb.RecoveredOrder{gone})
	require.NoError(t, err)
	require.Equal(t, orders.RecoverResult{}, res)
	thKey, _, err := federation.Identity(on.th.Keys.Node)
	require.NoError(t, err)
	forged, err := federation.SealReceipt(thKey, &pb.Receipt{OrderId: id, Kind: orders.KindStatus, Seq: 2, Receiver: "MY", Result: orders.ResultApplied, Status: "delivered"})
	require.NoError(t, err)
	bad := proto.Clone(recs[0]).(*pb.RecoveredOrder)
	bad.StatusReceipts = [][]byte{forged}
	_, err = on.my.Orders.Recover(ctx, "TH", []*pb.RecoveredOrder{bad})
	require.ErrorIs(t, err, orders.ErrBadRecovery)

	// The seller's next status continues the sequence MY now expects.
	r = on.th.Do("POST", "/v1/orders/"+id+"/transitions", on.seller, map[string]any{"to": "packed"})
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	testnet.Eventually(t, 10*time.Second, func() bool { return status() == "packed" }, "status after the recovery did not reach MY")
}

// TestRecoverBuyersOwnCancellation: the restored buyer's node had sent a
// cancellation the seller applied; the seller's node hands back its receipt
// of it, so the restored copy is cancelled again and its next message
// number is the one the seller expects.
func TestRecoverBuyersOwnCancellation(t *testing.T) {
	on := newOrderNet(t, 100)
	ctx := context.Background()
	id := placeHTTP(t, on, "cancel-1", 1)
	testnet.Eventually(t, 10*time.Second, func() bool {
		r := on.my.Do("GET", "/v1/orders/"+id, on.shop, nil)
		return r.JSON["status"] == "received"
	}, "order not delivered")
	r := on.my.Do("POST", "/v1/orders/"+id+"/cancel", on.shop, map[string]any{"reason": "buyer changed their mind"})
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	testnet.Eventually(t, 10*time.Second, func() bool {
		r := on.th.Do("GET", "/v1/orders/"+id, on.seller, nil)
		return r.JSON["status"] == "cancelled"
	}, "cancellation did not reach TH")
	testnet.Eventually(t, 10*time.Second, func() bool { return len(on.outbox(t)) == 0 }, "MY's outbox did not empty")

	// MY's copy rewound to before the cancellation (as a restore would).
	_, err := on.my.Store.UpdateOrder(ctx, id, func(o *orders.Order) ([]orders.OutboxRow, error) {
		o.OutSeq, o.Status = 0, orders.Received
		return nil, nil
	})
	require.NoError(t, err)
	recs, _, _, err := on.th.Orders.Recoverable(ctx, "MY", time.Time{}, "", 10)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Len(t, recs[0].SellerReceipts, 1)
	res, err := on.my.Orders.Recover(ctx, "TH", recs)
	require.NoError(t, err)
	require.Equal(t, orders.RecoverResult{FastForwards: 1}, res)
	o, err := on.my.Store.Order(ctx, id)
	require.NoError(t, err)
	require.Equal(t, orders.Cancelled, o.Status)
	require.EqualValues(t, 1, o.OutSeq)

	// A receipt signed by another node than the seller's is refused.
	myKey, _, err := federation.Identity(on.my.Keys.Node)
	require.NoError(t, err)
	forged, err := federation.SealReceipt(myKey, &pb.Receipt{OrderId: id, Kind: orders.KindStatus, Seq: 2, Receiver: "TH", Result: orders.ResultApplied, Status: "cancelled"})
	require.NoError(t, err)
	bad := proto.Clone(recs[0]).(*pb.RecoveredOrder)
	bad.SellerReceipts = [][]byte{forged}
	_, err = on.my.Orders.Recover(ctx, "TH", []*pb.RecoveredOrder{bad})
	require.ErrorIs(t, err, orders.ErrBadRecovery)
}
