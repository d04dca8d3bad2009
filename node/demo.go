package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/auditor"
	"github.com/imtgt/imtgt-node/federation"
	"github.com/imtgt/imtgt-node/keys"
	"github.com/imtgt/imtgt-node/membership"
	"github.com/imtgt/imtgt-node/money"
)

// DemoOptions configure the demo.
type DemoOptions struct {
	// Dir holds the demo's node directories; "" makes a new temporary one.
	Dir string
	// Out receives the human-readable progress and summary.
	Out io.Writer
	// Logger for the nodes; nil discards their logs (the demo prints its own).
	Logger *slog.Logger
	// HTTPPortBase is the first HTTP port to try (TH gets it, then MY,
	// ID); p2p ports start at 4001 likewise. 0 means random free ports.
	HTTPPortBase int
	// SyncInterval overrides the federation's safety-net sync period.
	SyncInterval time.Duration
}

// DemoNode is one node of a running demo.
type DemoNode struct {
	Country          string
	Dir              string
	URL              string
	OperatorToken    string
	SellerTokens     map[string]string // legal name -> token
	MarketplaceToken string
	AuditorToken     string
	Node             *Node
	sellerTokenByID  map[string]string // seller ID -> token
}

// Demo is a running demo: nodes on loopback, seeded with sample data.
type Demo struct {
	Dir   string
	Nodes []*DemoNode
	// ReportPath is TH's residency report (HTML); BundlePath MY's evidence
	// bundle.
	ReportPath, BundlePath string
}

// StartDemo initialises three national nodes (TH, MY, ID) on loopback,
// federates them with the same onboarding flow operators use (member
// descriptors, a manifest signed by every agency, install), starts them,
// seeds each with sellers and listings through its HTTP API, and waits
// until every catalog holds every country's listings. Close stops them.
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
	fail := func(err error) (*Demo, error) {
		d.Close(context.Background())
		return nil, fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(out, "Demo data directory: %s\n", dir)

	// 1. Each agency initialises its node.
	for i, seed := range demoSeeds {
		dn := &DemoNode{Country: seed.country, Dir: filepath.Join(dir, strings.ToLower(seed.country)), SellerTokens: map[string]string{}, sellerTokenByID: map[string]string{}}
		httpAddr, p2pAddr := "127.0.0.1:0", "127.0.0.1:0"
		if opts.HTTPPortBase > 0 {
			httpAddr = freeOr(fmt.Sprintf("127.0.0.1:%d", opts.HTTPPortBase+i))
			p2pAddr = freeOr(fmt.Sprintf("127.0.0.1:%d", 4001+i))
		}
		res, err := Init(InitOptions{Dir: dn.Dir, Country: seed.country, HTTPAddr: httpAddr, P2PAddrs: []string{"/ip4/127.0.0.1/tcp/" + portOf(p2pAddr)}})
		if err != nil {
			return fail(fmt.Errorf("init %s: %w", seed.country, err))
		}
		dn.OperatorToken = res.OperatorToken
		d.Nodes = append(d.Nodes, dn)
	}
	// 2. The onboarding flow: descriptors, one manifest, every agency signs, each installs.
	var members []membership.Member
	for _, dn := range d.Nodes {
		m, err := MemberDescriptor(dn.Dir)
		if err != nil {
			return fail(err)
		}
		members = append(members, m)
	}
	man, err := membership.New("imtgt-demo", 1, time.Now().AddDate(1, 0, 0).UTC().Truncate(time.Second), 2, members)
	if err != nil {
		return fail(err)
	}
	for _, dn := range d.Nodes {
		gk, err := keys.LoadGovernanceKey(filepath.Join(dn.Dir, KeysDir))
		if err != nil {
			return fail(err)
		}
		if err := membership.Sign(man, dn.Country, gk); err != nil {
			return fail(err)
		}
	}
	raw, err := man.Marshal()
	if err != nil {
		return fail(err)
	}
	psk, err := federation.NewPSK()
	if err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "federation.yaml"), raw, 0o600); err != nil {
		return fail(err)
	}
	for _, dn := range d.Nodes {
		if _, err := InstallManifest(ctx, dn.Dir, raw, psk); err != nil {
			return fail(fmt.Errorf("install manifest on %s: %w", dn.Country, err))
		}
	}
	fmt.Fprintf(out, "Federation %s: manifest version 1 signed by %s, installed on every node\n", man.Federation, strings.Join(man.ValidSigners(), ", "))
	// 3. Start the nodes.
	for _, dn := range d.Nodes {
		n, err := Open(ctx, dn.Dir, Options{Logger: log, SyncInterval: opts.SyncInterval})
		if err != nil {
			return fail(fmt.Errorf("open %s: %w", dn.Country, err))
		}
		dn.Node = n
		if err := n.Start(ctx); err != nil {
			return fail(fmt.Errorf("start %s: %w", dn.Country, err))
		}
		dn.URL = n.HTTPURL()
		fmt.Fprintf(out, "Started the %s node at %s (p2p %s)\n", dn.Country, dn.URL, n.Config.P2P.Addr)
	}
	// 4. Sellers register, the operators approve, the sellers list.
	total := 0
	for i, seed := range demoSeeds {
		n, err := seedNode(ctx, d.Nodes[i], seed, out)
		if err != nil {
			return fail(fmt.Errorf("seed %s: %w", seed.country, err))
		}
		total += n
	}
	// 5. Watch the catalogs converge.
	if err := d.waitSynced(ctx, total, out); err != nil {
		return fail(err)
	}
	// 6. Cross-border orders: a Malaysian marketplace buys from Thai
	// sellers; one seller accepts, packs and ships, and the MY node follows.
	if err := d.orders(ctx, out); err != nil {
		return fail(fmt.Errorf("orders: %w", err))
	}
	// 7. What an auditor sees: each node's chain countersigned by its
	// peers, TH's residency report, MY's evidence bundle verified offline.
	if err := d.audit(ctx, out); err != nil {
		return fail(fmt.Errorf("audit: %w", err))
	}
	return d, nil
}

// audit checkpoints every node's audit log (the peers countersign), writes
// TH's residency report as HTML and MY's evidence bundle, and verifies the
// bundle as an auditor would, offline.
func (d *Demo) audit(ctx context.Context, out io.Writer) error {
	for _, dn := range d.Nodes {
		cp, err := dn.Node.Checkpoint(ctx)
		if err != nil {
			return err
		}
		var by []string
		for _, w := range cp.Witnesses {
			by = append(by, w.Node)
		}
		fmt.Fprintf(out, "  %s audit log: %d entries, head countersigned by %s\n", dn.Country, cp.Seq, strings.Join(by, ", "))
		c := &apiClient{base: dn.URL, http: &http.Client{Timeout: 10 * time.Second}}
		var a struct{ Token string }
		if err := c.do(ctx, "POST", "/v1/auditors", dn.OperatorToken, map[string]string{"name": dn.Country + " data protection authority"}, http.StatusCreated, &a); err != nil {
			return err
		}
		dn.AuditorToken = a.Token
	}
	th, my := d.Nodes[0], d.Nodes[1]
	rep, err := th.Node.AuditReport(ctx, time.Time{}, time.Time{})
	if err != nil {
		return err
	}
	var html bytes.Buffer
	if err := auditor.RenderHTML(&html, rep); err != nil {
		return err
	}
	d.ReportPath = filepath.Join(d.Dir, "residency-TH.html")
	if err := os.WriteFile(d.ReportPath, html.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "  TH residency report: %d transfer groups, %d violations -> %s\n", len(rep.Transfers), len(rep.Violations), d.ReportPath)
	var bundle bytes.Buffer
	if err := my.Node.AuditExport(ctx, &bundle, time.Time{}, time.Time{}); err != nil {
		return err
	}
	d.BundlePath = filepath.Join(d.Dir, "evidence-MY.jsonl")
	if err := os.WriteFile(d.BundlePath, bundle.Bytes(), 0o644); err != nil {
		return err
	}
	b, err := audit.ReadBundle(&bundle)
	if err != nil {
		return err
	}
	sum, err := auditor.Verify(b, auditor.VerifyOptions{OpenReceipt: federation.OpenReceipt})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  MY evidence bundle verified offline: %d entries, %d receipts, %d checkpoints (%d countersigned) -> %s\n",
		sum.Entries, sum.Receipts, sum.Checkpoints, sum.Witnessed, d.BundlePath)
	return nil
}

// orders places demo orders from an MY marketplace for TH listings and moves
// one through the states.
func (d *Demo) orders(ctx context.Context, out io.Writer) error {
	th, my := d.Nodes[0], d.Nodes[1]
	c := &apiClient{base: my.URL, http: &http.Client{Timeout: 10 * time.Second}}
	var mkt struct{ ID, Token string }
	if err := c.do(ctx, "POST", "/v1/marketplaces", my.OperatorToken, map[string]string{"name": "Pasar Utara (demo marketplace)"}, http.StatusCreated, &mkt); err != nil {
		return err
	}
	my.MarketplaceToken = mkt.Token
	var search struct {
		Items []struct {
			ID     string `json:"id"`
			Title  string `json:"title"`
			Seller struct {
				LegalName string `json:"legal_name"`
			} `json:"seller"`
		} `json:"items"`
	}
	if err := c.do(ctx, "GET", "/v1/catalog/search?origin=TH&orderable=true&limit=3", mkt.Token, nil, http.StatusOK, &search); err != nil {
		return err
	}
	var first string
	for i, it := range search.Items {
		body := map[string]any{
			"buyer": map[string]any{"name": "Nurul Aina binti Hassan", "email": "nurul@example.my", "phone": "+60 12 345 6789",
				"address": map[string]string{"line1": "12 Jalan Burma", "city": "George Town", "region": "MY-07", "postcode": "10050", "country": "MY"}},
			"consent": map[string]bool{"cross_border_transfer": true},
			"items":   []map[string]any{{"listing_id": it.ID, "quantity": 1 + i}},
		}
		var o struct {
			ID    string `json:"id"`
			Quote struct {
				LandedTotal struct{ Amount, Currency string } `json:"landed_total"`
			} `json:"quote"`
		}
		if err := c.doHeader(ctx, "POST", "/v1/orders", mkt.Token, map[string]string{"Idempotency-Key": "demo-" + it.ID}, body, http.StatusCreated, &o); err != nil {
			return err
		}
		if first == "" {
			first = o.ID
		}
		fmt.Fprintf(out, "  MY marketplace ordered %q from %s: order %s, landed %s %s\n", it.Title, it.Seller.LegalName, o.ID, o.Quote.LandedTotal.Amount, o.Quote.LandedTotal.Currency)
	}
	if first == "" {
		return nil
	}
	// The TH seller of the first order moves it along.
	thc := &apiClient{base: th.URL, http: &http.Client{Timeout: 10 * time.Second}}
	deadline := time.Now().Add(30 * time.Second)
	for _, to := range []string{"accepted", "packed", "shipped"} {
		for {
			var cur struct {
				SellerID string `json:"seller_id"`
			}
			err := thc.do(ctx, "GET", "/v1/orders/"+first, th.OperatorToken, nil, http.StatusOK, &cur)
			if err == nil {
				token := th.sellerTokenByID[cur.SellerID]
				body := map[string]string{"to": to}
				if to == "shipped" {
					body["tracking"] = "THPOST-EE123456789TH"
				}
				if err = thc.do(ctx, "POST", "/v1/orders/"+first+"/transitions", token, body, http.StatusOK, nil); err == nil {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("order %s: %w", first, err)
			}
			if err := pause(ctx); err != nil {
				return err
			}
		}
	}
	for {
		var o struct{ Status, Tracking string }
		if err := c.do(ctx, "GET", "/v1/orders/"+first, mkt.Token, nil, http.StatusOK, &o); err == nil && o.Status == "shipped" {
			fmt.Fprintf(out, "  TH seller accepted, packed and shipped order %s; the MY node shows it %s (tracking %s)\n", first, o.Status, o.Tracking)
			return d.issue(ctx, out, c, thc, mkt.Token, first)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("order %s did not reach shipped on the MY node", first)
		}
		if err := pause(ctx); err != nil {
			return err
		}
	}
}

// issue is the after-sale step of the demo: the MY marketplace says the
// shipped order arrived damaged, the TH seller accepts a refund of half of
// what was paid, the marketplace reports paying it and resolves the issue;
// every step crosses between the two nodes.
func (d *Demo) issue(ctx context.Context, out io.Writer, my, th *apiClient, mktToken, orderID string) error {
	var o struct {
		SellerID string `json:"seller_id"`
		Quote    struct {
			LandedTotal struct{ Amount, Currency string } `json:"landed_total"`
		} `json:"quote"`
	}
	if err := my.do(ctx, "GET", "/v1/orders/"+orderID, mktToken, nil, http.StatusOK, &o); err != nil {
		return err
	}
	paid, err := money.Parse(o.Quote.LandedTotal.Amount, o.Quote.LandedTotal.Currency)
	if err != nil {
		return fmt.Errorf("order %s: landed total: %w", orderID, err)
	}
	half := money.Amount{Minor: paid.Minor / 2, Currency: paid.Currency}
	var is struct {
		ID        string `json:"id"`
		Status    string `json:"status"`
		RespondBy string `json:"respond_by"`
	}
	body := map[string]any{"category": "damaged", "description": "The parcel arrived crushed; half of the goods are unusable.",
		"items": []map[string]any{}, "remedy_requested": "refund"}
	var full struct {
		Items []struct {
			ListingID string `json:"listing_id"`
			Quantity  int64  `json:"quantity"`
		} `json:"items"`
	}
	if err := my.do(ctx, "GET", "/v1/orders/"+orderID, mktToken, nil, http.StatusOK, &full); err != nil {
		return err
	}
	if len(full.Items) == 0 {
		return fmt.Errorf("order %s has no items", orderID)
	}
	body["items"] = []map[string]any{{"listing_id": full.Items[0].ListingID, "quantity": 1}}
	if err := my.doHeader(ctx, "POST", "/v1/orders/"+orderID+"/issues", mktToken, map[string]string{"Idempotency-Key": "demo-issue-" + orderID}, body, http.StatusCreated, &is); err != nil {
		return fmt.Errorf("open an issue: %w", err)
	}
	fmt.Fprintf(out, "  MY marketplace opened issue %s (damaged, refund requested) on order %s: the seller must respond by %s\n", is.ID, orderID, is.RespondBy)
	seller := d.Nodes[0].sellerTokenByID[o.SellerID]
	// The seller's node holds the issue once it crossed.
	if err := waitIssue(ctx, th, seller, is.ID, "open"); err != nil {
		return err
	}
	accept := map[string]any{"action": "accept", "remedy": map[string]any{"kind": "refund", "amount": map[string]string{"amount": half.Decimal(), "currency": half.Currency}}}
	if err := th.do(ctx, "POST", "/v1/issues/"+is.ID+"/responses", seller, accept, http.StatusOK, nil); err != nil {
		return fmt.Errorf("the seller accepts: %w", err)
	}
	if err := waitIssue(ctx, my, mktToken, is.ID, "accepted"); err != nil {
		return err
	}
	refund := map[string]string{"amount": half.Decimal(), "currency": half.Currency, "reason": "half of the goods were unusable", "payment_reference": "DUITNOW-DEMO-0001"}
	if err := my.do(ctx, "POST", "/v1/issues/"+is.ID+"/refunds", mktToken, refund, http.StatusCreated, nil); err != nil {
		return fmt.Errorf("report the refund: %w", err)
	}
	if err := my.do(ctx, "POST", "/v1/issues/"+is.ID+"/responses", mktToken, map[string]string{"action": "resolve"}, http.StatusOK, nil); err != nil {
		return fmt.Errorf("resolve: %w", err)
	}
	if err := waitIssue(ctx, th, seller, is.ID, "resolved"); err != nil {
		return err
	}
	fmt.Fprintf(out, "  TH seller accepted a refund of %s; MY reported paying it (DUITNOW-DEMO-0001) and resolved the issue; both nodes show it resolved\n", half)
	return nil
}

// waitIssue polls a node until it shows issue id in status.
func waitIssue(ctx context.Context, c *apiClient, token, id, status string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var is struct{ Status string }
		err := c.do(ctx, "GET", "/v1/issues/"+id, token, nil, http.StatusOK, &is)
		if err == nil && is.Status == status {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("issue %s never showed %s at %s (last: %q, %v)", id, status, c.base, is.Status, err)
		}
		if err := pause(ctx); err != nil {
			return err
		}
	}
}

// waitSynced polls until every node's catalog holds total listings.
func (d *Demo) waitSynced(ctx context.Context, total int, out io.Writer) error {
	deadline := time.Now().Add(60 * time.Second)
	last := ""
	for {
		var parts []string
		done := true
		for _, dn := range d.Nodes {
			c := dn.Node.Catalog.Index().Count()
			parts = append(parts, fmt.Sprintf("%s %d/%d", dn.Country, c, total))
			done = done && c == total
		}
		if line := strings.Join(parts, "  "); line != last {
			fmt.Fprintf(out, "  sync: %s\n", line)
			last = line
		}
		if done {
			fmt.Fprintf(out, "Every catalog holds all %d listings of the three countries.\n", total)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("catalogs did not converge within 60s (%s)", last)
		}
		if err := pause(ctx); err != nil {
			return err
		}
	}
}

// pause waits one poll interval of the demo's waits, or until ctx ends.
func pause(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(100 * time.Millisecond):
		return nil
	}
}

func portOf(hostport string) string {
	_, port, _ := net.SplitHostPort(hostport)
	if port == "0" {
		// Pick a free port now: the manifest must name a real one.
		if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
			_, port, _ = net.SplitHostPort(ln.Addr().String())
			ln.Close()
		}
	}
	return port
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
		fmt.Fprintf(w, "  auditor token: %s\n", dn.AuditorToken)
		if dn.MarketplaceToken != "" {
			fmt.Fprintf(w, "  marketplace token: %s\n", dn.MarketplaceToken)
		}
		for _, name := range slices.Sorted(maps.Keys(dn.SellerTokens)) {
			fmt.Fprintf(w, "  seller %-36s %s\n", name+":", dn.SellerTokens[name])
		}
	}
	if len(d.Nodes) > 0 {
		dn := d.Nodes[0]
		fmt.Fprintf(w, "\nTry:\n")
		fmt.Fprintf(w, "  curl -s -H 'Authorization: Bearer %s' '%s/v1/catalog/search?q=%s'\n", dn.OperatorToken, dn.URL, "หอมมะลิ")
		fmt.Fprintf(w, "  curl -s -H 'Authorization: Bearer %s' '%s/v1/catalog/search?q=kopi'\n", dn.OperatorToken, dn.URL)
		fmt.Fprintf(w, "  curl -s -H 'Authorization: Bearer %s' '%s/v1/catalog/search?origin=MY'\n", dn.OperatorToken, dn.URL)
		fmt.Fprintf(w, "  curl -s -H 'Authorization: Bearer %s' '%s/v1/peers'\n", dn.OperatorToken, dn.URL)
		fmt.Fprintf(w, "  curl -s -H 'Authorization: Bearer %s' '%s/v1/orders'      # the TH side of the demo orders\n", dn.OperatorToken, dn.URL)
		fmt.Fprintf(w, "  curl -s -H 'Authorization: Bearer %s' '%s/v1/issues'      # the demo's after-sale issue, resolved with a refund\n", dn.OperatorToken, dn.URL)
		fmt.Fprintf(w, "  curl -s -H 'Authorization: Bearer %s' '%s/v1/catalog/search?q=vape'      # not orderable in TH: rule TH-IMP-ECIG\n", dn.OperatorToken, dn.URL)
		if len(d.Nodes) > 2 {
			id := d.Nodes[2]
			fmt.Fprintf(w, "  curl -s -H 'Authorization: Bearer %s' '%s/v1/catalog/search?q=hamper'    # the ID node: copy the id, then\n", id.OperatorToken, id.URL)
			fmt.Fprintf(w, "  curl -s -H 'Authorization: Bearer %s' '%s/v1/catalog/listings/ID/quote'  # duty and VAT in IDR\n", id.OperatorToken, id.URL)
		}
	}
	if len(d.Nodes) > 0 {
		th := d.Nodes[0]
		fmt.Fprintf(w, "\nAudit:\n")
		fmt.Fprintf(w, "  curl -s -H 'Authorization: Bearer %s' '%s/v1/audit/residency'\n", th.AuditorToken, th.URL)
		fmt.Fprintf(w, "  curl -s -H 'Authorization: Bearer %s' '%s/v1/audit/entries?kind=catalog'\n", th.AuditorToken, th.URL)
		fmt.Fprintf(w, "  open %s                     # TH's residency report\n", d.ReportPath)
		fmt.Fprintf(w, "  go run ./cmd/imtgt-node audit verify %s    # offline, no keys\n", d.BundlePath)
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

func seller(legal, bid, region, email, phone, owner, nid, bank string) map[string]any {
	return map[string]any{
		"legal_name": legal, "business_id": bid, "region": region,
		"contact": map[string]string{"email": email, "phone": phone},
		"owner": map[string]string{
			"full_name": owner, "national_id": nid, "phone": phone,
			"email": "owner." + email, "address": "No. 12, " + region,
		},
		"bank_account": map[string]string{"bank": bank, "number": "9876543210"},
	}
}

// demoSeeds are realistic sellers and listings of each demo country. The
// identifiers carry valid check digits.
var demoSeeds = []demoSeed{
	{country: "TH", sellers: []demoSeller{
		{
			body: seller("Songkhla Seafood Export Co., Ltd.", "0105537001232", "TH-90", "sales@songkhlaseafood.co.th", "+66 74 311 200", "Somchai Jaidee", "1900100123457", "Krungthai Bank"),
			listings: []map[string]any{
				listing("ปลาหมึกแห้ง สงขลา (Songkhla dried squid) 500 g", "Sun-dried squid from the Songkhla lagoon, vacuum packed.", "030749", "420.00", "THB", 300, "TH-90", map[string]string{"weight": "500 g"}),
				listing("น้ำพริกเผา ตำรับใต้ (southern Thai chili paste)", "Roasted chili paste, no preservatives, 200 g jar.", "210390", "89.00", "THB", 1200, "TH-90", map[string]string{"weight": "200 g"}),
			},
		},
		{
			body: seller("Surat Thani Rice & Coffee Co., Ltd.", "0845560012346", "TH-84", "hello@suratharvest.co.th", "+66 77 281 555", "Malee Srisuk", "3830100456780", "Kasikornbank"),
			listings: []map[string]any{
				listing("ข้าวหอมมะลิ 5 กก. (Thai Hom Mali jasmine rice 5 kg)", "New-crop Hom Mali jasmine rice, 5 kg bag.", "100630", "265.00", "THB", 800, "TH-84", map[string]string{"weight": "5 kg", "grade": "A"}),
				listing("กาแฟโรบัสต้า ชุมพร (Chumphon robusta coffee beans) 1 kg", "Green robusta coffee beans from Chumphon, unroasted.", "090111", "350.00", "THB", 400, "TH-84", nil),
				listing("ทุเรียนหมอนทอง อบแห้ง (dried Monthong durian)", "Freeze-dried Monthong durian chips, 100 g.", "081340", "259.00", "THB", 500, "TH-84", nil),
			},
		},
		{
			body: seller("Phuket Latex & Craft Co., Ltd.", "0835559007890", "TH-83", "shop@phuketlatex.co.th", "+66 76 212 999", "Anan Thongdee", "1100200987655", "Bangkok Bank"),
			listings: []map[string]any{
				listing("หมอนยางพาราแท้ (natural latex pillow)", "Pillow of natural Thai latex from southern rubber plantations.", "940490", "1290.00", "THB", 150, "TH-83", map[string]string{"size": "60x40 cm"}),
				listing("ผ้าบาติกภูเก็ต (Phuket batik sarong)", "Hand-painted cotton batik sarong made in Phuket.", "520852", "450.00", "THB", 200, "TH-83", nil),
			},
		},
	}},
	{country: "MY", sellers: []demoSeller{
		{
			body: seller("Penang White Coffee Sdn. Bhd.", "201901012345", "MY-07", "sales@penangkopi.com.my", "+60 4 262 1234", "Tan Mei Ling", "850712-07-5678", "Maybank"),
			listings: []map[string]any{
				listing("Kopi Putih Pulau Pinang 3-in-1 (Penang white coffee), 15 sachets", "Classic Penang white coffee, roasted in palm-oil margarine.", "210112", "18.90", "MYR", 2000, "MY-07", nil),
				listing("Dodol Durian Musang King 500 g", "Durian dodol made with Musang King pulp.", "170490", "32.00", "MYR", 300, "MY-07", nil),
				// Legal to sell in Malaysia; Thailand bans its import: the
				// TH catalog shows it as not orderable, citing the rule.
				listing("Vape pod kit, 2 ml refillable", "Refillable pod kit with two 2 ml pods.", "854340", "49.00", "MYR", 100, "MY-07", nil),
				listing("Kopi Putih premium gift hamper", "White coffee, kaya and biscuits in a rattan hamper.", "210112", "600.00", "MYR", 20, "MY-07", nil),
			},
		},
		{
			body: seller("Kedah Coconut Industries Sdn. Bhd.", "201701034567", "MY-02", "hello@kedahcoconut.com.my", "+60 4 733 9090", "Ahmad bin Ismail", "790203-02-5123", "CIMB Bank"),
			listings: []map[string]any{
				listing("Minyak Kelapa Dara (virgin coconut oil) 500 ml", "Cold-pressed virgin coconut oil from Kedah coconuts.", "151319", "29.50", "MYR", 800, "MY-02", map[string]string{"volume": "500 ml"}),
				listing("Lada Hitam Sarawak (black pepper) 250 g", "Whole black pepper, sun-dried.", "090411", "15.00", "MYR", 600, "MY-02", nil),
			},
		},
		{
			body: seller("Kelantan Batik House", "202003056789", "MY-03", "shop@kelantanbatik.my", "+60 9 744 2211", "Nik Aisyah binti Nik Mat", "920415-03-5566", "Bank Islam"),
			listings: []map[string]any{
				listing("Batik Kelantan sarung, hand-drawn (batik tulis)", "Hand-drawn cotton batik sarong from Kota Bharu.", "520852", "180.00", "MYR", 40, "MY-03", nil),
			},
		},
	}},
	{country: "ID", sellers: []demoSeller{
		{
			body: seller("Koperasi Kopi Gayo Aceh", "8120001234567", "ID-AC", "info@kopigayo.co.id", "+62 643 21234", "Teuku Rahmat", "1106011507850001", "Bank Syariah Indonesia"),
			listings: []map[string]any{
				listing("Kopi Arabika Gayo, biji hijau 1 kg (Gayo arabica green beans)", "Single-origin Gayo highland arabica, wet-hulled.", "090111", "185000.00", "IDR", 500, "ID-AC", nil),
			},
		},
		{
			body: seller("PT Ulos Batak Nusantara", "9120009876543", "ID-SU", "sales@ulosbatak.co.id", "+62 61 455 7788", "Maria Simanjuntak", "1271014402900002", "Bank Mandiri"),
			listings: []map[string]any{
				listing("Kain Ulos Ragi Hotang tenun tangan (hand-woven ulos)", "Traditional Batak hand-woven ulos cloth, 180 x 60 cm.", "6214", "750000.00", "IDR", 25, "ID-SU", nil),
				listing("Bika Ambon Medan, kotak isi 20", "Medan's honeycomb cake, fresh-baked, box of 20.", "190590", "95000.00", "IDR", 120, "ID-SU", nil),
			},
		},
		{
			body: seller("CV Rempah Minang", "8120005554443", "ID-SB", "halo@rempahminang.id", "+62 751 333 444", "Rina Chaniago", "1371015005880003", "Bank Nagari"),
			listings: []map[string]any{
				listing("Kayu Manis Kerinci (Korintje cinnamon) 250 g", "Cinnamon sticks from Kerinci, West Sumatra.", "090611", "45000.00", "IDR", 400, "ID-SB", nil),
				listing("Rendang Daging Sapi kaleng 200 g (beef rendang)", "Padang beef rendang, retort can, halal.", "160250", "65000.00", "IDR", 250, "ID-SB", nil),
			},
		},
	}},
}

// seedNode registers, approves and lists the seed data through the node's
// own HTTP API, so the demo exercises exactly what users call.
func seedNode(ctx context.Context, dn *DemoNode, seed demoSeed, out io.Writer) (int, error) {
	c := &apiClient{base: dn.URL, http: &http.Client{Timeout: 10 * time.Second}}
	count := 0
	for _, s := range seed.sellers {
		var reg struct{ ID, Token string }
		if err := c.do(ctx, "POST", "/v1/sellers", "", s.body, http.StatusCreated, &reg); err != nil {
			return 0, err
		}
		if err := c.do(ctx, "POST", "/v1/sellers/"+reg.ID+"/approve", dn.OperatorToken, nil, http.StatusOK, nil); err != nil {
			return 0, err
		}
		name := s.body["legal_name"].(string)
		dn.SellerTokens[name] = reg.Token
		dn.sellerTokenByID[reg.ID] = reg.Token
		for _, l := range s.listings {
			if err := c.do(ctx, "POST", "/v1/listings", reg.Token, l, http.StatusCreated, nil); err != nil {
				return 0, err
			}
			count++
		}
		fmt.Fprintf(out, "  %s: registered and approved %s with %d listings\n", seed.country, name, len(s.listings))
	}
	return count, nil
}

// apiClient is the demo's small JSON client.
type apiClient struct {
	base string
	http *http.Client
}

func (c *apiClient) do(ctx context.Context, method, path, token string, body any, want int, out any) error {
	return c.doHeader(ctx, method, path, token, nil, body, want, out)
}

func (c *apiClient) doHeader(ctx context.Context, method, path, token string, headers map[string]string, body any, want int, out any) error {
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
	for k, v := range headers {
		req.Header.Set(k, v)
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
