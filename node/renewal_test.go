package node_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/federation"
	"github.com/imtgt/imtgt-node/internal/testnet"
	"github.com/imtgt/imtgt-node/membership"
	"github.com/imtgt/imtgt-node/node"
)

// TestRenewalAfterExpirySpreads: three nodes whose manifest expired fail
// closed; a renewal signed by the expired manifest's quorum, installed on
// TH alone, reaches MY and ID, and the federation carries listings again.
// A renewal short of that quorum does not spread.
func TestRenewalAfterExpirySpreads(t *testing.T) {
	th, my, id := testnet.InitNode(t, "TH"), testnet.InitNode(t, "MY"), testnet.InitNode(t, "ID")
	all := []*testnet.Node{th, my, id}
	man, _ := testnet.SignedManifest(t, 1, 2, all, nil)
	man.Expires = time.Now().Add(2 * time.Second).UTC().Truncate(time.Second).Add(time.Second)
	for _, n := range []*testnet.Node{th, my} {
		require.NoError(t, membership.Sign(man, n.Country, governanceKey(t, n)))
	}
	raw, err := man.Marshal()
	require.NoError(t, err)
	psk, err := federation.NewPSK()
	require.NoError(t, err)
	ctx := context.Background()
	for _, n := range all {
		_, err := node.InstallManifest(ctx, n.Dir, raw, psk)
		require.NoError(t, err)
		n.Start()
	}
	for _, n := range all {
		testnet.Eventually(t, 15*time.Second, func() bool {
			r := n.Do("GET", "/readyz", "", nil)
			return r.Status == http.StatusServiceUnavailable && strings.Contains(string(r.Body), "expired")
		}, n.Country+" /readyz does not say the manifest expired")
	}
	testnet.Eventually(t, 15*time.Second, func() bool { return len(th.Fed.Host().Network().Peers()) == 0 },
		"connections opened before the expiry stayed open")

	// Version 2 signed by ID alone: ID is a member of v1, but one
	// signature is not v1's quorum of two. TH refuses it itself.
	_, weak := testnet.SignedManifest(t, 2, 1, all, []*testnet.Node{id})
	_, err = th.InstallManifest(ctx, weak, psk)
	require.ErrorIs(t, err, membership.ErrThreshold)

	// Version 2 signed by TH and MY (v1's quorum), installed on TH only.
	_, v2 := testnet.SignedManifest(t, 2, 2, all, []*testnet.Node{th, my})
	_, err = th.InstallManifest(ctx, v2, psk)
	require.NoError(t, err)
	for _, n := range []*testnet.Node{my, id} {
		testnet.Eventually(t, 20*time.Second, func() bool {
			m, _ := n.Fed.Manifest()
			return m.Version == 2 && n.Fed.Ready() == nil
		}, n.Country+" did not receive the renewal")
	}
	for _, n := range all {
		require.Equal(t, http.StatusOK, n.Do("GET", "/readyz", "", nil).Status, n.Country)
	}
	_, tok := th.ActiveSeller(testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	require.Equal(t, http.StatusCreated, th.Do("POST", "/v1/listings", tok, testnet.Listing("after the renewal", "030749", "1.00")).Status)
	testnet.Eventually(t, 15*time.Second, func() bool { return my.Catalog.Index().Count() == 1 && id.Catalog.Index().Count() == 1 },
		"the federation does not carry listings after the renewal")
}
