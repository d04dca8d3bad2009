package catalog

import (
	"context"
	"fmt"
	"sync"

	"github.com/imtgt/imtgt-node/audit"
)

// remoteOrders keeps, per origin, the ranges stored by any pull (or
// ApplyRemote) indexed in the order they were stored: two pulls of one
// origin from two peers store disjoint ranges one after the other, and
// their indexing must follow the same order, or a listing changed in both
// could end with the older state in the index.
type remoteOrders struct {
	mu sync.Mutex
	by map[string]*remoteOrder
}

type remoteOrder struct {
	mu   sync.Mutex // held while a range of the origin is stored
	last *indexJob  // the last range stored, indexed or not
}

// indexJob is the indexing of one stored range: done is closed when it
// has run, err set before.
type indexJob struct {
	done chan struct{}
	err  error
}

func (r *remoteOrders) of(origin string) *remoteOrder {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.by[origin]
	if o == nil {
		o = &remoteOrder{}
		r.by[origin] = o
	}
	return o
}

// storeRemote stores one range of origin's records and starts its
// indexing, which waits for the indexing of the range stored before it.
func (c *Catalog) storeRemote(ctx context.Context, origin string, recs []RemoteRecord, ev *audit.Entry) (int, *indexJob, error) {
	o := c.remote.of(origin)
	o.mu.Lock()
	applied, err := c.store.ApplyRemote(ctx, origin, recs, ev)
	if err != nil {
		o.mu.Unlock()
		return 0, nil, err
	}
	prev, job := o.last, &indexJob{done: make(chan struct{})}
	o.last = job
	o.mu.Unlock()
	ups, dels := finalState(applied)
	go func() {
		defer close(job.done)
		if prev != nil {
			<-prev.done
		}
		job.err = c.reindex(ups, dels)
	}()
	return len(applied), job, nil
}

// RemoteApplier applies the ranges of one origin's log pulled from a peer,
// in order, overlapping the two single-writer steps of each: while range
// N+1 is stored (one transaction and its fsync), range N is indexed. A
// listing still becomes searchable only after it is stored, and ranges are
// indexed in the order they were stored, by this pull or any other of the
// same origin (remoteOrders). Not safe for concurrent use: one pull owns it.
type RemoteApplier struct {
	c      *Catalog
	origin string
	job    *indexJob // the indexing of the last range stored; nil before the first
	err    error     // the first indexing error
}

// RemoteApplier returns an applier of origin's pulled records. Close it to
// wait for the last range's indexing.
func (c *Catalog) RemoteApplier(origin string) (*RemoteApplier, error) {
	if origin == c.cfg.Country {
		return nil, fmt.Errorf("%w: records of this node's own origin %s come only from itself", ErrLogGap, origin)
	}
	return &RemoteApplier{c: c, origin: origin}, nil
}

// Apply stores one range as ApplyRemote does and has it indexed after the
// range before it; it returns once the range is stored, with how many
// records were applied. An indexing error of an earlier range is returned
// here or by Close.
func (a *RemoteApplier) Apply(ctx context.Context, recs []RemoteRecord, ev *audit.Entry) (int, error) {
	if err := a.wait(); err != nil {
		// The previous range is not in the index: stop before storing more
		// (a restart reindexes from the store).
		return 0, err
	}
	n, job, err := a.c.storeRemote(ctx, a.origin, recs, ev)
	if err != nil {
		return 0, err
	}
	a.job = job
	return n, nil
}

// wait waits for the indexing in progress, if any.
func (a *RemoteApplier) wait() error {
	if a.job != nil {
		<-a.job.done
		if a.job.err != nil && a.err == nil {
			a.err = a.job.err
		}
		a.job = nil
	}
	return a.err
}

// Close waits for the last range's indexing and returns the first error.
func (a *RemoteApplier) Close() error { return a.wait() }
