package main

// A process-level federation test: three operators onboard their nodes
// with the CLI alone, run them as separate processes on real loopback,
// and the federation survives kill -9 and a new manifest version.

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/internal/testnet"
)

// fedNode is one operator's node: its directory, API and running process.
type fedNode struct {
	cc, dir, url, token string
	p                   *proc
}

func (n *fedNode) start(t *testing.T) {
	t.Helper()
	n.p = startProc(t, "run", "--dir", n.dir)
	waitHealthy(t, n.p, n.url)
}

// get is a GET with the node's operator token; it fails the test if the
// node has exited (so a poll does not wait out its deadline for nothing).
func (n *fedNode) get(t *testing.T, path string) (int, map[string]any) {
	t.Helper()
	select {
	case <-n.p.exited:
		t.Fatalf("%s node exited: %v\n%s", n.cc, n.p.exitErr, n.p.stderr)
	default:
	}
	return apiDo(t, "GET", n.url+path, n.token, nil)
}

// searchTitles returns the titles a catalog search on the node finds.
func (n *fedNode) searchTitles(t *testing.T, query url.Values) []string {
	t.Helper()
	status, res := n.get(t, "/v1/catalog/search?"+query.Encode())
	require.Equal(t, http.StatusOK, status, "%s search %v: %v", n.cc, query, res)
	items, _ := res["items"].([]any)
	titles := []string{}
	for _, it := range items {
		titles = append(titles, it.(map[string]any)["title"].(string))
	}
	sort.Strings(titles)
	return titles
}

// connectedPeers returns the other members the node sees as connected.
func (n *fedNode) connectedPeers(t *testing.T) []string {
	t.Helper()
	status, res := n.get(t, "/v1/peers")
	require.Equal(t, http.StatusOK, status, "%s peers: %v", n.cc, res)
	items, _ := res["items"].([]any)
	var cs []string
	for _, it := range items {
		p := it.(map[string]any)
		if p["self"] != true && p["connected"] == true {
			cs = append(cs, p["country"].(string))
		}
	}
	sort.Strings(cs)
	return cs
}

// manifestVersion returns the version of the manifest the node has
// installed (0 if none).
func (n *fedNode) manifestVersion(t *testing.T) float64 {
	t.Helper()
	status, res := n.get(t, "/v1/federation/manifest")
	if status == http.StatusNotFound {
		return 0
	}
	require.Equal(t, http.StatusOK, status, "%s manifest: %v", n.cc, res)
	return res["summary"].(map[string]any)["version"].(float64)
}

// initCLINodes is steps 1-2 of the onboarding as operators do it: each
// country's node is initialised with the CLI, and its member descriptor
// printed by "imtgt-node member" is written to CC.member.json under root.
func initCLINodes(t *testing.T, root string, countries ...string) (map[string]*fedNode, []string) {
	t.Helper()
	bin := binary(t)
	nodes := map[string]*fedNode{}
	var memberFiles []string
	for _, cc := range countries {
		dir, httpAddr := initCLINode(t, root, cc)
		n := &fedNode{cc: cc, dir: dir, url: "http://" + httpAddr}
		n.token = operatorToken(t, n.dir)
		nodes[cc] = n

		// Only stdout is the descriptor: cliRun mixes in stderr.
		cmd := exec.Command(bin, "member", "--dir", n.dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		desc, err := cmd.Output()
		require.NoError(t, err, stderr.String())
		require.Contains(t, string(desc), `"`+cc+`"`)
		mf := filepath.Join(root, strings.ToLower(cc)+".member.json")
		require.NoError(t, os.WriteFile(mf, desc, 0o644))
		memberFiles = append(memberFiles, mf)
	}
	return nodes, memberFiles
}

func TestProcessFederationOnboardingAndCrashCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three node processes")
	}
	start := time.Now()
	root := t.TempDir()
	expires := time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)

	countries := []string{"TH", "MY", "ID"}
	// 1-2. Each operator initialises a node and prints its member descriptor.
	nodes, memberFiles := initCLINodes(t, root, countries...)
	th, my, id := nodes["TH"], nodes["MY"], nodes["ID"]

	// 3. One agency creates the manifest and the federation key.
	fedDir := filepath.Join(root, "fed")
	require.NoError(t, os.Mkdir(fedDir, 0o755))
	fed := filepath.Join(fedDir, "fed.yaml")
	pskPath := filepath.Join(fedDir, "swarm.key")
	createArgs := func(out string, extra ...string) []string {
		args := append([]string{"federation", "create", "--name", "imtgt", "--threshold", "2", "--expires", expires, "--out", out}, extra...)
		return append(args, memberFiles...)
	}
	out, err := cliRun(t, createArgs(fed)...)
	require.NoError(t, err, out)
	require.Contains(t, out, "version 1, 3 members, threshold 2")
	fi, err := os.Stat(pskPath)
	require.NoError(t, err, "create must write swarm.key beside the manifest")
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	psk, err := os.ReadFile(pskPath)
	require.NoError(t, err)

	// 4. Verify fails until K=2 agencies have signed.
	out, err = cliRun(t, "federation", "verify", fed)
	require.Error(t, err, "an unsigned manifest must not verify:\n%s", out)
	require.Contains(t, out, "0 valid signature(s) of 2 required")
	out, err = cliRun(t, "federation", "sign", "--dir", th.dir, fed)
	require.NoError(t, err, out)
	require.Contains(t, out, "1 of 2 required signatures are valid")
	out, err = cliRun(t, "federation", "verify", fed)
	require.Error(t, err, "one signature of two must not verify:\n%s", out)
	require.Contains(t, out, "1 valid signature(s) of 2 required")
	out, err = cliRun(t, "federation", "sign", "--dir", my.dir, fed)
	require.NoError(t, err, out)
	require.Contains(t, out, "2 of 2 required signatures are valid")
	out, err = cliRun(t, "federation", "verify", fed)
	require.NoError(t, err, out)
	require.Contains(t, out, "OK: 2 valid signature(s) of 2 required")
	fedRaw, err := os.ReadFile(fed)
	require.NoError(t, err)

	// 5. An unsigned copy is refused and changes nothing.
	unsignedDir := filepath.Join(root, "unsigned")
	require.NoError(t, os.Mkdir(unsignedDir, 0o755))
	unsigned := filepath.Join(unsignedDir, "fed.yaml")
	out, err = cliRun(t, createArgs(unsigned)...)
	require.NoError(t, err, out)
	installedPSK := filepath.Join(id.dir, "keys", "swarm.key")
	out, err = cliRun(t, "federation", "install", "--dir", id.dir, "--psk", filepath.Join(unsignedDir, "swarm.key"), unsigned)
	require.Error(t, err, "an unsigned manifest must be refused:\n%s", out)
	require.Contains(t, out, "manifest not installed")
	require.Contains(t, out, "0 valid signature(s) of 2 required")
	require.NoFileExists(t, installedPSK, "a refused install must not write the federation key")

	// Every agency installs the signed manifest while its node is stopped.
	for _, cc := range countries {
		out, err = cliRun(t, "federation", "install", "--dir", nodes[cc].dir, "--psk", pskPath, fed)
		require.NoError(t, err, out)
		require.Contains(t, out, "Installed federation imtgt version 1 (3 members): the node uses it when it starts")
	}
	// Refused again over an installed manifest: the installed key stays.
	out, err = cliRun(t, "federation", "install", "--dir", id.dir, "--psk", filepath.Join(unsignedDir, "swarm.key"), unsigned)
	require.Error(t, err, "an unsigned manifest must be refused:\n%s", out)
	require.Contains(t, out, "valid signature(s) of 2 required")
	got, err := os.ReadFile(installedPSK)
	require.NoError(t, err)
	require.Equal(t, psk, got, "a refused install must not replace the federation key")

	// 6. Three processes; each sees the other two connected.
	for _, cc := range countries {
		nodes[cc].start(t)
	}
	for _, cc := range countries {
		n := nodes[cc]
		var others []string
		for _, o := range countries {
			if o != cc {
				others = append(others, o)
			}
		}
		sort.Strings(others)
		testnet.Eventually(t, 20*time.Second, func() bool {
			return fmt.Sprint(n.connectedPeers(t)) == fmt.Sprint(others)
		}, cc+" does not see "+strings.Join(others, ", ")+" connected")
		testnet.Eventually(t, 5*time.Second, func() bool {
			status, _ := n.get(t, "/readyz")
			return status == http.StatusOK
		}, cc+" /readyz is not 200")
		// The signed manifest is the one installed, not the refused copy.
		status, res := n.get(t, "/v1/federation/manifest")
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, string(fedRaw), res["manifest"], cc)
		require.Equal(t, []any{"MY", "TH"}, res["summary"].(map[string]any)["signers"], cc)
	}
	t.Logf("onboarded and connected after %s", time.Since(start).Round(time.Millisecond))

	// 7. A Thai listing is searchable on MY and ID.
	status, reg := apiDo(t, "POST", th.url+"/v1/sellers", "", testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	require.Equal(t, http.StatusCreated, status, reg)
	sid, stok := reg["id"].(string), reg["token"].(string)
	status, res := apiDo(t, "POST", th.url+"/v1/sellers/"+sid+"/approve", th.token, nil)
	require.Equal(t, http.StatusOK, status, res)
	titles := []string{"ข้าวหอมมะลิ 5 กก."}
	status, res = apiDo(t, "POST", th.url+"/v1/listings", stok, testnet.Listing(titles[0], "100630", "265.00"))
	require.Equal(t, http.StatusCreated, status, res)
	for _, n := range []*fedNode{my, id} {
		testnet.Eventually(t, 20*time.Second, func() bool {
			return fmt.Sprint(n.searchTitles(t, url.Values{"q": {"หอมมะลิ"}})) == fmt.Sprint(titles)
		}, n.cc+" does not find the Thai listing")
	}
	t.Logf("replicated after %s", time.Since(start).Round(time.Millisecond))

	// 8. kill -9 MY; TH lists five more; MY catches up after a restart.
	require.NoError(t, my.p.cmd.Process.Signal(syscall.SIGKILL))
	waitExit(t, my.p)
	for i := 1; i <= 5; i++ {
		title := fmt.Sprintf("ทุเรียนหมอนทอง lot %d", i)
		status, res = apiDo(t, "POST", th.url+"/v1/listings", stok, testnet.Listing(title, "081060", "120.00"))
		require.Equal(t, http.StatusCreated, status, res)
		titles = append(titles, title)
	}
	sort.Strings(titles)
	my.start(t)
	for _, n := range []*fedNode{my, id} {
		var last []string
		testnet.Eventually(t, 20*time.Second, func() bool {
			last = n.searchTitles(t, url.Values{"origin": {"TH"}})
			return fmt.Sprint(last) == fmt.Sprint(titles)
		}, n.cc+" does not hold all six TH listings")
	}
	t.Logf("MY caught up after %s", time.Since(start).Round(time.Millisecond))

	// 9. Version 2, same members and key, installed on running TH only,
	// spreads to MY and ID.
	v2Dir := filepath.Join(root, "fed-v2")
	require.NoError(t, os.Mkdir(v2Dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(v2Dir, "swarm.key"), psk, 0o600))
	fed2 := filepath.Join(v2Dir, "fed.yaml")
	out, err = cliRun(t, createArgs(fed2, "--version", "2")...)
	require.NoError(t, err, out)
	require.Contains(t, out, "version 2, 3 members")
	require.NotContains(t, out, "Wrote the federation key", "create --version 2 must keep the existing key")
	got, err = os.ReadFile(filepath.Join(v2Dir, "swarm.key"))
	require.NoError(t, err)
	require.Equal(t, psk, got)
	for _, n := range []*fedNode{th, my} {
		out, err = cliRun(t, "federation", "sign", "--dir", n.dir, fed2)
		require.NoError(t, err, out)
	}
	out, err = cliRun(t, "federation", "verify", fed2)
	require.NoError(t, err, out)
	out, err = cliRun(t, "federation", "install", "--dir", th.dir, "--psk", filepath.Join(v2Dir, "swarm.key"), fed2)
	require.NoError(t, err, out)
	require.Contains(t, out, "Installed federation imtgt version 2 (3 members): the running node applied it")
	require.Equal(t, float64(2), th.manifestVersion(t))
	for _, n := range []*fedNode{my, id} {
		testnet.Eventually(t, 20*time.Second, func() bool { return n.manifestVersion(t) == 2 },
			n.cc+" did not receive manifest version 2")
	}
	t.Logf("manifest v2 spread after %s", time.Since(start).Round(time.Millisecond))

	// 10. Graceful stop: SIGTERM, exit 0.
	for _, cc := range countries {
		require.NoError(t, nodes[cc].p.cmd.Process.Signal(syscall.SIGTERM))
	}
	for _, cc := range countries {
		p := nodes[cc].p
		require.NoError(t, waitExit(t, p), "%s:\n%s", cc, p.stderr)
		require.Contains(t, p.stderr.String(), "node stopped", cc)
	}
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}
