package main

// A process-level test of issue 11, part 2: a member is removed from the
// federation, and the evidence the remaining nodes hold, countersigned by
// it while it was a member, still verifies offline.

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/internal/testnet"
)

// exportBundle exports the node's whole evidence bundle with the CLI
// (through its running API) and returns the file and the bundle read.
func exportBundle(t *testing.T, n *fedNode, name string) (string, *audit.Bundle) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	out, err := cliRun(t, "audit", "export", "--dir", n.dir, "--out", path)
	require.NoError(t, err, out)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	b, err := audit.ReadBundle(bytes.NewReader(data))
	require.NoError(t, err)
	return path, b
}

// witnessedBy reports whether a checkpoint of the bundle carries a
// countersignature by country's node.
func witnessedBy(b *audit.Bundle, country string) bool {
	return slices.ContainsFunc(b.Checkpoints, func(c audit.Checkpoint) bool {
		return slices.ContainsFunc(c.Witnesses, func(w audit.Witness) bool { return w.Node == country })
	})
}

// TestProcessMembershipRemovalKeepsEvidence: TH, MY and ID federate
// (manifest v1, then v2 spread by TH); ID countersigns TH's and MY's
// checkpoints; manifest v3 removes ID, installed on TH and spread to MY.
// `audit export` and `audit verify` of TH's and MY's bundles then pass:
// ID's countersignatures are checked against the manifests in force when
// it made them. On a binary whose bundles carry only the installed
// manifest, verify failed with "witness ... (ID) is not a member".
func TestProcessMembershipRemovalKeepsEvidence(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three node processes")
	}
	start := time.Now()
	root := t.TempDir()
	expires := time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	countries := []string{"TH", "MY", "ID"}
	nodes, memberFiles := initCLINodes(t, root, countries...) // member files in countries' order
	th, my, id := nodes["TH"], nodes["MY"], nodes["ID"]

	fedDir := filepath.Join(root, "fed")
	require.NoError(t, os.Mkdir(fedDir, 0o755))
	pskPath := filepath.Join(fedDir, "swarm.key")
	// manifest writes version v of the members, signed by TH and MY, in a
	// directory of its own holding the federation key.
	manifest := func(v int, members ...string) string {
		t.Helper()
		dir := fedDir
		if v > 1 {
			dir = filepath.Join(root, fmt.Sprintf("fed-v%d", v))
			require.NoError(t, os.Mkdir(dir, 0o755))
			psk, err := os.ReadFile(pskPath)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "swarm.key"), psk, 0o600))
		}
		path := filepath.Join(dir, "fed.yaml")
		args := []string{"federation", "create", "--name", "imtgt", "--threshold", "2", "--expires", expires,
			"--version", fmt.Sprint(v), "--out", path}
		out, err := cliRun(t, append(args, members...)...)
		require.NoError(t, err, out)
		for _, n := range []*fedNode{th, my} {
			out, err = cliRun(t, "federation", "sign", "--dir", n.dir, path)
			require.NoError(t, err, out)
		}
		return path
	}

	// Version 1, installed on the stopped nodes; then they run.
	v1 := manifest(1, memberFiles...)
	for _, n := range []*fedNode{th, my, id} {
		out, err := cliRun(t, "federation", "install", "--dir", n.dir, "--psk", pskPath, v1)
		require.NoError(t, err, out)
	}
	for _, n := range []*fedNode{th, my, id} {
		n.start(t)
	}
	for _, n := range []*fedNode{th, my, id} {
		testnet.Eventually(t, 20*time.Second, func() bool { return len(n.connectedPeers(t)) == 2 },
			n.cc+" does not see the other two connected")
	}

	// Version 2, same members, installed on running TH: MY and ID get it
	// from TH (a peer's offer), so both install paths are in the history.
	v2 := manifest(2, memberFiles...)
	out, err := cliRun(t, "federation", "install", "--dir", th.dir, "--psk", pskPath, v2)
	require.NoError(t, err, out)
	for _, n := range []*fedNode{my, id} {
		testnet.Eventually(t, 20*time.Second, func() bool { return n.manifestVersion(t) == 2 },
			n.cc+" did not receive manifest version 2")
	}

	// Traffic: a Thai listing reaches MY and ID, so every chain grows and
	// each node's checkpoints are countersigned by the others, ID included.
	_, stok := activeSeller(t, th.url, th.token, testnet.THSeller("Hat Yai Rubber Products Co., Ltd.", 0))
	status, res := apiDo(t, "POST", th.url+"/v1/listings", stok, testnet.Listing("หมอนยางพาราแท้ natural latex pillow", "940490", "4000.00"))
	require.Equal(t, http.StatusCreated, status, res)
	listing := res["id"].(string)
	for _, n := range []*fedNode{my, id} {
		testnet.Eventually(t, 20*time.Second, func() bool {
			status, _ := n.get(t, "/v1/catalog/listings/"+listing)
			return status == http.StatusOK
		}, "the listing did not reach "+n.cc)
	}
	// ID keeps the last checkpoint it countersigned of each peer's chain;
	// the peer stores the countersignature a moment later.
	testnet.Eventually(t, 30*time.Second, func() bool {
		status, res := id.get(t, "/v1/audit/witnessed")
		require.Equal(t, http.StatusOK, status, res)
		var of []string
		for _, it := range res["items"].([]any) {
			of = append(of, it.(map[string]any)["node"].(string))
		}
		return slices.Contains(of, "TH") && slices.Contains(of, "MY")
	}, "ID did not countersign TH's and MY's checkpoints")
	for _, n := range []*fedNode{th, my} {
		testnet.Eventually(t, 10*time.Second, func() bool {
			_, b := exportBundle(t, n, "probe.jsonl")
			return witnessedBy(b, "ID")
		}, n.cc+"'s bundle holds no countersignature by ID")
	}
	t.Logf("ID countersigned TH's and MY's checkpoints after %s", time.Since(start).Round(time.Millisecond))

	// Version 3 removes ID: installed on running TH, spread to MY.
	v3 := manifest(3, memberFiles[0], memberFiles[1])
	out, err = cliRun(t, "federation", "install", "--dir", th.dir, "--psk", pskPath, v3)
	require.NoError(t, err, out)
	require.Contains(t, out, "version 3 (2 members)")
	testnet.Eventually(t, 20*time.Second, func() bool { return my.manifestVersion(t) == 3 },
		"MY did not receive manifest version 3")
	testnet.Eventually(t, 20*time.Second, func() bool {
		return fmt.Sprint(th.connectedPeers(t)) == "[MY]" && fmt.Sprint(my.connectedPeers(t)) == "[TH]"
	}, "TH and MY still connected to ID")
	t.Logf("manifest v3 installed after %s", time.Since(start).Round(time.Millisecond))

	// TH's and MY's evidence verifies offline, ID's countersignatures
	// included.
	for _, n := range []*fedNode{th, my} {
		path, b := exportBundle(t, n, n.cc+".jsonl")
		require.Equal(t, audit.BundleFormat, b.Header.Format)
		var versions []uint64
		for _, d := range b.Header.Manifests {
			versions = append(versions, d.Version)
		}
		require.Equal(t, []uint64{1, 2, 3}, versions, "%s's bundle carries every manifest version", n.cc)
		require.True(t, witnessedBy(b, "ID"), "%s's bundle keeps ID's countersignatures", n.cc)
		out, err := cliRun(t, "audit", "verify", path)
		require.NoError(t, err, "%s's bundle must verify after ID's removal:\n%s", n.cc, out)
		require.Contains(t, out, "manifest version 3")
		require.Contains(t, out, "Manifests:    version 1, 2, 3")
	}
	t.Logf("TH's and MY's bundles verified after %s", time.Since(start).Round(time.Millisecond))

	for _, n := range []*fedNode{th, my, id} {
		require.NoError(t, n.p.cmd.Process.Signal(syscall.SIGTERM))
	}
	for _, n := range []*fedNode{th, my, id} {
		require.NoError(t, waitExit(t, n.p), "%s:\n%s", n.cc, n.p.stderr)
	}
}
