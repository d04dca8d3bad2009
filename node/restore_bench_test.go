package node_test

// The whole flow of a restore as the agency sees it: from starting the
// restored node until it has reconciled with the federation (every listing
// and order published after the backup back, publishing resumed).
//
//	go test -run x -bench RestoreReconcile -benchtime 1x -count 3 ./node

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/internal/testnet"
	"github.com/imtgt/imtgt-node/node"
)

// BenchmarkRestoreReconcile: TH is backed up, then imports 20,000 listings
// and receives 2,000 orders from MY; TH is restored and started. Reported:
// the reconciliation (start → ready), and its floor, the time MY took to
// pull the same 20,000 records when they were published (the same pull,
// verify, store and index work, without the orders).
func BenchmarkRestoreReconcile(b *testing.B) {
	const listings, orders = 20_000, 2_000
	for range b.N {
		b.StopTimer()
		bn := newBenchNet(b)
		ctx := context.Background()
		backup := filepath.Join(b.TempDir(), "th.db")
		f, err := os.Create(backup)
		require.NoError(b, err)
		_, err = bn.th.Store.Backup(f, nil)
		require.NoError(b, err)
		require.NoError(b, f.Close())

		_, seller := bn.th.ActiveSeller(testnet.THSeller("Hat Yai Durian Co., Ltd.", 4))
		var csv strings.Builder
		csv.WriteString("title,hs_code,price,quantity,ship_from\n")
		for i := range listings {
			fmt.Fprintf(&csv, "ปลาหมึกแห้ง dried squid %d,030749,420.00,30,TH-90\n", i)
		}
		head := func(n *testnet.Node) uint64 { h, _ := n.Store.Heads(ctx); return h["TH"] }
		r := bn.th.DoType("POST", "/v1/listings/import", seller, "text/csv", []byte(csv.String()))
		require.Equal(b, http.StatusOK, r.Status, string(r.Body))
		imported := time.Now()
		target := head(bn.th)
		testnet.Eventually(b, 2*time.Minute, func() bool { return head(bn.my) >= target }, "MY did not catch up")
		floor := time.Since(imported)
		ids := make([]string, orders)
		for i := range ids {
			ids[i] = bn.place(b)
		}
		for _, id := range ids {
			bn.waitReceipt(b, id)
		}
		target = head(bn.th)
		testnet.Eventually(b, time.Minute, func() bool { return head(bn.my) >= target }, "MY did not catch up with the stock records")

		bn.th.Stop()
		_, err = node.Restore(bn.th.Dir, backup, time.Now())
		require.NoError(b, err)
		b.StartTimer()
		start := time.Now()
		bn.th.Start()
		testnet.Eventually(b, 5*time.Minute, func() bool { on, _ := bn.th.Fed.Reconciling(); return !on }, "TH did not reconcile")
		took := time.Since(start)
		b.StopTimer()
		require.Equal(b, target, head(bn.th))
		n := 0
		for _, id := range ids {
			if _, err := bn.th.Store.Order(ctx, id); err == nil {
				n++
			}
		}
		require.Equal(b, orders, n)
		b.ReportMetric(took.Seconds(), "reconcile_s")
		b.ReportMetric(floor.Seconds(), "floor_pull_s")
		b.ReportMetric(took.Seconds()/floor.Seconds(), "ratio")
		b.StartTimer()
	}
}
