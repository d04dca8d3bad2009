package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DemoOptions configure the demo.
type DemoOptions struct {
	// Dir holds the demo's node directories; "" makes a new temporary one.
	Dir string
	// Out receives the human-readable progress and summary.
	Out io.Writer
	// Logger for the nodes; nil discards their logs (the demo prints its own).
	Logger *slog.Logger
	// HTTPPortBase is the first HTTP port to try (TH gets it); 0 means
	// random free ports.
	HTTPPortBase int
}

// DemoNode is one node of a running demo.
type DemoNode struct {
	Country       string
	Dir           string
	URL           string
	OperatorToken string
	SellerTokens  map[string]string // legal name -> token
	Node          *Node
}

// Demo is a running demo: nodes on loopback, seeded with sample data.
type Demo struct {
	Dir   string
	Nodes []*DemoNode
}

// StartDemo initialises, starts and seeds the demo nodes. Close stops them.
func StartDemo(ctx context.Context, opts DemoOptions) (*Demo, error) {
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	dir := opts.Dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "imtgt-demo-"); err != nil {
			return nil, err
		}
	}
	d := &Demo{Dir: dir}
	fmt.Fprintf(out, "Demo data directory: %s\n", dir)
	for i, seed := range demoSeeds {
		dn := &DemoNode{Country: seed.country, Dir: filepath.Join(dir, strings.ToLower(seed.country)), SellerTokens: map[string]string{}}
		httpAddr := "127.0.0.1:0"
		if opts.HTTPPortBase > 0 {
			httpAddr = freeOr(fmt.Sprintf("127.0.0.1:%d", opts.HTTPPortBase+i))
		}
		res, err := Init(InitOptions{Dir: dn.Dir, Country: seed.country, HTTPAddr: httpAddr, P2PAddr: fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 0)})
		if err != nil {
			d.Close(context.Background())
			return nil, fmt.Errorf("demo: init %s: %w", seed.country, err)
		}
		dn.OperatorToken = res.OperatorToken
		n, err := Open(ctx, dn.Dir, Options{Logger: log})
		if err != nil {
			d.Close(context.Background())
			return nil, fmt.Errorf("demo: open %s: %w", seed.country, err)
		}
		dn.Node = n
		d.Nodes = append(d.Nodes, dn)
		if err := n.Start(ctx); err != nil {
			d.Close(context.Background())
			return nil, fmt.Errorf("demo: start %s: %w", seed.country, err)
		}
		dn.URL = n.HTTPURL()
		fmt.Fprintf(out, "Started the %s node at %s\n", seed.country, dn.URL)
		if err := seedNode(ctx, dn, seed, out); err != nil {
			d.Close(context.Background())
			return nil, fmt.Errorf("demo: seed %s: %w", seed.country, err)
		}
	}
	return d, nil
}

// freeOr returns addr if it can be listened on now, else a random port.
func freeOr(addr string) string {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "127.0.0.1:0"
	}
	ln.Close()
	return addr
}

// Close stops every node and returns the first error.
func (d *Demo) Close(ctx context.Context) error {
	var first error
	for _, dn := range d.Nodes {
		if dn.Node == nil {
			continue
		}
		if err := dn.Node.Close(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// PrintSummary writes each node's URL and tokens, and commands to try.
func (d *Demo) PrintSummary(w io.Writer) {
	fmt.Fprintln(w)
	for _, dn := range d.Nodes {
		fmt.Fprintf(w, "%s node  %s\n", dn.Country, dn.URL)
		fmt.Fprintf(w, "  operator token: %s\n", dn.OperatorToken)
		for name, tok := range dn.SellerTokens {
			fmt.Fprintf(w, "  seller %-36s %s\n", name+":", tok)
		}
	}
	if len(d.Nodes) > 0 {
		dn := d.Nodes[0]
		fmt.Fprintf(w, "\nTry:\n")
		fmt.Fprintf(w, "  curl -s -H 'Authorization: Bearer %s' '%s/v1/catalog/search?q=%s'\n", dn.OperatorToken, dn.URL, "หอมมะลิ")
		fmt.Fprintf(w, "  curl -s -H 'Authorization: Bearer %s' '%s/v1/catalog/search?q=coffee&max_price=500'\n", dn.OperatorToken, dn.URL)
		fmt.Fprintf(w, "  curl -s -H 'Authorization: Bearer %s' '%s/v1/sellers?status=active'\n", dn.OperatorToken, dn.URL)
	}
	fmt.Fprintf(w, "\nPress Ctrl-C to stop.\n")
}

type demoSeller struct {
	body     map[string]any
	listings []map[string]any
}

type demoSeed struct {
	country string
	sellers []demoSeller
}

func listing(title, desc, hs, amount, currency string, qty int, shipFrom string, attrs map[string]string) map[string]any {
	return map[string]any{
		"title": title, "description": desc, "hs_code": hs,
		"price": map[string]string{"amount": amount, "currency": currency}, "quantity": qty,
		"ship_from": shipFrom, "attributes": attrs,
	}
}

func seller(legal, bid, region, email, phone, owner, nid string) map[string]any {
	return map[string]any{
		"legal_name": legal, "business_id": bid, "region": region,
		"contact": map[string]string{"email": email, "phone": phone},
		"owner": map[string]string{
			"full_name": owner, "national_id": nid, "phone": phone,
			"email": "owner." + email, "address": "12 Moo 3, " + region,
		},
		"bank_account": map[string]string{"bank": "Krungthai Bank", "number": "9876543210"},
	}
}

// demoSeeds are realistic sellers and listings of each demo country. The
// identifiers carry valid check digits.
var demoSeeds = []demoSeed{
	{country: "TH", sellers: []demoSeller{
		{
			body: seller("Songkhla Seafood Export Co., Ltd.", "0105537001232", "TH-90", "sales@songkhlaseafood.co.th", "+66 74 311 200", "Somchai Jaidee", "1900100123457"),
			listings: []map[string]any{
				listing("ปลาหมึกแห้ง สงขลา (Songkhla dried squid) 500 g", "Sun-dried squid from the Songkhla lagoon, vacuum packed.", "030749", "420.00", "THB", 300, "TH-90", map[string]string{"weight": "500 g"}),
				listing("น้ำพริกเผา ตำรับใต้ (southern Thai chili paste)", "Roasted chili paste, no preservatives, 200 g jar.", "210390", "89.00", "THB", 1200, "TH-90", map[string]string{"weight": "200 g"}),
			},
		},
		{
			body: seller("Surat Thani Rice & Coffee Co., Ltd.", "0845560012346", "TH-84", "hello@suratharvest.co.th", "+66 77 281 555", "Malee Srisuk", "3830100456780"),
			listings: []map[string]any{
				listing("ข้าวหอมมะลิ 5 กก. (Thai Hom Mali jasmine rice 5 kg)", "New-crop Hom Mali jasmine rice, 5 kg bag.", "100630", "265.00", "THB", 800, "TH-84", map[string]string{"weight": "5 kg", "grade": "A"}),
				listing("กาแฟโรบัสต้า ชุมพร (Chumphon robusta coffee beans) 1 kg", "Green robusta coffee beans from Chumphon, unroasted.", "090111", "350.00", "THB", 400, "TH-84", nil),
				listing("ทุเรียนหมอนทอง อบแห้ง (dried Monthong durian)", "Freeze-dried Monthong durian chips, 100 g.", "081340", "259.00", "THB", 500, "TH-84", nil),
			},
		},
		{
			body: seller("Phuket Latex & Craft Co., Ltd.", "0835559007890", "TH-83", "shop@phuketlatex.co.th", "+66 76 212 999", "Anan Thongdee", "1100200987655"),
			listings: []map[string]any{
				listing("หมอนยางพาราแท้ (natural latex pillow)", "Pillow of natural Thai latex from southern rubber plantations.", "940490", "1290.00", "THB", 150, "TH-83", map[string]string{"size": "60x40 cm"}),
				listing("ผ้าบาติกภูเก็ต (Phuket batik sarong)", "Hand-painted cotton batik sarong made in Phuket.", "520852", "450.00", "THB", 200, "TH-83", nil),
			},
		},
	}},
}

// seedNode registers, approves and lists the seed data through the node's
// own HTTP API, so the demo exercises exactly what users call.
func seedNode(ctx context.Context, dn *DemoNode, seed demoSeed, out io.Writer) error {
	c := &apiClient{base: dn.URL, http: &http.Client{Timeout: 10 * time.Second}}
	for _, s := range seed.sellers {
		var reg struct{ ID, Token string }
		if err := c.do(ctx, "POST", "/v1/sellers", "", s.body, http.StatusCreated, &reg); err != nil {
			return err
		}
		if err := c.do(ctx, "POST", "/v1/sellers/"+reg.ID+"/approve", dn.OperatorToken, nil, http.StatusOK, nil); err != nil {
			return err
		}
		name := s.body["legal_name"].(string)
		dn.SellerTokens[name] = reg.Token
		for _, l := range s.listings {
			if err := c.do(ctx, "POST", "/v1/listings", reg.Token, l, http.StatusCreated, nil); err != nil {
				return err
			}
		}
		fmt.Fprintf(out, "  %s: registered and approved %s with %d listings\n", seed.country, name, len(s.listings))
	}
	return nil
}

// apiClient is the demo's small JSON client.
type apiClient struct {
	base string
	http *http.Client
}

func (c *apiClient) do(ctx context.Context, method, path, token string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}
