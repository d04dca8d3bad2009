package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/imtgt/imtgt-node/access"
	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/orders"
	"github.com/imtgt/imtgt-node/sellers"
)

// Default limits.
const (
	DefaultMaxBodyBytes   = 1 << 20  // JSON bodies
	DefaultMaxImportBytes = 32 << 20 // bulk import files
	DefaultPageLimit      = 20
	MaxPageLimit          = 100
)

// Tokens resolves a token hash to its principal.
type Tokens interface {
	Principal(ctx context.Context, hash string) (access.Principal, error)
}

// Backuper writes a consistent copy of the node's store.
type Backuper interface {
	Backup(w io.Writer, onSize func(int64)) (int64, error)
}

// Check is one readiness check: nil Err means ready.
type Check struct {
	Name string
	Err  error
}

// NodeInfo is what GET /v1/node tells about the node.
type NodeInfo struct {
	Name     string `json:"name"`
	Country  string `json:"country"`
	Currency string `json:"currency"`
	Version  string `json:"version"`
}

// Config wires a Server to the node's parts.
type Config struct {
	Node    NodeInfo
	Sellers *sellers.Registry
	Catalog *catalog.Catalog
	Tokens  Tokens
	Backup  Backuper
	Ready   func(ctx context.Context) []Check
	// Role is the replica's part in its node: "leader" (runs the
	// federation) or "follower". Nil: "leader" (a node of one replica).
	Role           func() string
	Registry       *prometheus.Registry // nil: a fresh one
	Logger         *slog.Logger         // nil: slog.Default()
	MaxBodyBytes   int64
	MaxImportBytes int64
	Federation     Federation
	// InstallRefused is the sentinel the node wraps around a refused
	// manifest install (answered 422).
	InstallRefused error
	Policies       Policies
	Orders         *orders.Service
	Marketplaces   Marketplaces
	// PolicyRefused is the sentinel of a refused policy install (422).
	PolicyRefused error
	// Auditing is the node's audit log: the audit routes read it, and
	// every admin act the API performs is appended to it. Nil: the audit
	// routes fail and admin acts are not recorded (tests only).
	Auditing Auditing
	// Auditors keeps the auditors and their tokens.
	Auditors Auditors
}

// Server is the HTTP API of one node.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	metrics *metrics
}

// New returns a server with defaults filled in.
func New(cfg Config) *Server {
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxImportBytes == 0 {
		cfg.MaxImportBytes = DefaultMaxImportBytes
	}
	if cfg.Role == nil {
		cfg.Role = func() string { return "leader" }
	}
	if cfg.Ready == nil {
		cfg.Ready = func(context.Context) []Check { return nil }
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("system", "http"), mux: http.NewServeMux()}
	s.metrics = newMetrics(cfg.Registry)
	for _, rt := range s.routes() {
		s.mux.Handle(rt.Method+" "+rt.Pattern, s.wrap(rt))
	}
	s.mux.Handle("/", s.wrap(route{Pattern: "unmatched", handler: func(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
		return errorf(http.StatusNotFound, "no_route", "no route %s %s", r.Method, r.URL.Path)
	}}))
	return s
}

// Handler is the server's root handler.
func (s *Server) Handler() http.Handler { return s.mux }

// route is one entry of the API.
type route struct {
	Method  string
	Pattern string
	// Roles admitted; nil means no token is needed. trading admits every
	// authenticated principal but the auditor.
	Roles   []access.Role
	Limit   int64 // body limit; 0 = MaxBodyBytes
	handler func(w http.ResponseWriter, r *http.Request, p *access.Principal) error
}

// trading is every role that takes part in the node's trade: all but the
// auditor. An auditor's token reads the audit routes and nothing else
// (see wrap), so that a token handed to an outside authority shows it
// the evidence, not the catalog, the sellers or the orders.
var trading = []access.Role{access.Operator, access.Seller, access.Marketplace}

// Route is the public description of a route, for tests and docs.
type Route struct{ Method, Pattern string }

// Routes lists every route the server serves.
func (s *Server) Routes() []Route {
	var out []Route
	for _, rt := range s.routes() {
		out = append(out, Route{rt.Method, rt.Pattern})
	}
	return out
}

func (s *Server) routes() []route {
	op := []access.Role{access.Operator}
	seller := []access.Role{access.Seller}
	sellerOrOp := []access.Role{access.Seller, access.Operator}
	auditorOrOp := []access.Role{access.Auditor, access.Operator}
	mkt := []access.Role{access.Marketplace}
	mktSellerOp := []access.Role{access.Marketplace, access.Seller, access.Operator}
	return []route{
		{Method: "GET", Pattern: "/healthz", handler: s.healthz},
		{Method: "GET", Pattern: "/readyz", handler: s.readyz},
		{Method: "GET", Pattern: "/metrics", Roles: op, handler: s.metricsHandler},
		{Method: "GET", Pattern: "/v1/node", Roles: trading, handler: s.nodeInfo},
		{Method: "GET", Pattern: "/v1/admin/backup", Roles: op, handler: s.backup},

		{Method: "POST", Pattern: "/v1/sellers", handler: s.registerSeller},
		{Method: "GET", Pattern: "/v1/sellers", Roles: op, handler: s.listSellers},
		{Method: "GET", Pattern: "/v1/sellers/{id}", Roles: trading, handler: s.getSeller},
		{Method: "POST", Pattern: "/v1/sellers/{id}/approve", Roles: op, handler: s.approveSeller},
		{Method: "POST", Pattern: "/v1/sellers/{id}/suspend", Roles: op, handler: s.suspendSeller},

		{Method: "POST", Pattern: "/v1/listings", Roles: seller, handler: s.createListing},
		{Method: "GET", Pattern: "/v1/listings", Roles: sellerOrOp, handler: s.listListings},
		{Method: "POST", Pattern: "/v1/listings/import", Roles: seller, Limit: s.cfg.MaxImportBytes, handler: s.importListings},
		{Method: "GET", Pattern: "/v1/listings/{id}", Roles: sellerOrOp, handler: s.getListing},
		{Method: "PATCH", Pattern: "/v1/listings/{id}", Roles: seller, handler: s.updateListing},
		{Method: "DELETE", Pattern: "/v1/listings/{id}", Roles: seller, handler: s.deleteListing},

		{Method: "GET", Pattern: "/v1/peers", Roles: op, handler: s.peers},
		{Method: "GET", Pattern: "/v1/federation/manifest", Roles: op, handler: s.getManifest},
		{Method: "POST", Pattern: "/v1/federation/manifest", Roles: op, handler: s.installManifest},
		{Method: "GET", Pattern: "/v1/federation/policies", Roles: auditorOrOp, handler: s.peerPolicies},

		{Method: "GET", Pattern: "/v1/catalog/search", Roles: trading, handler: s.search},
		{Method: "GET", Pattern: "/v1/catalog/listings/{id}", Roles: trading, handler: s.catalogListing},
		{Method: "GET", Pattern: "/v1/catalog/listings/{id}/quote", Roles: trading, handler: s.quoteListing},

		{Method: "POST", Pattern: "/v1/marketplaces", Roles: op, handler: s.createMarketplace},
		{Method: "GET", Pattern: "/v1/marketplaces", Roles: op, handler: s.listMarketplaces},
		{Method: "POST", Pattern: "/v1/orders", Roles: []access.Role{access.Marketplace}, handler: s.placeOrder},
		{Method: "GET", Pattern: "/v1/orders", Roles: []access.Role{access.Marketplace, access.Seller, access.Operator}, handler: s.listOrders},
		{Method: "GET", Pattern: "/v1/orders/{id}", Roles: []access.Role{access.Marketplace, access.Seller, access.Operator}, handler: s.getOrder},
		{Method: "POST", Pattern: "/v1/orders/{id}/cancel", Roles: []access.Role{access.Marketplace}, handler: s.cancelOrder},
		{Method: "POST", Pattern: "/v1/orders/{id}/transitions", Roles: seller, handler: s.transitionOrder},
		{Method: "GET", Pattern: "/v1/outbox", Roles: op, handler: s.outbox},

		{Method: "POST", Pattern: "/v1/orders/{id}/issues", Roles: mkt, handler: s.openIssue},
		{Method: "GET", Pattern: "/v1/issues", Roles: mktSellerOp, handler: s.listIssues},
		{Method: "GET", Pattern: "/v1/issues/{id}", Roles: mktSellerOp, handler: s.getIssue},
		{Method: "POST", Pattern: "/v1/issues/{id}/responses", Roles: []access.Role{access.Marketplace, access.Seller}, handler: s.respondIssue},
		{Method: "POST", Pattern: "/v1/issues/{id}/escalate", Roles: mkt, handler: s.escalateIssue},
		{Method: "POST", Pattern: "/v1/issues/{id}/decisions", Roles: op, handler: s.decideIssue},
		{Method: "POST", Pattern: "/v1/issues/{id}/refunds", Roles: mkt, handler: s.refundIssue},

		{Method: "GET", Pattern: "/v1/policy", Roles: trading, handler: s.getPolicy},
		{Method: "POST", Pattern: "/v1/policy", Roles: op, handler: s.installPolicy},

		{Method: "POST", Pattern: "/v1/auditors", Roles: op, handler: s.createAuditor},
		{Method: "GET", Pattern: "/v1/auditors", Roles: op, handler: s.listAuditors},
		{Method: "GET", Pattern: "/v1/audit/entries", Roles: auditorOrOp, handler: s.auditEntries},
		{Method: "GET", Pattern: "/v1/audit/residency", Roles: auditorOrOp, handler: s.auditResidency},
		{Method: "GET", Pattern: "/v1/audit/witnessed", Roles: auditorOrOp, handler: s.auditWitnessed},
		{Method: "GET", Pattern: "/v1/audit/export", Roles: auditorOrOp, handler: s.auditExport},
	}
}

// wrap adds, around a handler: the body limit, authentication and role
// check, error replies, panic recovery, logging and metrics.
func (s *Server) wrap(rt route) http.Handler {
	limit := rt.Limit
	if limit == 0 {
		limit = s.cfg.MaxBodyBytes
	}
	label := rt.Pattern
	if rt.Method != "" {
		label = rt.Method + " " + rt.Pattern
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if rec := recover(); rec != nil {
				if rec == http.ErrAbortHandler {
					panic(rec)
				}
				s.log.Error("handler panic", "route", label, "panic", rec)
				if sw.status == 0 {
					s.writeError(sw, r, errorf(http.StatusInternalServerError, "internal", "internal error"))
				}
			}
			s.metrics.observe(label, sw.status, time.Since(start))
		}()
		// A body declared larger than the limit is refused before a byte
		// of it is read: reading would only make the client wait (for as
		// long as it takes to send, or until the read timeout) for the
		// same answer.
		if r.ContentLength > limit {
			w.Header().Set("Connection", "close")
			s.writeError(sw, r, &http.MaxBytesError{Limit: limit})
			return
		}
		r.Body = &bodyReader{r: http.MaxBytesReader(sw, r.Body, limit)}
		var p *access.Principal
		if rt.Roles != nil {
			var err error
			if p, err = s.authenticate(r); err != nil {
				s.writeError(sw, r, err)
				return
			}
			if !slices.Contains(rt.Roles, p.Role) {
				s.writeError(sw, r, errorf(http.StatusForbidden, "forbidden", "role %s may not call %s", p.Role, label))
				return
			}
		} else if tok := bearer(r); tok != "" {
			// An optional token still has to be valid: a typo should not
			// silently degrade to anonymous access.
			var err error
			if p, err = s.authenticate(r); err != nil {
				s.writeError(sw, r, err)
				return
			}
			// Not even the open routes: the auditor role is read-only
			// and confined to the audit routes. (A path no route serves
			// is still a 404.)
			if p.Role == access.Auditor && rt.Method != "" {
				s.writeError(sw, r, errorf(http.StatusForbidden, "forbidden", "role auditor may only call the audit routes (GET /v1/audit/...), not %s", label))
				return
			}
		}
		if err := rt.handler(sw, r, p); err != nil {
			s.writeError(sw, r, err)
		}
	})
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(tok)
	}
	return ""
}

func (s *Server) authenticate(r *http.Request) (*access.Principal, error) {
	tok := bearer(r)
	if tok == "" {
		return nil, errorf(http.StatusUnauthorized, "unauthenticated", "this route needs a bearer token (Authorization: Bearer …)")
	}
	if !access.LooksLikeToken(tok) {
		return nil, errorf(http.StatusUnauthorized, "unauthenticated", "unknown token")
	}
	p, err := s.cfg.Tokens.Principal(r.Context(), access.HashToken(tok))
	if errors.Is(err, access.ErrUnknownToken) {
		return nil, errorf(http.StatusUnauthorized, "unauthenticated", "unknown token")
	}
	if err != nil {
		return nil, err
	}
	return &p, nil
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	he := classify(err)
	if he.status >= 500 {
		// The cause goes to the log, never to the client: it may hold
		// internal paths. Request bodies are never logged (personal data).
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if he.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="imtgt-node"`)
	}
	writeJSON(w, he.status, errorBody{Error: he.apiError})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// --- operational routes ---

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

type readyCheck struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	checks := s.cfg.Ready(r.Context())
	out := struct {
		Ready  bool         `json:"ready"`
		Role   string       `json:"role"`
		Checks []readyCheck `json:"checks"`
	}{Ready: true, Role: s.cfg.Role(), Checks: []readyCheck{}}
	for _, c := range checks {
		rc := readyCheck{Name: c.Name, OK: c.Err == nil}
		if c.Err != nil {
			rc.Error = c.Err.Error()
			out.Ready = false
		}
		out.Checks = append(out.Checks, rc)
	}
	status := http.StatusOK
	if !out.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, out)
	return nil
}

func (s *Server) metricsHandler(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	return nil
}

func (s *Server) nodeInfo(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	writeJSON(w, http.StatusOK, s.cfg.Node)
	return nil
}

func (s *Server) backup(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="node.db"`)
	n, err := s.cfg.Backup.Backup(w, func(size int64) {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	})
	if err != nil {
		// Headers are gone; the short body and the client's length check
		// tell the client. Abort so the connection is not reused.
		s.log.Error("backup failed", "bytes", n, "err", err)
		panic(http.ErrAbortHandler)
	}
	s.log.Info("backup served", "bytes", n)
	s.record(r, &audit.Entry{Kind: audit.AdminBackup, Actor: actor(p, ""), Reason: fmt.Sprintf("backup taken: %d bytes", n)})
	return nil
}

// pageParams reads limit and cursor.
func pageParams(r *http.Request) (int, string, error) {
	limit, err := limitParam(r, DefaultPageLimit, MaxPageLimit)
	if err != nil {
		return 0, "", err
	}
	return limit, r.URL.Query().Get("cursor"), nil
}

// limitParam reads the query's limit: def when absent, else a whole
// number from 1 to maxLimit.
func limitParam(r *http.Request, def, maxLimit int) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLimit {
		he := errorf(http.StatusBadRequest, "bad_limit", "limit must be a whole number from 1 to %d", maxLimit)
		he.Field = "limit"
		return 0, he
	}
	return n, nil
}
