package node

import (
	"context"

	"github.com/imtgt/imtgt-node/orders"
)

// issueSweepLoop escalates, every orders.issue_sweep, the after-sale
// issues whose deadline passed (orders.Service.SweepIssues): the buyer
// country's consumer rules acting on their own when a seller did not
// answer in time. It runs with the federation term, so on a node run as
// replicas only the leader sweeps (through its fenced store: a deposed
// leader's late escalation is refused), and each escalation is one order
// write like any other.
func (n *Node) issueSweepLoop(ctx context.Context, ord *orders.Service) {
	tick(ctx, n.Config.Orders.Sweep(), func() {
		if _, err := ord.SweepIssues(ctx); err != nil && ctx.Err() == nil {
			n.log.Error("issue sweep", "err", err)
		}
	})
}

// SweepIssues runs one issue sweep now, through the federation term's
// store as the loop does, and returns how many issues it escalated. It is
// for tests and tools that move the clock (Options.Now) and do not want
// to wait for the next tick. A replica that does not lead sweeps nothing.
func (n *Node) SweepIssues(ctx context.Context) (int, error) {
	if !n.leader.Load() {
		return 0, nil
	}
	ord := n.fedOrders.Load()
	if ord == nil {
		return 0, nil
	}
	return ord.SweepIssues(ctx)
}
