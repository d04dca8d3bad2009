package testnet

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/node"
)

// InitShared initialises a node of country whose store is the PostgreSQL
// database at storeURL, and returns its directory (not running).
func InitShared(tb testing.TB, country, storeURL string) (dir, operatorToken string, err error) {
	tb.Helper()
	dir = filepath.Join(tb.TempDir(), country)
	res, err := node.Init(node.InitOptions{Dir: dir, Country: country, HTTPAddr: "127.0.0.1:0", StoreURL: storeURL})
	if err != nil {
		return "", "", err
	}
	return dir, res.OperatorToken, nil
}

// StartReplica copies the node directory dir (config, keys, token: what
// an operator deploys on each replica's host) and runs a replica from the
// copy, with its own HTTP and p2p addresses. It stops when the test ends.
func StartReplica(tb testing.TB, dir, country, operatorToken string) *Node {
	tb.Helper()
	cp := copyNodeDir(tb, dir)
	tn := &Node{t: tb, Dir: cp, Country: country, OperatorToken: operatorToken, logs: &syncBuffer{}}
	n, err := node.Open(context.Background(), cp, node.Options{
		Logger:   slog.New(slog.NewTextHandler(tn.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		HTTPAddr: "127.0.0.1:0", P2PAddr: FreeP2PAddr(tb),
	})
	require.NoError(tb, err)
	require.NoError(tb, n.Start(context.Background()))
	tn.Node, tn.URL = n, n.HTTPURL()
	tb.Cleanup(func() { tn.Stop() })
	return tn
}

// copyNodeDir copies the node directory dir (config, keys, token: what an
// operator deploys on each replica's host) into a new temporary directory
// and returns the copy's path.
func copyNodeDir(tb testing.TB, dir string) string {
	tb.Helper()
	cp := filepath.Join(tb.TempDir(), filepath.Base(dir))
	require.NoError(tb, os.CopyFS(cp, os.DirFS(dir)))
	// CopyFS makes files 0666 less the umask: the keys keep their 0600.
	require.NoError(tb, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		return os.Chmod(filepath.Join(cp, rel), fi.Mode().Perm())
	}))
	return cp
}
