package main

// Process-level order tests: three nodes onboarded with the CLI, run as
// separate processes; the seller's node is killed while orders stream in,
// and the buyer's node is killed between accepting an order and
// delivering it. Every order must arrive exactly once.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/internal/testnet"
)

// onboardOrderNodes initialises TH, MY and ID with the CLI, federates them
// (manifest signed by TH and MY, threshold 2), starts the three processes
// and waits until each sees the other two.
func onboardOrderNodes(t *testing.T) map[string]*fedNode {
	t.Helper()
	root := t.TempDir()
	countries := []string{"TH", "MY", "ID"}
	nodes, memberFiles := initCLINodes(t, root, countries...)
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
	for _, cc := range countries {
		out, err = cliRun(t, "federation", "install", "--dir", nodes[cc].dir, "--psk", filepath.Join(fedDir, "swarm.key"), fed)
		require.NoError(t, err, out)
	}
	for _, cc := range countries {
		nodes[cc].start(t)
	}
	for _, cc := range countries {
		n := nodes[cc]
		testnet.Eventually(t, 20*time.Second, func() bool { return len(n.connectedPeers(t)) == len(countries)-1 },
			cc+" does not see the other two connected")
	}
	return nodes
}

// ordPost posts an order with an Idempotency-Key.
func ordPost(t *testing.T, n *fedNode, token, key string, body any) (int, map[string]any, http.Header) {
	t.Helper()
	status, m, hdr, err := ordPostErr(n, token, key, body)
	require.NoError(t, err)
	return status, m, hdr
}

// ordPostErr is ordPost for goroutines other than the test's.
func ordPostErr(n *fedNode, token, key string, body any) (int, map[string]any, http.Header, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, nil, err
	}
	req, err := http.NewRequest("POST", n.url+"/v1/orders", bytes.NewReader(b))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m, resp.Header, nil
}

func ordBody(listingID string, qty int) map[string]any {
	return map[string]any{
		"buyer": map[string]any{"name": "Nurul Aina", "email": "nurul.private@example.my", "phone": "+60 12 345 6789",
			"address": map[string]string{"line1": "12 Jalan Burma", "city": "George Town", "region": "MY-07", "postcode": "10050", "country": "MY"}},
		"consent": map[string]bool{"cross_border_transfer": false},
		"items":   []map[string]any{{"listing_id": listingID, "quantity": qty}},
	}
}

// ordList returns every order the token may see on the node, by ID.
func ordList(t *testing.T, n *fedNode, token string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	cursor := ""
	for {
		status, res := apiDo(t, "GET", n.url+"/v1/orders?limit=100&cursor="+cursor, token, nil)
		require.Equal(t, http.StatusOK, status, "%s orders: %v", n.cc, res)
		for _, it := range res["items"].([]any) {
			o := it.(map[string]any)
			id := o["id"].(string)
			require.NotContains(t, out, id, "%s lists order %s twice", n.cc, id)
			out[id] = o
		}
		cursor, _ = res["next_cursor"].(string)
		if cursor == "" {
			return out
		}
	}
}

func TestProcessOrdersSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three node processes")
	}
	start := time.Now()
	nodes := onboardOrderNodes(t)
	th, my := nodes["TH"], nodes["MY"]
	t.Logf("onboarded after %s", time.Since(start).Round(time.Millisecond))

	const stock = 100_000
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
	testnet.Eventually(t, 20*time.Second, func() bool {
		status, _ := my.get(t, "/v1/catalog/listings/"+listing)
		return status == http.StatusOK
	}, "the listing did not reach MY")
	status, res = apiDo(t, "POST", my.url+"/v1/marketplaces", my.token, map[string]string{"name": "Shopee-like MY"})
	require.Equal(t, http.StatusCreated, status, res)
	shop := res["token"].(string)
	thStock := func() int64 {
		status, res := apiDo(t, "GET", th.url+"/v1/listings/"+listing, seller, nil)
		require.Equal(t, http.StatusOK, status, res)
		return int64(res["quantity"].(float64))
	}
	sold := int64(0)
	stockBug := ""

	// A. Kill the seller's node mid-stream.
	{
		const n = 40
		type placed struct {
			key string
			qty int
			id  string
		}
		orders := make([]placed, n)
		var done atomic.Int32
		var failed atomic.Value
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				p := placed{key: fmt.Sprintf("A-%02d", i), qty: 1 + i%3}
				st, res, _, err := ordPostErr(my, shop, p.key, ordBody(listing, p.qty))
				if err != nil || st != http.StatusCreated {
					failed.Store(fmt.Sprintf("order %d: %d %v %v", i, st, res, err))
					return
				}
				p.id = res["id"].(string)
				orders[i] = p
				done.Add(1)
			}
		}()
		placing := func(k int32) func() bool {
			return func() bool { return done.Load() >= k || failed.Load() != nil }
		}
		testnet.Eventually(t, 20*time.Second, placing(10), "ten orders not placed")
		require.NoError(t, th.p.cmd.Process.Signal(syscall.SIGKILL))
		waitExit(t, th.p)
		killedAt := done.Load()
		testnet.Eventually(t, 20*time.Second, placing(25), "25 orders not placed")
		// Restart while the last orders come in.
		th.p = startProc(t, "run", "--dir", th.dir)
		restartedAt := done.Load()
		wg.Wait()
		require.Nil(t, failed.Load())
		waitHealthy(t, th.p, th.url)
		t.Logf("TH killed after %d orders, restarted after %d", killedAt, restartedAt)

		want := map[string]int{}
		total := int64(0)
		for _, p := range orders {
			want[p.id] = p.qty
			total += int64(p.qty)
		}
		require.Len(t, want, n, "40 distinct order IDs")
		var got map[string]map[string]any
		testnet.Eventually(t, 45*time.Second, func() bool {
			got = ordList(t, th, seller)
			return len(got) >= n
		}, "the orders did not all reach TH")
		require.Len(t, got, n, "every order on TH exactly once")
		for id, qty := range want {
			o, ok := got[id]
			require.True(t, ok, "order %s missing on TH", id)
			require.Equal(t, "received", o["status"], id)
			require.EqualValues(t, qty, o["items"].([]any)[0].(map[string]any)["quantity"], id)
		}
		testnet.Eventually(t, 20*time.Second, func() bool {
			for _, o := range ordList(t, my, shop) {
				if o["handoff_receipt"] != true {
					return false
				}
			}
			return true
		}, "not every MY order holds its receipt")
		mine := ordList(t, my, shop)
		require.Len(t, mine, n)
		for id := range want {
			require.Equal(t, true, mine[id]["handoff_receipt"], id)
			require.Equal(t, "received", mine[id]["status"], id)
		}
		sold += total
		// Concurrent deliveries after the restart hit the lost-decrement
		// race of orders/inbound.go (HandleHandoff indexes the new stock
		// outside Catalog.Exclusive; node's
		// TestOrderFaultConcurrentHandoffsOfOneListing). Every other check
		// still runs; the test is skipped at the end naming the bug.
		if got := thStock(); got != stock-sold {
			stockBug = fmt.Sprintf("stock %d after 40 orders of %d units, want %d", got, total, stock-sold)
			sold = stock - got
		}
		status, res := my.get(t, "/v1/outbox")
		require.Equal(t, http.StatusOK, status)
		require.Empty(t, res["items"], "the MY outbox drained")

		// Retrying every request after the restart: the same orders.
		for _, p := range orders {
			st, res, hdr := ordPost(t, my, shop, p.key, ordBody(listing, p.qty))
			require.Equal(t, http.StatusCreated, st, "%s: %v", p.key, res)
			require.Equal(t, p.id, res["id"], p.key)
			require.Equal(t, "true", hdr.Get("Idempotent-Replayed"), p.key)
		}
		require.Len(t, ordList(t, th, seller), n, "retries place nothing new")
		require.EqualValues(t, stock-sold, thStock(), "retries take no stock")
		t.Logf("A done after %s", time.Since(start).Round(time.Millisecond))
	}

	// B. Kill the buyer's node after it accepted an order, before it
	// delivered it.
	{
		require.NoError(t, th.p.cmd.Process.Signal(syscall.SIGTERM), th.p.stderr.String())
		require.NoError(t, waitExit(t, th.p), th.p.stderr.String())
		st, res, _ := ordPost(t, my, shop, "B-1", ordBody(listing, 5))
		require.Equal(t, http.StatusCreated, st, res)
		id := res["id"].(string)
		require.NoError(t, my.p.cmd.Process.Signal(syscall.SIGKILL))
		waitExit(t, my.p)

		th.start(t)
		my.start(t)
		var o map[string]any
		testnet.Eventually(t, 30*time.Second, func() bool {
			var status int
			status, o = apiDo(t, "GET", my.url+"/v1/orders/"+id, shop, nil)
			return status == http.StatusOK && o["handoff_receipt"] == true
		}, "the order was not delivered after the restarts")
		require.Equal(t, "received", o["status"])
		var onTH []string
		for oid := range ordList(t, th, seller) {
			if oid == id {
				onTH = append(onTH, oid)
			}
		}
		require.Equal(t, []string{id}, onTH, "TH holds the order once")
		sold += 5
		require.EqualValues(t, stock-sold, thStock())
		status, res := my.get(t, "/v1/outbox")
		require.Equal(t, http.StatusOK, status)
		require.Empty(t, res["items"])
		t.Logf("B done after %s", time.Since(start).Round(time.Millisecond))
	}

	for _, cc := range []string{"TH", "MY", "ID"} {
		require.NoError(t, nodes[cc].p.cmd.Process.Signal(syscall.SIGTERM))
	}
	for _, cc := range []string{"TH", "MY", "ID"} {
		require.NoError(t, waitExit(t, nodes[cc].p), "%s:\n%s", cc, nodes[cc].p.stderr)
	}
	for _, cc := range []string{"TH", "MY", "ID"} {
		require.NotContains(t, nodes[cc].p.stderr.String(), "panic", cc)
	}
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
	if stockBug != "" {
		t.Fatal("stock decrements were lost or doubled: " + stockBug)
	}
}
