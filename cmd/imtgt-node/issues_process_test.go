package main

// A process-level test of issue 13's after-sale flow: TH (seller) and MY
// (buyer) as separate processes onboarded with the CLI; an issue is opened,
// answered, refunded and resolved while each node in turn is SIGKILLed
// mid-flow, and it ends the same on both, once.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/internal/testnet"
	"github.com/imtgt/imtgt-node/money"
)

// postKey is a POST with a bearer token and an Idempotency-Key.
func postKey(t *testing.T, url, token, key string, body any) (int, map[string]any) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest("POST", url, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m), string(raw))
	return resp.StatusCode, m
}

func TestProcessIssueThroughKills(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two node processes")
	}
	th, my := onboardPair(t)
	status, reg := apiDo(t, "POST", th.url+"/v1/sellers", "", testnet.THSeller("Surat Thani Rice & Coffee Co., Ltd.", 3))
	require.Equal(t, http.StatusCreated, status, reg)
	sid, seller := reg["id"].(string), reg["token"].(string)
	status, res := apiDo(t, "POST", th.url+"/v1/sellers/"+sid+"/approve", th.token, nil)
	require.Equal(t, http.StatusOK, status, res)
	body := testnet.Listing("ข้าวหอมมะลิ 5 กก. jasmine rice", "100630", "265.00")
	body["quantity"] = 10
	status, res = apiDo(t, "POST", th.url+"/v1/listings", seller, body)
	require.Equal(t, http.StatusCreated, status, res)
	listing := res["id"].(string)
	status, res = apiDo(t, "POST", my.url+"/v1/marketplaces", my.token, map[string]string{"name": "Shopee-like MY"})
	require.Equal(t, http.StatusCreated, status, res)
	shop := res["token"].(string)
	testnet.Eventually(t, 30*time.Second, func() bool { st, _ := my.get(t, "/v1/catalog/listings/"+listing); return st == http.StatusOK }, "the listing did not reach MY")

	myOrder := func(id string) map[string]any {
		status, o := apiDo(t, "GET", my.url+"/v1/orders/"+id, shop, nil)
		require.Equal(t, http.StatusOK, status, o)
		return o
	}
	outbox := func(n *fedNode) int {
		status, res := n.get(t, "/v1/outbox")
		require.Equal(t, http.StatusOK, status, res)
		return len(res["items"].([]any))
	}
	kill := func(n *fedNode) {
		t.Helper()
		require.NoError(t, n.p.cmd.Process.Signal(syscall.SIGKILL))
		waitExit(t, n.p)
	}
	// issueOn is the issue as node n shows it to token (nil if not there).
	issueOn := func(n *fedNode, token, id string) map[string]any {
		status, is := apiDo(t, "GET", n.url+"/v1/issues/"+id, token, nil)
		if status != http.StatusOK {
			return nil
		}
		return is
	}
	waitStatus := func(n *fedNode, token, id, want string) map[string]any {
		t.Helper()
		var is map[string]any
		testnet.Eventually(t, 30*time.Second, func() bool { is = issueOn(n, token, id); return is != nil && is["status"] == want }, n.cc+" does not show the issue "+want)
		return is
	}
	// listed counts the issues node n lists to token (every page).
	listed := func(n *fedNode, token string) int {
		count, cursor := 0, ""
		for {
			status, res := apiDo(t, "GET", n.url+"/v1/issues?limit=1&cursor="+cursor, token, nil)
			require.Equal(t, http.StatusOK, status, res)
			count += len(res["items"].([]any))
			cursor, _ = res["next_cursor"].(string)
			if cursor == "" {
				return count
			}
		}
	}

	st, placed, _ := ordPost(t, my, shop, "issue-order", ordBody(listing, 2))
	require.Equal(t, http.StatusCreated, st, placed)
	oid := placed["id"].(string)
	testnet.Eventually(t, 30*time.Second, func() bool { return myOrder(oid)["handoff_receipt"] == true }, "the order was not delivered")
	for _, to := range []string{"accepted", "packed", "shipped"} {
		status, res := apiDo(t, "POST", th.url+"/v1/orders/"+oid+"/transitions", seller, map[string]string{"to": to})
		require.Equal(t, http.StatusOK, status, res)
	}
	testnet.Eventually(t, 30*time.Second, func() bool { return myOrder(oid)["status"] == "shipped" }, "MY does not show the order shipped")

	// 1. TH is down when the marketplace opens the issue: MY answers 201,
	// the issue waits in MY's outbox and reaches TH once it is back.
	kill(th)
	open := map[string]any{"category": "damaged", "description": "The bag arrived torn; half the rice spilled.",
		"items": []map[string]any{{"listing_id": listing, "quantity": 1}}, "remedy_requested": "refund"}
	status, opened := postKey(t, my.url+"/v1/orders/"+oid+"/issues", shop, "issue-1", open)
	require.Equal(t, http.StatusCreated, status, opened)
	id := opened["id"].(string)
	require.Equal(t, "open", opened["status"])
	for _, f := range []string{"respond_by", "resolve_by"} {
		_, err := time.Parse(time.RFC3339, opened[f].(string))
		require.NoError(t, err, f)
	}
	status, again := postKey(t, my.url+"/v1/orders/"+oid+"/issues", shop, "issue-1", open)
	require.Equal(t, http.StatusCreated, status, again)
	require.Equal(t, id, again["id"], "a retry with the same Idempotency-Key gets the same issue")
	require.Equal(t, 1, outbox(my), "the issue waits in MY's outbox")
	th.start(t)
	testnet.Eventually(t, 30*time.Second, func() bool { return outbox(my) == 0 }, "the issue was not delivered")
	waitStatus(th, seller, id, "open")

	// 2. The seller accepts a refund of half and MY is killed at once:
	// TH's response waits for MY, and MY applies it once after its restart.
	o := myOrder(oid)
	landed := o["quote"].(map[string]any)["landed_total"].(map[string]any)
	paid, err := money.Parse(landed["amount"].(string), landed["currency"].(string))
	require.NoError(t, err)
	half := money.Amount{Minor: paid.Minor / 2, Currency: paid.Currency}
	kill(my)
	status, res = apiDo(t, "POST", th.url+"/v1/issues/"+id+"/responses", seller, map[string]any{"action": "accept",
		"remedy": map[string]any{"kind": "refund", "amount": map[string]string{"amount": half.Decimal(), "currency": half.Currency}}})
	require.Equal(t, http.StatusOK, status, res)
	require.Equal(t, "accepted", res["status"])
	my.start(t)
	testnet.Eventually(t, 30*time.Second, func() bool { return outbox(th) == 0 }, "TH's response was not delivered")
	waitStatus(my, shop, id, "accepted")

	// 3. The marketplace reports the refund and MY is killed right after
	// its 201, whether or not the message left: it reaches TH once.
	status, res = apiDo(t, "POST", my.url+"/v1/issues/"+id+"/refunds", shop, map[string]string{"amount": half.Decimal(),
		"currency": half.Currency, "reason": "refund for the spilled rice", "payment_reference": "PAYNET-2026-000123"})
	require.Equal(t, http.StatusCreated, status, res)
	kill(my)
	my.start(t)
	testnet.Eventually(t, 30*time.Second, func() bool { return outbox(my) == 0 }, "the refund was not delivered")
	waitStatus(th, seller, id, "refunded")

	// 4. Resolved, with TH killed after it stored the resolution.
	status, res = apiDo(t, "POST", my.url+"/v1/issues/"+id+"/responses", shop, map[string]string{"action": "resolve"})
	require.Equal(t, http.StatusOK, status, res)
	waitStatus(th, seller, id, "resolved")
	kill(th)
	th.start(t)
	final := waitStatus(th, seller, id, "resolved")
	mine := waitStatus(my, shop, id, "resolved")
	require.Equal(t, len(mine["history"].([]any)), len(final["history"].([]any)), "both nodes hold the same issue")

	// Once on each side, with the one refund on the order on both.
	require.Equal(t, 1, listed(th, seller))
	require.Equal(t, 1, listed(my, shop))
	for _, side := range []struct {
		n     *fedNode
		token string
	}{{th, seller}, {my, shop}} {
		status, o := apiDo(t, "GET", side.n.url+"/v1/orders/"+oid, side.token, nil)
		require.Equal(t, http.StatusOK, status, o)
		refunds := o["refunds"].([]any)
		require.Len(t, refunds, 1, side.n.cc)
		r := refunds[0].(map[string]any)
		require.Equal(t, "PAYNET-2026-000123", r["payment_reference"], side.n.cc)
		require.Equal(t, half.Decimal(), r["amount"], side.n.cc)
		require.Equal(t, id, r["issue_id"], side.n.cc)
	}
	// The crossings are evidence on both sides: one issue.ingress on TH per
	// message MY sent (open, refund, resolve), however often it was sent.
	status, es := th.get(t, "/v1/audit/entries?kind=issue.ingress&limit=100")
	require.Equal(t, http.StatusOK, status, es)
	require.Len(t, es["items"].([]any), 3, "TH took each of MY's messages once")
	status, es = my.get(t, "/v1/audit/entries?kind=issue.ingress&limit=100")
	require.Equal(t, http.StatusOK, status, es)
	require.Len(t, es["items"].([]any), 1, "MY took TH's acceptance once")

	// The CLI view, from the running node's API and from a stopped node's
	// store, shows the same.
	cliIssues := func(n *fedNode) {
		t.Helper()
		out, err := cliRun(t, "issues", "list", "--dir", n.dir)
		require.NoError(t, err, out)
		require.Contains(t, out, id, n.cc)
		require.Contains(t, out, "resolved", n.cc)
		out, err = cliRun(t, "issues", "list", "--dir", n.dir, "--status", "open")
		require.NoError(t, err, out)
		require.Contains(t, out, "No issues.", n.cc)
		out, err = cliRun(t, "issues", "show", "--dir", n.dir, "--json", id)
		require.NoError(t, err, out)
		var shown map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &shown), out)
		require.Equal(t, "resolved", shown["status"], n.cc)
		require.Len(t, shown["refunds"], 1, n.cc)
		out, err = cliRun(t, "issues", "show", "--dir", n.dir, id)
		require.NoError(t, err, out)
		require.Contains(t, out, "PAYNET-2026-000123", n.cc)
	}
	cliIssues(my)
	for _, n := range []*fedNode{th, my} {
		require.NoError(t, n.p.cmd.Process.Signal(syscall.SIGTERM))
		require.NoError(t, waitExit(t, n.p), "%s:\n%s", n.cc, n.p.stderr)
		require.NotContains(t, n.p.stderr.String(), "panic", n.cc)
	}
	cliIssues(th)
}
