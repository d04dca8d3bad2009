package node_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/internal/testnet"
	"github.com/imtgt/imtgt-node/node"
	"github.com/imtgt/imtgt-node/policy"
)

func mySeller(name string) map[string]any {
	reg := testnet.THSeller(name, 0)
	reg["business_id"], reg["region"] = "201901012345", "MY-07"
	reg["owner"].(map[string]string)["national_id"] = "850712-07-5678"
	return reg
}

func myListing(title, hs, amount string) map[string]any {
	l := testnet.Listing(title, hs, amount)
	l["price"] = map[string]string{"amount": amount, "currency": "MYR"}
	l["ship_from"] = "MY-07"
	return l
}

func itemsOf(t *testing.T, r testnet.Response) []map[string]any {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	var out []map[string]any
	for _, it := range r.JSON["items"].([]any) {
		out = append(out, it.(map[string]any))
	}
	return out
}

// TestPolicyAcrossTheFederation is the policy issue's "done when" on three
// nodes: TH refuses an MY e-cigarette listing citing the rule, ID refuses an
// RM 50 listing under its minimum unit price and quotes an RM 600 one in
// IDR, and a new rate, signed and installed, changes quotes at once.
func TestPolicyAcrossTheFederation(t *testing.T) {
	fed := testnet.Federate(t, "TH", "MY", "ID")
	th, my, id := fed.Nodes["TH"], fed.Nodes["MY"], fed.Nodes["ID"]
	_, tok := my.ActiveSeller(mySeller("Penang Trading Sdn. Bhd."))
	create := func(body map[string]any) string {
		r := my.Do("POST", "/v1/listings", tok, body)
		require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
		return r.JSON["id"].(string)
	}
	vape := create(myListing("Vape pod kit", "854340", "50.00"))
	cheap := create(myListing("Kopi putih sachets", "210112", "50.00"))
	coffee := create(myListing("Kopi putih premium hamper", "210112", "600.00"))
	for _, n := range []*testnet.Node{th, id} {
		testnet.Eventually(t, 10*time.Second, func() bool { return n.Catalog.Index().Count() == 3 }, n.Country+" did not sync")
	}

	// TH: the e-cigarette is not orderable, with the rule and its source.
	r := th.Do("GET", "/v1/catalog/listings/"+vape, th.OperatorToken, nil)
	imp := r.JSON["import"].(map[string]any)
	require.Equal(t, false, imp["orderable"])
	reason := imp["reasons"].([]any)[0].(map[string]any)
	require.Equal(t, "TH-IMP-ECIG", reason["rule"])
	require.Contains(t, reason["source"], "Commerce Ministry notification 2014")
	all := itemsOf(t, th.Do("GET", "/v1/catalog/search?origin=MY", th.OperatorToken, nil))
	require.Len(t, all, 3)
	orderable := itemsOf(t, th.Do("GET", "/v1/catalog/search?origin=MY&orderable=true", th.OperatorToken, nil))
	require.Len(t, orderable, 2)
	for _, it := range orderable {
		require.NotEqual(t, vape, it["id"], "orderable=true must hide the banned listing")
	}

	// ID: RM 50 is under the minimum unit price; RM 600 is quoted in IDR.
	r = id.Do("GET", "/v1/catalog/listings/"+cheap+"/quote?quantity=1", id.OperatorToken, nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.Equal(t, false, r.JSON["orderable"])
	require.Equal(t, "ID-MIN-FOB", r.JSON["reasons"].([]any)[0].(map[string]any)["rule"])
	r = id.Do("GET", "/v1/catalog/listings/"+coffee+"/quote?quantity=1&region=ID-SU", id.OperatorToken, nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.Equal(t, true, r.JSON["orderable"])
	require.Equal(t, map[string]any{"amount": "2190000.00", "currency": "IDR"}, r.JSON["item_total"])
	duty := r.JSON["duties"].([]any)[0].(map[string]any)
	require.Equal(t, "ID-DUTY", duty["rule"])
	require.Equal(t, "0.075", duty["rate"])
	require.Equal(t, map[string]any{"amount": "164250.00", "currency": "IDR"}, duty["amount"])
	vat := r.JSON["taxes"].([]any)[0].(map[string]any)
	require.Equal(t, "ID-VAT", vat["rule"])
	require.Equal(t, map[string]any{"amount": "258967.50", "currency": "IDR"}, vat["amount"])
	require.Equal(t, map[string]any{"amount": "2613217.50", "currency": "IDR"}, r.JSON["landed_total"])
	require.Equal(t, "2026-11-01", r.JSON["rates_date"])
	r = id.Do("GET", "/v1/catalog/listings/"+coffee+"/quote?region=TH-90", id.OperatorToken, nil)
	require.Equal(t, http.StatusBadRequest, r.Status, "a delivery region outside the buyer's country")
	r = id.Do("GET", "/v1/catalog/listings/"+coffee+"/quote?quantity=0", id.OperatorToken, nil)
	require.Equal(t, http.StatusBadRequest, r.Status)

	// The ID agency changes its VAT rate, signs, installs: quotes change at
	// once, without a restart.
	_, raw := id.Policy()
	edited := strings.Replace(string(raw), "version: 1\n", "version: 2\n", 1)
	edited = strings.Replace(edited, `rate: "0.11"`, `rate: "0.12"`, 1)
	signed, err := policy.Sign([]byte(edited), "ID", governanceKey(t, id))
	require.NoError(t, err)
	r = id.Do("POST", "/v1/policy", id.OperatorToken, map[string]string{"policy": string(signed)})
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.EqualValues(t, 2, r.JSON["version"])
	r = id.Do("GET", "/v1/catalog/listings/"+coffee+"/quote", id.OperatorToken, nil)
	vat = r.JSON["taxes"].([]any)[0].(map[string]any)
	require.Equal(t, "0.12", vat["rate"])
	require.Equal(t, map[string]any{"amount": "282510.00", "currency": "IDR"}, vat["amount"])
	require.EqualValues(t, 2, r.JSON["policy_version"])

	// Refusals: the same version again, a tampered file, another country's.
	r = id.Do("POST", "/v1/policy", id.OperatorToken, map[string]string{"policy": string(signed)})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status)
	require.Contains(t, string(r.Body), "not newer")
	tampered := strings.Replace(string(signed), "version: 2\n", "version: 3\n", 1)
	r = id.Do("POST", "/v1/policy", id.OperatorToken, map[string]string{"policy": tampered})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status)
	require.Contains(t, string(r.Body), "changed after it was signed")
	r = id.Do("POST", "/v1/policy", th.OperatorToken, map[string]string{"policy": tampered})
	require.Equal(t, http.StatusUnauthorized, r.Status, "another node's operator token means nothing here")

	// The policy survives a restart.
	id.Restart()
	p, _ := id.Policy()
	require.EqualValues(t, 2, p.Version)
}

// TestExportRuleKeepsListingHome: a listing whose export the seller's
// country prohibits stays searchable at home, is not published, and the
// seller sees why; lifting the rule publishes it.
func TestExportRuleKeepsListingHome(t *testing.T) {
	fed := testnet.Federate(t, "TH", "MY")
	th, my := fed.Nodes["TH"], fed.Nodes["MY"]
	_, raw := th.Policy()
	withBan := strings.Replace(string(raw), "version: 1\n", "version: 2\n", 1)
	withBan = strings.Replace(withBan, "exports: []\n", `exports:
  - id: TH-EXP-ANTIQUES
    hs: ["9706"]
    action: prohibited
    message: "Antiques need a Fine Arts Department licence to leave Thailand"
    source: "Test fixture, not a default rule"
    confirmed: false
`, 1)
	signed, err := policy.Sign([]byte(withBan), "TH", governanceKey(t, th))
	require.NoError(t, err)
	_, err = th.InstallPolicy(context.Background(), signed)
	require.NoError(t, err)

	_, tok := th.ActiveSeller(testnet.THSeller("Ayutthaya Antiques Co., Ltd.", 4))
	r := th.Do("POST", "/v1/listings", tok, testnet.Listing("Antique bronze Buddha head", "9706", "90000.00"))
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	antique := r.JSON["id"].(string)
	exp := r.JSON["export"].(map[string]any)
	require.Equal(t, false, exp["published"])
	require.Equal(t, "TH-EXP-ANTIQUES", exp["reasons"].([]any)[0].(map[string]any)["rule"])
	r = th.Do("POST", "/v1/listings", tok, testnet.Listing("Teak carving", "4420", "900.00"))
	require.Equal(t, http.StatusCreated, r.Status)
	carving := r.JSON["id"].(string)
	require.Equal(t, true, r.JSON["export"].(map[string]any)["published"])

	testnet.Eventually(t, 10*time.Second, func() bool { _, ok := my.Catalog.Get(carving); return ok }, "the allowed listing did not reach MY")
	_, ok := my.Catalog.Get(antique)
	require.False(t, ok, "a listing held by export rules reached a peer")
	_, ok = th.Catalog.Get(antique)
	require.True(t, ok, "it stays searchable at home")

	// v3 lifts the ban: the listing is published without the seller doing anything.
	lifted := strings.Replace(string(raw), "version: 1\n", "version: 3\n", 1)
	signed, err = policy.Sign([]byte(lifted), "TH", governanceKey(t, th))
	require.NoError(t, err)
	_, err = th.InstallPolicy(context.Background(), signed)
	require.NoError(t, err)
	testnet.Eventually(t, 10*time.Second, func() bool { _, ok := my.Catalog.Get(antique); return ok }, "the listing was not published when the ban was lifted")
}

func TestPolicyCLIPathsOffline(t *testing.T) {
	th := testnet.InitNode(t, "TH")
	ctx := context.Background()
	raw, err := node.ShowPolicy(ctx, th.Dir)
	require.NoError(t, err)
	require.Contains(t, string(raw), "TH-IMP-ECIG")
	require.Contains(t, string(raw), "\nsignature:\n", "init installs the default policy, signed")

	file := filepath.Join(t.TempDir(), "policy-TH.yaml")
	v2 := strings.Replace(string(raw), "version: 1\n", "version: 2\n", 1)
	require.NoError(t, os.WriteFile(file, []byte(v2), 0o600))
	_, err = node.VerifyPolicyFile(th.Dir, file, []byte(v2))
	require.ErrorContains(t, err, "changed after it was signed")
	_, err = node.InstallPolicyFile(ctx, th.Dir, file, []byte(v2))
	require.ErrorIs(t, err, node.ErrPolicy)

	signed, err := policy.Sign([]byte(v2), "TH", governanceKey(t, th))
	require.NoError(t, err)
	_, err = node.VerifyPolicyFile(th.Dir, file, signed)
	require.NoError(t, err)
	res, err := node.InstallPolicyFile(ctx, th.Dir, file, signed)
	require.NoError(t, err)
	require.False(t, res.Running)
	require.EqualValues(t, 2, res.Policy.Version)
	_, err = node.InstallPolicyFile(ctx, th.Dir, file, signed)
	require.ErrorContains(t, err, "not newer")

	// Another agency's key does not verify.
	my := testnet.InitNode(t, "MY")
	foreign, err := policy.Sign([]byte(strings.Replace(v2, "version: 2\n", "version: 3\n", 1)), "TH", governanceKey(t, my))
	require.NoError(t, err)
	_, err = node.InstallPolicyFile(ctx, th.Dir, file, foreign)
	require.ErrorContains(t, err, "not TH's governance key")
}
