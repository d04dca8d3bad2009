package main

// A process-level test of issue 13's "cancelling an order before it ships
// restores the stock": TH (seller) and MY (buyer) onboarded with the CLI,
// run as separate processes; TH is killed while a cancellation is on its
// way, and the stock comes back exactly once.

import (
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/internal/testnet"
)

// onboardPair initialises TH and MY with the CLI, federates them (both
// sign, threshold 2), starts both and waits until they see each other.
func onboardPair(t *testing.T) (th, my *fedNode) {
	t.Helper()
	root := t.TempDir()
	nodes, memberFiles := initCLINodes(t, root, "TH", "MY")
	fedDir := filepath.Join(root, "fed")
	require.NoError(t, os.Mkdir(fedDir, 0o755))
	fed := filepath.Join(fedDir, "fed.yaml")
	expires := time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	out, err := cliRun(t, append([]string{"federation", "create", "--name", "imtgt", "--threshold", "2", "--expires", expires, "--out", fed}, memberFiles...)...)
	require.NoError(t, err, out)
	for _, cc := range []string{"TH", "MY"} {
		out, err = cliRun(t, "federation", "sign", "--dir", nodes[cc].dir, fed)
		require.NoError(t, err, out)
	}
	for _, cc := range []string{"TH", "MY"} {
		out, err = cliRun(t, "federation", "install", "--dir", nodes[cc].dir, "--psk", filepath.Join(fedDir, "swarm.key"), fed)
		require.NoError(t, err, out)
		nodes[cc].start(t)
	}
	for _, cc := range []string{"TH", "MY"} {
		n := nodes[cc]
		testnet.Eventually(t, 20*time.Second, func() bool { return len(n.connectedPeers(t)) == 1 }, cc+" does not see its peer")
	}
	return nodes["TH"], nodes["MY"]
}

func TestProcessCancelRestoresStockThroughKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two node processes")
	}
	th, my := onboardPair(t)
	const stock = 10
	status, reg := apiDo(t, "POST", th.url+"/v1/sellers", "", testnet.THSeller("Surat Thani Rice & Coffee Co., Ltd.", 3))
	require.Equal(t, http.StatusCreated, status, reg)
	sid, seller := reg["id"].(string), reg["token"].(string)
	status, res := apiDo(t, "POST", th.url+"/v1/sellers/"+sid+"/approve", th.token, nil)
	require.Equal(t, http.StatusOK, status, res)
	body := testnet.Listing("ข้าวหอมมะลิ 5 กก. jasmine rice", "100630", "265.00")
	body["quantity"] = stock
	status, res = apiDo(t, "POST", th.url+"/v1/listings", seller, body)
	require.Equal(t, http.StatusCreated, status, res)
	listing := res["id"].(string)
	status, res = apiDo(t, "POST", my.url+"/v1/marketplaces", my.token, map[string]string{"name": "Shopee-like MY"})
	require.Equal(t, http.StatusCreated, status, res)
	shop := res["token"].(string)

	// thListing is the listing's stock and version on TH; myStock its
	// stock in MY's federated catalog (-1 while MY does not have it).
	thListing := func() (qty, version int64) {
		status, res := apiDo(t, "GET", th.url+"/v1/listings/"+listing, seller, nil)
		require.Equal(t, http.StatusOK, status, res)
		return int64(res["quantity"].(float64)), int64(res["version"].(float64))
	}
	myStock := func() int64 {
		status, res := my.get(t, "/v1/catalog/listings/"+listing)
		if status != http.StatusOK {
			return -1
		}
		return int64(res["quantity"].(float64))
	}
	waitStock := func(want int64, msg string) int64 {
		t.Helper()
		testnet.Eventually(t, 30*time.Second, func() bool { q, _ := thListing(); return q == want }, msg+" on TH")
		testnet.Eventually(t, 30*time.Second, func() bool { return myStock() == want }, msg+" in MY's catalog")
		_, v := thListing()
		return v
	}
	myOrder := func(id string) map[string]any {
		status, o := apiDo(t, "GET", my.url+"/v1/orders/"+id, shop, nil)
		require.Equal(t, http.StatusOK, status, o)
		return o
	}
	thOrder := func(id string) map[string]any {
		status, o := apiDo(t, "GET", th.url+"/v1/orders/"+id, seller, nil)
		require.Equal(t, http.StatusOK, status, o)
		return o
	}
	outbox := func() int {
		status, res := my.get(t, "/v1/outbox")
		require.Equal(t, http.StatusOK, status, res)
		return len(res["items"].([]any))
	}
	place := func(key string, qty int) string {
		t.Helper()
		st, res, _ := ordPost(t, my, shop, key, ordBody(listing, qty))
		require.Equal(t, http.StatusCreated, st, res)
		id := res["id"].(string)
		testnet.Eventually(t, 30*time.Second, func() bool { return myOrder(id)["handoff_receipt"] == true }, "the order was not delivered")
		return id
	}
	cancel := func(id string) {
		t.Helper()
		status, o := apiDo(t, "POST", my.url+"/v1/orders/"+id+"/cancel", shop, map[string]string{"reason": "buyer changed their mind"})
		require.Equal(t, http.StatusOK, status, o)
		require.Equal(t, "cancelled", o["status"])
	}
	kill := func() {
		t.Helper()
		require.NoError(t, th.p.cmd.Process.Signal(syscall.SIGKILL))
		waitExit(t, th.p)
	}
	testnet.Eventually(t, 30*time.Second, func() bool { return myStock() == stock }, "the listing did not reach MY")

	// 1. TH is down when MY acknowledges the cancellation: it waits in
	// MY's outbox, and once TH is back the stock returns once.
	a := place("cancel-A", 3)
	taken := waitStock(stock-3, "stock not taken")
	kill()
	cancel(a)
	require.Equal(t, 1, outbox(), "the cancellation waits in MY's outbox")
	th.start(t)
	testnet.Eventually(t, 30*time.Second, func() bool { return outbox() == 0 }, "the cancellation was not delivered")
	require.Equal(t, "cancelled", thOrder(a)["status"])
	require.Equal(t, taken+1, waitStock(stock, "stock not given back after the restart"), "one new version gives it back")
	require.Equal(t, "cancelled", myOrder(a)["status"])

	// 2. TH is killed the moment it has given the stock back, before or
	// after its receipt reached MY: a redelivery finds the inbox entry and
	// gives nothing back twice.
	b := place("cancel-B", 2)
	taken = waitStock(stock-2, "stock not taken")
	cancel(b)
	testnet.Eventually(t, 30*time.Second, func() bool { q, _ := thListing(); return q == stock }, "stock not given back")
	kill()
	delivered := outbox() == 0
	th.start(t)
	testnet.Eventually(t, 30*time.Second, func() bool { return outbox() == 0 }, "the cancellation was not acknowledged")
	t.Logf("TH killed with MY holding the receipt: %v", delivered)
	require.Equal(t, taken+1, waitStock(stock, "stock not exactly back"), "given back once")
	require.Equal(t, "cancelled", thOrder(b)["status"])

	// Ordering again sells the restored stock.
	place("after", stock)
	waitStock(0, "the restored stock was not sold")

	for _, n := range []*fedNode{th, my} {
		require.NoError(t, n.p.cmd.Process.Signal(syscall.SIGTERM))
		require.NoError(t, waitExit(t, n.p), "%s:\n%s", n.cc, n.p.stderr)
		require.NotContains(t, n.p.stderr.String(), "panic", n.cc)
	}
}
