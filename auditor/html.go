package auditor

import (
	"bytes"
	"cmp"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/policy"
	"github.com/imtgt/imtgt-node/refdata"
)

// ChartDays is the most days the daily chart shows: the last ones of the
// period. Bars for a longer period would be too thin to read or print.
const ChartDays = 60

// RenderHTML writes the report as one self-contained HTML page for an
// auditor who is not an engineer: plain-language labels beside the codes
// the log holds, inline CSS and an inline SVG chart (no scripts, fonts or
// images fetched, so the page can be archived, mailed and printed as it
// is). Every value from the log is escaped: rejection reasons and peer
// IDs come from other parties and may hold markup. The page is rendered
// whole before anything is written, so an error leaves w untouched.
func RenderHTML(w io.Writer, r *Report) error {
	var buf bytes.Buffer
	if err := reportTemplate.Execute(&buf, newReportView(r)); err != nil {
		return fmt.Errorf("render residency report: %w", err)
	}
	_, err := buf.WriteTo(w)
	return err
}

// reportView is the report as the page shows it.
type reportView struct {
	R             *Report
	Country       string // "TH (Thailand)"
	Period        string
	Generated     string
	RecordsOut    int
	MessagesOut   int
	Destinations  []string
	RecordsIn     int
	Transfers     []transferRow
	Received      []transferRow
	ByReason      []countRow
	ByPeer        []countRow
	Violations    []violationRow
	Issues        []issueRow
	SummaryLimit  int // violations listed in the summary box
	MoreViolation int // violations beyond SummaryLimit
	Chart         *chartView
}

type transferRow struct {
	Country                    place
	Purpose, PurposeCode, Kind string
	Records, Messages          int
	Fields                     []string
	Basis, BasisCode           string
	Rules                      []string
	Version                    uint64
	FirstDay, LastDay          string // see dayRange
	Governed                   bool   // carries fields a transfer rule governs
}

// place is a member country, or a peer that is not one (an outsider's
// peer ID), as a table cell shows it.
type place struct {
	Name, Code string // Code "" when Name is not a member country
}

type countRow struct {
	Label string
	Place place
	Count int
}

// issueRow is one IssueSummary as the after-sale table shows it.
type issueRow struct {
	Country                    place
	Side                       string // in words
	S                          IssueSummary
	Categories, Statuses, Outs []countRow
}

// issueSides are the words for IssueSummary.Side.
var issueSides = map[string]string{
	"buyer":  "Buyers here complained about sellers there",
	"seller": "Buyers there complained about sellers here",
}

type violationRow struct {
	Seq        uint64
	Time, Kind string
	Peer       place
	Fields     []fieldChip
	Version    uint64
	Reason     string
}

// fieldChip is a field name, marked when it is the one a violation's
// reason names.
type fieldChip struct {
	Name     string
	Disallow bool
}

// summaryViolations is how many violations the summary box lists; the
// table further down lists them all.
const summaryViolations = 10

func newReportView(r *Report) *reportView {
	v := &reportView{
		R:            r,
		Country:      countryLabel(r.Node),
		Period:       periodLabel(r.From, r.To),
		Generated:    r.GeneratedAt.UTC().Format("2 January 2006, 15:04 UTC"),
		SummaryLimit: summaryViolations,
		Chart:        newChart(r.Daily),
	}
	dests := map[string]bool{}
	for _, t := range r.Transfers {
		if t.Purpose != ReceiptPurpose && t.Purpose != audit.PurposeRelay {
			v.RecordsOut += t.Count
			v.MessagesOut += t.Messages
			dests[t.Destination] = true
		}
		v.Transfers = append(v.Transfers, newTransferRow(t))
	}
	for d := range dests {
		v.Destinations = append(v.Destinations, countryLabel(d))
	}
	slices.Sort(v.Destinations)
	for _, t := range r.Received {
		v.RecordsIn += t.Count
		v.Received = append(v.Received, newTransferRow(t))
	}
	for _, is := range r.Issues {
		v.Issues = append(v.Issues, issueRow{
			Country: placeOf(is.Country), Side: cmp.Or(issueSides[is.Side], is.Side), S: is,
			Categories: countRows(is.ByCategory), Statuses: countRows(is.ByStatus), Outs: countRows(is.ByOutcome),
		})
	}
	v.ByReason = countRows(r.Rejected.ByReason)
	v.ByPeer = countRows(r.Rejected.ByPeer)
	for _, x := range r.Violations {
		row := violationRow{
			Seq: x.Seq, Time: x.Time.UTC().Format("2 Jan 2006 15:04:05"), Kind: x.Kind,
			Peer: placeOf(x.Peer), Version: x.PolicyVersion, Reason: x.Reason,
		}
		for _, f := range x.Fields {
			// CheckCrossing names the field no rule allows as "field <name> to".
			row.Fields = append(row.Fields, fieldChip{Name: f, Disallow: strings.Contains(x.Reason, "field "+f+" ")})
		}
		v.Violations = append(v.Violations, row)
	}
	v.MoreViolation = max(0, len(v.Violations)-summaryViolations)
	return v
}

func newTransferRow(t Transfer) transferRow {
	row := transferRow{
		Country: placeOf(t.Destination), Purpose: purposeLabel(t.Purpose), PurposeCode: t.Purpose,
		Kind: t.Kind, Records: t.Count, Messages: t.Messages, Fields: t.Fields,
		Basis: basisLabel(t.LegalBasis), BasisCode: t.LegalBasis, Rules: t.Rules,
		Version: t.PolicyVersion, Governed: len(t.Fields) > 0,
	}
	row.FirstDay, row.LastDay = dayRange(t.First.UTC(), t.Last.UTC())
	return row
}

// dayRange writes the days from first to last as briefly as is clear:
// "2 Feb 2026" or "1–20 Feb 2026" (last ""), or "21 Feb" and
// "17 Mar 2026", two parts a narrow column may put on two lines.
func dayRange(first, last time.Time) (string, string) {
	const full = "2 Jan 2006"
	switch {
	case first.Format(full) == last.Format(full):
		return first.Format(full), ""
	case first.Year() == last.Year() && first.Month() == last.Month():
		return first.Format("2") + "–" + last.Format(full), ""
	case first.Year() == last.Year():
		return first.Format("2 Jan"), last.Format(full)
	}
	return first.Format(full), last.Format(full)
}

// Label is the place on one line: "MY (Malaysia)".
func (p place) Label() string {
	if p.Code == "" {
		return p.Name
	}
	return p.Code + " (" + p.Name + ")"
}

func placeOf(code string) place {
	if c, ok := refdata.CountryByCode(code); ok {
		return place{Name: c.Name, Code: c.Code}
	}
	if code == "" {
		return place{Name: "—"}
	}
	return place{Name: code}
}

// countRows orders counts largest first, so the commonest reason leads.
func countRows(m map[string]int) []countRow {
	rows := make([]countRow, 0, len(m))
	for k, n := range m {
		rows = append(rows, countRow{Label: k, Place: placeOf(k), Count: n})
	}
	slices.SortFunc(rows, func(a, b countRow) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Label, b.Label))
	})
	return rows
}

// countryLabel names a member country beside its code; anything else (a
// peer ID, an unknown code) is shown as it is.
func countryLabel(code string) string {
	if c, ok := refdata.CountryByCode(code); ok {
		return c.Code + " (" + c.Name + ")"
	}
	if code == "" {
		return "—"
	}
	return code
}

var purposeLabels = map[string]string{
	string(policy.PurposeCatalog):      "Product catalog",
	string(policy.PurposeOrderHandoff): "Order handoff",
	string(policy.PurposeOrderStatus):  "Order status update",
	ReceiptPurpose:                     "Delivery receipt",
	audit.PurposeRelay:                 "Relay of another member's catalog",
}

func purposeLabel(p string) string { return labelOr(purposeLabels, p, "(none recorded)") }

var basisLabels = map[string]string{
	policy.BasisNotPersonal:       "No personal data",
	policy.BasisAdequacy:          "Adequate protection at destination",
	policy.BasisContractNecessity: "Necessary for a contract with the person",
	policy.BasisConsent:           "The person's consent",
	policy.BasisSafeguards:        "Safeguards (clauses, BCRs, certification)",
}

func basisLabel(b string) string { return labelOr(basisLabels, b, "—") }

// labelOr is v's label in labels; else none for "", else v itself.
func labelOr(labels map[string]string, v, none string) string {
	if l, ok := labels[v]; ok {
		return l
	}
	if v == "" {
		return none
	}
	return v
}

// periodLabel says the period in words. To is excluded; a To at midnight
// is shown as the day before, "through" it, which is how people say a
// period ("1 March through 31 March").
func periodLabel(from, to time.Time) string {
	const day = "2 January 2006"
	const minute = "2 January 2006 15:04 UTC"
	midnight := func(t time.Time) bool {
		return t.Equal(t.Truncate(24 * time.Hour))
	}
	f := "the start of the log"
	if !from.IsZero() {
		f = from.UTC().Format(minute)
		if midnight(from.UTC()) {
			f = from.UTC().Format(day)
		}
	}
	switch {
	case to.IsZero():
		return "From " + f + " to the time of this report"
	case midnight(to.UTC()):
		through := to.UTC().AddDate(0, 0, -1).Format(day)
		if through == f {
			return "On " + f + " (UTC)"
		}
		return "From " + f + " through " + through + " (UTC)"
	default:
		return "From " + f + " until " + to.UTC().Format(minute)
	}
}

// formatCount writes n with thousands separators.
func formatCount(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// chartView is the daily chart's geometry, computed here so that the
// template only places shapes.
type chartView struct {
	Width, Height int
	Left, Top     int // plot origin (top left)
	PlotW, PlotH  int
	Bottom        int // y of the x axis
	Bars          []chartBar
	YTicks        []chartTick
	XLabels       []chartTick
	Legend        []chartLegend
	Days, Shown   int // days in the data, days shown
	First, Last   string
	Summary       string // for screen readers and the figure caption
}

type chartBar struct {
	X, Y, W, H string
	Color      string
	Title      string
}

type chartTick struct {
	Pos   string
	Label string
}

type chartLegend struct {
	X     int
	Color string
	Label string
}

// destinationColors keep a member's colour the same in every report.
var destinationColors = map[string]string{"TH": "#2b5c9e", "MY": "#d9822b", "ID": "#2f8f5b"}

var otherColors = []string{"#7b4fa0", "#b8423a", "#3a8fa3", "#8a7a2b", "#5a5a5a"}

func newChart(daily []DayCount) *chartView {
	if len(daily) == 0 {
		return nil
	}
	first, err1 := time.Parse(time.DateOnly, daily[0].Day)
	last, err2 := time.Parse(time.DateOnly, daily[len(daily)-1].Day)
	if err1 != nil || err2 != nil || last.Before(first) {
		return nil
	}
	days := int(last.Sub(first)/(24*time.Hour)) + 1
	shown := min(days, ChartDays)
	start := last.AddDate(0, 0, -(shown - 1))

	var dests []string
	perDay := make([]map[string]int, shown)
	totals := make([]int, shown)
	for _, d := range daily {
		t, err := time.Parse(time.DateOnly, d.Day)
		if err != nil || t.Before(start) {
			continue
		}
		i := int(t.Sub(start) / (24 * time.Hour))
		if perDay[i] == nil {
			perDay[i] = map[string]int{}
		}
		perDay[i][d.Destination] += d.Count
		totals[i] += d.Count
		if !slices.Contains(dests, d.Destination) {
			dests = append(dests, d.Destination)
		}
	}
	slices.Sort(dests)
	colors := map[string]string{}
	next := 0
	for _, d := range dests {
		if c, ok := destinationColors[d]; ok {
			colors[d] = c
		} else {
			colors[d] = otherColors[next%len(otherColors)]
			next++
		}
	}

	c := &chartView{Width: 1000, Height: 340, Left: 72, Top: 44, PlotW: 900, PlotH: 230, Days: days, Shown: shown,
		First: start.Format("2 Jan 2006"), Last: last.Format("2 Jan 2006")}
	c.Bottom = c.Top + c.PlotH
	top := slices.Max(totals)
	step, yMax := niceScale(top)
	for v := 0; v <= yMax; v += step {
		y := float64(c.Bottom) - float64(v)/float64(yMax)*float64(c.PlotH)
		c.YTicks = append(c.YTicks, chartTick{Pos: px(y), Label: formatCount(v)})
	}
	slot := float64(c.PlotW) / float64(shown)
	barW := math.Min(slot*0.72, 56)
	labelEvery := max(1, int(math.Ceil(float64(shown)/15)))
	for i := range shown {
		day := start.AddDate(0, 0, i)
		x := float64(c.Left) + slot*float64(i) + (slot-barW)/2
		y := float64(c.Bottom)
		for _, d := range dests {
			n := perDay[i][d]
			if n == 0 {
				continue
			}
			h := float64(n) / float64(yMax) * float64(c.PlotH)
			y -= h
			c.Bars = append(c.Bars, chartBar{
				X: px(x), Y: px(y), W: px(barW), H: px(h), Color: colors[d],
				Title: fmt.Sprintf("%s, %s: %s records", day.Format("2 Jan 2006"), countryLabel(d), formatCount(n)),
			})
		}
		// Label every labelEvery-th day counting back from the last, so
		// the most recent day is always labelled.
		if (shown-1-i)%labelEvery == 0 {
			c.XLabels = append(c.XLabels, chartTick{Pos: px(float64(c.Left) + slot*(float64(i)+0.5)), Label: day.Format("2 Jan")})
		}
	}
	x := c.Left
	for _, d := range dests {
		label := countryLabel(d)
		c.Legend = append(c.Legend, chartLegend{X: x, Color: colors[d], Label: label})
		x += 28 + 8*len(label)
	}
	total := 0
	for _, n := range totals {
		total += n
	}
	if c.First == c.Last {
		c.Summary = fmt.Sprintf("Records sent abroad on %s: %s.", c.Last, formatCount(total))
	} else {
		c.Summary = fmt.Sprintf("Records sent abroad per day from %s to %s: %s in all.", c.First, c.Last, formatCount(total))
	}
	return c
}

// niceScale picks a tick step of 1, 2 or 5 times a power of ten giving
// about five ticks, and the axis maximum, a multiple of it at or above top.
func niceScale(top int) (step, yMax int) {
	if top <= 0 {
		return 1, 1
	}
	raw := float64(top) / 5
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	step = 1
	for _, m := range []float64{1, 2, 5, 10} {
		if m*pow >= raw {
			step = max(1, int(m*pow))
			break
		}
	}
	yMax = (top + step - 1) / step * step
	return step, yMax
}

func px(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"num":     formatCount,
	"country": countryLabel,
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	},
	"seqRange": func(a, b uint64) string {
		if a == b {
			return "#" + strconv.FormatUint(a, 10)
		}
		return "#" + strconv.FormatUint(a, 10) + " – #" + strconv.FormatUint(b, 10)
	},
	"add":  func(a, b int) int { return a + b },
	"div2": func(a int) int { return a / 2 },
}).Parse(reportHTML))

const reportHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Data residency report — {{.R.Node}}</title>
<style>
:root { --ink:#1f2933; --muted:#5f6b7a; --line:#d5dbe3; --soft:#f3f5f8; --ok:#1e7b45; --okbg:#e7f5ec; --bad:#b42318; --badbg:#fdecea; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; font: 15px/1.5 "Segoe UI", "Helvetica Neue", Arial, "Noto Sans", "DejaVu Sans", sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 32px 28px 48px; }
h1 { font-size: 28px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--ink); }
h3 { font-size: 16px; margin: 18px 0 6px; }
p { margin: 6px 0; }
.lead { color: var(--muted); margin: 0 0 2px; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 14px 0 0; }
.meta dt { color: var(--muted); }
.meta dd { margin: 0; }
.id { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 13px; word-break: break-all; }
.summary { margin: 24px 0 0; border: 1px solid var(--line); border-radius: 8px; padding: 18px 20px; background: var(--soft); }
.stats { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; }
.stat { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; }
.stat b { display: block; font-size: 26px; line-height: 1.2; }
.stat span { color: var(--muted); font-size: 13px; }
.verdict { margin: 16px 0 0; padding: 12px 16px; border-radius: 6px; font-weight: 600; }
.verdict.ok { background: var(--okbg); color: var(--ok); border: 1px solid #a6d8b8; }
.verdict.bad { background: var(--badbg); color: var(--bad); border: 1px solid #f1b0a8; }
.verdict ul { margin: 8px 0 0; padding-left: 20px; font-weight: 400; color: var(--ink); }
.stat.bad b { color: var(--bad); }
.stat.ok b { color: var(--ok); }
table { width: 100%; border-collapse: collapse; margin: 8px 0 4px; font-size: 13.5px; }
th, td { text-align: left; vertical-align: top; padding: 6px 7px; border-bottom: 1px solid var(--line); }
th { background: var(--soft); font-weight: 600; border-bottom: 2px solid var(--line); }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.n { white-space: nowrap; }
td.wide { min-width: 15em; }
tr { break-inside: avoid; }
.rule { display: block; white-space: nowrap; font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 12px; }
.nw { white-space: nowrap; }
.field.disallowed { background: var(--badbg); border-color: var(--bad); color: var(--bad); font-weight: 700; }
.code { display: block; color: var(--muted); font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 12px; }
.fields { display: flex; flex-wrap: wrap; gap: 3px; }
.field { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 12px; background: #eef1f5; border: 1px solid #dde2e9; border-radius: 4px; padding: 0 5px; white-space: nowrap; }
.none { color: var(--muted); font-style: italic; }
.note { color: var(--muted); font-size: 13px; }
.two { display: grid; grid-template-columns: 1fr 1fr; gap: 24px; }
table.kv { width: auto; min-width: 60%; }
table.kv th { background: none; border-bottom: 1px solid var(--line); font-weight: 400; color: var(--muted); width: 18em; }
.yes { color: var(--ok); font-weight: 600; }
.no { color: var(--bad); font-weight: 600; }
figure { margin: 8px 0 0; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 13px; }
tr.violation td { background: #fff8f7; }
footer { margin-top: 40px; padding-top: 10px; border-top: 1px solid var(--line); color: var(--muted); font-size: 12px; }
@media screen and (max-width: 760px) { .two { grid-template-columns: 1fr; } }
@media print {
  @page { margin: 14mm 12mm; }
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2 { break-after: avoid; }
  .summary, figure, table.kv { break-inside: avoid; }
  thead { display: table-header-group; }
}
</style>
</head>
<body>
<main>
<header>
<h1>Data residency report — {{.R.Node}}</h1>
<p class="lead">Personal and business data crossing the border of {{.Country}}, computed from the national node's audit log.</p>
<dl class="meta">
<dt>Period</dt><dd>{{.Period}}</dd>
<dt>Generated</dt><dd>{{.Generated}}</dd>
<dt>Node</dt><dd>{{.Country}} — peer ID {{if .R.PeerID}}<span class="id">{{.R.PeerID}}</span>{{else}}not recorded{{end}}</dd>
<dt>Policy in force</dt><dd>{{if .R.PolicyVersion}}{{.R.Node}} policy version {{.R.PolicyVersion}} at the end of the period{{else}}<span class="no">none</span>{{end}}</dd>
<dt>Log entries</dt><dd>{{if .R.Entries}}{{num .R.Entries}} {{plural .R.Entries "entry" "entries"}}, {{seqRange .R.FirstSeq .R.LastSeq}}{{else}}none in this period{{end}}</dd>
</dl>
</header>

<section class="summary" aria-label="Summary">
<div class="stats">
<div class="stat"><b>{{num .RecordsOut}}</b><span>{{plural .RecordsOut "record" "records"}} sent abroad in {{num .MessagesOut}} {{plural .MessagesOut "message" "messages"}}{{with .Destinations}}, to {{range $i, $d := .}}{{if $i}}, {{end}}{{$d}}{{end}}{{end}}</span></div>
<div class="stat"><b>{{num .RecordsIn}}</b><span>{{plural .RecordsIn "record" "records"}} received from other members</span></div>
<div class="stat"><b>{{num .R.Rejected.Total}}</b><span>{{plural .R.Rejected.Total "message or record" "messages or records"}} rejected</span></div>
<div class="stat {{if .Violations}}bad{{else}}ok{{end}}"><b>{{len .Violations}}</b><span>policy {{plural (len .Violations) "violation" "violations"}}</span></div>
</div>
{{if .Violations}}
<div class="verdict bad" role="alert">{{len .Violations}} {{plural (len .Violations) "transfer was" "transfers were"}} not allowed by the policy in force.
<ul>
{{range $i, $v := .Violations}}{{if lt $i $.SummaryLimit}}<li>audit.Entry #{{$v.Seq}}, {{$v.Time}} UTC, to {{$v.Peer.Label}}: {{$v.Reason}}</li>
{{end}}{{end}}{{if .MoreViolation}}<li>… and {{.MoreViolation}} more: see <a href="#violations">Violations</a>.</li>{{end}}
</ul>
</div>
{{else}}
<div class="verdict ok">No violations: every transfer out of {{.R.Node}} in this period was allowed by the policy in force when it was made.</div>
{{end}}
</section>

<section>
<h2 id="transfers">Data sent abroad</h2>
<p class="note">Each row is a group of messages to one country for one purpose, on one legal basis, under the same policy rules. Only the field names below left the country; nothing else of the records did.</p>
{{if .Transfers}}
<table>
<thead><tr><th>Destination</th><th>Purpose</th><th class="n">Records</th><th>Fields sent</th><th>Legal basis</th><th>Rule</th><th class="n">Policy version</th><th>Dates</th></tr></thead>
<tbody>
{{range .Transfers}}<tr>
<td>{{template "place" .Country}}</td>
<td>{{.Purpose}}<span class="code">{{.Kind}}</span></td>
<td class="n">{{num .Records}}<span class="code">{{num .Messages}} {{plural .Messages "message" "messages"}}</span></td>
<td class="wide">{{if .Fields}}<div class="fields">{{range .Fields}}<span class="field">{{.}}</span> {{end}}</div>{{else}}<span class="none">no data fields</span>{{end}}</td>
<td>{{.Basis}}{{if .BasisCode}}<span class="code">{{.BasisCode}}</span>{{end}}</td>
<td>{{range .Rules}}<span class="rule">{{.}}</span>{{else}}<span class="none">—</span>{{end}}</td>
<td class="n">{{if .Version}}{{.Version}}{{else if .Governed}}<span class="no">none</span>{{else}}<span class="none">—</span>{{end}}</td>
<td>{{template "days" .}}</td>
</tr>
{{end}}</tbody>
</table>
{{else}}
<p class="none">No data left {{.Country}} in this period.</p>
{{end}}

<h3>Records sent abroad per day</h3>
{{with .Chart}}
<figure>
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-label="{{.Summary}}">
<title>{{.Summary}}</title>
{{range .Legend}}<rect x="{{.X}}" y="8" width="14" height="14" rx="2" fill="{{.Color}}"/><text x="{{add .X 20}}" y="20" font-size="14" fill="#1f2933">{{.Label}}</text>
{{end}}
{{range .YTicks}}<line x1="{{$.Chart.Left}}" x2="{{add $.Chart.Left $.Chart.PlotW}}" y1="{{.Pos}}" y2="{{.Pos}}" stroke="#e3e7ed" stroke-width="1"/><text x="{{add $.Chart.Left -8}}" y="{{.Pos}}" dy="4" font-size="12" text-anchor="end" fill="#5f6b7a">{{.Label}}</text>
{{end}}
{{range .Bars}}<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" fill="{{.Color}}"><title>{{.Title}}</title></rect>
{{end}}
<line x1="{{.Left}}" x2="{{add .Left .PlotW}}" y1="{{.Bottom}}" y2="{{.Bottom}}" stroke="#1f2933" stroke-width="1.2"/>
<line x1="{{.Left}}" x2="{{.Left}}" y1="{{.Top}}" y2="{{.Bottom}}" stroke="#1f2933" stroke-width="1.2"/>
{{range .XLabels}}<line x1="{{.Pos}}" x2="{{.Pos}}" y1="{{$.Chart.Bottom}}" y2="{{add $.Chart.Bottom 5}}" stroke="#1f2933"/><text x="{{.Pos}}" y="{{add $.Chart.Bottom 20}}" font-size="12" text-anchor="middle" fill="#1f2933">{{.Label}}</text>
{{end}}
<text x="{{add .Left (div2 .PlotW)}}" y="{{add .Bottom 48}}" font-size="13" text-anchor="middle" fill="#5f6b7a">Day (UTC)</text>
<text transform="translate(18 {{add .Top (div2 .PlotH)}}) rotate(-90)" font-size="13" text-anchor="middle" fill="#5f6b7a">Records sent</text>
</svg>
<figcaption>{{.Summary}}{{if gt .Days .Shown}} The chart shows the last {{.Shown}} of the {{.Days}} days with data; the table above covers the whole period.{{end}}</figcaption>
</figure>
{{else}}
<p class="none">No data left the country in this period, so there is nothing to chart.</p>
{{end}}
</section>

<section>
<h2 id="received">Data received</h2>
<p class="note">Records other members sent to this node, as the sending member's policy allowed them. Each member checks its own outgoing transfers.</p>
{{if .Received}}
<table>
<thead><tr><th>Source</th><th>Purpose</th><th class="n">Records</th><th>Fields received</th><th>Legal basis</th><th>Rule</th><th class="n">Policy version</th><th>Dates</th></tr></thead>
<tbody>
{{range .Received}}<tr>
<td>{{template "place" .Country}}</td>
<td>{{.Purpose}}<span class="code">{{.Kind}}</span></td>
<td class="n">{{num .Records}}<span class="code">{{num .Messages}} {{plural .Messages "message" "messages"}}</span></td>
<td class="wide">{{if .Fields}}<div class="fields">{{range .Fields}}<span class="field">{{.}}</span> {{end}}</div>{{else}}<span class="none">no data fields</span>{{end}}</td>
<td>{{.Basis}}{{if .BasisCode}}<span class="code">{{.BasisCode}}</span>{{end}}</td>
<td>{{range .Rules}}<span class="rule">{{.}}</span>{{else}}<span class="none">—</span>{{end}}</td>
<td class="n">{{if .Version}}{{.Version}}{{else}}<span class="none">—</span>{{end}}</td>
<td>{{template "days" .}}</td>
</tr>
{{end}}</tbody>
</table>
{{else}}
<p class="none">Nothing was received from other members in this period.</p>
{{end}}
</section>

<section>
<h2 id="issues">After-sale issues</h2>
<p class="note">Complaints about cross-border orders (goods not received, damaged, wrong), counted from this node's audit log: by the other country, what they were about, where they stood at the end of the period, the consumer body's decisions, and whether the deadlines of the buyer country's consumer rules were met. The buyer's side holds every deadline; the seller's side counts its sellers' answers.</p>
{{if .Issues}}
<table>
<thead><tr><th>Other country</th><th>Side</th><th class="n">Issues</th><th>By category</th><th>Status at period end</th><th>Decisions</th><th class="n">Answered in time</th><th class="n">Resolved in time</th></tr></thead>
<tbody>
{{range .Issues}}<tr>
<td>{{template "place" .Country}}</td>
<td>{{.Side}}</td>
<td class="n">{{num .S.Issues}}<span class="code">{{num .S.Opened}} opened</span></td>
<td>{{range .Categories}}<span class="rule">{{.Label}} {{num .Count}}</span> {{end}}</td>
<td>{{range .Statuses}}<span class="rule">{{.Label}} {{num .Count}}</span> {{end}}</td>
<td>{{range .Outs}}<span class="rule">{{.Label}} {{num .Count}}</span> {{else}}<span class="none">—</span>{{end}}</td>
<td class="n">{{num .S.Respond.Met}} met<span class="code">{{num .S.Respond.Missed}} missed</span></td>
<td class="n">{{num .S.Resolve.Met}} met<span class="code">{{num .S.Resolve.Missed}} missed</span></td>
</tr>
{{end}}</tbody>
</table>
{{else}}
<p class="none">No after-sale issues in this period.</p>
{{end}}
</section>

<section>
<h2 id="at-rest">Data kept in the country</h2>
<p class="note">What this node stores, at the time of the report.</p>
<table class="kv">
<tbody>
<tr><th>Stored in</th><td>{{if .R.AtRest.Country}}{{country .R.AtRest.Country}}{{else}}<span class="none">not stated</span>{{end}}</td></tr>
<tr><th>Store</th><td>{{if .R.AtRest.Store}}<span class="id">{{.R.AtRest.Store}}</span>{{else}}<span class="none">not stated</span>{{end}}</td></tr>
<tr><th>Sellers registered here</th><td>{{num .R.AtRest.Sellers}}</td></tr>
<tr><th>This node's own listings</th><td>{{num .R.AtRest.Listings}}</td></tr>
<tr><th>Other members' listings held</th><td>{{num .R.AtRest.Replicas}} <span class="note">(public fields only)</span></td></tr>
<tr><th>Orders</th><td>{{num .R.AtRest.Orders}}</td></tr>
<tr><th>Personal fields encrypted</th><td>{{if .R.AtRest.PersonalEncrypted}}<span class="yes">Yes</span> — sealed with AES-256-GCM{{else}}<span class="no">No</span>{{end}}</td></tr>
</tbody>
</table>
</section>

<section>
<h2 id="rejected">Rejected messages</h2>
<p class="note">Messages, peers and records the node refused: {{num .R.Rejected.Total}} in this period.</p>
{{if .R.Rejected.Total}}
<div class="two">
<div>
<h3>By reason</h3>
<table><thead><tr><th>Reason</th><th class="n">Count</th></tr></thead><tbody>
{{range .ByReason}}<tr><td>{{.Label}}</td><td class="n">{{num .Count}}</td></tr>
{{end}}</tbody></table>
</div>
<div>
<h3>By sender</h3>
<table><thead><tr><th>Member or peer</th><th class="n">Count</th></tr></thead><tbody>
{{range .ByPeer}}<tr><td>{{if .Place.Code}}{{template "place" .Place}}{{else}}<span class="id">{{.Label}}</span>{{end}}</td><td class="n">{{num .Count}}</td></tr>
{{end}}</tbody></table>
</div>
</div>
{{else}}
<p class="none">Nothing was rejected in this period.</p>
{{end}}
</section>

<section>
<h2 id="violations">Violations</h2>
<p class="note">Transfers out of the country that the policy in force at the time did not allow, checked field by field against that policy's transfer rules.</p>
{{if .Violations}}
<table>
<thead><tr><th class="n">audit.Entry</th><th>Time (UTC)</th><th>Destination</th><th>Fields sent</th><th class="n">Policy named</th><th>Why it is a violation</th></tr></thead>
<tbody>
{{range .Violations}}<tr class="violation">
<td class="n">#{{.Seq}}</td>
<td>{{.Time}}<span class="code">{{.Kind}}</span></td>
<td>{{template "place" .Peer}}</td>
<td><div class="fields">{{range .Fields}}<span class="field{{if .Disallow}} disallowed{{end}}">{{.Name}}</span> {{end}}</div></td>
<td class="n">{{if .Version}}{{.Version}}{{else}}<span class="no">none</span>{{end}}</td>
<td>{{.Reason}}</td>
</tr>
{{end}}</tbody>
</table>
{{else}}
<p class="yes">None. Every transfer out of the country was allowed by the policy in force.</p>
{{end}}
</section>

<footer>
The audit log is hash-chained: each entry holds the hash of the one before it, so an entry cannot be changed or removed without breaking every later one. The log records the names of the fields that crossed, never their values. {{if .R.Entries}}This report covers entries {{seqRange .R.FirstSeq .R.LastSeq}}.{{end}}
</footer>
</main>
</body>
</html>
{{define "place"}}{{.Name}}{{with .Code}}<span class="code">{{.}}</span>{{end}}{{end}}
{{define "days"}}<span class="nw">{{.FirstDay}}{{if .LastDay}} –{{end}}</span>{{with .LastDay}} <span class="nw">{{.}}</span>{{end}}{{end}}
`
