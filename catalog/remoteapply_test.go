package catalog_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/catalog"
)

// The applier indexes ranges in the order it stored them: a listing
// changed or deleted by a later range ends as the later range left it, and
// nothing is searchable before it is stored.
func TestRemoteApplier(t *testing.T) {
	c, db := newCatalog(t)
	ctx := context.Background()
	my := func(seq uint64, id, title string, del bool) catalog.RemoteRecord {
		r := catalog.RemoteRecord{Seq: seq, Raw: []byte{byte(seq)}}
		if del {
			r.DeleteID = id
		} else {
			r.Listing = &catalog.Listing{ID: id, Origin: "MY", Title: title, Version: seq}
		}
		return r
	}
	_, err := c.RemoteApplier("TH")
	require.ErrorIs(t, err, catalog.ErrLogGap, "this node's own origin")
	a, err := c.RemoteApplier("MY")
	require.NoError(t, err)
	ranges := [][]catalog.RemoteRecord{
		{my(1, "lst_a", "first", false), my(2, "lst_b", "kept", false)},
		{my(3, "lst_a", "second", false), my(4, "lst_c", "gone", false)},
		{my(5, "lst_c", "", true), my(6, "lst_a", "third", false)},
	}
	for i, r := range ranges {
		n, err := a.Apply(ctx, r, nil)
		require.NoError(t, err, "range %d", i)
		require.Equal(t, len(r), n)
	}
	require.NoError(t, a.Close())
	got, ok := c.Get("lst_a")
	require.True(t, ok)
	require.Equal(t, "third", got.Title)
	_, ok = c.Get("lst_c")
	require.False(t, ok, "deleted by the last range")
	require.Equal(t, 2, c.Index().Count())
	heads, err := db.Heads(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 6, heads["MY"])

	// A gap is refused before anything of the range is stored or indexed.
	a, err = c.RemoteApplier("MY")
	require.NoError(t, err)
	_, err = a.Apply(ctx, []catalog.RemoteRecord{my(9, "lst_z", "gap", false)}, nil)
	require.ErrorIs(t, err, catalog.ErrLogGap)
	require.NoError(t, a.Close())
	_, ok = c.Get("lst_z")
	require.False(t, ok)
}

// Two pulls of one origin (from two peers) store disjoint ranges one after
// the other; their indexing follows the order of storing, so a listing
// changed in both ends as the later range left it, over many rounds.
func TestRemoteAppliersOfOneOrigin(t *testing.T) {
	c, _ := newCatalog(t)
	ctx := context.Background()
	seq := uint64(0)
	rec := func(title string) catalog.RemoteRecord {
		seq++
		return catalog.RemoteRecord{Seq: seq, Raw: []byte{byte(seq)}, Listing: &catalog.Listing{ID: "lst_x", Origin: "MY", Title: title, Version: seq}}
	}
	a, err := c.RemoteApplier("MY")
	require.NoError(t, err)
	b, err := c.RemoteApplier("MY")
	require.NoError(t, err)
	for i := range 200 {
		pull := a
		if i%2 == 1 {
			pull = b
		}
		title := fmt.Sprintf("version %d", i)
		_, err := pull.Apply(ctx, []catalog.RemoteRecord{rec(title)}, nil)
		require.NoError(t, err)
		// ApplyRemote, the one-range path, joins the same order.
		if i%50 == 0 {
			_, err := c.ApplyRemote(ctx, "MY", []catalog.RemoteRecord{rec(title + " again")}, nil)
			require.NoError(t, err)
			got, ok := c.Get("lst_x")
			require.True(t, ok)
			require.Equal(t, title+" again", got.Title, "ApplyRemote returns once its range is indexed, after the ranges before it")
		}
	}
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
	got, ok := c.Get("lst_x")
	require.True(t, ok)
	require.Equal(t, "version 199", got.Title)
}
