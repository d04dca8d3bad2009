package federation

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/imtgt/imtgt-node/audit"
)

// DefaultRefusalInterval is how often repeated refusals of one peer for
// one reason are summarised, in the log and in the audit log.
const DefaultRefusalInterval = time.Minute

// maxRefusalRuns bounds how many (peer, reason) pairs the aggregator
// follows at once. An outsider with the leaked swarm key can make a new
// peer ID for every dial; past this many, refusals share one bucket per
// reason, so the memory held and the entries written stay bounded
// whatever the attacker does (at most 2·(maxRefusalRuns+reasons) entries
// per interval).
const maxRefusalRuns = 32

// refusals aggregates the refusals of a peer that is refused again and
// again (a removed member's node that still dials, an outsider holding the
// leaked swarm key, a member sending stale messages): the first refusal of
// a (peer, reason) goes to the log and the audit log at once, with its
// details; the ones after it are counted, and at most one summary per
// interval records how many there were. A refused dial used to cost a WARN
// line and an audit entry each, and a dialler in a tight loop made
// thousands a second.
type refusals struct {
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger
	write    func(*audit.Entry) // queues the audit entry; must not block

	mu      sync.Mutex
	runs    map[refusalKey]*refusalRun
	tracked int // runs of a named peer (the overflow buckets are not counted)
}

// refusalKey is what refusals are aggregated by: the peer ID ("" for the
// bucket of peers beyond maxRefusalRuns) and the reason class (outsider,
// replay, bad_signature, ...), never the detail, which may name a port
// that changes with every dial.
type refusalKey struct {
	peer, reason string
}

// refusalRun is one (peer, reason) being followed.
type refusalRun struct {
	start time.Time   // the current interval began
	since time.Time   // the first refusal the next summary counts
	n     int         // refusals since the last entry
	last  audit.Entry // the latest refusal, the summary's template
	msg   string      // its log message and attributes
	attrs []any
}

// refusalOut is one line and entry to emit, outside the lock.
type refusalOut struct {
	e     *audit.Entry
	msg   string
	attrs []any
}

func newRefusals(interval time.Duration, now func() time.Time, log *slog.Logger, write func(*audit.Entry)) *refusals {
	if interval <= 0 {
		interval = DefaultRefusalInterval
	}
	return &refusals{interval: interval, now: now, log: log, write: write, runs: make(map[refusalKey]*refusalRun)}
}

// note records one refusal of e.PeerID for reason. e is the full audit
// entry of this refusal (its Reason starts with reason); msg and attrs
// are the WARN line.
func (r *refusals) note(reason string, e *audit.Entry, msg string, attrs ...any) {
	now := r.now()
	k := refusalKey{peer: e.PeerID, reason: reason}
	var out []refusalOut
	r.mu.Lock()
	run := r.runs[k]
	if run == nil && k.peer != "" && r.tracked >= maxRefusalRuns {
		k.peer = "" // too many peers at once: count it in the bucket
		run = r.runs[k]
		e = overflowEntry(e)
	}
	if run == nil {
		run = &refusalRun{start: now}
		r.runs[k] = run
		if k.peer != "" {
			r.tracked++
		}
		first := *e
		first.Count = 1
		out = append(out, refusalOut{e: &first, msg: msg, attrs: append(slices.Clip(attrs), "reason", reason)})
	} else {
		if run.n == 0 {
			run.since = now
		}
		run.n++
		run.last, run.msg, run.attrs = *e, msg, attrs
		if now.Sub(run.start) >= r.interval {
			out = append(out, run.summary(reason))
			run.start = now
		}
	}
	r.mu.Unlock()
	r.emit(out)
}

// flush writes the summary of every run whose interval has ended and
// forgets the runs that were quiet for a whole interval, so a peer refused
// again after a quiet spell gets a detailed first entry again. all writes
// every pending summary now (Close).
func (r *refusals) flush(all bool) {
	now := r.now()
	var out []refusalOut
	r.mu.Lock()
	for k, run := range r.runs {
		if !all && now.Sub(run.start) < r.interval {
			continue
		}
		if run.n > 0 {
			out = append(out, run.summary(k.reason))
			run.start = now
			continue
		}
		delete(r.runs, k)
		if k.peer != "" {
			r.tracked--
		}
	}
	r.mu.Unlock()
	r.emit(out)
}

// run flushes every quarter interval until ctx ends, then writes what is
// pending.
func (r *refusals) run(ctx context.Context) {
	t := time.NewTicker(r.interval / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			r.flush(true)
			return
		case <-t.C:
			r.flush(false)
		}
	}
}

// summary is the entry and line for the refusals counted since the last
// one, and resets the count. Called with the lock held.
func (run *refusalRun) summary(reason string) refusalOut {
	e := run.last
	e.Count = run.n
	detail := strings.TrimPrefix(e.Reason, reason+": ")
	e.Reason = fmt.Sprintf("%s: %d refusals since %s; the last: %s", reason, run.n, run.since.UTC().Format(time.RFC3339), detail)
	attrs := append(slices.Clip(run.attrs), "reason", reason, "count", run.n, "since", run.since.UTC())
	run.n = 0
	return refusalOut{e: &e, msg: run.msg + " (repeated)", attrs: attrs}
}

func (r *refusals) emit(out []refusalOut) {
	for _, o := range out {
		r.log.Warn(o.msg, o.attrs...)
		r.write(o.e)
	}
}

// overflowEntry is e counted in the bucket of peers beyond
// maxRefusalRuns: no peer of its own, the peer named in the reason.
func overflowEntry(e *audit.Entry) *audit.Entry {
	o := *e
	o.Peer, o.PeerID = "", ""
	if class, rest, ok := strings.Cut(o.Reason, ": "); ok {
		o.Reason = fmt.Sprintf("%s: more than %d peers refused at once, the last %s: %s", class, maxRefusalRuns, e.PeerID, rest)
	} else {
		o.Reason = fmt.Sprintf("more than %d peers refused at once, the last %s: %s", maxRefusalRuns, e.PeerID, o.Reason)
	}
	return &o
}
