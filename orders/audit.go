package orders

import (
	"encoding/hex"

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
	if r.Kind == KindStatus {
		kind, purpose = audit.StatusEgress, string(policy.PurposeOrderStatus)
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
