package auditor

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/imtgt/imtgt-node/audit"
)

// rtStep is an issue.step entry as orders writes it.
func rtStep(at time.Time, peer, issue, reason string) audit.Entry {
	return audit.Entry{Time: at, Kind: audit.IssueStep, Peer: peer, Purpose: "issue", Records: []string{issue, "ord_1"}, Count: 1, Actor: "marketplace mkt_1", Reason: reason}
}

func TestResidencyIssues(t *testing.T) {
	entries := rtChain(t,
		// An issue about TH from before the period: its later steps count,
		// its opening does not.
		rtStep(rtDay(-3, 0), "TH", "iss_A", "event=open side=buyer category=damaged status=open"),
		rtStep(rtDay(0, 1), "TH", "iss_A", "event=respond side=buyer category=damaged status=accepted remedy=refund action=accept respond=met"),
		rtStep(rtDay(0, 2), "TH", "iss_A", "event=refund side=buyer category=damaged status=refunded remedy=refund"),
		rtStep(rtDay(0, 3), "TH", "iss_A", "event=respond side=buyer category=damaged status=resolved remedy=refund action=resolve resolve=met"),
		// Opened in the period, never answered, escalated and decided.
		rtStep(rtDay(1, 0), "TH", "iss_B", "event=open side=buyer category=not_received status=open"),
		rtStep(rtDay(3, 0), "TH", "iss_B", "event=escalate side=buyer category=not_received status=escalated respond=missed resolve=missed"),
		rtStep(rtDay(4, 0), "TH", "iss_B", "event=decide side=buyer category=not_received status=decided outcome=upheld"),
		// An issue with ID from Indonesia, and one this node's seller answered.
		rtStep(rtDay(2, 0), "ID", "iss_C", "event=open side=buyer category=wrong_item status=open"),
		rtStep(rtDay(2, 5), "MY", "iss_D", "event=respond side=seller category=other status=rejected action=reject respond=met"),
		// After the period: not counted.
		rtStep(rtDay(9, 0), "TH", "iss_B", "event=refund side=buyer category=not_received status=refunded"),
	)
	r := Residency(ReportInput{Node: "MY", GeneratedAt: rtDay(10, 0), From: rtBase, To: rtDay(7, 0), Entries: entries})
	want := []IssueSummary{
		{Country: "ID", Side: "buyer", Issues: 1, Opened: 1, ByCategory: map[string]int{"wrong_item": 1}, ByStatus: map[string]int{"open": 1}, ByOutcome: map[string]int{}},
		{Country: "MY", Side: "seller", Issues: 1, ByCategory: map[string]int{"other": 1}, ByStatus: map[string]int{"rejected": 1}, ByOutcome: map[string]int{},
			Respond: DeadlineCount{Met: 1}},
		{Country: "TH", Side: "buyer", Issues: 2, Opened: 1, ByCategory: map[string]int{"damaged": 1, "not_received": 1},
			ByStatus: map[string]int{"resolved": 1, "decided": 1}, ByOutcome: map[string]int{"upheld": 1},
			Respond: DeadlineCount{Met: 1, Missed: 1}, Resolve: DeadlineCount{Met: 1, Missed: 1}},
	}
	if !reflect.DeepEqual(r.Issues, want) {
		got, _ := json.MarshalIndent(r.Issues, "", " ")
		t.Fatalf("issues:\n%s", got)
	}
}

func TestStepFields(t *testing.T) {
	for _, tc := range []struct {
		reason string
		want   map[string]string
	}{
		{"", map[string]string{}},
		{"event=open side=buyer", map[string]string{"event": "open", "side": "buyer"}},
		{"free text =x y= event=open", map[string]string{"y": "", "event": "open"}},
		{"status=a status=b", map[string]string{"status": "b"}},
	} {
		if got := stepFields(tc.reason); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("stepFields(%q) = %v, want %v", tc.reason, got, tc.want)
		}
	}
}

// An entry written before steps carried their side is counted under
// "unknown", not dropped.
func TestResidencyIssuesUnknownSide(t *testing.T) {
	r := Residency(ReportInput{Node: "MY", GeneratedAt: rtBase, Entries: rtChain(t, rtStep(rtBase, "TH", "iss_A", "event=open category=damaged status=open"))})
	if len(r.Issues) != 1 || r.Issues[0].Side != unknownSide || r.Issues[0].Opened != 1 {
		t.Fatalf("issues: %+v", r.Issues)
	}
	b, _ := json.Marshal(r.Issues)
	if !strings.Contains(string(b), `"respond":{"met":0,"missed":0}`) {
		t.Errorf("JSON %s", b)
	}
}

func TestRenderHTMLIssues(t *testing.T) {
	entries := rtChain(t,
		rtStep(rtDay(1, 0), "TH", "iss_B", "event=open side=buyer category=not_received status=open"),
		rtStep(rtDay(3, 0), "TH", "iss_B", "event=escalate side=buyer category=not_received status=escalated respond=missed resolve=missed"),
		rtStep(rtDay(4, 0), "TH", "iss_B", "event=decide side=buyer category=not_received status=decided outcome=upheld"),
	)
	_, doc := rtRender(t, Residency(ReportInput{Node: "MY", GeneratedAt: rtDay(5, 0), Entries: entries}))
	text := rtText(doc)
	for _, want := range []string{"After-sale issues", "Buyers here complained about sellers there", "not_received 1", "decided 1", "upheld 1", "0 met 1 missed"} {
		if !strings.Contains(text, want) {
			t.Errorf("page does not say %q:\n%s", want, text)
		}
	}
}
