package catalog_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/money"
)

// Two catalogs on one store are two replicas sharing a database: each
// reads its own index, which may be behind the other's writes. Neither
// replica's change may be lost.
func TestStaleChangesAreRebuilt(t *testing.T) {
	ctx := context.Background()
	a, db := newCatalog(t)
	b := catalog.New(db, catalog.NewIndex(), catalog.Config{Country: "TH", Currency: "THB"})
	l, err := a.Create(ctx, seller, validInput())
	require.NoError(t, err)
	require.NoError(t, b.Load(ctx)) // b has version 1

	price := money.Wire{Amount: "300.00", Currency: "THB"}
	_, err = a.Update(ctx, seller, l.ID, catalog.Patch{Price: &price}) // version 2, b does not know
	require.NoError(t, err)
	qty := int64(3)
	got, err := b.Update(ctx, seller, l.ID, catalog.Patch{Quantity: &qty}) // built on 1: refused, rebuilt on 2
	require.NoError(t, err)
	require.Equal(t, uint64(3), got.Version)
	require.Equal(t, int64(30000), got.Price.Minor, "a's price change is kept")
	require.Equal(t, int64(3), got.Quantity)
	stored, ok, err := db.Listing(ctx, l.ID)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, uint64(3), stored.Version)
	require.Equal(t, int64(30000), stored.Price.Minor)
	require.Equal(t, int64(3), stored.Quantity)

	// A delete decided on an old version is rebuilt too; a store change
	// built on a version that is gone is refused with ErrStale.
	require.NoError(t, a.Delete(ctx, seller.ID, l.ID))
	_, err = b.Update(ctx, seller, l.ID, catalog.Patch{Quantity: &qty})
	require.ErrorIs(t, err, catalog.ErrNotFound, "b learns the listing is gone")
	_, ok = b.Get(l.ID)
	require.False(t, ok)

	old := *stored
	old.Version = 9
	err = db.ApplyLocal(ctx, "TH", []catalog.Change{{Listing: &old}}, nil)
	require.ErrorIs(t, err, catalog.ErrStale)
}
