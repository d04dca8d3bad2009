package orders

import (
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/policy"
)

// The audit entries of order messages. They are written in the same
// transaction as the message's effect: on the sender when the receipt
// comes back (the crossing and its evidence), on the receiver when it
// stores the message. Payload hashes are the receipt's payload_hash in
// hex, so an auditor can match a receipt to its entry.

func hexOf(b []byte) string { return hex.EncodeToString(b) }

// sentEntries records a delivered message and the receipt it got.
func sentEntries(r OutboxRow, hash, receipt []byte, rc *pb.Receipt) []*audit.Entry {
	kind, purpose := audit.HandoffEgress, string(policy.PurposeOrderHandoff)
	switch r.Kind {
	case KindStatus:
		kind, purpose = audit.StatusEgress, string(policy.PurposeOrderStatus)
	case KindIssue:
		kind, purpose = audit.IssueEgress, string(policy.PurposeIssue)
	}
	e := &audit.Entry{Kind: kind, Peer: r.Dest, Purpose: purpose, Records: []string{r.OrderID}, Count: 1,
		PayloadHash: hexOf(hash), ReceiptHash: audit.HashHex(receipt)}
	if t := r.Transfer; t != nil {
		e.Fields, e.PolicyVersion, e.Rules, e.LegalBasis = t.Fields, t.Version, t.Rules, t.LegalBasis
	}
	return []*audit.Entry{e, {Kind: audit.ReceiptIngress, Peer: r.Dest, Purpose: purpose, Records: []string{r.OrderID}, Count: 1,
		PayloadHash: hexOf(hash), ReceiptHash: audit.HashHex(receipt), Reason: rc.Result}}
}

// receivedEntries records a message stored and the receipt it was
// answered with. fields are the names of the fields that arrived.
func receivedEntries(kind, from, orderID string, hash, receipt []byte, result string, fields, rules []string, basis string) []*audit.Entry {
	ek, purpose := audit.HandoffIngress, string(policy.PurposeOrderHandoff)
	if kind == KindStatus {
		ek, purpose = audit.StatusIngress, string(policy.PurposeOrderStatus)
	}
	return []*audit.Entry{
		{Kind: ek, Peer: from, Purpose: purpose, Records: []string{orderID}, Count: 1, Fields: fields, Rules: rules, LegalBasis: basis,
			PayloadHash: hexOf(hash)},
		{Kind: audit.ReceiptEgress, Peer: from, Purpose: purpose, Records: []string{orderID}, Count: 1,
			PayloadHash: hexOf(hash), ReceiptHash: audit.HashHex(receipt), Reason: result},
	}
}

// handoffFields names the fields a handoff carries, as transfer rules
// name them.
func handoffFields(h *pb.OrderHandoff) []string {
	var out []string
	add := func(set bool, f string) {
		if set {
			out = append(out, f)
		}
	}
	if r := h.Recipient; r != nil {
		add(r.Name != "", "buyer.name")
		add(r.Phone != "", "buyer.phone")
		add(r.Line1 != "", "buyer.address.line1")
		add(r.City != "", "buyer.address.city")
		add(r.Region != "", "buyer.address.region")
		add(r.Postcode != "", "buyer.address.postcode")
		add(r.Country != "", "buyer.address.country")
	}
	add(h.Consent != nil, "order.consent")
	add(h.CreatedUnixMs != 0, "order.created_at")
	out = append(out, "order.id")
	add(len(h.Items) > 0, "order.items")
	add(h.Quote != nil, "order.quote")
	return out
}

// statusFields names the fields a status message carries.
func statusFields(st *pb.OrderStatus) []string {
	out := []string{"order.id"}
	add := func(set bool, f string) {
		if set {
			out = append(out, f)
		}
	}
	add(st.Reason != "", "order.reason")
	add(st.Status != "", "order.status")
	add(st.Tracking != "", "order.tracking")
	add(st.UpdatedUnixMs != 0, "order.updated_at")
	return out
}

// issueFieldOf maps an aftersale.Issue JSON key to the policy field that
// carries it.
var issueFieldOf = map[string]string{
	"id": "id", "order_id": "order_id", "marketplace_id": "marketplace_id",
	"buyer_country": "parties", "seller_country": "parties", "seller_id": "parties",
	"category": "category", "description": "description", "items": "items", "remedy_requested": "remedy_requested",
	"attachments": "attachments", "status": "status", "respond_by": "deadlines", "resolve_by": "deadlines",
	"remedy": "remedy", "responses": "responses", "refunds": "refunds", "decision": "decision", "history": "history",
	"created_at": "created_at", "updated_at": "created_at",
}

// issueFields names the fields an issue message carries, as transfer
// rules name them: the issue's keys that hold something, and the
// response.
func issueFields(m *pb.IssueMessage) []string {
	set := map[string]bool{"id": true, "order_id": true}
	var keys map[string]json.RawMessage
	if len(m.Issue) > 0 && json.Unmarshal(m.Issue, &keys) == nil {
		for k, v := range keys {
			f, ok := issueFieldOf[k]
			if !ok {
				continue
			}
			switch string(v) {
			case "null", `""`, "[]", "{}", `"0001-01-01T00:00:00Z"`:
				continue
			}
			set[f] = true
		}
	}
	if len(m.Input) > 0 {
		set["responses"] = true
	}
	out := make([]string, 0, len(set))
	for _, f := range slices.Sorted(maps.Keys(set)) {
		out = append(out, policy.KindIssue+"."+f)
	}
	return out
}

// receivedIssueEntries records an issue message stored and the receipt it
// was answered with.
func receivedIssueEntries(from, orderID string, m *pb.IssueMessage, hash, receipt []byte, result string) []*audit.Entry {
	purpose := string(policy.PurposeIssue)
	records := []string{orderID}
	if m.IssueId != "" {
		records = []string{m.IssueId, orderID}
	}
	return []*audit.Entry{
		{Kind: audit.IssueIngress, Peer: from, Purpose: purpose, Records: records, Count: 1, Fields: issueFields(m), PayloadHash: hexOf(hash)},
		{Kind: audit.ReceiptEgress, Peer: from, Purpose: purpose, Records: records, Count: 1,
			PayloadHash: hexOf(hash), ReceiptHash: audit.HashHex(receipt), Reason: result},
	}
}
