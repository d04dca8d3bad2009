package catalog

import (
	"context"
	"fmt"

	"github.com/imtgt/imtgt-node/audit"
)

// RemoteApplier applies the ranges of one origin's log pulled from a peer,
// in order, overlapping the two single-writer steps of each: while range
// N+1 is stored (one transaction and its fsync), range N is indexed. A
// listing still becomes searchable only after it is stored, and ranges are
// indexed in the order they were stored. Not safe for concurrent use: one
// pull owns it.
type RemoteApplier struct {
	c      *Catalog
	origin string
	done   chan error // the indexing of the last stored range; nil before the first
	err    error      // the first indexing error
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
	applied, err := a.c.store.ApplyRemote(ctx, a.origin, recs, ev)
	if err != nil {
		return 0, err
	}
	ups, dels := finalState(applied)
	done := make(chan error, 1)
	go func() { done <- a.c.reindex(ups, dels) }()
	a.done = done
	return len(applied), nil
}

// wait waits for the indexing in progress, if any.
func (a *RemoteApplier) wait() error {
	if a.done != nil {
		if err := <-a.done; err != nil && a.err == nil {
			a.err = err
		}
		a.done = nil
	}
	return a.err
}

// Close waits for the last range's indexing and returns the first error.
func (a *RemoteApplier) Close() error { return a.wait() }
