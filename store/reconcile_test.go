package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/store"
)

// TestReclaimOwnTombstones: taking back this node's own records after a
// restore, a tombstone deletes the listing at home only if its seller
// deleted it; one of a listing the export rules keep at home leaves it.
func TestReclaimOwnTombstones(t *testing.T) { forEachBackend(t, testReclaimOwnTombstones) }

func testReclaimOwnTombstones(t *testing.T, open func(t *testing.T) *store.DB) {
	ctx := context.Background()
	held := []catalog.Hold{{Rule: "TH-EX-1", Source: "policy", Message: "kept at home"}}
	cases := []struct {
		name     string
		home     []catalog.Hold // the restored copy's holds
		record   catalog.RemoteRecord
		wantKept bool
		wantHold string
	}{
		{"deleted by its seller", nil, catalog.RemoteRecord{DeleteID: "lst_1"}, false, ""},
		{"held by a policy installed after the backup", nil, catalog.RemoteRecord{DeleteID: "lst_1", HeldAtOrigin: true}, true, "restore"},
		{"held at home already (a record of an older binary)", held, catalog.RemoteRecord{DeleteID: "lst_1"}, true, "TH-EX-1"},
		{"upserted", nil, catalog.RemoteRecord{Listing: &catalog.Listing{ID: "lst_1", Origin: "TH", Title: "new title", Version: 2}}, true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := open(t)
			l := &catalog.Listing{ID: "lst_1", Origin: "TH", Title: "durian", Version: 1, Held: c.home}
			require.NoError(t, db.ApplyLocal(ctx, "TH", []catalog.Change{{Listing: l}}, func(first uint64, ch []catalog.Change) ([][]byte, error) {
				return [][]byte{[]byte("record 1")}, nil
			}))
			rec := c.record
			rec.Seq, rec.Raw = 2, []byte("record 2")
			applied, err := db.ReclaimOwn(ctx, "TH", []catalog.RemoteRecord{{Seq: 1, Raw: []byte("record 1")}, rec}, nil)
			require.NoError(t, err)
			require.Len(t, applied, 1, "the record already held is skipped")
			got, ok, err := db.Listing(ctx, "lst_1")
			require.NoError(t, err)
			require.Equal(t, c.wantKept, ok)
			if ok && c.wantHold != "" {
				require.Equal(t, c.wantHold, got.Held[0].Rule)
			}
			heads, err := db.Heads(ctx)
			require.NoError(t, err)
			require.EqualValues(t, 2, heads["TH"], "the log continues with the taken-back record")
			raw, err := db.LogRecord(ctx, "TH", 2)
			require.NoError(t, err)
			require.Equal(t, "record 2", string(raw))
		})
	}
	// A record that leaves a gap is refused whole.
	db := open(t)
	_, err := db.ReclaimOwn(ctx, "TH", []catalog.RemoteRecord{{Seq: 2, Raw: []byte("x"), DeleteID: "lst_1"}}, nil)
	require.ErrorIs(t, err, catalog.ErrLogGap)
}
