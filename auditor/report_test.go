package auditor

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/configs"
	"github.com/imtgt/imtgt-node/policy"
)

// rtBase is the start of the period most report tests use.
var rtBase = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// rtDay is rtBase plus n days and h hours.
func rtDay(n, h int) time.Time { return rtBase.AddDate(0, 0, n).Add(time.Duration(h) * time.Hour) }

// rtPolicy parses a country's default policy as version, after edit (if
// any) rewrites its text, so tests check against the rules agencies ship.
func rtPolicy(t testing.TB, country string, version uint64, edit func(string) string) *policy.Policy {
	t.Helper()
	b, err := configs.DefaultPolicy(country)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if strings.Count(text, "\nversion: 1\n") != 1 {
		t.Fatalf("policy-%s.yaml: no single top-level version line", country)
	}
	text = strings.Replace(text, "\nversion: 1\n", fmt.Sprintf("\nversion: %d\n", version), 1)
	if edit != nil {
		text = edit(text)
	}
	p, err := policy.Parse("policy-"+country+".yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// rtAllowBuyerEmail edits a default policy so that the buyer's e-mail
// joins the order handoff.
func rtAllowBuyerEmail(t testing.TB) func(string) string {
	return func(s string) string {
		const old = "fields: [name, phone, address.line1"
		if strings.Count(s, old) != 1 {
			t.Fatalf("buyer handoff rule not found once")
		}
		return strings.Replace(s, old, "fields: [name, email, phone, address.line1", 1)
	}
}

// rtChain links entries into a real chain, as the store does.
func rtChain(t testing.TB, es ...audit.Entry) []audit.Entry {
	t.Helper()
	var prevSeq uint64
	prevHash := ""
	for i := range es {
		es[i].Link(prevSeq, prevHash)
		if err := es[i].Follows(prevSeq, prevHash); err != nil {
			t.Fatal(err)
		}
		prevSeq, prevHash = es[i].Seq, es[i].Hash
	}
	return es
}

// rtListingFields are public listing fields the default catalog rules
// allow, as an egress entry names them.
var rtListingFields = []string{"listing.id", "listing.seller.id", "listing.seller.legal_name", "listing.title", "listing.price", "listing.hs_code"}

func rtCatalog(at time.Time, peer string, count int, version uint64, rule string) audit.Entry {
	return audit.Entry{
		Time: at, Kind: audit.CatalogEgress, Peer: peer, Purpose: string(policy.PurposeCatalog),
		Records: []string{"TH#1-" + fmt.Sprint(count)}, Count: count, Fields: slices.Clone(rtListingFields),
		PolicyVersion: version, Rules: []string{rule}, LegalBasis: policy.BasisNotPersonal,
		PayloadHash: audit.HashHex([]byte(at.String())), Actor: "node",
	}
}

func rtHandoff(at time.Time, country, peer string, version uint64, buyerFields ...string) audit.Entry {
	fields := []string{"order.id", "order.items", "order.quote"}
	for _, f := range buyerFields {
		fields = append(fields, "buyer."+f)
	}
	return audit.Entry{
		Time: at, Kind: audit.HandoffEgress, Peer: peer, Purpose: string(policy.PurposeOrderHandoff),
		Records: []string{"ord-" + fmt.Sprint(at.Unix())}, Count: 1, Fields: fields, PolicyVersion: version,
		Rules: []string{country + "-TR-ORDER-BUYER", country + "-TR-ORDER"}, LegalBasis: policy.BasisContractNecessity,
		Actor: "node",
	}
}

func rtPolicyInstalled(at time.Time, version uint64) audit.Entry {
	return audit.Entry{Time: at, Kind: audit.AdminPolicy, PolicyVersion: version, Actor: "admin tok-1", Reason: fmt.Sprintf("installed policy version %d", version)}
}

func rtRejection(at time.Time, peer, peerID, reason string) audit.Entry {
	return audit.Entry{Time: at, Kind: audit.Rejection, Peer: peer, PeerID: peerID, Reason: reason, Actor: "node"}
}

// rtWantViolation is a violation a case expects: the entry and words its
// reason must contain.
type rtWantViolation struct {
	seq    uint64
	reason []string
}

func TestResidency(t *testing.T) {
	th1 := rtPolicy(t, "TH", 1, nil)
	th2 := rtPolicy(t, "TH", 2, rtAllowBuyerEmail(t))
	my1 := rtPolicy(t, "MY", 1, nil)

	tests := []struct {
		name       string
		node       string
		policies   map[uint64]*policy.Policy
		atStart    uint64
		from, to   time.Time
		entries    []audit.Entry
		want       []rtWantViolation
		wantPolicy uint64
		check      func(t *testing.T, r *Report)
	}{
		{
			name: "catalog to MY and ID under the TH default policy", node: "TH",
			policies: map[uint64]*policy.Policy{1: th1}, atStart: 1, wantPolicy: 1,
			entries: rtChain(t,
				rtCatalog(rtDay(0, 0), "MY", 120, 1, "TH-TR-CATALOG"),
				rtCatalog(rtDay(0, 1), "ID", 80, 1, "TH-TR-CATALOG"),
				rtCatalog(rtDay(1, 0), "MY", 5, 1, "TH-TR-CATALOG"),
			),
			check: func(t *testing.T, r *Report) {
				if len(r.Transfers) != 2 {
					t.Fatalf("transfers = %+v, want one row per destination", r.Transfers)
				}
				id, my := r.Transfers[0], r.Transfers[1]
				if id.Destination != "ID" || my.Destination != "MY" {
					t.Errorf("order = %s, %s; want ID, MY", id.Destination, my.Destination)
				}
				if my.Count != 125 || my.Messages != 2 || !my.First.Equal(rtDay(0, 0)) || !my.Last.Equal(rtDay(1, 0)) {
					t.Errorf("MY row = %+v", my)
				}
				if my.Purpose != "catalog" || my.Kind != string(audit.CatalogEgress) || my.LegalBasis != policy.BasisNotPersonal ||
					my.Rule != "TH-TR-CATALOG" || my.PolicyVersion != 1 {
					t.Errorf("MY row = %+v", my)
				}
				want := slices.Sorted(slices.Values(rtListingFields))
				if !slices.Equal(my.Fields, want) {
					t.Errorf("fields = %v, want %v", my.Fields, want)
				}
				if r.Entries != 3 || r.FirstSeq != 1 || r.LastSeq != 3 {
					t.Errorf("entries %d, seq %d-%d", r.Entries, r.FirstSeq, r.LastSeq)
				}
			},
		},
		{
			name: "handoff with buyer fields the MY policy allows", node: "MY",
			policies: map[uint64]*policy.Policy{1: my1}, atStart: 1, wantPolicy: 1,
			entries: rtChain(t, rtHandoff(rtDay(0, 0), "MY", "TH", 1, "name", "phone", "address.line1", "address.city", "address.postcode", "address.country")),
			check: func(t *testing.T, r *Report) {
				if len(r.Transfers) != 1 {
					t.Fatalf("transfers = %+v", r.Transfers)
				}
				tr := r.Transfers[0]
				if tr.Destination != "TH" || tr.Purpose != "order_handoff" || tr.Rule != "MY-TR-ORDER, MY-TR-ORDER-BUYER" ||
					tr.LegalBasis != policy.BasisContractNecessity || !slices.Contains(tr.Fields, "buyer.name") {
					t.Errorf("transfer = %+v", tr)
				}
			},
		},
		{
			name: "handoff with the buyer's e-mail, which no MY rule allows", node: "MY",
			policies: map[uint64]*policy.Policy{1: my1}, atStart: 1, wantPolicy: 1,
			entries: rtChain(t,
				rtHandoff(rtDay(0, 0), "MY", "TH", 1, "name"),
				rtHandoff(rtDay(0, 1), "MY", "ID", 1, "name", "email"),
			),
			want: []rtWantViolation{{2, []string{"buyer.email", "to ID", "order_handoff", "MY policy version 1"}}},
			check: func(t *testing.T, r *Report) {
				v := r.Violations[0]
				if v.Peer != "ID" || v.Kind != string(audit.HandoffEgress) || v.PolicyVersion != 1 || !slices.Contains(v.Fields, "buyer.email") {
					t.Errorf("violation = %+v", v)
				}
				if strings.Contains(v.Reason, ErrViolation.Error()) || strings.Contains(v.Reason, "entry 2") {
					t.Errorf("reason %q repeats what the violation already says", v.Reason)
				}
			},
		},
		{
			name: "egress naming a version not in force", node: "TH",
			policies: map[uint64]*policy.Policy{1: th1, 2: th2}, atStart: 1, wantPolicy: 1,
			entries: rtChain(t, rtCatalog(rtDay(0, 0), "MY", 3, 2, "TH-TR-CATALOG")),
			want:    []rtWantViolation{{1, []string{"names policy version 2", "version 1 was in force"}}},
		},
		{
			name: "egress naming no version", node: "TH",
			policies: map[uint64]*policy.Policy{1: th1}, atStart: 1, wantPolicy: 1,
			entries: rtChain(t, rtCatalog(rtDay(0, 0), "MY", 3, 0, "TH-TR-CATALOG")),
			want:    []rtWantViolation{{1, []string{"names no policy version"}}},
		},
		{
			name: "egress with no policy in force", node: "TH",
			policies: map[uint64]*policy.Policy{1: th1}, atStart: 0, wantPolicy: 0,
			entries: rtChain(t, rtCatalog(rtDay(0, 0), "MY", 3, 1, "TH-TR-CATALOG")),
			want:    []rtWantViolation{{1, []string{"no policy was in force"}}},
		},
		{
			name: "policy in force missing from the installed versions", node: "TH",
			policies: map[uint64]*policy.Policy{1: th1}, atStart: 3, wantPolicy: 3,
			entries: rtChain(t, rtCatalog(rtDay(0, 0), "MY", 3, 3, "TH-TR-CATALOG")),
			want:    []rtWantViolation{{1, []string{"version 3", "not among the installed policies"}}},
		},
		{
			name: "policy change mid-period", node: "TH",
			policies: map[uint64]*policy.Policy{1: th1, 2: th2}, atStart: 1, wantPolicy: 2,
			entries: rtChain(t,
				rtHandoff(rtDay(0, 0), "TH", "MY", 1, "name", "email"), // 1: e-mail not yet allowed
				rtPolicyInstalled(rtDay(1, 0), 2),                      // 2
				rtHandoff(rtDay(2, 0), "TH", "MY", 2, "name", "email"), // 3: allowed by version 2
				rtCatalog(rtDay(2, 1), "MY", 4, 1, "TH-TR-CATALOG"),    // 4: names the old version
			),
			want: []rtWantViolation{
				{1, []string{"buyer.email", "TH policy version 1"}},
				{4, []string{"names policy version 1", "version 2 was in force"}},
			},
			check: func(t *testing.T, r *Report) {
				var versions []uint64
				for _, tr := range r.Transfers {
					if tr.Purpose == "order_handoff" {
						versions = append(versions, tr.PolicyVersion)
					}
				}
				if !slices.Equal(versions, []uint64{1, 2}) {
					t.Errorf("handoff rows by version = %v, want one row for each version", versions)
				}
			},
		},
		{
			name: "only entries in the period are reported", node: "TH",
			policies: map[uint64]*policy.Policy{1: th1, 2: th2}, atStart: 1, wantPolicy: 2,
			from: rtDay(1, -9), to: rtDay(3, -9), // 2 and 3 March, UTC
			entries: rtChain(t,
				rtCatalog(rtDay(0, 0), "MY", 9, 7, "TH-TR-CATALOG"),     // 1: before: its violation is not reported
				rtPolicyInstalled(rtDay(0, 2), 2),                       // 2: before, but sets the version in force
				rtHandoff(rtDay(1, -9), "TH", "ID", 2, "name", "email"), // 3: at From: in
				rtCatalog(rtDay(2, 14), "ID", 6, 2, "TH-TR-CATALOG"),    // 4: 23:00 on 3 March: in
				rtCatalog(rtDay(3, -9), "ID", 8, 2, "TH-TR-CATALOG"),    // 5: at To: out
				rtPolicyInstalled(rtDay(3, 0), 1),                       // 6: after: does not change the version reported
				rtCatalog(rtDay(3, 1), "ID", 1, 2, "TH-TR-CATALOG"),     // 7: after: its violation is not reported
			),
			check: func(t *testing.T, r *Report) {
				if r.Entries != 2 || r.FirstSeq != 3 || r.LastSeq != 4 {
					t.Errorf("entries %d, seq %d-%d; want 2, 3-4", r.Entries, r.FirstSeq, r.LastSeq)
				}
				if !r.From.Equal(rtDay(1, -9)) || !r.To.Equal(rtDay(3, -9)) {
					t.Errorf("period %v-%v", r.From, r.To)
				}
				want := []DayCount{{"2026-03-02", "ID", 1}, {"2026-03-03", "ID", 6}}
				if !slices.Equal(r.Daily, want) {
					t.Errorf("daily = %v, want %v", r.Daily, want)
				}
			},
		},
		{
			name: "rejections grouped by reason class and by peer", node: "TH",
			policies: map[uint64]*policy.Policy{1: th1}, atStart: 1, wantPolicy: 1,
			entries: rtChain(t,
				rtRejection(rtDay(0, 0), "MY", "12D3KooWmy", "bad signature: ed25519 verification failed for record MY#44"),
				rtRejection(rtDay(0, 1), "MY", "12D3KooWmy", "bad signature: unknown key"),
				rtRejection(rtDay(0, 2), "ID", "12D3KooWid", "replay: sequence 17 already seen"),
				rtRejection(rtDay(0, 3), "", "12D3KooWstranger", "outsider: peer is not in the federation manifest"),
				rtRejection(rtDay(0, 4), "", "", "policy: field buyer.email is not allowed"),
				rtRejection(rtDay(0, 5), "ID", "", ""),
			),
			check: func(t *testing.T, r *Report) {
				if r.Rejected.Total != 6 {
					t.Errorf("total = %d", r.Rejected.Total)
				}
				wantReason := map[string]int{"bad signature": 2, "replay": 1, "outsider": 1, "policy": 1, "unspecified": 1}
				if fmt.Sprint(r.Rejected.ByReason) != fmt.Sprint(wantReason) {
					t.Errorf("by reason = %v, want %v", r.Rejected.ByReason, wantReason)
				}
				wantPeer := map[string]int{"MY": 2, "ID": 2, "12D3KooWstranger": 1, "unknown": 1}
				if fmt.Sprint(r.Rejected.ByPeer) != fmt.Sprint(wantPeer) {
					t.Errorf("by peer = %v, want %v", r.Rejected.ByPeer, wantPeer)
				}
				if len(r.Transfers) != 0 || len(r.Daily) != 0 {
					t.Errorf("rejections counted as transfers: %+v %+v", r.Transfers, r.Daily)
				}
			},
		},
		{
			name: "a summary of repeated refusals counts each refusal", node: "TH",
			policies: map[uint64]*policy.Policy{1: th1}, atStart: 1, wantPolicy: 1,
			entries: rtChain(t,
				rtRejection(rtDay(0, 0), "", "12D3KooWstranger", "outsider: a peer outside the manifest tried to connect"),
				func() audit.Entry {
					e := rtRejection(rtDay(0, 1), "", "12D3KooWstranger", "outsider: 2722 refusals since 2026-03-01T00:00:00Z; the last: ...")
					e.Count = 2722
					return e
				}(),
			),
			check: func(t *testing.T, r *Report) {
				if r.Rejected.Total != 2723 || r.Rejected.ByReason["outsider"] != 2723 || r.Rejected.ByPeer["12D3KooWstranger"] != 2723 {
					t.Errorf("rejected = %+v, want 2723 refusals of one outsider", r.Rejected)
				}
			},
		},
		{
			name: "daily counts per day and destination", node: "TH",
			policies: map[uint64]*policy.Policy{1: th1}, atStart: 1, wantPolicy: 1,
			entries: rtChain(t,
				rtCatalog(rtDay(0, 0), "MY", 10, 1, "TH-TR-CATALOG"),
				rtCatalog(rtDay(0, 14), "MY", 5, 1, "TH-TR-CATALOG"), // 23:00 UTC: still 1 March
				rtCatalog(rtDay(0, 3), "ID", 7, 1, "TH-TR-CATALOG"),
				rtHandoff(rtDay(0, 15), "TH", "MY", 1, "name"),      // 00:00 UTC 2 March
				rtCatalog(rtDay(3, 0), "ID", 0, 1, "TH-TR-CATALOG"), // a count of 0 is one record
				audit.Entry{Time: rtDay(3, 1), Kind: audit.ReceiptEgress, Peer: "ID", ReceiptHash: audit.HashHex([]byte("r"))},
			),
			check: func(t *testing.T, r *Report) {
				// The receipt is not this country's data: not counted.
				want := []DayCount{{"2026-03-01", "ID", 7}, {"2026-03-01", "MY", 15}, {"2026-03-02", "MY", 1}, {"2026-03-04", "ID", 1}}
				if !slices.Equal(r.Daily, want) {
					t.Errorf("daily = %v, want %v", r.Daily, want)
				}
			},
		},
		{
			name: "receipts are reported under their own purpose and not checked", node: "TH",
			policies: map[uint64]*policy.Policy{1: th1}, atStart: 1, wantPolicy: 1,
			entries: rtChain(t,
				audit.Entry{Time: rtDay(0, 0), Kind: audit.ReceiptEgress, Peer: "MY", ReceiptHash: audit.HashHex([]byte("a"))},
				audit.Entry{Time: rtDay(0, 1), Kind: audit.ReceiptEgress, Peer: "MY", ReceiptHash: audit.HashHex([]byte("b"))},
			),
			check: func(t *testing.T, r *Report) {
				if len(r.Transfers) != 1 || r.Transfers[0].Purpose != ReceiptPurpose || r.Transfers[0].Count != 2 ||
					r.Transfers[0].Fields == nil || r.Transfers[0].Rules == nil {
					t.Errorf("transfers = %+v", r.Transfers)
				}
			},
		},
		{
			name: "ingress is grouped into received and not checked against this node's policy", node: "TH",
			policies: map[uint64]*policy.Policy{1: th1}, atStart: 1, wantPolicy: 1,
			entries: rtChain(t,
				audit.Entry{Time: rtDay(0, 0), Kind: audit.HandoffIngress, Peer: "MY", Purpose: "order_handoff", Count: 1,
					Fields: []string{"buyer.name", "buyer.email"}, PolicyVersion: 4, Rules: []string{"MY-TR-ORDER-BUYER"}, LegalBasis: "consent"},
				audit.Entry{Time: rtDay(0, 1), Kind: audit.CatalogIngress, Peer: "ID", Purpose: "catalog", Count: 40,
					Fields: []string{"listing.title"}, PolicyVersion: 1, Rules: []string{"ID-TR-CATALOG"}, LegalBasis: "not_personal"},
				audit.Entry{Time: rtDay(0, 2), Kind: audit.CatalogIngress, Peer: "ID", Purpose: "catalog", Count: 2,
					Fields: []string{"listing.id"}, PolicyVersion: 1, Rules: []string{"ID-TR-CATALOG"}, LegalBasis: "not_personal"},
			),
			check: func(t *testing.T, r *Report) {
				if len(r.Transfers) != 0 || len(r.Daily) != 0 {
					t.Errorf("ingress reported as egress: %+v %+v", r.Transfers, r.Daily)
				}
				if len(r.Received) != 2 || r.Received[0].Destination != "ID" || r.Received[0].Count != 42 ||
					!slices.Equal(r.Received[0].Fields, []string{"listing.id", "listing.title"}) || r.Received[1].Destination != "MY" {
					t.Errorf("received = %+v", r.Received)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			at := AtRest{Country: tc.node, Store: "bbolt, /var/lib/imtgt/node.db", Listings: 3}
			r := Residency(ReportInput{
				Node: tc.node, PeerID: "12D3KooWnode", GeneratedAt: rtDay(40, 0), From: tc.from, To: tc.to,
				Entries: tc.entries, Policies: tc.policies, PolicyAtStart: tc.atStart, AtRest: at,
			})
			if r.Node != tc.node || r.PeerID != "12D3KooWnode" || r.AtRest != at || !r.GeneratedAt.Equal(rtDay(40, 0)) {
				t.Errorf("header = %s %s %v %+v", r.Node, r.PeerID, r.GeneratedAt, r.AtRest)
			}
			if r.PolicyVersion != tc.wantPolicy {
				t.Errorf("policy version = %d, want %d", r.PolicyVersion, tc.wantPolicy)
			}
			if len(r.Violations) != len(tc.want) {
				t.Fatalf("violations = %+v, want %d", r.Violations, len(tc.want))
			}
			for i, w := range tc.want {
				v := r.Violations[i]
				if v.Seq != w.seq {
					t.Errorf("violation %d is entry %d, want %d", i, v.Seq, w.seq)
				}
				for _, s := range w.reason {
					if !strings.Contains(v.Reason, s) {
						t.Errorf("violation of entry %d: reason %q does not say %q", v.Seq, v.Reason, s)
					}
				}
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

// TestResidencyDeterministic checks that a report does not depend on map
// order: the same input gives the same JSON.
func TestResidencyDeterministic(t *testing.T) {
	th1 := rtPolicy(t, "TH", 1, nil)
	var es []audit.Entry
	for i := range 60 {
		peer := []string{"MY", "ID"}[i%2]
		if i%3 == 0 {
			es = append(es, rtHandoff(rtDay(i%7, i%5), "TH", peer, 1, "name", "phone"))
		} else {
			es = append(es, rtCatalog(rtDay(i%7, i%5), peer, i, 1, "TH-TR-CATALOG"))
		}
		es = append(es, rtRejection(rtDay(i%7, 1), peer, "", fmt.Sprintf("reason %d: x", i%4)))
	}
	in := ReportInput{Node: "TH", Entries: rtChain(t, es...), Policies: map[uint64]*policy.Policy{1: th1}, PolicyAtStart: 1}
	first, err := json.Marshal(Residency(in))
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		again, _ := json.Marshal(Residency(in))
		if string(again) != string(first) {
			t.Fatalf("report differs between runs:\n%s\n%s", first, again)
		}
	}
}

// TestResidencyEmptyJSON checks that an empty report's lists are [] and
// its maps {}, which tools reading the JSON rely on, and that unbounded
// period ends are left out.
func TestResidencyEmptyJSON(t *testing.T) {
	b, err := json.Marshal(Residency(ReportInput{Node: "TH", GeneratedAt: rtBase}))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"transfers":[]`, `"received":[]`, `"violations":[]`, `"daily":[]`,
		`"issues":[]`, `"by_reason":{}`, `"by_peer":{}`, `"first_seq":0`, `"last_seq":0`, `"policy_version":0`} {
		if !strings.Contains(s, want) {
			t.Errorf("JSON %s lacks %s", s, want)
		}
	}
	for _, absent := range []string{`"from"`, `"to"`, "null"} {
		if strings.Contains(s, absent) {
			t.Errorf("JSON %s has %s", s, absent)
		}
	}
}

func TestReportReasonClass(t *testing.T) {
	long := strings.Repeat("x", 100)
	for _, tc := range []struct{ in, want string }{
		{"bad signature: ed25519", "bad signature"},
		{"replay: seq 4: again", "replay"},
		{"  outsider :peer", "outsider"},
		{"no colon at all", "no colon at all"},
		{"", "unspecified"},
		{": detail only", "unspecified"},
		{long, strings.Repeat("x", maxReasonClass-1) + "…"},
	} {
		if got := ReasonClass(tc.in); got != tc.want {
			t.Errorf("ReasonClass(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
