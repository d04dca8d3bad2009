package federation

// Tests of peers that are refused again and again: an outsider holding the
// leaked swarm key that redials in a tight loop (the node aggregates its
// refusals and keeps serving), a removed member that still dials (its node
// backs off), and a member in backoff that comes back (it syncs at once).
// Real Services on loopback.

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/membership"
	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/store"
)

// recordingNode is a Service like startNode's that keeps the refusals it
// records for the audit log.
type recordingNode struct {
	*testNode
	me      identity
	mu      sync.Mutex
	refused []*audit.Entry
}

func startRecordingNode(t testing.TB, me identity, m *membership.Manifest, raw, psk []byte, adjust func(*Config)) *recordingNode {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "node.db"), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	key, err := ParsePSK(psk)
	require.NoError(t, err)
	rn := &recordingNode{testNode: &testNode{reg: prometheus.NewRegistry()}, me: me}
	cfg := Config{
		Country: me.country, Key: me.key, ListenAddr: me.addr, PSK: key, Manifest: m, ManifestRaw: raw,
		CatalogFunc: func() *catalog.Catalog { return rn.cat },
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: rn.reg, SyncInterval: time.Hour,
		Rejected: func(e *audit.Entry) { rn.mu.Lock(); defer rn.mu.Unlock(); rn.refused = append(rn.refused, e) },
	}
	if adjust != nil {
		adjust(&cfg)
	}
	rn.svc, err = New(cfg)
	require.NoError(t, err)
	currency := map[string]string{"TH": "THB", "MY": "MYR", "ID": "IDR"}[me.country]
	rn.cat = catalog.New(db, catalog.NewIndex(), catalog.Config{Country: me.country, Currency: currency,
		Seal: RecordSealer(me.key, me.country, time.Now, defaultPolicy(t, me.country)), Published: rn.svc.Published})
	require.NoError(t, rn.svc.Start(context.Background()))
	t.Cleanup(func() { rn.svc.Close() })
	return rn
}

// publish creates one listing on the node, which announces it.
func (rn *recordingNode) publish(t testing.TB, title string) string {
	t.Helper()
	in := map[string]catalog.Input{
		"TH": {Title: title, HSCode: "100630", Price: money.Wire{Amount: "265.00", Currency: "THB"}, Quantity: 5, ShipFrom: "TH-84"},
		"MY": {Title: title, HSCode: "090111", Price: money.Wire{Amount: "18.90", Currency: "MYR"}, Quantity: 5, ShipFrom: "MY-07"},
	}[rn.me.country]
	l, err := rn.cat.Create(context.Background(), catalog.SellerProfile{ID: "sel_1", LegalName: "Surat Thani Rice & Coffee Co., Ltd."}, in)
	require.NoError(t, err)
	return l.ID
}

// refusedFrom returns the refusal entries recorded for peer p.
func (rn *recordingNode) refusedFrom(p peer.ID) []*audit.Entry {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	var out []*audit.Entry
	for _, e := range rn.refused {
		if e.PeerID == p.String() {
			out = append(out, e)
		}
	}
	return out
}

func (rn *recordingNode) rejected(reason string) int {
	return int(testutil.ToFloat64(rn.svc.metrics.rejected.WithLabelValues(reason)))
}

func eventually(t testing.TB, within time.Duration, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, within, 10*time.Millisecond, msg)
}

// TestOutsiderRedialFloodIsAggregated: an outsider with the leaked swarm
// key redials TH as fast as it can. TH refuses each attempt after the
// handshake, counts each in its metrics, but writes one audit entry and
// one log line at the first and then one summary per RefusalInterval with
// the count; meanwhile TH's listings keep reaching MY promptly. The
// interval is shortened to 1 s so that a short flood crosses several; the
// entries are then bounded by 1 + floodFor/interval (+1 for the rounding
// of the flush), which for the default interval (1 minute) and a 60 s
// flood is 3 (cmd/imtgt-node's process test runs that case).
func TestOutsiderRedialFloodIsAggregated(t *testing.T) {
	const floodFor, interval = 5 * time.Second, time.Second
	th, my, outsider := newIdentity(t, "TH"), newIdentity(t, "MY"), newIdentity(t, "MY")
	m, raw := testManifest(t, th, my)
	psk, err := NewPSK()
	require.NoError(t, err)
	thNode := startRecordingNode(t, th, m, raw, psk, func(c *Config) { c.RefusalInterval = interval })
	myNode := startRecordingNode(t, my, m, raw, psk, nil)
	first := thNode.publish(t, "ข้าวหอมมะลิ before the flood")
	eventually(t, 10*time.Second, func() bool { _, ok := myNode.cat.Get(first); return ok }, "MY did not sync before the flood")

	attacker := rawHost(t, outsider, psk)
	ctx, cancel := context.WithTimeout(context.Background(), floodFor)
	defer cancel()
	var dials int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sw := attacker.Network().(*swarm.Swarm)
		for ctx.Err() == nil {
			_ = connect(t, attacker, th) // refused by TH's gater either way
			attacker.Network().ClosePeer(th.id)
			sw.Backoff().Clear(th.id) // a hostile dialler ignores backoff
			dials++
		}
	}()

	// TH keeps serving: what it publishes during the flood reaches MY.
	var lat []time.Duration
	for ctx.Err() == nil {
		start := time.Now()
		id := thNode.publish(t, "ทุเรียน during the flood")
		eventually(t, 5*time.Second, func() bool { _, ok := myNode.cat.Get(id); return ok }, "MY did not get a listing published during the flood")
		lat = append(lat, time.Since(start))
	}
	wg.Wait()

	refusals := thNode.rejected("outsider")
	require.Greater(t, refusals, 50, "the flood was not a flood (%d dials)", dials)
	// Every refusal is counted in some entry, once the last summary is out.
	eventually(t, 3*interval, func() bool {
		n := 0
		for _, e := range thNode.refusedFrom(outsider.id) {
			n += e.Count
		}
		return n == refusals
	}, "the entries do not count every refusal")
	es := thNode.refusedFrom(outsider.id)
	maxEntries := 1 + int(floodFor/interval) + 2
	require.LessOrEqual(t, len(es), maxEntries, "%d refusals cost %d entries", refusals, len(es))
	require.Equal(t, 1, es[0].Count)
	require.Contains(t, es[0].Reason, "outsider: a peer outside the manifest tried to connect from /ip4/127.0.0.1/tcp/")
	require.Contains(t, es[len(es)-1].Reason, "refusals since")
	require.NotContains(t, thNode.svc.Host().Network().Peers(), outsider.id)

	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("%d dials in %s: %d refusals, %d audit entries; %d listings synced meanwhile, publish-to-peer p50 %s, max %s",
		dials, floodFor, refusals, len(es), len(lat), lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
}

// TestRemovedMemberBacksOff: ID's node still runs a manifest that names
// TH, but TH's no longer names ID. TH refuses every connection from ID
// after the handshake; ID's worker must back off exponentially instead of
// redialling at once on each connection event (it used to redial 135-300
// times a second).
func TestRemovedMemberBacksOff(t *testing.T) {
	t.Parallel()
	th, my, id := newIdentity(t, "TH"), newIdentity(t, "MY"), newIdentity(t, "ID")
	psk, err := NewPSK()
	require.NoError(t, err)
	mTH, rawTH := testManifest(t, th, my)
	mID, rawID := testManifest(t, th, my, id)
	thNode := startRecordingNode(t, th, mTH, rawTH, psk, nil)
	start := time.Now()
	idNode := startRecordingNode(t, id, mID, rawID, psk, nil)

	const watch = 8 * time.Second
	eventually(t, 5*time.Second, func() bool { return thNode.rejected("outsider") > 0 }, "ID never dialled TH")
	time.Sleep(time.Until(start.Add(watch))) // the window measured, not a synchronisation
	// Rounds at 0, then after [0.5, 1], [1, 2], [2, 4] s: at most 4 in 8 s
	// (the window gets a little slack for the start-up).
	got := thNode.rejected("outsider")
	require.LessOrEqual(t, got, 6, "ID dialled TH %d times in %s", got, watch)
	require.LessOrEqual(t, len(thNode.refusedFrom(id.id)), 2, "each refusal of ID was an audit entry")
	fails := int(testutil.ToFloat64(idNode.svc.metrics.syncs.WithLabelValues("error")))
	t.Logf("TH refused ID %d times in %s; ID's rounds failed %d times (with MY, down, too)", got, watch, fails)
}

// TestMemberInBackoffSyncsWhenItReturns: TH's worker for MY backs off
// while MY is down; when MY comes back, its dial reaches TH and TH syncs
// with it at once, not when its backoff ends.
func TestMemberInBackoffSyncsWhenItReturns(t *testing.T) {
	t.Parallel()
	th, my := newIdentity(t, "TH"), newIdentity(t, "MY")
	m, raw := testManifest(t, th, my)
	psk, err := NewPSK()
	require.NoError(t, err)
	thNode := startRecordingNode(t, th, m, raw, psk, nil)
	// Four failed rounds: the next waits retryDelay(4), 4 to 8 s.
	eventually(t, 15*time.Second, func() bool {
		return testutil.ToFloat64(thNode.svc.metrics.syncs.WithLabelValues("error")) >= 4
	}, "TH's rounds with MY (down) did not fail")
	back := time.Now()
	myNode := startRecordingNode(t, my, m, raw, psk, nil)
	id := myNode.publish(t, "Kopi putih Ipoh")
	eventually(t, 3*time.Second, func() bool { _, ok := thNode.cat.Get(id); return ok }, "TH waited out its backoff")
	t.Logf("TH synced with MY %s after MY came back", time.Since(back).Round(time.Millisecond))
}
