package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/pnet"

	"github.com/imtgt/imtgt-node/federation"
	"github.com/imtgt/imtgt-node/membership"
	"github.com/imtgt/imtgt-node/store"
)

// A node whose store is a PostgreSQL database may run as several
// replicas. Every replica serves the whole HTTP API and keeps its memory
// (search index, policy, manifest, reconciling gate) in step with the
// database through its change feed; one of them, the holder of the
// federation lease, runs the federation: the libp2p host, sync, the order
// relay and the audit checkpoints. A bbolt node is always its own leader.
const (
	leaseName = "federation"
	// LeaseTTL is how long the database keeps the lease after a renewal.
	LeaseTTL = 4 * time.Second
	// leaseMargin is the time a leader keeps to stop its term before the
	// database lets another replica take the lease.
	leaseMargin = time.Second
	// leaseTry is how often a follower tries to take the lease.
	leaseTry = 500 * time.Millisecond
	// leaseRenew is how often the leader renews it.
	leaseRenew = time.Second
	// feedPoll is the change feed's safety net when no notice arrives.
	feedPoll = time.Second
	// feedBatch is the most changes read at once.
	feedBatch = 1000
	// changesKept is how long the leader keeps the change feed's rows.
	changesKept = 10 * time.Minute
)

// sharedStore is what a replica needs of a store that other replicas
// share (store.DB on PostgreSQL; see sharedOf).
type sharedStore interface {
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (epoch uint64, ok bool, err error)
	RenewLease(ctx context.Context, name, holder string, epoch uint64, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string, epoch uint64) error
	ChangesHead(ctx context.Context) (uint64, error)
	Changes(ctx context.Context, after uint64, limit int) ([]store.Changed, error)
	ChangesFloor(ctx context.Context) (uint64, error)
	PruneChanges(ctx context.Context, before time.Time) (int, error)
	Listen(ctx context.Context, fn func(seq uint64)) error
	Ping(ctx context.Context) error
	// Fenced is the view of the store the leader's term writes through.
	Fenced(name, holder string, epoch uint64) *store.DB
}

// sharedOf returns db's replica side, or nil for a store no other replica
// shares (bbolt).
func sharedOf(db *store.DB) sharedStore {
	if !db.Shared() {
		return nil
	}
	return db
}

// Role is "leader" or "follower".
func (n *Node) Role() string {
	if n.leader.Load() {
		return "leader"
	}
	return "follower"
}

// holderID is a random ID of this replica process.
func holderID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// leaseClock tracks the leader's own deadline: the term must be stopped
// before the database can let the lease go to another replica. The
// database extends the lease to (its clock at the renewal) + TTL, which
// is no earlier than the local start of that renewal call + TTL; so the
// local deadline is the start of the last successful renewal, on the
// monotonic clock, + TTL − margin, where margin is what stopping the term
// may take.
type leaseClock struct {
	ttl, margin time.Duration
	deadline    time.Time
}

// renewed records a successful acquire or renewal whose call started at
// start.
func (c *leaseClock) renewed(start time.Time) { c.deadline = start.Add(c.ttl - c.margin) }

// expired says whether the term must stop now.
func (c *leaseClock) expired(now time.Time) bool { return !now.Before(c.deadline) }

// leaderLoop tries to take the federation lease until ctx ends, and runs a
// federation term while it holds it.
func (n *Node) leaderLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := n.leadable(); err != nil {
			if prev := n.leadErr.Swap(&err); prev == nil || (*prev).Error() != err.Error() {
				n.log.Error("federation: this replica cannot lead, so it does not take the lease", "err", err)
			}
			t.Reset(leaseTry)
			continue
		}
		n.leadErr.Store(nil)
		start := time.Now()
		actx, cancel := context.WithTimeout(ctx, leaseTry)
		epoch, ok, err := n.shared.AcquireLease(actx, leaseName, n.holder, LeaseTTL)
		cancel()
		if err != nil && ctx.Err() == nil {
			n.log.Debug("federation lease", "err", err)
		}
		if ok && err == nil {
			n.lead(ctx, epoch, start)
		}
		t.Reset(leaseTry)
	}
}

// termStore is the store the federation's own writes go through: the
// term's fenced view on a shared store, so that a leader that lost the
// lease (paused past it, say) writes nothing; Store otherwise.
func (n *Node) termStore() *store.DB {
	if db := n.fedStore.Load(); db != nil {
		return db
	}
	return n.Store
}

// leadable says why this replica could not run a federation term if it
// took the lease: a manifest is installed but the federation key is
// neither in its directory nor in the store. Taking the lease anyway
// would keep the country out of the federation while a replica that can
// lead waits as a follower.
func (n *Node) leadable() error {
	n.feedErrMu.Lock()
	failed := n.feedErrs["manifest"]
	n.feedErrMu.Unlock()
	if failed != nil {
		return fmt.Errorf("the manifest another replica installed does not apply here, so this replica would federate with the old membership: %w", failed)
	}
	if m, _ := n.Fed.Manifest(); m == nil || n.Fed.HasKey() {
		return nil
	}
	if err := n.reloadManifest(); err != nil { // the key may have come through the store
		return err
	}
	if n.Fed.HasKey() {
		return nil
	}
	b, err := loadPSK(n.Dir, n.Store, n.Keys.Data)
	if err != nil {
		return err
	}
	if b == nil {
		return fmt.Errorf("a manifest is installed but the federation key %s is missing on this replica (and not in the store): copy it from the replica that installed the manifest, or install the manifest again through this one",
			filepath.Join(n.Dir, KeysDir, PSKFile))
	}
	psk, err := federation.ParsePSK(b)
	if err != nil {
		return err
	}
	n.installMu.Lock() // no older manifest over one a catch-up just applied
	defer n.installMu.Unlock()
	m, raw := n.Fed.Manifest()
	return n.Fed.Install(m, raw, psk)
}

// lead runs one federation term under the lease at epoch, acquired by a
// call that started at start, until the lease is lost, cannot be renewed
// in time, or ctx ends (then the lease is released for another replica to
// take at once).
func (n *Node) lead(ctx context.Context, epoch uint64, start time.Time) {
	clock := leaseClock{ttl: LeaseTTL, margin: leaseMargin}
	clock.renewed(start)
	// Starting a term (the host, the first reconciliation step) reads the
	// database, which may be slow: renew meanwhile, and give the term up
	// if the lease ran out or went to another replica before it was up.
	var mu sync.Mutex
	lost := false
	rctx, stopRenewing := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(leaseRenew)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
			}
			rs := time.Now()
			ok, err := n.shared.RenewLease(rctx, leaseName, n.holder, epoch, LeaseTTL)
			mu.Lock()
			switch {
			case err == nil && ok:
				clock.renewed(rs)
			case err == nil:
				lost = true
			}
			mu.Unlock()
		}
	}()
	stop, err := n.startTerm(epoch)
	stopRenewing()
	<-renewed
	if err != nil {
		n.log.Error("federation term failed to start", "epoch", epoch, "err", err)
		n.release(epoch)
		return
	}
	if lost || clock.expired(time.Now()) {
		stop()
		n.log.Warn("federation follower: the lease ran out while the federation term started", "epoch", epoch, "lost", lost)
		return
	}
	n.log.Info("federation leader", "epoch", epoch, "holder", n.holder)
	renew := time.NewTicker(leaseRenew)
	defer renew.Stop()
	deadline := time.NewTimer(time.Until(clock.deadline))
	defer deadline.Stop()
	why := ""
	for why == "" {
		select {
		case <-ctx.Done():
			stop()
			n.release(epoch)
			n.log.Info("federation lease released", "epoch", epoch)
			return
		case <-deadline.C:
			why = "the lease could not be renewed in time"
		case <-renew.C:
			rs := time.Now()
			rctx, cancel := context.WithDeadline(ctx, clock.deadline)
			ok, err := n.shared.RenewLease(rctx, leaseName, n.holder, epoch, LeaseTTL)
			cancel()
			switch {
			case err == nil && ok:
				clock.renewed(rs)
				deadline.Reset(time.Until(clock.deadline))
			case err == nil:
				why = "another replica holds the lease"
			case clock.expired(time.Now()):
				why = "the lease could not be renewed in time: " + err.Error()
			default:
				n.log.Warn("federation lease renewal failed", "epoch", epoch, "err", err)
			}
		}
	}
	stop()
	n.log.Warn("federation follower: lost the lead", "epoch", epoch, "reason", why)
}

func (n *Node) release(epoch uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := n.shared.ReleaseLease(ctx, leaseName, n.holder, epoch); err != nil {
		n.log.Warn("federation lease release", "epoch", epoch, "err", err)
	}
}

// startTerm starts the federation work of a leader: the host, sync and
// checkpoints, and the order relay, each writing through the store fenced
// at epoch. The returned stop ends them all and waits for them.
func (n *Node) startTerm(epoch uint64) (stop func(), err error) {
	var cat, ord = n.Catalog, n.Orders
	if n.shared != nil {
		fdb := n.shared.Fenced(leaseName, n.holder, epoch)
		cat, ord = n.Catalog.WithStore(fdb), n.Orders.WithStore(fdb)
		n.fedStore.Store(fdb)
	}
	n.fedCatalog.Store(cat)
	n.fedOrders.Store(ord)
	if n.shared != nil {
		// The reconciliation to do is the store's mark now: the previous
		// leader may have finished one, or died in the middle of one.
		pending, err := n.Store.PendingReconcile()
		if err != nil {
			n.fedCatalog.Store(n.Catalog)
			n.fedOrders.Store(n.Orders)
			n.fedStore.Store(nil)
			return nil, err
		}
		n.Fed.SetReconcile(n.reconcileConfig(pending))
		n.Catalog.SetReconciling(pending != nil)
	}
	if err := n.Fed.Start(context.Background()); err != nil {
		n.fedCatalog.Store(n.Catalog)
		n.fedOrders.Store(n.Orders)
		n.fedStore.Store(nil)
		return nil, err
	}
	n.leader.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		ord.Run(ctx, n.Fed)
	}()
	go func() {
		defer wg.Done()
		n.checkpointLoop(ctx, n.checkpointEvery)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		n.issueSweepLoop(ctx, ord)
	}()
	if n.shared != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.pruneLoop(ctx)
		}()
	}
	return func() {
		n.leader.Store(false)
		cancel()
		// The host closes first: deliveries in flight fail at once
		// rather than run out their timeouts.
		if err := n.Fed.Stop(); err != nil {
			n.log.Warn("federation stop", "err", err)
		}
		wg.Wait()
		n.fedCatalog.Store(n.Catalog)
		n.fedOrders.Store(n.Orders)
		n.fedStore.Store(nil)
	}, nil
}

// pruneLoop drops the change feed's rows older than changesKept.
func (n *Node) pruneLoop(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if k, err := n.shared.PruneChanges(ctx, time.Now().Add(-changesKept)); err != nil && ctx.Err() == nil {
			n.log.Warn("change feed pruning", "err", err)
		} else if k > 0 {
			n.log.Debug("change feed pruned", "rows", k)
		}
	}
}

// followLoop keeps this replica's memory in step with the shared store:
// on every notice of the change feed, every feedPoll as a safety net, and
// after the listening connection came back, it applies what changed since
// the last change it applied.
func (n *Node) followLoop(ctx context.Context) {
	wake := make(chan struct{}, 1)
	poke := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			err := n.shared.Listen(ctx, func(seq uint64) {
				if seq > n.feedSeq.Load() {
					poke()
				}
			})
			if ctx.Err() != nil {
				return
			}
			n.log.Warn("change feed: listening failed; catching up by polling", "err", err)
			poke()
			select {
			case <-ctx.Done():
			case <-time.After(feedPoll):
			}
		}
	}()
	t := time.NewTicker(feedPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-t.C:
		}
		if err := n.catchUp(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("change feed", "err", err)
		}
	}
}

// catchUp applies the changes after the last one applied. The feed is
// what another replica wrote; three things can break its thread, and each
// makes this replica reload everything the feed keeps in step (resync):
//   - its rows were pruned before this replica read them: the floor, read
//     after each page (a prune may commit between any two reads), is
//     past the last change applied;
//   - the database went back in time under it (an asynchronous standby
//     promoted without the last commits, a point-in-time restore): the
//     head is below the last change applied, or the row at that seq is
//     another change now.
func (n *Node) catchUp(ctx context.Context) error {
	n.feedMu.Lock()
	defer n.feedMu.Unlock()
	after := n.feedSeq.Load()
	head, err := n.shared.ChangesHead(ctx)
	if err != nil {
		return err
	}
	if head < after {
		return n.resync(ctx, "the change feed went back: the database is behind what this replica applied (a promoted standby or a restore?)", after, head)
	}
	if last := n.feedLast; after > 0 && last.Seq == after {
		cs, err := n.shared.Changes(ctx, after-1, 1)
		if err != nil {
			return err
		}
		floor, err := n.shared.ChangesFloor(ctx)
		if err != nil {
			return err
		}
		// Pruning removes a prefix of the feed, so while the floor is at
		// or below it the row this replica applied last is still there,
		// the same: gone or another means the database went back.
		if floor <= after && (len(cs) == 0 || cs[0].Seq != after || !sameChange(cs[0], last)) {
			return n.resync(ctx, "the change feed was rewritten: the database went back and took new changes (a promoted standby or a restore?)", after, head)
		}
	}
	// What failed for a reason that may pass (a file, a refused
	// install) is tried again on every catch-up, until it applies.
	for _, k := range n.failedKinds() {
		switch k {
		case "manifest":
			n.applied(ctx, k, n.reloadManifest())
		case "policy":
			n.applied(ctx, k, n.reloadPolicy(ctx))
		}
	}
	for {
		cs, err := n.shared.Changes(ctx, after, feedBatch)
		if err != nil {
			return err
		}
		floor, err := n.shared.ChangesFloor(ctx)
		if err != nil {
			return err
		}
		if floor > after+1 {
			return n.resync(ctx, "this replica fell behind the kept changes", after, floor)
		}
		if len(cs) == 0 {
			return nil
		}
		if err := n.applyChanges(ctx, cs); err != nil {
			return err
		}
		after = cs[len(cs)-1].Seq
		n.feedLast = cs[len(cs)-1]
		n.feedSeq.Store(after)
		if len(cs) < feedBatch {
			return nil
		}
	}
}

func sameChange(a, b store.Changed) bool {
	return a.Seq == b.Seq && a.Bucket == b.Bucket && bytes.Equal(a.Key, b.Key) && a.At.Equal(b.At)
}

// resync reloads everything the change feed keeps in step, from the
// feed's head at the time (changes after it are applied next time, and
// the ones between it and the reload twice, which is harmless).
func (n *Node) resync(ctx context.Context, why string, applied, seen uint64) error {
	head, err := n.shared.ChangesHead(ctx)
	if err != nil {
		return err
	}
	n.log.Warn("change feed: reloading", "reason", why, "applied", applied, "seen", seen, "head", head)
	pending, err := n.Store.PendingReconcile()
	if err := n.applied(ctx, "reconcile", err); err != nil {
		return err
	}
	if err == nil {
		n.Catalog.SetReconciling(pending != nil)
	}
	var retry []error
	for _, r := range []struct {
		kind string
		err  error
	}{{"manifest", n.reloadManifest()}, {"policy", n.reloadPolicy(ctx)}, {"peer_policies", n.loadPeerPolicies()}, {"listings", n.Catalog.Load(ctx)}} {
		if err := n.applied(ctx, r.kind, r.err); err != nil {
			retry = append(retry, err)
		}
	}
	if err := errors.Join(retry...); err != nil {
		return err // the database: reload again next time
	}
	// What failed for good is on record (replica_feed) and retried on
	// every catch-up; the feed moves on.
	n.feedLast = store.Changed{}
	n.feedSeq.Store(head)
	return nil
}

// applied records how applying one kind of change went: nil clears that
// kind's failure, a database failure is returned (to be tried again), any
// other is recorded for /readyz and retried on every catch-up.
func (n *Node) applied(ctx context.Context, kind string, err error) error {
	n.feedErrMu.Lock()
	defer n.feedErrMu.Unlock()
	switch {
	case err == nil:
		delete(n.feedErrs, kind)
	case errors.Is(err, store.ErrUnavailable) || ctx.Err() != nil:
		return err
	default:
		if n.feedErrs == nil {
			n.feedErrs = map[string]error{}
		}
		if _, known := n.feedErrs[kind]; !known {
			n.log.Error("change feed: a change another replica made cannot be applied here; passing it and trying again on every catch-up", "kind", kind, "err", err)
		}
		n.feedErrs[kind] = err
	}
	return nil
}

// failedKinds lists the kinds of change that failed for good, in order.
func (n *Node) failedKinds() []string {
	n.feedErrMu.Lock()
	defer n.feedErrMu.Unlock()
	var out []string
	for _, k := range []string{"manifest", "policy", "reconcile", "listings"} {
		if n.feedErrs[k] != nil {
			out = append(out, k)
		}
	}
	return out
}

// applyChanges brings memory in step with one batch of the change feed.
// A database that cannot be reached fails the batch, to be tried again; a
// change that cannot be applied for another reason (a manifest that does
// not verify here, a policy this replica refuses) is logged, reported by
// /readyz (replica_feed) until that kind of change applies again, and
// passed: one bad change must not stop every later one.
func (n *Node) applyChanges(ctx context.Context, cs []store.Changed) error {
	var ids []string
	seen := map[string]bool{}
	var policyChanged, manifestChanged, reconcileChanged, peerPoliciesChanged bool
	dests := map[string]bool{}
	for _, c := range cs {
		switch {
		case c.Bucket == "listings":
			if id := string(c.Key); !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		case c.Bucket == "policy" && string(c.Key) == "current":
			policyChanged = true
		case strings.HasPrefix(c.Bucket, "peer_policies/"):
			peerPoliciesChanged = true
		case c.Bucket == "federation" && (string(c.Key) == "manifest" || string(c.Key) == "federation_key_sealed"):
			manifestChanged = true
		case c.Bucket == "meta" && string(c.Key) == "reconcile":
			reconcileChanged = true
		case strings.HasPrefix(c.Bucket, "outbox/"):
			dests[strings.TrimPrefix(c.Bucket, "outbox/")] = true
		}
	}
	var retry []error
	applied := func(kind string, err error) {
		if err := n.applied(ctx, kind, err); err != nil {
			retry = append(retry, err)
		}
	}
	if manifestChanged {
		applied("manifest", n.reloadManifest())
	}
	if policyChanged {
		applied("policy", n.reloadPolicy(ctx))
	}
	if peerPoliciesChanged {
		applied("peer_policies", n.loadPeerPolicies())
	}
	if reconcileChanged {
		pending, err := n.Store.PendingReconcile()
		if err == nil {
			n.Catalog.SetReconciling(pending != nil)
		}
		applied("reconcile", err)
	}
	if len(ids) > 0 {
		applied("listings", n.Catalog.Refresh(ctx, ids...))
	}
	if err := errors.Join(retry...); err != nil {
		return err
	}
	if n.leader.Load() {
		if len(ids) > 0 {
			n.Fed.Published() // what other replicas wrote goes to the members
		}
		if len(dests) > 0 {
			n.Orders.Wake()
		}
	}
	return nil
}

// feedCheck is the readyz check of the change feed: what another replica
// changed that this one could not apply.
func (n *Node) feedCheck() error {
	n.feedErrMu.Lock()
	defer n.feedErrMu.Unlock()
	var errs []error
	for _, k := range []string{"manifest", "policy", "reconcile", "listings"} {
		if err := n.feedErrs[k]; err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

// reloadPolicy takes the policy another replica installed.
func (n *Node) reloadPolicy(ctx context.Context) error {
	old, _ := n.Policy()
	if err := n.openPolicy(); err != nil {
		return fmt.Errorf("reload policy: %w", err)
	}
	if p, _ := n.Policy(); p != nil && (old == nil || p.Version != old.Version) {
		n.log.Info("policy installed by another replica", "version", p.Version)
		n.Fed.PolicyChanged()
		if changed, err := n.Catalog.Reexport(ctx); err != nil {
			return fmt.Errorf("apply export rules: %w", err)
		} else if changed > 0 {
			n.log.Info("export rules re-applied", "listings_changed", changed)
		}
	}
	return nil
}

// reloadManifest applies the manifest another replica (or a peer, through
// the leader) installed.
func (n *Node) reloadManifest() error {
	n.installMu.Lock()
	defer n.installMu.Unlock()
	raw, err := n.Store.Manifest()
	if err != nil || raw == nil {
		return err
	}
	if _, cur := n.Fed.Manifest(); bytes.Equal(cur, raw) {
		return nil
	}
	m, err := membership.Parse(raw)
	if err != nil {
		return fmt.Errorf("installed manifest: %w", err)
	}
	var psk pnet.PSK
	if b, err := loadPSK(n.Dir, n.Store, n.Keys.Data); err != nil {
		return err
	} else if b != nil {
		if psk, err = federation.ParsePSK(b); err != nil {
			return err
		}
	}
	n.log.Info("manifest installed by another replica", "version", m.Version)
	return n.Fed.Install(m, raw, psk)
}
