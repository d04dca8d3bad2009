package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/httpapi"
	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/policy"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestEveryCommandHasHelpWithExample(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			return
		}
		if c.Runnable() {
			require.NotEmpty(t, c.Example, "%s has no example", c.CommandPath())
			require.NotEmpty(t, c.Short, "%s has no short help", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd(&bytes.Buffer{}, &bytes.Buffer{}))
}

// cliErrorCase is a command line that fails, its exit code and what its
// standard error must contain.
type cliErrorCase struct {
	args []string
	code int
	want string
}

func checkCLIErrors(t *testing.T, tests []cliErrorCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, stderr := runCLI(tt.args...)
			require.Equal(t, tt.code, code, stderr)
			require.Contains(t, stderr, tt.want)
		})
	}
}

func TestUsageErrors(t *testing.T) {
	checkCLIErrors(t, []cliErrorCase{
		{[]string{"init", "--dir", "x"}, exitUsage, "--country is required"},
		{[]string{"init", "--country", "TH"}, exitUsage, "--dir is required"},
		{[]string{"init", "--bogus"}, exitUsage, "unknown flag"},
		{[]string{"run"}, exitUsage, "--dir is required"},
		{[]string{"backup", "--dir", "x"}, exitUsage, "--out is required"},
		{[]string{"restore", "--dir", "x"}, exitUsage, "--from is required"},
		{[]string{"version", "extra"}, exitUsage, "takes no arguments"},
		{[]string{"init", "--country", "SG", "--dir", "x"}, exitError, `"SG" is not a member country`},
		{[]string{"run", "--dir", "/nonexistent/imtgt"}, exitError, "read config"},
	})
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI("version")
	require.Equal(t, exitOK, code)
	require.True(t, strings.HasPrefix(out, "imtgt-node "))
}

func TestPrintExplanation(t *testing.T) {
	q := &httpapi.QuoteView{ListingID: "lst_1", Quantity: 1, Region: "ID-SU", Orderable: true, PolicyVersion: 1,
		UnitPrice: money.Wire{Amount: "2190000.00", Currency: "IDR"}, ItemTotal: money.Wire{Amount: "2190000.00", Currency: "IDR"},
		Duties:      []httpapi.LineView{{Rule: "ID-DUTY", Name: "import duty", Rate: "0.075", Base: money.Wire{Amount: "2190000.00", Currency: "IDR"}, Amount: money.Wire{Amount: "164250.00", Currency: "IDR"}}},
		Taxes:       []httpapi.LineView{{Rule: "ID-VAT", Name: "VAT", Rate: "0.11", Base: money.Wire{Amount: "2354250.00", Currency: "IDR"}, Amount: money.Wire{Amount: "258967.50", Currency: "IDR"}}},
		LandedTotal: money.Wire{Amount: "2613217.50", Currency: "IDR"}, RatesDate: "2026-11-01", RatesSource: "sample",
		Listing: &httpapi.ListingQuoteRef{Origin: "MY", Title: "Kopi hamper", HSCode: "210112", Price: money.Wire{Amount: "600.00", Currency: "MYR"}}}
	var b bytes.Buffer
	printExplanation(&b, q)
	for _, want := range []string{"MAY order", "ID-DUTY", "164250.00 IDR", "ID-VAT", "landed total", "2613217.50 IDR", "to ID-SU"} {
		require.Contains(t, b.String(), want)
	}
	q.Orderable, q.Reasons = false, []policy.Reason{{Rule: "ID-MIN-FOB", Source: "Permendag 31/2023", Message: "below USD 100", Confirmed: false}}
	b.Reset()
	printExplanation(&b, q)
	require.Contains(t, b.String(), "may NOT order")
	require.Contains(t, b.String(), "rule ID-MIN-FOB: below USD 100 [unconfirmed")
	require.Contains(t, b.String(), "source: Permendag 31/2023")
}
