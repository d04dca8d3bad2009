package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/federation"
	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/store"
)

// reconcileSkew is how far before the restored store's last entry
// recovery starts asking for orders: clocks of members differ, and an
// order asked for twice is stored once.
const reconcileSkew = 5 * time.Minute

// reconcileConfig is the federation's side of a pending reconciliation
// (nil if none): after a restore the node takes back its own catalog
// records from the peers and recovers the orders they placed with it,
// and publishes nothing until every member is done.
func (n *Node) reconcileConfig(pending *store.Reconcile) *federation.Reconcile {
	if pending == nil {
		return nil
	}
	return &federation.Reconcile{
		Since: pending.Since,
		Recover: func(ctx context.Context, from string, recs []*pb.RecoveredOrder) (int, int, int, error) {
			o := n.fedOrders.Load()
			if o == nil {
				return 0, 0, 0, fmt.Errorf("the order service is not up yet")
			}
			res, err := o.Recover(ctx, from, recs)
			return res.Restored, res.FastForwards, res.Unchanged, err
		},
		PeerDone: func(ctx context.Context, country string, p federation.ReconcileProgress) error {
			return n.Store.AppendAudit(ctx, &audit.Entry{Kind: audit.AdminReconcile, Peer: country, Actor: "node", Count: p.Restored,
				Reason: fmt.Sprintf("reconciled with %s after a restore: %d own catalog records taken back; orders: %d stored again, %d brought up to date, %d already held",
					country, p.Reclaimed, p.Restored, p.Forwarded, p.Unchanged)})
		},
		Done: n.finishReconcile,
	}
}

// rewound marks the node for reconciliation when a member holds more of
// its own catalog log than it does: its store was rewound without
// "restore" (a backup copied by hand, a disk snapshot rolled back). Local
// changes stop at once; orders are asked for from the start, since when
// the store was rewound to is unknown (recovery is idempotent).
func (n *Node) rewound(ctx context.Context, country string, theirs, ours uint64) (*federation.Reconcile, error) {
	c := n.fedCatalog.Load()
	if c == nil {
		return nil, nil
	}
	c.SetReconciling(true)
	r := store.Reconcile{Started: time.Now().UTC(),
		Reason: fmt.Sprintf("this node's catalog log was rewound without a restore: %s holds it up to record %d, this node up to %d", country, theirs, ours)}
	if err := n.termStore().SetReconcile(r, &audit.Entry{Kind: audit.AdminReconcile, Peer: country, Actor: "node",
		Reason: r.Reason + "; the node reconciles with every member before it publishes again"}); err != nil {
		return nil, err
	}
	return n.reconcileConfig(&r), nil
}

// finishReconcile ends a reconciliation: the store forgets it, publishing
// resumes, and the export rules are applied to what was taken back.
func (n *Node) finishReconcile(ctx context.Context) error {
	if err := n.termStore().FinishReconcile(ctx, &audit.Entry{Kind: audit.AdminReconcile, Actor: "node",
		Reason: "reconciliation after the restore done with every member; publishing resumes"}); err != nil {
		return err
	}
	c := n.fedCatalog.Load()
	if c == nil {
		return nil
	}
	c.SetReconciling(false)
	if changed, err := c.Reexport(ctx); err != nil {
		// The reconciliation is over and on record; the rules apply again
		// at the next start or policy install.
		n.log.Error("reconciliation done, but re-applying the export rules failed", "err", err)
	} else if changed > 0 {
		n.log.Info("export rules re-applied", "listings_changed", changed)
	}
	return nil
}

// ownReceipt opens a receipt and checks this node signed it.
func (n *Node) ownReceipt(raw []byte) (*pb.Receipt, error) {
	rc, signer, err := federation.OpenReceipt(raw)
	if err != nil {
		return nil, err
	}
	self, err := peer.IDFromPrivateKey(n.p2pKey)
	if err != nil {
		return nil, err
	}
	if signer != self {
		return nil, fmt.Errorf("signed by %s, not by this node", signer)
	}
	return rc, nil
}

// reconcileCheck is the readiness check of a pending reconciliation.
func (n *Node) reconcileCheck() error {
	if msg := n.Fed.OwnLogForked(); msg != "" {
		return errors.New(msg)
	}
	on, by := n.Fed.Reconciling()
	if !on {
		return nil
	}
	waiting := 0
	for _, p := range by {
		if p.Phase != "done" {
			waiting++
		}
	}
	if _, raw := n.Fed.Manifest(); raw == nil {
		return fmt.Errorf("reconciling after a restore: install the federation manifest (imtgt-node federation install); nothing is published until every member is reconciled")
	}
	return fmt.Errorf("reconciling after a restore: %d of %d members still to reconcile (GET /v1/peers shows each); nothing is published until then", waiting, len(by))
}
