package node_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/federation"
	"github.com/imtgt/imtgt-node/internal/testnet"
	"github.com/imtgt/imtgt-node/keys"
	"github.com/imtgt/imtgt-node/membership"
	"github.com/imtgt/imtgt-node/node"
)

// partitionFor is how long the network between the two nodes is cut:
// minutes, long enough for deliveries to time out and be retried many
// times, for the stalled connection to die and for redials to fail and
// back off.
const partitionFor = 2 * time.Minute

// TestOrderPartitionHeals: TH and MY reach each other only through TCP
// proxies. The network between them is cut for partitionFor while a
// marketplace keeps ordering; when it heals, every order reaches the
// seller's node exactly once and every receipt comes back.
func TestOrderPartitionHeals(t *testing.T) {
	if testing.Short() {
		t.Skip("a partition lasts 2 minutes")
	}
	th, my := testnet.InitNode(t, "TH"), testnet.InitNode(t, "MY")
	proxies := map[string]*testnet.Proxy{}
	var members []membership.Member
	for _, n := range []*testnet.Node{th, my} {
		m, err := node.MemberDescriptor(n.Dir)
		require.NoError(t, err)
		target := strings.TrimPrefix(m.Addrs[0], "/ip4/")
		target = strings.Replace(target, "/tcp/", ":", 1)
		p := testnet.StartProxy(t, target)
		host, port, _ := strings.Cut(p.Addr, ":")
		m.Addrs = []string{fmt.Sprintf("/ip4/%s/tcp/%s", host, port)} // peers dial the proxy
		proxies[n.Country] = p
		members = append(members, m)
	}
	man, err := membership.New("imtgt-test", 1, time.Now().Add(24*time.Hour).UTC().Truncate(time.Second), 2, members)
	require.NoError(t, err)
	for _, n := range []*testnet.Node{th, my} {
		gk, err := keys.LoadGovernanceKey(filepath.Join(n.Dir, node.KeysDir))
		require.NoError(t, err)
		require.NoError(t, membership.Sign(man, n.Country, gk))
	}
	raw, err := man.Marshal()
	require.NoError(t, err)
	psk, err := federation.NewPSK()
	require.NoError(t, err)
	for _, n := range []*testnet.Node{th, my} {
		_, err := node.InstallManifest(context.Background(), n.Dir, raw, psk)
		require.NoError(t, err)
		n.Start()
	}

	_, seller := th.ActiveSeller(testnet.THSeller("Surat Thani Rice & Coffee Co., Ltd.", 3))
	body := testnet.Listing("ข้าวหอมมะลิ 5 กก. jasmine rice", "100630", "265.00")
	body["quantity"] = 1000
	r := th.Do("POST", "/v1/listings", seller, body)
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	rice := r.JSON["id"].(string)
	testnet.Eventually(t, 20*time.Second, func() bool { _, ok := my.Catalog.Get(rice); return ok }, "listing did not sync to MY")
	shop := marketplace(t, my, "Shopee-like MY")

	var ids []string
	place := func(n int) {
		for range n {
			r := doKey(t, my, shop, fmt.Sprintf("partition-%d", len(ids)), orderBody("MY", "MY-07", rice, 1, false))
			require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
			ids = append(ids, r.JSON["id"].(string))
		}
	}
	place(5)
	outboxEmpty := func() bool { return len(my.Do("GET", "/v1/outbox", my.OperatorToken, nil).JSON["items"].([]any)) == 0 }
	testnet.Eventually(t, 20*time.Second, outboxEmpty, "the first orders were not delivered")

	for _, p := range proxies {
		p.Cut()
	}
	start := time.Now()
	place(10)
	// Deliveries fail and are retried while the partition lasts.
	testnet.Eventually(t, 30*time.Second, func() bool {
		items := my.Do("GET", "/v1/outbox", my.OperatorToken, nil).JSON["items"].([]any)
		return len(items) == 10 && items[0].(map[string]any)["attempts"].(float64) >= 1 && items[0].(map[string]any)["last_error"] != ""
	}, "deliveries were not retried during the partition")
	for time.Since(start) < partitionFor/2 {
		time.Sleep(time.Second) // the partition lasts: nothing to poll for
	}
	place(10)
	for time.Since(start) < partitionFor {
		time.Sleep(time.Second)
	}
	for _, p := range proxies {
		p.Heal()
	}
	healed := time.Now()
	testnet.Eventually(t, 90*time.Second, outboxEmpty, "the outbox did not drain after the partition healed")
	t.Logf("outbox drained %s after the partition healed", time.Since(healed).Round(time.Millisecond))

	got := map[string]int{}
	for _, o := range (&orderNet{th: th, seller: seller}).sellerOrders(t) {
		got[o["id"].(string)]++
	}
	require.Len(t, got, len(ids), "every order reaches the seller's node")
	for _, id := range ids {
		require.Equal(t, 1, got[id], "order %s arrived %d times", id, got[id])
		require.Equal(t, true, my.Do("GET", "/v1/orders/"+id, shop, nil).JSON["handoff_receipt"], "order %s has no receipt", id)
	}
	l, _ := th.Catalog.Get(rice)
	require.EqualValues(t, 1000-len(ids), l.Quantity, "stock taken once per order")
}
