package node_test

import (
	"context"
	"crypto/ed25519"
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

func TestInstallRefusals(t *testing.T) {
	th, my, id := testnet.InitNode(t, "TH"), testnet.InitNode(t, "MY"), testnet.InitNode(t, "ID")
	all := []*testnet.Node{th, my, id}
	psk, err := federation.NewPSK()
	require.NoError(t, err)
	ctx := context.Background()

	_, underSigned := testnet.SignedManifest(t, 1, 2, all, []*testnet.Node{th})
	_, err = node.InstallManifest(ctx, th.Dir, underSigned, psk)
	require.ErrorIs(t, err, node.ErrInstall)
	require.ErrorContains(t, err, "1 valid signature(s) of 2 required")

	_, notUs := testnet.SignedManifest(t, 1, 2, []*testnet.Node{my, id}, []*testnet.Node{my, id})
	_, err = node.InstallManifest(ctx, th.Dir, notUs, psk)
	require.ErrorContains(t, err, "not a member")

	_, err = node.InstallManifest(ctx, th.Dir, []byte("federation: x\n"), psk)
	require.ErrorIs(t, err, node.ErrInstall)
	_, err = node.InstallManifest(ctx, th.Dir, underSigned, []byte("not a key"))
	require.ErrorContains(t, err, "swarm.key")

	_, v2 := testnet.SignedManifest(t, 2, 2, all, all)
	_, err = node.InstallManifest(ctx, th.Dir, v2, psk)
	require.NoError(t, err)
	_, v1 := testnet.SignedManifest(t, 1, 2, all, all)
	_, err = node.InstallManifest(ctx, th.Dir, v1, psk)
	require.ErrorIs(t, err, membership.ErrVersion, "a lower version is refused")
	_, err = node.InstallManifest(ctx, th.Dir, v2, psk)
	require.ErrorIs(t, err, membership.ErrVersion, "the same version is refused")

	// Expired.
	man, _ := testnet.SignedManifest(t, 3, 2, all, nil)
	man.Expires = time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	for _, n := range all[:2] {
		require.NoError(t, membership.Sign(man, n.Country, governanceKey(t, n)))
	}
	expired, err := man.Marshal()
	require.NoError(t, err)
	_, err = node.InstallManifest(ctx, th.Dir, expired, psk)
	require.ErrorIs(t, err, membership.ErrExpired)

	// A refused install through the running node's API: 422, nothing changes.
	th.Start()
	r := th.Do("POST", "/v1/federation/manifest", th.OperatorToken, map[string]string{"manifest": string(v1), "psk": string(psk)})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Body))
	require.Contains(t, string(r.Body), "not newer")
	r = th.Do("GET", "/v1/federation/manifest", th.OperatorToken, nil)
	require.EqualValues(t, 2, r.JSON["summary"].(map[string]any)["version"])
}

func governanceKey(t *testing.T, n *testnet.Node) ed25519.PrivateKey {
	t.Helper()
	k, err := keysLoadGovernance(n.Dir)
	require.NoError(t, err)
	return k
}

func TestMembershipChangesApplyWithoutRestart(t *testing.T) {
	fed := testnet.Federate(t, "TH", "MY")
	th, my := fed.Nodes["TH"], fed.Nodes["MY"]
	id := testnet.InitNode(t, "ID")
	ctx := context.Background()

	// v2 adds ID, signed by the current quorum (TH and MY); installed on TH
	// while it runs, it spreads to MY.
	_, v2 := testnet.SignedManifest(t, 2, 2, []*testnet.Node{th, my, id}, []*testnet.Node{th, my})
	// (The CLI reaches a running node through its HTTP API, which calls this.)
	_, err := th.InstallManifest(ctx, v2, fed.PSK)
	require.NoError(t, err)
	testnet.Eventually(t, 15*time.Second, func() bool {
		m, _ := my.Fed.Manifest()
		return m.Version == 2
	}, "v2 did not spread to MY")
	_, err = node.InstallManifest(ctx, id.Dir, v2, fed.PSK)
	require.NoError(t, err)
	id.Start()
	fed.Nodes["ID"] = id
	fed.WaitConnected()

	_, tok := th.ActiveSeller(testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	require.Equal(t, http.StatusCreated, th.Do("POST", "/v1/listings", tok, testnet.Listing("dried squid", "030749", "1.00")).Status)
	testnet.Eventually(t, 10*time.Second, func() bool { return id.Catalog.Index().Count() == 1 && my.Catalog.Index().Count() == 1 }, "the new member did not sync")

	// v3 removes MY, signed by the v2 quorum TH and ID.
	_, v3 := testnet.SignedManifest(t, 3, 2, []*testnet.Node{th, id}, []*testnet.Node{th, id})
	_, err = th.InstallManifest(ctx, v3, fed.PSK)
	require.NoError(t, err)
	testnet.Eventually(t, 15*time.Second, func() bool {
		m, _ := id.Fed.Manifest()
		return m.Version == 3
	}, "v3 did not spread to ID")
	testnet.Eventually(t, 10*time.Second, func() bool {
		return len(th.Fed.Host().Network().ConnsToPeer(my.Fed.PeerID())) == 0 &&
			len(id.Fed.Host().Network().ConnsToPeer(my.Fed.PeerID())) == 0
	}, "the removed member is still connected")
	require.Equal(t, http.StatusCreated, th.Do("POST", "/v1/listings", tok, testnet.Listing("after removal", "030749", "1.00")).Status)
	testnet.Eventually(t, 10*time.Second, func() bool { return id.Catalog.Index().Count() == 2 }, "ID did not sync after the change")
	// MY, still on v2, keeps trying; the others refuse it.
	my.Fed.Published()
	require.Never(t, func() bool { return my.Catalog.Index().Count() > 1 }, 2*time.Second, 50*time.Millisecond)
}

func TestExpiredManifestFailsClosed(t *testing.T) {
	th, my := testnet.InitNode(t, "TH"), testnet.InitNode(t, "MY")
	man, _ := testnet.SignedManifest(t, 1, 2, []*testnet.Node{th, my}, nil)
	man.Expires = time.Now().Add(3 * time.Second).UTC().Truncate(time.Second).Add(time.Second)
	for _, n := range []*testnet.Node{th, my} {
		require.NoError(t, membership.Sign(man, n.Country, governanceKey(t, n)))
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
	require.Equal(t, http.StatusOK, th.Do("GET", "/readyz", "", nil).Status)
	testnet.Eventually(t, 10*time.Second, func() bool { return th.Do("GET", "/readyz", "", nil).Status == http.StatusServiceUnavailable }, "readyz did not fail when the manifest expired")
	r := th.Do("GET", "/readyz", "", nil)
	require.True(t, strings.Contains(string(r.Body), "expired"), string(r.Body))
	_, tok := th.ActiveSeller(testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	require.Equal(t, http.StatusCreated, th.Do("POST", "/v1/listings", tok, testnet.Listing("after expiry", "030749", "1.00")).Status)
	th.Fed.Published()
	require.Never(t, func() bool { return my.Catalog.Index().Count() > 0 }, 2*time.Second, 50*time.Millisecond, "records crossed under an expired manifest")
	testnet.Eventually(t, 15*time.Second, func() bool { return len(th.Fed.Host().Network().Peers()) == 0 }, "connections stayed open under an expired manifest")
}
