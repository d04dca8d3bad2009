package federation_test

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/internal/testnet"
	"github.com/imtgt/imtgt-node/node"
)

func searchIDs(t *testing.T, n *testnet.Node, q string) []string {
	t.Helper()
	r := n.Do("GET", "/v1/catalog/search?"+q, n.OperatorToken, nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	var ids []string
	for _, it := range r.JSON["items"].([]any) {
		ids = append(ids, it.(map[string]any)["id"].(string))
	}
	return ids
}

func TestCatalogSyncsAcrossThreeNodes(t *testing.T) {
	fed := testnet.Federate(t, "TH", "MY", "ID")
	th, my, id := fed.Nodes["TH"], fed.Nodes["MY"], fed.Nodes["ID"]
	reg := testnet.THSeller("Surat Thani Rice & Coffee Co., Ltd.", 3)
	_, tok := th.ActiveSeller(reg)
	r := th.Do("POST", "/v1/listings", tok, testnet.Listing("ข้าวหอมมะลิ 5 กก. jasmine rice", "100630", "265.00"))
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	lid := r.JSON["id"].(string)

	for _, n := range []*testnet.Node{my, id} {
		testnet.Eventually(t, 10*time.Second, func() bool { return len(searchIDs(t, n, "q=หอมมะลิ")) == 1 }, n.Country+" did not receive the listing")
		require.Equal(t, []string{lid}, searchIDs(t, n, "origin=TH"))
		require.Empty(t, searchIDs(t, n, "origin=MY"))
		got := n.Do("GET", "/v1/catalog/listings/"+lid, n.OperatorToken, nil)
		require.Equal(t, "TH", got.JSON["origin"])
		require.Equal(t, "Surat Thani Rice & Coffee Co., Ltd.", got.JSON["seller"].(map[string]any)["legal_name"])
	}

	// Update and delete propagate too.
	r = th.Do("PATCH", "/v1/listings/"+lid, tok, map[string]any{"title": "Hom Mali jasmine rice, new crop"})
	require.Equal(t, http.StatusOK, r.Status)
	for _, n := range []*testnet.Node{my, id} {
		testnet.Eventually(t, 10*time.Second, func() bool { return len(searchIDs(t, n, "q=crop")) == 1 }, n.Country+" did not receive the update")
	}
	require.Equal(t, http.StatusNoContent, th.Do("DELETE", "/v1/listings/"+lid, tok, nil).Status)
	for _, n := range []*testnet.Node{my, id} {
		testnet.Eventually(t, 10*time.Second, func() bool { return len(searchIDs(t, n, "origin=TH")) == 0 }, n.Country+" did not receive the delete")
	}

	// Peers: every member is listed, connected, with heads.
	r = my.Do("GET", "/v1/peers", my.OperatorToken, nil)
	require.Equal(t, http.StatusOK, r.Status)
	items := r.JSON["items"].([]any)
	require.Len(t, items, 3)
	for _, it := range items {
		p := it.(map[string]any)
		require.Equal(t, true, p["connected"], p["country"])
	}
	require.Equal(t, http.StatusOK, my.Do("GET", "/readyz", "", nil).Status)

	// No personal field of the seller reached a peer's store or log.
	owner := reg["owner"].(map[string]string)
	for _, n := range []*testnet.Node{my, id} {
		n.Stop()
		data, err := os.ReadFile(node.StorePath(n.Dir))
		require.NoError(t, err)
		for _, secret := range []string{owner["full_name"], owner["national_id"], owner["email"], owner["address"], "9876543210"} {
			require.NotContains(t, string(data), secret)
			require.NotContains(t, n.Logs(), secret)
		}
	}
}

func TestRestartedNodeCatchesUp(t *testing.T) {
	fed := testnet.Federate(t, "TH", "MY")
	th, my := fed.Nodes["TH"], fed.Nodes["MY"]
	_, tok := th.ActiveSeller(testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	my.Stop()
	for i := 0; i < 5; i++ {
		r := th.Do("POST", "/v1/listings", tok, testnet.Listing("dried squid batch", "030749", "100.00"))
		require.Equal(t, http.StatusCreated, r.Status)
	}
	my.Start()
	testnet.Eventually(t, 15*time.Second, func() bool { return len(searchIDs(t, my, "q=squid")) == 5 }, "MY did not catch up")
	// And restart keeps federated listings.
	my.Restart()
	require.Len(t, searchIDs(t, my, "q=squid"), 5)
	_ = context.Background()
}

func TestPartitionHeals(t *testing.T) {
	fed := testnet.Federate(t, "TH", "MY", "ID")
	th, my, id := fed.Nodes["TH"], fed.Nodes["MY"], fed.Nodes["ID"]
	_, thTok := th.ActiveSeller(testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	myReg := testnet.THSeller("Penang White Coffee Sdn. Bhd.", 0)
	myReg["business_id"], myReg["region"] = "201901012345", "MY-07"
	myReg["owner"].(map[string]string)["national_id"] = "850712-07-5678"
	_, myTok := my.ActiveSeller(myReg)

	// Cut MY off from both others, both ways.
	my.Fed.PartitionForTest(th.Fed.PeerID(), id.Fed.PeerID())
	th.Fed.PartitionForTest(my.Fed.PeerID())
	id.Fed.PartitionForTest(my.Fed.PeerID())

	for i := 0; i < 3; i++ {
		require.Equal(t, http.StatusCreated, th.Do("POST", "/v1/listings", thTok, testnet.Listing("squid during partition", "030749", "100.00")).Status)
	}
	myListing := testnet.Listing("kopi putih during partition", "210112", "18.90")
	myListing["price"] = map[string]string{"amount": "18.90", "currency": "MYR"}
	myListing["ship_from"] = "MY-07"
	r := my.Do("POST", "/v1/listings", myTok, myListing)
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))

	// ID hears TH, MY hears no one.
	testnet.Eventually(t, 10*time.Second, func() bool { return len(searchIDs(t, id, "q=squid")) == 3 }, "ID did not get TH's listings")
	require.Empty(t, searchIDs(t, my, "q=squid"), "a partitioned node received records")
	require.Empty(t, searchIDs(t, th, "q=kopi"))

	my.Fed.HealForTest()
	th.Fed.HealForTest()
	id.Fed.HealForTest()
	testnet.Eventually(t, 30*time.Second, func() bool {
		return len(searchIDs(t, my, "q=squid")) == 3 && len(searchIDs(t, th, "q=kopi")) == 1 && len(searchIDs(t, id, "q=kopi")) == 1
	}, "catalogs did not converge after the partition healed")
}
