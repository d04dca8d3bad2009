package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestProcessPolicyConsumerSection drives the built binary through the
// policy's consumer section (issue 13): a new node's default policy carries
// it, a bad one is refused by sign naming the field and line, an edited one
// is signed and installed, and an older policy without it still installs.
func TestProcessPolicyConsumerSection(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir, _ := initCLINode(t, t.TempDir(), "TH")
	shownB, err := exec.Command(binary(t), "policy", "show", "--dir", dir).Output()
	require.NoError(t, err)
	shown := string(shownB)
	require.Contains(t, shown, "\nconsumer:\n  id: TH-CONSUMER\n  respond_within_hours: 72\n  resolve_within_days: 30\n")
	require.Contains(t, shown, `url: "https://complaint.ocpb.go.th/"`)

	// Drop the signature block: each case is signed anew.
	body := shown[:strings.Index(shown, "\nsignature:\n")+1]
	write := func(name, text string) string {
		file := filepath.Join(t.TempDir(), name)
		require.NoError(t, os.WriteFile(file, []byte(text), 0o600))
		return file
	}
	v2 := strings.Replace(body, "version: 1\n", "version: 2\n", 1)

	bad := []struct{ name, old, new, want string }{
		{"response deadline out of range", "respond_within_hours: 72", "respond_within_hours: 0", "consumer.respond_within_hours: respond_within_hours is required and must be between 1 and 720 hours, not 0"},
		{"resolution deadline out of range", "resolve_within_days: 30", "resolve_within_days: 400", "consumer.resolve_within_days: resolve_within_days is required and must be between 1 and 365 days, not 400"},
		{"escalation over http", `url: "https://complaint.ocpb.go.th/"`, `url: "http://complaint.ocpb.go.th/"`, "consumer.escalation.url: url \"http://complaint.ocpb.go.th/\" must be an https URL"},
		{"unknown field", "  resolve_within_days: 30\n", "  resolve_within_days: 30\n  reply_within: 3\n", "field reply_within not found"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			require.Contains(t, v2, tt.old)
			text := strings.Replace(v2, tt.old, tt.new, 1)
			file := write("policy-TH.yaml", text)
			out, err := cliRun(t, "policy", "sign", "--dir", dir, file)
			require.Error(t, err, "a bad consumer section must not be signed")
			require.Contains(t, out, tt.want)
			require.Contains(t, out, "policy-TH.yaml:")
			after, err := os.ReadFile(file)
			require.NoError(t, err)
			require.Equal(t, text, string(after), "a refused file is left as it was")
		})
	}

	// An edited section signs, verifies and installs (node stopped).
	file := write("policy-TH.yaml", strings.Replace(v2, "respond_within_hours: 72", "respond_within_hours: 48", 1))
	out, err := cliRun(t, "policy", "sign", "--dir", dir, file)
	require.NoError(t, err, out)
	out, err = cliRun(t, "policy", "install", "--dir", dir, file)
	require.NoError(t, err, out)
	require.Contains(t, out, "Installed TH policy version 2")
	shownB, err = exec.Command(binary(t), "policy", "show", "--dir", dir).Output()
	require.NoError(t, err)
	require.Contains(t, string(shownB), "respond_within_hours: 48")

	// A policy written before the section existed still installs.
	sec := body[strings.Index(body, "# After-sale issues"):]
	older := strings.Replace(strings.Replace(body, sec, "", 1), "version: 1\n", "version: 3\n", 1)
	require.NotContains(t, older, "consumer:")
	file = write("policy-TH.yaml", older)
	out, err = cliRun(t, "policy", "sign", "--dir", dir, file)
	require.NoError(t, err, out)
	out, err = cliRun(t, "policy", "install", "--dir", dir, file)
	require.NoError(t, err, out)
	require.Contains(t, out, "Installed TH policy version 3")
}
