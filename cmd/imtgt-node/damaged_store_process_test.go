package main

// Process-level tests of issue 11 §4: a damaged store or another node's
// data.key is refused by the built binary with one clear line, never a
// crash, and "store check" names what is wrong.

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/imtgt/imtgt-node/internal/testnet"
)

// filledCLINode inits a TH node, runs it, registers and approves a seller
// (sealed personal fields), publishes n listings, and stops it. It returns
// the node's directory and HTTP address.
func filledCLINode(t *testing.T, n int) (dir, addr string) {
	t.Helper()
	dir, addr = initCLINode(t, t.TempDir(), "TH")
	url := "http://" + addr
	p := startProc(t, "run", "--dir", dir)
	waitHealthy(t, p, url)
	_, stok := activeSeller(t, url, operatorToken(t, dir), testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	for i := range n {
		l := testnet.Listing(fmt.Sprintf("Jasmine rice lot %d", i), "100630", "265.00")
		l["description"] = strings.Repeat("Hom Mali rice from Surin, new crop. ", 10)
		status, _ := apiDo(t, "POST", url+"/v1/listings", stok, l)
		require.Equal(t, http.StatusCreated, status)
	}
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, waitExit(t, p), p.stderr.String())
	return dir, addr
}

// livePageOffset is the file offset of the in-use page nearest the middle
// of the store: random bytes over free pages damage nothing.
func livePageOffset(t *testing.T, path string) int64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
	require.NoError(t, err)
	defer db.Close()
	ps := db.Info().PageSize
	var off int64 = -1
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		pages := int(tx.Size() / int64(ps))
		for d := 0; d < pages/2 && off < 0; d++ {
			for _, id := range []int{pages/2 - d, pages/2 + d} {
				if p, err := tx.Page(id); err == nil && p != nil && (p.Type == "leaf" || p.Type == "branch") {
					off = int64(id) * int64(ps)
					break
				}
			}
		}
		return nil
	}))
	require.GreaterOrEqual(t, off, int64(0), "no live page in %s", path)
	return off
}

// runRefused runs the node in dir and requires it to exit non-zero at
// once with one clear error line containing every want, and no crash.
func runRefused(t *testing.T, dir string, want ...string) {
	t.Helper()
	p := startProc(t, "run", "--dir", dir)
	err := waitExit(t, p)
	stderr := p.stderr.String()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "run must refuse:\n%s", stderr)
	require.Equal(t, exitError, exit.ExitCode(), "an error exit, not a signal:\n%s", stderr)
	for _, bad := range []string{"panic", "goroutine ", "SIGSEGV", "SIGBUS", "fatal error"} {
		require.NotContains(t, stderr, bad, "no crash, no stack trace")
	}
	var errLines []string
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if strings.HasPrefix(line, "error: ") {
			errLines = append(errLines, line)
		}
	}
	require.Len(t, errLines, 1, "one error line:\n%s", stderr)
	for _, w := range want {
		require.Contains(t, errLines[0], w)
	}
}

func TestProcessDamagedStore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir, addr := filledCLINode(t, 120)
	db := filepath.Join(dir, "data", "node.db")
	good, err := os.ReadFile(db)
	require.NoError(t, err)
	putBack := func(t *testing.T) {
		require.NoError(t, os.WriteFile(db, good, 0o600))
	}

	t.Run("store check of a good store", func(t *testing.T) {
		putBack(t)
		out, err := cliRun(t, "store", "check", "--dir", dir)
		require.NoError(t, err, out)
		require.Contains(t, out, "The store is consistent.")
		require.Regexp(t, `listings:\s+120`, out)
	})

	for _, tc := range []struct {
		name   string
		damage func(b []byte) []byte
		check  string // what store check names
	}{
		{"truncated to half", func(b []byte) []byte { return b[:len(b)/2] }, "cut short"},
		{"random 64 KiB in the middle", func(b []byte) []byte {
			off := livePageOffset(t, db)
			r := rand.New(rand.NewPCG(11, 4))
			for i := off; i < off+64<<10 && i < int64(len(b)); i++ {
				b[i] = byte(r.UintN(256))
			}
			return b
		}, "damaged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			putBack(t)
			require.NoError(t, os.WriteFile(db, tc.damage(append([]byte(nil), good...)), 0o600))
			runRefused(t, dir, db, "damaged", "restore", "imtgt-node restore --dir "+dir)

			out, err := cliRun(t, "store", "check", "--dir", dir)
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, out)
			require.Equal(t, exitError, exit.ExitCode(), out)
			require.Regexp(t, `\d+ problems?:`, out)
			require.Contains(t, out, tc.check)
			require.Contains(t, out, "restore")
			require.NotContains(t, out, "goroutine ")

			// What the message says to do works on the damaged store.
			backup := filepath.Join(t.TempDir(), "backup.db")
			require.NoError(t, os.WriteFile(backup, good, 0o600))
			out, err = cliRun(t, "restore", "--dir", dir, "--from", backup)
			require.NoError(t, err, out)
			require.Contains(t, out, "The replaced store is kept as")
			out, err = cliRun(t, "store", "check", "--dir", dir)
			require.NoError(t, err, out)
		})
	}

	t.Run("store check refuses while the node runs", func(t *testing.T) {
		putBack(t)
		p := startProc(t, "run", "--dir", dir)
		waitHealthy(t, p, "http://"+addr)
		// Not ready (no federation manifest), but its keys are checked
		// and they are this store's.
		_, ready := apiDo(t, "GET", "http://"+addr+"/readyz", "", nil)
		require.Contains(t, ready["checks"], map[string]any{"name": "keys", "ok": true}, ready)
		out, err := cliRun(t, "store", "check", "--dir", dir)
		require.Error(t, err)
		require.Contains(t, out, "stop it first")
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
		require.NoError(t, waitExit(t, p))
	})

	t.Run("another node's data.key", func(t *testing.T) {
		putBack(t)
		other, _ := initCLINode(t, t.TempDir(), "TH")
		own := filepath.Join(dir, "keys", "data.key")
		keep, err := os.ReadFile(own)
		require.NoError(t, err)
		foreign, err := os.ReadFile(filepath.Join(other, "keys", "data.key"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(own, foreign, 0o600))
		defer os.WriteFile(own, keep, 0o600)

		runRefused(t, dir, own, "data key does not match")
		out, err := cliRun(t, "store", "check", "--dir", dir)
		require.Error(t, err, out)
		require.Contains(t, out, "do not open with the data key")

		// With its own key back, the same store runs.
		require.NoError(t, os.WriteFile(own, keep, 0o600))
		out, err = cliRun(t, "store", "check", "--dir", dir)
		require.NoError(t, err, out)
	})
}
