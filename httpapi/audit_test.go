package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/access"
	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/auditor"
	"github.com/imtgt/imtgt-node/httpapi"
	"github.com/imtgt/imtgt-node/internal/testnet"
	"github.com/imtgt/imtgt-node/store"
)

// auditReads are the routes an auditor may call.
var auditReads = map[string]bool{
	"GET /v1/audit/entries":   true,
	"GET /v1/audit/residency": true,
	"GET /v1/audit/export":    true,
	"GET /v1/audit/witnessed": true,
	// The members' policies: evidence of what the seller side of an order
	// priced with (issue 13).
	"GET /v1/federation/policies": true,
}

var atWildcard = regexp.MustCompile(`\{[^}]+\}`)

// createAuditor registers an auditor with the operator token and returns
// its ID and token.
func createAuditor(t *testing.T, n *testnet.Node, name string) (id, token string) {
	t.Helper()
	r := n.Do("POST", "/v1/auditors", n.OperatorToken, map[string]any{"name": name})
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	require.Len(t, r.JSON, 2, "the reply is exactly {id, token}: %s", r.Body)
	id, token = r.JSON["id"].(string), r.JSON["token"].(string)
	require.Regexp(t, `^aud_[0-9A-Z]{26}$`, id)
	require.True(t, strings.HasPrefix(token, "imtgt_auditor_"), token)
	return id, token
}

func createMarketplace(t *testing.T, n *testnet.Node, name string) (id, token string) {
	t.Helper()
	r := n.Do("POST", "/v1/marketplaces", n.OperatorToken, map[string]any{"name": name})
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	return r.JSON["id"].(string), r.JSON["token"].(string)
}

// entriesOf decodes the items of a GET /v1/audit/entries reply.
func entriesOf(t *testing.T, r testnet.Response) ([]audit.Entry, string) {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	var page struct {
		Items      []audit.Entry `json:"items"`
		NextCursor *string       `json:"next_cursor"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &page))
	require.NotNil(t, page.Items, "items is [] when empty, never null: %s", r.Body)
	require.NotNil(t, page.NextCursor, "next_cursor is always present: %s", r.Body)
	return page.Items, *page.NextCursor
}

func TestAuditorRoleReadsOnlyTheAuditRoutes(t *testing.T) {
	n := testnet.Start(t, "TH")
	audID, audTok := createAuditor(t, n, "PDPC Thailand")
	_, sellerTok := n.RegisterSeller(testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	_, mktTok := createMarketplace(t, n, "Lazada TH")

	r := n.Do("GET", "/v1/auditors", n.OperatorToken, nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	items := r.JSON["items"].([]any)
	require.Len(t, items, 1)
	a := items[0].(map[string]any)
	require.Equal(t, audID, a["id"])
	require.Equal(t, "PDPC Thailand", a["name"])
	require.NotEmpty(t, a["created_at"])
	require.NotContains(t, string(r.Body), "imtgt_auditor_", "the list never shows a token")

	// Every route of the table: the auditor reads the audit routes and is
	// refused everything else, the routes that need no token and every
	// write included (the refusal comes before the handler, so nothing is
	// written).
	routes := httpapi.New(httpapi.Config{}).Routes()
	require.NotEmpty(t, routes)
	seen := 0
	for _, rt := range routes {
		key := rt.Method + " " + rt.Pattern
		path := atWildcard.ReplaceAllString(rt.Pattern, "probe")
		var body any
		if rt.Method != "GET" {
			body = map[string]any{}
		}
		r := n.Do(rt.Method, path, audTok, body)
		if auditReads[key] {
			seen++
			require.Equal(t, http.StatusOK, r.Status, "%s: %s", key, r.Body)
			continue
		}
		require.Equal(t, http.StatusForbidden, r.Status, "%s: the auditor must be refused: %s", key, r.Body)
		code, _ := errField(r)
		require.Equal(t, "forbidden", code, key)
	}
	require.Equal(t, len(auditReads), seen, "the route table lacks an audit read")
	// A path no route serves is still a 404.
	require.Equal(t, http.StatusNotFound, n.Do("GET", "/v1/nothing", audTok, nil).Status)

	// The operator reads them too; sellers and marketplaces do not; no
	// token, 401.
	for key := range auditReads {
		path := strings.TrimPrefix(key, "GET ")
		require.Equal(t, http.StatusOK, n.Do("GET", path, n.OperatorToken, nil).Status, key)
		for name, tok := range map[string]string{"seller": sellerTok, "marketplace": mktTok} {
			r := n.Do("GET", path, tok, nil)
			require.Equal(t, http.StatusForbidden, r.Status, "%s with a %s token: %s", key, name, r.Body)
		}
		require.Equal(t, http.StatusUnauthorized, n.Do("GET", path, "", nil).Status, key)
	}
	for _, tok := range []string{sellerTok, mktTok, audTok} {
		require.Equal(t, http.StatusForbidden, n.Do("POST", "/v1/auditors", tok, map[string]any{"name": "x"}).Status)
		require.Equal(t, http.StatusForbidden, n.Do("GET", "/v1/auditors", tok, nil).Status)
	}

	// Creating an auditor: the name is required.
	for _, body := range []any{map[string]any{"name": "  "}, map[string]any{"name": strings.Repeat("a", 201)}, map[string]any{}} {
		r := n.Do("POST", "/v1/auditors", n.OperatorToken, body)
		require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Body))
		_, field := errField(r)
		require.Equal(t, "name", field)
	}
	r = n.Do("POST", "/v1/auditors", n.OperatorToken, map[string]any{"name": "x", "token": "mine"})
	require.Equal(t, http.StatusBadRequest, r.Status)
}

// auditMatch is the selection GET /v1/audit/entries documents, to check
// the server's answers against the whole chain.
func auditMatch(e audit.Entry, kind, peer string, from, to time.Time) bool {
	return e.Kind.Matches(kind) &&
		(peer == "" || e.Peer == peer || e.PeerID == peer) &&
		(from.IsZero() || !e.Time.Before(from)) &&
		(to.IsZero() || e.Time.Before(to))
}

func seqs(es []audit.Entry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

func TestAuditEntriesFilters(t *testing.T) {
	n := testnet.Start(t, "TH")
	_, audTok := createAuditor(t, n, "PDPC Thailand")
	n.ActiveSeller(testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	createMarketplace(t, n, "Lazada TH")
	// Refusals with a peer, as the node records them; one at a time so
	// that their times differ.
	const peerID = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
	ctx := context.Background()
	require.NoError(t, n.Audit(ctx, &audit.Entry{Kind: audit.Rejection, Peer: "MY", PeerID: peerID, Reason: "bad signature: test"}))
	require.NoError(t, n.Audit(ctx, &audit.Entry{Kind: audit.Rejection, PeerID: "12D3KooWOutsider", Reason: "outsider: test"}))
	require.NoError(t, n.Audit(ctx, &audit.Entry{Kind: audit.Rejection, Peer: "ID", Reason: "replay: test"}))

	all, next := entriesOf(t, n.Do("GET", "/v1/audit/entries?limit=1000", audTok, nil))
	require.Empty(t, next)
	require.GreaterOrEqual(t, len(all), 8, "init's policy, the seller, its token, its approval, two tokens, three refusals")
	for i, e := range all {
		require.Equal(t, uint64(i+1), e.Seq)
		if i > 0 {
			require.NoError(t, e.Follows(all[i-1].Seq, all[i-1].Hash), "the entries are served as chained")
		}
	}
	mid := all[len(all)/2].Time
	last := all[len(all)-1].Time
	fmtT := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

	tests := []struct {
		name, kind, peer string
		from, to         time.Time
		atLeast          int
	}{
		{name: "all", atLeast: len(all)},
		{name: "kind prefix admin", kind: "admin", atLeast: 6},
		{name: "kind admin.token", kind: "admin.token", atLeast: 3},
		{name: "kind admin.seller", kind: "admin.seller", atLeast: 2},
		{name: "a prefix is cut at a dot", kind: "adm"},
		{name: "kind rejection", kind: "rejection", atLeast: 3},
		{name: "kind order (none)", kind: "order"},
		{name: "peer by country", peer: "MY", atLeast: 1},
		{name: "peer by peer ID", peer: peerID, atLeast: 1},
		{name: "peer ID only", peer: "12D3KooWOutsider", atLeast: 1},
		{name: "from included", from: mid, atLeast: 1},
		{name: "to excluded", to: mid, atLeast: 1},
		{name: "from and to", from: all[1].Time, to: last, atLeast: 1},
		{name: "kind and period", kind: "rejection", from: mid, atLeast: 1},
		{name: "in the future", from: last.Add(time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{"limit": {"1000"}}
			for k, v := range map[string]string{"kind": tt.kind, "peer": tt.peer} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if !tt.from.IsZero() {
				q.Set("from", fmtT(tt.from))
			}
			if !tt.to.IsZero() {
				q.Set("to", fmtT(tt.to))
			}
			got, next := entriesOf(t, n.Do("GET", "/v1/audit/entries?"+q.Encode(), audTok, nil))
			require.Empty(t, next)
			var want []audit.Entry
			for _, e := range all {
				if auditMatch(e, tt.kind, tt.peer, tt.from, tt.to) {
					want = append(want, e)
				}
			}
			require.Equal(t, seqs(want), seqs(got))
			require.GreaterOrEqual(t, len(got), tt.atLeast)
			if tt.atLeast == 0 {
				require.Empty(t, got)
			}
		})
	}

	// Paging: limit 2, following next_cursor, gives the whole chain once.
	var paged []audit.Entry
	cursor, pages := "", 0
	for {
		q := url.Values{"limit": {"2"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		page, next := entriesOf(t, n.Do("GET", "/v1/audit/entries?"+q.Encode(), audTok, nil))
		require.LessOrEqual(t, len(page), 2)
		paged = append(paged, page...)
		pages++
		if next == "" {
			break
		}
		require.Equal(t, strconv.FormatUint(page[len(page)-1].Seq, 10), next, "the cursor is the last seq served")
		cursor = next
		require.Less(t, pages, 100)
	}
	require.Equal(t, seqs(all), seqs(paged))
	// Paging with a filter, one entry a page.
	got, next := entriesOf(t, n.Do("GET", "/v1/audit/entries?kind=rejection&limit=1", audTok, nil))
	require.Len(t, got, 1)
	require.NotEmpty(t, next)
	got2, _ := entriesOf(t, n.Do("GET", "/v1/audit/entries?kind=rejection&limit=1&cursor="+next, audTok, nil))
	require.Len(t, got2, 1)
	require.Greater(t, got2[0].Seq, got[0].Seq)
	require.Equal(t, audit.Rejection, got2[0].Kind)
	// The default page is 100.
	page, _ := entriesOf(t, n.Do("GET", "/v1/audit/entries", audTok, nil))
	require.Equal(t, seqs(all), seqs(page))

	bad := []struct {
		query, code, field string
	}{
		{"from=yesterday", "bad_time", "from"},
		{"from=2026-01-01", "bad_time", "from"},
		{"to=2026-13-01T00:00:00Z", "bad_time", "to"},
		{"from=2026-01-01T00:00:00+07:00", "bad_time", "from"}, // "+" unescaped: a space
		{"from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "bad_period", "to"},
		{"from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "bad_period", "to"},
		{"limit=0", "bad_limit", "limit"},
		{"limit=1001", "bad_limit", "limit"},
		{"limit=ten", "bad_limit", "limit"},
		{"cursor=abc", "bad_cursor", "cursor"},
		{"cursor=-1", "bad_cursor", "cursor"},
	}
	for _, tt := range bad {
		t.Run(tt.query, func(t *testing.T) {
			r := n.Do("GET", "/v1/audit/entries?"+tt.query, audTok, nil)
			require.Equal(t, http.StatusBadRequest, r.Status, string(r.Body))
			code, field := errField(r)
			require.Equal(t, tt.code, code)
			require.Equal(t, tt.field, field)
			require.Contains(t, r.JSON["error"].(map[string]any)["message"], tt.field)
		})
	}
	// An offset sent properly is accepted.
	_, _ = entriesOf(t, n.Do("GET", "/v1/audit/entries?from="+url.QueryEscape("2026-01-01T00:00:00+07:00"), audTok, nil))
	// The period parameters of the other audit routes are checked alike.
	for _, path := range []string{"/v1/audit/residency", "/v1/audit/export"} {
		r := n.Do("GET", path+"?from=last-week", audTok, nil)
		require.Equal(t, http.StatusBadRequest, r.Status, path)
		_, field := errField(r)
		require.Equal(t, "from", field, path)
	}
}

func TestAuditExportAndResidency(t *testing.T) {
	n := testnet.Start(t, "TH")
	_, audTok := createAuditor(t, n, "PDPC Thailand")
	require.NoError(t, n.Audit(context.Background(), &audit.Entry{Kind: audit.Rejection, Peer: "MY", Reason: "bad signature: test"}))
	all, _ := entriesOf(t, n.Do("GET", "/v1/audit/entries?limit=1000", audTok, nil))

	req, err := http.NewRequest("GET", n.URL+"/v1/audit/export", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+audTok)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "application/x-ndjson", resp.Header.Get("Content-Type"))
	require.Regexp(t, `^attachment; filename="audit-TH-\d{4}-\d{2}-\d{2}\.jsonl"$`, resp.Header.Get("Content-Disposition"))
	b, err := audit.ReadBundle(bytes.NewReader(body))
	require.NoError(t, err)
	require.Equal(t, "TH", b.Header.Node)
	require.Equal(t, uint64(1), b.Header.FirstSeq)
	require.Equal(t, seqs(all), seqs(b.Entries))
	require.NotEmpty(t, b.Checkpoints, "the node signs the exported tail")
	require.NotContains(t, string(body), audTok)

	// A period: the entries from the second on.
	from := url.QueryEscape(all[1].Time.UTC().Format(time.RFC3339Nano))
	r := n.Do("GET", "/v1/audit/export?from="+from, n.OperatorToken, nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	b, err = audit.ReadBundle(bytes.NewReader(r.Body))
	require.NoError(t, err)
	require.Equal(t, all[1].Seq, b.Header.FirstSeq)
	require.Equal(t, all[0].Hash, b.Header.Prev)

	// No entry in the period: 404 with a JSON error.
	future := url.QueryEscape(time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339))
	r = n.Do("GET", "/v1/audit/export?from="+future, audTok, nil)
	require.Equal(t, http.StatusNotFound, r.Status, string(r.Body))
	code, _ := errField(r)
	require.Equal(t, "not_found", code)
	require.Contains(t, r.JSON["error"].(map[string]any)["message"], "no audit entries")

	// The residency report, as auditor.Report marshals it.
	r = n.Do("GET", "/v1/audit/residency", audTok, nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	for _, k := range []string{"node", "generated_at", "policy_version", "transfers", "at_rest", "rejected", "violations"} {
		require.Contains(t, r.JSON, k)
	}
	var rep auditor.Report
	require.NoError(t, json.Unmarshal(r.Body, &rep))
	require.Equal(t, "TH", rep.Node)
	require.Equal(t, uint64(1), rep.PolicyVersion)
	require.Equal(t, 1, rep.Rejected.Total)
	require.Equal(t, 1, rep.Rejected.ByPeer["MY"])
	require.Empty(t, rep.Violations)
	require.Equal(t, len(all), rep.Entries)
	r = n.Do("GET", "/v1/audit/residency?from="+future, audTok, nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.NoError(t, json.Unmarshal(r.Body, &rep))
	require.Zero(t, rep.Entries)
	require.NotEmpty(t, rep.From)
}

func TestAdminActsAreAudited(t *testing.T) {
	n := testnet.Start(t, "TH")
	reg := testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0)
	sid, sellerTok := n.RegisterSeller(reg)
	require.Equal(t, http.StatusOK, n.Do("POST", "/v1/sellers/"+sid+"/approve", n.OperatorToken, nil).Status)
	require.Equal(t, http.StatusOK, n.Do("POST", "/v1/sellers/"+sid+"/suspend", n.OperatorToken, nil).Status)
	mid, mktTok := createMarketplace(t, n, "Lazada TH")
	aid, audTok := createAuditor(t, n, "Khun Somsak, PDPC inspector")
	backup := n.Do("GET", "/v1/admin/backup", n.OperatorToken, nil)
	require.Equal(t, http.StatusOK, backup.Status)

	r := n.Do("GET", "/v1/audit/entries?kind=admin&limit=1000", audTok, nil)
	got, _ := entriesOf(t, r)
	type act struct{ kind, record, actor, reason string }
	var acts []act
	for _, e := range got {
		rec := ""
		if len(e.Records) > 0 {
			rec = e.Records[0]
		}
		acts = append(acts, act{string(e.Kind), rec, e.Actor, e.Reason})
	}
	self := "seller " + sid + " (self-registration)"
	require.Subset(t, acts, []act{
		{"admin.seller", sid, self, "registered, pending"},
		{"admin.token", sid, self, "seller token created for " + sid},
		{"admin.seller", sid, "operator", "approved"},
		{"admin.seller", sid, "operator", "suspended"},
		{"admin.token", mid, "operator", "marketplace token created for " + mid},
		{"admin.token", aid, "operator", "auditor token created for " + aid},
	}, "%+v", acts)
	var backups []audit.Entry
	for _, e := range got {
		if e.Kind == audit.AdminBackup {
			backups = append(backups, e)
		}
	}
	require.Len(t, backups, 1)
	require.Equal(t, "operator", backups[0].Actor)
	require.Equal(t, "backup taken: "+strconv.Itoa(len(backup.Body))+" bytes", backups[0].Reason)

	// No token, no personal data, no names in the log.
	all := n.Do("GET", "/v1/audit/entries?limit=1000", audTok, nil)
	require.Equal(t, http.StatusOK, all.Status)
	owner := reg["owner"].(map[string]string)
	for _, secret := range []string{sellerTok, mktTok, audTok, n.OperatorToken, "imtgt_", owner["full_name"], owner["national_id"], owner["phone"],
		owner["email"], "Songkhla Seafood", reg["business_id"].(string), "Lazada", "Somsak", "9876543210"} {
		require.NotContains(t, string(all.Body), secret)
	}
}

// fakeAudit is an Auditing whose appends fail or are kept.
type fakeAudit struct {
	mu      sync.Mutex
	err     error
	entries []*audit.Entry
}

func (f *fakeAudit) AuditEntries(context.Context, audit.Query) ([]audit.Entry, uint64, error) {
	return nil, 0, nil
}

func (f *fakeAudit) AuditReport(context.Context, time.Time, time.Time) (*auditor.Report, error) {
	return &auditor.Report{}, nil
}

func (f *fakeAudit) AuditExport(context.Context, io.Writer, time.Time, time.Time) error { return nil }

func (f *fakeAudit) AuditWitnessed(context.Context) ([]audit.Checkpoint, error) { return nil, nil }

func (f *fakeAudit) Audit(_ context.Context, es ...*audit.Entry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.entries = append(f.entries, es...)
	return nil
}

type fakeAuditors struct{ created []store.Auditor }

func (f *fakeAuditors) CreateAuditor(_ context.Context, a store.Auditor, _ string, p access.Principal) error {
	if p.Role != access.Auditor || p.Subject != a.ID {
		return errors.New("wrong principal")
	}
	f.created = append(f.created, a)
	return nil
}

func (f *fakeAuditors) Auditors(context.Context) ([]store.Auditor, error) { return f.created, nil }

// TestAdminActAnsweredWhenAuditFails: the act is done; a failing append
// is logged at error level and the act still answered as done.
func TestAdminActAnsweredWhenAuditFails(t *testing.T) {
	const opTok = "imtgt_operator_audit-test"
	tokens := oaProbeTokens{access.HashToken(opTok): {Role: access.Operator, Subject: "operator"}}
	for _, tt := range []struct {
		name string
		err  error
	}{{"recorded", nil}, {"append fails", errors.New("disk full")}} {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			fa, auditors := &fakeAudit{err: tt.err}, &fakeAuditors{}
			srv := httpapi.New(httpapi.Config{Tokens: tokens, Auditing: fa, Auditors: auditors,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			req := httptest.NewRequest("POST", "/v1/auditors", strings.NewReader(`{"name":"PDPC"}`))
			req.Header.Set("Authorization", "Bearer "+opTok)
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, req)
			require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
			require.Len(t, auditors.created, 1)
			if tt.err != nil {
				require.Contains(t, logs.String(), "level=ERROR")
				require.Contains(t, logs.String(), "not recorded")
				require.Contains(t, logs.String(), "disk full")
				require.Empty(t, fa.entries)
				return
			}
			require.NotContains(t, logs.String(), "level=ERROR")
			require.Len(t, fa.entries, 1)
			e := fa.entries[0]
			require.Equal(t, audit.AdminToken, e.Kind)
			require.Equal(t, []string{auditors.created[0].ID}, e.Records)
			require.Equal(t, "operator", e.Actor)
			require.NotContains(t, e.Reason, "PDPC")
		})
	}
}
