package main

// Process-level tests of a replicated national node (issue 12): TH runs
// as two replicas of one node on a PostgreSQL server of the test's own,
// federated with MY on bbolt. The TH leader is SIGKILLed under load, the
// database is stopped and started, and a bbolt node is moved to
// PostgreSQL; nothing acknowledged may be lost or done twice.

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/imtgt/imtgt-node/internal/pgtest"
	"github.com/imtgt/imtgt-node/internal/testnet"
)

// TestProcessReplicasFailover: an MY marketplace places 300 orders for TH
// listings from several clients while the TH leader is SIGKILLed three
// times; the TH seller accepts each order through either replica.
// Afterwards every order is on TH exactly once, every acceptance made it
// back to MY, and both outboxes are empty.
func TestProcessReplicasFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three node processes and a PostgreSQL server")
	}
	start := time.Now()
	f := newReplicaFed(t)
	t.Logf("onboarded after %s", time.Since(start).Round(time.Millisecond))
	leader, follower := f.leader(t, 10*time.Second)
	require.Equal(t, "1", leader.leaderGauge(t), "the leader's imtgt_replica_leader")
	require.Equal(t, "0", follower.leaderGauge(t), "the follower's imtgt_replica_leader")

	var listings []string
	for i := range 3 {
		listings = append(listings, f.listing(t, f.th[i%2], fmt.Sprintf("ทุเรียนหมอนทอง durian lot %d", i)))
	}
	for _, id := range listings {
		f.waitOnMY(t, id, 20*time.Second)
	}

	const total, clients, perRound = 300, 6, 75
	ids := make([]string, total)
	jobs := make(chan int, total)
	var placed atomic.Int32
	var placeErr atomic.Value
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				id, err := placeOrder(f.my, f.shop, fmt.Sprintf("failover-%03d", i), listings[i%len(listings)], 60*time.Second)
				if err != nil {
					placeErr.CompareAndSwap(nil, err)
					return
				}
				ids[i] = id
				placed.Add(1)
			}
		}()
	}
	next := 0
	feed := func(n int) {
		for ; n > 0 && next < total; n-- {
			jobs <- next
			next++
		}
	}

	// The seller accepts every received order, through either replica in
	// turn; a replica that is down or a failed request is tried again on
	// the next round.
	stopAccept := make(chan struct{})
	acceptDone := make(chan struct{})
	var accepted atomic.Int32
	var acceptBug atomic.Value
	go func() {
		defer close(acceptDone)
		for round := 0; ; round++ {
			select {
			case <-stopAccept:
				return
			default:
			}
			r := f.th[round%2]
			status, res, err := doJSON("GET", r.url+"/v1/orders?status=received&limit=100", f.seller, "", nil)
			if err == nil && status == http.StatusOK {
				items, _ := res["items"].([]any)
				for _, it := range items {
					id, _ := it.(map[string]any)["id"].(string)
					st, res, err := doJSON("POST", r.url+"/v1/orders/"+id+"/transitions", f.seller, "", map[string]string{"to": "accepted"})
					switch {
					case err != nil || st >= 500:
						// the replica died or lost its database: next round
					case st == http.StatusOK:
						accepted.Add(1)
					case st == http.StatusConflict && strings.Contains(fmt.Sprint(res), "accepted"):
						// accepted by an earlier try whose answer was lost
					default:
						acceptBug.CompareAndSwap(nil, fmt.Sprintf("accept %s on replica %s: %d %v", id, r.name, st, res))
					}
				}
			}
			time.Sleep(20 * time.Millisecond) // polling interval
		}
	}()
	defer func() {
		select {
		case <-stopAccept:
		default:
			close(stopAccept)
		}
		<-acceptDone
	}()

	waitPlaced := func(n int32) {
		t.Helper()
		testnet.Eventually(t, 60*time.Second, func() bool { return placed.Load() >= n || placeErr.Load() != nil },
			fmt.Sprintf("%d orders not placed on MY", n))
		require.Nil(t, placeErr.Load())
	}

	feed(perRound)
	var toLeader, toMY []time.Duration
	for k := range 3 {
		waitPlaced(int32(perRound*k + perRound/2))
		leader, follower := f.leader(t, 10*time.Second)
		killed, placedAtKill := time.Now(), placed.Load()
		leader.kill(t)
		feed(perRound) // placed on MY while TH has no leader
		testnet.Eventually(t, 15*time.Second, func() bool { return follower.role() == "leader" },
			fmt.Sprintf("replica %s did not take over within 15 s of the leader's SIGKILL", follower.name))
		toLeader = append(toLeader, time.Since(killed))
		f.waitMYConnected(t, 20*time.Second)
		toMY = append(toMY, time.Since(killed))
		t.Logf("kill %d: replica %s killed after %d orders; replica %s leader after %s, MY connected after %s",
			k+1, leader.name, placedAtKill, follower.name, toLeader[k].Round(time.Millisecond), toMY[k].Round(time.Millisecond))

		leader.start(t)
		var role string
		testnet.Eventually(t, 10*time.Second, func() bool { role = leader.role(); return role != "" },
			"the restarted replica "+leader.name+" does not answer /readyz with a role")
		require.Equal(t, "follower", role, "the restarted replica %s", leader.name)
	}
	feed(total)
	close(jobs)
	wg.Wait()
	require.Nil(t, placeErr.Load())
	t.Logf("300 orders placed after %s", time.Since(start).Round(time.Millisecond))

	// Every order on TH exactly once, each one of MY's, accepted.
	want := map[string]bool{}
	for i, id := range ids {
		require.NotEmpty(t, id, "order %d", i)
		want[id] = true
	}
	require.Len(t, want, total, "300 distinct order IDs on MY")
	var onTH map[string]map[string]any
	testnet.Eventually(t, 60*time.Second, func() bool {
		if b := acceptBug.Load(); b != nil {
			t.Fatal(b)
		}
		onTH = ordList(t, f.th[0].fedNode, f.seller)
		if len(onTH) < total {
			return false
		}
		for _, o := range onTH {
			if o["status"] != "accepted" {
				return false
			}
		}
		return true
	}, "the 300 orders are not all on TH and accepted")
	require.Len(t, onTH, total, "every order on TH exactly once")
	for id := range onTH {
		require.True(t, want[id], "TH holds order %s that MY did not place", id)
	}
	require.Len(t, ordList(t, f.th[1].fedNode, f.seller), total, "both replicas list the same orders")
	close(stopAccept)
	<-acceptDone
	if b := acceptBug.Load(); b != nil {
		t.Fatal(b)
	}
	t.Logf("%d acceptances answered 200", accepted.Load())

	// Every status back on MY, and nothing left to send on either side.
	testnet.Eventually(t, 60*time.Second, func() bool {
		for _, o := range ordList(t, f.my, f.shop) {
			if o["status"] != "accepted" {
				return false
			}
		}
		return true
	}, "not every acceptance made it back to MY")
	mine := ordList(t, f.my, f.shop)
	require.Len(t, mine, total, "MY holds each order once")
	for id, o := range mine {
		require.True(t, want[id], id)
		require.Equal(t, true, o["handoff_receipt"], id)
	}
	testnet.Eventually(t, 30*time.Second, func() bool {
		return outboxLen(t, f.my) == 0 && outboxLen(t, f.th[0].fedNode) == 0 && outboxLen(t, f.th[1].fedNode) == 0
	}, "the outboxes did not drain")

	// Every order took its stock exactly once, whichever leader received
	// it (100 orders of 1 per listing), on both replicas and on MY.
	for _, id := range listings {
		for _, n := range []*fedNode{f.th[0].fedNode, f.th[1].fedNode, f.my} {
			testnet.Eventually(t, 20*time.Second, func() bool {
				status, res := n.get(t, "/v1/catalog/listings/"+id)
				q, _ := res["quantity"].(float64)
				return status == http.StatusOK && int64(q) == 1_000_000-total/int64(len(listings))
			}, n.cc+" does not show listing "+id+" with its stock taken once per order")
		}
	}
	// The audit chain is one unbroken chain, however many leaders wrote
	// it, and every catalog log is gap-free: the store check of the
	// database, while the replicas run.
	out, err := cliRun(t, "store", "check", "--dir", f.th[0].dir)
	require.NoError(t, err, out)
	require.Contains(t, out, "The store is consistent.")

	sort.Slice(toLeader, func(i, j int) bool { return toLeader[i] < toLeader[j] })
	sort.Slice(toMY, func(i, j int) bool { return toMY[i] < toMY[j] })
	t.Logf("failover (SIGKILL → other replica leader): %v, median %s", toLeader, toLeader[1].Round(time.Millisecond))
	t.Logf("failover (SIGKILL → MY connected again): %v, median %s", toMY, toMY[1].Round(time.Millisecond))
	for _, r := range f.th {
		require.NotContains(t, r.p.stderr.String(), "panic", "replica %s", r.name)
	}
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

// TestProcessReplicaListingVisible: a listing created on one replica is
// found by a search on the other within 1 s (each way), and reaches MY.
func TestProcessReplicaListingVisible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three node processes and a PostgreSQL server")
	}
	f := newReplicaFed(t)
	var ids []string
	for i, from := range f.th {
		to := f.th[1-i]
		word := []string{"alphawing", "bravowing"}[i] // a word no other listing has
		title := "มังคุด mangosteen " + word
		q := url.Values{"q": {word}}
		require.Empty(t, to.searchTitles(t, q))
		created := time.Now()
		ids = append(ids, f.listing(t, from, title))
		// Polled with a 1 s deadline: later than that fails.
		deadline := created.Add(time.Second)
		for !slices.Contains(to.searchTitles(t, q), title) {
			if time.Now().After(deadline) {
				t.Fatalf("a listing created on replica %s is not found on replica %s within 1 s", from.name, to.name)
			}
			time.Sleep(10 * time.Millisecond) // polling interval
		}
		t.Logf("created on replica %s (%s), found on replica %s after %s",
			from.name, from.role(), to.name, time.Since(created).Round(time.Millisecond))
	}
	for _, id := range ids {
		f.waitOnMY(t, id, 20*time.Second)
	}
	testnet.Eventually(t, 20*time.Second, func() bool {
		return len(f.my.searchTitles(t, url.Values{"q": {"mangosteen"}, "origin": {"TH"}})) == 2
	}, "MY's search does not find both listings")
}

// TestProcessReplicaDatabaseDown: PostgreSQL stops mid-run. Writes get
// 503 store_unavailable, search answers from memory, /readyz is 503 and
// names the database; orders placed on MY meanwhile wait in its outbox.
// When PostgreSQL is back, readiness returns, what was acknowledged
// before is there, new writes succeed, and the orders reach TH once.
func TestProcessReplicaDatabaseDown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three node processes and a PostgreSQL server")
	}
	start := time.Now()
	f := newReplicaFed(t)
	before := f.listing(t, f.th[0], "ข้าวหอมมะลิ jasmine rice before the outage")
	f.waitOnMY(t, before, 20*time.Second)
	q := url.Values{"q": {"jasmine"}}
	for _, r := range f.th {
		testnet.Eventually(t, 5*time.Second, func() bool { return len(r.searchTitles(t, q)) == 1 },
			"replica "+r.name+" does not find the listing")
	}

	f.pg.Stop(t)
	stopped := time.Now()
	// Orders placed on MY right away are handed to a leader whose
	// database is gone: it must not acknowledge what it cannot store.
	var outage []string
	placeOutage := func(n int) {
		t.Helper()
		for range n {
			status, res, _ := ordPost(t, f.my, f.shop, fmt.Sprintf("outage-%d", len(outage)), ordBody(before, 1))
			require.Equal(t, http.StatusCreated, status, res)
			outage = append(outage, res["id"].(string))
		}
	}
	placeOutage(3)
	// /readyz turns 503 naming the database, on both replicas.
	for _, r := range f.th {
		var body string
		testnet.Eventually(t, 15*time.Second, func() bool {
			var status int
			status, _, body = r.ready()
			return status == http.StatusServiceUnavailable
		}, "replica "+r.name+"'s /readyz is not 503 with the database down")
		require.Contains(t, strings.ToLower(body), "database", "replica %s's /readyz must say the database is the reason", r.name)
		t.Logf("replica %s not ready after %s: %s", r.name, time.Since(stopped).Round(time.Millisecond), strings.TrimSpace(body))
	}
	// Writes: a clear 503, on both replicas, every time.
	for _, r := range f.th {
		for i := range 3 {
			body := testnet.Listing(fmt.Sprintf("duringdown %s %d", r.name, i), "081060", "120.00")
			status, res, err := doJSON("POST", r.url+"/v1/listings", f.seller, "", body)
			require.NoError(t, err, "replica %s must answer a write while its database is down", r.name)
			require.Equal(t, http.StatusServiceUnavailable, status, "replica %s: %v", r.name, res)
			e, _ := res["error"].(map[string]any)
			require.Equal(t, "store_unavailable", e["code"], "replica %s: %v", r.name, res)
		}
	}
	// Search answers from memory, for a client the replica has served
	// before (the operator searched each replica above): a replica keeps
	// the tokens it resolved; one it never saw cannot be checked while
	// the database is down.
	for _, r := range f.th {
		status, res, err := doJSON("GET", r.url+"/v1/catalog/search?"+q.Encode(), r.token, "", nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status, "replica %s search with the database down: %v", r.name, res)
		require.Len(t, res["items"], 1, "replica %s", r.name)
	}
	// A leader without its database stops its federation work: no
	// replica leads, and MY's orders wait in its outbox.
	testnet.Eventually(t, 10*time.Second, func() bool {
		return f.th[0].role() != "leader" && f.th[1].role() != "leader"
	}, "a replica still leads with the database down")
	t.Logf("no replica leads %s after the database stopped", time.Since(stopped).Round(time.Millisecond))
	placeOutage(3)
	require.Equal(t, len(outage), outboxLen(t, f.my), "MY's outbox holds every order placed during the outage")
	t.Logf("outage checks done after %s", time.Since(stopped).Round(time.Millisecond))

	f.pg.Start(t)
	restarted := time.Now()
	for _, r := range f.th {
		testnet.Eventually(t, 20*time.Second, func() bool {
			status, _, _ := r.ready()
			return status == http.StatusOK
		}, "replica "+r.name+" is not ready again after the database came back")
	}
	t.Logf("both replicas ready %s after the database came back", time.Since(restarted).Round(time.Millisecond))
	f.leader(t, 15*time.Second)
	for _, r := range f.th {
		status, res := apiDo(t, "GET", r.url+"/v1/listings/"+before, f.seller, nil)
		require.Equal(t, http.StatusOK, status, "replica %s lost a listing acknowledged before the outage: %v", r.name, res)
	}
	after := f.listing(t, f.th[1], "ข้าวหอมมะลิ jasmine rice after the outage")
	f.listing(t, f.th[0], "ข้าวเหนียว sticky rice after the outage")
	f.waitOnMY(t, after, 20*time.Second)

	var onTH map[string]map[string]any
	testnet.Eventually(t, 30*time.Second, func() bool {
		onTH = ordList(t, f.th[0].fedNode, f.seller)
		return len(onTH) >= len(outage)
	}, "the orders placed during the outage did not reach TH")
	require.Len(t, onTH, len(outage), "each order placed during the outage on TH exactly once")
	for _, id := range outage {
		require.Contains(t, onTH, id)
	}
	testnet.Eventually(t, 20*time.Second, func() bool {
		for _, id := range outage {
			status, o := f.my.get(t, "/v1/orders/"+id)
			if status != http.StatusOK || o["handoff_receipt"] != true {
				return false
			}
		}
		return outboxLen(t, f.my) == 0
	}, "MY did not get TH's receipts for the outage's orders")
	// Nothing written during the outage half-exists.
	for _, r := range f.th {
		require.Empty(t, r.searchTitles(t, url.Values{"q": {"duringdown"}}), "replica %s", r.name)
	}
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

// TestProcessStoreMigrate: a bbolt TH node with sellers, listings and an
// order from MY is stopped, moved with "store migrate" to an empty
// PostgreSQL database, and run again: the same counts, config.yaml names
// store.url, and its audit evidence exports and verifies.
func TestProcessStoreMigrate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs node processes and a PostgreSQL server")
	}
	storeURL := pgtest.StartCluster(t).CreateDB(t)
	nodes := onboardOrderNodes(t)
	th, my := nodes["TH"], nodes["MY"]

	_, seller := activeSeller(t, th.url, th.token, testnet.THSeller("Surat Thani Rice & Coffee Co., Ltd.", 3))
	_, seller2 := activeSeller(t, th.url, th.token, testnet.THSeller("Hat Yai Durian Co., Ltd.", 5))
	_, pending := apiDo(t, "POST", th.url+"/v1/sellers", "", testnet.THSeller("Pending Seller Co., Ltd.", 6))
	require.NotEmpty(t, pending["id"])
	var listing string
	for i, tok := range []string{seller, seller, seller2} {
		body := testnet.Listing(fmt.Sprintf("ข้าวหอมมะลิ jasmine rice %d", i), "100630", "265.00")
		body["quantity"] = 1000
		status, res := apiDo(t, "POST", th.url+"/v1/listings", tok, body)
		require.Equal(t, http.StatusCreated, status, res)
		if listing == "" {
			listing = res["id"].(string)
		}
	}
	testnet.Eventually(t, 20*time.Second, func() bool {
		status, _ := my.get(t, "/v1/catalog/listings/"+listing)
		return status == http.StatusOK
	}, "the listing did not reach MY")
	status, res := apiDo(t, "POST", my.url+"/v1/marketplaces", my.token, map[string]string{"name": "MY shop"})
	require.Equal(t, http.StatusCreated, status, res)
	shop := res["token"].(string)
	status, res, _ = ordPost(t, my, shop, "migrate-1", ordBody(listing, 2))
	require.Equal(t, http.StatusCreated, status, res)
	order := res["id"].(string)
	testnet.Eventually(t, 20*time.Second, func() bool { return len(ordList(t, th, seller)) == 1 },
		"the order did not reach TH")

	// A peer countersigns TH's chain, as "audit verify" requires of a node
	// that traded with peers; the migration must carry that evidence.
	testnet.Eventually(t, 30*time.Second, func() bool {
		_, b := exportBundle(t, th, "probe.jsonl")
		return witnessedBy(b, "MY") || witnessedBy(b, "ID")
	}, "no peer countersigned TH's checkpoints")
	preBundle, pre := exportBundle(t, th, "before.jsonl")
	out, err := cliRun(t, "audit", "verify", preBundle)
	require.NoError(t, err, "the bundle before the migration: %s", out)

	type counts struct{ sellers, listings, orders, entries int }
	count := func() counts {
		var c counts
		status, res := th.get(t, "/v1/sellers?limit=100")
		require.Equal(t, http.StatusOK, status, res)
		c.sellers = len(res["items"].([]any))
		c.listings = len(th.searchTitles(t, url.Values{"origin": {"TH"}}))
		c.orders = len(ordList(t, th, th.token))
		status, res = th.get(t, "/v1/audit/entries?limit=1000")
		require.Equal(t, http.StatusOK, status, res)
		c.entries = len(res["items"].([]any))
		return c
	}
	was := count()
	require.Equal(t, counts{sellers: 3, listings: 3, orders: 1, entries: was.entries}, was)

	require.NoError(t, th.p.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, waitExit(t, th.p), th.p.stderr.String())
	out, err = cliRun(t, "store", "migrate", "--dir", th.dir, "--to", storeURL)
	require.NoError(t, err, out)

	cfgRaw, err := os.ReadFile(filepath.Join(th.dir, "config.yaml"))
	require.NoError(t, err)
	var cfg struct {
		Store struct {
			URL string `yaml:"url"`
		} `yaml:"store"`
	}
	require.NoError(t, yaml.Unmarshal(cfgRaw, &cfg), string(cfgRaw))
	require.Equal(t, storeURL, cfg.Store.URL, "config.yaml's store.url after the migration")

	th.start(t)
	now := count()
	// Running again may add audit entries (the node's start); none is lost.
	require.GreaterOrEqual(t, now.entries, was.entries, "audit entries")
	now.entries = was.entries
	require.Equal(t, was, now, "counts after the migration")
	status, o := th.get(t, "/v1/orders/"+order)
	require.Equal(t, http.StatusOK, status, o)
	// The migrated node keeps serving: a new listing, and the seller moves
	// the order on.
	status, res = apiDo(t, "POST", th.url+"/v1/listings", seller, testnet.Listing("after the migration", "100630", "265.00"))
	require.Equal(t, http.StatusCreated, status, res)
	status, res = apiDo(t, "POST", th.url+"/v1/orders/"+order+"/transitions", seller, map[string]any{"to": "accepted"})
	require.Equal(t, http.StatusOK, status, res)
	testnet.Eventually(t, 20*time.Second, func() bool {
		status, o := apiDo(t, "GET", my.url+"/v1/orders/"+order, shop, nil)
		return status == http.StatusOK && o["status"] == "accepted"
	}, "MY did not hear of the acceptance from the migrated node")

	bundle, post := exportBundle(t, th, "after.jsonl")
	require.GreaterOrEqual(t, len(post.Entries), len(pre.Entries), "audit entries in the bundle")
	require.Equal(t, pre.Entries, post.Entries[:len(pre.Entries)], "the chain before the migration, unchanged")
	out, err = cliRun(t, "audit", "verify", bundle)
	require.NoError(t, err, out)
	require.Contains(t, out, "Node:         TH")
	require.NotContains(t, th.p.stderr.String(), "panic")
}
