package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/imtgt/imtgt-node/access"
	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/auditor"
	"github.com/imtgt/imtgt-node/store"
)

// Auditing is the node's audit log, as the API needs it.
type Auditing interface {
	// AuditEntries returns the entries q selects and the seq to continue
	// after (0: no more).
	AuditEntries(ctx context.Context, q audit.Query) ([]audit.Entry, uint64, error)
	// AuditReport computes the residency report of [from, to).
	AuditReport(ctx context.Context, from, to time.Time) (*auditor.Report, error)
	// AuditExport writes the evidence bundle of the entries in [from, to).
	AuditExport(ctx context.Context, w io.Writer, from, to time.Time) error
	// Audit appends entries to the chain, durably.
	Audit(ctx context.Context, es ...*audit.Entry) error
	// AuditWitnessed returns, per peer, the last checkpoint of that
	// peer's chain this node countersigned.
	AuditWitnessed(ctx context.Context) ([]audit.Checkpoint, error)
}

// Auditors creates and lists auditors.
type Auditors interface {
	CreateAuditor(ctx context.Context, a store.Auditor, tokenHash string, p access.Principal) error
	Auditors(ctx context.Context) ([]store.Auditor, error)
}

// Audit entry pages.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

var errNoAuditLog = errors.New("the server has no audit log (Config.Auditing is nil)")

// --- recording admin acts ---

// actor names who performed an act in an audit entry: the principal's
// role and subject ("operator", "marketplace mkt_…"), never a token.
// fallback names an act without a token (a seller registering itself).
func actor(p *access.Principal, fallback string) string {
	switch {
	case p == nil:
		return fallback
	case p.Role == access.Operator && (p.Subject == "" || p.Subject == string(access.Operator)):
		return string(access.Operator)
	}
	return string(p.Role) + " " + p.Subject
}

// record appends the entries of an admin act that has already been
// performed and committed. A failure is logged at error level and the
// act is still answered as the success it was: it cannot be undone here,
// and a failure reply would make the client believe it did not happen
// and repeat it (a second marketplace and token, say), which the log
// would then miss as well. The error log line is what tells the operator
// that the chain lacks an act.
//
// The entries name what was done by ID only: no personal data (owners'
// names, national IDs) and no business or auditor names, which may be a
// person's; and never a token.
func (s *Server) record(r *http.Request, es ...*audit.Entry) {
	if s.cfg.Auditing == nil || len(es) == 0 {
		return
	}
	// The act is done even if the client has gone: record it anyway.
	ctx := context.WithoutCancel(r.Context())
	if err := s.cfg.Auditing.Audit(ctx, es...); err != nil {
		kinds := make([]string, len(es))
		for i, e := range es {
			kinds[i] = string(e.Kind)
		}
		s.log.Error("audit: an admin act was performed but not recorded in the audit log",
			"kinds", strings.Join(kinds, ","), "records", strings.Join(es[0].Records, ","), "actor", es[0].Actor, "err", err)
	}
}

func sellerEntry(id, what, actor string) *audit.Entry {
	return &audit.Entry{Kind: audit.AdminSeller, Records: []string{id}, Actor: actor, Reason: what}
}

func tokenEntry(role access.Role, id, actor string) *audit.Entry {
	return &audit.Entry{Kind: audit.AdminToken, Records: []string{id}, Actor: actor,
		Reason: fmt.Sprintf("%s token created for %s", role, id)}
}

// --- auditors ---

func (s *Server) createAuditor(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	id, _, token, err := s.createTokenHolder(r, p, access.Auditor, "aud_",
		func(ctx context.Context, id, name string, now time.Time, hash string, holder access.Principal) error {
			return s.cfg.Auditors.CreateAuditor(ctx, store.Auditor{ID: id, Name: name, CreatedAt: now}, hash, holder)
		})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "token": token})
	return nil
}

func (s *Server) listAuditors(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	as, err := s.cfg.Auditors.Auditors(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": as})
	return nil
}

// --- audit reads ---

// periodParam reads an RFC 3339 time from the query ("from" or "to"); zero
// when absent.
func periodParam(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		msg := fmt.Sprintf("%s must be an RFC 3339 time, like 2026-01-01T00:00:00Z", name)
		if strings.Contains(v, " ") {
			msg += ` (a "+" in a time zone offset must be sent as %2B)`
		}
		he := errorf(http.StatusBadRequest, "bad_time", "%s", msg)
		he.Field = name
		return time.Time{}, he
	}
	return t.UTC(), nil
}

// periodParams reads from and to: the period [from, to).
func periodParams(r *http.Request) (from, to time.Time, err error) {
	if from, err = periodParam(r, "from"); err != nil {
		return
	}
	if to, err = periodParam(r, "to"); err != nil {
		return
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		he := errorf(http.StatusBadRequest, "bad_period", "to must be after from (the period is from included, to excluded)")
		he.Field = "to"
		return time.Time{}, time.Time{}, he
	}
	return from, to, nil
}

// auditPeriod begins every audit read: the server must keep an audit log,
// and the period is the query's from and to (periodParams).
func (s *Server) auditPeriod(r *http.Request) (from, to time.Time, err error) {
	if s.cfg.Auditing == nil {
		return time.Time{}, time.Time{}, errNoAuditLog
	}
	return periodParams(r)
}

func (s *Server) auditEntries(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	from, to, err := s.auditPeriod(r)
	if err != nil {
		return err
	}
	limit, err := limitParam(r, DefaultAuditLimit, MaxAuditLimit)
	if err != nil {
		return err
	}
	query := r.URL.Query()
	q := audit.Query{Kind: query.Get("kind"), Peer: query.Get("peer"), From: from, To: to, Limit: limit}
	if v := query.Get("cursor"); v != "" {
		after, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			he := errorf(http.StatusBadRequest, "bad_cursor", "cursor is not one this server returned (next_cursor of a previous page)")
			he.Field = "cursor"
			return he
		}
		q.After = after
	}
	es, next, err := s.cfg.Auditing.AuditEntries(r.Context(), q)
	if err != nil {
		return err
	}
	if es == nil {
		es = []audit.Entry{}
	}
	cursor := ""
	if next != 0 {
		cursor = strconv.FormatUint(next, 10)
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": es, "next_cursor": cursor})
	return nil
}

func (s *Server) auditResidency(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	from, to, err := s.auditPeriod(r)
	if err != nil {
		return err
	}
	rep, err := s.cfg.Auditing.AuditReport(r.Context(), from, to)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// auditWitnessed is what this node countersigned of its peers' chains: an
// auditor of another member compares it with that member's bundle, whose
// node-only tail it cannot check otherwise.
func (s *Server) auditWitnessed(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	if s.cfg.Auditing == nil {
		return errNoAuditLog
	}
	cps, err := s.cfg.Auditing.AuditWitnessed(r.Context())
	if err != nil {
		return err
	}
	if cps == nil {
		cps = []audit.Checkpoint{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": cps})
	return nil
}

func (s *Server) auditExport(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	from, to, err := s.auditPeriod(r)
	if err != nil {
		return err
	}
	// An empty range is a 404 with a JSON error, decided before anything
	// is streamed. The chain only grows, so a range that has an entry now
	// still has it when the export reads it.
	probe, _, err := s.cfg.Auditing.AuditEntries(r.Context(), audit.Query{From: from, To: to, Limit: 1})
	if err != nil {
		return err
	}
	if len(probe) == 0 {
		return errorf(http.StatusNotFound, "not_found", "no audit entries between %s and %s", periodEnd(from, "the start"), periodEnd(to, "now"))
	}
	// Headers go out with the first bytes of the bundle, so an export that
	// fails before writing anything is still answered with a JSON error.
	sw := &startWriter{w: w, rc: http.NewResponseController(w), start: func() {
		h := w.Header()
		h.Set("Content-Type", "application/x-ndjson")
		h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="audit-%s-%s.jsonl"`, s.cfg.Node.Country, time.Now().UTC().Format(time.DateOnly)))
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	}}
	err = s.cfg.Auditing.AuditExport(r.Context(), sw, from, to)
	switch {
	case err == nil && !sw.started:
		sw.begin() // cannot happen (a bundle has a header), but answer 200 anyway
	case err != nil && !sw.started:
		return err
	case err != nil:
		// Headers are gone; aborting the connection leaves the chunked
		// body unterminated, which the client sees as a cut-off download
		// (and a bundle cut mid-line is refused by audit.ReadBundle).
		s.log.Error("audit export failed while streaming", "bytes", sw.n, "err", err)
		panic(http.ErrAbortHandler)
	}
	s.log.Info("audit export served", "bytes", sw.n)
	return nil
}

func periodEnd(t time.Time, open string) string {
	if t.IsZero() {
		return open
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// startWriter calls start before the first byte is written, and moves
// the connection's write deadline on while bytes flow: a bundle of a long
// period can take longer than the server's WriteTimeout to stream, and
// only a stalled client should cut it.
type startWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	start   func()
	started bool
	n       int64
}

// exportWriteWindow is how long one write of an export may take.
const exportWriteWindow = time.Minute

func (s *startWriter) begin() {
	if !s.started {
		s.started = true
		s.start()
	}
}

func (s *startWriter) Write(b []byte) (int, error) {
	s.begin()
	if s.rc != nil {
		_ = s.rc.SetWriteDeadline(time.Now().Add(exportWriteWindow)) // not every writer has a deadline
	}
	n, err := s.w.Write(b)
	s.n += int64(n)
	return n, err
}
