package node_test

// The HTTP contract of after-sale issues (issue 13) on two real nodes:
// status codes and error codes a marketplace's, a seller's or an
// operator's script relies on.

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/internal/testnet"
)

func TestIssuesHTTPContract(t *testing.T) {
	on := newOrderNet(t, 20)
	oid, _ := on.shipped(t, "http-contract", 2)
	other := marketplace(t, on.my, "Lazada-like MY")
	open := map[string]any{"category": "wrong_item", "description": "Sticky rice came instead of jasmine rice.",
		"items": []map[string]any{{"listing_id": on.listing, "quantity": 1}}, "remedy_requested": "replacement"}
	post := func(n *testnet.Node, path, token string, body any) testnet.Response {
		t.Helper()
		return n.Do("POST", path, token, body)
	}
	openKey := func(token, key string, body any) testnet.Response {
		t.Helper()
		return on.my.DoHeader("POST", "/v1/orders/"+oid+"/issues", token, map[string]string{"Idempotency-Key": key}, body)
	}

	// Opening: the key is required; bad bodies name their field; another
	// marketplace's order is not found; the seller cannot open.
	for _, tc := range []struct {
		name   string
		token  string
		key    string
		body   any
		status int
		code   string
		field  string
	}{
		{"no key", on.shop, "", open, http.StatusBadRequest, "idempotency_key", "Idempotency-Key"},
		{"unknown field", on.shop, "k1", map[string]any{"category": "damaged", "colour": "red"}, http.StatusBadRequest, "unknown_field", "colour"},
		{"bad category", on.shop, "k2", with(open, "category", "late"), http.StatusUnprocessableEntity, "invalid_category", "category"},
		{"too many", on.shop, "k3", with(open, "items", []map[string]any{{"listing_id": on.listing, "quantity": 3}}), http.StatusUnprocessableEntity, "exceeds_ordered", "items[0].quantity"},
		{"not in order", on.shop, "k4", with(open, "items", []map[string]any{{"listing_id": "lst_nope", "quantity": 1}}), http.StatusUnprocessableEntity, "not_in_order", "items[0].listing_id"},
		{"another marketplace", other, "k5", open, http.StatusNotFound, "not_found", ""},
		{"operator", on.my.OperatorToken, "k6", open, http.StatusForbidden, "forbidden", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := openKey(tc.token, tc.key, tc.body)
			require.Equal(t, tc.status, r.Status, string(r.Body))
			e := r.JSON["error"].(map[string]any)
			require.Equal(t, tc.code, e["code"], string(r.Body))
			if tc.field != "" {
				require.Equal(t, tc.field, e["field"], string(r.Body))
			}
		})
	}

	r := openKey(on.shop, "open-1", open)
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	id := r.JSON["id"].(string)
	require.Regexp(t, `^iss_[0-9A-Z]{26}$`, id)
	require.Equal(t, "open", r.JSON["status"])
	respondBy, err := time.Parse(time.RFC3339, r.JSON["respond_by"].(string))
	require.NoError(t, err)
	resolveBy, err := time.Parse(time.RFC3339, r.JSON["resolve_by"].(string))
	require.NoError(t, err)
	require.True(t, resolveBy.After(respondBy))
	r = openKey(on.shop, "open-1", with(open, "description", "another text"))
	require.Equal(t, http.StatusConflict, r.Status, string(r.Body))
	require.Equal(t, "idempotency_key_reused", r.JSON["error"].(map[string]any)["code"])

	// Seeing: the other marketplace, and the seller on the buyer's node,
	// get 404; the list filters by status and refuses a bad one.
	require.Equal(t, http.StatusNotFound, on.my.Do("GET", "/v1/issues/"+id, other, nil).Status)
	require.Equal(t, http.StatusNotFound, on.my.Do("GET", "/v1/issues/iss_nope", on.shop, nil).Status)
	require.Empty(t, on.my.Do("GET", "/v1/issues", other, nil).JSON["items"])
	require.Len(t, on.my.Do("GET", "/v1/issues?status=open", on.shop, nil).JSON["items"], 1)
	require.Empty(t, on.my.Do("GET", "/v1/issues?status=escalated", on.my.OperatorToken, nil).JSON["items"])
	bad := on.my.Do("GET", "/v1/issues?status=lost", on.shop, nil)
	require.Equal(t, http.StatusBadRequest, bad.Status, string(bad.Body))
	require.Equal(t, "status", bad.JSON["error"].(map[string]any)["field"])
	bad = on.my.Do("GET", "/v1/issues?cursor=zzz", on.shop, nil)
	require.Equal(t, http.StatusBadRequest, bad.Status, string(bad.Body))
	require.Equal(t, "bad_cursor", bad.JSON["error"].(map[string]any)["code"])
	o := on.my.Do("GET", "/v1/orders/"+oid, on.shop, nil).JSON
	require.Equal(t, []any{}, o["refunds"], "no refunds yet: an empty list, not null")
	require.Len(t, o["issues"], 1)

	// Moves out of turn: resolve before anything was agreed is 409; the
	// marketplace cannot escalate before respond_by (409 too_early); the
	// operator does not respond (403); refunds need an agreed refund (409).
	for _, tc := range []struct {
		name   string
		path   string
		token  string
		body   any
		status int
		code   string
	}{
		{"resolve while open", "/responses", on.shop, map[string]string{"action": "resolve"}, http.StatusConflict, "illegal_transition"},
		{"escalate too early", "/escalate", on.shop, nil, http.StatusConflict, "too_early"},
		{"operator responds", "/responses", on.my.OperatorToken, map[string]string{"action": "accept"}, http.StatusForbidden, "forbidden"},
		{"refund with nothing agreed", "/refunds", on.shop, map[string]string{"amount": "1.00", "currency": "MYR", "payment_reference": "X-1"}, http.StatusConflict, "illegal_transition"},
		{"decision while open", "/decisions", on.my.OperatorToken, map[string]string{"outcome": "upheld", "reason": "r"}, http.StatusConflict, "illegal_transition"},
		{"bad action", "/responses", on.shop, map[string]string{"action": "shrug"}, http.StatusUnprocessableEntity, "invalid_action"},
		{"another marketplace responds", "/responses", other, map[string]string{"action": "accept"}, http.StatusNotFound, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := post(on.my, "/v1/issues/"+id+tc.path, tc.token, tc.body)
			require.Equal(t, tc.status, r.Status, string(r.Body))
			require.Equal(t, tc.code, r.JSON["error"].(map[string]any)["code"], string(r.Body))
		})
	}

	// The seller answers on its own node only; a decision is the buyer
	// country's (403 on the seller's node).
	issueOnHTTP(t, on.th, on.seller, id, "open")
	r = post(on.th, "/v1/issues/"+id+"/responses", on.seller, map[string]string{"action": "reject", "reason": "The photos show jasmine rice."})
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.Equal(t, "rejected", r.JSON["status"])
	require.Equal(t, "seller", r.JSON["side"])
	r = post(on.th, "/v1/issues/"+id+"/responses", on.seller, map[string]string{"action": "reject", "reason": "again"})
	require.Equal(t, http.StatusConflict, r.Status, string(r.Body))
	issueOnHTTP(t, on.my, on.shop, id, "rejected")
	r = post(on.my, "/v1/issues/"+id+"/escalate", on.shop, nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.Equal(t, "escalated", r.JSON["status"])
	require.Len(t, on.my.Do("GET", "/v1/issues?status=escalated", on.my.OperatorToken, nil).JSON["items"], 1)
	issueOnHTTP(t, on.th, on.seller, id, "escalated")
	r = post(on.th, "/v1/issues/"+id+"/decisions", on.th.OperatorToken, map[string]string{"outcome": "dismissed", "reason": "r"})
	require.Equal(t, http.StatusForbidden, r.Status, string(r.Body))
	r = post(on.my, "/v1/issues/"+id+"/decisions", on.my.OperatorToken, map[string]any{"outcome": "dismissed", "refund": map[string]string{"amount": "1.00", "currency": "MYR"}, "reason": "r"})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Body))
	require.Equal(t, "refund", r.JSON["error"].(map[string]any)["field"])
	r = post(on.my, "/v1/issues/"+id+"/decisions", on.my.OperatorToken, map[string]string{"outcome": "dismissed", "reason": "The goods match the listing."})
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.Equal(t, "resolved", r.JSON["status"], "a decision without a refund resolves the issue")
	// The seller's operator sees the decision too.
	got := issueOnHTTP(t, on.th, on.th.OperatorToken, id, "resolved")
	require.Equal(t, "dismissed", got["decision"].(map[string]any)["outcome"])
}

// issueOnHTTP polls node n until token sees issue id in status.
func issueOnHTTP(t *testing.T, n *testnet.Node, token, id, status string) map[string]any {
	t.Helper()
	var last testnet.Response
	testnet.Eventually(t, 10*time.Second, func() bool {
		last = n.Do("GET", "/v1/issues/"+id, token, nil)
		return last.Status == http.StatusOK && last.JSON["status"] == status
	}, n.Country+" never showed the issue "+status)
	return last.JSON
}

// with is body with key set to v (a copy).
func with(body map[string]any, key string, v any) map[string]any {
	c := map[string]any{}
	for k, x := range body {
		c[k] = x
	}
	c[key] = v
	return c
}
