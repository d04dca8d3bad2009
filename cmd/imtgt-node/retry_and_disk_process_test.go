package main

// Process-level tests of issue 11 §5 (first half): clients retry imports
// and creates safely across a killed node, a full disk answers 507 and
// makes the node unready until space returns, and a body declared over
// the limit is refused at once.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/internal/testnet"
)

// sellerNode is a single running node with an active seller.
type sellerNode struct {
	*fedNode
	seller string // the seller's token
}

// startSellerNode inits and runs a TH node in dir (created by init), and
// registers and approves a seller.
func startSellerNode(t *testing.T, root string) *sellerNode {
	t.Helper()
	dir, httpAddr := initCLINode(t, root, "TH")
	n := &fedNode{cc: "TH", dir: dir, url: "http://" + httpAddr}
	n.token = operatorToken(t, dir)
	return &sellerNode{fedNode: n}
}

func (n *sellerNode) onboard(t *testing.T) {
	t.Helper()
	_, n.seller = activeSeller(t, n.url, n.token, testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
}

// kill stops the node with SIGKILL and waits for it to exit.
func (n *sellerNode) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, n.p.cmd.Process.Signal(syscall.SIGKILL))
	<-n.p.exited
}

// post sends body with the seller's token and an Idempotency-Key (none
// if key is "") and returns the status, the Idempotent-Replayed header
// and the decoded reply.
func (n *sellerNode) post(t *testing.T, path, contentType, key, body string) (int, string, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", n.url+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+n.seller)
	req.Header.Set("Content-Type", contentType)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var m map[string]any
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, resp.Header.Get("Idempotent-Replayed"), m
}

var listingsGauge = regexp.MustCompile(`(?m)^imtgt_catalog_listings\{origin="TH"\} (\d+)$`)

// listings is how many TH listings the node's catalog holds, from its
// metrics.
func (n *sellerNode) listings(t *testing.T) int {
	t.Helper()
	req, err := http.NewRequest("GET", n.url+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+n.token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	m := listingsGauge.FindSubmatch(raw)
	if m == nil {
		return 0 // no listing yet: no series
	}
	v, err := strconv.Atoi(string(m[1]))
	require.NoError(t, err)
	return v
}

// importCSV is a CSV of rows listings titled prefix 0..rows-1.
func importCSV(prefix string, rows int) string {
	var b strings.Builder
	b.WriteString("title,description,hs_code,price,quantity,ship_from\n")
	for i := range rows {
		fmt.Fprintf(&b, "%s %d,Dried squid from the Songkhla lagoon,030749,420.00,10,TH-90\n", prefix, i)
	}
	return b.String()
}

// rawImport writes an import request with key on a new connection: the
// whole body, or only its first half. It does not read the reply.
func (n *sellerNode) rawImport(t *testing.T, key, body string, half bool) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(n.url, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	head := fmt.Sprintf("POST /v1/listings/import HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: text/csv\r\nIdempotency-Key: %s\r\nContent-Length: %d\r\n\r\n",
		strings.TrimPrefix(n.url, "http://"), n.seller, key, len(body))
	send := body
	if half {
		send = body[:len(body)/2]
	}
	_, err = io.WriteString(c, head+send)
	require.NoError(t, err)
	return c
}

// waitLog polls the node's log until it holds substr count times.
func waitLog(t *testing.T, p *proc, substr string, count int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(p.stderr.String(), substr) < count {
		if time.Now().After(deadline) {
			t.Fatalf("the node did not log %q %d times within 30s:\n%s", substr, count, p.stderr)
		}
		select {
		case <-p.exited:
			t.Fatalf("node exited: %v\n%s", p.exitErr, p.stderr)
		case <-time.After(20 * time.Millisecond): // polling interval
		}
	}
}

// TestProcessImportRetryAcrossKill: the client of a 4,000-row import sees
// its connection die, once before the node stored anything and once
// after the node committed but before the client read the reply. Retried
// with the same Idempotency-Key, each ends with exactly 4,000 listings,
// and the second retry is answered with the first import's report.
func TestProcessImportRetryAcrossKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	n := startSellerNode(t, t.TempDir())
	n.start(t)
	n.onboard(t)
	const rows = 4000
	first, second := importCSV("ปลาหมึกแห้ง", rows), importCSV("น้ำพริกเผา", rows)

	// 1. Killed while the body is still arriving: nothing stored; the
	// retry imports.
	n.rawImport(t, "bulk-1", first, true)
	n.kill(t)
	n.start(t)
	require.Zero(t, n.listings(t))
	status, replayed, rep := n.post(t, "/v1/listings/import", "text/csv", "bulk-1", first)
	require.Equal(t, http.StatusOK, status, rep)
	require.Empty(t, replayed)
	require.EqualValues(t, rows, rep["imported"])
	require.Equal(t, rows, n.listings(t))

	// 2. Killed after the commit, the reply unread: the retry stores
	// nothing and answers the report the dead request would have.
	done := strings.Count(n.p.stderr.String(), "listings imported")
	n.rawImport(t, "bulk-2", second, false)
	waitLog(t, n.p, "listings imported", done+1)
	n.kill(t)
	n.start(t)
	require.Equal(t, 2*rows, n.listings(t), "the commit before the kill is kept")
	status, replayed, rep2 := n.post(t, "/v1/listings/import", "text/csv", "bulk-2", second)
	require.Equal(t, http.StatusOK, status, rep2)
	require.Equal(t, "true", replayed)
	require.EqualValues(t, rows, rep2["imported"])
	require.Len(t, rep2["ids"], rows)
	require.Equal(t, 2*rows, n.listings(t), "a retry duplicates nothing")

	// The IDs in the replayed report are the stored listings.
	for _, i := range []int{0, rows / 2, rows - 1} {
		id := rep2["ids"].([]any)[i].(string)
		status, l := apiDo(t, "GET", n.url+"/v1/listings/"+id, n.seller, nil)
		require.Equal(t, http.StatusOK, status, l)
		require.Equal(t, fmt.Sprintf("น้ำพริกเผา %d", i), l["title"])
	}

	// The same key with another body is refused, and stores nothing.
	status, _, m := n.post(t, "/v1/listings/import", "text/csv", "bulk-1", second)
	require.Equal(t, http.StatusConflict, status, m)
	require.Equal(t, "idempotency_key_reused", m["error"].(map[string]any)["code"])
	require.Equal(t, "Idempotency-Key", m["error"].(map[string]any)["field"])

	// A single listing: the retry is the first answer.
	one := `{"title":"ข้าวหอมมะลิ 5 กก.","hs_code":"100630","price":{"amount":"265.00","currency":"THB"},"quantity":10,"ship_from":"TH-84"}`
	status, replayed, l1 := n.post(t, "/v1/listings", "application/json", "one-1", one)
	require.Equal(t, http.StatusCreated, status, l1)
	require.Empty(t, replayed)
	n.kill(t)
	n.start(t)
	status, replayed, l2 := n.post(t, "/v1/listings", "application/json", "one-1", one)
	require.Equal(t, http.StatusCreated, status, l2)
	require.Equal(t, "true", replayed)
	require.Equal(t, l1["id"], l2["id"])
	require.Equal(t, 2*rows+1, n.listings(t))
}

// TestProcessBodyOverLimitIs413AtOnce: a request whose Content-Length is
// over the route's limit is answered 413 before its body is sent.
func TestProcessBodyOverLimitIs413AtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	n := startSellerNode(t, t.TempDir())
	n.start(t)
	n.onboard(t)
	host := strings.TrimPrefix(n.url, "http://")
	for _, tt := range []struct {
		path   string
		length int
	}{{"/v1/listings", 1<<20 + 1}, {"/v1/listings/import", 32<<20 + 1}} {
		c, err := net.Dial("tcp", host)
		require.NoError(t, err)
		defer c.Close()
		start := time.Now()
		_, err = fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: text/csv\r\nContent-Length: %d\r\n\r\ntitle,", tt.path, host, n.seller, tt.length)
		require.NoError(t, err)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(time.Second)))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err, "%s: no reply within 1s", tt.path)
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		resp.Body.Close()
		require.Less(t, time.Since(start), time.Second)
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(raw))
		var m map[string]any
		require.NoError(t, json.Unmarshal(raw, &m))
		require.Equal(t, "body_too_large", m["error"].(map[string]any)["code"])
		require.NotContains(t, string(raw), "127.0.0.1", "no socket address in the reply")
	}
}

// mountTmpfs mounts a tmpfs of size at dir (which it creates) until the
// test ends; it skips the test only where mounting is not permitted.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o700))
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "permission denied") || strings.Contains(string(out), "must be superuser") || errors.Is(err, syscall.EPERM) {
			t.Skipf("mounting a tmpfs is not permitted here (%s): this test needs root, as in CI", strings.TrimSpace(string(out)))
		}
		t.Fatalf("mount tmpfs at %s: %v\n%s", dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
}

// fill writes a file in dir until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	for _, chunk := range []int{1 << 20, 4 << 10, 512} {
		buf := make([]byte, chunk)
		for {
			if _, err := f.Write(buf); err != nil {
				require.ErrorIs(t, err, syscall.ENOSPC)
				break
			}
		}
	}
}

// readyz returns the readiness status and the error of the storage
// check ("" when it passes). (A node outside any federation is unready
// for want of a manifest: the storage check is what these tests read.)
func readyz(t *testing.T, url string) (int, string) {
	t.Helper()
	status, m := apiDo(t, "GET", url+"/readyz", "", nil)
	checks, _ := m["checks"].([]any)
	for _, c := range checks {
		if c := c.(map[string]any); c["name"] == "storage" {
			if c["ok"] == true {
				return status, ""
			}
			e, _ := c["error"].(string)
			require.NotEmpty(t, e, "a failing check says why")
			return status, e
		}
	}
	t.Fatalf("/readyz has no storage check: %v", m)
	return 0, ""
}

// TestProcessFullDisk: with the node's data directory on a full tmpfs,
// writes are 507 insufficient_storage and /readyz is 503 saying why;
// once space is freed the node is ready and takes writes again, and after
// a kill -9 and restart it holds exactly what it acknowledged.
func TestProcessFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	n := startSellerNode(t, t.TempDir())
	// The store moves onto a small tmpfs mounted over data/.
	data := filepath.Join(n.dir, "data")
	db, err := os.ReadFile(filepath.Join(data, "node.db"))
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(data, "node.db")))
	mountTmpfs(t, data, "40m")
	require.NoError(t, os.WriteFile(filepath.Join(data, "node.db"), db, 0o600))
	n.start(t)
	n.onboard(t)

	acked := 0
	status, _, rep := n.post(t, "/v1/listings/import", "text/csv", "", importCSV("before", 200))
	require.Equal(t, http.StatusOK, status, rep)
	acked += 200

	filler := filepath.Join(data, "filler")
	fill(t, filler)

	// A bulk import needs new pages: refused whole.
	status, _, m := n.post(t, "/v1/listings/import", "text/csv", "full-1", importCSV("full", 500))
	require.Equal(t, http.StatusInsufficientStorage, status, m)
	e := m["error"].(map[string]any)
	require.Equal(t, "insufficient_storage", e["code"])
	require.NotContains(t, e["message"], n.dir, "no local paths to clients")
	// Single creates may still fit in pages the store freed before; each
	// is either acknowledged or 507, and a 507 comes soon.
	one := `{"title":"ข้าวหอมมะลิ 5 กก.","hs_code":"100630","price":{"amount":"265.00","currency":"THB"},"quantity":10,"ship_from":"TH-84"}`
	refused := false
	for range 500 {
		status, _, m = n.post(t, "/v1/listings", "application/json", "", one)
		if status == http.StatusCreated {
			acked++
			continue
		}
		require.Equal(t, http.StatusInsufficientStorage, status, m)
		require.Equal(t, "insufficient_storage", m["error"].(map[string]any)["code"])
		refused = true
		break
	}
	require.True(t, refused, "single creates on a full disk end in 507")

	status, reason := readyz(t, n.url)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Contains(t, reason, "insufficient storage")
	t.Logf("/readyz while full: %s", reason)
	// Reads still work.
	status, _ = apiDo(t, "GET", n.url+"/v1/listings?limit=1", n.seller, nil)
	require.Equal(t, http.StatusOK, status)

	// Space comes back: ready again, writes taken (the same key too: the
	// refused request stored nothing, not even its key).
	require.NoError(t, os.Remove(filler))
	testnet.Eventually(t, 10*time.Second, func() bool { _, r := readyz(t, n.url); return r == "" }, "/readyz's storage check passes again once space is back")
	status, replayed, rep := n.post(t, "/v1/listings/import", "text/csv", "full-1", importCSV("full", 500))
	require.Equal(t, http.StatusOK, status, rep)
	require.Empty(t, replayed)
	acked += 500
	status, _, m = n.post(t, "/v1/listings", "application/json", "", one)
	require.Equal(t, http.StatusCreated, status, m)
	acked++
	require.Equal(t, acked, n.listings(t))

	// Everything acknowledged survives a kill -9, and nothing else.
	n.kill(t)
	n.start(t)
	require.Equal(t, acked, n.listings(t))
	_, reason = readyz(t, n.url)
	require.Empty(t, reason)
	status, replayed, rep = n.post(t, "/v1/listings/import", "text/csv", "full-1", importCSV("full", 500))
	require.Equal(t, http.StatusOK, status, rep)
	require.Equal(t, "true", replayed, "the import acknowledged after the disk was freed is the key's answer")
	require.Equal(t, acked, n.listings(t))
}
