// Package testnet starts real nodes for tests: initialised in a temporary
// directory, serving HTTP on a random loopback port, with a small JSON
// client. It grows into N federated nodes with the federation issue.
package testnet

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/node"
)

// Node is a running test node.
type Node struct {
	t             testing.TB
	Dir           string
	Country       string
	URL           string
	OperatorToken string
	SyncInterval  time.Duration
	// NoAudit opens the node without its audit log (benchmarks only).
	NoAudit bool
	// P2PAddr, when set, overrides the config's federation address (run
	// --p2p-addr): each replica of a node has its own.
	P2PAddr string
	// Now, when set, is the node's clock for orders and issues.
	Now  func() time.Time
	logs *syncBuffer
	*node.Node
}

// syncBuffer collects a node's log lines for tests that read them.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Logs returns everything the node has logged so far (at debug level).
func (tn *Node) Logs() string {
	tn.logs.mu.Lock()
	defer tn.logs.mu.Unlock()
	return tn.logs.buf.String()
}

// Start initialises and starts a node of country; it is closed when the
// test ends.
func Start(tb testing.TB, country string) *Node {
	tb.Helper()
	tn := initNode(tb, country, "", 0)
	tn.start()
	return tn
}

// initNode initialises a node of country in a temporary directory (p2pAddr
// "" keeps the default) and stops it when the test ends.
func initNode(tb testing.TB, country, p2pAddr string, syncInterval time.Duration) *Node {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), country)
	res, err := node.Init(node.InitOptions{Dir: dir, Country: country, HTTPAddr: "127.0.0.1:0", P2PAddrs: []string{p2pAddr}})
	require.NoError(tb, err)
	tn := &Node{t: tb, Dir: dir, Country: country, OperatorToken: res.OperatorToken, logs: &syncBuffer{}, SyncInterval: syncInterval}
	tb.Cleanup(func() { tn.Stop() })
	return tn
}

func (tn *Node) start() {
	tn.t.Helper()
	n, err := node.Open(context.Background(), tn.Dir, node.Options{Logger: slog.New(slog.NewTextHandler(tn.logs, &slog.HandlerOptions{Level: slog.LevelDebug})), SyncInterval: tn.SyncInterval, NoAudit: tn.NoAudit, P2PAddr: tn.P2PAddr, Now: tn.Now})
	require.NoError(tn.t, err)
	require.NoError(tn.t, n.Start(context.Background()))
	tn.Node, tn.URL = n, n.HTTPURL()
}

// Start starts a node that InitNode initialised.
func (tn *Node) Start() {
	tn.t.Helper()
	tn.start()
}

// Stop closes the node (idempotent).
func (tn *Node) Stop() {
	if tn.Node == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(tn.t, tn.Node.Close(ctx))
	tn.Node = nil
}

// Restart stops the node and opens it again from its directory.
func (tn *Node) Restart() {
	tn.t.Helper()
	tn.Stop()
	tn.start()
}

// Response is an HTTP reply with its body decoded as JSON (if it was).
type Response struct {
	Status int
	Body   []byte
	JSON   map[string]any
}

// Do sends a JSON request (body may be nil, a []byte sent as is, or a value
// to marshal) and returns the reply.
func (tn *Node) Do(method, path, token string, body any) Response {
	tn.t.Helper()
	return tn.DoType(method, path, token, "application/json", body)
}

// DoHeader is Do with extra request headers.
func (tn *Node) DoHeader(method, path, token string, headers map[string]string, body any) Response {
	tn.t.Helper()
	return tn.do(method, path, token, "application/json", headers, body)
}

// DoType is Do with an explicit Content-Type.
func (tn *Node) DoType(method, path, token, contentType string, body any) Response {
	tn.t.Helper()
	return tn.do(method, path, token, contentType, nil, body)
}

func (tn *Node) do(method, path, token, contentType string, headers map[string]string, body any) Response {
	tn.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		data, err := json.Marshal(b)
		require.NoError(tn.t, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, tn.URL+path, rd)
	require.NoError(tn.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(tn.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(tn.t, err)
	r := Response{Status: resp.StatusCode, Body: data}
	_ = json.Unmarshal(data, &r.JSON) // not every reply is a JSON object
	return r
}

// RegisterSeller registers a seller and returns its ID and token.
func (tn *Node) RegisterSeller(body any) (id, token string) {
	tn.t.Helper()
	r := tn.Do("POST", "/v1/sellers", "", body)
	require.Equal(tn.t, http.StatusCreated, r.Status, string(r.Body))
	return r.JSON["id"].(string), r.JSON["token"].(string)
}

// ActiveSeller registers and approves a seller.
func (tn *Node) ActiveSeller(body any) (id, token string) {
	tn.t.Helper()
	id, token = tn.RegisterSeller(body)
	r := tn.Do("POST", "/v1/sellers/"+id+"/approve", tn.OperatorToken, nil)
	require.Equal(tn.t, http.StatusOK, r.Status, string(r.Body))
	return id, token
}

// THSeller is a valid Thai seller registration; suffix varies the business
// ID's running number so several can register (0-9).
func THSeller(legalName string, n int) map[string]any {
	bids := []string{"0105537001232", "0105558004567", "0835559007890", "0845560012346", "0105536082000",
		"1101700230708", "1234567890121", "1900100123457", "3830100456780", "1100200987655"}
	return map[string]any{
		"legal_name": legalName, "business_id": bids[n%len(bids)], "region": "TH-90",
		"contact": map[string]string{"email": "sales@example.co.th", "phone": "+66 74 311 200"},
		"owner": map[string]string{"full_name": "Somchai Jaidee", "national_id": "1900100123457",
			"phone": "+66 81 234 5678", "email": "somchai.private@example.com", "address": "99/1 Moo 4, Hat Yai"},
		"bank_account": map[string]string{"bank": "Krungthai Bank", "number": "9876543210"},
	}
}

// Listing is a valid TH listing body.
func Listing(title, hs, amount string) map[string]any {
	return map[string]any{
		"title": title, "description": "", "hs_code": hs,
		"price": map[string]string{"amount": amount, "currency": "THB"}, "quantity": 10, "ship_from": "TH-90",
	}
}
