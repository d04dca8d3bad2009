package catalog_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/catalog"
)

func importRows(t *testing.T, n int, title string) ([]catalog.Row, []catalog.RowError) {
	t.Helper()
	var b strings.Builder
	b.WriteString("title,hs_code,price,quantity,ship_from\n")
	for i := range n {
		fmt.Fprintf(&b, "%s %d,100630,265.00,10,TH-84\n", title, i)
	}
	b.WriteString("bad row,100630,265.00,lots,TH-84\n")
	rows, bad, err := catalog.ParseImport(strings.NewReader(b.String()), catalog.FormatCSV, "THB")
	require.NoError(t, err)
	return rows, bad
}

func TestImportOnceReplaysAndRefusesAnotherBody(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t)
	rows, bad := importRows(t, 50, "rice")

	first, replayed, err := c.ImportOnce(ctx, seller, rows, bad, "import-1")
	require.NoError(t, err)
	require.False(t, replayed)
	require.Equal(t, 50, first.Imported)
	require.Equal(t, 1, first.Failed)

	again, replayed, err := c.ImportOnce(ctx, seller, rows, bad, "import-1")
	require.NoError(t, err)
	require.True(t, replayed)
	require.Equal(t, first, again, "a retry gets the first report, IDs and errors")
	require.Len(t, c.BySeller(seller.ID), 50, "a retry stores nothing")

	other, _ := importRows(t, 50, "coffee")
	_, _, err = c.ImportOnce(ctx, seller, other, bad, "import-1")
	require.ErrorIs(t, err, catalog.ErrIdempotency)
	_, _, err = c.CreateOnce(ctx, seller, validInput(), "import-1")
	require.ErrorIs(t, err, catalog.ErrIdempotency, "a create is not the import that used the key")
	require.Len(t, c.BySeller(seller.ID), 50)

	// Keys are the seller's: another seller's same key is its own request.
	otherSeller := seller
	otherSeller.ID = "sel_B"
	rep, replayed, err := c.ImportOnce(ctx, otherSeller, rows, bad, "import-1")
	require.NoError(t, err)
	require.False(t, replayed)
	require.Equal(t, 50, rep.Imported)
	require.NotEqual(t, first.IDs, rep.IDs)

	// Without a key, the same rows are a new import.
	rep, err = c.Import(ctx, seller, rows, bad)
	require.NoError(t, err)
	require.Equal(t, 50, rep.Imported)
	require.Len(t, c.BySeller(seller.ID), 100)
}

func TestImportOnceAllRowsBadKeepsTheReport(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t)
	_, bad := importRows(t, 0, "x")
	rep, replayed, err := c.ImportOnce(ctx, seller, nil, bad, "k")
	require.NoError(t, err)
	require.False(t, replayed)
	require.Equal(t, 0, rep.Imported)
	again, replayed, err := c.ImportOnce(ctx, seller, nil, bad, "k")
	require.NoError(t, err)
	require.True(t, replayed)
	require.Equal(t, rep, again)
}

func TestCreateOnceConcurrentRetriesStoreOneListing(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t)
	const n = 8
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			l, _, err := c.CreateOnce(ctx, seller, validInput(), "create-1")
			require.NoError(t, err)
			ids[i] = l.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		require.Equal(t, ids[0], id, "every retry answers the one listing")
	}
	require.Len(t, c.BySeller(seller.ID), 1)

	in := validInput()
	in.Title = "another title"
	_, _, err := c.CreateOnce(ctx, seller, in, "create-1")
	require.ErrorIs(t, err, catalog.ErrIdempotency)
}

func TestListingKeysSurviveReopenAndArePruned(t *testing.T) {
	ctx := context.Background()
	c, db := newCatalog(t)
	l, _, err := c.CreateOnce(ctx, seller, validInput(), "k1")
	require.NoError(t, err)

	// A catalog over the same store (a restarted node) still knows the key.
	c2 := catalog.New(db, catalog.NewIndex(), catalog.Config{Country: "TH", Currency: "THB"})
	require.NoError(t, c2.Load(ctx))
	again, replayed, err := c2.CreateOnce(ctx, seller, validInput(), "k1")
	require.NoError(t, err)
	require.True(t, replayed)
	require.Equal(t, l.ID, again.ID)

	n, err := db.PruneListingKeys(ctx, time.Now().Add(-catalog.KeyRetention))
	require.NoError(t, err)
	require.Zero(t, n, "a fresh key is kept")
	n, err = db.PruneListingKeys(ctx, time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, replayed, err = c2.CreateOnce(ctx, seller, validInput(), "k1")
	require.NoError(t, err)
	require.False(t, replayed, "a forgotten key starts a new request")
	require.Len(t, c2.BySeller(seller.ID), 2)
}
