package node

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/access"
	"github.com/imtgt/imtgt-node/internal/pgtest"
	"github.com/imtgt/imtgt-node/internal/tcpproxy"
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

// A database host that stops answering (a partition, a powered-off host:
// nothing refuses, every packet is lost) must not hold search up: a known
// token is answered from memory once a lookup has waited tokenLookup, and
// at once while the database is known to be down.
func TestTokensWhenTheDatabaseDoesNotAnswer(t *testing.T) {
	ctx := context.Background()
	u, err := url.Parse(pgtest.URL(t))
	require.NoError(t, err)
	proxy := tcpproxy.Start(t, u.Host)
	u.Host = proxy.Addr
	db, err := store.OpenURL(ctx, u.String(), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	mkt := access.Principal{Role: access.Marketplace, Subject: "mkt_1"}
	require.NoError(t, db.PutToken(ctx, "known", mkt))
	tk := newTokens(db)
	_, err = tk.Principal(ctx, "known")
	require.NoError(t, err)

	proxy.Cut()
	start := time.Now()
	p, err := tk.Principal(ctx, "known")
	require.NoError(t, err)
	require.Equal(t, "mkt_1", p.Subject)
	require.Less(t, time.Since(start), 5*time.Second, "the lookup waited on a database that does not answer")
	start = time.Now()
	_, err = tk.Principal(ctx, "known")
	require.NoError(t, err)
	require.Less(t, time.Since(start), 500*time.Millisecond, "while the database is down, a known token is answered from memory")
	_, err = tk.Principal(ctx, "unknown")
	require.ErrorIs(t, err, store.ErrUnavailable)
	proxy.Heal()
}
