package node_test

// The seller's node prices every handoff again (issue 13): a forged quote,
// a changed price, a policy version it does not hold yet, and a correct
// order of several items, each handed to TH over the real federation
// stream as a buyer's node (or an independent client) would.

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/internal/testnet"
	"github.com/imtgt/imtgt-node/orders"
	"github.com/imtgt/imtgt-node/policy"
)

// deliver hands h to TH from MY's node and opens TH's receipt.
func (on *orderNet) deliver(t *testing.T, h *pb.OrderHandoff) (*pb.Receipt, error) {
	t.Helper()
	raw, err := on.my.Fed.DeliverOrder(context.Background(), "TH", handoffMsg(h))
	if err != nil {
		return nil, err
	}
	rc, err := on.my.Fed.OpenReceipt(raw, "TH")
	require.NoError(t, err)
	return rc, nil
}

// rejections are TH's audit entries of kind rejection that name order id.
func rejections(t *testing.T, n *testnet.Node, id string) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	require.NoError(t, n.Store.AuditScan(context.Background(), 1, func(e *audit.Entry) error {
		if e.Kind == audit.Rejection && len(e.Records) > 0 && e.Records[0] == id {
			out = append(out, *e)
		}
		return nil
	}))
	return out
}

func TestHandoffPricedAgain(t *testing.T) {
	on := newOrderNet(t, 100)
	stock := on.thStock(t)
	pmy := func() *policy.Policy { p, _ := on.my.Policy(); return p }
	testnet.Eventually(t, 10*time.Second, func() bool { p := on.th.PeerPolicy("MY"); return p != nil && p.Version == pmy().Version },
		"TH never held MY's policy")

	for _, tc := range []struct {
		name   string
		forge  func(h *pb.OrderHandoff)
		reason string
	}{
		{"no duty or tax, a lower landed total", func(h *pb.OrderHandoff) {
			h.Quote.DutiesTotal.Minor, h.Quote.TaxesTotal.Minor = 0, 0
			h.Quote.LandedTotal.Minor = h.Quote.ItemTotal.Minor - 500
		}, "quote_mismatch: quote.taxes_total is 0.00 MYR"},
		{"a lower unit price", func(h *pb.OrderHandoff) { h.Items[0].UnitPrice.Minor -= 100 }, "quote_mismatch: items[" + on.listing + "].unit_price"},
		{"a quote in another currency", func(h *pb.OrderHandoff) { h.Quote.ItemTotal.Currency = "USD" }, "quote_mismatch: quote.item_total"},
		{"no policy version", func(h *pb.OrderHandoff) { h.Quote.PolicyVersion = 0 }, "quote_mismatch: the quote names MY's policy version 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := on.handoff(t, 2)
			tc.forge(h)
			rc, err := on.deliver(t, h)
			require.NoError(t, err)
			require.Equal(t, orders.ResultRejected, rc.Result)
			require.True(t, strings.HasPrefix(rc.Reason, tc.reason), rc.Reason)
			o, err := on.th.Orders.Get(context.Background(), h.OrderId)
			require.NoError(t, err)
			require.Equal(t, orders.Rejected, o.Status)
			es := rejections(t, on.th, h.OrderId)
			require.Len(t, es, 1, "the refusal is evidence in TH's audit log")
			require.Equal(t, rc.Reason, es[0].Reason)
			require.Equal(t, "MY", es[0].Peer)
			require.Equal(t, stock, on.thStock(t), "a refused order takes no stock")
		})
	}

	// The honest handoff is received (and the slack of a rounding is kept).
	h := on.handoff(t, 2)
	h.Quote.LandedTotal.Minor++
	rc, err := on.deliver(t, h)
	require.NoError(t, err)
	require.Equal(t, orders.ResultReceived, rc.Result, rc.Reason)
	require.Equal(t, stock-2, on.thStock(t))
	require.Empty(t, rejections(t, on.th, h.OrderId))
}

// A quote made with a policy version TH does not hold yet is not refused:
// the buyer's node gets an error and retries, and once MY's new version
// reached TH the same handoff is received.
func TestHandoffWaitsForThePolicyItWasPricedWith(t *testing.T) {
	on := newOrderNet(t, 100)
	p, _ := on.my.Policy()
	h := on.handoff(t, 1)
	h.Quote.PolicyVersion = p.Version + 1
	_, err := on.deliver(t, h)
	require.Error(t, err)
	require.Contains(t, err.Error(), "has not reached this node yet")
	_, err = on.th.Orders.Get(context.Background(), h.OrderId)
	require.ErrorIs(t, err, orders.ErrNotFound, "nothing stored: the sender retries")

	_, err = on.my.InstallPolicy(context.Background(), bumpPolicy(t, on.my, p.Version+1, "MY", governanceKey(t, on.my)))
	require.NoError(t, err)
	testnet.Eventually(t, 10*time.Second, func() bool { q := on.th.PeerPolicy("MY"); return q != nil && q.Version == p.Version+1 },
		"TH never held MY's new policy")
	rc, err := on.deliver(t, h)
	require.NoError(t, err)
	require.Equal(t, orders.ResultReceived, rc.Result, rc.Reason)

	// And one priced with the older version, which TH still holds, is
	// checked against that version, not refused as stale.
	old := on.handoff(t, 1)
	pold, _ := on.my.Policy()
	require.Equal(t, p.Version+1, pold.Version)
	old.Quote = quoteOf(t, p, time.UnixMilli(old.CreatedUnixMs), policy.QuoteItem{Listing: listingOf(t, on), Quantity: 1})
	rc, err = on.deliver(t, old)
	require.NoError(t, err)
	require.Equal(t, orders.ResultReceived, rc.Result, rc.Reason)
}

// An order of two listings has one quote for the consignment, which TH
// computes the same: 10 bags of rice (about RM349) and 12 of coffee (about
// RM189) are each under MY's RM500 de minimis and low-value-goods tax
// threshold, but not together.
func TestHandoffOfSeveralItems(t *testing.T) {
	on := newOrderNet(t, 100)
	body := testnet.Listing("Kopi Tongkat Ali 200 g", "090121", "120.00")
	body["quantity"] = 50
	r := on.th.Do("POST", "/v1/listings", on.seller, body)
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	second, ok := on.th.Catalog.Get(r.JSON["id"].(string))
	require.True(t, ok)
	h := on.handoff(t, 10)
	h.Items = append(h.Items, proto.Clone(h.Items[0]).(*pb.OrderItem))
	h.Items[1].ListingId, h.Items[1].Title, h.Items[1].HsCode = second.ID, second.Title, second.HSCode
	h.Items[1].UnitPrice = &pb.Money{Minor: second.Price.Minor, Currency: second.Price.Currency}
	h.Items[1].Quantity = 12
	p, _ := on.my.Policy()
	at := time.UnixMilli(h.CreatedUnixMs)
	h.Quote = quoteOf(t, p, at, policy.QuoteItem{Listing: listingOf(t, on), Quantity: 10},
		policy.QuoteItem{Listing: policy.Listing{ID: second.ID, Origin: "TH", HSCode: second.HSCode, UnitPrice: second.Price}, Quantity: 12})
	rc, err := on.deliver(t, h)
	require.NoError(t, err)
	require.Equal(t, orders.ResultReceived, rc.Result, rc.Reason)

	// Each item quoted on its own would be another quote: refused.
	h2 := on.handoff(t, 10)
	h2.Items = append(h2.Items, proto.Clone(h.Items[1]).(*pb.OrderItem))
	one := quoteOf(t, p, at, policy.QuoteItem{Listing: listingOf(t, on), Quantity: 10})
	two := quoteOf(t, p, at, policy.QuoteItem{Listing: policy.Listing{ID: second.ID, Origin: "TH", HSCode: second.HSCode, UnitPrice: second.Price}, Quantity: 12})
	h2.Quote = proto.Clone(one).(*pb.OrderQuote)
	for _, f := range []struct{ dst, src *pb.Money }{{h2.Quote.ItemTotal, two.ItemTotal}, {h2.Quote.DutiesTotal, two.DutiesTotal},
		{h2.Quote.TaxesTotal, two.TaxesTotal}, {h2.Quote.LandedTotal, two.LandedTotal}} {
		f.dst.Minor += f.src.Minor
	}
	whole := quoteOf(t, p, at, policy.QuoteItem{Listing: listingOf(t, on), Quantity: 10},
		policy.QuoteItem{Listing: policy.Listing{ID: second.ID, Origin: "TH", HSCode: second.HSCode, UnitPrice: second.Price}, Quantity: 12})
	require.False(t, proto.Equal(whole, h2.Quote), "the two items cross MY's RM500 de minimis together, not apart")
	rc, err = on.deliver(t, h2)
	require.NoError(t, err)
	require.Equal(t, orders.ResultRejected, rc.Result)
	require.True(t, strings.HasPrefix(rc.Reason, "quote_mismatch"), rc.Reason)
}

// listingOf is the test's first listing as the policy sees it.
func listingOf(t *testing.T, on *orderNet) policy.Listing {
	t.Helper()
	l, ok := on.th.Catalog.Get(on.listing)
	require.True(t, ok)
	return policy.Listing{ID: l.ID, Origin: l.Origin, HSCode: l.HSCode, UnitPrice: l.Price}
}
