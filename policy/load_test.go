package policy_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/configs"
	"github.com/imtgt/imtgt-node/policy"
)

func thFile(t testing.TB) string {
	t.Helper()
	raw, err := configs.DefaultPolicy("TH")
	require.NoError(t, err)
	return string(raw)
}

// replace swaps one exact piece of the TH default policy, failing the test
// if it is not there (so a fixture cannot silently stop testing anything).
func replace(t *testing.T, s, old, new string) string {
	t.Helper()
	require.Contains(t, s, old)
	return strings.Replace(s, old, new, 1)
}

func lineOf(s, needle string) int {
	i := strings.Index(s, needle)
	return strings.Count(s[:i], "\n") + 1
}

func TestParseRefusesBadPolicies(t *testing.T) {
	th := thFile(t)
	tests := []struct {
		name, yaml, want string
		lineOf           string // the error must name the line of this text
	}{
		{"unknown key", replace(t, th, "currency: THB\n", "currency: THB\ncolour: red\n"), "field colour not found", "colour: red"},
		{"unknown nested key", replace(t, th, "      action: prohibited\n", "      action: prohibited\n      severity: high\n"), "field severity not found", "severity: high"},
		{"missing source", replace(t, th, `      source: "Commerce Ministry notification 2014 (sherrings.com; 2firsts.com; vaporvoice.net)"`+"\n", ""), "needs a source", "id: TH-IMP-ECIG"},
		{"HS prefix that does not exist", replace(t, th, `hs: ["854340", "240412"]`, `hs: ["854399", "240412"]`), `HS prefix "854399" does not exist`, `hs: ["854399"`},
		{"negative rate", replace(t, th, `rate: "0.07"`, `rate: "-0.07"`), "negative", `rate: "-0.07"`},
		{"rate as a percentage", replace(t, th, `rate: "0.07"`, `rate: "70"`), "more than 10", `rate: "70"`},
		{"currency without a rate", replace(t, th, `min_value: {amount: "1.00", currency: THB}`, `min_value: {amount: "1.00", currency: EUR}`), "EUR", "min_value"},
		{"member currency without a rate", replace(t, th, "    IDR: \"0.0021\"\n", ""), "IDR", "  rates:"},
		{"contradictory rules", replace(t, th, "  duty:\n", "    - id: TH-IMP-ECIG-DUTY\n      hs: [\"854340\"]\n      action: duty_rate\n      rate: \"0.3\"\n      source: x\n  duty:\n"), "contradicts rule TH-IMP-ECIG", "hs: [\"854340\"]\n      action: duty"},
		{"a ban narrowed by a specific rule", replace(t, th, "  duty:\n", "    - id: TH-IMP-ECIG-PERMIT\n      hs: [\"8543\"]\n      action: prohibited\n      source: x\n    - id: TH-IMP-X\n      hs: [\"854370\"]\n      action: permit_required\n      permit: p\n      source: x\n  duty:\n"), "narrows prohibition", ""},
		{"transfer of a sensitive field", replace(t, replace(t, th, "fields: [name, phone,", "fields: [name, email, phone,"), "    email: personal\n    phone: personal", "    email: sensitive\n    phone: personal"), "sensitive fields never leave", "fields: [name, email"},
		{"personal field on a not_personal rule", replace(t, th, "    seller.legal_name: public\n", "    seller.legal_name: personal\n"), "not_personal may carry public fields only", ""},
		{"unclassified field", replace(t, th, "    owner.national_id: sensitive\n", ""), `field "owner.national_id" of seller has no class`, "  seller:"},
		{"duplicate rule id", replace(t, th, "id: TH-RET-ORDER\n", "id: TH-RET-BUYER\n"), "used twice", ""},
		{"rule id of another country", replace(t, th, "id: TH-IMP-ECIG", "id: MY-IMP-ECIG"), "must start with", ""},
		{"same transfer on two legal bases", replace(t, th, "  - id: TH-TR-ORDER\n", "  - id: TH-TR-ORDER-BUYER-2\n    purpose: order_handoff\n    record: buyer\n    destinations: [\"*\"]\n    fields: [name]\n    legal_basis: consent\n    source: x\n  - id: TH-TR-ORDER\n"), "another legal basis", "legal_basis: consent"},
		{"wrong currency", replace(t, th, "currency: THB\nregions", "currency: MYR\nregions"), "currency must be THB", ""},
		{"expires before effective", replace(t, th, "expires: 2027-12-31T23:59:59Z", "expires: 2025-12-31T23:59:59Z"), "expires must be after effective", ""},
		{"two documents", th + "\n---\nformat: x\n", "more than one YAML document", ""},
		{"empty", "", "empty", ""},
		{"not a mapping", "- 1\n", "cannot unmarshal", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.Parse("policy-TH.yaml", []byte(tt.yaml))
			require.ErrorIs(t, err, policy.ErrInvalid)
			require.ErrorContains(t, err, "policy-TH.yaml")
			if tt.want != "" {
				require.ErrorContains(t, err, tt.want)
			}
			if tt.lineOf != "" {
				require.ErrorContains(t, err, "policy-TH.yaml:"+strconv.Itoa(lineOf(tt.yaml, tt.lineOf))+":")
			}
		})
	}
}

func TestSignVerify(t *testing.T) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	signed, err := policy.Sign([]byte(thFile(t)), "TH", key)
	require.NoError(t, err)
	p, err := policy.Parse("p", signed)
	require.NoError(t, err)
	require.NoError(t, policy.Verify(signed, p, pub))

	// Signing again replaces the signature, not appends one.
	again, err := policy.Sign(signed, "TH", key)
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(string(again), "\nsignature:"))

	tampered := []struct{ name, old, new string }{
		{"a rate", `rate: "0.07"`, `rate: "0.01"`},
		{"a comment", "# Default TH", "# Modified TH"},
		{"the version", "version: 1\n", "version: 2\n"},
	}
	for _, tt := range tampered {
		t.Run(tt.name, func(t *testing.T) {
			b := []byte(strings.Replace(string(signed), tt.old, tt.new, 1))
			p, err := policy.Parse("p", b)
			require.NoError(t, err)
			err = policy.Verify(b, p, pub)
			require.ErrorIs(t, err, policy.ErrSignature)
			require.ErrorContains(t, err, "changed after it was signed")
		})
	}
	// Bytes after the signature block are not signed: they are refused.
	trailer := append(append([]byte{}, signed...), []byte("exports:\n  - id: TH-X\n")...)
	require.ErrorContains(t, policy.Verify(trailer, p, pub), "after its signature block")

	other, _, _ := ed25519.GenerateKey(rand.Reader)
	require.ErrorContains(t, policy.Verify(signed, p, other), "not TH's governance key")
	unsigned, _ := policy.Parse("p", []byte(thFile(t)))
	require.ErrorContains(t, policy.Verify([]byte(thFile(t)), unsigned, pub), "not signed")
}

func FuzzParse(f *testing.F) {
	raw, _ := configs.DefaultPolicy("ID")
	f.Add(string(raw))
	f.Add("format: imtgt-policy/1\ncountry: TH\n")
	f.Add("imports: {rules: [{hs: [\"0\"]}]}")
	f.Add("consumer:\n")
	f.Add("consumer: {escalation: , respond_within_hours: 1}\n")
	f.Fuzz(func(t *testing.T, data string) {
		p, err := policy.Parse("fuzz.yaml", []byte(data))
		if err != nil {
			if !errors.Is(err, policy.ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		// A policy that loads can be evaluated without panicking.
		_ = policy.Evaluate(p, policy.Listing{Origin: "MY", HSCode: "090111"}, p.Effective)
	})
}
