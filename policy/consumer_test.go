package policy_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/configs"
	"github.com/imtgt/imtgt-node/policy"
)

// thConsumer is the consumer section of the TH default policy, as it is in
// the file (the tests edit it in place).
func thConsumer(t *testing.T) (file, section string) {
	t.Helper()
	th := thFile(t)
	i := strings.Index(th, "\nconsumer:\n")
	require.GreaterOrEqual(t, i, 0, "the TH default policy has a consumer section")
	return th, th[i+1:]
}

func TestConsumerSectionRefusedWhenBad(t *testing.T) {
	th, sec := thConsumer(t)
	without := strings.Replace(th, sec, "", 1)
	edit := func(old, new string) string { return replace(t, th, old, new) }
	tests := []struct {
		name, yaml, want string
		lineOf           string // the error must name the line of this text
	}{
		{"unknown field", edit("  resolve_within_days: 30\n", "  resolve_within_days: 30\n  reply_within: 3\n"), "field reply_within not found", "reply_within: 3"},
		{"unknown escalation field", edit("    id: TH-ESC-OCPB\n", "    id: TH-ESC-OCPB\n    phone: \"1166\"\n"), "field phone not found", "phone: \"1166\""},
		{"respond_within_hours 0", edit("respond_within_hours: 72", "respond_within_hours: 0"), "consumer.respond_within_hours: respond_within_hours is required and must be between 1 and 720 hours, not 0", "respond_within_hours: 0"},
		{"respond_within_hours missing", edit("  respond_within_hours: 72\n", ""), "consumer.respond_within_hours: respond_within_hours is required", "consumer:"},
		{"respond_within_hours too long", edit("respond_within_hours: 72", "respond_within_hours: 721"), "between 1 and 720 hours, not 721", "respond_within_hours: 721"},
		{"respond_within_hours negative", edit("respond_within_hours: 72", "respond_within_hours: -1"), "not -1", "respond_within_hours: -1"},
		{"respond_within_hours not a number", edit("respond_within_hours: 72", "respond_within_hours: 3 days"), "cannot unmarshal", "respond_within_hours: 3 days"},
		{"resolve_within_days 0", edit("resolve_within_days: 30", "resolve_within_days: 0"), "consumer.resolve_within_days: resolve_within_days is required and must be between 1 and 365 days, not 0", "resolve_within_days: 0"},
		{"resolve_within_days too long", edit("resolve_within_days: 30", "resolve_within_days: 366"), "between 1 and 365 days, not 366", "resolve_within_days: 366"},
		{"no source", edit(`  source: "Operator's default, not law: no deadline`, `  note: "Operator's default, not law: no deadline`), "field note not found", "note: \"Operator"},
		{"empty source", strings.Replace(th, sec, replace(t, sec, `  source: "Operator's default, not law: no deadline`, `  source: "" # "Operator's default, not law: no deadline`), 1), "consumer.source: every rule needs a source", `source: "" # "Operator`},
		{"no id", edit("  id: TH-CONSUMER\n", ""), `consumer.id: rule id "" must look like TH-RULE-NAME`, "consumer:"},
		{"id of another country", edit("id: TH-CONSUMER", "id: MY-CONSUMER"), `consumer.id: rule id "MY-CONSUMER" must start with the policy's country TH-`, "id: MY-CONSUMER"},
		{"id used by another rule", edit("id: TH-CONSUMER", "id: TH-RET-BUYER"), `rule id "TH-RET-BUYER" is used twice`, "id: TH-RET-BUYER\n  respond"},
		{"no escalation", strings.Replace(th, sec, sec[:strings.Index(sec, "  escalation:\n")], 1), "consumer.escalation: escalation (the consumer protection agency or ODR provider: id, name, url, source) is required", "consumer:"},
		{"empty escalation", strings.Replace(th, sec, sec[:strings.Index(sec, "  escalation:\n")]+"  escalation: {}\n", 1), `consumer.escalation.id: escalation id "" must look like TH-BODY-NAME`, "escalation: {}"},
		{"escalation id of another country", edit("id: TH-ESC-OCPB", "id: ID-ESC-OCPB"), `consumer.escalation.id: escalation id "ID-ESC-OCPB" must start with the policy's country TH-`, "id: ID-ESC-OCPB"},
		{"escalation id used twice", edit("id: TH-ESC-OCPB", "id: TH-CONSUMER"), `consumer.escalation.id: escalation id "TH-CONSUMER" is used twice`, "    id: TH-CONSUMER"},
		{"escalation without a name", edit(`    name: "Office of the Consumer Protection Board (OCPB, สคบ.)"`, `    name: " "`), "consumer.escalation.name: name (the body's official name) is required", `name: " "`},
		{"escalation url over http", edit(`url: "https://complaint.ocpb.go.th/"`, `url: "http://complaint.ocpb.go.th/"`), `consumer.escalation.url: url "http://complaint.ocpb.go.th/" must be an https URL`, `url: "http://`},
		{"escalation url without a host", edit(`url: "https://complaint.ocpb.go.th/"`, `url: "https:///complaint"`), "must be an https URL with a host", `url: "https:///`},
		{"escalation url missing", edit("    url: \"https://complaint.ocpb.go.th/\"\n", ""), `consumer.escalation.url: url "" must be an https URL`, "  escalation:"},
		{"escalation url with credentials", edit(`url: "https://complaint.ocpb.go.th/"`, `url: "https://user:pw@complaint.ocpb.go.th/"`), "must be an https URL", `url: "https://user`},
		{"escalation without a source", edit(`    source: "Consumer Protection Act B.E. 2522; OCPB`, `    source: "" # Consumer Protection Act B.E. 2522; OCPB`), "consumer.escalation.source: source (where the body and its channel are named) is required", `source: "" # Consumer`},
		{"section with no content", without + "consumer:\n", "consumer: the consumer section is empty", "consumer:"},
		{"section not a mapping", without + "consumer: [72, 30]\n", "cannot unmarshal", "consumer: [72"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.Parse("policy-TH.yaml", []byte(tt.yaml))
			require.ErrorIs(t, err, policy.ErrInvalid)
			require.ErrorContains(t, err, tt.want)
			require.ErrorContains(t, err, "policy-TH.yaml:"+strconv.Itoa(lineOf(tt.yaml, tt.lineOf))+":")
		})
	}
}

func TestConsumerSectionAccepted(t *testing.T) {
	th, sec := thConsumer(t)
	tests := []struct {
		name               string
		yaml               string
		respondH, resolveD int
		escalationID, url  string
	}{
		{"as in the default", th, 72, 30, "TH-ESC-OCPB", "https://complaint.ocpb.go.th/"},
		{"the lowest bounds", replace(t, replace(t, th, "respond_within_hours: 72", "respond_within_hours: 1"), "resolve_within_days: 30", "resolve_within_days: 1"), 1, 1, "TH-ESC-OCPB", "https://complaint.ocpb.go.th/"},
		{"the highest bounds", replace(t, replace(t, th, "respond_within_hours: 72", "respond_within_hours: 720"), "resolve_within_days: 30", "resolve_within_days: 365"), 720, 365, "TH-ESC-OCPB", "https://complaint.ocpb.go.th/"},
		{"an ODR provider with a path", replace(t, th, `url: "https://complaint.ocpb.go.th/"`, `url: "https://ocpbmediate.ocpb.go.th/complaint?lang=EN"`), 72, 30, "TH-ESC-OCPB", "https://ocpbmediate.ocpb.go.th/complaint?lang=EN"},
		// The section may stand anywhere in the file, not only at the end.
		{"the section before others", replace(t, strings.Replace(th, sec, "", 1), "field_classes:\n", sec+"field_classes:\n"), 72, 30, "TH-ESC-OCPB", "https://complaint.ocpb.go.th/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := policy.Parse("policy-TH.yaml", []byte(tt.yaml))
			require.NoError(t, err)
			c, ok := p.Consumer()
			require.True(t, ok)
			require.Equal(t, "TH-CONSUMER", c.ID)
			require.Equal(t, tt.respondH, c.RespondWithinHours)
			require.Equal(t, tt.resolveD, c.ResolveWithinDays)
			require.Equal(t, time.Duration(tt.respondH)*time.Hour, c.RespondWithin())
			require.Equal(t, time.Duration(tt.resolveD)*24*time.Hour, c.ResolveWithin())
			require.Equal(t, tt.escalationID, c.Escalation.ID)
			require.Equal(t, tt.url, c.Escalation.URL)
			require.False(t, c.IsConfirmed(), "the default's figures are operator defaults, marked unconfirmed")
		})
	}
}

// An older policy, written before the section existed, still loads, and
// callers get the built-in defaults.
func TestConsumerSectionOptional(t *testing.T) {
	th, sec := thConsumer(t)
	p, err := policy.Parse("policy-TH.yaml", []byte(strings.Replace(th, sec, "", 1)))
	require.NoError(t, err)
	c, ok := p.Consumer()
	require.False(t, ok)
	require.Equal(t, policy.DefaultConsumerRules(), c)
	require.Equal(t, 72*time.Hour, c.RespondWithin())
	require.Equal(t, 30*24*time.Hour, c.ResolveWithin())
	require.Empty(t, c.Escalation.ID, "no escalation body is made up")
	require.Contains(t, c.Source, "not law")
	require.False(t, c.IsConfirmed())

	var nilPolicy *policy.Policy
	c, ok = nilPolicy.Consumer()
	require.False(t, ok)
	require.Equal(t, policy.DefaultConsumerRules(), c)
}

// Every default policy carries the section, with sourced figures within
// bounds, an https escalation body of its own country, and the figures
// marked unconfirmed (no law sets them).
func TestDefaultPoliciesCarryConsumerSection(t *testing.T) {
	want := map[string]struct {
		respondH, resolveD int
		escalation, host   string
	}{
		"TH": {72, 30, "TH-ESC-OCPB", "complaint.ocpb.go.th"},
		"MY": {72, 30, "MY-ESC-TTPM", "ttpm.kpdn.gov.my"},
		"ID": {168, 21, "ID-ESC-PKTN", "simpktn.kemendag.go.id"},
	}
	for country, w := range want {
		t.Run(country, func(t *testing.T) {
			raw, err := configs.DefaultPolicy(country)
			require.NoError(t, err)
			p, err := policy.Parse("policy-"+country+".yaml", raw)
			require.NoError(t, err)
			c, ok := p.Consumer()
			require.True(t, ok)
			require.Equal(t, country+"-CONSUMER", c.ID)
			require.Equal(t, w.respondH, c.RespondWithinHours)
			require.Equal(t, w.resolveD, c.ResolveWithinDays)
			require.Contains(t, c.Source, "Operator's default, not law")
			require.False(t, c.IsConfirmed())
			require.Equal(t, w.escalation, c.Escalation.ID)
			require.Equal(t, "https://"+w.host+"/", c.Escalation.URL)
			require.NotEmpty(t, strings.TrimSpace(c.Escalation.Name))
			require.NotEmpty(t, strings.TrimSpace(c.Escalation.Source))
		})
	}
}
