package policy_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/imtgt/imtgt-node/configs"
	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/policy"
)

// fixture is one file of testdata/: decisions of a default policy.
type fixture struct {
	Policy string `yaml:"policy"`
	Cases  []struct {
		Name    string `yaml:"name"`
		Rule    string `yaml:"rule"`
		Listing struct {
			Origin string            `yaml:"origin"`
			HS     string            `yaml:"hs"`
			Price  map[string]string `yaml:"price"`
		} `yaml:"listing"`
		Quantity int64 `yaml:"quantity"`
		Want     struct {
			Orderable   bool                `yaml:"orderable"`
			Reasons     []string            `yaml:"reasons"`
			Permits     []string            `yaml:"permits"`
			ItemTotal   string              `yaml:"item_total"`
			Duties      []map[string]string `yaml:"duties"`
			Taxes       []map[string]string `yaml:"taxes"`
			Notes       []string            `yaml:"notes"`
			LandedTotal string              `yaml:"landed_total"`
		} `yaml:"want"`
	} `yaml:"cases"`
	Transfers []struct {
		Rule        string   `yaml:"rule"`
		Record      string   `yaml:"record"`
		Purpose     string   `yaml:"purpose"`
		Destination string   `yaml:"destination"`
		Basis       string   `yaml:"basis"`
		Fields      []string `yaml:"fields"`
		Refused     bool     `yaml:"refused"`
	} `yaml:"transfers"`
	Retention []struct {
		Rule          string `yaml:"rule"`
		Record        string `yaml:"record"`
		Days          int    `yaml:"days"`
		Confirmed     bool   `yaml:"confirmed"`
		KeepInCountry bool   `yaml:"keep_in_country"`
	} `yaml:"retention"`
}

func defaultPolicy(t testing.TB, country string) *policy.Policy {
	t.Helper()
	raw, err := configs.DefaultPolicy(country)
	require.NoError(t, err)
	p, err := policy.Parse("policy-"+country+".yaml", raw)
	require.NoError(t, err)
	return p
}

var inForce = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

func ruleIDs[T any](xs []T, id func(T) string) []string {
	out := []string{}
	for _, x := range xs {
		out = append(out, id(x))
	}
	return out
}

// TestDefaultPolicyDecisions runs testdata/<country>.yaml against the
// default policies, and checks that every rule of each default policy has
// at least one case.
func TestDefaultPolicyDecisions(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	require.NoError(t, err)
	require.Len(t, files, 3)
	for _, file := range files {
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		var fx fixture
		dec := yaml.NewDecoder(bytesReader(data))
		dec.KnownFields(true)
		require.NoError(t, dec.Decode(&fx), file)
		p := defaultPolicy(t, fx.Policy)
		covered := map[string]bool{}
		t.Run(fx.Policy, func(t *testing.T) {
			for _, c := range fx.Cases {
				covered[c.Rule] = true
				t.Run(c.Name, func(t *testing.T) {
					price, err := money.Parse(c.Listing.Price["amount"], c.Listing.Price["currency"])
					require.NoError(t, err)
					l := policy.Listing{Origin: c.Listing.Origin, HSCode: c.Listing.HS, UnitPrice: price}
					d := policy.Evaluate(p, l, inForce)
					require.Equal(t, c.Want.Orderable, d.Orderable)
					if c.Want.Reasons != nil {
						require.Equal(t, c.Want.Reasons, ruleIDs(d.Reasons, func(r policy.Reason) string { return r.Rule }))
						for _, r := range d.Reasons {
							require.NotEmpty(t, r.Source, "every reason cites its source")
							require.NotEmpty(t, r.Message)
						}
					}
					if c.Want.Permits != nil {
						require.Equal(t, c.Want.Permits, ruleIDs(d.Permits, func(r policy.Permit) string { return r.Rule }))
					}
					if !d.Orderable {
						return
					}
					qty := max(c.Quantity, 1)
					q, err := policy.MakeQuote(p, l, qty, "", inForce)
					require.NoError(t, err)
					require.Equal(t, p.Currency, q.LandedTotal.Currency, "quotes are in the buyer's currency")
					if c.Want.ItemTotal != "" {
						require.Equal(t, c.Want.ItemTotal, q.ItemTotal.Decimal())
					}
					lineIDs := func(ls []policy.Line) []map[string]string {
						out := []map[string]string{}
						for _, l := range ls {
							out = append(out, map[string]string{"rule": l.Rule, "amount": l.Amount.Decimal()})
						}
						return out
					}
					if c.Want.Duties != nil {
						require.Equal(t, c.Want.Duties, lineIDs(q.Duties))
					}
					if c.Want.Taxes != nil {
						require.Equal(t, c.Want.Taxes, lineIDs(q.Taxes))
					}
					if c.Want.Notes != nil {
						require.Equal(t, c.Want.Notes, ruleIDs(q.Notes, func(r policy.Reason) string { return r.Rule }))
					}
					if c.Want.LandedTotal != "" {
						require.Equal(t, c.Want.LandedTotal, q.LandedTotal.Decimal())
					}
				})
			}
			for _, tr := range fx.Transfers {
				covered[tr.Rule] = true
				got, err := p.Transfer(tr.Record, tr.Destination, policy.Purpose(tr.Purpose))
				if tr.Refused {
					require.ErrorIs(t, err, policy.ErrNoRule)
					continue
				}
				require.NoError(t, err, tr.Rule)
				require.Equal(t, tr.Basis, got.LegalBasis, tr.Rule)
				require.Equal(t, tr.Fields, got.Fields, tr.Rule)
				require.Equal(t, []string{tr.Rule}, got.Rules)
			}
			for _, r := range fx.Retention {
				covered[r.Rule] = true
				got, ok := p.RetentionFor(r.Record)
				require.True(t, ok, r.Rule)
				require.Equal(t, r.Rule, got.ID)
				require.Equal(t, r.Days, got.Days)
				require.Equal(t, r.Confirmed, got.IsConfirmed(), r.Rule)
				require.Equal(t, r.KeepInCountry, got.KeepInCountry, r.Rule)
			}
			for _, id := range allRuleIDs(p) {
				require.True(t, covered[id], "rule %s of the default %s policy has no case in %s", id, fx.Policy, file)
			}
		})
	}
}

func allRuleIDs(p *policy.Policy) []string {
	var ids []string
	for _, r := range p.Transfers {
		ids = append(ids, r.ID)
	}
	for _, r := range p.Retention {
		ids = append(ids, r.ID)
	}
	for _, r := range p.Imports.Rules {
		ids = append(ids, r.ID)
	}
	if p.Imports.Duty.ID != "" {
		ids = append(ids, p.Imports.Duty.ID)
	}
	for _, r := range p.Imports.Taxes {
		ids = append(ids, r.ID)
	}
	if p.Imports.MinUnitPrice != nil {
		ids = append(ids, p.Imports.MinUnitPrice.ID)
	}
	for _, r := range p.Exports {
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	return ids
}
