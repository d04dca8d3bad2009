package auditor

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/policy"
)

// rtHostile is markup a peer could put in what the node logs about it.
const rtHostile = `<script>alert("x")</script><img src=x onerror=alert(1)>`

// rtExampleReport is a month and a half of a TH node's traffic: catalog
// records to MY and ID every day, order handoffs and status updates,
// receipts, records received, rejections (one with a hostile reason), a
// policy change, and one handoff that sent the buyer's e-mail before the
// policy allowed it.
func rtExampleReport(t testing.TB) *Report {
	t.Helper()
	th1 := rtPolicy(t, "TH", 1, nil)
	th2 := rtPolicy(t, "TH", 2, rtAllowBuyerEmail(t))
	start := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	var es []audit.Entry
	version := uint64(1)
	for d := range 45 {
		day := start.AddDate(0, 0, d)
		if d == 20 {
			es = append(es, rtPolicyInstalled(day.Add(time.Hour), 2))
			version = 2
		}
		es = append(es,
			rtCatalog(day.Add(2*time.Hour), "MY", 40+(d*37)%90, version, "TH-TR-CATALOG"),
			rtCatalog(day.Add(3*time.Hour), "ID", 20+(d*53)%70, version, "TH-TR-CATALOG"),
		)
		if d%3 == 0 {
			es = append(es, rtHandoff(day.Add(5*time.Hour), "TH", "MY", version, "name", "phone", "address.line1", "address.city", "address.postcode", "address.country"))
		}
		if d%4 == 1 {
			es = append(es,
				audit.Entry{Time: day.Add(6 * time.Hour), Kind: audit.StatusEgress, Peer: "ID", Purpose: string(policy.PurposeOrderStatus), Count: 1,
					Fields: []string{"order.id", "order.status", "order.tracking"}, PolicyVersion: version,
					Rules: []string{"TH-TR-ORDER-STATUS"}, LegalBasis: policy.BasisNotPersonal},
				audit.Entry{Time: day.Add(7 * time.Hour), Kind: audit.ReceiptEgress, Peer: "ID", ReceiptHash: audit.HashHex([]byte{byte(d)})},
			)
		}
		if d%2 == 0 {
			es = append(es, audit.Entry{Time: day.Add(8 * time.Hour), Kind: audit.CatalogIngress, Peer: "MY", Purpose: "catalog", Count: 25,
				Fields: []string{"listing.id", "listing.title", "listing.price", "listing.seller.legal_name"}, PolicyVersion: 1,
				Rules: []string{"MY-TR-CATALOG"}, LegalBasis: policy.BasisNotPersonal})
		}
		if d%5 == 2 {
			es = append(es, audit.Entry{Time: day.Add(9 * time.Hour), Kind: audit.HandoffIngress, Peer: "ID", Purpose: "order_handoff", Count: 1,
				Fields: []string{"buyer.name", "buyer.phone", "buyer.address.line1", "order.id", "order.items"}, PolicyVersion: 1,
				Rules: []string{"ID-TR-ORDER-BUYER", "ID-TR-ORDER"}, LegalBasis: policy.BasisContractNecessity})
		}
		if d == 9 {
			es = append(es, rtHandoff(day.Add(10*time.Hour), "TH", "MY", version, "name", "email", "phone"))
		}
	}
	es = append(es,
		rtRejection(start.Add(30*time.Hour), "MY", "12D3KooWMy", "bad signature: record MY#88"),
		rtRejection(start.Add(31*time.Hour), "MY", "12D3KooWMy", "bad signature: record MY#89"),
		rtRejection(start.Add(50*time.Hour), "ID", "12D3KooWId", "replay: sequence 12 seen"),
		rtRejection(start.Add(70*time.Hour), "", "12D3KooWPkq7hYx3d5Qy8Z2nB4tGvF6mR1sLcWuEaJoKiTe", "outsider: not in the federation manifest"),
		rtRejection(start.Add(90*time.Hour), "ID", "", rtHostile+": detail"),
	)
	return Residency(ReportInput{
		Node: "TH", PeerID: "12D3KooWQm4T8s2LgfYv9kX1pRcNbZ7dHe3JuAo5WiSy6Vtq", GeneratedAt: time.Date(2026, 3, 20, 10, 30, 0, 0, time.UTC),
		From: start, To: start.AddDate(0, 0, 45),
		Entries: rtChain(t, es...), Policies: map[uint64]*policy.Policy{1: th1, 2: th2}, PolicyAtStart: 1,
		AtRest: AtRest{Country: "TH", Store: "bbolt, /var/lib/imtgt/node.db", Sellers: 214, Listings: 5832,
			Replicas: 11408, Orders: 391, PersonalEncrypted: true},
	})
}

// rtRender renders r and parses the page.
func rtRender(t *testing.T, r *Report) (string, *html.Node) {
	t.Helper()
	var b bytes.Buffer
	if err := RenderHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	rtBalanced(t, page)
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	return page, doc
}

// rtBalanced checks that every element the page opens it closes, in
// order: html.Parse repairs what it is given, so a bad template would
// otherwise go unnoticed.
func rtBalanced(t *testing.T, page string) {
	t.Helper()
	void := map[string]bool{"meta": true, "br": true, "img": true, "link": true, "hr": true, "input": true}
	var open []string
	z := html.NewTokenizer(strings.NewReader(page))
	for {
		switch z.Next() {
		case html.ErrorToken:
			if !errors.Is(z.Err(), io.EOF) {
				t.Fatal(z.Err())
			}
			if len(open) > 0 {
				t.Fatalf("unclosed elements: %v", open)
			}
			return
		case html.StartTagToken:
			name, _ := z.TagName()
			if !void[string(name)] {
				open = append(open, string(name))
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if len(open) == 0 || open[len(open)-1] != string(name) {
				t.Fatalf("</%s> closes %v", name, open)
			}
			open = open[:len(open)-1]
		}
	}
}

// rtFind returns the elements named tag under n, in document order.
func rtFind(n *html.Node, tag string) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && d.Data == tag {
			out = append(out, d)
		}
	}
	return out
}

// rtText is the text under n, a space between elements' texts and
// spaces collapsed, as a reader sees it.
func rtText(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
			b.WriteByte(' ')
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// rtSVG checks the page's chart is well-formed XML, as an SVG file saved
// from it must be, and returns its source.
func rtSVG(t *testing.T, page string) string {
	t.Helper()
	i, j := strings.Index(page, "<svg"), strings.Index(page, "</svg>")
	if i < 0 || j < i {
		t.Fatal("no inline SVG chart")
	}
	svg := page[i : j+len("</svg>")]
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		if _, err := d.Token(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("chart is not well-formed SVG: %v", err)
		}
	}
	return svg
}

func TestRenderHTML(t *testing.T) {
	r := rtExampleReport(t)
	if len(r.Violations) != 1 {
		t.Fatalf("example report has %d violations, want the one e-mail handoff", len(r.Violations))
	}
	r.Violations[0].Reason += " " + rtHostile
	page, doc := rtRender(t, r)
	if out := os.Getenv("AUDIT_REPORT_HTML"); out != "" {
		// For looking at: AUDIT_REPORT_HTML=/tmp/report.html go test ./audit -run TestRenderHTML
		if err := os.WriteFile(out, []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	if got := rtText(rtFind(doc, "title")[0]); got != "Data residency report — TH" {
		t.Errorf("title = %q", got)
	}
	if got := rtText(rtFind(doc, "h1")[0]); got != "Data residency report — TH" {
		t.Errorf("h1 = %q", got)
	}
	if n := len(rtFind(doc, "script")); n != 0 {
		t.Errorf("page has %d script elements: a hostile string was not escaped", n)
	}
	if strings.Contains(page, "<img") {
		t.Error("hostile markup reached the page unescaped")
	}
	for n := range doc.Descendants() {
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") {
				t.Errorf("<%s> has an event handler %s", n.Data, a.Key)
			}
		}
	}
	if !strings.Contains(page, `<span class="field disallowed">buyer.email</span>`) {
		t.Error("the field a violation names is not marked")
	}
	if !strings.Contains(page, "&lt;script&gt;") {
		t.Error("hostile reason not shown escaped")
	}
	for _, l := range rtFind(doc, "link") {
		t.Errorf("page loads an external resource: %v", l.Attr)
	}
	for _, tag := range []string{"img", "iframe", "object", "embed"} {
		if n := len(rtFind(doc, tag)); n != 0 {
			t.Errorf("page has %d <%s>", n, tag)
		}
	}

	text := rtText(doc)
	for _, want := range []string{
		"From 1 February 2026 through 17 March 2026 (UTC)",
		"Generated 20 March 2026, 10:30 UTC",
		"TH policy version 2 at the end of the period",
		"1 policy violation",
		"1 transfer was not allowed by the policy in force",
		"buyer.email", "buyer.name", "listing.seller.legal_name",
		"MY (Malaysia)", "ID (Indonesia)",
		"Product catalog", "Order handoff", "Order status update", "Delivery receipt",
		"No personal data", "Necessary for a contract with the person",
		"TH-TR-CATALOG", "TH-TR-ORDER-BUYER", "TH-TR-ORDER-STATUS",
		"Data received", "Data kept in the country", "11,408", "AES-256-GCM",
		"By reason", "bad signature", "By sender", "12D3KooWPkq7hYx3d5Qy8Z2nB4tGvF6mR1sLcWuEaJoKiTe",
		"Records sent abroad per day",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("page does not say %q", want)
		}
	}
	if strings.Contains(text, "No violations") {
		t.Error("page says no violations")
	}

	// Transfers out: one row per group, with the columns an auditor reads.
	tables := rtFind(doc, "table")
	if len(tables) < 5 {
		t.Fatalf("%d tables, want transfers, received, at rest, two rejection tables and violations", len(tables))
	}
	heads := rtText(rtFind(tables[0], "thead")[0])
	for _, col := range []string{"Destination", "Purpose", "Records", "Fields sent", "Legal basis", "Rule", "Policy version"} {
		if !strings.Contains(heads, col) {
			t.Errorf("transfers table lacks column %q: %s", col, heads)
		}
	}
	if rows := rtFind(rtFind(tables[0], "tbody")[0], "tr"); len(rows) != len(r.Transfers) {
		t.Errorf("transfers table has %d rows, report %d", len(rows), len(r.Transfers))
	}

	svg := rtSVG(t, page)
	for _, want := range []string{"Records sent", "Day (UTC)", "MY (Malaysia)", "ID (Indonesia)", "17 Mar"} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	// 45 days of traffic to two destinations: two bars a day.
	if n := strings.Count(svg, `<rect x="`) - 2; n != 90 {
		t.Errorf("chart has %d bars, want 90", n)
	}
}

// TestRenderHTMLNoViolations checks the summary's all-clear and the empty
// sections of a quiet period.
func TestRenderHTMLNoViolations(t *testing.T) {
	r := Residency(ReportInput{Node: "MY", GeneratedAt: rtBase, PolicyAtStart: 1})
	page, doc := rtRender(t, r)
	text := rtText(doc)
	for _, want := range []string{
		"Data residency report — MY", "No violations", "From the start of the log to the time of this report",
		"No data left MY (Malaysia) in this period", "nothing to chart", "Nothing was received",
		"Nothing was rejected", "not recorded", "No after-sale issues in this period",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("page does not say %q", want)
		}
	}
	if strings.Contains(page, "<svg") {
		t.Error("an empty chart was drawn")
	}
	if strings.Contains(page, `class="verdict bad"`) {
		t.Error("a quiet period is shown with violations")
	}
}

// TestRenderHTMLChartDays checks the chart over one day, a few days with
// gaps, and more days than it shows.
func TestRenderHTMLChartDays(t *testing.T) {
	day := func(n int) string { return rtBase.AddDate(0, 0, n).Format(time.DateOnly) }
	for _, tc := range []struct {
		name      string
		daily     []DayCount
		bars      int
		labels    []string
		caption   string
		notLabels []string
	}{
		{name: "one day", daily: []DayCount{{day(0), "MY", 7}}, bars: 1, labels: []string{"1 Mar"}},
		{
			name:  "gaps are shown as empty days",
			daily: []DayCount{{day(0), "ID", 3}, {day(0), "MY", 4}, {day(3), "MY", 1}},
			bars:  3, labels: []string{"1 Mar", "2 Mar", "3 Mar", "4 Mar"},
		},
		{
			name: "only the last days of a long period",
			daily: func() []DayCount {
				var d []DayCount
				for i := range 100 {
					d = append(d, DayCount{day(i), "MY", i + 1})
				}
				return d
			}(),
			bars: ChartDays, labels: []string{"8 Jun"}, notLabels: []string{"1 Mar"},
			caption: fmt.Sprintf("the last %d of the 100 days", ChartDays),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Residency(ReportInput{Node: "TH", GeneratedAt: rtBase})
			r.Daily = tc.daily
			page, doc := rtRender(t, r)
			svg := rtSVG(t, page)
			legend := 0
			for _, d := range tc.daily {
				if !strings.Contains(svg, ">"+countryLabel(d.Destination)+"<") {
					t.Errorf("legend lacks %s", d.Destination)
				}
			}
			for _, c := range []string{"MY", "ID"} {
				if strings.Contains(svg, ">"+countryLabel(c)+"</text>") {
					legend++
				}
			}
			if n := strings.Count(svg, `<rect x="`) - legend; n != tc.bars {
				t.Errorf("%d bars, want %d", n, tc.bars)
			}
			for _, l := range tc.labels {
				if !strings.Contains(svg, ">"+l+"</text>") {
					t.Errorf("no day label %q", l)
				}
			}
			for _, l := range tc.notLabels {
				if strings.Contains(svg, ">"+l+"</text>") {
					t.Errorf("day label %q of a day not shown", l)
				}
			}
			if caption := rtText(rtFind(doc, "figcaption")[0]); !strings.Contains(caption, tc.caption) {
				t.Errorf("caption %q lacks %q", caption, tc.caption)
			}
		})
	}
}

func TestReportNiceScale(t *testing.T) {
	for _, tc := range []struct{ top, step, max int }{
		{0, 1, 1}, {1, 1, 1}, {3, 1, 3}, {7, 2, 8}, {10, 2, 10}, {11, 5, 15}, {93, 20, 100}, {130, 50, 150}, {5000, 1000, 5000},
	} {
		step, max := niceScale(tc.top)
		if step != tc.step || max != tc.max {
			t.Errorf("niceScale(%d) = %d, %d; want %d, %d", tc.top, step, max, tc.step, tc.max)
		}
	}
}

func TestReportPeriodLabel(t *testing.T) {
	mar1 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		from, to time.Time
		want     string
	}{
		{time.Time{}, time.Time{}, "From the start of the log to the time of this report"},
		{mar1, mar1.AddDate(0, 1, 0), "From 1 March 2026 through 31 March 2026 (UTC)"},
		{mar1, mar1.AddDate(0, 0, 1), "On 1 March 2026 (UTC)"},
		{mar1.Add(90 * time.Minute), mar1.Add(30 * time.Hour), "From 1 March 2026 01:30 UTC until 2 March 2026 06:00 UTC"},
		{time.Time{}, mar1, "From the start of the log through 28 February 2026 (UTC)"},
		{mar1.In(time.FixedZone("ICT", 7*3600)), time.Time{}, "From 1 March 2026 to the time of this report"},
	} {
		if got := periodLabel(tc.from, tc.to); got != tc.want {
			t.Errorf("periodLabel(%v, %v) = %q, want %q", tc.from, tc.to, got, tc.want)
		}
	}
}

func TestReportDayRange(t *testing.T) {
	d := func(y int, m time.Month, day int) time.Time { return time.Date(y, m, day, 12, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		first, last time.Time
		want        string
	}{
		{d(2026, 2, 2), d(2026, 2, 2), "2 Feb 2026|"},
		{d(2026, 2, 1), d(2026, 2, 20), "1–20 Feb 2026|"},
		{d(2026, 2, 21), d(2026, 3, 17), "21 Feb|17 Mar 2026"},
		{d(2025, 12, 28), d(2026, 1, 3), "28 Dec 2025|3 Jan 2026"},
	} {
		a, b := dayRange(tc.first, tc.last)
		if got := a + "|" + b; got != tc.want {
			t.Errorf("dayRange = %q, want %q", got, tc.want)
		}
	}
}
