package federation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/membership"
	"github.com/imtgt/imtgt-node/policy"
)

// Protocol IDs. One stream per request; see docs/PROTOCOL.md.
const (
	ProtoHeads    = protocol.ID("/imtgt/heads/1.0.0")
	ProtoAnnounce = protocol.ID("/imtgt/announce/1.0.0")
	ProtoSync     = protocol.ID("/imtgt/sync/1.0.0")
	ProtoManifest = protocol.ID("/imtgt/manifest/1.0.0")
)

// Defaults.
const (
	DefaultSyncInterval  = 10 * time.Second
	DefaultStreamTimeout = 10 * time.Second
	// DefaultDialBackoffMax caps the wait between redials of a member that
	// refuses or fails: the backoff doubles from DialBackoffMin up to it.
	DefaultDialBackoffMax = 5 * time.Minute
	// DialBackoffMin is the first wait after a failed round, and the least
	// time between two rounds with a member in backoff.
	DialBackoffMin = time.Second
	// MaxRangeCount is the most records one RangeRequest may ask for.
	MaxRangeCount = 1024
	// rangeReplyBytes is the byte budget of one RangeReply, well under
	// MaxMessageSize so that the envelope around it always fits.
	rangeReplyBytes = 2 << 20
)

// ErrNoManifest means the node has no valid manifest installed: it takes
// no part in the federation (fail closed).
var ErrNoManifest = errors.New("no valid federation manifest installed")

// Config configures a Service.
type Config struct {
	Country    string
	Key        crypto.PrivKey
	ListenAddr string   // multiaddr, e.g. /ip4/127.0.0.1/tcp/4001
	PSK        pnet.PSK // nil until a manifest is installed with its key
	// Manifest is the installed manifest and its exact bytes; nil if none.
	Manifest    *membership.Manifest
	ManifestRaw []byte
	Catalog     *catalog.Catalog
	// CatalogFunc supplies the catalog when it is built after the service
	// (its Published hook is the service's); used when Catalog is nil.
	CatalogFunc func() *catalog.Catalog
	// SaveManifest persists a newer manifest received from a peer, after
	// it passed membership.CheckInstall; the service then applies it.
	SaveManifest func(raw []byte, m *membership.Manifest) error
	// Orders returns the order service that handles /imtgt/orders (nil
	// until it exists).
	Orders func() OrderHandler
	// Policy returns the policy in force: the evidence of what catalog
	// records carry when they leave. Nil: catalog egress is recorded
	// without fields.
	Policy func() *policy.Policy
	// Audit records crossings before their bytes leave (nil: not
	// recorded). Rejected records a refusal; it must not block (the node
	// queues them).
	Audit    func(ctx context.Context, es ...*audit.Entry) error
	Rejected func(*audit.Entry)
	// Connected is told when a connection to a member's node comes up
	// (the order relay retries what waits for it at once).
	Connected func(country string)
	// WitnessPeer accepts a member's checkpoint for countersigning, or
	// refuses one that contradicts what this node witnessed before.
	WitnessPeer func(ctx context.Context, country string, cp *audit.Checkpoint) error
	// Reconcile, when not nil, makes the service reconcile with every
	// member after a restore before the node publishes again.
	Reconcile *Reconcile
	// Rewound is told that a member (country) holds more of this node's
	// own log (theirs) than it does (ours): the store was rewound without
	// "restore". It marks the node for reconciliation and returns what
	// the service needs to run it (nil: do nothing).
	Rewound func(ctx context.Context, country string, theirs, ours uint64) (*Reconcile, error)
	// Recoverable answers a restored member's recover_request: a page of
	// the orders this node placed with that member's sellers, and the audit
	// entries of their handoffs crossing again.
	Recoverable  func(ctx context.Context, seller string, since time.Time, after string, max int) ([]*pb.RecoveredOrder, []*audit.Entry, bool, error)
	Logger       *slog.Logger
	Registry     prometheus.Registerer
	Now          func() time.Time
	SyncInterval time.Duration
	// DialBackoffMax caps the wait before a worker redials a member whose
	// rounds keep failing (refused, unreachable): DefaultDialBackoffMax.
	DialBackoffMax time.Duration
	// RefusalInterval is how often the repeated refusals of one peer are
	// summarised in the log and the audit log: DefaultRefusalInterval.
	RefusalInterval time.Duration

	// OwnPolicy returns this node's installed signed policy file, its
	// exact bytes (nil: none to offer), offered to each member
	// (policy.go); PolicyChanged says it changed.
	OwnPolicy func() []byte
	// SavePeerPolicy stores a member's policy file the service verified
	// (signed by country's governance key, country's own), with the audit
	// entry of its arrival, unless it is older than the one held (an
	// error) or already held (false). Nil: offers are refused.
	SavePeerPolicy func(ctx context.Context, country string, from peer.ID, p *policy.Policy, raw []byte) (bool, error)
}

// memberState is the installed manifest with look-ups built once.
type memberState struct {
	m         *membership.Manifest
	raw       []byte
	byPeer    map[peer.ID]membership.Member
	byCountry map[string]peer.ID
	addrs     map[peer.ID][]ma.Multiaddr // each member's manifest addrs that parse
}

func newMemberState(m *membership.Manifest, raw []byte) (*memberState, error) {
	st := &memberState{m: m, raw: raw, byPeer: make(map[peer.ID]membership.Member),
		byCountry: make(map[string]peer.ID), addrs: make(map[peer.ID][]ma.Multiaddr)}
	for _, mem := range m.Members {
		id, err := peer.Decode(mem.PeerID)
		if err != nil {
			return nil, fmt.Errorf("manifest member %s: peer id: %w", mem.Country, err)
		}
		st.byPeer[id] = mem
		st.byCountry[mem.Country] = id
		for _, a := range mem.Addrs {
			if x, err := ma.NewMultiaddr(a); err == nil {
				st.addrs[id] = append(st.addrs[id], x)
			}
		}
	}
	return st, nil
}

// Service is a node's part in the federation.
type Service struct {
	cfg  Config
	log  *slog.Logger
	self peer.ID
	// hostp is the libp2p host of the current term, or of the last one
	// (closed) once it ended: code of the term that is still returning
	// calls a closed host, never nil. Host() says whether one runs.
	hostp    atomic.Pointer[host.Host]
	hostLive atomic.Bool
	state    atomic.Pointer[memberState]
	sealer   *Sealer
	opener   *Opener
	renewal  *Opener // the manifest protocol's: admits the members of an expired manifest (renewal.go)
	metrics  *metrics
	// refusals aggregates repeated refusals of a peer, for the log and the
	// audit log.
	refusals *refusals

	// A term is one Start…Stop: its context ends at Stop. A replica of a
	// node that shares its store runs terms only while it holds the
	// federation lease; termMu serialises Start, Stop and Install's start
	// of the host (and guards up and cfg.PSK).
	termMu  sync.Mutex
	up      bool
	term    atomic.Pointer[termCtx]
	wg      sync.WaitGroup
	mu      sync.Mutex // guards workers and peers
	workers map[peer.ID]*peerWorker
	peers   map[peer.ID]*peerInfo

	announce chan struct{}
	rec      atomic.Pointer[reconciler] // nil: no reconciliation
	// rewoundMu serialises noticeRewound.
	rewoundMu sync.Mutex
	ownFork   atomic.Pointer[string] // see OwnLogForked

	// blocked peers are refused like outsiders even if members; only tests
	// set it (export_test.go), to cut a node off as a network partition would.
	blocked atomic.Pointer[map[peer.ID]bool]
}

// New builds a service; Start brings it up.
func New(cfg Config) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.DialBackoffMax <= 0 {
		cfg.DialBackoffMax = DefaultDialBackoffMax
	}
	if cfg.RefusalInterval <= 0 {
		cfg.RefusalInterval = DefaultRefusalInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Audit == nil {
		cfg.Audit = func(context.Context, ...*audit.Entry) error { return nil }
	}
	if cfg.Rejected == nil {
		cfg.Rejected = func(*audit.Entry) {}
	}
	if cfg.Catalog == nil && cfg.CatalogFunc == nil {
		return nil, errors.New("federation: a catalog is required")
	}
	self, err := peer.IDFromPrivateKey(cfg.Key)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, log: cfg.Logger.With("system", "federation"), self: self,
		workers: make(map[peer.ID]*peerWorker), peers: make(map[peer.ID]*peerInfo),
		announce: make(chan struct{}, 1),
	}
	if r := newReconciler(cfg.Reconcile); r != nil {
		s.rec.Store(r)
	}
	if cfg.Manifest != nil {
		st, err := newMemberState(cfg.Manifest, cfg.ManifestRaw)
		if err != nil {
			return nil, err
		}
		s.state.Store(st)
	}
	s.sealer = &Sealer{key: cfg.Key, now: cfg.Now, validity: DefaultValidity, federation: s.federationID}
	s.opener = &Opener{now: cfg.Now, isMember: s.isMember, federation: func() string { n, _ := s.federationID(); return n }, seen: newSeenSet()}
	s.renewal = s.newRenewalOpener()
	s.metrics = newMetrics(cfg.Registry)
	// Through s.cfg, not cfg: package tests replace the hook after New.
	s.refusals = newRefusals(cfg.RefusalInterval, cfg.Now, s.log, func(e *audit.Entry) { s.cfg.Rejected(e) })
	if cfg.Manifest != nil {
		s.metrics.manifestVersion.Set(float64(cfg.Manifest.Version))
	}
	return s, nil
}

func (s *Service) catalog() *catalog.Catalog {
	if s.cfg.Catalog != nil {
		return s.cfg.Catalog
	}
	return s.cfg.CatalogFunc()
}

// termCtx is the context of one term.
type termCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// tctx is the current (or last) term's context; a done one before Start.
func (s *Service) tctx() context.Context {
	if t := s.term.Load(); t != nil {
		return t.ctx
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// h is the current or last term's host (nil before the first).
func (s *Service) h() host.Host {
	if p := s.hostp.Load(); p != nil {
		return *p
	}
	return nil
}

// PeerID is this node's peer ID.
func (s *Service) PeerID() peer.ID { return s.self }

// Host is the libp2p host (nil before Start, after Stop, or without a
// manifest).
func (s *Service) Host() host.Host {
	if !s.hostLive.Load() {
		return nil
	}
	return s.h()
}

func (s *Service) federationID() (string, uint64) {
	if st := s.state.Load(); st != nil {
		return st.m.Federation, st.m.Version
	}
	return "", 0
}

// current returns the installed manifest if it is valid now.
func (s *Service) current() (*memberState, error) {
	st := s.state.Load()
	if st == nil {
		return nil, ErrNoManifest
	}
	if st.m.Expired(s.cfg.Now()) {
		return nil, fmt.Errorf("%w: manifest version %d expired at %s", ErrNoManifest, st.m.Version, st.m.Expires.UTC().Format(time.RFC3339))
	}
	return st, nil
}

func (s *Service) isMember(id peer.ID) bool {
	if b := s.blocked.Load(); b != nil && (*b)[id] {
		return false
	}
	st, err := s.current()
	if err != nil {
		return false
	}
	_, ok := st.byPeer[id]
	return ok
}

// Ready says whether the node can federate: a valid, unexpired manifest.
func (s *Service) Ready() error {
	_, err := s.current()
	return err
}

// Manifest returns the installed manifest and its bytes (nil if none).
func (s *Service) Manifest() (*membership.Manifest, []byte) {
	if st := s.state.Load(); st != nil {
		return st.m, st.raw
	}
	return nil, nil
}

// gater admits only members of the installed, unexpired manifest, and,
// while it is expired, inbound connections of its members, which are
// served the manifest protocol only (renewal.go).
type gater struct{ s *Service }

func (g gater) InterceptPeerDial(p peer.ID) bool                 { return g.s.isMember(p) }
func (g gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.s.isMember(p) }
func (g gater) InterceptAccept(network.ConnMultiaddrs) bool      { return g.s.manifestInstalled() }
func (g gater) InterceptSecured(dir network.Direction, p peer.ID, addrs network.ConnMultiaddrs) bool {
	if g.s.isMember(p) {
		return true
	}
	if dir == network.DirInbound && g.s.renewalPeer(p) {
		return true // under an expired manifest: for a renewal offer only (renewal.go)
	}
	// A refused dialler may redial at once, hundreds of times a second:
	// the refusals are aggregated per peer, and counted each.
	g.s.metrics.rejected.WithLabelValues("outsider").Inc()
	g.s.refusals.note("outsider", &audit.Entry{Kind: audit.Rejection, PeerID: p.String(), Reason: "outsider: a peer outside the manifest tried to connect from " + addrs.RemoteMultiaddr().String()},
		"refused a connection from a peer outside the manifest", "peer", p, "addr", addrs.RemoteMultiaddr())
	return false
}
func (g gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

// Start begins a term: it listens and starts syncing. Without a PSK (no
// manifest installed yet) the host stays down and Ready says why; Install
// brings it up. After Stop, Start begins a new term with a new host.
func (s *Service) Start(ctx context.Context) error {
	s.termMu.Lock()
	defer s.termMu.Unlock()
	if s.up {
		return errors.New("federation: already started")
	}
	tctx, cancel := context.WithCancel(context.Background())
	s.term.Store(&termCtx{ctx: tctx, cancel: cancel})
	s.up = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.refusals.run(tctx)
	}()
	if s.cfg.PSK == nil {
		s.log.Info("federation not started: no manifest installed")
		return nil
	}
	if err := s.startHost(); err != nil {
		s.stopLocked()
		return err
	}
	if s.rec.Load() != nil {
		// A federation of this node alone has no one to reconcile with.
		if err := s.maybeFinishReconcile(tctx); err != nil {
			s.log.Error("reconciliation", "err", err)
		}
	}
	return nil
}

// SetPSK sets the federation key the next term's host uses (a replica
// that is not the leader learns of a new manifest from the store).
func (s *Service) SetPSK(psk pnet.PSK) {
	s.termMu.Lock()
	defer s.termMu.Unlock()
	s.cfg.PSK = psk
}

// advertised is the host's AddrsFactory: a node tells its peers the
// addresses the manifest gives it, not the ones it binds. Behind NAT, a
// port forward or a proxy those differ, and the manifest is what the
// members agreed to dial; a peer must not learn a way around it.
func (s *Service) advertised(bound []ma.Multiaddr) []ma.Multiaddr {
	st, err := s.current()
	if err != nil {
		return bound
	}
	out := st.addrs[st.byCountry[s.cfg.Country]]
	if len(out) == 0 {
		return bound
	}
	// A node run as replicas lists every replica's address; each replica
	// advertises only its own (its listen address, when the manifest
	// names it), so that peers do not learn the others from this one.
	for _, a := range out {
		if a.String() == s.cfg.ListenAddr {
			return []ma.Multiaddr{a}
		}
	}
	return slices.Clone(out)
}

func (s *Service) startHost() error {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	for _, p := range []protocol.ID{ProtoHeads, ProtoAnnounce, ProtoSync, ProtoManifest, ProtoOrders, ProtoAudit, ProtoRecover, ProtoPolicy} {
		limits.AddProtocolLimit(p, rcmgr.BaseLimit{StreamsInbound: 256, StreamsOutbound: 256, Streams: 512, Memory: 64 << 20}, rcmgr.BaseLimitIncrease{})
		limits.AddProtocolPeerLimit(p, rcmgr.BaseLimit{StreamsInbound: 64, StreamsOutbound: 64, Streams: 128, Memory: 16 << 20}, rcmgr.BaseLimitIncrease{})
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()))
	if err != nil {
		return fmt.Errorf("resource manager: %w", err)
	}
	// Watermarks well under the resource limits: a federation has a
	// handful of members, so a few connections each is plenty.
	cm, err := connmgr.NewConnManager(64, 128, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return err
	}
	h, err := libp2p.New(
		libp2p.Identity(s.cfg.Key),
		libp2p.ListenAddrStrings(s.cfg.ListenAddr),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.PrivateNetwork(s.cfg.PSK),
		libp2p.ConnectionGater(gater{s}),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.Ping(false),
		libp2p.AddrsFactory(s.advertised),
	)
	if err != nil {
		return fmt.Errorf("start libp2p host on %s: %w", s.cfg.ListenAddr, err)
	}
	s.hostp.Store(&h)
	s.hostLive.Store(true)
	h.SetStreamHandler(ProtoHeads, s.handle(ProtoHeads, s.serveHeads))
	h.SetStreamHandler(ProtoAnnounce, s.handle(ProtoAnnounce, s.serveAnnounce))
	h.SetStreamHandler(ProtoSync, s.handle(ProtoSync, s.serveSync))
	h.SetStreamHandler(ProtoManifest, s.handleWith(ProtoManifest, s.renewal, s.serveManifest))
	h.SetStreamHandler(ProtoOrders, s.handle(ProtoOrders, s.serveOrders))
	h.SetStreamHandler(ProtoAudit, s.handle(ProtoAudit, s.serveAudit))
	h.SetStreamHandler(ProtoRecover, s.handle(ProtoRecover, s.serveRecover))
	h.SetStreamHandler(ProtoPolicy, s.handle(ProtoPolicy, s.servePolicy))
	h.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) { s.connected(c.RemotePeer()) },
	})
	s.log.Info("federation listening", "peer", s.self, "addrs", h.Addrs())
	s.applyMembers()
	s.wg.Add(1)
	go s.announcer()
	return nil
}

// Addrs are the host's listen addresses (empty while no host runs).
func (s *Service) Addrs() []ma.Multiaddr {
	h := s.Host()
	if h == nil {
		return nil
	}
	return h.Addrs()
}

// Install applies a newly installed manifest (already checked and saved):
// members removed are cut off, members added get a worker, and peers hear
// of the new version. psk may be nil to keep the current key.
func (s *Service) Install(m *membership.Manifest, raw []byte, psk pnet.PSK) error {
	st, err := newMemberState(m, raw)
	if err != nil {
		return err
	}
	s.state.Store(st)
	s.metrics.manifestVersion.Set(float64(m.Version))
	s.log.Info("manifest applied", "version", m.Version, "members", len(m.Members))
	s.termMu.Lock()
	defer s.termMu.Unlock()
	if psk != nil {
		s.cfg.PSK = psk
	}
	if !s.up {
		return nil // no term runs (a replica that is not the leader): the next one uses it
	}
	if s.Host() == nil {
		if s.cfg.PSK == nil {
			return errors.New("federation key (swarm.key) needed to start the federation")
		}
		return s.startHost()
	}
	s.applyMembers()
	return nil
}

// HasKey says whether the service has the federation key (swarm.key) a
// host needs; without it a term cannot federate.
func (s *Service) HasKey() bool {
	s.termMu.Lock()
	defer s.termMu.Unlock()
	return s.cfg.PSK != nil
}

// applyMembers reconciles connections and workers with the manifest.
func (s *Service) applyMembers() {
	st := s.state.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, w := range s.workers {
		if _, ok := st.byPeer[id]; !ok {
			w.stop()
			delete(s.workers, id)
			delete(s.peers, id)
			s.h().Network().ClosePeer(id)
			s.log.Info("member removed: disconnected", "peer", id)
		}
	}
	for id := range st.byPeer {
		if id == s.self {
			continue
		}
		s.h().Peerstore().SetAddrs(id, st.addrs[id], peerstore.PermanentAddrTTL)
		if _, ok := s.workers[id]; !ok {
			s.peers[id] = &peerInfo{}
			w := newPeerWorker(s, id)
			s.workers[id] = w
			s.wg.Add(1)
			go w.run()
		} else {
			s.workers[id].retryNow() // a new manifest may be what the peer was waiting for
		}
	}
}

func (s *Service) trigger(id peer.ID) {
	s.mu.Lock()
	w := s.workers[id]
	s.mu.Unlock()
	if w != nil {
		w.kick()
	}
}

// connected is told of every new connection. A member's worker runs a
// round, unless it is in backoff (see peerWorker.run); the order relay is
// told at once of a member that was healthy, and of the others when a
// round with them succeeds again. A connection a refusing peer closes
// right after the handshake must not restart the relay or the round at
// once: that loop redialled hundreds of times a second.
func (s *Service) connected(id peer.ID) {
	s.mu.Lock()
	w := s.workers[id]
	s.mu.Unlock()
	if w == nil {
		return
	}
	if !w.failing.Load() {
		s.notifyConnected(id)
	}
	w.kick()
}

// ErrUnreachable means a member's node is not connected and this node
// is backing off from dialling it.
var ErrUnreachable = errors.New("member unreachable")

// backingOff reports whether p's worker is in backoff with p not
// connected: requests that would dial it wait for the worker's schedule.
func (s *Service) backingOff(p peer.ID) bool {
	s.mu.Lock()
	w := s.workers[p]
	s.mu.Unlock()
	return w != nil && w.failing.Load() && s.h().Network().Connectedness(p) != network.Connected
}

func (s *Service) notifyConnected(id peer.ID) {
	if country, err := s.countryOf(id); err == nil && s.cfg.Connected != nil {
		s.cfg.Connected(country)
	}
}

// Published tells the service the local log grew; it announces the new
// heads to connected members. It never blocks.
func (s *Service) Published() {
	select {
	case s.announce <- struct{}{}:
	default:
	}
}

// Close ends the term: Stop.
func (s *Service) Close() error { return s.Stop() }

// Stop ends the term: it stops the workers, closes the host, waits for
// every goroutine of the term and returns the first error. The manifest
// stays applied, and Start begins a new term.
func (s *Service) Stop() error {
	s.termMu.Lock()
	defer s.termMu.Unlock()
	return s.stopLocked()
}

func (s *Service) stopLocked() error {
	if !s.up {
		return nil
	}
	s.up = false
	s.term.Load().cancel()
	s.mu.Lock()
	for _, w := range s.workers {
		w.stop()
	}
	s.mu.Unlock()
	var err error
	if h := s.Host(); h != nil {
		s.hostLive.Store(false)
		err = h.Close()
	}
	s.wg.Wait()
	s.refusals.flush(true) // what the host refused while it closed
	// The next term dials and syncs afresh.
	s.mu.Lock()
	s.workers = make(map[peer.ID]*peerWorker)
	s.peers = make(map[peer.ID]*peerInfo)
	s.mu.Unlock()
	return err
}
