package node_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/aftersale"
	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/internal/testnet"
	"github.com/imtgt/imtgt-node/node"
	"github.com/imtgt/imtgt-node/orders"
	"github.com/imtgt/imtgt-node/policy"
)

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "th")
	res, err := node.Init(node.InitOptions{Dir: dir, Country: "th", Name: "Thai node"})
	require.NoError(t, err)
	require.Equal(t, "TH", res.Config.Node.Country)
	for _, f := range []string{"operator.token", "keys/node.key", "keys/governance.key", "keys/data.key"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err, f)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f)
	}
	tok, err := node.ReadOperatorToken(dir)
	require.NoError(t, err)
	require.Equal(t, res.OperatorToken, tok)
	// Only the hash of the token is kept by the node.
	data, err := os.ReadFile(node.StorePath(dir))
	require.NoError(t, err)
	require.NotContains(t, string(data), tok)

	_, err = node.Init(node.InitOptions{Dir: dir, Country: "TH"})
	require.ErrorIs(t, err, node.ErrNodeExists)
	require.ErrorContains(t, err, "config.yaml")

	// Bad options leave nothing behind.
	bad := filepath.Join(t.TempDir(), "sg")
	_, err = node.Init(node.InitOptions{Dir: bad, Country: "SG"})
	require.ErrorIs(t, err, node.ErrConfig)
	_, err = node.Init(node.InitOptions{Dir: bad, Country: "TH", HTTPAddr: "nowhere"})
	require.ErrorIs(t, err, node.ErrConfig)
	_, statErr := os.Stat(bad)
	require.True(t, os.IsNotExist(statErr))
	entries, _ := os.ReadDir(filepath.Dir(bad))
	require.Empty(t, entries, "no temporary directory is left behind")

	// An empty existing directory is fine.
	empty := t.TempDir()
	_, err = node.Init(node.InitOptions{Dir: empty, Country: "MY"})
	require.NoError(t, err)
}

func TestOpenRefusesOtherNodesStore(t *testing.T) {
	a := filepath.Join(t.TempDir(), "a")
	b := filepath.Join(t.TempDir(), "b")
	_, err := node.Init(node.InitOptions{Dir: a, Country: "TH"})
	require.NoError(t, err)
	_, err = node.Init(node.InitOptions{Dir: b, Country: "TH"})
	require.NoError(t, err)
	data, err := os.ReadFile(node.StorePath(a))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(node.StorePath(b), data, 0o600))
	_, err = node.Open(context.Background(), b, node.Options{})
	require.ErrorContains(t, err, "belongs to node")
}

func TestBackupRestore(t *testing.T) {
	n := testnet.Start(t, "TH")
	_, tok := n.ActiveSeller(testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	r := n.Do("POST", "/v1/listings", tok, testnet.Listing("ปลาหมึกแห้ง", "030749", "420.00"))
	require.Equal(t, http.StatusCreated, r.Status)
	kept := r.JSON["id"].(string)

	// The backup CLI reads the address from config.yaml; point it at the
	// test node's random port.
	cfgPath := filepath.Join(n.Dir, node.ConfigFile)
	cfg, err := os.ReadFile(cfgPath)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfgPath, bytes.Replace(cfg, []byte(`"127.0.0.1:0"`), []byte(`"`+n.URL[len("http://"):]+`"`), 1), 0o600))

	out := filepath.Join(t.TempDir(), "th.db")
	res, err := node.Backup(context.Background(), n.Dir, out)
	require.NoError(t, err)
	require.Positive(t, res.Bytes)

	// After the backup: another listing, which the restore must undo.
	r = n.Do("POST", "/v1/listings", tok, testnet.Listing("later listing", "030749", "1.00"))
	require.Equal(t, http.StatusCreated, r.Status)
	later := r.JSON["id"].(string)

	_, err = node.Restore(n.Dir, out, time.Now())
	require.ErrorContains(t, err, "stop the node", "restore refuses a running node")

	n.Stop()
	rr, err := node.Restore(n.Dir, out, time.Now())
	require.NoError(t, err)
	require.FileExists(t, rr.Previous)

	n2, err := node.Open(context.Background(), n.Dir, node.Options{HTTPAddr: "127.0.0.1:0"})
	require.NoError(t, err)
	defer n2.Close(context.Background())
	_, ok := n2.Catalog.Get(kept)
	require.True(t, ok)
	_, ok = n2.Catalog.Get(later)
	require.False(t, ok)

	// A file that is not a backup of this node is refused.
	junk := filepath.Join(t.TempDir(), "junk.db")
	require.NoError(t, os.WriteFile(junk, []byte("not a database"), 0o600))
	require.NoError(t, n2.Close(context.Background()))
	_, err = node.Restore(n.Dir, junk, time.Now())
	require.ErrorIs(t, err, node.ErrWrongBackup)
	other := testnet.Start(t, "TH")
	other.Stop()
	_, err = node.Restore(n.Dir, node.StorePath(other.Dir), time.Now())
	require.ErrorIs(t, err, node.ErrWrongBackup)
}

func TestDemo(t *testing.T) {
	ctx := context.Background()
	var out bytes.Buffer
	d, err := node.StartDemo(ctx, node.DemoOptions{Dir: t.TempDir(), Out: &out})
	require.NoError(t, err)
	defer d.Close(ctx)
	require.Len(t, d.Nodes, 3)
	th := d.Nodes[0]
	require.Equal(t, "TH", th.Country)
	// StartDemo returns once every catalog holds every country's listings.
	total := th.Node.Catalog.Index().Count()
	for _, dn := range d.Nodes {
		require.Equal(t, total, dn.Node.Catalog.Index().Count(), dn.Country)
		require.Len(t, dn.Node.Catalog.Index().CountByOrigin(), 3, dn.Country)
	}
	// The policy shows in the demo: TH buyers may not order the MY vape kit.
	page, err := th.Node.Catalog.Search(catalog.Query{Text: "vape"})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	p, _ := th.Node.Policy()
	require.False(t, policy.Evaluate(p, policy.Listing{Origin: page.Items[0].Origin, HSCode: page.Items[0].HSCode, UnitPrice: page.Items[0].Price}, time.Now()).Orderable)
	// Orders in the demo: the MY marketplace's first order reached shipped.
	myOrders, _, err := d.Nodes[1].Node.Orders.List(ctx, nil, "", 10)
	require.NoError(t, err)
	require.NotEmpty(t, myOrders)
	require.Contains(t, out.String(), "the MY node shows it shipped")
	// The demo's after-sale issue: resolved with a refund, on both nodes,
	// the refund on the order.
	for _, dn := range d.Nodes[:2] {
		refs, err := dn.Node.Store.Issues(ctx, func(*orders.Order, *aftersale.Issue) bool { return true }, "", 10)
		require.NoError(t, err)
		require.Len(t, refs, 1, dn.Country)
		require.Equal(t, aftersale.StatusResolved, refs[0].Issue.Status, dn.Country)
		require.Len(t, refs[0].Issue.Refunds, 1, dn.Country)
		o, err := dn.Node.Orders.Get(ctx, refs[0].Issue.OrderID)
		require.NoError(t, err)
		require.Len(t, o.Refunds, 1, dn.Country)
	}
	require.Contains(t, out.String(), "resolved the issue")
	d.PrintSummary(&out)
	require.Contains(t, out.String(), th.URL)
	require.Contains(t, out.String(), th.OperatorToken)
}
