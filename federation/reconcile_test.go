package federation

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/store"
)

// TestRewoundNeedsProof: a member that claims to hold more of this node's
// own log than the node does only starts a reconciliation if it shows a
// record this node signed above its head; a bare claim is refused and
// stops nothing.
func TestRewoundNeedsProof(t *testing.T) {
	for _, tt := range []struct {
		name    string
		records func(th identity) [][]byte // what the member serves of TH's log
		claim   uint64
		want    bool
	}{
		{"a bare claim", func(identity) [][]byte { return nil }, 5, false},
		{"records not signed by this node", func(identity) [][]byte {
			return [][]byte{thRecord(t, newIdentity(t, "MY"), 1)}
		}, 1, false},
		{"this node's own records above its head", func(th identity) [][]byte {
			return [][]byte{thRecord(t, th, 1), thRecord(t, th, 2)}
		}, 2, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			th, my := newIdentity(t, "TH"), newIdentity(t, "MY")
			m, raw := testManifest(t, th, my)
			psk, err := NewPSK()
			require.NoError(t, err)
			key, err := ParsePSK(psk)
			require.NoError(t, err)
			db, err := store.Open(filepath.Join(t.TempDir(), "node.db"), store.Options{})
			require.NoError(t, err)
			t.Cleanup(func() { db.Close() })
			var called atomic.Bool
			var cat *catalog.Catalog
			reg := prometheus.NewRegistry()
			svc, err := New(Config{
				Country: "TH", Key: th.key, ListenAddr: th.addr, PSK: key, Manifest: m, ManifestRaw: raw,
				CatalogFunc: func() *catalog.Catalog { return cat },
				Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: reg, SyncInterval: time.Hour,
				Rewound: func(ctx context.Context, country string, theirs, ours uint64) (*Reconcile, error) {
					called.Store(true)
					return nil, nil
				},
			})
			require.NoError(t, err)
			cat = catalog.New(db, catalog.NewIndex(), catalog.Config{Country: "TH", Currency: "THB"})
			require.NoError(t, svc.Start(context.Background()))
			t.Cleanup(func() { svc.Close() })

			peer := rawHost(t, my, psk)
			recs := tt.records(th)
			if recs == nil {
				recs = make([][]byte, tt.claim) // a head with nothing valid behind it
			}
			servePeer(t, peer, my, "TH", recs)
			require.NoError(t, connect(t, peer, th))
			if tt.want {
				require.Eventually(t, called.Load, 5*time.Second, 10*time.Millisecond, "a proven rewind was not noticed")
				return
			}
			require.Eventually(t, func() bool {
				n := 0.0
				for _, r := range []string{"bad_signature", "malformed", "unproven_head"} {
					n += testutil.ToFloat64(svc.metrics.rejected.WithLabelValues(r))
				}
				return n > 0
			}, 5*time.Second, 10*time.Millisecond, "the claim was not refused")
			require.False(t, called.Load(), "an unproven claim started a reconciliation")
		})
	}
}

// thRecord is record seq of TH's log, signed by signer.
func thRecord(t testing.TB, signer identity, seq uint64) []byte {
	t.Helper()
	id := "lst_01THTEST" + strconv.FormatUint(seq, 10)
	rec := &pb.ListingRecord{Origin: "TH", Seq: seq, Op: pb.ListingRecord_OP_UPSERT, ListingId: id, CreatedUnixMs: time.Now().UnixMilli(),
		Listing: &pb.Listing{Id: id, Seller: &pb.SellerProfile{Id: "sel_1", LegalName: "Hat Yai Durian Co., Ltd."}, Title: "Durian " + strconv.FormatUint(seq, 10),
			HsCode: "081060", Price: &pb.Money{Minor: 35000, Currency: "THB"}, Quantity: 5, ShipFrom: "TH-90"}}
	b, err := SealRecord(signer.key, rec)
	require.NoError(t, err)
	return b
}
