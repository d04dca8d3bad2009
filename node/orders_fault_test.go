package node_test

// Fault tests of cross-border orders, in one process on real loopback:
// replays, conflicts, forged receipts, a listing deleted while the order
// was on its way, status messages out of order, and a seller's node that
// was down while orders were placed.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/federation"
	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/internal/testnet"
	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/node"
	"github.com/imtgt/imtgt-node/orders"
	"github.com/imtgt/imtgt-node/policy"
)

// orderNet is a TH seller's node and an MY buyer's node, federated, with
// one TH listing of the given stock synced to MY and an MY marketplace.
type orderNet struct {
	fed              *testnet.Net
	th, my           *testnet.Node
	sellerID, seller string // the TH seller and its token
	listing          string
	stock            int64
	shop             string // the MY marketplace's token
}

func newOrderNet(t testing.TB, stock int64) *orderNet {
	t.Helper()
	return newOrderNetWith(t, stock, testnet.FedOptions{})
}

// newOrderNetWith is newOrderNet with the nodes run as opts says (a
// country's clock, its store).
func newOrderNetWith(t testing.TB, stock int64, opts testnet.FedOptions) *orderNet {
	t.Helper()
	fed := testnet.FederateWith(t, opts, "TH", "MY")
	on := &orderNet{fed: fed, th: fed.Nodes["TH"], my: fed.Nodes["MY"], stock: stock}
	on.sellerID, on.seller = on.th.ActiveSeller(testnet.THSeller("Surat Thani Rice & Coffee Co., Ltd.", 3))
	body := testnet.Listing("ข้าวหอมมะลิ 5 กก. jasmine rice", "100630", "265.00")
	body["quantity"] = stock
	r := on.th.Do("POST", "/v1/listings", on.seller, body)
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	on.listing = r.JSON["id"].(string)
	testnet.Eventually(t, 10*time.Second, func() bool { _, ok := on.my.Catalog.Get(on.listing); return ok }, "listing did not sync to MY")
	on.shop = marketplace(t, on.my, "Shopee-like MY")
	return on
}

// thStock is the listing's stock on the TH node, in its index and through
// its API (which must agree).
func (on *orderNet) thStock(t *testing.T) int64 {
	t.Helper()
	l, ok := on.th.Catalog.Get(on.listing)
	require.True(t, ok, "listing %s gone from the TH index", on.listing)
	r := on.th.Do("GET", "/v1/listings/"+on.listing, on.seller, nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.EqualValues(t, l.Quantity, r.JSON["quantity"], "index and API disagree")
	return l.Quantity
}

// sellerOrders lists the TH seller's orders through the API (every page).
func (on *orderNet) sellerOrders(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	cursor := ""
	for {
		r := on.th.Do("GET", "/v1/orders?limit=100&cursor="+cursor, on.seller, nil)
		require.Equal(t, http.StatusOK, r.Status, string(r.Body))
		for _, it := range r.JSON["items"].([]any) {
			out = append(out, it.(map[string]any))
		}
		cursor, _ = r.JSON["next_cursor"].(string)
		if cursor == "" {
			return out
		}
	}
}

func (on *orderNet) outbox(t *testing.T) []map[string]any {
	t.Helper()
	r := on.my.Do("GET", "/v1/outbox", on.my.OperatorToken, nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	var rows []map[string]any
	for _, it := range r.JSON["items"].([]any) {
		rows = append(rows, it.(map[string]any))
	}
	return rows
}

// handoff is an order handoff as MY's node would send it, built by hand.
func (on *orderNet) handoff(t *testing.T, qty int64) *pb.OrderHandoff {
	t.Helper()
	l, ok := on.th.Catalog.Get(on.listing)
	require.True(t, ok)
	now := time.Now()
	return &pb.OrderHandoff{
		OrderId: "ord_" + ulid.Make().String(), BuyerCountry: "MY", SellerId: on.sellerID,
		Items: []*pb.OrderItem{{ListingId: l.ID, Quantity: qty, UnitPrice: &pb.Money{Minor: l.Price.Minor, Currency: l.Price.Currency},
			Title: l.Title, HsCode: l.HSCode}},
		Quote:     on.quote(t, l, qty, now),
		Recipient: &pb.Recipient{Name: "Nurul Aina", Phone: "+60 12 345 6789", Line1: "12 Jalan Burma", City: "George Town", Region: "MY-07", Postcode: "10050", Country: "MY"},
		Consent:   &pb.Consent{}, CreatedUnixMs: now.UnixMilli(), LegalBasis: "contract_necessity",
	}
}

// quote is the landed-cost quote MY's node makes for qty of l at now,
// with its installed policy: what TH's node computes again.
func (on *orderNet) quote(t *testing.T, l *catalog.Listing, qty int64, now time.Time) *pb.OrderQuote {
	t.Helper()
	p, _ := on.my.Policy()
	return quoteOf(t, p, now, policy.QuoteItem{Listing: policy.Listing{ID: l.ID, Origin: l.Origin, HSCode: l.HSCode, UnitPrice: l.Price}, Quantity: qty})
}

// quoteOf is the consignment quote of items under p, as a handoff carries it.
func quoteOf(t testing.TB, p *policy.Policy, now time.Time, items ...policy.QuoteItem) *pb.OrderQuote {
	t.Helper()
	pq, err := policy.MakeOrderQuote(p, items, "", now)
	require.NoError(t, err)
	duties, taxes := money.Amount{Currency: p.Currency}, money.Amount{Currency: p.Currency}
	for _, d := range pq.Duties {
		duties.Minor += d.Amount.Minor
	}
	for _, x := range pq.Taxes {
		taxes.Minor += x.Amount.Minor
	}
	pbm := func(a money.Amount) *pb.Money { return &pb.Money{Minor: a.Minor, Currency: a.Currency} }
	return &pb.OrderQuote{ItemTotal: pbm(pq.ItemTotal), DutiesTotal: pbm(duties), TaxesTotal: pbm(taxes), LandedTotal: pbm(pq.LandedTotal),
		RatesDate: pq.RatesDate, PolicyVersion: pq.PolicyVersion}
}

func handoffMsg(h *pb.OrderHandoff) *pb.Message {
	return &pb.Message{Body: &pb.Message_OrderHandoff{OrderHandoff: proto.Clone(h).(*pb.OrderHandoff)}}
}

func statusMsg(st *pb.OrderStatus) *pb.Message {
	return &pb.Message{Body: &pb.Message_OrderStatus{OrderStatus: proto.Clone(st).(*pb.OrderStatus)}}
}

// metric sums a counter or gauge family of a node's registry.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

func placeHTTP(t *testing.T, on *orderNet, key string, qty int) string {
	t.Helper()
	r := doKey(t, on.my, on.shop, key, orderBody("MY", "MY-07", on.listing, qty, false))
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	return r.JSON["id"].(string)
}

// (a) A replayed handoff gets the identical original receipt, over the
// network and straight into the service, also when the copies race; one
// order, stock decremented once.
func TestOrderFaultReplayedHandoff(t *testing.T) {
	on := newOrderNet(t, 100)
	ctx := context.Background()
	h := on.handoff(t, 3)
	first, err := on.my.Fed.DeliverOrder(ctx, "TH", handoffMsg(h))
	require.NoError(t, err)
	rc, err := on.my.Fed.OpenReceipt(first, "TH")
	require.NoError(t, err)
	hash, err := orders.PayloadHash(h)
	require.NoError(t, err)
	require.Equal(t, h.OrderId, rc.OrderId)
	require.Equal(t, orders.KindHandoff, rc.Kind)
	require.EqualValues(t, 1, rc.Seq)
	require.Equal(t, hash, rc.PayloadHash)
	require.Equal(t, "TH", rc.Receiver)
	require.Equal(t, orders.ResultReceived, rc.Result)
	require.Equal(t, string(orders.Received), rc.Status)
	require.EqualValues(t, 97, on.thStock(t))

	again, err := on.my.Fed.DeliverOrder(ctx, "TH", handoffMsg(h))
	require.NoError(t, err)
	require.True(t, bytes.Equal(first, again), "a repeat over the network must get the original receipt")
	direct, err := on.th.Orders.HandleHandoff(ctx, "MY", proto.Clone(h).(*pb.OrderHandoff))
	require.NoError(t, err)
	require.True(t, bytes.Equal(first, direct), "a repeat into the service must get the original receipt")
	require.EqualValues(t, 2, metric(t, on.th.Metrics, "imtgt_orders_duplicate_deliveries_total"))

	// Eight copies of a new handoff at once: one wins, seven get its receipt.
	h2 := on.handoff(t, 4)
	receipts := make([][]byte, 8)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range receipts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				receipts[i], errs[i] = on.th.Orders.HandleHandoff(ctx, "MY", proto.Clone(h2).(*pb.OrderHandoff))
			} else {
				receipts[i], errs[i] = on.my.Fed.DeliverOrder(ctx, "TH", handoffMsg(h2))
			}
		}()
	}
	wg.Wait()
	for i := range receipts {
		require.NoError(t, errs[i], "copy %d", i)
		require.True(t, bytes.Equal(receipts[0], receipts[i]), "copy %d got another receipt", i)
	}
	require.EqualValues(t, 9, metric(t, on.th.Metrics, "imtgt_orders_duplicate_deliveries_total"))

	got := on.sellerOrders(t)
	require.Len(t, got, 2, "one order per handoff")
	ids := map[string]bool{}
	for _, o := range got {
		ids[o["id"].(string)] = true
		require.Equal(t, "received", o["status"])
	}
	require.True(t, ids[h.OrderId] && ids[h2.OrderId], "%v", ids)
	require.EqualValues(t, 100-3-4, on.thStock(t), "stock decremented once per order")
	stored, err := on.th.Orders.Get(ctx, h.OrderId)
	require.NoError(t, err)
	require.True(t, bytes.Equal(first, stored.Receipt), "the stored receipt is the one answered")
	require.Len(t, stored.History, 2, "submitted, received: %+v", stored.History)
	// The stock change reached the buyer's catalog once too.
	testnet.Eventually(t, 10*time.Second, func() bool {
		l, ok := on.my.Catalog.Get(on.listing)
		return ok && l.Quantity == 93
	}, "MY's catalog did not get the new stock")
}

// (b) The same order ID with other content is refused, counted and
// logged; nothing changes.
func TestOrderFaultConflictingHandoff(t *testing.T) {
	on := newOrderNet(t, 100)
	ctx := context.Background()
	h := on.handoff(t, 3)
	first, err := on.th.Orders.HandleHandoff(ctx, "MY", h)
	require.NoError(t, err)
	before, err := on.th.Orders.Get(ctx, h.OrderId)
	require.NoError(t, err)

	for name, mutate := range map[string]func(*pb.OrderHandoff){
		"quantity":  func(h *pb.OrderHandoff) { h.Items[0].Quantity = 5 },
		"recipient": func(h *pb.OrderHandoff) { h.Recipient.Line1 = "1 Lebuh Pantai" },
		"seller":    func(h *pb.OrderHandoff) { h.SellerId = "sel_other" },
	} {
		changed := proto.Clone(h).(*pb.OrderHandoff)
		mutate(changed)
		_, err := on.th.Orders.HandleHandoff(ctx, "MY", changed)
		require.ErrorIs(t, err, orders.ErrConflict, name)
		_, err = on.my.Fed.DeliverOrder(ctx, "TH", handoffMsg(changed))
		require.Error(t, err, name)
		require.Contains(t, err.Error(), "same order ID with different content", name)
	}
	require.EqualValues(t, 6, metric(t, on.th.Metrics, "imtgt_orders_conflicts_total"))
	require.EqualValues(t, 0, metric(t, on.th.Metrics, "imtgt_orders_duplicate_deliveries_total"))
	require.Contains(t, on.th.Logs(), "refused a message: same order and sequence, different content")
	require.Contains(t, on.th.Logs(), h.OrderId)

	after, err := on.th.Orders.Get(ctx, h.OrderId)
	require.NoError(t, err)
	require.Equal(t, before, after, "the stored order must not change")
	require.EqualValues(t, 97, on.thStock(t))
	require.Len(t, on.sellerOrders(t), 1)
	// The original still gets its receipt.
	again, err := on.th.Orders.HandleHandoff(ctx, "MY", proto.Clone(h).(*pb.OrderHandoff))
	require.NoError(t, err)
	require.Equal(t, first, again)
}

// The same order ID from another member's node must not replace the order
// (nor take stock again): the inbox key holds the origin, so only a check
// of the orders bucket can catch it.
func TestOrderFaultOrderIDReusedByAnotherMember(t *testing.T) {
	on := newOrderNet(t, 100)
	ctx := context.Background()
	h := on.handoff(t, 3)
	_, err := on.th.Orders.HandleHandoff(ctx, "MY", h)
	require.NoError(t, err)
	before, err := on.th.Orders.Get(ctx, h.OrderId)
	require.NoError(t, err)

	other := proto.Clone(h).(*pb.OrderHandoff)
	other.BuyerCountry = "ID"
	other.Items[0].Quantity = 7
	_, err = on.th.Orders.HandleHandoff(ctx, "ID", other)
	require.ErrorIs(t, err, orders.ErrConflict)
	after, err := on.th.Orders.Get(ctx, h.OrderId)
	require.NoError(t, err)
	require.Equal(t, before, after, "MY's order was replaced by ID's")
	require.EqualValues(t, 97, on.thStock(t))
}

// (c) A receipt signed by another node than the one it names is refused.
func TestOrderFaultReceiptSignedByWrongNode(t *testing.T) {
	on := newOrderNet(t, 10)
	thKey, _, err := federation.Identity(on.th.Keys.Node)
	require.NoError(t, err)
	myKey, _, err := federation.Identity(on.my.Keys.Node)
	require.NoError(t, err)
	rc := &pb.Receipt{OrderId: "ord_" + ulid.Make().String(), Kind: orders.KindHandoff, Seq: 1, PayloadHash: bytes.Repeat([]byte{7}, 32),
		Receiver: "TH", ReceivedUnixMs: time.Now().UnixMilli(), Result: orders.ResultReceived, Status: string(orders.Received)}

	good, err := federation.SealReceipt(thKey, rc)
	require.NoError(t, err)
	opened, err := on.my.Fed.OpenReceipt(good, "TH")
	require.NoError(t, err)
	require.True(t, proto.Equal(rc, opened))

	rejectedBefore := metric(t, on.my.Metrics, "imtgt_federation_rejected_total")
	forged, err := federation.SealReceipt(myKey, rc) // MY pretending to be TH's node
	require.NoError(t, err)
	_, err = on.my.Fed.OpenReceipt(forged, "TH")
	require.ErrorIs(t, err, federation.ErrBadSignature)
	require.Contains(t, err.Error(), "not by TH's node")
	_, err = on.th.Fed.OpenReceipt(forged, "TH")
	require.ErrorIs(t, err, federation.ErrBadSignature)
	require.Equal(t, rejectedBefore+1, metric(t, on.my.Metrics, "imtgt_federation_rejected_total"))

	// TH's genuine receipt does not count as MY's.
	_, err = on.th.Fed.OpenReceipt(good, "MY")
	require.ErrorIs(t, err, federation.ErrBadSignature)
	// Not a member.
	_, err = on.my.Fed.OpenReceipt(good, "SG")
	require.Error(t, err)
	// Tampered after signing.
	tampered := bytes.Clone(good)
	i := bytes.Index(tampered, []byte(rc.OrderId))
	require.GreaterOrEqual(t, i, 0)
	tampered[i+len(rc.OrderId)-1] ^= 1
	_, err = on.my.Fed.OpenReceipt(tampered, "TH")
	require.ErrorIs(t, err, federation.ErrBadSignature)
	// Garbage.
	_, err = on.my.Fed.OpenReceipt([]byte("not an envelope"), "TH")
	require.ErrorIs(t, err, federation.ErrMalformed)
}

// (d) The listing was deleted on the seller's node after the marketplace
// placed the order and before the order arrived: the seller's node
// rejects it with the reason, and the buyer's node shows it rejected.
func TestOrderFaultListingDeletedBeforeDelivery(t *testing.T) {
	on := newOrderNet(t, 10)
	on.th.Stop()
	oid := placeHTTP(t, on, "deleted-1", 2)
	// The seller withdraws the listing while its node is cut off from the
	// federation: the node opened without its network, so nothing can be
	// delivered meanwhile (the same Catalog.Delete DELETE /v1/listings/{id}
	// calls).
	offline, err := node.Open(context.Background(), on.th.Dir, node.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.NoError(t, offline.Catalog.Delete(context.Background(), on.sellerID, on.listing))
	require.NoError(t, offline.Close(context.Background()))
	on.th.Start()

	var o map[string]any
	testnet.Eventually(t, 20*time.Second, func() bool {
		o = on.my.Do("GET", "/v1/orders/"+oid, on.shop, nil).JSON
		return o["status"] == "rejected"
	}, "the MY node does not show the order rejected")
	require.Equal(t, true, o["handoff_receipt"])
	require.Contains(t, o["reason"], "listing "+on.listing+" no longer exists")
	hist := o["history"].([]any)
	last := hist[len(hist)-1].(map[string]any)
	require.Equal(t, "rejected", last["status"])
	require.Equal(t, "peer", last["by"])

	got := on.sellerOrders(t)
	require.Len(t, got, 1)
	require.Equal(t, oid, got[0]["id"])
	require.Equal(t, "rejected", got[0]["status"])
	require.Contains(t, got[0]["reason"], "no longer exists")
	require.Equal(t, float64(1), metric(t, on.th.Metrics, "imtgt_orders_received_total"))
	testnet.Eventually(t, 10*time.Second, func() bool { return len(on.outbox(t)) == 0 }, "the MY outbox did not drain")
	// The seller cannot move a rejected order on.
	r := on.th.Do("POST", "/v1/orders/"+oid+"/transitions", on.seller, map[string]string{"to": "accepted"})
	require.Equal(t, http.StatusConflict, r.Status, string(r.Body))
}

// (e) A status message ahead of its predecessor is refused with the
// reason and changes nothing; in order, both apply.
func TestOrderFaultStatusOutOfOrder(t *testing.T) {
	on := newOrderNet(t, 10)
	ctx := context.Background()
	oid := placeHTTP(t, on, "ooo-1", 1)
	testnet.Eventually(t, 10*time.Second, func() bool {
		return on.my.Do("GET", "/v1/orders/"+oid, on.shop, nil).JSON["handoff_receipt"] == true
	}, "not delivered")
	before, err := on.my.Orders.Get(ctx, oid)
	require.NoError(t, err)
	require.Equal(t, orders.Received, before.Status)

	now := time.Now().UnixMilli()
	st1 := &pb.OrderStatus{OrderId: oid, Seq: 1, Status: string(orders.Accepted), UpdatedUnixMs: now}
	st2 := &pb.OrderStatus{OrderId: oid, Seq: 2, Status: string(orders.Packed), UpdatedUnixMs: now + 1}

	// Seq 2 first: over the network and straight into the service.
	_, err = on.th.Fed.DeliverOrder(ctx, "MY", statusMsg(st2))
	require.Error(t, err)
	require.Contains(t, err.Error(), "out of order: order "+oid+" expects message 1, got 2")
	_, err = on.my.Orders.HandleStatus(ctx, "TH", proto.Clone(st2).(*pb.OrderStatus))
	require.ErrorContains(t, err, "expects message 1, got 2")
	// A gap further ahead, and another member's message about this order.
	_, err = on.my.Orders.HandleStatus(ctx, "TH", &pb.OrderStatus{OrderId: oid, Seq: 5, Status: string(orders.Shipped)})
	require.ErrorContains(t, err, "expects message 1, got 5")
	_, err = on.my.Orders.HandleStatus(ctx, "ID", proto.Clone(st1).(*pb.OrderStatus))
	require.ErrorIs(t, err, orders.ErrNotFound)
	unchanged, err := on.my.Orders.Get(ctx, oid)
	require.NoError(t, err)
	require.Equal(t, before, unchanged, "a refused message must change nothing")

	// In order: both apply; the refused seq 2 is not remembered as seen.
	raw1, err := on.th.Fed.DeliverOrder(ctx, "MY", statusMsg(st1))
	require.NoError(t, err)
	rc1, err := on.th.Fed.OpenReceipt(raw1, "MY")
	require.NoError(t, err)
	require.Equal(t, orders.ResultApplied, rc1.Result)
	require.Equal(t, string(orders.Accepted), rc1.Status)
	require.EqualValues(t, 1, rc1.Seq)
	raw2, err := on.th.Fed.DeliverOrder(ctx, "MY", statusMsg(st2))
	require.NoError(t, err)
	rc2, err := on.th.Fed.OpenReceipt(raw2, "MY")
	require.NoError(t, err)
	require.Equal(t, orders.ResultApplied, rc2.Result)
	require.Equal(t, string(orders.Packed), rc2.Status)
	// A repeat of seq 1 gets its original receipt and changes nothing.
	again, err := on.my.Orders.HandleStatus(ctx, "TH", proto.Clone(st1).(*pb.OrderStatus))
	require.NoError(t, err)
	require.Equal(t, raw1, again)

	o := on.my.Do("GET", "/v1/orders/"+oid, on.shop, nil).JSON
	require.Equal(t, "packed", o["status"])
	var statuses []string
	for _, e := range o["history"].([]any) {
		statuses = append(statuses, e.(map[string]any)["status"].(string))
	}
	require.Equal(t, []string{"created", "submitted", "received", "accepted", "packed"}, statuses)
	stored, err := on.my.Orders.Get(ctx, oid)
	require.NoError(t, err)
	require.EqualValues(t, 2, stored.InSeq)
}

// (f) The seller's node is down while ten orders are placed: they wait in
// the buyer's outbox with growing attempts and the last error, and once it
// is back every order arrives exactly once.
func TestOrderFaultSellerDownThenBack(t *testing.T) {
	on := newOrderNet(t, 1000)
	ctx := context.Background()
	on.th.Stop()
	var ids []string
	total := int64(0)
	for i := 1; i <= 10; i++ {
		ids = append(ids, placeHTTP(t, on, fmt.Sprintf("down-%d", i), i))
		total += int64(i)
	}
	// The payloads as the outbox holds them, to replay later.
	rows, err := on.my.Store.Outbox(ctx)
	for i := range rows { // the payloads are kept apart from the rows
		p, perr := on.my.Store.OutboxPayload(ctx, rows[i].Dest, rows[i].Seq)
		require.NoError(t, perr)
		rows[i].Payload = p
	}
	require.NoError(t, err)
	require.Len(t, rows, 10)

	var first map[string]float64
	testnet.Eventually(t, 10*time.Second, func() bool {
		rows := on.outbox(t)
		first = map[string]float64{}
		for _, r := range rows {
			if r["attempts"].(float64) < 1 || r["last_error"] == nil || r["last_error"] == "" {
				return false
			}
			first[r["order_id"].(string)] = r["attempts"].(float64)
		}
		return len(rows) == 10
	}, "the outbox does not show ten failed deliveries")
	testnet.Eventually(t, 10*time.Second, func() bool {
		rows := on.outbox(t)
		for _, r := range rows {
			if r["attempts"].(float64) <= first[r["order_id"].(string)] {
				return false
			}
		}
		return len(rows) == 10
	}, "attempts do not grow")
	for _, r := range on.outbox(t) {
		require.Equal(t, "TH", r["destination"])
		require.Equal(t, "handoff", r["kind"])
		require.NotEmpty(t, r["last_error"])
		require.Contains(t, ids, r["order_id"])
	}
	for _, id := range ids {
		require.Equal(t, false, on.my.Do("GET", "/v1/orders/"+id, on.shop, nil).JSON["handoff_receipt"])
	}

	on.th.Start()
	testnet.Eventually(t, 20*time.Second, func() bool { return len(on.outbox(t)) == 0 }, "the MY outbox did not drain")
	got := on.sellerOrders(t)
	seen := map[string]int{}
	for _, o := range got {
		seen[o["id"].(string)]++
		require.Equal(t, "received", o["status"])
	}
	require.Len(t, got, 10)
	for _, id := range ids {
		require.Equal(t, 1, seen[id], id)
		o := on.my.Do("GET", "/v1/orders/"+id, on.shop, nil).JSON
		require.Equal(t, true, o["handoff_receipt"], id)
		require.Equal(t, "received", o["status"], id)
	}
	// Concurrent deliveries after the restart can hit the lost-decrement
	// race TestOrderFaultConcurrentHandoffsOfOneListing shows (about one
	// run in thirty here): every other check still runs, then the test
	// is skipped naming the bug.
	stock, stockBug := on.thStock(t), ""
	if stock != 1000-total {
		stockBug = fmt.Sprintf("stock %d after the orders, want %d", stock, 1000-total)
	}

	// Replaying the very payloads the outbox delivered changes nothing and
	// gets each order's stored receipt back.
	for _, r := range rows {
		var h pb.OrderHandoff
		require.NoError(t, proto.Unmarshal(r.Payload, &h))
		raw, err := on.my.Fed.DeliverOrder(ctx, "TH", handoffMsg(&h))
		require.NoError(t, err)
		o, err := on.my.Orders.Get(ctx, r.OrderID)
		require.NoError(t, err)
		require.Equal(t, o.Receipt, raw, r.OrderID)
	}
	require.Len(t, on.sellerOrders(t), 10)
	require.EqualValues(t, stock, on.thStock(t), "replays must not take stock")
	require.EqualValues(t, 10, metric(t, on.th.Metrics, "imtgt_orders_duplicate_deliveries_total"))
	if stockBug != "" {
		t.Fatal("stock decrements were lost or doubled: " + stockBug)
	}
}

// Concurrent handoffs of different orders for one listing each take their
// quantity: none reads a stock level another has already decremented.
func TestOrderFaultConcurrentHandoffsOfOneListing(t *testing.T) {
	on := newOrderNet(t, 1000)
	ctx := context.Background()
	const rounds, per = 3, 32
	for round := range rounds {
		var wg sync.WaitGroup
		errs := make([]error, per)
		hs := make([]*pb.OrderHandoff, per)
		for i := range hs {
			hs[i] = on.handoff(t, 1)
		}
		for i := range per {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = on.th.Orders.HandleHandoff(ctx, "MY", hs[i])
			}()
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		require.EqualValues(t, 1000-(round+1)*per, on.thStock(t), "round %d: stock lost a decrement", round)
	}
	require.Len(t, on.sellerOrders(t), rounds*per)
	testnet.Eventually(t, 10*time.Second, func() bool {
		l, ok := on.my.Catalog.Get(on.listing)
		return ok && l.Quantity == 1000-rounds*per
	}, "MY's catalog did not get the final stock")
}

// A marketplace that lost the reply retries with the same key after its
// order sold the listing out (or the listing went away): it must get its
// order back, not a refusal.
func TestOrderFaultIdempotentRetryAfterSellOut(t *testing.T) {
	on := newOrderNet(t, 2)
	oid := placeHTTP(t, on, "sellout-1", 2)
	testnet.Eventually(t, 10*time.Second, func() bool {
		l, ok := on.my.Catalog.Get(on.listing)
		return ok && l.Quantity == 0
	}, "the sold-out stock did not reach MY")
	r := doKey(t, on.my, on.shop, "sellout-1", orderBody("MY", "MY-07", on.listing, 2, false))
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	require.Equal(t, oid, r.JSON["id"])
	require.Len(t, on.sellerOrders(t), 1, "nothing new reached the seller")
}

// A batch of handoffs in one order_batch message is handled as one group:
// each handoff still gets its own decision and receipt, stock is taken in
// batch order, and the listing's stock change is one catalog record for
// the whole batch.
func TestOrderBatchOneGroup(t *testing.T) {
	on := newOrderNet(t, 5)
	ctx := context.Background()
	heads, err := on.th.Catalog.Heads(ctx)
	require.NoError(t, err)

	a, b, c := on.handoff(t, 2), on.handoff(t, 2), on.handoff(t, 2)
	conflicting := proto.Clone(a).(*pb.OrderHandoff)
	conflicting.Items[0].Quantity = 1
	malformed := on.handoff(t, 1)
	malformed.OrderId = "not-an-order"
	batch := []*pb.OrderHandoff{a, b, c, proto.Clone(a).(*pb.OrderHandoff), conflicting, malformed}

	receipts, errs, err := on.my.Fed.DeliverOrders(ctx, "TH", batch)
	require.NoError(t, err)
	require.Len(t, receipts, len(batch))
	results := map[string]string{}
	for i, want := range []string{orders.ResultReceived, orders.ResultReceived, orders.ResultRejected} {
		require.NoError(t, errs[i], "handoff %d", i)
		rc, err := on.my.Fed.OpenReceipt(receipts[i], "TH")
		require.NoError(t, err)
		require.Equal(t, batch[i].OrderId, rc.OrderId)
		require.Equal(t, want, rc.Result, "handoff %d: %s", i, rc.Reason)
		results[rc.OrderId] = rc.Result
	}
	rc, err := on.my.Fed.OpenReceipt(receipts[2], "TH")
	require.NoError(t, err)
	require.Contains(t, rc.Reason, "out of stock: listing "+on.listing+" has 1, the order asks 2")
	require.NoError(t, errs[3])
	require.Equal(t, receipts[0], receipts[3], "the same handoff twice in a batch gets one receipt")
	require.ErrorContains(t, errs[4], "same order ID with different content")
	require.ErrorContains(t, errs[5], `bad handoff: order id "not-an-order"`)
	require.Nil(t, receipts[4])
	require.Nil(t, receipts[5])

	require.EqualValues(t, 1, on.thStock(t))
	require.Len(t, on.sellerOrders(t), 3, "one order per distinct handoff")
	after, err := on.th.Catalog.Heads(ctx)
	require.NoError(t, err)
	require.Equal(t, heads["TH"]+1, after["TH"], "one stock record for the batch, not one per order")

	// Delivered again, every handoff gets its original answer.
	again, errs2, err := on.my.Fed.DeliverOrders(ctx, "TH", batch[:3])
	require.NoError(t, err)
	for i := range 3 {
		require.NoError(t, errs2[i])
		require.Equal(t, receipts[i], again[i], "handoff %d", i)
	}
	require.EqualValues(t, 1, on.thStock(t))

	// A batch over the limit is refused as a whole.
	_, _, err = on.my.Fed.DeliverOrders(ctx, "TH", make([]*pb.OrderHandoff, federation.MaxBatch+1))
	require.ErrorContains(t, err, "1 to 64 handoffs")
}
