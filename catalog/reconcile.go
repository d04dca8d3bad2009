package catalog

import (
	"context"
	"errors"
	"fmt"

	"github.com/imtgt/imtgt-node/audit"
)

// ErrReconciling is returned for a local change while the node reconciles
// with its peers after a restore: a record published now would reuse a
// sequence number the peers already hold with other content.
var ErrReconciling = errors.New("the node is reconciling with its peers after a restore; it publishes nothing until that is done")

// SetReconciling stops (true) or allows (false) local changes.
func (c *Catalog) SetReconciling(on bool) { c.reconciling.Store(on) }

// Reconciling says whether local changes are stopped for reconciliation.
func (c *Catalog) Reconciling() bool { return c != nil && c.reconciling.Load() }

// Reclaim takes back records of this node's own log that a peer held
// beyond the restored head: they carry this node's signature, which the
// caller checked, and continue the log gap-free. It returns how many were
// new.
func (c *Catalog) Reclaim(ctx context.Context, recs []RemoteRecord, ev *audit.Entry) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	applied, err := c.store.ReclaimOwn(ctx, c.cfg.Country, recs, ev)
	if err != nil {
		return 0, fmt.Errorf("take back own records: %w", err)
	}
	ups, gone := finalState(applied)
	if err := c.reindex(ups, gone); err != nil {
		return 0, err
	}
	return len(applied), nil
}

// LogRecord returns one stored record of origin's log (nil if none).
func (c *Catalog) LogRecord(ctx context.Context, origin string, seq uint64) ([]byte, error) {
	return c.store.LogRecord(ctx, origin, seq)
}
