package node_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/federation"
	"github.com/imtgt/imtgt-node/internal/pgtest"
	"github.com/imtgt/imtgt-node/internal/testnet"
	"github.com/imtgt/imtgt-node/policy"
)

// bumpPolicy returns n's installed policy at version v, signed by key
// under country's name (a forgery when key is not n's agency's).
func bumpPolicy(t *testing.T, n *testnet.Node, v uint64, country string, key []byte) []byte {
	t.Helper()
	p, raw := n.Policy()
	edited := strings.Replace(string(raw), fmt.Sprintf("version: %d\n", p.Version), fmt.Sprintf("version: %d\n", v), 1)
	require.NotEqual(t, string(raw), edited)
	signed, err := policy.Sign([]byte(edited), country, key)
	require.NoError(t, err)
	return signed
}

func peerPolicyVersion(n *testnet.Node, country string) uint64 {
	if p := n.PeerPolicy(country); p != nil {
		return p.Version
	}
	return 0
}

// TestPeerPoliciesSpread: every node holds every other member's signed
// policy once federated; a new version installed on MY reaches TH and ID
// (with its policy.ingress audit entry, and in GET
// /v1/federation/policies); a file signed by the wrong key, one of
// another country, and an older version are refused, recorded, and not
// stored.
func TestPeerPoliciesSpread(t *testing.T) {
	fed := testnet.Federate(t, "TH", "MY", "ID")
	th, my, id := fed.Nodes["TH"], fed.Nodes["MY"], fed.Nodes["ID"]
	for _, a := range []*testnet.Node{th, my, id} {
		for _, b := range []*testnet.Node{th, my, id} {
			if a == b {
				continue
			}
			testnet.Eventually(t, 20*time.Second, func() bool { return peerPolicyVersion(a, b.Country) == 1 },
				fmt.Sprintf("%s did not receive %s's policy", a.Country, b.Country))
			_, want := b.Policy()
			got, err := a.Store.PeerPolicy(b.Country)
			require.NoError(t, err)
			require.Equal(t, want, got, "%s holds %s's exact bytes", a.Country, b.Country)
		}
	}

	// MY installs version 2: it is offered at once, not at the next round.
	v2 := bumpPolicy(t, my, 2, "MY", governanceKey(t, my))
	_, err := my.InstallPolicy(context.Background(), v2)
	require.NoError(t, err)
	for _, n := range []*testnet.Node{th, id} {
		testnet.Eventually(t, 20*time.Second, func() bool { return peerPolicyVersion(n, "MY") == 2 }, n.Country+" did not receive MY's version 2")
	}
	es, _, err := th.AuditEntries(context.Background(), audit.Query{Kind: string(audit.PeerPolicy), Peer: "MY"})
	require.NoError(t, err)
	require.Len(t, es, 2, "one policy.ingress entry per version stored")
	require.EqualValues(t, 2, es[1].PolicyVersion)
	require.Equal(t, audit.HashHex(v2), es[1].PayloadHash)

	r := th.Do("GET", "/v1/federation/policies", th.OperatorToken, nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	items := r.JSON["items"].([]any)
	require.Len(t, items, 3)
	sum := sha256.Sum256(v2)
	byCountry := map[string]map[string]any{}
	for _, it := range items {
		m := it.(map[string]any)
		byCountry[m["country"].(string)] = m
	}
	require.EqualValues(t, 2, byCountry["MY"]["version"])
	require.Equal(t, hex.EncodeToString(sum[:]), byCountry["MY"]["sha256"])
	require.Equal(t, false, byCountry["MY"]["own"])
	require.Equal(t, true, byCountry["TH"]["own"])
	require.NotEmpty(t, byCountry["ID"]["effective"])

	// Each refusal is counted; the first of MY's for bad_policy is in the
	// audit log at once, the repeats in the aggregator's summary
	// (federation/refusals.go).
	recorded := func() []audit.Entry {
		es, _, err := th.AuditEntries(context.Background(), audit.Query{Kind: string(audit.Rejection), Peer: "MY", Limit: 1000})
		require.NoError(t, err)
		var out []audit.Entry
		for _, e := range es {
			if e.Purpose == string(federation.ProtoPolicy) {
				out = append(out, e)
			}
		}
		return out
	}
	refusals := func() int {
		mfs, err := th.Metrics.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() != "imtgt_federation_rejected_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "reason" && l.GetValue() == "bad_policy" {
						return int(m.GetCounter().GetValue())
					}
				}
			}
		}
		return 0
	}
	ctx := context.Background()
	for _, c := range []struct {
		name, want string
		raw        []byte
		country    string
		version    uint64
	}{
		// MY's file, version 3, signed with ID's governance key.
		{"wrong key", "not MY's governance key", bumpPolicy(t, my, 3, "MY", governanceKey(t, id)), "MY", 3},
		// ID's own, properly signed, version 4, but offered by MY's node.
		{"another country's", "a policy of ID offered by MY's node", bumpPolicy(t, id, 4, "ID", governanceKey(t, id)), "ID", 4},
		// MY's version 1 again, after version 2.
		{"older version", "older than the held version 2", func() []byte { raw, err := th.Store.PeerPolicyVersions("MY"); require.NoError(t, err); return raw[1] }(), "MY", 1},
	} {
		before := refusals()
		_, err := my.Fed.OfferPolicy(ctx, "TH", c.raw)
		require.ErrorContains(t, err, c.want, c.name)
		vs, err := th.Store.PeerPolicyVersions(c.country)
		require.NoError(t, err)
		if c.version > 2 {
			require.NotContains(t, vs, c.version, "%s: not stored", c.name)
		}
		require.Equal(t, before+1, refusals(), "%s: counted", c.name)
	}
	testnet.Eventually(t, 10*time.Second, func() bool { return len(recorded()) > 0 }, "the refusal is not on record")
	require.Contains(t, recorded()[0].Reason, "bad_policy: ")
	require.Contains(t, recorded()[0].Reason, "not MY's governance key")
	require.EqualValues(t, 2, peerPolicyVersion(th, "MY"))
	require.EqualValues(t, 1, peerPolicyVersion(th, "ID"))

	// What TH holds survives a restart.
	th.Restart()
	require.EqualValues(t, 2, peerPolicyVersion(th, "MY"))
}

// TestPeerPoliciesReachEveryReplica: TH runs as two replicas on one
// PostgreSQL store (skipped without IMTGT_TEST_POSTGRES). Only the leader
// receives MY's policy; the other replica learns of it from the change
// feed, the first version and the next.
func TestPeerPoliciesReachEveryReplica(t *testing.T) {
	fed := testnet.FederateWith(t, testnet.FedOptions{
		StoreURLs: map[string]string{"TH": pgtest.URL(t)},
		Replicas:  map[string]int{"TH": 2},
	}, "TH", "MY")
	my := fed.Nodes["MY"]
	for _, r := range fed.Replicas["TH"] {
		testnet.Eventually(t, 20*time.Second, func() bool { return peerPolicyVersion(r, "MY") == 1 }, "a TH replica lacks MY's policy")
	}
	_, err := my.InstallPolicy(context.Background(), bumpPolicy(t, my, 2, "MY", governanceKey(t, my)))
	require.NoError(t, err)
	for _, r := range fed.Replicas["TH"] {
		testnet.Eventually(t, 20*time.Second, func() bool { return peerPolicyVersion(r, "MY") == 2 }, "a TH replica did not reload MY's version 2")
	}
}
