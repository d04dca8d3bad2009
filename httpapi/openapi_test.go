package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/imtgt/imtgt-node/access"
	"github.com/imtgt/imtgt-node/httpapi"
)

// The tests in this file hold openapi.yaml to the route table: the document
// must describe exactly the routes the server serves, and say truthfully
// which of them need a token and which roles they admit.

// oaMethods are the operation keys of an OpenAPI path item.
var oaMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// oaPathItemFields are the other keys a path item may have.
var oaPathItemFields = []string{"$ref", "summary", "description", "servers", "parameters"}

type oaParameter struct {
	Ref      string `yaml:"$ref"`
	Name     string `yaml:"name"`
	In       string `yaml:"in"`
	Required bool   `yaml:"required"`
}

type oaOperation struct {
	OperationID string                 `yaml:"operationId"`
	Summary     string                 `yaml:"summary"`
	Security    *[]map[string][]string `yaml:"security"`
	Roles       []string               `yaml:"x-roles"`
	Parameters  []oaParameter          `yaml:"parameters"`
	Responses   map[string]yaml.Node   `yaml:"responses"`
}

type oaDocument struct {
	OpenAPI    string                          `yaml:"openapi"`
	Security   *[]map[string][]string          `yaml:"security"`
	Paths      map[string]map[string]yaml.Node `yaml:"paths"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type   string `yaml:"type"`
			Scheme string `yaml:"scheme"`
		} `yaml:"securitySchemes"`
		Parameters map[string]oaParameter `yaml:"parameters"`
	} `yaml:"components"`
}

// oaDocumentedOp is one operation of the document.
type oaDocumentedOp struct {
	key  string // "GET /v1/sellers/{id}"
	path string
	op   oaOperation
	// pathParams are the path item's and the operation's parameters, with
	// references resolved.
	params []oaParameter
}

// security returns the operation's effective security requirements.
func (d oaDocumentedOp) security(doc *oaDocument) []map[string][]string {
	if d.op.Security != nil {
		return *d.op.Security
	}
	if doc.Security != nil {
		return *doc.Security
	}
	return nil
}

func loadOpenAPI(t *testing.T) (*oaDocument, map[string]oaDocumentedOp) {
	t.Helper()
	raw := httpapi.OpenAPIDocument()
	require.NotEmpty(t, raw, "openapi.yaml is empty")
	var doc oaDocument
	require.NoError(t, yaml.Unmarshal(raw, &doc), "openapi.yaml does not parse")
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3.1."), "openapi.yaml must be OpenAPI 3.1.x, is %q", doc.OpenAPI)
	require.NotEmpty(t, doc.Paths, "openapi.yaml has no paths")

	resolve := func(p oaParameter) oaParameter {
		if p.Ref == "" {
			return p
		}
		name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/")
		require.True(t, ok, "parameter reference %q is not to #/components/parameters", p.Ref)
		rp, ok := doc.Components.Parameters[name]
		require.True(t, ok, "parameter reference %q does not resolve", p.Ref)
		return rp
	}

	ops := map[string]oaDocumentedOp{}
	for path, item := range doc.Paths {
		var common []oaParameter
		if n, ok := item["parameters"]; ok {
			require.NoError(t, n.Decode(&common), "path %s: parameters", path)
		}
		for key, n := range item {
			if slices.Contains(oaPathItemFields, key) {
				continue
			}
			require.Contains(t, oaMethods, key,
				"path %s: key %q is not a lower-case HTTP method nor a path item field", path, key)
			var op oaOperation
			require.NoError(t, n.Decode(&op), "%s %s: operation does not decode", strings.ToUpper(key), path)
			d := oaDocumentedOp{key: strings.ToUpper(key) + " " + path, path: path, op: op}
			for _, p := range append(slices.Clone(common), op.Parameters...) {
				d.params = append(d.params, resolve(p))
			}
			ops[d.key] = d
		}
	}
	return &doc, ops
}

// oaWildcard matches a Go 1.22 pattern oaWildcard: {name} or {name...}.
var oaWildcard = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)(\.\.\.)?\}`)

// openAPIPath turns a ServeMux pattern path into an OpenAPI path template:
// {name...} becomes {name} and a trailing {$} is dropped.
func openAPIPath(pattern string) string {
	pattern = strings.TrimSuffix(pattern, "{$}")
	return oaWildcard.ReplaceAllString(pattern, "{$1}")
}

// oaServedRoutes is the server's route table as "METHOD /openapi/path".
func oaServedRoutes(t *testing.T) map[string]httpapi.Route {
	t.Helper()
	routes := httpapi.New(httpapi.Config{}).Routes()
	require.NotEmpty(t, routes)
	out := make(map[string]httpapi.Route, len(routes))
	for _, rt := range routes {
		key := strings.ToUpper(rt.Method) + " " + openAPIPath(rt.Pattern)
		_, dup := out[key]
		require.False(t, dup, "route %s %s is declared twice", rt.Method, rt.Pattern)
		out[key] = rt
	}
	return out
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	var missing []string
	for key, rt := range oaServedRoutes(t) {
		method, path, _ := strings.Cut(key, " ")
		item, ok := doc.Paths[path]
		if !ok {
			missing = append(missing, fmt.Sprintf("%s %s: path %s is not in openapi.yaml", rt.Method, rt.Pattern, path))
			continue
		}
		if _, ok := item[strings.ToLower(method)]; !ok {
			missing = append(missing, fmt.Sprintf("%s %s: path %s has no %q operation in openapi.yaml", rt.Method, rt.Pattern, path, strings.ToLower(method)))
		}
	}
	sort.Strings(missing)
	require.Empty(t, missing, "served routes missing from openapi.yaml")
}

func TestOpenAPIDocumentsOnlyServedRoutes(t *testing.T) {
	_, ops := loadOpenAPI(t)
	served := oaServedRoutes(t)
	var extra []string
	for key := range ops {
		if _, ok := served[key]; !ok {
			extra = append(extra, key)
		}
	}
	sort.Strings(extra)
	require.Empty(t, extra, "openapi.yaml documents operations the server does not serve")
}

func TestOpenAPIOperationsAreComplete(t *testing.T) {
	doc, ops := loadOpenAPI(t)
	ids := map[string]string{}
	for _, key := range oaSortedKeys(ops) {
		d := ops[key]
		require.NotEmpty(t, strings.TrimSpace(d.op.Summary), "%s: no summary", key)
		require.NotEmpty(t, d.op.Responses, "%s: no responses", key)
		for status := range d.op.Responses {
			require.Regexp(t, `^([1-5][0-9X]{2}|default)$`, status, "%s: response key %q is not a status", key, status)
		}
		if d.op.OperationID != "" {
			prev, dup := ids[d.op.OperationID]
			require.False(t, dup, "%s: operationId %q is also used by %s", key, d.op.OperationID, prev)
			ids[d.op.OperationID] = key
		}

		// Every oaWildcard of the path is a required path parameter, and
		// every path parameter is a oaWildcard.
		var inPath []string
		for _, m := range oaWildcard.FindAllStringSubmatch(d.path, -1) {
			inPath = append(inPath, m[1])
		}
		var declared []string
		for _, p := range d.params {
			if p.In == "path" {
				require.True(t, p.Required, "%s: path parameter %q must be required", key, p.Name)
				declared = append(declared, p.Name)
			}
		}
		sort.Strings(inPath)
		sort.Strings(declared)
		require.Equal(t, inPath, declared, "%s: path parameters do not match the path template", key)

		for _, req := range d.security(doc) {
			for scheme := range req {
				_, ok := doc.Components.SecuritySchemes[scheme]
				require.True(t, ok, "%s: security scheme %q is not in components.securitySchemes", key, scheme)
			}
		}
	}
}

// oaProbeTokens knows one token per role.
type oaProbeTokens map[string]access.Principal

func (f oaProbeTokens) Principal(_ context.Context, hash string) (access.Principal, error) {
	p, ok := f[hash]
	if !ok {
		return access.Principal{}, access.ErrUnknownToken
	}
	return p, nil
}

var oaProbeRoles = []access.Role{access.Operator, access.Seller, access.Marketplace, access.Auditor}

func oaProbeToken(r access.Role) string { return "imtgt_" + string(r) + "_openapi-test" }

// TestOpenAPISecurityMatchesServer asks the server itself which routes need
// a token (no token: 401) and which roles each admits (a role that is not
// admitted: 403 "forbidden"), and checks the document says the same:
// security with a bearer scheme and x-roles listing exactly those roles, or
// no security and no x-roles for routes open to all.
//
// The server has no sellers, catalog or store here: an admitted request
// reaches its handler, which may fail (even panic, which the server turns
// into a 500) - only the authentication and role check matter.
func TestOpenAPISecurityMatchesServer(t *testing.T) {
	doc, ops := loadOpenAPI(t)
	bearerSchemes := map[string]bool{}
	for name, s := range doc.Components.SecuritySchemes {
		if s.Type == "http" && strings.EqualFold(s.Scheme, "bearer") {
			bearerSchemes[name] = true
		}
	}
	require.NotEmpty(t, bearerSchemes, "components.securitySchemes has no http bearer scheme")

	tokens := oaProbeTokens{}
	for _, r := range oaProbeRoles {
		tokens[access.HashToken(oaProbeToken(r))] = access.Principal{Role: r, Subject: "openapi-test"}
	}
	srv := httpapi.New(httpapi.Config{Tokens: tokens, Logger: slog.New(slog.DiscardHandler)})
	call := func(method, path, token string) (int, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(""))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		var body struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, body.Error.Code
	}

	for _, key := range oaSortedKeys(oaServedRoutes(t)) {
		d, ok := ops[key]
		if !ok {
			continue // reported by TestOpenAPIDocumentsEveryRoute
		}
		method, path, _ := strings.Cut(key, " ")
		path = oaWildcard.ReplaceAllString(path, "probe")

		status, code := call(method, path, "")
		needsToken := status == 401 && code == "unauthenticated"
		var admitted []string
		for _, r := range oaProbeRoles {
			status, code := call(method, path, oaProbeToken(r))
			require.NotEqual(t, 401, status, "%s: the %s probe token was refused", key, r)
			if !(status == 403 && code == "forbidden") {
				admitted = append(admitted, string(r))
			}
		}

		sec := d.security(doc)
		if !needsToken {
			for _, req := range sec {
				require.Empty(t, req, "%s: the server needs no token, but openapi.yaml requires %v", key, sec)
			}
			require.Empty(t, d.op.Roles, "%s: the server needs no token, but openapi.yaml lists x-roles", key)
			continue
		}
		require.NotEmpty(t, sec, "%s: the server needs a token, but openapi.yaml declares no security", key)
		for _, req := range sec {
			require.NotEmpty(t, req, "%s: the server needs a token, but openapi.yaml makes it optional", key)
			for scheme := range req {
				require.True(t, bearerSchemes[scheme], "%s: security scheme %q is not an http bearer scheme", key, scheme)
			}
		}
		documented := slices.Clone(d.op.Roles)
		sort.Strings(documented)
		sort.Strings(admitted)
		require.Equal(t, admitted, documented, "%s: x-roles in openapi.yaml disagrees with the roles the server admits", key)
		for _, status := range []string{"401", "403"} {
			_, ok := d.op.Responses[status]
			require.True(t, ok, "%s: needs a token but openapi.yaml does not document a %s response", key, status)
		}
	}
}

// TestOpenAPIReferencesResolve checks every local $ref points into the
// document.
func TestOpenAPIReferencesResolve(t *testing.T) {
	var root any
	require.NoError(t, yaml.Unmarshal(httpapi.OpenAPIDocument(), &root))
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				require.True(t, strings.HasPrefix(ref, "#/"), "%s: $ref %q is not local", where, ref)
				cur := root
				for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
					part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
					m, ok := cur.(map[string]any)
					require.True(t, ok, "%s: $ref %q does not resolve", where, ref)
					cur, ok = m[part]
					require.True(t, ok, "%s: $ref %q does not resolve", where, ref)
				}
			}
			for k, child := range v {
				walk(where+"/"+k, child)
			}
		case []any:
			for i, child := range v {
				walk(fmt.Sprintf("%s/%d", where, i), child)
			}
		}
	}
	walk("#", root)
}

func oaSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
