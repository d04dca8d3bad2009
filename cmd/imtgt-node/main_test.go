package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
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

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"init", "--dir", "x"}, exitUsage, "--country is required"},
		{[]string{"init", "--country", "TH"}, exitUsage, "--dir is required"},
		{[]string{"init", "--bogus"}, exitUsage, "unknown flag"},
		{[]string{"run"}, exitUsage, "--dir is required"},
		{[]string{"backup", "--dir", "x"}, exitUsage, "--out is required"},
		{[]string{"restore", "--dir", "x"}, exitUsage, "--from is required"},
		{[]string{"version", "extra"}, exitUsage, "takes no arguments"},
		{[]string{"init", "--country", "SG", "--dir", "x"}, exitError, `"SG" is not a member country`},
		{[]string{"run", "--dir", "/nonexistent/imtgt"}, exitError, "read config"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, stderr := runCLI(tt.args...)
			require.Equal(t, tt.code, code, stderr)
			require.Contains(t, stderr, tt.want)
		})
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI("version")
	require.Equal(t, exitOK, code)
	require.True(t, strings.HasPrefix(out, "imtgt-node "))
}
