package httpapi_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/httpapi"
	"github.com/imtgt/imtgt-node/internal/testnet"
)

// rawRequest writes head (request line and headers, no blank line) and
// body on a fresh connection without closing it, and returns the reply
// read within within.
func rawRequest(t *testing.T, baseURL, head, body string, within time.Duration) (*http.Response, map[string]any) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(baseURL, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	_, err = io.WriteString(c, head+"\r\n\r\n"+body)
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(within)))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err, "no reply within %s", within)
	defer resp.Body.Close()
	var m map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
	return resp, m
}

func TestBodyDeclaredOverTheLimitIs413AtOnce(t *testing.T) {
	n := testnet.Start(t, "TH")
	_, tok := n.ActiveSeller(testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	host := strings.TrimPrefix(n.URL, "http://")
	for _, tt := range []struct {
		path, contentType string
		length            int64
	}{
		{"/v1/listings", "application/json", httpapi.DefaultMaxBodyBytes + 1},
		{"/v1/listings/import", "text/csv", httpapi.DefaultMaxImportBytes + 1},
		{"/v1/sellers", "application/json", 1 << 40},
	} {
		t.Run(tt.path, func(t *testing.T) {
			// Headers only: a server that read before answering would
			// wait for a body that never comes.
			head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d",
				tt.path, host, tok, tt.contentType, tt.length)
			start := time.Now()
			resp, m := rawRequest(t, n.URL, head, `{"title":`, time.Second)
			require.Less(t, time.Since(start), time.Second)
			require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
			e := m["error"].(map[string]any)
			require.Equal(t, "body_too_large", e["code"])
			require.NotContains(t, e["message"], "127.0.0.1")
		})
	}
	r := n.Do("GET", "/v1/listings", tok, nil)
	require.Empty(t, r.JSON["items"])
}

func TestChunkedBodyOverTheLimitIs413(t *testing.T) {
	n := testnet.Start(t, "TH")
	_, tok := n.ActiveSeller(testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	var csv strings.Builder
	csv.WriteString("title,description,hs_code,price,quantity,ship_from\n")
	for csv.Len() <= httpapi.DefaultMaxImportBytes {
		csv.WriteString("ปลาหมึกแห้ง," + strings.Repeat("dried squid ", 80) + ",030749,420.00,10,TH-90\n")
	}
	// Rows long enough that the limit comes before the 50,000-row limit.
	ndRow := `{"title":"Dried squid","description":"` + strings.Repeat("dried squid ", 60) + `","hs_code":"030749","price":{"amount":"99.00","currency":"THB"},"quantity":5,"ship_from":"TH-90"}` + "\n"
	nd := strings.Repeat(ndRow, httpapi.DefaultMaxImportBytes/len(ndRow)+1)
	for _, tt := range []struct{ name, path, contentType, body string }{
		{"json", "/v1/listings", "application/json", `{"title":"` + strings.Repeat("a", httpapi.DefaultMaxBodyBytes) + `"}`},
		{"csv", "/v1/listings/import", "text/csv", csv.String()},
		{"ndjson", "/v1/listings/import", "application/x-ndjson", nd},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// A reader of unknown length: the client sends it chunked,
			// with no Content-Length to refuse it by.
			req, err := http.NewRequest("POST", n.URL+tt.path, io.MultiReader(strings.NewReader(tt.body)))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", tt.contentType)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var m map[string]any
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
			require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, m)
			require.Equal(t, "body_too_large", m["error"].(map[string]any)["code"])
		})
	}
	r := n.Do("GET", "/v1/listings", tok, nil)
	require.Empty(t, r.JSON["items"], "an oversized body stores nothing")
}

// brokenBody fails the way a connection does: a *net.OpError whose text
// holds both socket addresses.
type brokenBody struct {
	data string
	err  error
}

func (b *brokenBody) Read(p []byte) (int, error) {
	if b.data != "" {
		n := copy(p, b.data)
		b.data = b.data[n:]
		return n, nil
	}
	return 0, b.err
}

func TestBodyReadFailuresNameNoSocketAddress(t *testing.T) {
	n := testnet.Start(t, "TH")
	_, tok := n.ActiveSeller(testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	srv := httpapi.New(httpapi.Config{Sellers: n.Sellers, Catalog: n.Catalog, Tokens: n.Store, Node: httpapi.NodeInfo{Country: "TH", Currency: "THB"}})
	addr := func(port int) net.Addr { return &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: port} }
	timeout := &net.OpError{Op: "read", Net: "tcp", Source: addr(8080), Addr: addr(51234), Err: os.ErrDeadlineExceeded}
	reset := &net.OpError{Op: "read", Net: "tcp", Source: addr(8080), Addr: addr(51234), Err: errors.New("connection reset by peer")}
	for _, tt := range []struct {
		name, path, contentType, start string
		err                            error
		status                         int
		code                           string
	}{
		{"json timeout", "/v1/listings", "application/json", `{"title":"rice`, timeout, http.StatusRequestTimeout, "body_timeout"},
		{"json reset", "/v1/listings", "application/json", `{"title":"rice`, reset, http.StatusBadRequest, "body_incomplete"},
		{"csv timeout", "/v1/listings/import", "text/csv", "title,hs_code,price,quantity,ship_from\nA,0901,1,1,TH-90\n", timeout, http.StatusRequestTimeout, "body_timeout"},
		{"ndjson reset", "/v1/listings/import", "application/x-ndjson", `{"title":"A"}` + "\n", reset, http.StatusBadRequest, "body_incomplete"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", tt.path, &brokenBody{data: tt.start, err: tt.err})
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", tt.contentType)
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, req)
			require.Equal(t, tt.status, rec.Code, rec.Body.String())
			var m map[string]any
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &m))
			e := m["error"].(map[string]any)
			require.Equal(t, tt.code, e["code"])
			require.NotContains(t, rec.Body.String(), "10.1.2.3")
			require.NotContains(t, rec.Body.String(), "51234")
		})
	}
}

// keyedPost posts body (JSON-encoded unless a string) with an
// Idempotency-Key and returns the status, the Idempotent-Replayed header
// and the decoded reply.
func keyedPost(t *testing.T, n *testnet.Node, path, tok, contentType, key string, body any) (int, string, map[string]any) {
	t.Helper()
	s, ok := body.(string)
	if !ok {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		s = string(b)
	}
	req, err := http.NewRequest("POST", n.URL+path, strings.NewReader(s))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var m map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
	return resp.StatusCode, resp.Header.Get("Idempotent-Replayed"), m
}

func TestListingIdempotencyKey(t *testing.T) {
	n := testnet.Start(t, "TH")
	_, tok := n.ActiveSeller(testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	body := testnet.Listing("ข้าวหอมมะลิ 5 กก.", "100630", "265.00")
	errOf := func(m map[string]any) (code, field any) {
		e := m["error"].(map[string]any)
		return e["code"], e["field"]
	}

	status, replayed, first := keyedPost(t, n, "/v1/listings", tok, "application/json", "create-1", body)
	require.Equal(t, http.StatusCreated, status, first)
	require.Empty(t, replayed)
	status, replayed, again := keyedPost(t, n, "/v1/listings", tok, "application/json", "create-1", body)
	require.Equal(t, http.StatusCreated, status, again)
	require.Equal(t, "true", replayed)
	require.Equal(t, first, again, "the replay is the first answer")

	status, _, m := keyedPost(t, n, "/v1/listings", tok, "application/json", "create-1", testnet.Listing("Coffee", "090111", "350.00"))
	require.Equal(t, http.StatusConflict, status, m)
	code, field := errOf(m)
	require.Equal(t, "idempotency_key_reused", code)
	require.Equal(t, "Idempotency-Key", field)

	for _, bad := range []string{" ", strings.Repeat("k", 201)} {
		status, _, m = keyedPost(t, n, "/v1/listings", tok, "application/json", bad, body)
		require.Equal(t, http.StatusBadRequest, status, m)
		code, field = errOf(m)
		require.Equal(t, "idempotency_key", code)
		require.Equal(t, "Idempotency-Key", field)
	}

	csv := "title,hs_code,price,quantity,ship_from\nปลาหมึกแห้ง,030749,420.00,10,TH-90\nBroken,030749,-1,10,TH-90\n"
	status, replayed, first = keyedPost(t, n, "/v1/listings/import", tok, "text/csv", "import-1", csv)
	require.Equal(t, http.StatusOK, status, first)
	require.Empty(t, replayed)
	require.EqualValues(t, 1, first["imported"])
	status, replayed, again = keyedPost(t, n, "/v1/listings/import", tok, "text/csv", "import-1", csv)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "true", replayed)
	require.Equal(t, first, again)
	status, _, m = keyedPost(t, n, "/v1/listings/import", tok, "text/csv", "import-1", csv+"Coffee,090111,350,5,TH-84\n")
	require.Equal(t, http.StatusConflict, status, m)

	r := n.Do("GET", "/v1/listings", tok, nil)
	require.Len(t, r.JSON["items"], 2, "one create and one imported row, each stored once")
}
