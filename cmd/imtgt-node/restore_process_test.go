package main

// Process-level tests of recovery: a seller's node restored from a backup
// (or whose store was lost) rejoins the federation without losing or
// forking anything, and peers refuse a log that was rewound behind the
// federation's back.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/internal/testnet"
)

// restoreFixture is a running TH-MY-ID federation with a TH seller and a
// MY marketplace.
type restoreFixture struct {
	nodes        map[string]*fedNode
	th, my, id   *fedNode
	seller, shop string
	stockListing string
	auditTH      string
}

func newRestoreFixture(t *testing.T) *restoreFixture {
	t.Helper()
	f := &restoreFixture{nodes: onboardOrderNodes(t)}
	f.th, f.my, f.id = f.nodes["TH"], f.nodes["MY"], f.nodes["ID"]
	_, f.seller = activeSeller(t, f.th.url, f.th.token, testnet.THSeller("Hat Yai Durian Co., Ltd.", 5))
	body := testnet.Listing("ทุเรียนหมอนทอง Monthong durian", "081060", "350.00")
	body["quantity"] = 1_000_000
	status, res := apiDo(t, "POST", f.th.url+"/v1/listings", f.seller, body)
	require.Equal(t, http.StatusCreated, status, res)
	f.stockListing = res["id"].(string)
	f.waitListingOn(t, f.my, f.stockListing)
	status, res = apiDo(t, "POST", f.my.url+"/v1/marketplaces", f.my.token, map[string]string{"name": "MY shop"})
	require.Equal(t, http.StatusCreated, status, res)
	f.shop = res["token"].(string)
	status, res = apiDo(t, "POST", f.th.url+"/v1/auditors", f.th.token, map[string]string{"name": "PDPC"})
	require.Equal(t, http.StatusCreated, status, res)
	f.auditTH = res["token"].(string)
	return f
}

func (f *restoreFixture) waitListingOn(t *testing.T, n *fedNode, id string) {
	t.Helper()
	testnet.Eventually(t, 30*time.Second, func() bool {
		status, _ := n.get(t, "/v1/catalog/listings/"+id)
		return status == http.StatusOK
	}, "listing "+id+" did not reach "+n.cc)
}

// publish creates k single listings and imports rows more, returning
// their IDs.
func (f *restoreFixture) publish(t *testing.T, tag string, k, rows int) []string {
	t.Helper()
	var ids []string
	for i := range k {
		status, res := apiDo(t, "POST", f.th.url+"/v1/listings", f.seller,
			testnet.Listing(fmt.Sprintf("%s single %d mangosteen", tag, i), "081090", "120.00"))
		require.Equal(t, http.StatusCreated, status, res)
		ids = append(ids, res["id"].(string))
	}
	if rows > 0 {
		var csv strings.Builder
		csv.WriteString("title,hs_code,price,quantity,ship_from\n")
		for i := range rows {
			fmt.Fprintf(&csv, "%s import %d dried squid,030749,420.00,30,TH-90\n", tag, i)
		}
		req, err := http.NewRequest("POST", f.th.url+"/v1/listings/import", strings.NewReader(csv.String()))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+f.seller)
		req.Header.Set("Content-Type", "text/csv")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	}
	return ids
}

// order places k orders from MY for the stock listing; it returns their IDs.
func (f *restoreFixture) order(t *testing.T, tag string, k int) []string {
	t.Helper()
	var ids []string
	for i := range k {
		status, res, _ := ordPost(t, f.my, f.shop, fmt.Sprintf("%s-%03d", tag, i), ordBody(f.stockListing, 1))
		require.Equal(t, http.StatusCreated, status, res)
		ids = append(ids, res["id"].(string))
	}
	return ids
}

// waitDelivered waits until MY's outbox is empty and every order in ids
// has the seller node's receipt.
func (f *restoreFixture) waitDelivered(t *testing.T, ids []string) {
	t.Helper()
	testnet.Eventually(t, 60*time.Second, func() bool {
		all := ordList(t, f.my, f.shop)
		for _, id := range ids {
			if s := all[id]["status"]; s == "submitted" || s == "created" || s == nil {
				return false
			}
		}
		return true
	}, "orders not delivered to TH")
}

// transition moves a TH order on (seller).
func (f *restoreFixture) transition(t *testing.T, id, to string) {
	t.Helper()
	body := map[string]any{"to": to}
	if to == "shipped" {
		body["tracking"] = "TH123456789"
	}
	status, res := apiDo(t, "POST", f.th.url+"/v1/orders/"+id+"/transitions", f.seller, body)
	require.Equal(t, http.StatusOK, status, "%s → %s: %v", id, to, res)
}

// myStatus is an order's status as MY shows it.
func (f *restoreFixture) myStatus(t *testing.T, id string) string {
	t.Helper()
	status, res := apiDo(t, "GET", f.my.url+"/v1/orders/"+id, f.shop, nil)
	require.Equal(t, http.StatusOK, status, res)
	return res["status"].(string)
}

// waitPeersHold waits until MY and ID hold TH's log up to head.
func (f *restoreFixture) waitPeersHold(t *testing.T, head float64) {
	t.Helper()
	testnet.Eventually(t, 30*time.Second, func() bool {
		return heads(t, f.my)["TH"] == head && heads(t, f.id)["TH"] == head
	}, "MY and ID did not catch up with TH's log")
}

func (f *restoreFixture) stopTH(t *testing.T, sig syscall.Signal) {
	t.Helper()
	require.NoError(t, f.th.p.cmd.Process.Signal(sig))
	waitExit(t, f.th.p)
}

// heads returns a node's heads as it reports itself in GET /v1/peers.
func heads(t *testing.T, n *fedNode) map[string]float64 {
	t.Helper()
	status, res := n.get(t, "/v1/peers")
	require.Equal(t, http.StatusOK, status, res)
	for _, it := range res["items"].([]any) {
		p := it.(map[string]any)
		if p["self"] == true {
			out := map[string]float64{}
			for k, v := range p["heads"].(map[string]any) {
				out[k] = v.(float64)
			}
			return out
		}
	}
	t.Fatalf("%s lists no self in /v1/peers", n.cc)
	return nil
}

// auditCount counts the entries of a kind (prefix) on a node whose reason
// contains substr.
func auditCount(t *testing.T, n *fedNode, token, kind, substr string) int {
	t.Helper()
	status, res := apiDo(t, "GET", n.url+"/v1/audit/entries?limit=1000&kind="+kind, token, nil)
	require.Equal(t, http.StatusOK, status, res)
	c := 0
	for _, it := range res["items"].([]any) {
		if strings.Contains(fmt.Sprint(it.(map[string]any)["reason"]), substr) {
			c++
		}
	}
	return c
}

func readyReason(t *testing.T, n *fedNode) (int, string) {
	t.Helper()
	resp, err := http.Get(n.url + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestProcessRestoreRejoinsWithoutLoss: TH is restored from a backup taken
// before 30 listings, a 200-row import, 60 orders and status changes.
// While ID is down TH stays reconciling (503s, progress per peer); once ID
// is back TH has taken back every listing and order exactly once, its log
// continues above what the peers hold, and new listings and statuses flow.
func TestProcessRestoreRejoinsWithoutLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three node processes")
	}
	f := newRestoreFixture(t)
	before := f.order(t, "pre", 10)
	f.waitDelivered(t, before)

	backup := filepath.Join(t.TempDir(), "th.db")
	out, err := cliRun(t, "backup", "--dir", f.th.dir, "--out", backup)
	require.NoError(t, err, out)

	// After the backup: listings, an import, orders, status changes.
	singles := f.publish(t, "after", 30, 200)
	after := f.order(t, "post", 60)
	f.waitDelivered(t, after)
	f.transition(t, before[0], "accepted")
	f.transition(t, before[0], "packed")
	f.transition(t, after[0], "accepted")
	f.transition(t, after[0], "packed")
	f.transition(t, after[0], "shipped")
	testnet.Eventually(t, 30*time.Second, func() bool {
		return f.myStatus(t, after[0]) == "shipped" && f.myStatus(t, before[0]) == "packed"
	}, "statuses did not reach MY")
	thHeads := heads(t, f.th)
	f.waitPeersHold(t, thHeads["TH"])

	// The disaster: TH is killed and restored; ID is down meanwhile.
	f.stopTH(t, syscall.SIGKILL)
	require.NoError(t, f.id.p.cmd.Process.Signal(syscall.SIGTERM))
	waitExit(t, f.id.p)
	out, err = cliRun(t, "restore", "--dir", f.th.dir, "--from", backup)
	require.NoError(t, err, out)
	require.Contains(t, out, "reconciles with every member")
	f.th.start(t)

	// Reconciling with MY completes; ID is missing, so TH holds back.
	testnet.Eventually(t, 30*time.Second, func() bool {
		status, res := f.th.get(t, "/v1/peers")
		if status != http.StatusOK {
			return false
		}
		for _, it := range res["items"].([]any) {
			p := it.(map[string]any)
			if p["country"] == "MY" {
				rec, _ := p["reconcile"].(map[string]any)
				return rec != nil && rec["phase"] == "done"
			}
		}
		return false
	}, "TH did not reconcile with MY")
	status, body := readyReason(t, f.th)
	require.Equal(t, http.StatusServiceUnavailable, status, body)
	require.Contains(t, body, "reconciling after a restore")
	status, res := apiDo(t, "POST", f.th.url+"/v1/listings", f.seller, testnet.Listing("too early rambutan", "081090", "99.00"))
	require.Equal(t, http.StatusServiceUnavailable, status, res)
	require.Equal(t, "reconciling", res["error"].(map[string]any)["code"], res)

	f.id.start(t)
	testnet.Eventually(t, 60*time.Second, func() bool {
		status, _ := readyReason(t, f.th)
		return status == http.StatusOK
	}, "TH did not finish reconciling once ID was back")

	// Nothing lost: every listing and order published after the backup is
	// on TH again, each order once, with the state MY knows.
	for _, id := range append(singles, f.stockListing) {
		status, res := apiDo(t, "GET", f.th.url+"/v1/listings/"+id, f.seller, nil)
		require.Equal(t, http.StatusOK, status, "listing %s lost by the restore: %v", id, res)
	}
	thOrders := ordList(t, f.th, f.seller)
	for _, id := range append(before, after...) {
		require.Contains(t, thOrders, id, "order %s lost by the restore", id)
	}
	require.Len(t, thOrders, len(before)+len(after))
	require.Equal(t, "shipped", thOrders[after[0]]["status"])
	require.Equal(t, "packed", thOrders[before[0]]["status"])

	// No sequence number reused: TH's log is at least what the peers held,
	// and what it publishes now reaches both.
	require.GreaterOrEqual(t, heads(t, f.th)["TH"], thHeads["TH"])
	fresh := f.publish(t, "fresh", 1, 0)[0]
	f.waitListingOn(t, f.my, fresh)
	f.waitListingOn(t, f.id, fresh)
	// The seller's next status continues the sequence MY expects.
	f.transition(t, after[0], "delivered")
	f.transition(t, before[0], "shipped")
	testnet.Eventually(t, 30*time.Second, func() bool {
		return f.myStatus(t, after[0]) == "delivered" && f.myStatus(t, before[0]) == "shipped"
	}, "status after the restore did not reach MY")
	// New orders are taken again, exactly once.
	late := f.order(t, "late", 5)
	f.waitDelivered(t, late)
	require.Len(t, ordList(t, f.th, f.seller), len(before)+len(after)+len(late))

	// Every step is on record.
	require.Equal(t, 1, auditCount(t, f.th, f.auditTH, "admin.restore", "reconciles with every member"))
	require.GreaterOrEqual(t, auditCount(t, f.th, f.auditTH, "admin.reconcile", "own catalog records taken back"), 1)
	require.Equal(t, 1, auditCount(t, f.th, f.auditTH, "admin.reconcile", "reconciled with MY"))
	require.Equal(t, 1, auditCount(t, f.th, f.auditTH, "admin.reconcile", "reconciled with ID"))
	require.Equal(t, 1, auditCount(t, f.th, f.auditTH, "admin.reconcile", "publishing resumes"))
	require.Equal(t, len(after), auditCount(t, f.th, f.auditTH, "order.handoff.ingress", "after this node's restore"))
}

// TestProcessLostStoreAndRewoundLog: a store copied back by hand (no
// restore command) rewinds TH's log; the peers refuse the records that
// reuse sequence numbers with other content and record the refusal. Then
// the store is lost altogether: restore --from-peers takes the log and the
// orders back, and TH continues above the highest sequence the peers hold.
func TestProcessLostStoreAndRewoundLog(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three node processes")
	}
	f := newRestoreFixture(t)
	backup := filepath.Join(t.TempDir(), "th.db")
	out, err := cliRun(t, "backup", "--dir", f.th.dir, "--out", backup)
	require.NoError(t, err, out)
	singles := f.publish(t, "after", 5, 0)
	ords := f.order(t, "lost", 8)
	f.waitDelivered(t, ords)
	f.waitListingOn(t, f.my, singles[len(singles)-1])
	held := heads(t, f.th)["TH"]
	f.waitPeersHold(t, held)

	// A hand-copied backup, while the members are down (so TH cannot
	// notice it was rewound): TH publishes over sequence numbers the
	// members hold.
	f.stopTH(t, syscall.SIGTERM)
	for _, n := range []*fedNode{f.my, f.id} {
		require.NoError(t, n.p.cmd.Process.Signal(syscall.SIGTERM))
		waitExit(t, n.p)
	}
	b, err := os.ReadFile(backup)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(f.th.dir, "data", "node.db"), b, 0o600))
	f.th.start(t)
	var forked []string
	for heads(t, f.th)["TH"] <= held {
		forked = append(forked, f.publish(t, "forked", 1, 0)...)
	}
	f.my.start(t)
	f.id.start(t)
	testnet.Eventually(t, 30*time.Second, func() bool {
		return auditCount(t, f.my, f.my.token, "rejection", "log was rewound") > 0
	}, "MY did not refuse TH's rewound log")
	for _, id := range forked {
		status, _ := f.my.get(t, "/v1/catalog/listings/"+id)
		require.Equal(t, http.StatusNotFound, status, "MY took listing %s of a forked log", id)
	}

	// The store is lost: a new one from the peers.
	f.stopTH(t, syscall.SIGKILL)
	require.NoError(t, os.Remove(filepath.Join(f.th.dir, "data", "node.db")))
	out, err = cliRun(t, "restore", "--dir", f.th.dir, "--from-peers")
	require.NoError(t, err, out)
	fedDir := filepath.Join(filepath.Dir(f.th.dir), "fed")
	out, err = cliRun(t, "federation", "install", "--dir", f.th.dir, "--psk", filepath.Join(fedDir, "swarm.key"), filepath.Join(fedDir, "fed.yaml"))
	require.NoError(t, err, out)
	f.th.start(t)
	t.Cleanup(func() {
		if t.Failed() {
			_, body := readyReason(t, f.th)
			t.Logf("TH readyz: %s\n%s", body, f.th.p.stderr)
		}
	})
	testnet.Eventually(t, 60*time.Second, func() bool {
		status, _ := readyReason(t, f.th)
		return status == http.StatusOK
	}, "TH did not reconcile from the peers")

	require.GreaterOrEqual(t, heads(t, f.th)["TH"], held)
	for _, id := range singles {
		status, res := apiDo(t, "GET", f.th.url+"/v1/catalog/listings/"+id, f.th.token, nil)
		require.Equal(t, http.StatusOK, status, "listing %s not taken back: %v", id, res)
	}
	status, res := apiDo(t, "GET", f.th.url+"/v1/orders?limit=100", f.th.token, nil)
	require.Equal(t, http.StatusOK, status, res)
	require.Len(t, res["items"].([]any), len(ords), "orders recovered from MY")
}

// TestProcessRewoundStoreNoticed: TH's store is rewound behind its back (a
// backup copied over the file, as a disk snapshot rolled back would do).
// At its first round with a member TH sees that the member holds more of
// its own log than it does, stops publishing, and reconciles by itself:
// nothing published after the backup is lost and no sequence is reused.
func TestProcessRewoundStoreNoticed(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three node processes")
	}
	f := newRestoreFixture(t)
	backup := filepath.Join(t.TempDir(), "th.db")
	out, err := cliRun(t, "backup", "--dir", f.th.dir, "--out", backup)
	require.NoError(t, err, out)
	singles := f.publish(t, "after", 5, 50)
	ords := f.order(t, "rew", 4)
	f.waitDelivered(t, ords)
	held := heads(t, f.th)["TH"]
	f.waitPeersHold(t, held)

	f.stopTH(t, syscall.SIGKILL)
	b, err := os.ReadFile(backup)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(f.th.dir, "data", "node.db"), b, 0o600))
	f.th.start(t)
	testnet.Eventually(t, 60*time.Second, func() bool {
		return auditCount(t, f.th, f.th.token, "admin.reconcile", "publishing resumes") == 1
	}, "TH did not notice the rewind and reconcile")
	require.Equal(t, 1, auditCount(t, f.th, f.th.token, "admin.reconcile", "rewound without a restore"))
	require.GreaterOrEqual(t, heads(t, f.th)["TH"], held)
	for _, id := range singles {
		status, res := apiDo(t, "GET", f.th.url+"/v1/listings/"+id, f.seller, nil)
		require.Equal(t, http.StatusOK, status, "listing %s lost by the rewind: %v", id, res)
	}
	thOrders := ordList(t, f.th, f.seller)
	for _, id := range ords {
		require.Contains(t, thOrders, id, "order %s lost by the rewind", id)
	}
	fresh := f.publish(t, "fresh", 1, 0)[0]
	f.waitListingOn(t, f.my, fresh)
	f.waitListingOn(t, f.id, fresh)
	require.Zero(t, auditCount(t, f.my, f.my.token, "rejection", "log was rewound"), "nothing forked reached MY")
}
