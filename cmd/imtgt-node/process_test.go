package main

// Process-level tests: they build the real binary and drive it as an
// operator would, including kill -9 and restart.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/internal/testnet"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds imtgt-node once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "imtgt-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "imtgt-node")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

func freePort(t *testing.T) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(testnet.FreePort(t))
}

// proc is a running imtgt-node process.
type proc struct {
	cmd     *exec.Cmd
	stderr  *lockedWriter
	stdout  *lockedWriter
	exited  chan struct{} // closed when the process has exited
	exitErr error         // valid after exited is closed
}

func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	p := &proc{cmd: cmd, stderr: &lockedWriter{}, stdout: &lockedWriter{}, exited: make(chan struct{})}
	cmd.Stderr, cmd.Stdout = p.stderr, p.stdout
	require.NoError(t, cmd.Start())
	go func() { p.exitErr = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill() // harmless if it already exited
		<-p.exited
	})
	return p
}

// operatorToken reads a node directory's operator token.
func operatorToken(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "operator.token"))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// activeSeller registers a seller on the node at url and approves it with
// the operator token op; it returns the seller's ID and token.
func activeSeller(t *testing.T, url, op string, seller map[string]any) (id, token string) {
	t.Helper()
	status, reg := apiDo(t, "POST", url+"/v1/sellers", "", seller)
	require.Equal(t, http.StatusCreated, status, reg)
	id, token = reg["id"].(string), reg["token"].(string)
	status, res := apiDo(t, "POST", url+"/v1/sellers/"+id+"/approve", op, nil)
	require.Equal(t, http.StatusOK, status, res)
	return id, token
}

// lockedWriter collects a process's output while the test reads it.
type lockedWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(b)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitHealthy polls /healthz until the node answers or the deadline passes.
func waitHealthy(t *testing.T, p *proc, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			t.Fatalf("node exited before becoming healthy: %v\n%s", p.exitErr, p.stderr)
		default:
		}
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
	t.Fatalf("node at %s not healthy within 20s", url)
}

func waitExit(t *testing.T, p *proc) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.exitErr
	case <-time.After(30 * time.Second):
		t.Fatal("node did not exit within 30s")
		return nil
	}
}

// initCLINode initialises, with the CLI, the node of country cc in
// root/cc (lower case) on free HTTP and p2p ports, and returns its
// directory and HTTP address.
func initCLINode(t *testing.T, root, cc string) (dir, httpAddr string) {
	t.Helper()
	dir = filepath.Join(root, strings.ToLower(cc))
	httpAddr = freePort(t)
	out, err := cliRun(t, "init", "--country", cc, "--dir", dir, "--http-addr", httpAddr, "--p2p-addr", testnet.FreeP2PAddr(t))
	require.NoError(t, err, out)
	return dir, httpAddr
}

func cliRun(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(binary(t), args...).CombinedOutput()
	return string(out), err
}

func apiDo(t *testing.T, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestProcessInitRunKillRestartBackupRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := filepath.Join(t.TempDir(), "th")
	addr := freePort(t)
	url := "http://" + addr
	out, err := cliRun(t, "init", "--country", "TH", "--dir", dir, "--http-addr", addr)
	require.NoError(t, err, out)
	require.Contains(t, out, "Initialised the TH node")
	out, err = cliRun(t, "init", "--country", "TH", "--dir", dir)
	require.Error(t, err, "init must refuse an existing node")
	require.Contains(t, out, "already holds a node")

	tokBytes, err := os.ReadFile(filepath.Join(dir, "operator.token"))
	require.NoError(t, err)
	op := strings.TrimSpace(string(tokBytes))

	p := startProc(t, "run", "--dir", dir)
	waitHealthy(t, p, url)

	status, reg := apiDo(t, "POST", url+"/v1/sellers", "", testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	require.Equal(t, http.StatusCreated, status)
	sid, stok := reg["id"].(string), reg["token"].(string)
	status, _ = apiDo(t, "POST", url+"/v1/sellers/"+sid+"/approve", op, nil)
	require.Equal(t, http.StatusOK, status)
	status, l := apiDo(t, "POST", url+"/v1/listings", stok, testnet.Listing("ข้าวหอมมะลิ 5 กก.", "100630", "265.00"))
	require.Equal(t, http.StatusCreated, status)
	first := l["id"].(string)

	// Graceful stop on SIGTERM: exit status 0, store closed cleanly.
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, waitExit(t, p), p.stderr.String())
	require.Contains(t, p.stderr.String(), "node stopped")

	p = startProc(t, "run", "--dir", dir)
	waitHealthy(t, p, url)
	status, res := apiDo(t, "GET", url+"/v1/catalog/search?q=หอมมะลิ", stok, nil)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, res["items"], 1)

	// What was acknowledged survives kill -9.
	status, l = apiDo(t, "POST", url+"/v1/listings", stok, testnet.Listing("กาแฟโรบัสต้า coffee", "090111", "350.00"))
	require.Equal(t, http.StatusCreated, status)
	second := l["id"].(string)

	// A backup of the running node, through its API.
	backupFile := filepath.Join(t.TempDir(), "th.db")
	out, err = cliRun(t, "backup", "--dir", dir, "--out", backupFile)
	require.NoError(t, err, out)
	require.Contains(t, out, "Backed up")
	out, err = cliRun(t, "restore", "--dir", dir, "--from", backupFile)
	require.Error(t, err, "restore must refuse while the node runs")
	require.Contains(t, out, "stop the node")

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	waitExit(t, p)

	p = startProc(t, "run", "--dir", dir)
	waitHealthy(t, p, url)
	for _, id := range []string{first, second} {
		status, _ = apiDo(t, "GET", url+"/v1/catalog/listings/"+id, stok, nil)
		require.Equal(t, http.StatusOK, status, id)
	}
	// A listing after the backup, undone by the restore below.
	status, l = apiDo(t, "POST", url+"/v1/listings", stok, testnet.Listing("after backup", "090111", "1.00"))
	require.Equal(t, http.StatusCreated, status)
	third := l["id"].(string)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, waitExit(t, p))

	out, err = cliRun(t, "restore", "--dir", dir, "--from", backupFile)
	require.NoError(t, err, out)
	require.Contains(t, out, "kept as")

	p = startProc(t, "run", "--dir", dir)
	waitHealthy(t, p, url)
	status, _ = apiDo(t, "GET", url+"/v1/catalog/listings/"+second, stok, nil)
	require.Equal(t, http.StatusOK, status)
	status, _ = apiDo(t, "GET", url+"/v1/catalog/listings/"+third, stok, nil)
	require.Equal(t, http.StatusNotFound, status)
}

func TestProcessDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	p := startProc(t, "demo", "--http-port", "0", "--dir", filepath.Join(t.TempDir(), "demo"))
	var url, token string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && token == "" {
		for _, line := range strings.Split(p.stdout.String(), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "TH" && f[1] == "node" {
				url = f[2]
			}
			if f := strings.Fields(line); len(f) == 3 && f[0] == "operator" && f[1] == "token:" && url != "" && token == "" {
				token = f[2] // the TH node's, printed right after its URL
			}
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	require.NotEmpty(t, token, "demo printed no token:\n%s", p.stdout.String())
	status, res := apiDo(t, "GET", url+"/v1/catalog/search?q=ทุเรียน", token, nil)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, res["items"], 1)
	// The TH catalog holds the other countries' listings too.
	status, res = apiDo(t, "GET", url+"/v1/catalog/search?q=kopi&origin=ID", token, nil)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, res["items"], 1)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, waitExit(t, p))
	require.Contains(t, p.stdout.String(), "Stopped.")
}

// TestProcessPolicyCLI drives policy show, sign, verify (a tampered copy
// fails with a non-zero exit), install on a running node and explain.
func TestProcessPolicyCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir, addr := initCLINode(t, t.TempDir(), "ID")
	shown, err := exec.Command(binary(t), "policy", "show", "--dir", dir).Output()
	require.NoError(t, err)
	require.Contains(t, string(shown), "ID-MIN-FOB")

	file := filepath.Join(t.TempDir(), "policy-ID.yaml")
	edited := strings.Replace(string(shown), "version: 1\n", "version: 2\n", 1)
	edited = strings.Replace(edited, `rate: "0.11"`, `rate: "0.12"`, 1)
	require.NoError(t, os.WriteFile(file, []byte(edited), 0o600))
	out, err := cliRun(t, "policy", "verify", "--dir", dir, file)
	require.Error(t, err, "an edited, unsigned-again policy must fail verify")
	require.Contains(t, out, "changed after it was signed")

	out, err = cliRun(t, "policy", "sign", "--dir", dir, file)
	require.NoError(t, err, out)
	out, err = cliRun(t, "policy", "verify", "--dir", dir, file)
	require.NoError(t, err, out)
	require.Contains(t, out, "OK: ID policy version 2")

	p := startProc(t, "run", "--dir", dir)
	waitHealthy(t, p, "http://"+addr)
	out, err = cliRun(t, "policy", "install", "--dir", dir, file)
	require.NoError(t, err, out)
	require.Contains(t, out, "the running node applied it")
	out, err = cliRun(t, "policy", "install", "--dir", dir, file)
	require.Error(t, err)
	require.Contains(t, out, "not newer")
	shown, err = exec.Command(binary(t), "policy", "show", "--dir", dir).Output()
	require.NoError(t, err)
	require.Contains(t, string(shown), `rate: "0.12"`)

	out, err = cliRun(t, "policy", "explain", "--dir", dir, "--listing", "lst_missing")
	require.Error(t, err)
	require.Contains(t, out, "not found")
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, waitExit(t, p))
}
