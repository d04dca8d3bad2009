package node

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/access"
	"github.com/imtgt/imtgt-node/internal/pgtest"
	"github.com/imtgt/imtgt-node/store"
)

// While the database is down a replica still knows the tokens it has
// resolved (search answers from memory), and no others.
func TestTokensDuringAnOutage(t *testing.T) {
	ctx := context.Background()
	c := pgtest.StartCluster(t)
	db, err := store.OpenURL(ctx, c.CreateDB(t), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	mkt := access.Principal{Role: access.Marketplace, Subject: "mkt_1"}
	require.NoError(t, db.PutToken(ctx, "known", mkt))
	require.NoError(t, db.PutToken(ctx, "never-used", mkt))
	tk := newTokens(db)
	p, err := tk.Principal(ctx, "known")
	require.NoError(t, err)
	require.Equal(t, "mkt_1", p.Subject)

	c.Stop(t)
	p, err = tk.Principal(ctx, "known")
	require.NoError(t, err, "a token resolved before the outage")
	require.Equal(t, "mkt_1", p.Subject)
	_, err = tk.Principal(ctx, "never-used")
	require.ErrorIs(t, err, store.ErrUnavailable, "a token never resolved here is not guessed")

	c.Start(t)
	_, err = tk.Principal(ctx, "never-used")
	require.NoError(t, err)
}
