package node

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/pnet"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/imtgt/imtgt-node/access"
	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/federation"
	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/httpapi"
	"github.com/imtgt/imtgt-node/keys"
	"github.com/imtgt/imtgt-node/membership"
	"github.com/imtgt/imtgt-node/orders"
	"github.com/imtgt/imtgt-node/policy"
	"github.com/imtgt/imtgt-node/refdata"
	"github.com/imtgt/imtgt-node/sellers"
	"github.com/imtgt/imtgt-node/store"
)

// Version is the binary's version, set at build time with
// -ldflags "-X github.com/imtgt/imtgt-node/node.Version=…".
var Version = "dev"

// Paths inside a node directory.
const (
	ConfigFile        = "config.yaml"
	OperatorTokenFile = "operator.token"
	KeysDir           = "keys"
	DataDir           = "data"
	StoreFile         = "node.db"
)

// ErrNodeExists is returned by Init for a directory that already holds files.
var ErrNodeExists = errors.New("directory already holds a node")

// loadDir reads the configuration and keys of the node directory dir.
func loadDir(dir string) (Config, *keys.Set, error) {
	cfg, err := LoadConfig(filepath.Join(dir, ConfigFile))
	if err != nil {
		return Config{}, nil, err
	}
	ks, err := keys.Load(filepath.Join(dir, KeysDir))
	if err != nil {
		return Config{}, nil, err
	}
	return cfg, ks, nil
}

// StorePath is the store file of the node in dir.
func StorePath(dir string) string { return filepath.Join(dir, DataDir, StoreFile) }

// InitOptions are the flags of "imtgt-node init".
type InitOptions struct {
	Dir      string
	Country  string
	Name     string // "" = "<Country name> national node"
	HTTPAddr string // "" = DefaultHTTPAddr
	// P2PAddrs are the replicas' federation addresses: the first is the
	// config's p2p.addr, all of them go into p2p.advertise (and the member
	// descriptor). Empty (or "") = DefaultP2PAddr.
	P2PAddrs []string
	// StoreURL, when set, makes the store a PostgreSQL database (created
	// here) instead of DIR/data/node.db.
	StoreURL string
}

// InitResult tells what Init created.
type InitResult struct {
	Dir           string
	OperatorToken string
	NodePublicKey string
	Config        Config
}

// Init creates a node directory. Everything is built in a sibling temporary
// directory and renamed into place at the end, so a failed init leaves
// nothing behind and a half-initialised node cannot exist.
func Init(opts InitOptions) (*InitResult, error) {
	country := strings.ToUpper(strings.TrimSpace(opts.Country))
	if _, ok := refdata.CountryByCode(country); !ok {
		return nil, fmt.Errorf("%w: --country %q is not a member country (one of %s)", ErrConfig, opts.Country, countryCodes())
	}
	cfg := DefaultConfig(country)
	if opts.Name != "" {
		cfg.Node.Name = opts.Name
	}
	if opts.HTTPAddr != "" {
		cfg.HTTP.Addr = opts.HTTPAddr
	}
	addrs := slices.DeleteFunc(slices.Clone(opts.P2PAddrs), func(a string) bool { return a == "" })
	if len(addrs) > 0 {
		cfg.P2P.Addr = addrs[0]
	}
	if len(addrs) > 1 {
		cfg.P2P.Advertise = addrs
	}
	if opts.StoreURL != "" {
		if err := ValidateStoreURL(opts.StoreURL); err != nil {
			return nil, fmt.Errorf("%w: --store-url: %w", ErrConfig, err)
		}
		cfg.Store.URL = opts.StoreURL
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		what := "files"
		if _, err := os.Stat(filepath.Join(dir, ConfigFile)); err == nil {
			what = "a node (config.yaml)"
		}
		return nil, fmt.Errorf("%w: %s already holds %s; choose another --dir, or remove it to start over", ErrNodeExists, dir, what)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".init-")
	if err != nil {
		return nil, fmt.Errorf("create node directory: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o700); err != nil {
		return nil, err
	}
	ks, err := keys.Generate(filepath.Join(tmp, KeysDir))
	if err != nil {
		return nil, err
	}
	rendered, err := cfg.Render()
	if err != nil {
		return nil, err
	}
	if err := keys.WriteFileExclusive(filepath.Join(tmp, ConfigFile), rendered); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(tmp, DataDir), 0o700); err != nil {
		return nil, err
	}
	token, _, err := access.NewToken(access.Operator)
	if err != nil {
		return nil, err
	}
	db, err := createdStore(tmp, cfg)
	if err != nil {
		return nil, err
	}
	pub, err := createStore(db, ks, country, token, "init: the country's default policy", nil)
	if err != nil {
		return nil, err
	}
	if err := keys.WriteFileExclusive(filepath.Join(tmp, OperatorTokenFile), []byte(token+"\n")); err != nil {
		return nil, err
	}
	// An empty --dir made by the operator is replaced; rmdir fails on a
	// directory that was filled meanwhile, so nothing is clobbered.
	if err := os.Remove(dir); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("%w: %s: %v", ErrNodeExists, dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("%w: move node directory into place: %v", ErrNodeExists, err)
	}
	ok = true
	return &InitResult{Dir: dir, OperatorToken: token, NodePublicKey: pub, Config: cfg}, nil
}

// createStore fills the new store db (and closes it) for the node with keys ks: its identity,
// the operator token's hash, and the country's default policy signed by
// the agency key (a node never runs without a signed policy). pending,
// when not nil, marks it for reconciliation (a store made anew after it
// was lost). It returns the node's public key, hex.
func createStore(db *store.DB, ks *keys.Set, country, operatorToken, why string, pending *store.Reconcile, entries ...*audit.Entry) (string, error) {
	pub := hex.EncodeToString(ks.Node.Public().(ed25519.PublicKey))
	now := time.Now().UTC()
	err := db.SetNodeMeta(store.NodeMeta{Country: country, NodePublicKey: pub, CreatedAt: now})
	if err == nil {
		err = db.VerifyDataKey(ks.Data.Fingerprint(), ks.Data) // records it
	}
	if err == nil {
		err = db.PutToken(context.Background(), access.HashToken(operatorToken), access.Principal{Role: access.Operator, Subject: "operator", CreatedAt: now})
	}
	if err == nil {
		var raw []byte
		if raw, err = signedDefaultPolicy(country, ks.Governance); err == nil {
			var p *policy.Policy
			if p, err = policy.Parse("default policy", raw); err == nil {
				err = db.SavePolicy(raw, p.Version, policyInstalled(p, raw, why))
			}
		}
	}
	if err == nil && pending != nil {
		err = db.SetReconcile(*pending, entries...)
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return pub, err
}

// ReadOperatorToken reads DIR/operator.token.
func ReadOperatorToken(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, OperatorTokenFile))
	if err != nil {
		return "", fmt.Errorf("read operator token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Options change how Open runs a node; the zero value is what "run" uses.
type Options struct {
	Logger *slog.Logger // nil: built from the config's log settings, to stderr
	// HTTPAddr overrides the config's listen address (tests use
	// "127.0.0.1:0"); P2PAddr the federation's (run --p2p-addr: each
	// replica of a node has its own).
	HTTPAddr string
	P2PAddr  string
	// SyncInterval overrides the federation's safety-net sync period.
	SyncInterval time.Duration
	// CheckpointInterval overrides DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// NoAudit turns the audit log off: only benchmarks set it, to measure
	// what auditing costs (see store.Options.NoAudit).
	NoAudit bool
	// Now is the clock of orders and their after-sale issues (nil:
	// time.Now): tests move it past an issue's deadlines instead of
	// waiting for them.
	Now func() time.Time
}

// Node is a running national node.
type Node struct {
	Dir     string
	Config  Config
	Keys    *keys.Set
	Store   *store.DB
	Sellers *sellers.Registry
	Catalog *catalog.Catalog
	Metrics *prometheus.Registry
	Fed     *federation.Service
	log     *slog.Logger
	// p2pKey is the node's libp2p identity (from Keys.Node): it signs
	// federation records and audit checkpoints.
	p2pKey crypto.PrivKey
	// installMu serialises manifest installs (CLI and peers).
	installMu sync.Mutex
	httpSrv   *http.Server
	listener  net.Listener
	wg        sync.WaitGroup
	serveErr  chan error
	closed    bool
	mu        sync.Mutex
	policy    atomic.Pointer[policyState]
	Orders    *orders.Service
	fedOrders atomic.Pointer[orders.Service]
	cancel    context.CancelFunc
	// fedCatalog lets the federation service, built before the catalog
	// (whose Published hook is the service's), reach the catalog.
	fedCatalog atomic.Pointer[catalog.Catalog]
	// rejects queues refusals for the audit writer; rejectsDropped counts
	// those a full queue turned away.
	rejects         chan *audit.Entry
	rejectsDropped  atomic.Int64
	checkpointMu    sync.Mutex
	checkpointEvery time.Duration
	// Replicas (replica.go): shared is nil on a store no other replica
	// shares; holder names this process in the federation lease; leader
	// says whether it runs the federation; feedSeq is the last change of
	// the store's feed this replica applied (feedMu serialises catch-ups),
	// feedLast that change itself, feedErrs what could not be applied, by
	// kind (readyz); leadErr why this replica cannot lead.
	shared    sharedStore
	holder    string
	stopTerm  func() // a bbolt node's one term
	leader    atomic.Bool
	feedSeq   atomic.Uint64
	feedMu    sync.Mutex
	feedLast  store.Changed
	feedErrMu sync.Mutex
	feedErrs  map[string]error
	leadErr   atomic.Pointer[error]
	// fedStore is the store the federation term writes through: fenced
	// by the lease's epoch on a shared store (startTerm), else Store.
	fedStore atomic.Pointer[store.DB]

	// peerPolicies are the members' policies (peerpolicy.go), by country;
	// peerPolicyMu serialises their saves.
	peerPolicies atomic.Pointer[map[string]*peerPolicyState]
	peerPolicyMu sync.Mutex
}

// Open loads the node in dir: configuration, keys, store and catalog index.
// It does not listen yet; Start does.
func Open(ctx context.Context, dir string, opts Options) (*Node, error) {
	cfg, err := LoadConfig(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, err
	}
	if opts.HTTPAddr != "" {
		cfg.HTTP.Addr = opts.HTTPAddr
	}
	log := opts.Logger
	if log == nil {
		log = NewLogger(os.Stderr, cfg.Log)
	}
	log = log.With("country", cfg.Node.Country)
	ks, err := keys.Load(filepath.Join(dir, KeysDir))
	if err != nil {
		return nil, err
	}
	if opts.P2PAddr != "" {
		if err := validateP2PAddr(opts.P2PAddr); err != nil {
			return nil, fmt.Errorf("%w: --p2p-addr: %w", ErrConfig, err)
		}
		cfg.P2P.Addr = opts.P2PAddr
	}
	db, err := openStore(ctx, dir, cfg, store.Options{NoAudit: opts.NoAudit})
	if err != nil {
		return nil, err
	}
	log.Info("store checked", "path", db.Path(), "bytes", db.Size(), "took", db.VerifyTook().Round(time.Millisecond))
	n := &Node{Dir: dir, Config: cfg, Keys: ks, Store: db, log: log, rejects: make(chan *audit.Entry, rejectQueue),
		checkpointEvery: cmp.Or(opts.CheckpointInterval, DefaultCheckpointInterval), shared: sharedOf(db), holder: holderID()}
	if n.shared != nil {
		// Changes committed from here on are applied after the load below
		// (again, if the load saw them: applying is idempotent).
		head, err := n.shared.ChangesHead(ctx)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("store change feed: %w", err)
		}
		n.feedSeq.Store(head)
	}
	if err := n.checkStoreOwner(); err != nil {
		db.Close()
		return nil, err
	}
	if err := checkDataKey(dir, db, ks.Data); err != nil {
		db.Close()
		return nil, err
	}
	country, _ := refdata.CountryByCode(cfg.Node.Country)
	n.Sellers = sellers.NewRegistry(db, ks.Data, cfg.Node.Country)
	n.Metrics = prometheus.NewRegistry()
	if n.p2pKey, _, err = federation.Identity(ks.Node); err != nil {
		db.Close()
		return nil, err
	}
	pending, err := db.PendingReconcile()
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := n.openFederation(opts, pending); err != nil {
		db.Close()
		return nil, err
	}
	if err := n.openPolicy(); err != nil {
		db.Close()
		return nil, err
	}
	if err := n.loadPeerPolicies(); err != nil {
		db.Close()
		return nil, err
	}
	if err := n.auditGenesis(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("audit log: %w", err)
	}
	n.Catalog = catalog.New(db, catalog.NewIndex(), catalog.Config{
		Country: cfg.Node.Country, Currency: country.Currency,
		Seal: federation.RecordSealer(n.p2pKey, cfg.Node.Country, time.Now, func() *policy.Policy {
			p, _ := n.Policy()
			return p
		}),
		Published:   n.Fed.Published,
		ExportHolds: n.exportHolds,
	})
	n.Catalog.SetReconciling(pending != nil)
	n.fedCatalog.Store(n.Catalog)
	n.Orders = orders.New(orders.Config{
		Country: cfg.Node.Country, Store: db, Catalog: n.Catalog,
		Policy: func() *policy.Policy { p, _ := n.Policy(); return p },
		Key:    ks.Data, Seal: n.Catalog.Seal(), Sign: n.Fed.SignReceipt, OwnReceipt: n.ownReceipt, PeerReceipt: n.Fed.OpenReceipt,
		PeerPolicy: n.peerPolicyVersion, Now: opts.Now,
		Logger: log, Registry: n.Metrics, Audit: n.Audit,
	})
	n.fedOrders.Store(n.Orders)
	start := time.Now()
	if err := n.Catalog.Load(ctx); err != nil {
		db.Close()
		return nil, err
	}
	log.Info("catalog loaded", "listings", n.Catalog.Index().Count(), "took", time.Since(start).Round(time.Millisecond))
	// A policy installed while the node was stopped may hold or release
	// listings: apply its export rules before serving (after a restore,
	// once the reconciliation is done: finishReconcile).
	if pending != nil {
		log.Warn("store restored: reconciling with every member before publishing", "reason", pending.Reason, "orders_since", pending.Since)
	} else if changed, err := n.Catalog.Reexport(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("apply export rules: %w", err)
	} else if changed > 0 {
		log.Info("export rules re-applied", "listings_changed", changed)
	}
	n.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n.Metrics.MustRegister(newNodeCollector(n))
	return n, nil
}

// openFederation loads the installed manifest and federation key, and
// builds the (not yet started) federation service.
func (n *Node) openFederation(opts Options, pending *store.Reconcile) error {
	raw, err := n.Store.Manifest()
	if err != nil {
		return err
	}
	var m *membership.Manifest
	if raw != nil {
		if m, err = membership.Parse(raw); err != nil {
			return fmt.Errorf("installed manifest: %w", err)
		}
	}
	var psk pnet.PSK
	if b, err := loadPSK(n.Dir, n.Store, n.Keys.Data); err != nil {
		return err
	} else if b != nil {
		if psk, err = federation.ParsePSK(b); err != nil {
			return err
		}
	}
	n.Fed, err = federation.New(federation.Config{
		Country: n.Config.Node.Country, Key: n.p2pKey, ListenAddr: n.Config.P2P.Addr, PSK: psk,
		Manifest: m, ManifestRaw: raw, Catalog: nil,
		CatalogFunc: func() *catalog.Catalog { return n.fedCatalog.Load() },
		Orders: func() federation.OrderHandler {
			if o := n.fedOrders.Load(); o != nil {
				return o
			}
			return nil
		},
		SaveManifest: n.saveReceivedManifest,
		Reconcile:    n.reconcileConfig(pending),
		Rewound:      n.rewound,
		Recoverable: func(ctx context.Context, seller string, since time.Time, after string, max int) ([]*pb.RecoveredOrder, []*audit.Entry, bool, error) {
			o := n.fedOrders.Load()
			if o == nil {
				return nil, nil, false, errors.New("the order service is not up yet")
			}
			return o.Recoverable(ctx, seller, since, after, max)
		},
		Logger: n.log, Registry: n.Metrics, SyncInterval: opts.SyncInterval,
		Policy: func() *policy.Policy { p, _ := n.Policy(); return p },
		Audit:  n.Audit, Rejected: n.auditRejected, WitnessPeer: n.witnessPeer,
		Connected: func(country string) {
			if o := n.fedOrders.Load(); o != nil {
				o.RetryNow(country)
			}
		},
		OwnPolicy: n.ownPolicyRaw, SavePeerPolicy: n.savePeerPolicy,
	})
	return err
}

// Peers reports the federation's members (httpapi.Federation).
func (n *Node) Peers(ctx context.Context) []federation.PeerStatus { return n.Fed.Peers(ctx) }

// Manifest returns the installed manifest (httpapi.Federation).
func (n *Node) Manifest() (*membership.Manifest, []byte) { return n.Fed.Manifest() }

// openPolicy loads and verifies the installed policy. A node never runs
// without a valid signed policy: init installs the country's default.
func (n *Node) openPolicy() error {
	raw, err := n.Store.Policy()
	if err != nil {
		return err
	}
	if raw == nil {
		return fmt.Errorf("%w: no policy installed in %s (init installs the default; install one with imtgt-node policy install)", ErrPolicy, n.Store.Path())
	}
	_, mraw := n.Fed.Manifest()
	key, err := agencyKey(mraw, n.Keys, n.Config.Node.Country)
	if err != nil {
		return err
	}
	p, err := policy.Parse("installed policy", raw)
	if err != nil {
		return err
	}
	if err := policy.Verify(raw, p, key); err != nil {
		return fmt.Errorf("installed policy: %w", err)
	}
	n.policy.Store(&policyState{p: p, raw: raw})
	return nil
}

// checkStoreOwner refuses a store that belongs to another node (a backup
// restored into the wrong directory).
func (n *Node) checkStoreOwner() error {
	meta, err := n.Store.NodeMeta()
	if err != nil {
		return fmt.Errorf("store %s: %w", n.Store.Path(), err)
	}
	pub := hex.EncodeToString(n.Keys.Node.Public().(ed25519.PublicKey))
	if meta.NodePublicKey != pub || meta.Country != n.Config.Node.Country {
		return fmt.Errorf("store %s belongs to node %s…(%s), not this node %s…(%s)",
			n.Store.Path(), meta.NodePublicKey[:min(12, len(meta.NodePublicKey))], meta.Country, pub[:12], n.Config.Node.Country)
	}
	return nil
}

// Start listens on the HTTP address and serves in the background.
func (n *Node) Start(ctx context.Context) error {
	country, _ := refdata.CountryByCode(n.Config.Node.Country)
	api := httpapi.New(httpapi.Config{
		Node:           httpapi.NodeInfo{Name: n.Config.Node.Name, Country: n.Config.Node.Country, Currency: country.Currency, Version: Version},
		Sellers:        n.Sellers,
		Catalog:        n.Catalog,
		Tokens:         newTokens(n.Store),
		Backup:         n.Store,
		Ready:          n.ready,
		Role:           n.Role,
		Registry:       n.Metrics,
		Logger:         n.log,
		MaxBodyBytes:   n.Config.HTTP.MaxBodyBytes,
		MaxImportBytes: n.Config.HTTP.MaxImportBytes,
		Federation:     n,
		InstallRefused: ErrInstall,
		Policies:       n,
		PolicyRefused:  ErrPolicy,
		Orders:         n.Orders,
		Marketplaces:   n.Store,
		Auditing:       n,
		Auditors:       n.Store,
	})
	ln, err := net.Listen("tcp", n.Config.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", n.Config.HTTP.Addr, err)
	}
	n.listener = ln
	n.httpSrv = &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second, // bulk imports of tens of MB
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
	}
	n.serveErr = make(chan error, 1)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.serveErr <- err
		}
	}()
	n.log.Info("node serving", "http", n.HTTPURL(), "name", n.Config.Node.Name)
	bg, cancel := context.WithCancel(context.Background())
	if n.shared == nil {
		// The only replica: always the leader.
		stop, err := n.startTerm(0)
		if err != nil {
			cancel()
			return err
		}
		n.stopTerm = stop
	} else {
		n.log.Info("federation follower", "holder", n.holder)
		n.wg.Add(2)
		go func() {
			defer n.wg.Done()
			n.leaderLoop(bg)
		}()
		go func() {
			defer n.wg.Done()
			n.followLoop(bg)
		}()
	}
	n.cancel = cancel
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		n.auditWriter(bg)
	}()
	go func() {
		defer n.wg.Done()
		n.retentionLoop(bg)
	}()
	return nil
}

// retentionLoop erases buyers' personal data whose retention (the
// installed policy's rule for buyer records) has ended, and forgets
// sellers' listing Idempotency-Keys older than catalog.KeyRetention, hourly.
func (n *Node) retentionLoop(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		p, _ := n.Policy()
		if r, ok := p.RetentionFor(policy.KindBuyer); ok {
			if k, err := n.Orders.EraseExpired(ctx, r.Days, time.Now()); err != nil {
				n.log.Error("retention", "err", err)
			} else if k > 0 {
				n.log.Info("erased buyers' personal data at the end of retention", "orders", k, "rule", r.ID)
			}
		}
		if k, err := n.Store.PruneListingKeys(ctx, time.Now().Add(-catalog.KeyRetention)); err != nil {
			n.log.Error("retention of listing idempotency keys", "err", err)
		} else if k > 0 {
			n.log.Info("forgot listing idempotency keys past their retention", "keys", k)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Err is closed-over failures of the background server, for "run" to watch.
func (n *Node) Err() <-chan error { return n.serveErr }

// HTTPURL is the base URL of the HTTP API once started.
func (n *Node) HTTPURL() string {
	if n.listener == nil {
		return ""
	}
	return "http://" + n.listener.Addr().String()
}

func (n *Node) ready(ctx context.Context) []httpapi.Check {
	checks := []httpapi.Check{{Name: "keys", Err: n.checkKeys()}}
	_, err := n.Store.SchemaVersion()
	checks = append(checks, httpapi.Check{Name: "store", Err: err})
	checks = append(checks, httpapi.Check{Name: "federation_manifest", Err: n.Fed.Ready()})
	checks = append(checks, httpapi.Check{Name: "reconcile", Err: n.reconcileCheck()})
	checks = append(checks, httpapi.Check{Name: "storage", Err: n.Store.SpaceCheck()})
	if n.shared != nil {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := n.shared.Ping(pctx)
		cancel()
		checks = append(checks, httpapi.Check{Name: "database", Err: err})
		checks = append(checks, httpapi.Check{Name: "replica_feed", Err: n.feedCheck()})
		var lead error
		if e := n.leadErr.Load(); e != nil {
			lead = *e
		}
		checks = append(checks, httpapi.Check{Name: "federation_key", Err: lead})
	}
	return checks
}

// Close stops serving (letting in-flight requests finish until ctx ends),
// waits for the background goroutines and closes the store. It returns the
// first error.
func (n *Node) Close(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	var first error
	if n.cancel != nil {
		n.cancel()
	}
	if n.httpSrv != nil {
		if err := n.httpSrv.Shutdown(ctx); err != nil {
			first = fmt.Errorf("http shutdown: %w", err)
			n.httpSrv.Close()
		}
	}
	n.wg.Wait() // a replica's leader loop ends its term and releases the lease
	if n.stopTerm != nil {
		n.stopTerm()
	}
	if err := n.Fed.Close(); err != nil && first == nil {
		first = fmt.Errorf("close federation: %w", err)
	}
	// Refusals queued while the federation shut down.
	for pending := true; pending; {
		select {
		case e := <-n.rejects:
			if err := n.Store.AppendAudit(ctx, e); err != nil && first == nil {
				first = fmt.Errorf("audit: %w", err)
			}
		default:
			pending = false
		}
	}
	if err := n.Store.Close(); err != nil && first == nil {
		first = fmt.Errorf("close store: %w", err)
	}
	n.log.Info("node stopped")
	return first
}

// NewLogger builds the node's logger from its config.
func NewLogger(w io.Writer, c LogConfig) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level)) // validated at load
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// nodeCollector exports gauges read at scrape time: store size and listings
// by origin. Reading at scrape time keeps them off the write paths.
type nodeCollector struct {
	n        *Node
	size     *prometheus.Desc
	listings *prometheus.Desc
	auditSeq *prometheus.Desc
	dropped  *prometheus.Desc
	leader   *prometheus.Desc
}

func newNodeCollector(n *Node) *nodeCollector {
	return &nodeCollector{
		n:        n,
		size:     prometheus.NewDesc("imtgt_store_size_bytes", "Size of the node's bbolt store.", nil, nil),
		listings: prometheus.NewDesc("imtgt_catalog_listings", "Listings in the catalog by origin country.", []string{"origin"}, nil),
		auditSeq: prometheus.NewDesc("imtgt_audit_entries", "Sequence number of the audit log's last entry.", nil, nil),
		dropped:  prometheus.NewDesc("imtgt_audit_rejections_dropped_total", "Refusals not written to the audit log because its queue was full.", nil, nil),
		leader:   prometheus.NewDesc("imtgt_replica_leader", "1 on the replica that runs the federation (the leader), 0 on a follower.", nil, nil),
	}
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.size
	ch <- c.listings
	ch <- c.auditSeq
	ch <- c.dropped
	ch <- c.leader
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(c.n.Store.Size()))
	for origin, count := range c.n.Catalog.Index().CountByOrigin() {
		ch <- prometheus.MustNewConstMetric(c.listings, prometheus.GaugeValue, float64(count), origin)
	}
	if seq, _, err := c.n.Store.AuditHead(context.Background()); err == nil {
		ch <- prometheus.MustNewConstMetric(c.auditSeq, prometheus.GaugeValue, float64(seq))
	}
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(c.n.rejectsDropped.Load()))
	leader := 0.0
	if c.n.leader.Load() {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(c.leader, prometheus.GaugeValue, leader)
}
