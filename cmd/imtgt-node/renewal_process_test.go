package main

// Process-level tests of issue 11 §5 (second half): a manifest renewal
// prepared after expiry spreads from the one node it is installed on, and
// "federation create" refuses an expiry in the past.

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/internal/testnet"
)

func TestProcessFederationCreateRefusesPastExpiry(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	root := t.TempDir()
	_, memberFiles := initCLINodes(t, root, "TH")
	out := filepath.Join(root, "fed", "fed.yaml")
	require.NoError(t, os.Mkdir(filepath.Dir(out), 0o755))
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	res, err := cliRun(t, append([]string{"federation", "create", "--name", "imtgt", "--threshold", "1", "--expires", past, "--out", out}, memberFiles...)...)
	require.Error(t, err, res)
	require.Contains(t, res, "--expires "+past+" is in the past")
	require.NoFileExists(t, out, "a refused create writes nothing")
	require.NoFileExists(t, filepath.Join(filepath.Dir(out), "swarm.key"), "a refused create writes no key")

	// A near future is allowed (a short-lived manifest, as in the test below).
	soon := time.Now().Add(5 * time.Second).UTC().Format(time.RFC3339)
	res, err = cliRun(t, append([]string{"federation", "create", "--name", "imtgt", "--threshold", "1", "--expires", soon, "--out", out}, memberFiles...)...)
	require.NoError(t, err, res)
	require.FileExists(t, out)
}

// TestProcessRenewalAfterExpiry: three processes run a manifest that
// expires; each one's /readyz says so. A renewal is then created, signed by
// the expired manifest's quorum and installed on the running TH node only.
// MY and ID, whose manifest expired, receive it from TH, and a listing
// published afterwards reaches both.
func TestProcessRenewalAfterExpiry(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three node processes")
	}
	start := time.Now()
	root := t.TempDir()
	countries := []string{"TH", "MY", "ID"}
	nodes, memberFiles := initCLINodes(t, root, countries...)
	th, my, id := nodes["TH"], nodes["MY"], nodes["ID"]
	create := func(dir string, expires time.Time, extra ...string) string {
		t.Helper()
		fed := filepath.Join(dir, "fed.yaml")
		args := append([]string{"federation", "create", "--name", "imtgt", "--threshold", "2",
			"--expires", expires.UTC().Format(time.RFC3339), "--out", fed}, extra...)
		out, err := cliRun(t, append(args, memberFiles...)...)
		require.NoError(t, err, out)
		for _, n := range []*fedNode{th, my} {
			out, err := cliRun(t, "federation", "sign", "--dir", n.dir, fed)
			require.NoError(t, err, out)
		}
		return fed
	}

	// Version 1 expires a few seconds after the nodes start.
	v1Dir := filepath.Join(root, "fed-v1")
	require.NoError(t, os.Mkdir(v1Dir, 0o755))
	expires := time.Now().Add(12 * time.Second).Truncate(time.Second)
	fed1 := create(v1Dir, expires)
	pskPath := filepath.Join(v1Dir, "swarm.key")
	for _, cc := range countries {
		out, err := cliRun(t, "federation", "install", "--dir", nodes[cc].dir, "--psk", pskPath, fed1)
		require.NoError(t, err, out)
	}
	for _, cc := range countries {
		nodes[cc].start(t)
	}
	t.Logf("started after %s; v1 expires in %s", time.Since(start).Round(time.Millisecond), time.Until(expires).Round(time.Millisecond))

	// Every node fails closed and says why.
	for _, cc := range countries {
		n := nodes[cc]
		testnet.Eventually(t, 30*time.Second, func() bool {
			status, res := n.get(t, "/readyz")
			return status == http.StatusServiceUnavailable && strings.Contains(fmt.Sprint(res), "expired")
		}, cc+" /readyz does not say the manifest expired")
	}
	t.Logf("all expired after %s", time.Since(start).Round(time.Millisecond))

	// The renewal, prepared after expiry: same members and key, signed by
	// TH and MY (the quorum of the expired version 1), installed on TH only.
	v2Dir := filepath.Join(root, "fed-v2")
	require.NoError(t, os.Mkdir(v2Dir, 0o755))
	psk, err := os.ReadFile(pskPath)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(v2Dir, "swarm.key"), psk, 0o600))
	fed2 := create(v2Dir, time.Now().Add(30*24*time.Hour), "--version", "2")
	out, err := cliRun(t, "federation", "install", "--dir", th.dir, "--psk", filepath.Join(v2Dir, "swarm.key"), fed2)
	require.NoError(t, err, out)
	require.Contains(t, out, "Installed federation imtgt version 2 (3 members): the running node applied it")

	for _, n := range []*fedNode{my, id} {
		testnet.Eventually(t, 30*time.Second, func() bool { return n.manifestVersion(t) == 2 },
			n.cc+" did not receive the renewal from TH")
	}
	for _, cc := range countries {
		n := nodes[cc]
		testnet.Eventually(t, 10*time.Second, func() bool {
			status, _ := n.get(t, "/readyz")
			return status == http.StatusOK
		}, cc+" /readyz is not 200 after the renewal")
	}
	t.Logf("renewal spread after %s", time.Since(start).Round(time.Millisecond))

	// Federation works again: a Thai listing reaches MY and ID.
	_, stok := activeSeller(t, th.url, th.token, testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	title := "ข้าวหอมมะลิ หลังต่ออายุ"
	status, res := apiDo(t, "POST", th.url+"/v1/listings", stok, testnet.Listing(title, "100630", "265.00"))
	require.Equal(t, http.StatusCreated, status, res)
	for _, n := range []*fedNode{my, id} {
		testnet.Eventually(t, 30*time.Second, func() bool {
			return fmt.Sprint(n.searchTitles(t, url.Values{"origin": {"TH"}})) == fmt.Sprint([]string{title})
		}, n.cc+" does not find the listing published after the renewal")
	}
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}
