package auditor

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/policy"
)

// ReportInput is what a residency report is computed from: the chain (or
// the part of it from the node's first entry to at least the end of the
// period) and every policy version the node has installed, so that each
// crossing can be checked against the policy that was in force when it
// happened, not the one in force today.
type ReportInput struct {
	Node        string // the node's country code
	PeerID      string // the node's libp2p peer ID
	GeneratedAt time.Time
	// From and To bound the period, From included and To excluded, so that
	// consecutive periods (months, quarters) neither overlap nor leave gaps.
	// A zero bound is unbounded. Entries outside the period are not
	// reported, but those before From still set the policy in force.
	From, To      time.Time
	Entries       []audit.Entry             // in seq order
	Policies      map[uint64]*policy.Policy // every installed version, by version
	PolicyAtStart uint64                    // the version in force before the first entry (0: none)
	AtRest        AtRest
}

// AtRest describes the data kept in the country, which the chain alone
// does not show: the report says where the store is and what it holds.
type AtRest struct {
	Country           string `json:"country"`            // where the store is
	Store             string `json:"store"`              // e.g. "bbolt, /var/lib/imtgt/node.db"
	Sellers           int    `json:"sellers"`            // sellers registered at this node
	Listings          int    `json:"listings"`           // this node's own listings
	Replicas          int    `json:"replicas"`           // other members' listings held (public fields only)
	Orders            int    `json:"orders"`             // orders placed by or handed off to this node
	PersonalEncrypted bool   `json:"personal_encrypted"` // personal fields sealed with AES-256-GCM
}

// Report is the residency report an auditor (a data protection authority
// or a trade ministry) reads: what left the country, on what basis and
// under which rule, what arrived, what is kept, what was refused, and
// every crossing the policy in force did not allow.
type Report struct {
	Node          string         `json:"node"`
	PeerID        string         `json:"peer_id"`
	GeneratedAt   time.Time      `json:"generated_at"`
	From          time.Time      `json:"from,omitzero"`
	To            time.Time      `json:"to,omitzero"`
	PolicyVersion uint64         `json:"policy_version"` // in force at the end of the period (0: none)
	Transfers     []Transfer     `json:"transfers"`      // egress, grouped
	Received      []Transfer     `json:"received"`       // ingress, grouped the same way
	AtRest        AtRest         `json:"at_rest"`
	Rejected      Rejected       `json:"rejected"`
	Violations    []Violation    `json:"violations"`
	Daily         []DayCount     `json:"daily"`     // records of this country's data sent per UTC day and destination (not receipts or relays)
	Issues        []IssueSummary `json:"issues"`    // after-sale issues per other country and side
	Entries       int            `json:"entries"`   // entries in the period
	FirstSeq      uint64         `json:"first_seq"` // of the first entry in the period (0: none)
	LastSeq       uint64         `json:"last_seq"`  // of the last entry in the period (0: none)
}

// Transfer is one group of crossings: the entries of one kind with one
// peer, purpose, legal basis, set of rules and policy version. Grouping
// keeps a report of a busy month to a table an auditor can read while
// still showing every distinct basis on which data moved.
type Transfer struct {
	Destination   string    `json:"destination"` // the peer's country; for Received, the source
	Purpose       string    `json:"purpose"`     // catalog, order_handoff, order_status, or receipt
	Kind          string    `json:"kind"`        // the entry kind
	Count         int       `json:"count"`       // records: the sum of audit.Entry.Count, 1 for an entry without one
	Messages      int       `json:"messages"`    // entries
	Fields        []string  `json:"fields"`      // sorted union of the entries' fields
	LegalBasis    string    `json:"legal_basis"`
	Rule          string    `json:"rule"` // Rules joined with ", "
	Rules         []string  `json:"rules"`
	PolicyVersion uint64    `json:"policy_version"` // the version the entries name
	First         time.Time `json:"first"`
	Last          time.Time `json:"last"`
}

// Rejected counts the messages, peers and records the node refused.
type Rejected struct {
	Total int `json:"total"`
	// ByReason counts by reason class: the node writes a rejection's reason
	// as "<class>: detail" ("bad signature: ...", "replay: ...",
	// "outsider: ...", "policy: ..."), and the class, the text before the
	// first colon, is what an auditor compares across a period.
	ByReason map[string]int `json:"by_reason"`
	// ByPeer counts by the peer's country, or its peer ID when it has none
	// (an outsider), or "unknown".
	ByPeer map[string]int `json:"by_peer"`
}

// Violation is an egress entry the policy in force did not allow.
type Violation struct {
	Seq           uint64    `json:"seq"`
	Time          time.Time `json:"time"`
	Kind          string    `json:"kind"`
	Peer          string    `json:"peer"`
	Fields        []string  `json:"fields"`
	PolicyVersion uint64    `json:"policy_version"` // the version the entry names
	Reason        string    `json:"reason"`
}

// DayCount is the records sent to one destination on one UTC day.
type DayCount struct {
	Day         string `json:"day"` // YYYY-MM-DD, UTC
	Destination string `json:"destination"`
	Count       int    `json:"count"`
}

// ReceiptPurpose is the purpose a receipt crossing is reported under:
// receipts are not data a transfer rule governs, but they do cross.
const ReceiptPurpose = "receipt"

// unknownRejectedPeer counts the rejections of an unidentified sender.
const unknownRejectedPeer = "unknown"

// maxReasonClass bounds a reason class, for reasons written without the
// "<class>: detail" form.
const maxReasonClass = 48

// Residency computes the residency report for a period. It walks the
// whole chain given, in order, keeping the policy version in force
// (PolicyAtStart, then each admin.policy entry's version), and checks
// every egress entry that carries fields against it: an entry that names
// no policy version, names another version than the one in force, or
// sends a field that policy does not allow is a violation. Egress entries
// without fields (receipts) carry nothing a transfer rule governs and are
// not checked, as in CheckCrossing.
func Residency(in ReportInput) *Report {
	r := &Report{
		Node:        in.Node,
		PeerID:      in.PeerID,
		GeneratedAt: in.GeneratedAt.UTC(),
		From:        reportUTC(in.From),
		To:          reportUTC(in.To),
		AtRest:      in.AtRest,
		Rejected:    Rejected{ByReason: map[string]int{}, ByPeer: map[string]int{}},
		Violations:  []Violation{},
	}
	out := map[reportKey]*Transfer{}
	in2 := map[reportKey]*Transfer{}
	daily := map[DayCount]int{} // Count left zero in the key
	issues := newIssueTally()
	inForce := in.PolicyAtStart
	crossing := reportCrossing(in.Policies)
	for i := range in.Entries {
		e := &in.Entries[i]
		if !in.To.IsZero() && !e.Time.Before(in.To) {
			continue // after the period: changes nothing the report shows
		}
		if e.Kind == audit.AdminPolicy {
			inForce = e.PolicyVersion
		}
		if !in.From.IsZero() && e.Time.Before(in.From) {
			continue
		}
		r.Entries++
		if r.FirstSeq == 0 {
			r.FirstSeq = e.Seq
		}
		r.LastSeq = e.Seq
		issues.add(e)
		switch {
		case e.Kind.Egress():
			addReportTransfer(out, e)
			if ownData(e) {
				daily[DayCount{Day: e.Time.UTC().Format(time.DateOnly), Destination: e.Peer}] += entryRecords(e)
			}
			if reason := egressViolation(inForce, e, crossing); reason != "" {
				r.Violations = append(r.Violations, Violation{
					Seq: e.Seq, Time: e.Time.UTC(), Kind: string(e.Kind), Peer: e.Peer,
					Fields: slices.Clone(e.Fields), PolicyVersion: e.PolicyVersion, Reason: reason,
				})
			}
		case e.Kind.Ingress():
			addReportTransfer(in2, e)
		case e.Kind == audit.Rejection:
			// An entry may summarise repeated refusals of one peer: count them.
			n := entryRecords(e)
			r.Rejected.Total += n
			r.Rejected.ByReason[ReasonClass(e.Reason)] += n
			r.Rejected.ByPeer[rejectedPeer(e)] += n
		}
	}
	r.PolicyVersion = inForce
	r.Issues = issues.summaries()
	r.Transfers = sortedReportTransfers(out)
	r.Received = sortedReportTransfers(in2)
	r.Daily = make([]DayCount, 0, len(daily))
	for d, n := range daily {
		d.Count = n
		r.Daily = append(r.Daily, d)
	}
	slices.SortFunc(r.Daily, func(a, b DayCount) int {
		return cmp.Or(cmp.Compare(a.Day, b.Day), cmp.Compare(a.Destination, b.Destination))
	})
	return r
}

// egressViolation returns why an egress entry was not allowed by the
// policy in force (version inForce, 0 for none), or "" if it was. Entries
// that carry no fields (receipts) cross no data. crossing says why
// version inForce does not allow e's crossing, "" if it does; it is asked
// only when a policy was in force. Every reason found is given, so that
// an entry that both names the wrong version and sends a forbidden field
// shows both. The residency report and the verifier both judge by it, so
// that they never disagree on what a violation is.
func egressViolation(inForce uint64, e *audit.Entry, crossing func(version uint64, e *audit.Entry) string) string {
	if len(e.Fields) == 0 {
		return ""
	}
	var reasons []string
	switch {
	case inForce == 0:
		reasons = append(reasons, "no policy was in force")
	case e.PolicyVersion == 0:
		reasons = append(reasons, fmt.Sprintf("the entry names no policy version (version %d was in force)", inForce))
	case e.PolicyVersion != inForce:
		reasons = append(reasons, fmt.Sprintf("the entry names policy version %d, but version %d was in force", e.PolicyVersion, inForce))
	}
	if inForce != 0 {
		if reason := crossing(inForce, e); reason != "" {
			reasons = append(reasons, reason)
		}
	}
	return strings.Join(reasons, "; ")
}

// reportCrossing is the report's crossing check for egressViolation:
// CheckCrossing against the installed policies given to the report.
func reportCrossing(policies map[uint64]*policy.Policy) func(version uint64, e *audit.Entry) string {
	return func(version uint64, e *audit.Entry) string {
		p := policies[version]
		if p == nil {
			return fmt.Sprintf("policy version %d, in force, is not among the installed policies given to the report", version)
		}
		if err := CheckCrossing(p, e); err != nil {
			return crossingReason(err, e.Seq)
		}
		return ""
	}
}

// crossingReason drops what a Violation already says (that it is one, and
// which entry) from a CheckCrossing error, leaving the field and rule.
func crossingReason(err error, seq uint64) string {
	s := err.Error()
	if errors.Is(err, ErrViolation) {
		s = strings.TrimPrefix(s, ErrViolation.Error()+": ")
		s = strings.TrimPrefix(s, fmt.Sprintf("entry %d: ", seq))
	}
	return s
}

// ReasonClass returns the class of a rejection reason: the text before the
// first colon of "<class>: detail", trimmed, or the whole reason (cut to a
// readable length) if it has no colon.
func ReasonClass(reason string) string {
	class, _, _ := strings.Cut(reason, ":")
	class = strings.TrimSpace(class)
	if class == "" {
		return "unspecified"
	}
	if r := []rune(class); len(r) > maxReasonClass {
		class = string(r[:maxReasonClass-1]) + "…"
	}
	return class
}

func rejectedPeer(e *audit.Entry) string {
	return cmp.Or(e.Peer, e.PeerID, unknownRejectedPeer)
}

// entryRecords is the number of records an entry covers: its Count, or one.
func entryRecords(e *audit.Entry) int {
	if e.Count > 0 {
		return e.Count
	}
	return 1
}

// reportPurpose is the purpose an entry is reported under.
func reportPurpose(e *audit.Entry) string {
	if strings.HasPrefix(string(e.Kind), "receipt.") {
		return ReceiptPurpose
	}
	return e.Purpose
}

// ownData reports whether an egress entry carries this country's data:
// receipts acknowledge what others sent, relays pass on other members'
// records. The headline and the chart count only own data.
func ownData(e *audit.Entry) bool {
	return reportPurpose(e) != ReceiptPurpose && e.Purpose != audit.PurposeRelay
}

// reportKey groups crossings: one row of the transfers table each.
type reportKey struct {
	peer, purpose, kind, basis, rules string
	version                           uint64
}

func addReportTransfer(groups map[reportKey]*Transfer, e *audit.Entry) {
	rules := slices.Clone(e.Rules)
	slices.Sort(rules)
	rules = slices.Compact(rules)
	rule := strings.Join(rules, ", ")
	k := reportKey{peer: e.Peer, purpose: reportPurpose(e), kind: string(e.Kind), basis: e.LegalBasis, rules: rule, version: e.PolicyVersion}
	t := groups[k]
	if t == nil {
		t = &Transfer{
			Destination: k.peer, Purpose: k.purpose, Kind: k.kind, LegalBasis: k.basis,
			Rule: rule, Rules: rules, PolicyVersion: k.version, Fields: []string{},
			First: e.Time.UTC(), Last: e.Time.UTC(),
		}
		if t.Rules == nil {
			t.Rules = []string{}
		}
		groups[k] = t
	}
	t.Count += entryRecords(e)
	t.Messages++
	t.Fields = append(t.Fields, e.Fields...)
	if e.Time.Before(t.First) {
		t.First = e.Time.UTC()
	}
	if e.Time.After(t.Last) {
		t.Last = e.Time.UTC()
	}
}

func sortedReportTransfers(groups map[reportKey]*Transfer) []Transfer {
	out := make([]Transfer, 0, len(groups))
	for _, k := range slices.SortedFunc(maps.Keys(groups), compareReportKeys) {
		t := groups[k]
		slices.Sort(t.Fields)
		t.Fields = slices.Compact(t.Fields)
		out = append(out, *t)
	}
	return out
}

// compareReportKeys orders transfers by destination, purpose, kind and
// version, then basis and rules, so that the order is total and a report
// computed twice is the same.
func compareReportKeys(a, b reportKey) int {
	return cmp.Or(
		cmp.Compare(a.peer, b.peer),
		cmp.Compare(a.purpose, b.purpose),
		cmp.Compare(a.kind, b.kind),
		cmp.Compare(a.version, b.version),
		cmp.Compare(a.basis, b.basis),
		cmp.Compare(a.rules, b.rules),
	)
}

func reportUTC(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}
