package access_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/access"
)

func TestTokens(t *testing.T) {
	tok, hash, err := access.NewToken(access.Seller)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(tok, "imtgt_seller_"))
	require.True(t, access.LooksLikeToken(tok))
	require.Equal(t, hash, access.HashToken(tok))
	require.Len(t, hash, 64)
	require.NotContains(t, hash, tok[len("imtgt_seller_"):], "only the hash is kept")
	other, _, _ := access.NewToken(access.Seller)
	require.NotEqual(t, tok, other)
	for _, bad := range []string{"", "hunter2", "Bearer imtgt_x", "imtgt_" + strings.Repeat("x", 200)} {
		require.False(t, access.LooksLikeToken(bad), bad)
	}
	for _, r := range []access.Role{access.Operator, access.Seller, access.Marketplace, access.Auditor} {
		require.True(t, r.Valid())
	}
	require.False(t, access.Role("admin").Valid())
}
