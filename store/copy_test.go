package store_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/keys"
	"github.com/imtgt/imtgt-node/orders"
	"github.com/imtgt/imtgt-node/store"
)

// copyTargets are the stores a copy is tested into: a new bbolt file
// here; the PostgreSQL conformance adds a database.
var copyTargets = map[string]func(t *testing.T) *store.DB{
	"bbolt": func(t *testing.T) *store.DB { return mustOpen(t) },
}

func TestCopy(t *testing.T) {
	ctx := context.Background()
	key, err := keys.NewDataKey(make([]byte, 32))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "src.db")
	filledStore(t, path, 2500, key)
	src, err := store.Open(path, store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { src.Close() })
	// An outbox row: its bucket's sequence must come along, or the next
	// row would reuse a number the receiver has already seen.
	_, _, err = src.PlaceOrders(ctx, "mkt_1", "k1", []byte("h"), []*orders.Order{{ID: "ord_1", SellerCountry: "MY"}},
		[]orders.OutboxRow{{Dest: "MY", OrderID: "ord_1", Payload: []byte("payload")}})
	require.NoError(t, err)
	srcAudit, srcHash, err := src.AuditHead(ctx)
	require.NoError(t, err)

	for name, open := range copyTargets {
		t.Run(name, func(t *testing.T) {
			dst := open(t)
			moved := &audit.Entry{Kind: audit.AdminStore, Actor: "operator", Reason: "store moved"}
			r, err := store.Copy(ctx, dst, src, moved)
			require.NoError(t, err)
			require.Equal(t, 2500, r.Keys["listings"])
			require.Equal(t, 2500, r.Keys["log/TH"])
			// The copy's own entry, committed with it, continues src's chain.
			require.ErrorContains(t, store.Compare(ctx, dst, src), "bucket audit")
			seq, hash, err := dst.AuditHead(ctx)
			require.NoError(t, err)
			require.Equal(t, srcAudit+1, seq)
			require.Equal(t, moved.Hash, hash)
			require.Equal(t, srcHash, moved.Prev)
			var last *audit.Entry
			require.NoError(t, dst.AuditScan(ctx, seq, func(e *audit.Entry) error { last = e; return nil }))
			require.Equal(t, audit.AdminStore, last.Kind)
			meta, err := dst.NodeMeta()
			require.NoError(t, err)
			require.Equal(t, "TH", meta.Country)
			require.NoError(t, dst.VerifyDataKey(key.Fingerprint(), key))
			// The next outbox row continues the sequence on both.
			_, _, err = dst.PlaceOrders(ctx, "mkt_1", "k2", []byte("h2"), []*orders.Order{{ID: "ord_2", SellerCountry: "MY"}},
				[]orders.OutboxRow{{Dest: "MY", OrderID: "ord_2", Payload: []byte("p2")}})
			require.NoError(t, err)
			rows, err := dst.Outbox(ctx)
			require.NoError(t, err)
			require.Len(t, rows, 2)
			require.Equal(t, []uint64{1, 2}, []uint64{rows[0].Seq, rows[1].Seq})

			// A second copy into the same store is refused and changes
			// nothing, its audit entry included.
			_, err = store.Copy(ctx, dst, src, &audit.Entry{Kind: audit.AdminStore, Reason: "again"})
			require.ErrorIs(t, err, store.ErrNotEmpty)
			seq2, _, err := dst.AuditHead(ctx)
			require.NoError(t, err)
			require.Equal(t, seq, seq2)
			rows, err = dst.Outbox(ctx)
			require.NoError(t, err)
			require.Len(t, rows, 2)
		})
	}
}

func TestCompareNamesTheDifference(t *testing.T) {
	ctx := context.Background()
	a, b := mustOpen(t), mustOpen(t)
	require.NoError(t, store.Compare(ctx, a, b))
	require.NoError(t, a.SetNodeMeta(store.NodeMeta{Country: "TH", NodePublicKey: strings.Repeat("ab", 32), CreatedAt: time.Unix(1, 0)}))
	err := store.Compare(ctx, a, b)
	require.ErrorContains(t, err, `bucket meta: key "node"`)
}

func TestCopyCancelledWritesNothing(t *testing.T) {
	key, err := keys.NewDataKey(make([]byte, 32))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "src.db")
	filledStore(t, path, 100, key)
	src, err := store.Open(path, store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { src.Close() })
	dst := mustOpen(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = store.Copy(ctx, dst, src)
	require.ErrorIs(t, err, context.Canceled)
	_, err = dst.NodeMeta()
	require.ErrorIs(t, err, store.ErrNotInitialised)
	ls, err := dst.Listings(context.Background())
	require.NoError(t, err)
	require.Empty(t, ls)
}
