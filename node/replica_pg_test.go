package node_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/internal/pgtest"
	"github.com/imtgt/imtgt-node/internal/testnet"
	"github.com/imtgt/imtgt-node/node"
	"github.com/imtgt/imtgt-node/policy"
)

// TestReplicasShareOneStore runs two replicas of one node on one
// PostgreSQL database (skipped without IMTGT_TEST_POSTGRES): exactly one
// leads the federation; a listing created on one is found by search on
// the other within a second; a policy installed through one is in force
// on the other; when the leader closes, the other leads within 10 s.
func TestReplicasShareOneStore(t *testing.T) {
	url := pgtest.URL(t)
	dir, op, err := testnet.InitShared(t, "TH", url)
	if errors.Is(err, node.ErrNoPostgres) {
		t.Skip("this build has no PostgreSQL store backend yet")
	}
	require.NoError(t, err)
	a := testnet.StartReplica(t, dir, "TH", op)
	b := testnet.StartReplica(t, dir, "TH", op)

	leaders := func() (l []*testnet.Node) {
		for _, r := range []*testnet.Node{a, b} {
			if r.Node != nil && r.Role() == "leader" {
				l = append(l, r)
			}
		}
		return l
	}
	testnet.Eventually(t, 5*time.Second, func() bool { return len(leaders()) == 1 }, "one replica leads")
	for i := 0; i < 10; i++ { // and only one, for a while
		require.LessOrEqual(t, len(leaders()), 1)
		time.Sleep(100 * time.Millisecond)
	}
	r := b.Do("GET", "/readyz", "", nil)
	require.Contains(t, []string{"leader", "follower"}, r.JSON["role"])

	_, seller := a.ActiveSeller(testnet.THSeller("Surat Thani Rice & Coffee Co., Ltd.", 3))
	r = a.Do("POST", "/v1/listings", seller, testnet.Listing("ข้าวหอมมะลิ 5 กก. jasmine rice", "100630", "265.00"))
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	id := r.JSON["id"].(string)
	created := time.Now()
	testnet.Eventually(t, time.Second, func() bool {
		s := b.Do("GET", "/v1/search?q=jasmine", "", nil)
		return s.Status == http.StatusOK && strings.Contains(string(s.Body), id)
	}, "the listing created on A is found by search on B")
	t.Logf("listing searchable on the other replica after %s", time.Since(created).Round(time.Millisecond))

	// A policy installed through A is in force on B.
	_, raw := a.Policy()
	v2 := strings.Replace(string(raw), "version: 1\n", "version: 2\n", 1)
	signed, err := policy.Sign([]byte(v2), "TH", governanceKey(t, a))
	require.NoError(t, err)
	_, err = a.InstallPolicy(context.Background(), signed)
	require.NoError(t, err)
	testnet.Eventually(t, 2*time.Second, func() bool { p, _ := b.Policy(); return p.Version == 2 }, "B runs the policy installed through A")

	// The leader closes: the other takes over at once (the lease is released).
	l := leaders()
	require.Len(t, l, 1)
	other := a
	if l[0] == a {
		other = b
	}
	stopped := time.Now()
	l[0].Stop()
	testnet.Eventually(t, 10*time.Second, func() bool { return other.Role() == "leader" }, "the other replica leads after the leader closed")
	t.Logf("failover after a clean close took %s", time.Since(stopped).Round(time.Millisecond))
	require.Contains(t, other.Logs(), "federation leader")
}
