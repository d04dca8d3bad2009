package main

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/internal/testnet"
)

// heldPolicy returns the version and SHA-256 of country's policy as n's
// GET /v1/federation/policies lists it (0, "" if absent).
func heldPolicy(t *testing.T, n *fedNode, country string) (float64, string) {
	t.Helper()
	status, res := n.get(t, "/v1/federation/policies")
	require.Equal(t, http.StatusOK, status, "%s policies: %v", n.cc, res)
	for _, it := range res["items"].([]any) {
		m := it.(map[string]any)
		if m["country"] == country {
			return m["version"].(float64), m["sha256"].(string)
		}
	}
	return 0, ""
}

func shownPolicySum(t *testing.T, n *fedNode) string {
	t.Helper()
	shown, err := exec.Command(binary(t), "policy", "show", "--dir", n.dir).Output()
	require.NoError(t, err)
	sum := sha256.Sum256(shown)
	return hex.EncodeToString(sum[:])
}

// TestProcessPeerPoliciesSpread: two nodes federated with the CLI hold
// each other's signed policy file byte for byte; a new version MY's
// operator signs and installs reaches TH's running node, and TH still
// holds it after a restart.
func TestProcessPeerPoliciesSpread(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	th, my := onboardPair(t)
	for _, c := range []struct{ holder, of *fedNode }{{th, my}, {my, th}} {
		want := shownPolicySum(t, c.of)
		testnet.Eventually(t, 20*time.Second, func() bool { v, sum := heldPolicy(t, c.holder, c.of.cc); return v == 1 && sum == want },
			c.holder.cc+" does not hold "+c.of.cc+"'s policy")
	}

	shown, err := exec.Command(binary(t), "policy", "show", "--dir", my.dir).Output()
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "policy-MY.yaml")
	require.NoError(t, os.WriteFile(file, []byte(strings.Replace(string(shown), "version: 1\n", "version: 2\n", 1)), 0o600))
	out, err := cliRun(t, "policy", "sign", "--dir", my.dir, file)
	require.NoError(t, err, out)
	out, err = cliRun(t, "policy", "install", "--dir", my.dir, file)
	require.NoError(t, err, out)
	want := shownPolicySum(t, my)
	testnet.Eventually(t, 20*time.Second, func() bool { v, sum := heldPolicy(t, th, "MY"); return v == 2 && sum == want },
		"MY's version 2 did not reach TH")

	require.NoError(t, th.p.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, waitExit(t, th.p))
	th.start(t)
	v, sum := heldPolicy(t, th, "MY")
	require.EqualValues(t, 2, v, "kept across a restart")
	require.Equal(t, want, sum)
}
