package federation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/imtgt/imtgt-node/federation/pb"
)

// ProtoRecover carries the recovery of orders after a restore: a
// recover_request, answered by a recover_reply (docs/PROTOCOL.md 6.7).
const ProtoRecover = protocol.ID("/imtgt/recover/1.0.0")

// MaxRecoverCount is the most orders one recover_reply carries.
const MaxRecoverCount = 200

// ErrFork is a peer's record of an origin's log that differs from the one
// this node holds at the same sequence number: the origin's log was
// rewound (a restore, a lost store) and continued with other content.
var ErrFork = errors.New("the origin's log forked")

// Reconcile is what a node restored from a backup (or whose store was
// lost) needs to reconcile with every member before it publishes anything
// (docs/OPERATIONS.md, "Backup and restore"). The service takes back the
// node's own catalog records each peer holds beyond its head, then asks
// each peer for the orders it placed with this node since Since.
type Reconcile struct {
	// Since is the time from which orders may be missing.
	Since time.Time
	// Recover applies a page of orders a buyer's node holds.
	Recover func(ctx context.Context, from string, recs []*pb.RecoveredOrder) (restored, forwarded, unchanged int, err error)
	// PeerDone records one member's part (audit entry).
	PeerDone func(ctx context.Context, country string, p ReconcileProgress) error
	// Done is called once, when every member has reconciled.
	Done func(ctx context.Context) error
}

// ReconcileProgress is one member's part in a reconciliation, as
// GET /v1/peers shows it.
type ReconcileProgress struct {
	// Phase: "catalog" (taking back this node's records), "orders"
	// (recovering orders), "done".
	Phase string `json:"phase"`
	// Reclaimed counts this node's own catalog records taken back.
	Reclaimed int `json:"reclaimed"`
	// Restored counts orders stored again, Forwarded orders brought up
	// to date.
	Restored  int    `json:"orders_restored"`
	Forwarded int    `json:"orders_updated"`
	Unchanged int    `json:"orders_unchanged"`
	LastError string `json:"last_error,omitempty"`
}

// reconciler tracks a reconciliation per member.
type reconciler struct {
	cfg *Reconcile
	mu  sync.Mutex
	by  map[string]*ReconcileProgress // country → progress
	// finishing is set while Done runs, done once it returned: until
	// then the node still reconciles (readyz, the catalog's gate), so
	// nobody sees it ready while Done still clears the store's mark.
	finishing, done bool
}

func newReconciler(cfg *Reconcile) *reconciler {
	if cfg == nil {
		return nil
	}
	return &reconciler{cfg: cfg, by: map[string]*ReconcileProgress{}}
}

func (r *reconciler) progress(country string) *ReconcileProgress {
	p := r.by[country]
	if p == nil {
		p = &ReconcileProgress{Phase: "catalog"}
		r.by[country] = p
	}
	return p
}

// Reconciling reports whether a reconciliation is under way, and each
// member's progress (a copy).
func (s *Service) Reconciling() (bool, map[string]ReconcileProgress) {
	r := s.rec.Load()
	if r == nil {
		return false, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return false, nil
	}
	out := map[string]ReconcileProgress{}
	st := s.state.Load()
	if st != nil {
		for c := range st.byCountry {
			if c != s.cfg.Country {
				out[c] = *r.progress(c)
			}
		}
	}
	return true, out
}

// noticeRewound starts a reconciliation when p holds more of this node's
// own log than this node does: that can only mean its store was rewound
// without "restore" (a backup copied by hand, a disk snapshot rolled
// back). Publishing on would reuse sequence numbers the members hold.
func (s *Service) noticeRewound(ctx context.Context, p peer.ID, theirs map[string]uint64, own uint64) error {
	if theirs[s.cfg.Country] <= own || s.rec.Load() != nil || s.cfg.Rewound == nil {
		return nil // the normal case: no member holds more of our log than we do
	}
	// Rounds with several members may notice it at once: once is enough.
	s.rewoundMu.Lock()
	defer s.rewoundMu.Unlock()
	if s.rec.Load() != nil {
		return nil
	}
	var err error
	// A claim is not proof: the member must show a record this node
	// signed above its head, continuing what it holds. A member that
	// claims more and cannot show it is refused, and nothing stops.
	var held []byte
	if own > 0 {
		if held, err = s.catalog().LogRecord(ctx, s.cfg.Country, own); err != nil {
			return err
		}
	}
	proof, err := s.fetch(ctx, p, s.cfg.Country, own+1, held)
	switch {
	case errors.Is(err, ErrFork):
		// This node's log was rewound and it published over sequence
		// numbers the member holds: only restore --from-peers mends that.
		msg := fmt.Sprintf("this node's own catalog log forked from what %s holds at record %d: it was rewound and published on; stop it and run imtgt-node restore --from-peers", p, own)
		s.ownFork.Store(&msg)
		s.log.Error(msg)
		return nil
	case err == nil && len(proof) == 0:
		s.reject(ProtoHeads, p, "unproven_head", fmt.Errorf("%w: it claims this node's log up to %d, this node holds %d, and shows no record above", ErrBadRecord, theirs[s.cfg.Country], own))
		return nil
	case err != nil:
		s.log.Debug("could not check a member's claim of this node's log", "peer", p, "err", err)
		return nil
	}
	country, _ := s.countryOf(p)
	r, err := s.cfg.Rewound(ctx, country, theirs[s.cfg.Country], own)
	if err != nil || r == nil {
		return err
	}
	s.rec.Store(newReconciler(r))
	s.log.Warn("this node's own catalog log is behind what a member holds: its store was rewound; reconciling before publishing",
		"peer", p, "peer_country", country, "theirs", theirs[s.cfg.Country], "ours", own)
	return nil
}

// SetReconcile replaces the reconciliation to do (nil: none). A replica
// calls it as it starts a federation term, from the store's mark: the
// previous leader may have finished one, or died in the middle of one,
// since this replica opened. Call it only while the service is stopped.
func (s *Service) SetReconcile(r *Reconcile) {
	s.rec.Store(newReconciler(r))
}

// OwnLogForked says, when not empty, that this node's own log forked from
// a member's copy (noticeRewound).
func (s *Service) OwnLogForked() string {
	if m := s.ownFork.Load(); m != nil {
		return *m
	}
	return ""
}

// reconcileWith does this node's part of a reconciliation with p, whose
// heads are theirs: take back what p holds of this node's own log, then
// recover the orders p placed with this node. It does nothing once done.
func (s *Service) reconcileWith(ctx context.Context, p peer.ID, theirs map[string]uint64) error {
	r := s.rec.Load()
	if r == nil {
		return nil
	}
	country, err := s.countryOf(p)
	if err != nil {
		return err
	}
	r.mu.Lock()
	if r.done {
		r.mu.Unlock()
		return nil
	}
	if r.progress(country).Phase == "done" {
		r.mu.Unlock()
		return s.maybeFinishReconcile(ctx) // a member removed meanwhile
	}
	prog := *r.progress(country)
	r.mu.Unlock()
	update := func(f func(*ReconcileProgress)) {
		r.mu.Lock()
		f(r.progress(country))
		prog = *r.progress(country)
		r.mu.Unlock()
	}
	fail := func(err error) error {
		update(func(p *ReconcileProgress) { p.LastError = err.Error() })
		return fmt.Errorf("reconcile with %s: %w", country, err)
	}
	if prog.Phase == "catalog" {
		ours, err := s.heads(ctx)
		if err != nil {
			return fail(err)
		}
		if head := theirs[s.cfg.Country]; head > ours[s.cfg.Country] {
			n, err := s.pullOrigin(ctx, p, s.cfg.Country, ours[s.cfg.Country]+1, head)
			update(func(p *ReconcileProgress) { p.Reclaimed += n })
			if err != nil {
				return fail(err)
			}
		}
		update(func(p *ReconcileProgress) { p.Phase = "orders" })
	}
	if prog.Phase == "orders" {
		after := ""
		since := int64(0) // zero time: every order
		if !r.cfg.Since.IsZero() {
			since = max(0, r.cfg.Since.UnixMilli())
		}
		for {
			reply, err := s.request(ctx, p, ProtoRecover, &pb.Message{Body: &pb.Message_RecoverRequest{RecoverRequest: &pb.RecoverRequest{
				SinceUnixMs: since, AfterOrderId: after, MaxCount: MaxRecoverCount}}}, false)
			if err != nil {
				return fail(err)
			}
			rr := reply.GetRecoverReply()
			if rr == nil {
				return fail(fmt.Errorf("%w: expected a recover_reply", ErrMalformed))
			}
			if len(rr.Orders) > MaxRecoverCount {
				return fail(fmt.Errorf("%w: recover_reply with %d orders", ErrMalformed, len(rr.Orders)))
			}
			prev := after
			for _, o := range rr.Orders {
				// Pages move forward in order-ID order, or the exchange
				// could go round for ever.
				if !strings.HasPrefix(o.OrderId, "ord_") || len(o.OrderId) > 64 || o.OrderId <= prev {
					return fail(fmt.Errorf("%w: recover_reply order %q does not follow %q", ErrMalformed, o.OrderId, prev))
				}
				prev = o.OrderId
			}
			if len(rr.Orders) > 0 {
				restored, forwarded, unchanged, err := r.cfg.Recover(ctx, country, rr.Orders)
				update(func(p *ReconcileProgress) {
					p.Restored += restored
					p.Forwarded += forwarded
					p.Unchanged += unchanged
				})
				if err != nil {
					return fail(err)
				}
				after = rr.Orders[len(rr.Orders)-1].OrderId
			}
			if !rr.More || len(rr.Orders) == 0 {
				break
			}
		}
		update(func(p *ReconcileProgress) { p.Phase, p.LastError = "done", "" })
		if r.cfg.PeerDone != nil {
			if err := r.cfg.PeerDone(ctx, country, prog); err != nil {
				return fail(err)
			}
		}
		s.log.Info("reconciled with a member", "peer", p, "peer_country", country, "reclaimed", prog.Reclaimed,
			"orders_restored", prog.Restored, "orders_updated", prog.Forwarded)
	}
	return s.maybeFinishReconcile(ctx)
}

// maybeFinishReconcile ends the reconciliation once every member of the
// installed manifest is done.
func (s *Service) maybeFinishReconcile(ctx context.Context) error {
	r := s.rec.Load()
	st := s.state.Load()
	if st == nil {
		return nil
	}
	r.mu.Lock()
	if r.done || r.finishing {
		r.mu.Unlock()
		return nil
	}
	for c := range st.byCountry {
		if c != s.cfg.Country && r.progress(c).Phase != "done" {
			r.mu.Unlock()
			return nil
		}
	}
	r.finishing = true
	r.mu.Unlock()
	if r.cfg.Done != nil {
		if err := r.cfg.Done(ctx); err != nil {
			r.mu.Lock()
			r.finishing = false
			r.mu.Unlock()
			return fmt.Errorf("finish reconciliation: %w", err)
		}
	}
	r.mu.Lock()
	r.finishing, r.done = false, true
	r.mu.Unlock()
	s.log.Info("reconciliation with every member done; publishing resumes")
	s.Published() // tell the members the heads it now holds
	return nil
}

// serveRecover answers a restored member's recover_request with the
// orders this node placed with it.
func (s *Service) serveRecover(ctx context.Context, from peer.ID, msg *pb.Message) (*pb.Message, error) {
	req := msg.GetRecoverRequest()
	if req == nil {
		return nil, fmt.Errorf("%w: expected recover_request", ErrMalformed)
	}
	if req.MaxCount == 0 || req.MaxCount > MaxRecoverCount || req.SinceUnixMs < 0 {
		return nil, fmt.Errorf("%w: recover_request needs since_unix_ms >= 0 and 1 <= max_count <= %d", ErrMalformed, MaxRecoverCount)
	}
	country, err := s.countryOf(from)
	if err != nil {
		return nil, err
	}
	if s.cfg.Recoverable == nil {
		return nil, errors.New("this node keeps no orders")
	}
	recs, entries, more, err := s.cfg.Recoverable(ctx, country, time.UnixMilli(req.SinceUnixMs), req.AfterOrderId, int(req.MaxCount))
	if err != nil {
		return nil, err
	}
	if len(entries) > 0 && s.cfg.Audit != nil {
		// Recorded before the handoffs leave again: no crossing without
		// its entry.
		if err := s.cfg.Audit(ctx, entries...); err != nil {
			return nil, fmt.Errorf("record the crossing: %w", err)
		}
	}
	return &pb.Message{Body: &pb.Message_RecoverReply{RecoverReply: &pb.RecoverReply{Orders: recs, More: more}}}, nil
}

// checkContinues is the fork check of a pull: the first record a peer
// sent (seq held, the last this node holds of origin) must be byte for
// byte the record this node holds there. Records are stored as their
// origin signed them, so any honest copy is identical.
func checkContinues(origin string, seq uint64, mine, first []byte) error {
	if string(mine) == string(first) {
		return nil
	}
	return fmt.Errorf("%w: %s's record %d from this peer differs from the one this node holds: %s's log was rewound and continued with other content",
		ErrFork, origin, seq, origin)
}
