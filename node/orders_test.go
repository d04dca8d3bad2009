package node_test

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/internal/testnet"
	"github.com/imtgt/imtgt-node/node"
)

func marketplace(t testing.TB, n *testnet.Node, name string) string {
	t.Helper()
	r := n.Do("POST", "/v1/marketplaces", n.OperatorToken, map[string]string{"name": name})
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	return r.JSON["token"].(string)
}

func orderBody(country, region, listingID string, qty int, consent bool) map[string]any {
	return map[string]any{
		"buyer": map[string]any{"name": "Nurul Aina", "email": "nurul.private@example.my", "phone": "+60 12 345 6789",
			"address": map[string]string{"line1": "12 Jalan Burma", "city": "George Town", "region": region, "postcode": "10050", "country": country}},
		"consent": map[string]bool{"cross_border_transfer": consent},
		"items":   []map[string]any{{"listing_id": listingID, "quantity": qty}},
	}
}

func doKey(t *testing.T, n *testnet.Node, token, key string, body any) testnet.Response {
	t.Helper()
	return n.DoHeader("POST", "/v1/orders", token, map[string]string{"Idempotency-Key": key}, body)
}

// TestCrossBorderOrder is the orders issue's "done when" in one process:
// a marketplace in MY orders from a TH seller; the TH seller sees it once,
// with the recipient's name and address but not the e-mail; accepting,
// packing and shipping show on the MY node; an ID order without consent
// is refused.
func TestCrossBorderOrder(t *testing.T) {
	fed := testnet.Federate(t, "TH", "MY", "ID")
	th, my, id := fed.Nodes["TH"], fed.Nodes["MY"], fed.Nodes["ID"]
	_, seller := th.ActiveSeller(testnet.THSeller("Surat Thani Rice & Coffee Co., Ltd.", 3))
	r := th.Do("POST", "/v1/listings", seller, testnet.Listing("ข้าวหอมมะลิ 5 กก. jasmine rice", "100630", "265.00"))
	require.Equal(t, http.StatusCreated, r.Status)
	rice := r.JSON["id"].(string)
	for _, n := range []*testnet.Node{my, id} {
		testnet.Eventually(t, 10*time.Second, func() bool { _, ok := n.Catalog.Get(rice); return ok }, "listing did not sync")
	}
	shop := marketplace(t, my, "Shopee-like MY")

	r = doKey(t, my, shop, "order-1", orderBody("MY", "MY-07", rice, 2, false))
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	oid := r.JSON["id"].(string)
	require.Equal(t, "submitted", r.JSON["status"])
	require.Equal(t, "TH", r.JSON["seller_country"])
	require.Equal(t, "MYR", r.JSON["quote"].(map[string]any)["landed_total"].(map[string]any)["currency"])

	// The same key and body: the same order, never a second one.
	again := doKey(t, my, shop, "order-1", orderBody("MY", "MY-07", rice, 2, false))
	require.Equal(t, http.StatusCreated, again.Status)
	require.Equal(t, oid, again.JSON["id"])
	// The same key, another body: 409.
	conflict := doKey(t, my, shop, "order-1", orderBody("MY", "MY-07", rice, 3, false))
	require.Equal(t, http.StatusConflict, conflict.Status, string(conflict.Body))
	// No key: 400.
	require.Equal(t, http.StatusBadRequest, my.Do("POST", "/v1/orders", shop, orderBody("MY", "MY-07", rice, 1, false)).Status)

	// The TH seller sees it once, with the recipient but not the e-mail.
	var sellerOrder map[string]any
	testnet.Eventually(t, 10*time.Second, func() bool {
		items := th.Do("GET", "/v1/orders", seller, nil).JSON["items"].([]any)
		if len(items) == 1 {
			sellerOrder = items[0].(map[string]any)
		}
		return len(items) == 1 && sellerOrder["status"] == "received"
	}, "the order did not reach the TH seller")
	require.Equal(t, oid, sellerOrder["id"])
	rec := sellerOrder["recipient"].(map[string]any)
	require.Equal(t, "Nurul Aina", rec["name"])
	require.Equal(t, "12 Jalan Burma", rec["address"].(map[string]any)["line1"])
	require.Empty(t, rec["email"], "the buyer's e-mail must not reach the seller's node")
	require.Equal(t, "contract_necessity", sellerOrder["legal_basis"])
	// The order is durable a moment before the index shows the new stock.
	testnet.Eventually(t, 5*time.Second, func() bool { l, _ := th.Catalog.Get(rice); return l.Quantity == 8 }, "stock not decremented")
	require.Never(t, func() bool { l, _ := th.Catalog.Get(rice); return l.Quantity != 8 }, 200*time.Millisecond, 20*time.Millisecond, "stock decremented once")
	testnet.Eventually(t, 10*time.Second, func() bool {
		return my.Do("GET", "/v1/orders/"+oid, shop, nil).JSON["handoff_receipt"] == true
	}, "the buyer's node did not get the receipt")

	// Progress flows back to MY.
	for _, to := range []string{"accepted", "packed", "shipped"} {
		body := map[string]string{"to": to}
		if to == "shipped" {
			body["tracking"] = "TH123456789"
		}
		r = th.Do("POST", "/v1/orders/"+oid+"/transitions", seller, body)
		require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	}
	testnet.Eventually(t, 10*time.Second, func() bool {
		o := my.Do("GET", "/v1/orders/"+oid, shop, nil).JSON
		return o["status"] == "shipped" && o["tracking"] == "TH123456789"
	}, "the MY node did not show the seller's progress")

	// Illegal transitions: 409 with the current state.
	r = th.Do("POST", "/v1/orders/"+oid+"/transitions", seller, map[string]string{"to": "accepted"})
	require.Equal(t, http.StatusConflict, r.Status)
	require.Contains(t, string(r.Body), "shipped")
	r = my.Do("POST", "/v1/orders/"+oid+"/cancel", shop, nil)
	require.Equal(t, http.StatusConflict, r.Status, "cannot cancel a shipped order")

	// ID buyers need recorded consent (for a listing ID's import rules allow).
	r = th.Do("POST", "/v1/listings", seller, testnet.Listing("หมอนยางพาราแท้ natural latex pillow", "940490", "4000.00"))
	require.Equal(t, http.StatusCreated, r.Status)
	pillow := r.JSON["id"].(string)
	testnet.Eventually(t, 10*time.Second, func() bool { _, ok := id.Catalog.Get(pillow); return ok }, "listing did not sync to ID")
	idShop := marketplace(t, id, "Tokopedia-like ID")
	r = doKey(t, id, idShop, "k1", orderBody("ID", "ID-SU", pillow, 1, false))
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Body))
	require.Contains(t, string(r.Body), "ID-TR-ORDER-BUYER")
	r = doKey(t, id, idShop, "k2", orderBody("ID", "ID-SU", pillow, 1, true))
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))

	// Others cannot see or touch the order.
	other := marketplace(t, my, "Other shop")
	require.Equal(t, http.StatusNotFound, my.Do("GET", "/v1/orders/"+oid, other, nil).Status)
	require.Equal(t, http.StatusUnauthorized, my.Do("GET", "/v1/orders", "imtgt_marketplace_forged", nil).Status)

	// Nothing pending.
	testnet.Eventually(t, 10*time.Second, func() bool {
		return len(my.Do("GET", "/v1/outbox", my.OperatorToken, nil).JSON["items"].([]any)) == 0
	}, "the MY outbox did not drain")

	// No buyer e-mail anywhere on the TH node's disk or log.
	th.Stop()
	data, err := os.ReadFile(node.StorePath(th.Dir))
	require.NoError(t, err)
	for _, secret := range []string{"nurul.private@example.my", "Nurul Aina", "12 Jalan Burma"} {
		require.False(t, strings.Contains(string(data), secret), fmt.Sprintf("%q in the TH store", secret))
		require.NotContains(t, th.Logs(), secret)
	}
}
