package federation

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/configs"
	"github.com/imtgt/imtgt-node/policy"
)

// The audit entry of catalog records served: this node's records carry
// the fields its policy lets leave for the peer; other origins' records
// are a relay; and records no rule lets go to that peer do not leave, the
// refusal recorded.
func TestCatalogEgressEntry(t *testing.T) {
	th, my, id := newIdentity(t, "TH"), newIdentity(t, "MY"), newIdentity(t, "ID")
	m, raw := testManifest(t, th, my, id)
	psk, err := NewPSK()
	require.NoError(t, err)
	node := startNode(t, th, m, raw, psk)

	def, err := configs.DefaultPolicy("TH")
	require.NoError(t, err)
	narrowed := strings.Replace(string(def), "  - id: TH-TR-CATALOG\n    purpose: catalog\n    record: listing\n    destinations: [\"*\"]",
		"  - id: TH-TR-CATALOG\n    purpose: catalog\n    record: listing\n    destinations: [ID]", 1)
	require.NotEqual(t, string(def), narrowed)
	permissive, err := policy.Parse("TH", def)
	require.NoError(t, err)
	onlyID, err := policy.Parse("TH narrowed", []byte(narrowed))
	require.NoError(t, err)

	var mu sync.Mutex
	var refused []*audit.Entry
	current := permissive
	// Set before any peer connects: no handler reads the config yet.
	node.svc.cfg.Policy = func() *policy.Policy { mu.Lock(); defer mu.Unlock(); return current }
	node.svc.cfg.Rejected = func(e *audit.Entry) { mu.Lock(); defer mu.Unlock(); refused = append(refused, e) }
	recs := [][]byte{[]byte("record 5"), []byte("record 6")}

	e, err := node.svc.catalogEgress(my.id, "TH", 5, recs)
	require.NoError(t, err)
	require.Equal(t, audit.CatalogEgress, e.Kind)
	require.Equal(t, "MY", e.Peer)
	require.Equal(t, []string{"TH#5-6"}, e.Records)
	require.Equal(t, 2, e.Count)
	require.Contains(t, e.Fields, "listing.title")
	require.NotContains(t, e.Fields, "listing.seller.owner")
	require.Equal(t, []string{"TH-TR-CATALOG"}, e.Rules)
	require.Equal(t, audit.HashHex([]byte("record 5record 6")), e.PayloadHash)

	e, err = node.svc.catalogEgress(my.id, "ID", 1, recs)
	require.NoError(t, err)
	require.Equal(t, audit.PurposeRelay, e.Purpose)
	require.Empty(t, e.Fields, "a relay carries no data of this country")

	mu.Lock()
	current = onlyID
	mu.Unlock()
	e, err = node.svc.catalogEgress(id.id, "TH", 5, recs)
	require.NoError(t, err, "ID is still named")
	require.Equal(t, "ID", e.Peer)
	_, err = node.svc.catalogEgress(my.id, "TH", 5, recs)
	require.ErrorContains(t, err, "policy: ")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, refused, 1)
	require.Equal(t, audit.Rejection, refused[0].Kind)
	require.Equal(t, "MY", refused[0].Peer)
	require.Contains(t, refused[0].Reason, "listing to MY for catalog")
}
