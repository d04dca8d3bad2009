package auditor

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/imtgt/imtgt-node/audit"
)

// IssueSummary counts the after-sale issues this node took part in with
// one other country, on one side, from its issue.step entries: what a
// consumer-protection body asks of a period (how many complaints, about
// what, how they ended, whether sellers answered in time).
type IssueSummary struct {
	Country string `json:"country"` // the other side's country
	// Side is the side this node is on: "buyer" (its marketplaces opened
	// the issues; its steps are the authority, with every deadline) or
	// "seller" (its sellers answered them).
	Side       string         `json:"side"`
	Issues     int            `json:"issues"`      // distinct issues with a step in the period
	Opened     int            `json:"opened"`      // of those, opened in the period
	ByCategory map[string]int `json:"by_category"` // distinct issues by category
	ByStatus   map[string]int `json:"by_status"`   // by the status after each issue's last step in the period
	ByOutcome  map[string]int `json:"by_outcome"`  // decisions recorded in the period, by outcome
	Respond    DeadlineCount  `json:"respond"`     // first responses against respond_by
	Resolve    DeadlineCount  `json:"resolve"`     // ends (resolved, closed, escalated) against resolve_by
}

// DeadlineCount is how often a deadline was met and missed.
type DeadlineCount struct {
	Met    int `json:"met"`
	Missed int `json:"missed"`
}

// unknownSide is the side of a step entry that does not say (written
// before entries carried it).
const unknownSide = "unknown"

type issueKey struct{ country, side string }

// issueTally gathers the period's issue.step entries.
type issueTally struct {
	groups map[issueKey]*IssueSummary
	last   map[issueKey]map[string]string // issue ID → status after its last step
}

func newIssueTally() *issueTally {
	return &issueTally{groups: map[issueKey]*IssueSummary{}, last: map[issueKey]map[string]string{}}
}

// add counts one issue.step entry. Its reason is key=value pairs the node
// writes (orders' stepEntry): event, category, status, side, outcome,
// respond and resolve (met or missed).
func (t *issueTally) add(e *audit.Entry) {
	if e.Kind != audit.IssueStep || len(e.Records) == 0 {
		return
	}
	kv := stepFields(e.Reason)
	k := issueKey{country: e.Peer, side: cmp.Or(kv["side"], unknownSide)}
	g := t.groups[k]
	if g == nil {
		g = &IssueSummary{Country: k.country, Side: k.side, ByCategory: map[string]int{}, ByStatus: map[string]int{}, ByOutcome: map[string]int{}}
		t.groups[k] = g
		t.last[k] = map[string]string{}
	}
	id := e.Records[0]
	if _, seen := t.last[k][id]; !seen {
		g.Issues++
		g.ByCategory[cmp.Or(kv["category"], "unspecified")]++
	}
	t.last[k][id] = cmp.Or(kv["status"], "unspecified")
	switch kv["event"] {
	case "open":
		g.Opened++
	case "decide":
		if o := kv["outcome"]; o != "" {
			g.ByOutcome[o]++
		}
	}
	count := func(d *DeadlineCount, v string) {
		switch v {
		case "met":
			d.Met++
		case "missed":
			d.Missed++
		}
	}
	count(&g.Respond, kv["respond"])
	count(&g.Resolve, kv["resolve"])
}

// summaries are the tallies by country, then side.
func (t *issueTally) summaries() []IssueSummary {
	out := make([]IssueSummary, 0, len(t.groups))
	for _, k := range slices.SortedFunc(maps.Keys(t.groups), func(a, b issueKey) int {
		return cmp.Or(cmp.Compare(a.country, b.country), cmp.Compare(a.side, b.side))
	}) {
		g := t.groups[k]
		for _, st := range t.last[k] {
			g.ByStatus[st]++
		}
		out = append(out, *g)
	}
	return out
}

// stepFields reads the key=value pairs of a step entry's reason; a word
// without "=" is ignored.
func stepFields(reason string) map[string]string {
	kv := map[string]string{}
	for _, w := range strings.Fields(reason) {
		if k, v, ok := strings.Cut(w, "="); ok && k != "" {
			kv[k] = v
		}
	}
	return kv
}
