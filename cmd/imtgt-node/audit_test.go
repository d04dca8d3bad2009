package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/auditor"
	"github.com/imtgt/imtgt-node/federation"
	"github.com/imtgt/imtgt-node/internal/testnet"
	"github.com/imtgt/imtgt-node/node"
)

func TestAuditUsageErrors(t *testing.T) {
	checkCLIErrors(t, []cliErrorCase{
		{[]string{"audit", "report"}, exitUsage, "--dir is required"},
		{[]string{"audit", "report", "--dir", "x", "--format", "pdf"}, exitUsage, `--format "pdf"`},
		{[]string{"audit", "report", "--dir", "x", "--from", "yesterday"}, exitUsage, `--from "yesterday"`},
		{[]string{"audit", "report", "--dir", "x", "--to", "2026-13-01"}, exitUsage, `--to "2026-13-01"`},
		{[]string{"audit", "report", "--dir", "x", "--from", "2026-02-01", "--to", "2026-01-01"}, exitUsage, "is not after --from"},
		{[]string{"audit", "report", "--dir", "x", "extra"}, exitUsage, "takes no arguments"},
		{[]string{"audit", "export", "--dir", "x"}, exitUsage, "--out is required"},
		{[]string{"audit", "export", "--out", "f"}, exitUsage, "--dir is required"},
		{[]string{"audit", "export", "--dir", "x", "--out", "f", "--from", "01/02/2026"}, exitUsage, "--from"},
		{[]string{"audit", "export", "--dir", "x", "--out", "f", "--bogus"}, exitUsage, "unknown flag"},
		{[]string{"audit", "verify"}, exitUsage, "takes one FILE argument"},
		{[]string{"audit", "verify", "a", "b"}, exitUsage, "takes one FILE argument"},
		{[]string{"audit", "verify", "/nonexistent/bundle.jsonl"}, exitError, "no such file"},
		{[]string{"audit", "report", "--dir", "/nonexistent/imtgt"}, exitError, "read config"},
		{[]string{"audit", "export", "--dir", "/nonexistent/imtgt", "--out", "-"}, exitError, "read config"},
	})
}

func TestParsePeriodTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: ""},
		{in: "2026-01-01", want: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{in: "2026-01-01T00:00:00Z", want: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{in: "2026-01-01T07:00:00+07:00", want: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{in: "2026-01-01T00:00:00.5Z", want: time.Date(2026, 1, 1, 0, 0, 0, 5e8, time.UTC)},
		{in: "2026-1-1", bad: true},
		{in: "2026-01-01 00:00", bad: true},
		{in: "now", bad: true},
	}
	for _, tt := range tests {
		got, err := parsePeriodTime("from", tt.in)
		if tt.bad {
			var ue usageError
			require.True(t, errors.As(err, &ue), "%q: want a usage error, got %v", tt.in, err)
			continue
		}
		require.NoError(t, err, tt.in)
		require.True(t, tt.want.Equal(got), "%q: got %s", tt.in, got)
		require.Equal(t, time.UTC, got.Location(), tt.in)
	}
}

func TestEscapeUntrusted(t *testing.T) {
	tests := []struct{ in, want, wantLines string }{
		{"entry 2 (line 3): altered", "entry 2 (line 3): altered", "entry 2 (line 3): altered"},
		{"ไทย …", "ไทย …", "ไทย …"},
		{"a\x1b[31mred", `a\x1b[31mred`, `a\x1b[31mred`},
		{"two\nlines\r", `two\nlines\r`, "two\nlines\\r"},
		{"bad \xff byte", `bad \xff byte`, `bad \xff byte`},
		{"bidi \u202e x", `bidi \u202e x`, `bidi \u202e x`},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, escapeUntrusted(tt.in, false), "%q", tt.in)
		require.Equal(t, tt.wantLines, escapeUntrusted(tt.in, true), "%q", tt.in)
	}
	err := untrustedError{errors.New("node \x07TH")}
	require.Equal(t, `node \aTH`, err.Error())
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.html")

	n, err := writeFileAtomic(path, func(w io.Writer) (int64, error) {
		k, err := io.WriteString(w, "first")
		return int64(k), err
	})
	require.NoError(t, err)
	require.Equal(t, int64(5), n)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), fi.Mode().Perm())

	// A failure part-way leaves the old file whole and no temporary file.
	_, err = writeFileAtomic(path, func(w io.Writer) (int64, error) {
		io.WriteString(w, "half a rep")
		return 10, errors.New("connection reset")
	})
	require.ErrorContains(t, err, "connection reset")
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "first", string(got))
	// A failure with no file before leaves none.
	fresh := filepath.Join(dir, "fresh.jsonl")
	_, err = writeFileAtomic(fresh, func(w io.Writer) (int64, error) { return 0, errors.New("no entries") })
	require.Error(t, err)
	require.NoFileExists(t, fresh)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "only report.html: no temporary file is left")
}

func TestEntryCounter(t *testing.T) {
	bundle := `{"header":{"format":"x","note":"{\"entry\":"}}` + "\n" +
		`{"entry":{"seq":1}}` + "\n" + `{"entry":{"seq":2}}` + "\n" + `{"checkpoint":{"seq":2}}` + "\n"
	for _, chunk := range []int{1, 3, 7, len(bundle)} {
		var out bytes.Buffer
		c := &entryCounter{w: &out, atStart: true}
		for i := 0; i < len(bundle); i += chunk {
			_, err := c.Write([]byte(bundle[i:min(i+chunk, len(bundle))]))
			require.NoError(t, err)
		}
		require.Equal(t, 2, c.entries, "chunks of %d", chunk)
		require.Equal(t, int64(len(bundle)), c.n)
		require.Equal(t, bundle, out.String())
	}
}

// installSoloManifest installs, on the stopped node in dir, a manifest
// naming it alone (threshold 1): the root of trust a bundle's verifier
// checks the node's key and its policies against.
func installSoloManifest(t *testing.T, dir, country string) {
	t.Helper()
	solo := &testnet.Node{Dir: dir, Country: country}
	_, raw := testnet.SignedManifest(t, 1, 1, []*testnet.Node{solo}, []*testnet.Node{solo})
	psk, err := federation.NewPSK()
	require.NoError(t, err)
	_, err = node.InstallManifest(context.Background(), dir, raw, psk)
	require.NoError(t, err)
}

func otherPeerID(t *testing.T) string {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	require.NoError(t, err)
	id, err := peer.IDFromPrivateKey(k)
	require.NoError(t, err)
	return id.String()
}

// TestAuditCLIStoppedNode runs export, verify and report against a
// stopped node's store, and verify against a tampered copy.
func TestAuditCLIStoppedNode(t *testing.T) {
	n := testnet.InitNode(t, "TH") // initialised, not started
	installSoloManifest(t, n.Dir, "TH")
	me, err := node.MemberDescriptor(n.Dir)
	require.NoError(t, err)
	out := t.TempDir()

	bundle := filepath.Join(out, "th.jsonl")
	code, stdout, stderr := runCLI("audit", "export", "--dir", n.Dir, "--out", bundle)
	require.Equal(t, exitOK, code, stderr)
	require.Empty(t, stdout)
	fi, err := os.Stat(bundle)
	require.NoError(t, err)
	// The policy init installed and the manifest: two entries.
	require.Equal(t, "Exported 2 entries (the start to now) to "+bundle+": "+strconv.FormatInt(fi.Size(), 10)+" bytes\n", stderr)

	code, stdout, stderr = runCLI("audit", "verify", bundle)
	require.Equal(t, exitOK, code, stderr)
	require.Empty(t, stderr)
	require.Contains(t, stdout, "Node:         TH ("+me.PeerID+"), federation imtgt-test, manifest version 1")
	require.Contains(t, stdout, "Entries:      2, seq 1 to 2")
	require.Contains(t, stdout, "admin 2")
	require.Contains(t, stdout, "Residency:    no violations")
	code, _, stderr = runCLI("audit", "verify", "--node", me.PeerID, bundle)
	require.Equal(t, exitOK, code, stderr)
	code, _, stderr = runCLI("audit", "verify", "--node", otherPeerID(t), bundle)
	require.Equal(t, exitError, code)
	require.Contains(t, stderr, "not from the expected node")

	// From standard input.
	data, err := os.ReadFile(bundle)
	require.NoError(t, err)
	var so, se bytes.Buffer
	root := newRootCmd(&so, &se)
	root.SetIn(bytes.NewReader(data))
	root.SetArgs([]string{"audit", "verify", "-"})
	require.NoError(t, root.ExecuteContext(context.Background()), se.String())
	require.Contains(t, so.String(), "Residency:    no violations")

	// One byte of an entry changed: exit 1, naming the entry and its line.
	lines := strings.Split(string(data), "\n")
	require.True(t, strings.HasPrefix(lines[2], `{"entry":`), lines[2])
	require.Contains(t, lines[2], `"kind":"admin.manifest"`)
	lines[2] = strings.Replace(lines[2], `"kind":"admin.manifest"`, `"kind":"admin.manifesT"`, 1)
	tampered := filepath.Join(out, "tampered.jsonl")
	require.NoError(t, os.WriteFile(tampered, []byte(strings.Join(lines, "\n")), 0o644))
	code, stdout, stderr = runCLI("audit", "verify", tampered)
	require.Equal(t, exitError, code, stdout)
	require.Contains(t, stderr, "entry 2 (line 3)")
	require.Contains(t, stderr, "altered")
	require.Empty(t, stdout, "no summary for a broken chain")
	// Cut off mid-line.
	cut := filepath.Join(out, "cut.jsonl")
	require.NoError(t, os.WriteFile(cut, data[:len(data)-10], 0o644))
	code, _, stderr = runCLI("audit", "verify", cut)
	require.Equal(t, exitError, code)
	require.Contains(t, stderr, "truncated")

	// The report, as HTML to a file and as JSON to standard output.
	html := filepath.Join(out, "report.html")
	code, stdout, stderr = runCLI("audit", "report", "--dir", n.Dir, "--format", "html", "--out", html)
	require.Equal(t, exitOK, code, stderr)
	require.Empty(t, stdout)
	page, err := os.ReadFile(html)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(page), "<!DOCTYPE html>"))
	require.Contains(t, string(page), "</html>")
	code, stdout, stderr = runCLI("audit", "report", "--dir", n.Dir, "--format", "json", "--from", "2020-01-01", "--to", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	require.Equal(t, exitOK, code, stderr)
	var rep auditor.Report
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	require.Equal(t, "TH", rep.Node)
	require.Equal(t, 2, rep.Entries)
	require.Equal(t, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), rep.From)
	require.Contains(t, stdout, "\n  \"node\": \"TH\"", "indented")
	code, stdout, _ = runCLI("audit", "report", "--dir", n.Dir, "--out", "-")
	require.Equal(t, exitOK, code)
	require.True(t, strings.HasPrefix(stdout, "<!DOCTYPE html>"), "html is the default")

	// An export of an empty period fails and writes nothing.
	empty := filepath.Join(out, "empty.jsonl")
	code, _, stderr = runCLI("audit", "export", "--dir", n.Dir, "--out", empty, "--from", "2000-01-01", "--to", "2000-02-01")
	require.Equal(t, exitError, code)
	require.Contains(t, stderr, "no audit entries")
	require.NoFileExists(t, empty)
	left, err := os.ReadDir(out)
	require.NoError(t, err)
	for _, e := range left {
		require.False(t, strings.HasPrefix(e.Name(), "."), "temporary file %s left behind", e.Name())
	}
}

// TestProcessAuditCLIRunningNode exports and reports through the running
// node's API (the store is locked by the node process), then verifies.
func TestProcessAuditCLIRunningNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir, addr := initCLINode(t, t.TempDir(), "MY")
	installSoloManifest(t, dir, "MY")
	tok, err := node.ReadOperatorToken(dir)
	require.NoError(t, err)
	p := startProc(t, "run", "--dir", dir)
	url := "http://" + addr
	waitHealthy(t, p, url)

	status, res := apiDo(t, "POST", url+"/v1/auditors", tok, map[string]any{"name": "JPDP Malaysia"})
	require.Equal(t, http.StatusCreated, status, res)
	audID, audTok := res["id"].(string), res["token"].(string)

	bundle := filepath.Join(t.TempDir(), "my.jsonl")
	code, _, stderr := runCLI("audit", "export", "--dir", dir, "--out", bundle, "--from", "2020-01-01")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stderr, "Exported 3 entries")
	data, err := os.ReadFile(bundle)
	require.NoError(t, err)
	require.NotContains(t, string(data), audTok)
	require.NotContains(t, string(data), "JPDP")
	b, err := audit.ReadBundle(bytes.NewReader(data))
	require.NoError(t, err)
	require.Len(t, b.Entries, 3)
	last := b.Entries[2]
	require.Equal(t, audit.AdminToken, last.Kind)
	require.Equal(t, []string{audID}, last.Records)
	require.Equal(t, "operator", last.Actor)

	code, stdout, stderr := runCLI("audit", "verify", bundle)
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "Entries:      3, seq 1 to 3")

	code, stdout, stderr = runCLI("audit", "report", "--dir", dir, "--format", "json")
	require.Equal(t, exitOK, code, stderr)
	var rep auditor.Report
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	require.Equal(t, "MY", rep.Node)
	require.Equal(t, 3, rep.Entries)

	// An empty period through the API: the node's 404 is the error.
	code, _, stderr = runCLI("audit", "export", "--dir", dir, "--out", filepath.Join(t.TempDir(), "x.jsonl"), "--to", "2000-01-01")
	require.Equal(t, exitError, code)
	require.Contains(t, stderr, "404")
	require.Contains(t, stderr, "no audit entries")

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, waitExit(t, p), p.stderr.String())
}
