package policy_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/aftersale"
	"github.com/imtgt/imtgt-node/configs"
	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/policy"
)

func issuePolicy(t *testing.T, country string) (*policy.Policy, string) {
	t.Helper()
	raw, err := configs.DefaultPolicy(country)
	require.NoError(t, err)
	p, err := policy.Parse("policy-"+country+".yaml", raw)
	require.NoError(t, err)
	return p, string(raw)
}

func sampleIssue() *aftersale.Issue {
	at := time.Date(2026, 12, 4, 5, 0, 0, 0, time.UTC)
	return &aftersale.Issue{ID: "iss_01KBMR0000000000000000000A", OrderID: "ord_1", MarketplaceID: "mkt_1", BuyerCountry: "MY",
		SellerCountry: "TH", SellerID: "sel_1", Category: aftersale.Damaged, Description: "Torn bag; my phone is 012-3456789",
		Items: []aftersale.ItemQty{{ListingID: "lst_1", Quantity: 1}}, RemedyRequested: aftersale.RemedyRefund, Status: aftersale.StatusOpen,
		RespondBy: at.Add(72 * time.Hour), ResolveBy: at.AddDate(0, 0, 30), Responses: []aftersale.Response{}, Refunds: []aftersale.Refund{},
		History: []aftersale.Event{{Status: aftersale.StatusOpen, At: at, By: aftersale.ByMarketplace}}, CreatedAt: at, UpdatedAt: at}
}

// Each default policy lets an issue cross to the other members under its
// rule, with what crossed named as the audit log names fields.
func TestProjectIssueDefaults(t *testing.T) {
	for _, c := range []struct{ country, dest, basis string }{{"MY", "TH", "contract_necessity"}, {"TH", "ID", "contract_necessity"}, {"ID", "MY", "consent"}} {
		t.Run(c.country, func(t *testing.T) {
			p, _ := issuePolicy(t, c.country)
			e := &policy.IssueEvent{OrderID: "ord_1", Seq: 4, Event: "open", Actor: "marketplace", At: time.UnixMilli(1_800_000_000_000), Issue: sampleIssue(), Consent: true}
			msg, tr, err := p.Project(e, c.dest, policy.PurposeIssue)
			require.NoError(t, err)
			m := msg.(*pb.IssueMessage)
			require.Equal(t, "iss_01KBMR0000000000000000000A", m.IssueId)
			require.EqualValues(t, 4, m.Seq)
			var got aftersale.Issue
			require.NoError(t, json.Unmarshal(m.Issue, &got))
			require.Equal(t, sampleIssue().Description, got.Description)
			require.Equal(t, c.basis, tr.LegalBasis)
			require.Equal(t, []string{c.country + "-TR-ISSUE"}, tr.Rules)
			require.Contains(t, tr.Fields, "issue.description")
			require.NotContains(t, tr.Fields, "issue.refunds", "no refund yet: none crossed")
			for _, f := range tr.Fields {
				require.True(t, strings.HasPrefix(f, "issue."), f)
			}
		})
	}
}

// A rule that keeps a field back keeps it back; a basis of consent needs the
// order's consent; a purpose or record the policy has no rule for does not
// cross.
func TestProjectIssueRules(t *testing.T) {
	_, raw := issuePolicy(t, "MY")
	narrowed := regexp.MustCompile(`(?s)(id: MY-TR-ISSUE.*?fields: )\[[^\]]*\]`).ReplaceAllString(raw, "${1}[id, order_id, category, items, remedy_requested, status, deadlines]")
	require.NotEqual(t, raw, narrowed)
	p, err := policy.Parse("policy-MY.yaml", []byte(narrowed))
	require.NoError(t, err)
	msg, tr, err := p.Project(&policy.IssueEvent{OrderID: "ord_1", Seq: 1, Event: "open", Issue: sampleIssue()}, "TH", policy.PurposeIssue)
	require.NoError(t, err)
	var got aftersale.Issue
	require.NoError(t, json.Unmarshal(msg.(*pb.IssueMessage).Issue, &got))
	require.Empty(t, got.Description, "the description stays home")
	require.Empty(t, got.History)
	require.Equal(t, aftersale.Damaged, got.Category)
	require.NotContains(t, tr.Fields, "issue.description")

	// The seller's response needs the field responses.
	_, _, err = p.Project(&policy.IssueEvent{OrderID: "ord_1", Seq: 1, Event: "respond", Input: &aftersale.ResponseInput{Action: aftersale.ActionReject, Reason: "no"}}, "TH", policy.PurposeIssue)
	require.ErrorIs(t, err, policy.ErrNoRule)

	id, _ := issuePolicy(t, "ID")
	_, _, err = id.Project(&policy.IssueEvent{OrderID: "ord_1", Seq: 1, Event: "open", Issue: sampleIssue()}, "MY", policy.PurposeIssue)
	require.ErrorIs(t, err, policy.ErrNoConsent)

	my, _ := issuePolicy(t, "MY")
	_, _, err = my.Project(&policy.IssueEvent{OrderID: "ord_1", Issue: sampleIssue()}, "TH", policy.PurposeOrderStatus)
	require.ErrorIs(t, err, policy.ErrNoRule, "an issue goes for the purpose issue only")
}

// A policy written before issues existed still loads (no issue may cross
// under it); one that rules on issues must classify their fields.
func TestIssueKindOptional(t *testing.T) {
	_, raw := issuePolicy(t, "TH")
	classes := regexp.MustCompile(`(?s)\n  issue:\n(    [a-z_]+: [a-z]+\n)+`)
	rule := regexp.MustCompile(`(?s)\n  - id: TH-TR-ISSUE\n.*?\n    source: "[^"]*"`)
	withoutBoth := rule.ReplaceAllString(classes.ReplaceAllString(raw, "\n"), "")
	require.NotContains(t, withoutBoth, "TH-TR-ISSUE")
	p, err := policy.Parse("old.yaml", []byte(withoutBoth))
	require.NoError(t, err, "an older policy without issues loads")
	_, _, err = p.Project(&policy.IssueEvent{OrderID: "ord_1", Issue: sampleIssue()}, "MY", policy.PurposeIssue)
	require.ErrorIs(t, err, policy.ErrNoRule)

	_, err = policy.Parse("bad.yaml", []byte(classes.ReplaceAllString(raw, "\n")))
	require.ErrorContains(t, err, `record "issue" has no field_classes`)

	partial := strings.Replace(raw, "\n    description: personal\n    items: public\n    remedy_requested", "\n    items: public\n    remedy_requested", 1)
	require.NotEqual(t, raw, partial)
	_, err = policy.Parse("partial.yaml", []byte(partial))
	require.ErrorContains(t, err, `field "description" of issue has no class`)
}
