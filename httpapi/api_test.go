package httpapi_test

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/internal/testnet"
	"github.com/imtgt/imtgt-node/node"
)

func errField(r testnet.Response) (code, field string) {
	e, _ := r.JSON["error"].(map[string]any)
	code, _ = e["code"].(string)
	field, _ = e["field"].(string)
	return code, field
}

func TestSellerLifecycle(t *testing.T) {
	n := testnet.Start(t, "TH")
	id, tok := n.RegisterSeller(testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	require.True(t, strings.HasPrefix(id, "sel_"))

	// Pending sellers cannot publish.
	r := n.Do("POST", "/v1/listings", tok, testnet.Listing("ปลาหมึกแห้ง", "030749", "420.00"))
	require.Equal(t, http.StatusForbidden, r.Status, string(r.Body))
	code, _ := errField(r)
	require.Equal(t, "seller_inactive", code)

	// Only the operator approves.
	r = n.Do("POST", "/v1/sellers/"+id+"/approve", tok, nil)
	require.Equal(t, http.StatusForbidden, r.Status)
	r = n.Do("POST", "/v1/sellers/"+id+"/approve", n.OperatorToken, nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "active", r.JSON["status"])

	r = n.Do("POST", "/v1/listings", tok, testnet.Listing("ปลาหมึกแห้ง สงขลา", "030749", "420.00"))
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))

	// The seller and the operator see personal fields; another seller sees
	// the public profile only; no token, nothing.
	r = n.Do("GET", "/v1/sellers/"+id, tok, nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "1900100123457", r.JSON["owner"].(map[string]any)["national_id"])
	r = n.Do("GET", "/v1/sellers/"+id, n.OperatorToken, nil)
	require.Contains(t, r.JSON, "bank_account")
	_, other := n.RegisterSeller(testnet.THSeller("Other Co., Ltd.", 1))
	r = n.Do("GET", "/v1/sellers/"+id, other, nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.NotContains(t, r.JSON, "owner")
	require.NotContains(t, r.JSON, "bank_account")
	require.Equal(t, "Songkhla Seafood Export Co., Ltd.", r.JSON["legal_name"])
	require.Contains(t, r.JSON, "contact")
	require.Equal(t, http.StatusUnauthorized, n.Do("GET", "/v1/sellers/"+id, "", nil).Status)

	// Suspension stops publishing.
	r = n.Do("POST", "/v1/sellers/"+id+"/suspend", n.OperatorToken, nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "suspended", r.JSON["status"])
	r = n.Do("POST", "/v1/listings", tok, testnet.Listing("Coffee", "090111", "350.00"))
	require.Equal(t, http.StatusForbidden, r.Status)

	// Listing sellers: filter and paginate.
	r = n.Do("GET", "/v1/sellers?status=pending", n.OperatorToken, nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Len(t, r.JSON["items"], 1)
	r = n.Do("GET", "/v1/sellers?limit=1", n.OperatorToken, nil)
	require.Len(t, r.JSON["items"], 1)
	next := r.JSON["next_cursor"].(string)
	require.NotEmpty(t, next)
	r = n.Do("GET", "/v1/sellers?limit=1&cursor="+next, n.OperatorToken, nil)
	require.Len(t, r.JSON["items"], 1)
	require.Empty(t, r.JSON["next_cursor"])
	require.Equal(t, http.StatusForbidden, n.Do("GET", "/v1/sellers", tok, nil).Status)
	r = n.Do("GET", "/v1/sellers?status=gone", n.OperatorToken, nil)
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Equal(t, http.StatusNotFound, n.Do("POST", "/v1/sellers/sel_nope/approve", n.OperatorToken, nil).Status)
}

func TestBadInput(t *testing.T) {
	n := testnet.Start(t, "TH")
	_, tok := n.ActiveSeller(testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	valid := testnet.THSeller("X Co., Ltd.", 1)
	withBID := func(bid string) map[string]any {
		m := testnet.THSeller("X Co., Ltd.", 1)
		m["business_id"] = bid
		return m
	}
	tests := []struct {
		name, method, path, token string
		body                      any
		status                    int
		code, field               string
	}{
		{"malformed JSON", "POST", "/v1/sellers", "", `{"legal_name": `, 400, "malformed_json", ""},
		{"not JSON at all", "POST", "/v1/sellers", "", `legal_name=x`, 400, "malformed_json", ""},
		{"empty body", "POST", "/v1/sellers", "", ``, 400, "malformed_json", ""},
		{"two objects", "POST", "/v1/sellers", "", `{} {}`, 400, "malformed_json", ""},
		{"unknown field", "POST", "/v1/sellers", "", `{"legal_name":"x","shoe_size":42}`, 400, "unknown_field", "shoe_size"},
		{"wrong type", "POST", "/v1/listings", tok, `{"quantity":"ten"}`, 400, "wrong_type", "quantity"},
		{"bad check digit", "POST", "/v1/sellers", "", withBID("0105537001233"), 422, "invalid_business_id", "business_id"},
		{"business id letters", "POST", "/v1/sellers", "", withBID("01055370012AB"), 422, "invalid_business_id", "business_id"},
		{"duplicate business id", "POST", "/v1/sellers", "", withBID("0105537001232"), 409, "duplicate", "business_id"},
		{"too large", "POST", "/v1/sellers", "", `{"legal_name":"` + strings.Repeat("a", 2<<20) + `"}`, 413, "body_too_large", ""},
		{"bad hs", "POST", "/v1/listings", tok, testnet.Listing("x", "999999", "1.00"), 422, "invalid_hs_code", "hs_code"},
		{"bad price", "POST", "/v1/listings", tok, testnet.Listing("x", "0901", "1.001"), 422, "invalid_amount", "price.amount"},
		{"no token", "POST", "/v1/listings", "", testnet.Listing("x", "0901", "1.00"), 401, "unauthenticated", ""},
		{"unknown token", "POST", "/v1/listings", "imtgt_seller_forged", testnet.Listing("x", "0901", "1.00"), 401, "unauthenticated", ""},
		{"garbage token", "GET", "/v1/catalog/search", "hunter2", nil, 401, "unauthenticated", ""},
		{"operator cannot publish", "POST", "/v1/listings", n.OperatorToken, testnet.Listing("x", "0901", "1.00"), 403, "forbidden", ""},
		{"no such route", "GET", "/v1/nothing", n.OperatorToken, nil, 404, "no_route", ""},
		{"no such listing", "GET", "/v1/catalog/listings/lst_nope", tok, nil, 404, "not_found", ""},
		{"bad limit", "GET", "/v1/catalog/search?limit=1000", tok, nil, 400, "bad_limit", "limit"},
		{"bad cursor", "GET", "/v1/catalog/search?cursor=zzz!", tok, nil, 400, "bad_cursor", "cursor"},
		{"bad min_price", "GET", "/v1/catalog/search?min_price=abc", tok, nil, 400, "bad_price", "min_price"},
		{"bad hs filter", "GET", "/v1/catalog/search?hs=09x", tok, nil, 400, "bad_hs", "hs"},
		{"valid registration still works", "POST", "/v1/sellers", "", valid, 201, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := n.Do(tt.method, tt.path, tt.token, tt.body)
			require.Equal(t, tt.status, r.Status, string(r.Body))
			if tt.code != "" {
				code, field := errField(r)
				require.Equal(t, tt.code, code, string(r.Body))
				require.Equal(t, tt.field, field, string(r.Body))
				require.NotEmpty(t, r.JSON["error"].(map[string]any)["message"])
			}
		})
	}
	// Nothing refused was half-written: only the two good sellers exist.
	r := n.Do("GET", "/v1/sellers", n.OperatorToken, nil)
	require.Len(t, r.JSON["items"], 2)
}

func TestListingsSearchAndRestart(t *testing.T) {
	n := testnet.Start(t, "TH")
	sid, tok := n.ActiveSeller(testnet.THSeller("Surat Thani Rice & Coffee Co., Ltd.", 3))
	_, tok2 := n.ActiveSeller(testnet.THSeller("Phuket Latex & Craft Co., Ltd.", 2))
	create := func(tok string, body map[string]any) string {
		r := n.Do("POST", "/v1/listings", tok, body)
		require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
		return r.JSON["id"].(string)
	}
	rice := create(tok, testnet.Listing("ข้าวหอมมะลิ 5 กก. (Thai Hom Mali jasmine rice)", "100630", "265.00"))
	coffee := create(tok, testnet.Listing("Kopi robusta Chumphon coffee beans", "090111", "350.00"))
	pillow := create(tok2, testnet.Listing("หมอนยางพาราแท้ natural latex pillow", "940490", "1290.00"))

	search := func(q string) []string {
		r := n.Do("GET", "/v1/catalog/search?"+q, tok2, nil)
		require.Equal(t, http.StatusOK, r.Status, string(r.Body))
		var ids []string
		for _, it := range r.JSON["items"].([]any) {
			ids = append(ids, it.(map[string]any)["id"].(string))
		}
		return ids
	}
	check := func() {
		require.Equal(t, []string{rice}, search("q=หอมมะลิ"), "part of a Thai title finds it")
		require.Equal(t, []string{rice}, search("q=jasmine+rice"))
		require.Equal(t, []string{coffee}, search("q=kopi"))
		require.Equal(t, []string{pillow}, search("q=ยางพารา"))
		require.Equal(t, []string{coffee}, search("hs=0901"))
		require.Equal(t, []string{coffee, rice}, search("max_price=400&origin=TH"))
		require.Equal(t, []string{pillow}, search("min_price=1000"))
		require.Empty(t, search("origin=MY"))
		require.Len(t, search(""), 3)
	}
	check()

	// Item shape: seller's public profile, money as decimal strings.
	r := n.Do("GET", "/v1/catalog/listings/"+rice, tok2, nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, map[string]any{"amount": "265.00", "currency": "THB"}, r.JSON["price"])
	require.Equal(t, "Surat Thani Rice & Coffee Co., Ltd.", r.JSON["seller"].(map[string]any)["legal_name"])
	require.Equal(t, sid, r.JSON["seller"].(map[string]any)["id"])
	require.Equal(t, "TH", r.JSON["origin"])

	// Patch, and the other seller cannot touch it.
	r = n.Do("PATCH", "/v1/listings/"+coffee, tok, map[string]any{"price": map[string]string{"amount": "399.00", "currency": "THB"}})
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.Equal(t, "399.00", r.JSON["price"].(map[string]any)["amount"])
	require.Equal(t, "Kopi robusta Chumphon coffee beans", r.JSON["title"])
	require.Equal(t, http.StatusForbidden, n.Do("PATCH", "/v1/listings/"+coffee, tok2, map[string]any{"title": "mine"}).Status)
	require.Equal(t, http.StatusForbidden, n.Do("DELETE", "/v1/listings/"+coffee, tok2, nil).Status)

	// The seller's own list.
	r = n.Do("GET", "/v1/listings", tok, nil)
	require.Len(t, r.JSON["items"], 2)
	r = n.Do("GET", "/v1/listings?seller_id="+sid, n.OperatorToken, nil)
	require.Len(t, r.JSON["items"], 2)

	// Delete, then it is gone from search and from GET.
	tmp := create(tok, testnet.Listing("temporary durian", "081340", "10.00"))
	require.Equal(t, http.StatusNoContent, n.Do("DELETE", "/v1/listings/"+tmp, tok, nil).Status)
	require.Empty(t, search("q=durian"))
	require.Equal(t, http.StatusNotFound, n.Do("GET", "/v1/listings/"+tmp, tok, nil).Status)

	n.Restart()
	check()
}

func TestImport(t *testing.T) {
	n := testnet.Start(t, "TH")
	_, tok := n.ActiveSeller(testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	csv := "title,hs_code,price,quantity,ship_from,attr:weight\n" +
		"ปลาหมึกแห้ง,030749,420.00,10,TH-90,500 g\n" +
		"Broken,030749,-1,10,TH-90,\n" +
		"น้ำพริกเผา,210390,89,100,TH-90,200 g\n"
	r := n.DoType("POST", "/v1/listings/import", tok, "text/csv", csv)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.EqualValues(t, 2, r.JSON["imported"])
	require.EqualValues(t, 1, r.JSON["failed"])
	e := r.JSON["errors"].([]any)[0].(map[string]any)
	require.EqualValues(t, 3, e["line"])
	require.Equal(t, "price.amount", e["field"])

	nd := `{"title":"Dried squid snack","hs_code":"030749","price":{"amount":"99.00","currency":"THB"},"quantity":5,"ship_from":"TH-90"}` + "\n"
	r = n.DoType("POST", "/v1/listings/import", tok, "application/x-ndjson", nd)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.EqualValues(t, 1, r.JSON["imported"])

	r = n.DoType("POST", "/v1/listings/import", tok, "application/pdf", "x")
	require.Equal(t, http.StatusUnsupportedMediaType, r.Status)
	r = n.DoType("POST", "/v1/listings/import", tok, "text/csv", "title,colour\n")
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Contains(t, string(r.Body), "colour")

	r = n.Do("GET", "/v1/listings", tok, nil)
	require.Len(t, r.JSON["items"], 3)
}

func TestOperationalRoutes(t *testing.T) {
	n := testnet.Start(t, "TH")
	_, tok := n.ActiveSeller(testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	n.Do("POST", "/v1/listings", tok, testnet.Listing("ปลาหมึกแห้ง", "030749", "420.00"))

	require.Equal(t, http.StatusOK, n.Do("GET", "/healthz", "", nil).Status)
	// Not yet in a federation: the node serves, but is not ready (fail closed).
	r := n.Do("GET", "/readyz", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, r.Status)
	require.Equal(t, false, r.JSON["ready"])
	require.Contains(t, string(r.Body), "no valid federation manifest installed")

	require.Equal(t, http.StatusUnauthorized, n.Do("GET", "/metrics", "", nil).Status)
	require.Equal(t, http.StatusForbidden, n.Do("GET", "/metrics", tok, nil).Status)
	r = n.Do("GET", "/metrics", n.OperatorToken, nil)
	require.Equal(t, http.StatusOK, r.Status)
	for _, want := range []string{
		`imtgt_http_requests_total{code="201",route="POST /v1/listings"} 1`,
		`imtgt_catalog_listings{origin="TH"} 1`,
		`imtgt_store_size_bytes`,
	} {
		require.Contains(t, string(r.Body), want)
	}

	r = n.Do("GET", "/v1/node", tok, nil)
	require.Equal(t, "THB", r.JSON["currency"])

	require.Equal(t, http.StatusForbidden, n.Do("GET", "/v1/admin/backup", tok, nil).Status)
	r = n.Do("GET", "/v1/admin/backup", n.OperatorToken, nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Greater(t, len(r.Body), 4096)
}

// TestNoPersonalDataAtRest reads the raw store file and the node's log and
// finds none of the personal fields a seller registered.
func TestNoPersonalDataAtRest(t *testing.T) {
	n := testnet.Start(t, "TH")
	reg := testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0)
	owner := reg["owner"].(map[string]string)
	owner["full_name"] = "Kanokwan Personalname"
	owner["address"] = "77/7 Secret Lane, Hat Yai"
	reg["bank_account"] = map[string]string{"bank": "Kasikorn", "number": "5550001112"}
	id, _ := n.ActiveSeller(reg)
	// Read it back once so the sealed fields have been opened at least once.
	require.Equal(t, http.StatusOK, n.Do("GET", "/v1/sellers/"+id, n.OperatorToken, nil).Status)
	n.Stop()

	data, err := os.ReadFile(node.StorePath(n.Dir))
	require.NoError(t, err)
	for _, secret := range []string{owner["full_name"], owner["national_id"], owner["address"], owner["email"], owner["phone"], "5550001112"} {
		require.NotContains(t, string(data), secret, fmt.Sprintf("%q found in the store file", secret))
	}
	require.Contains(t, string(data), "Songkhla Seafood Export", "public fields are stored in the clear")
	logs := n.Logs()
	require.Contains(t, logs, "seller registered")
	for _, secret := range []string{owner["full_name"], owner["national_id"], owner["address"], owner["email"], "5550001112"} {
		require.NotContains(t, logs, secret, fmt.Sprintf("%q found in the node's log", secret))
	}
}

func TestImportTooLarge(t *testing.T) {
	n := testnet.Start(t, "TH")
	_, tok := n.ActiveSeller(testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	var b strings.Builder
	b.WriteString("title,description,hs_code,price,quantity,ship_from\n")
	row := "ปลาหมึกแห้ง 500 g," + strings.Repeat("dried squid from the Songkhla lagoon ", 25) + ",030749,420.00,10,TH-90\n"
	for b.Len() <= 33<<20 { // over the 32 MiB default, under the 50,000-row limit
		b.WriteString(row)
	}
	r := n.DoType("POST", "/v1/listings/import", tok, "text/csv", b.String())
	require.Equal(t, http.StatusRequestEntityTooLarge, r.Status, string(r.Body[:min(len(r.Body), 300)]))
	r = n.Do("GET", "/v1/listings", tok, nil)
	require.Empty(t, r.JSON["items"], "an oversized import stores nothing")
}
