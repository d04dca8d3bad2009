package main

// Helpers of the replicated-node process tests (replica_process_test.go):
// a TH node run as two replicas on one PostgreSQL database, federated with
// a MY node on bbolt.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/internal/pgtest"
	"github.com/imtgt/imtgt-node/internal/testnet"
)

// replica is one replica of the TH node: its own copy of the node
// directory, run with its own HTTP and p2p addresses.
type replica struct {
	*fedNode
	name     string // "A" or "B", for messages
	httpAddr string
	p2pAddr  string
}

func (r *replica) start(t *testing.T) {
	t.Helper()
	r.p = startProc(t, "run", "--dir", r.dir, "--http-addr", r.httpAddr, "--p2p-addr", r.p2pAddr)
	waitHealthy(t, r.p, r.url)
}

func (r *replica) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, r.p.cmd.Process.Signal(syscall.SIGKILL))
	waitExit(t, r.p)
}

// running says whether the replica's process has not exited.
func (r *replica) running() bool {
	select {
	case <-r.p.exited:
		return false
	default:
		return true
	}
}

// ready is the replica's GET /readyz: its status and body; status 0 when
// the request failed.
func (r *replica) ready() (int, map[string]any, string) {
	resp, err := quickClient.Get(r.url + "/readyz")
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m, string(b)
}

// role is what the replica's /readyz says it is ("" when it does not answer).
func (r *replica) role() string {
	_, m, _ := r.ready()
	s, _ := m["role"].(string)
	return s
}

// leaderGauge is the replica's imtgt_replica_leader metric ("" if absent).
func (r *replica) leaderGauge(t *testing.T) string {
	t.Helper()
	req, err := http.NewRequest("GET", r.url+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := quickClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && (f[0] == "imtgt_replica_leader" || strings.HasPrefix(f[0], "imtgt_replica_leader{")) {
			return f[1]
		}
	}
	return ""
}

// replicaFed is TH as two replicas on PostgreSQL and MY on bbolt,
// federated, with a TH seller and a MY marketplace.
type replicaFed struct {
	pg     *pgtest.Cluster
	th     [2]*replica
	my     *fedNode
	seller string // TH seller's token
	shop   string // MY marketplace's token
}

// quickClient is for requests from goroutines and for requests that must
// not hang: a replica whose database is down must answer, not stall.
var quickClient = &http.Client{Timeout: 15 * time.Second}

// newReplicaFed initialises TH with the CLI on a fresh database of its
// own PostgreSQL server (one init, both replicas' p2p addresses), and MY
// on bbolt; federates them as operators do (member descriptors, a
// manifest signed by both, installed on both sides); copies TH's
// directory for the second replica; starts the three processes and waits
// until one replica leads and MY is connected to it.
func newReplicaFed(t *testing.T) *replicaFed {
	t.Helper()
	f := &replicaFed{pg: pgtest.StartCluster(t)}
	storeURL := f.pg.CreateDB(t)
	root := t.TempDir()

	thDir := filepath.Join(root, "th-a")
	for i, name := range []string{"A", "B"} {
		addr := freePort(t)
		f.th[i] = &replica{fedNode: &fedNode{cc: "TH", url: "http://" + addr}, name: name, httpAddr: addr, p2pAddr: testnet.FreeP2PAddr(t)}
	}
	out, err := cliRun(t, "init", "--country", "TH", "--dir", thDir, "--http-addr", f.th[0].httpAddr,
		"--p2p-addr", f.th[0].p2pAddr, "--p2p-addr", f.th[1].p2pAddr, "--store-url", storeURL)
	require.NoError(t, err, out)
	cfg, err := os.ReadFile(filepath.Join(thDir, "config.yaml"))
	require.NoError(t, err)
	require.Contains(t, string(cfg), storeURL, "config.yaml names the store URL")
	require.NoFileExists(t, filepath.Join(thDir, "data", "node.db"), "a PostgreSQL node has no bbolt file")

	myDir, myAddr := initCLINode(t, root, "MY")
	f.my = &fedNode{cc: "MY", dir: myDir, url: "http://" + myAddr, token: operatorToken(t, myDir)}

	var memberFiles []string
	for cc, dir := range map[string]string{"TH": thDir, "MY": myDir} {
		desc := memberDescriptor(t, dir)
		require.Contains(t, string(desc), `"`+cc+`"`)
		if cc == "TH" {
			for _, r := range f.th {
				require.Contains(t, string(desc), r.p2pAddr, "TH's descriptor lists every replica's address")
			}
		}
		mf := filepath.Join(root, strings.ToLower(cc)+".member.json")
		require.NoError(t, os.WriteFile(mf, desc, 0o644))
		memberFiles = append(memberFiles, mf)
	}
	slices.Sort(memberFiles)
	fedDir := filepath.Join(root, "fed")
	require.NoError(t, os.Mkdir(fedDir, 0o755))
	fed := filepath.Join(fedDir, "fed.yaml")
	expires := time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	out, err = cliRun(t, append([]string{"federation", "create", "--name", "imtgt", "--threshold", "2", "--expires", expires, "--out", fed}, memberFiles...)...)
	require.NoError(t, err, out)
	for _, dir := range []string{thDir, myDir} {
		out, err = cliRun(t, "federation", "sign", "--dir", dir, fed)
		require.NoError(t, err, out)
	}
	for _, dir := range []string{thDir, myDir} {
		out, err = cliRun(t, "federation", "install", "--dir", dir, "--psk", filepath.Join(fedDir, "swarm.key"), fed)
		require.NoError(t, err, out)
	}

	// The second replica runs from a copy of the node directory.
	f.th[0].dir = thDir
	f.th[1].dir = filepath.Join(root, "th-b")
	copyDir(t, thDir, f.th[1].dir)
	// The federation key reaches the second replica through the store
	// (sealed with the data key), not by copying keys/swarm.key.
	require.NoError(t, os.Remove(filepath.Join(f.th[1].dir, "keys", "swarm.key")))
	for _, r := range f.th {
		r.token = operatorToken(t, r.dir)
	}

	for _, r := range f.th {
		r.start(t)
	}
	f.my.start(t)
	f.leader(t, 20*time.Second)
	f.waitMYConnected(t, 20*time.Second)

	_, f.seller = activeSeller(t, f.th[0].url, f.th[0].token, testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	status, res := apiDo(t, "POST", f.my.url+"/v1/marketplaces", f.my.token, map[string]string{"name": "MY shop"})
	require.Equal(t, http.StatusCreated, status, res)
	f.shop = res["token"].(string)
	return f
}

// memberDescriptor is the node's member descriptor, as "imtgt-node
// member" prints it on standard output.
func memberDescriptor(t *testing.T, dir string) []byte {
	t.Helper()
	cmd := exec.Command(binary(t), "member", "--dir", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	desc, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	return desc
}

// leader waits until exactly one running replica says it leads and
// returns it and the other.
func (f *replicaFed) leader(t *testing.T, within time.Duration) (leader, other *replica) {
	t.Helper()
	var roles [2]string
	testnet.Eventually(t, within, func() bool {
		for i, r := range f.th {
			roles[i] = ""
			if r.running() {
				roles[i] = r.role()
			}
		}
		return (roles[0] == "leader") != (roles[1] == "leader")
	}, fmt.Sprintf("not exactly one TH replica leads (roles %q)", roles))
	if roles[0] == "leader" {
		return f.th[0], f.th[1]
	}
	return f.th[1], f.th[0]
}

// waitMYConnected waits until MY sees TH connected.
func (f *replicaFed) waitMYConnected(t *testing.T, within time.Duration) {
	t.Helper()
	testnet.Eventually(t, within, func() bool { return slices.Contains(f.my.connectedPeers(t), "TH") },
		"MY does not see TH connected")
}

// listing creates a listing of the TH seller on replica r with a large
// stock and returns its ID.
func (f *replicaFed) listing(t *testing.T, r *replica, title string) string {
	t.Helper()
	body := testnet.Listing(title, "081060", "120.00")
	body["quantity"] = 1_000_000
	status, res := apiDo(t, "POST", r.url+"/v1/listings", f.seller, body)
	require.Equal(t, http.StatusCreated, status, "replica %s: %v", r.name, res)
	return res["id"].(string)
}

// waitOnMY waits until MY's catalog holds listing id.
func (f *replicaFed) waitOnMY(t *testing.T, id string, within time.Duration) {
	t.Helper()
	testnet.Eventually(t, within, func() bool {
		status, _ := f.my.get(t, "/v1/catalog/listings/"+id)
		return status == http.StatusOK
	}, "listing "+id+" did not reach MY")
}

// outboxLen is the number of messages waiting in the node's outbox.
func outboxLen(t *testing.T, n *fedNode) int {
	t.Helper()
	status, res := n.get(t, "/v1/outbox")
	require.Equal(t, http.StatusOK, status, "%s outbox: %v", n.cc, res)
	items, _ := res["items"].([]any)
	return len(items)
}

// doJSON is one request with an optional Idempotency-Key, usable from any
// goroutine; err is a transport error.
func doJSON(method, url, token, key string, body any) (int, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := quickClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m, nil
}

// placeOrder places one order on MY as a marketplace does: with an
// Idempotency-Key, retried with the same key on network errors and 5xx
// until it is placed or within has passed. It returns the order's ID.
func placeOrder(my *fedNode, shop, key, listing string, within time.Duration) (string, error) {
	deadline := time.Now().Add(within)
	for {
		status, res, err := doJSON("POST", my.url+"/v1/orders", shop, key, ordBody(listing, 1))
		switch {
		case err == nil && status == http.StatusCreated:
			id, _ := res["id"].(string)
			return id, nil
		case err == nil && status < 500:
			return "", fmt.Errorf("order %s: %d %v", key, status, res)
		case time.Now().After(deadline):
			return "", fmt.Errorf("order %s still failing after %s: %d %v %v", key, within, status, res, err)
		}
		time.Sleep(50 * time.Millisecond) // retry back-off, not synchronisation
	}
}

// copyDir copies the node directory src to dst (files and modes).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(to, info.Mode().Perm())
		}
		if !info.Mode().IsRegular() {
			return nil // sockets, locks: not part of a node directory's copy
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, info.Mode().Perm())
	}))
}
