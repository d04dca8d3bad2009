package keys_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/keys"
)

func TestGenerateLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	gen, err := keys.Generate(dir)
	require.NoError(t, err)
	for _, name := range []string{keys.NodeKeyFile, keys.GovernanceKeyFile, keys.DataKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), name)
	}
	loaded, err := keys.Load(dir)
	require.NoError(t, err)
	require.Equal(t, gen.Node, loaded.Node)
	require.Equal(t, gen.Governance, loaded.Governance)
	require.NotEqual(t, gen.Node, gen.Governance)

	sealed := gen.Data.Seal([]byte("secret"), []byte("sel_1"))
	pt, err := loaded.Data.Open(sealed, []byte("sel_1"))
	require.NoError(t, err)
	require.Equal(t, "secret", string(pt))

	_, err = keys.Generate(dir)
	require.ErrorIs(t, err, keys.ErrExists, "generate must never overwrite keys")
}

func TestLoadRefusesOpenPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	_, err := keys.Generate(dir)
	require.NoError(t, err)
	require.NoError(t, os.Chmod(filepath.Join(dir, keys.NodeKeyFile), 0o644))
	_, err = keys.Load(dir)
	require.ErrorIs(t, err, keys.ErrPermissions)
	require.Contains(t, err.Error(), "chmod 600")
}

func TestLoadRefusesBadFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	_, err := keys.Generate(dir)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, keys.DataKeyFile), []byte("not pem"), 0o600))
	_, err = keys.Load(dir)
	require.ErrorContains(t, err, "not a PEM")
	_, err = keys.Load(t.TempDir())
	require.True(t, keys.IsNotExist(err))
}

func TestOpenDetectsTampering(t *testing.T) {
	k, err := keys.NewDataKey(make([]byte, 32))
	require.NoError(t, err)
	sealed := k.Seal([]byte("national id 1100200987655"), []byte("sel_A"))
	require.NotContains(t, string(sealed), "1100200987655")

	tests := map[string]func() ([]byte, []byte){
		"other record": func() ([]byte, []byte) { return sealed, []byte("sel_B") },
		"flipped bit": func() ([]byte, []byte) {
			b := append([]byte{}, sealed...)
			b[len(b)-1] ^= 1
			return b, []byte("sel_A")
		},
		"truncated": func() ([]byte, []byte) { return sealed[:10], []byte("sel_A") },
		"empty":     func() ([]byte, []byte) { return nil, []byte("sel_A") },
	}
	for name, mk := range tests {
		t.Run(name, func(t *testing.T) {
			b, aad := mk()
			_, err := k.Open(b, aad)
			require.ErrorIs(t, err, keys.ErrSealed)
		})
	}
	_, err = keys.NewDataKey(make([]byte, 16))
	require.Error(t, err)
}

func TestDataKeyFingerprint(t *testing.T) {
	a := make([]byte, 32)
	b := make([]byte, 32)
	b[0] = 1
	ka, err := keys.NewDataKey(a)
	require.NoError(t, err)
	ka2, err := keys.NewDataKey(append([]byte(nil), a...))
	require.NoError(t, err)
	kb, err := keys.NewDataKey(b)
	require.NoError(t, err)
	require.Len(t, ka.Fingerprint(), 64)
	require.Equal(t, ka.Fingerprint(), ka2.Fingerprint(), "the same key has the same fingerprint")
	require.NotEqual(t, ka.Fingerprint(), kb.Fingerprint(), "another key has another fingerprint")
	require.NotContains(t, ka.Fingerprint(), "0000000000000000", "the fingerprint is not the key")
}
