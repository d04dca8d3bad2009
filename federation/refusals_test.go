package federation

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/audit"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// refusalRecorder is a refusals with an injected clock, collecting the
// entries and log lines it writes.
type refusalRecorder struct {
	r       *refusals
	clock   *fakeClock
	mu      sync.Mutex
	entries []*audit.Entry
	logs    *bytes.Buffer
}

func newRefusalRecorder(interval time.Duration) *refusalRecorder {
	rr := &refusalRecorder{clock: &fakeClock{t: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}, logs: &bytes.Buffer{}}
	log := slog.New(slog.NewTextHandler(rr.logs, nil))
	rr.r = newRefusals(interval, rr.clock.now, log, func(e *audit.Entry) {
		rr.mu.Lock()
		defer rr.mu.Unlock()
		rr.entries = append(rr.entries, e)
	})
	return rr
}

func (rr *refusalRecorder) refuse(peerID, reason, detail string) {
	rr.r.note(reason, &audit.Entry{Kind: audit.Rejection, PeerID: peerID, Reason: reason + ": " + detail}, "refused", "peer", peerID)
}

func (rr *refusalRecorder) got() []*audit.Entry {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return append([]*audit.Entry(nil), rr.entries...)
}

func TestRefusalsAggregate(t *testing.T) {
	type step struct {
		after  time.Duration // clock moves by this first
		peer   string        // refuse this peer ("" : flush instead)
		reason string
		flush  bool // flush(false) after the step; flushAll: flush(true)
		all    bool
	}
	tests := []struct {
		name  string
		steps []step
		// want: per entry written, "peer reason count"
		want []string
	}{
		{"one refusal: one entry at once", []step{{peer: "A", reason: "outsider"}}, []string{"A outsider 1"}},
		{"repeats within the interval wait for the summary", []step{
			{peer: "A", reason: "outsider"}, {after: time.Second, peer: "A", reason: "outsider"}, {after: time.Second, peer: "A", reason: "outsider"},
		}, []string{"A outsider 1"}},
		{"the summary comes once the interval ends, with the count", []step{
			{peer: "A", reason: "outsider"}, {after: time.Second, peer: "A", reason: "outsider"}, {after: time.Second, peer: "A", reason: "outsider"},
			{after: time.Minute, flush: true},
		}, []string{"A outsider 1", "A outsider 2"}},
		{"a refusal after the interval writes the summary itself", []step{
			{peer: "A", reason: "outsider"}, {after: 30 * time.Second, peer: "A", reason: "outsider"}, {after: 31 * time.Second, peer: "A", reason: "outsider"},
		}, []string{"A outsider 1", "A outsider 2"}},
		{"peers and reasons are apart", []step{
			{peer: "A", reason: "outsider"}, {peer: "B", reason: "outsider"}, {peer: "A", reason: "replay"}, {peer: "A", reason: "outsider"},
			{peer: "B", reason: "outsider"}, {after: time.Minute, flush: true},
		}, []string{"A outsider 1", "B outsider 1", "A replay 1", "A outsider 1", "B outsider 1"}},
		{"a quiet interval forgets the peer: the next refusal is a first again", []step{
			{peer: "A", reason: "outsider"}, {after: time.Minute, flush: true}, {after: time.Second, peer: "A", reason: "outsider"},
		}, []string{"A outsider 1", "A outsider 1"}},
		{"close writes what is pending", []step{
			{peer: "A", reason: "outsider"}, {after: time.Second, peer: "A", reason: "outsider"}, {after: time.Second, all: true},
		}, []string{"A outsider 1", "A outsider 1"}},
		{"a flush before the interval ends writes nothing", []step{
			{peer: "A", reason: "outsider"}, {after: time.Second, peer: "A", reason: "outsider"}, {after: 10 * time.Second, flush: true},
		}, []string{"A outsider 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := newRefusalRecorder(time.Minute)
			for _, s := range tt.steps {
				rr.clock.add(s.after)
				switch {
				case s.flush:
					rr.r.flush(false)
				case s.all:
					rr.r.flush(true)
				default:
					rr.refuse(s.peer, s.reason, "from /ip4/127.0.0.1/tcp/"+fmt.Sprint(40000+len(rr.got())))
				}
			}
			var got []string
			for _, e := range rr.got() {
				require.Equal(t, audit.Rejection, e.Kind)
				class, _, _ := strings.Cut(e.Reason, ":")
				got = append(got, fmt.Sprintf("%s %s %d", e.PeerID, class, e.Count))
			}
			require.ElementsMatch(t, tt.want, got)
			require.Equal(t, len(tt.want), strings.Count(rr.logs.String(), "level=WARN"), "one log line per entry:\n%s", rr.logs)
		})
	}
}

func TestRefusalsSummaryNamesCountAndSince(t *testing.T) {
	rr := newRefusalRecorder(time.Minute)
	rr.refuse("A", "outsider", "a peer outside the manifest tried to connect from /ip4/10.0.0.1/tcp/1")
	for i := range 2722 {
		rr.clock.add(3 * time.Millisecond)
		rr.refuse("A", "outsider", fmt.Sprintf("a peer outside the manifest tried to connect from /ip4/10.0.0.1/tcp/%d", i+2))
	}
	rr.clock.add(time.Minute)
	rr.r.flush(false)
	es := rr.got()
	require.Len(t, es, 2)
	require.Equal(t, "outsider: a peer outside the manifest tried to connect from /ip4/10.0.0.1/tcp/1", es[0].Reason)
	require.Equal(t, 2722, es[1].Count)
	require.Equal(t, "outsider: 2722 refusals since 2026-05-01T10:00:00Z; the last: a peer outside the manifest tried to connect from /ip4/10.0.0.1/tcp/2723", es[1].Reason)
	require.Equal(t, "A", es[1].PeerID)
	require.Contains(t, rr.logs.String(), `msg="refused (repeated)" peer=A reason=outsider count=2722 since=2026-05-01T10:00:00.003Z`)
}

// An outsider can make a new peer ID for every dial: the entries stay
// bounded however many IDs it uses.
func TestRefusalsBoundedAcrossPeerIDs(t *testing.T) {
	rr := newRefusalRecorder(time.Minute)
	for i := range 10_000 {
		rr.clock.add(6 * time.Millisecond) // 60 s of dials, 166 a second
		rr.refuse(fmt.Sprintf("peer-%d", i), "outsider", "a peer outside the manifest tried to connect")
		if i%2500 == 0 {
			rr.r.flush(false)
		}
	}
	rr.r.flush(true)
	es := rr.got()
	require.LessOrEqual(t, len(es), 2*(maxRefusalRuns+1))
	total, bucket := 0, 0
	for _, e := range es {
		total += e.Count
		if e.PeerID == "" {
			bucket++
			require.True(t, strings.HasPrefix(e.Reason, "outsider: "), e.Reason)
			require.Contains(t, e.Reason, fmt.Sprintf("more than %d peers refused at once, the last peer-", maxRefusalRuns))
		}
	}
	require.Equal(t, 10_000, total, "every refusal is counted in some entry")
	require.Positive(t, bucket)
	require.LessOrEqual(t, len(rr.r.runs), maxRefusalRuns+1, "memory stays bounded")
}

func TestRetryDelay(t *testing.T) {
	tests := []struct {
		n        int
		ceiling  time.Duration
		r        float64
		min, max time.Duration
	}{
		{1, DefaultDialBackoffMax, 0, 500 * time.Millisecond, 500 * time.Millisecond},
		{1, DefaultDialBackoffMax, 0.999, 999 * time.Millisecond, time.Second},
		{2, DefaultDialBackoffMax, 0, time.Second, time.Second},
		{3, DefaultDialBackoffMax, 0.5, 3 * time.Second, 3 * time.Second},
		{9, DefaultDialBackoffMax, 0.999, 255 * time.Second, 256 * time.Second},
		{10, DefaultDialBackoffMax, 0, 150 * time.Second, 150 * time.Second}, // 512 s capped at 5 min
		{10, DefaultDialBackoffMax, 0.999, 299 * time.Second, 5 * time.Minute},
		{64, DefaultDialBackoffMax, 0.999, 299 * time.Second, 5 * time.Minute}, // no overflow
		{1000, DefaultDialBackoffMax, 0, 150 * time.Second, 150 * time.Second},
		{0, DefaultDialBackoffMax, 0, 500 * time.Millisecond, 500 * time.Millisecond}, // as the first
		{5, 4 * time.Second, 0.999, 3998 * time.Millisecond, 4 * time.Second},         // a shorter ceiling (tests)
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("n=%d,ceiling=%s,r=%v", tt.n, tt.ceiling, tt.r), func(t *testing.T) {
			d := retryDelay(tt.n, tt.ceiling, tt.r)
			require.GreaterOrEqual(t, d, tt.min)
			require.LessOrEqual(t, d, tt.max)
		})
	}
	// The schedule only grows, and the jitter spreads it over [d/2, d].
	prev := time.Duration(0)
	for n := 1; n <= 12; n++ {
		lo, hi := retryDelay(n, DefaultDialBackoffMax, 0), retryDelay(n, DefaultDialBackoffMax, 0.9999)
		require.GreaterOrEqual(t, lo, prev)
		require.InDelta(t, float64(2*lo), float64(hi), float64(time.Millisecond)*100)
		prev = lo
	}
}
