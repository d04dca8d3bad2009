package federation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-msgio"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/membership"
	"github.com/imtgt/imtgt-node/policy"
)

type metrics struct {
	rejected        *prometheus.CounterVec
	records         *prometheus.CounterVec
	syncs           *prometheus.CounterVec
	manifestVersion prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "imtgt", Subsystem: "federation", Name: "rejected_total",
			Help: "Messages, records and connections refused, by reason.",
		}, []string{"reason"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "imtgt", Subsystem: "sync", Name: "records_total",
			Help: "Catalog records received from peers and stored, by origin.",
		}, []string{"origin"}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "imtgt", Subsystem: "sync", Name: "rounds_total",
			Help: "Sync rounds with a peer, by result (ok, error).",
		}, []string{"result"}),
		manifestVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "imtgt", Subsystem: "federation", Name: "manifest_version",
			Help: "Version of the installed membership manifest (0: none).",
		}),
	}
	reg.MustRegister(m.rejected, m.records, m.syncs, m.manifestVersion)
	return m
}

// --- serving ---

type serveFunc func(ctx context.Context, from peer.ID, msg *pb.Message) (*pb.Message, error)

// handle wraps a protocol handler: deadline, size limit, verification,
// and a signed reply. A bad message is counted, logged and answered with a
// reset; the handler itself keeps serving other streams.
func (s *Service) handle(proto protocol.ID, serve serveFunc) network.StreamHandler {
	return s.handleWith(proto, s.opener, serve)
}

// handleWith is handle with the Opener o verifying messages.
func (s *Service) handleWith(proto protocol.ID, o *Opener, serve serveFunc) network.StreamHandler {
	return func(st network.Stream) {
		from := st.Conn().RemotePeer()
		_ = st.SetDeadline(time.Now().Add(DefaultStreamTimeout))
		r := msgio.NewVarintReaderSize(st, MaxMessageSize)
		data, err := r.ReadMsg()
		if err != nil {
			reason := "read"
			if errors.Is(err, msgio.ErrMsgTooLarge) {
				reason = ErrTooLarge.Error()
			}
			s.reject(proto, from, reason, err)
			st.Reset()
			return
		}
		msg, err := o.Open(data, from)
		r.ReleaseMsg(data)
		if err != nil {
			s.reject(proto, from, Reason(err), err)
			st.Reset()
			return
		}
		reply, err := serve(s.tctx(), from, msg)
		if err != nil {
			s.reject(proto, from, Reason(err), err)
			reply = &pb.Message{Body: &pb.Message_Error{Error: &pb.Error{Code: "bad_request", Message: err.Error()}}}
		}
		if reply == nil {
			st.Close()
			return
		}
		out, err := s.sealer.Seal(reply)
		if err == nil {
			err = msgio.NewVarintWriter(st).WriteMsg(out)
		}
		if err != nil {
			s.log.Debug("reply failed", "protocol", proto, "peer", from, "err", err)
			st.Reset()
			return
		}
		st.Close()
	}
}

// reject counts a refused message and records it: the first refusal of
// a peer for a reason at once, the repeats summarised (see refusals).
func (s *Service) reject(proto protocol.ID, from peer.ID, reason string, err error) {
	s.metrics.rejected.WithLabelValues(reason).Inc()
	country, _ := s.countryOf(from)
	s.refusals.note(reason, &audit.Entry{Kind: audit.Rejection, Peer: country, PeerID: from.String(), Purpose: string(proto), Reason: reason + ": " + err.Error()},
		"rejected a federation message", "protocol", proto, "peer", from, "err", err)
}

func (s *Service) heads(ctx context.Context) (map[string]uint64, error) {
	return s.catalog().Heads(ctx)
}

func (s *Service) serveHeads(ctx context.Context, from peer.ID, msg *pb.Message) (*pb.Message, error) {
	if msg.GetHeadsRequest() == nil {
		return nil, fmt.Errorf("%w: expected heads_request", ErrMalformed)
	}
	s.notePeerManifest(from, msg.ManifestVersion)
	h, err := s.heads(ctx)
	if err != nil {
		return nil, err
	}
	return &pb.Message{Body: &pb.Message_Heads{Heads: &pb.Heads{Heads: h}}}, nil
}

func (s *Service) serveAnnounce(ctx context.Context, from peer.ID, msg *pb.Message) (*pb.Message, error) {
	h := msg.GetHeads()
	if h == nil {
		return nil, fmt.Errorf("%w: expected heads", ErrMalformed)
	}
	s.notePeerManifest(from, msg.ManifestVersion)
	s.notePeerHeads(from, h.Heads)
	s.trigger(from)
	return nil, nil
}

func (s *Service) serveSync(ctx context.Context, from peer.ID, msg *pb.Message) (*pb.Message, error) {
	req := msg.GetRangeRequest()
	if req == nil {
		return nil, fmt.Errorf("%w: expected range_request", ErrMalformed)
	}
	if req.FromSeq == 0 || req.MaxCount == 0 || req.MaxCount > MaxRangeCount || len(req.Origin) != 2 {
		return nil, fmt.Errorf("%w: range_request needs origin, from_seq >= 1 and 1 <= max_count <= %d", ErrMalformed, MaxRangeCount)
	}
	recs, head, err := s.catalog().LogRange(ctx, req.Origin, req.FromSeq, int(req.MaxCount), rangeReplyBytes)
	if err != nil {
		return nil, err
	}
	if len(recs) > 0 {
		e, err := s.catalogEgress(from, req.Origin, req.FromSeq, recs)
		if err != nil {
			return nil, err
		}
		// Recorded before the records leave: no crossing without its entry.
		if err := s.cfg.Audit(ctx, e); err != nil {
			return nil, fmt.Errorf("record the crossing: %w", err)
		}
	}
	return &pb.Message{Body: &pb.Message_RangeReply{RangeReply: &pb.RangeReply{Origin: req.Origin, Records: recs, Head: head}}}, nil
}

// catalogEgress is the audit entry of log records served to peer p. This
// node's own records carry the listing fields its policy's catalog rule
// lets leave for p's country (records are projected by that rule when
// sealed); records of other origins are relayed as their origin signed
// them and carry no data of this country.
func (s *Service) catalogEgress(p peer.ID, origin string, from uint64, recs [][]byte) (*audit.Entry, error) {
	country, _ := s.countryOf(p)
	h := sha256.New()
	for _, r := range recs {
		h.Write(r)
	}
	e := &audit.Entry{Kind: audit.CatalogEgress, Peer: country, PeerID: p.String(), Purpose: string(policy.PurposeCatalog),
		Records: []string{fmt.Sprintf("%s#%d-%d", origin, from, from+uint64(len(recs))-1)}, Count: len(recs),
		PayloadHash: hex.EncodeToString(h.Sum(nil))}
	if origin != s.cfg.Country {
		e.Purpose, e.Reason = audit.PurposeRelay, "relay of "+origin+"'s log"
		return e, nil
	}
	var pol *policy.Policy
	if s.cfg.Policy != nil {
		pol = s.cfg.Policy()
	}
	if pol == nil {
		return e, nil // no policy wired (package tests)
	}
	t, err := pol.Transfer(policy.KindListing, country, policy.PurposeCatalog)
	if err != nil {
		// No rule lets this country's listings go to that member: they do
		// not leave, and the refusal is on record.
		s.metrics.rejected.WithLabelValues("policy").Inc()
		s.refusals.note("policy", &audit.Entry{Kind: audit.Rejection, Peer: country, PeerID: p.String(), Purpose: string(policy.PurposeCatalog),
			Records: e.Records, Reason: "policy: " + err.Error()}, "refused to serve catalog records the policy keeps home", "peer", p, "err", err)
		return nil, fmt.Errorf("policy: %w", err)
	}
	for _, f := range t.Fields {
		e.Fields = append(e.Fields, policy.KindListing+"."+f)
	}
	e.PolicyVersion, e.Rules, e.LegalBasis = t.Version, t.Rules, t.LegalBasis
	return e, nil
}

func (s *Service) serveManifest(ctx context.Context, from peer.ID, msg *pb.Message) (*pb.Message, error) {
	offer := msg.GetManifestOffer()
	if offer == nil {
		return nil, fmt.Errorf("%w: expected manifest_offer", ErrMalformed)
	}
	reply := &pb.ManifestReply{}
	if err := s.acceptManifest(offer.Manifest); err != nil {
		reply.Reason = err.Error()
	} else {
		reply.Accepted = true
	}
	return &pb.Message{Body: &pb.Message_ManifestReply{ManifestReply: reply}}, nil
}

// acceptManifest installs a manifest a peer offered, under the same rule
// as the CLI: a newer version approved by the current federation's quorum.
func (s *Service) acceptManifest(raw []byte) error {
	next, err := membership.Parse(raw)
	if err != nil {
		return err
	}
	if _, err := newMemberState(next, raw); err != nil {
		return err // refuse before saving: a node must be able to start on what it saved
	}
	cur, _ := s.Manifest()
	if cur != nil && next.Version <= cur.Version {
		return nil // nothing new: not an error
	}
	if err := membership.CheckInstall(cur, next, s.cfg.Now()); err != nil {
		s.metrics.rejected.WithLabelValues("manifest").Inc()
		return err
	}
	if s.cfg.SaveManifest != nil {
		if err := s.cfg.SaveManifest(raw, next); err != nil {
			return err
		}
	}
	s.log.Info("installed a newer manifest received from a peer", "version", next.Version)
	return s.Install(next, raw, nil)
}

// --- requesting ---

// errPeerRefused is wrapped by a request the peer answered with an Error.
var errPeerRefused = errors.New("peer refused")

// request opens a stream, sends one signed message and, unless oneWay,
// reads and verifies one signed reply.
func (s *Service) request(ctx context.Context, p peer.ID, proto protocol.ID, msg *pb.Message, oneWay bool) (*pb.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultStreamTimeout)
	defer cancel()
	st, err := s.h().NewStream(ctx, p, proto)
	if err != nil {
		return nil, err
	}
	_ = st.SetDeadline(time.Now().Add(DefaultStreamTimeout))
	out, err := s.sealer.Seal(msg)
	if err != nil {
		st.Reset()
		return nil, err
	}
	if err := msgio.NewVarintWriter(st).WriteMsg(out); err != nil {
		st.Reset()
		return nil, err
	}
	if err := st.CloseWrite(); err != nil {
		st.Reset()
		return nil, err
	}
	if oneWay {
		// Wait for the peer to close its side, so the message was read.
		_, _ = io.Copy(io.Discard, io.LimitReader(st, 1))
		st.Close()
		return nil, nil
	}
	r := msgio.NewVarintReaderSize(st, MaxMessageSize)
	data, err := r.ReadMsg()
	if err != nil {
		st.Reset()
		return nil, fmt.Errorf("read reply: %w", err)
	}
	st.Close()
	reply, err := s.opener.Open(data, p)
	if err != nil {
		s.reject(proto, p, Reason(err), err)
		return nil, err
	}
	if e := reply.GetError(); e != nil {
		return nil, fmt.Errorf("%w: %s: %s", errPeerRefused, e.Code, e.Message)
	}
	s.notePeerManifest(p, reply.ManifestVersion)
	return reply, nil
}

// syncWith pulls from p every range p holds that this node lacks, of every
// origin except this node's own.
func (s *Service) syncWith(ctx context.Context, p peer.ID) error {
	reply, err := s.request(ctx, p, ProtoHeads, &pb.Message{Body: &pb.Message_HeadsRequest{HeadsRequest: &pb.HeadsRequest{}}}, false)
	if err != nil {
		return err
	}
	theirs := reply.GetHeads().GetHeads()
	s.notePeerHeads(p, theirs)
	ours, err := s.heads(ctx)
	if err != nil {
		return err
	}
	if err := s.noticeRewound(ctx, p, theirs, ours[s.cfg.Country]); err != nil {
		return err
	}
	// A reconciliation changes only this node's own log, which the pulls
	// below leave alone: ours stays right for them.
	if err := s.reconcileWith(ctx, p, theirs); err != nil {
		return err
	}
	grew := false
	st, err := s.current()
	if err != nil {
		return err
	}
	for origin, head := range theirs {
		if origin == s.cfg.Country {
			continue // our own log comes only from us
		}
		if _, ok := st.byCountry[origin]; !ok {
			// A former member's log, say: nothing to verify it against.
			// Skip it, and go on with the others.
			continue
		}
		if ours[origin] >= head {
			continue
		}
		n, err := s.pullOrigin(ctx, p, origin, ours[origin]+1, head)
		grew = grew || n > 0
		if errors.Is(err, ErrFork) {
			// Refused and recorded (fetch); the other origins p relays
			// are not held up by it.
			continue
		}
		if err != nil {
			return fmt.Errorf("pull %s from %d: %w", origin, ours[origin]+1, err)
		}
	}
	s.noteSynced(p)
	if grew {
		s.Published() // relay: tell the others we have more
	}
	s.maybeOfferManifest(ctx, p)
	s.maybeOfferPolicy(ctx, p)
	return nil
}

// pullOrigin pulls origin's records from..head from p. Fetching and
// verifying the next range overlaps with storing and indexing the current
// one: verification is parallel and CPU-bound, the store and index are
// single writers, so the two keep both cores busy.
func (s *Service) pullOrigin(ctx context.Context, p peer.ID, origin string, from, head uint64) (int, error) {
	type chunk struct {
		recs []catalog.RemoteRecord
		err  error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan chunk, 1)
	go func() {
		defer close(chunks)
		for next := from; next <= head; {
			// The first range starts one record early, at the last one this
			// node holds: fetch refuses a forked log (checkContinues).
			var held []byte
			if next == from && from > 1 {
				var err error
				if held, err = s.catalog().LogRecord(ctx, origin, from-1); err != nil {
					chunks <- chunk{nil, err}
					return
				}
			}
			recs, err := s.fetch(ctx, p, origin, next, held)
			select {
			case chunks <- chunk{recs, err}:
			case <-ctx.Done():
				return
			}
			if err != nil || len(recs) == 0 {
				return
			}
			next += uint64(len(recs))
		}
	}()
	country, _ := s.countryOf(p)
	apply, closeApply, err := s.pulledApplier(p, country, origin)
	if err != nil {
		return 0, err
	}
	total := 0
	for c := range chunks {
		if len(c.recs) > 0 {
			n, err := apply(ctx, c.recs)
			if err != nil {
				return total, errors.Join(err, closeApply())
			}
			total += n
			s.metrics.records.WithLabelValues(origin).Add(float64(n))
		}
		if c.err != nil {
			return total, errors.Join(c.err, closeApply())
		}
	}
	return total, closeApply()
}

// pulledApplier stores verified records pulled from p: another origin's as
// catalog ingress, through a catalog.RemoteApplier (storing a range while
// the one before it is indexed); this node's own (taken back after a
// restore) through Catalog.Reclaim. close waits for the last range's
// indexing.
func (s *Service) pulledApplier(p peer.ID, country, origin string) (apply func(context.Context, []catalog.RemoteRecord) (int, error), close func() error, err error) {
	if origin == s.cfg.Country {
		return func(ctx context.Context, recs []catalog.RemoteRecord) (int, error) {
			return s.catalog().Reclaim(ctx, recs, &audit.Entry{Kind: audit.AdminReconcile, Peer: country, PeerID: p.String(),
				Purpose: string(policy.PurposeCatalog), Actor: "node", Reason: "this node's own catalog records taken back from " + country + " after a restore"})
		}, func() error { return nil }, nil
	}
	a, err := s.catalog().RemoteApplier(origin)
	if err != nil {
		return nil, nil, err
	}
	return func(ctx context.Context, recs []catalog.RemoteRecord) (int, error) {
		return a.Apply(ctx, recs, &audit.Entry{Kind: audit.CatalogIngress, Peer: country, PeerID: p.String(), Purpose: string(policy.PurposeCatalog)})
	}, a.Close, nil
}

// fetch asks p for one range of origin's log and verifies every record:
// the origin's signature by the origin's member key, the sequence, the
// content. It returns the verified prefix, and the first failure after it.
//
// With held (the record this node holds at from-1), the range is asked
// from from-1 and its first record must be held byte for byte, compared
// before anything is verified: else the origin's log forked (ErrFork).
func (s *Service) fetch(ctx context.Context, p peer.ID, origin string, from uint64, held []byte) ([]catalog.RemoteRecord, error) {
	st, err := s.current()
	if err != nil {
		return nil, err
	}
	originID, ok := st.byCountry[origin]
	if !ok {
		return nil, fmt.Errorf("%w: origin %s is not a member", ErrBadRecord, origin)
	}
	ask := from
	if held != nil {
		ask = from - 1
	}
	reply, err := s.request(ctx, p, ProtoSync, &pb.Message{Body: &pb.Message_RangeRequest{RangeRequest: &pb.RangeRequest{Origin: origin, FromSeq: ask, MaxCount: MaxRangeCount}}}, false)
	if err != nil {
		return nil, err
	}
	rr := reply.GetRangeReply()
	if rr == nil || rr.Origin != origin {
		return nil, fmt.Errorf("%w: expected a range_reply for %s", ErrMalformed, origin)
	}
	if held != nil && len(rr.Records) > 0 {
		if err := checkContinues(origin, from-1, held, rr.Records[0]); err != nil {
			s.reject(ProtoSync, p, "fork", err)
			return nil, err
		}
		rr.Records = rr.Records[1:]
	}
	recs := make([]catalog.RemoteRecord, len(rr.Records))
	opened, errs := OpenRecords(rr.Records, originID)
	_ = parallel(len(rr.Records), func(i int) error {
		rec := opened[i]
		switch {
		case errs[i] != nil:
		case rec.Origin != origin || rec.Seq != from+uint64(i):
			errs[i] = fmt.Errorf("%w: record %s/%d where %s/%d was expected", ErrBadRecord, rec.Origin, rec.Seq, origin, from+uint64(i))
		default:
			recs[i], errs[i] = toRemote(rec, rr.Records[i])
		}
		return nil
	})
	// Keep the verified prefix: records after a bad one would leave a gap.
	for i, err := range errs {
		if err != nil {
			s.reject(ProtoSync, p, Reason(err), err)
			return recs[:i], err
		}
		if w := recs[i].Withheld; w != nil {
			if origin == s.cfg.Country {
				recs[i].Withheld = nil // this node's own, taken back after a restore
				continue
			}
			// Stored in the log, not shown: withdrawn here like a tombstone.
			s.reject(ProtoSync, p, "text", fmt.Errorf("%w (the record is kept in the log; the listing is not shown)", w))
			recs[i].DeleteID, recs[i].Listing = recs[i].Listing.ID, nil
		}
	}
	return recs, nil
}

// announcer sends the node's heads to every connected member when the log
// grows, coalescing bursts.
// announceDelay is how long the announcer waits after a change before
// telling the peers: see announcer.
const announceDelay = 25 * time.Millisecond

func (s *Service) announcer() {
	defer s.wg.Done()
	for {
		select {
		case <-s.tctx().Done():
			return
		case <-s.announce:
		}
		// Coalesce: changes that follow within announceDelay go out in
		// this announcement, and the pulls they cause stay off the path of
		// the writes that made them.
		select {
		case <-s.tctx().Done():
			return
		case <-time.After(announceDelay):
		}
		if _, err := s.current(); err != nil {
			continue
		}
		h, err := s.heads(s.tctx())
		if err != nil {
			continue
		}
		msg := func() *pb.Message {
			return &pb.Message{Body: &pb.Message_Heads{Heads: &pb.Heads{Heads: maps.Clone(h)}}}
		}
		var wg sync.WaitGroup
		for _, p := range s.h().Network().Peers() {
			if !s.isMember(p) {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.request(s.tctx(), p, ProtoAnnounce, msg(), true); err != nil {
					s.log.Debug("announce failed", "peer", p, "err", err)
				}
			}()
		}
		wg.Wait()
	}
}

// maybeOfferManifest pushes our manifest to a peer that runs an older one.
func (s *Service) maybeOfferManifest(ctx context.Context, p peer.ID) {
	m, raw := s.Manifest()
	s.mu.Lock()
	info := s.peers[p]
	behind := info != nil && info.manifestVersion < m.Version
	s.mu.Unlock()
	if !behind {
		return
	}
	reply, err := s.request(ctx, p, ProtoManifest, &pb.Message{Body: &pb.Message_ManifestOffer{ManifestOffer: &pb.ManifestOffer{Version: m.Version, Manifest: raw}}}, false)
	if err != nil {
		s.log.Debug("manifest offer failed", "peer", p, "err", err)
		return
	}
	if mr := reply.GetManifestReply(); mr != nil && !mr.Accepted {
		s.log.Warn("peer refused our manifest", "peer", p, "version", m.Version, "reason", mr.Reason)
	}
}

// --- per-peer worker ---

// peerWorker owns the connection to one member and its sync rounds: one
// goroutine per member, so triggers coalesce and rounds never overlap.
type peerWorker struct {
	s       *Service
	id      peer.ID
	kickCh  chan struct{} // a connection came up, or the peer announced
	resetCh chan struct{} // retry now, forgetting the backoff
	done    chan struct{}
	once    sync.Once
	// failing is set while the worker is in backoff (its last round
	// failed); read by the connection notifier.
	failing atomic.Bool
}

func newPeerWorker(s *Service, id peer.ID) *peerWorker {
	return &peerWorker{s: s, id: id, kickCh: make(chan struct{}, 1), resetCh: make(chan struct{}, 1), done: make(chan struct{})}
}

// kick asks for a round at once; a worker in backoff honours it only if
// the member is connected (see run).
func (w *peerWorker) kick() {
	select {
	case w.kickCh <- struct{}{}:
	default:
	}
}

// retryNow asks for a round at once whatever the backoff: a new manifest
// was applied, or (tests) a partition healed.
func (w *peerWorker) retryNow() {
	select {
	case w.resetCh <- struct{}{}:
	default:
	}
}

func (w *peerWorker) stop() { w.once.Do(func() { close(w.done) }) }

// retryDelay is the wait after the n-th consecutive failed round (n ≥ 1):
// d = min(DialBackoffMin·2^(n-1), ceiling), jittered to [d/2, d] by r in
// [0, 1), so that members that failed together do not redial together.
// With the defaults: about 1, 2, 4, … 256 s, then 5 minutes.
func retryDelay(n int, ceiling time.Duration, r float64) time.Duration {
	d := ceiling
	if n < 1 {
		n = 1
	}
	if n <= 32 { // beyond, the shift overflows; the ceiling is reached long before
		d = min(DialBackoffMin<<(n-1), ceiling)
	}
	return d/2 + time.Duration(r*float64(d/2))
}

// run is the worker's loop. After a successful round the next comes after
// SyncInterval (plus up to 10 % jitter), or at once on a kick. After a
// failed round the worker is in backoff: the next round waits retryDelay,
// and a kick (a connection event, an announcement) cuts the wait short
// only when the member is connected at that moment, and not sooner than
// DialBackoffMin after the last round. A peer that refuses us after the
// handshake closes the connection at once, so its connection events no
// longer restart the round; a member that reconnects (its dial reached us,
// or the order relay's did) syncs at once.
func (w *peerWorker) run() {
	defer w.s.wg.Done()
	nw := w.s.h().Network()
	failures := 0
	var lastEnd, due time.Time // the last round ended; the next is due
	timer := time.NewTimer(0)  // first round at once
	defer timer.Stop()
	reset := func(d time.Duration) {
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(d)
	}
	for {
		dial := false // whether our own schedule decided to dial
		select {
		case <-w.s.tctx().Done():
			return
		case <-w.done:
			return
		case <-w.resetCh:
			failures, dial = 0, true
		case <-timer.C:
			now := time.Now()
			if failures > 0 && now.Before(due) {
				// The early check a kick asked for: only if still connected.
				if nw.Connectedness(w.id) != network.Connected {
					reset(due.Sub(now))
					continue
				}
			} else {
				dial = true
			}
		case <-w.kickCh:
			if failures > 0 {
				if nw.Connectedness(w.id) != network.Connected {
					continue // the backoff timer stays
				}
				if wait := time.Until(lastEnd.Add(DialBackoffMin)); wait > 0 {
					if wait < time.Until(due) {
						reset(wait)
					}
					continue
				}
			}
		}
		err := w.round(dial)
		lastEnd = time.Now()
		var next time.Duration
		if err != nil {
			w.s.metrics.syncs.WithLabelValues("error").Inc()
			w.s.notePeerError(w.id, err)
			failures++
			w.failing.Store(true)
			next = retryDelay(failures, w.s.cfg.DialBackoffMax, rand.Float64())
			w.s.log.Debug("sync round failed; backing off", "peer", w.id, "failures", failures, "retry_in", next, "err", err)
		} else {
			w.s.metrics.syncs.WithLabelValues("ok").Inc()
			if failures > 0 {
				// Back after failures: what waited for this member goes now.
				w.failing.Store(false)
				w.s.notifyConnected(w.id)
			}
			failures = 0
			next = w.s.cfg.SyncInterval
			// Jitter spreads the rounds of many nodes that started together.
			next += time.Duration(rand.Int64N(int64(next/10) + 1))
		}
		due = lastEnd.Add(next)
		reset(next)
	}
}

// round syncs with the member, dialling it if need be. dial says the
// worker's own backoff decided it is time to dial: only then is libp2p's
// dial backoff cleared.
func (w *peerWorker) round(dial bool) error {
	if _, err := w.s.current(); err != nil {
		// Fail closed: drop what was connected, and do nothing else.
		w.s.dropExpired(w.id)
		return err
	}
	ctx, cancel := context.WithTimeout(w.s.tctx(), 2*time.Minute)
	defer cancel()
	if w.s.h().Network().Connectedness(w.id) != network.Connected {
		// This worker paces its own redials. libp2p's dial backoff would
		// add its own, and keep a member unreachable for up to 5 minutes
		// after the network heals; it only ever sees failed dials, though,
		// not a peer that refuses us right after the handshake.
		if sw, ok := w.s.h().Network().(*swarm.Swarm); ok && dial {
			sw.Backoff().Clear(w.id)
		}
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		err := w.s.h().Connect(dctx, peer.AddrInfo{ID: w.id})
		dcancel()
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
	}
	// The round's streams use this connection or fail: a peer that closes
	// it right after the handshake must not be redialled by each stream.
	err := w.s.syncWith(network.WithNoDial(ctx, "sync round"), w.id)
	if err != nil {
		w.s.offerRenewal(ctx, w.id) // a member whose manifest expired takes only that
	}
	return err
}
