package node_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/node"
	"github.com/imtgt/imtgt-node/store"
)

func TestOpenRefusesOtherNodesDataKey(t *testing.T) {
	ctx := context.Background()
	a := filepath.Join(t.TempDir(), "a")
	b := filepath.Join(t.TempDir(), "b")
	_, err := node.Init(node.InitOptions{Dir: a, Country: "TH"})
	require.NoError(t, err)
	_, err = node.Init(node.InitOptions{Dir: b, Country: "TH"})
	require.NoError(t, err)
	own := filepath.Join(a, node.KeysDir, "data.key")
	keep, err := os.ReadFile(own)
	require.NoError(t, err)
	foreign, err := os.ReadFile(filepath.Join(b, node.KeysDir, "data.key"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(own, foreign, 0o600))

	_, err = node.Open(ctx, a, node.Options{})
	require.ErrorIs(t, err, store.ErrWrongDataKey)
	require.ErrorContains(t, err, own, "the error names the key file")
	res, err := node.CheckStore(ctx, a)
	require.NoError(t, err)
	require.True(t, res.WrongDataKey)
	require.False(t, res.OK())

	require.NoError(t, os.WriteFile(own, keep, 0o600))
	n, err := node.Open(ctx, a, node.Options{})
	require.NoError(t, err)
	require.NoError(t, n.Close(ctx))
	res, err = node.CheckStore(ctx, a)
	require.NoError(t, err)
	require.True(t, res.OK(), "%v", res.Problems)
}

func TestOpenRefusesDamagedStore(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "th")
	_, err := node.Init(node.InitOptions{Dir: dir, Country: "TH"})
	require.NoError(t, err)
	b, err := os.ReadFile(node.StorePath(dir))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(node.StorePath(dir), b[:len(b)/2], 0o600))
	_, err = node.Open(ctx, dir, node.Options{})
	require.ErrorIs(t, err, store.ErrCorrupt)
	require.ErrorContains(t, err, "imtgt-node restore --dir "+dir)
	res, err := node.CheckStore(ctx, dir)
	require.NoError(t, err, "a damaged store is a finding of the check, not an error")
	require.False(t, res.OK())
}
