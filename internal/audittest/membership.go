package audittest

import (
	"testing"
	"time"

	"github.com/imtgt/imtgt-node/audit"
)

// Manifest versions of NewMembershipFixture's federation.
const (
	ManifestAll  = 2 // ID, MY and TH
	ManifestNoID = 3 // MY and TH: ID removed
)

// NewMembershipFixture returns TH's bundle across a membership change:
// manifest version 2 names ID, MY and TH; version 3, signed by MY and TH
// (version 2's quorum), removes ID.
//
//	1 admin.manifest v2              — checkpoint at 4, witnessed by MY and ID
//	2 admin.policy v1                5 admin.manifest v3 (ID removed)
//	3 catalog.egress → ID            6 catalog.egress → MY
//	4 status.egress → ID (receipted) — checkpoint at 6, witnessed by MY
//
// The header carries both manifest versions, version 3 as the installed
// one, and ID's receipt of entry 4. Lines: header 1, entry n on line n+1,
// checkpoints on lines 8 and 9, the receipt on line 10.
func NewMembershipFixture(tb testing.TB) *Fixture {
	tb.Helper()
	f := Federation(tb)
	v2 := f.SignedManifest(ManifestAll, 2, Countries, Countries...)
	v3 := f.SignedManifest(ManifestNoID, 2, []string{"MY", "TH"}, "MY", "TH")
	f.Manifest = v3
	f.Bundle.Header = audit.Header{
		Node: Node, PeerID: f.Peers[Node], PublicKey: MarshalPub(tb, f.Keys[Node]),
		Manifest: v3, FirstSeq: 1,
		Manifests: []audit.ManifestDoc{{Version: ManifestAll, Document: v2}, {Version: ManifestNoID, Document: v3}},
		Policies:  []audit.PolicyDoc{{Version: 1, Document: f.Policies[1]}},
	}
	f.Add(audit.Entry{Kind: audit.AdminManifest, Records: []string{"ID", "MY", "TH"}, Count: 3, PayloadHash: Hash(v2),
		Actor: "operator (CLI, node stopped)", Reason: "installed manifest imtgt-test version 2"})
	f.Add(audit.Entry{Kind: audit.AdminPolicy, PolicyVersion: 1, Actor: "node", Reason: "policy version 1 installed"})
	f.Add(CatalogEgress("ID", 1, 1, 10))
	f.Add(f.OrderEgressAt(f.NextTime(), audit.StatusEgress, "ID", "ORD-7", 1, 1, "order.id", "order.status", "order.tracking"))
	f.Checkpoint("MY", "ID")
	f.Add(audit.Entry{Kind: audit.AdminManifest, Records: []string{"MY", "TH"}, Count: 2, PayloadHash: Hash(v3),
		Actor: "operator (API)", Reason: "installed manifest imtgt-test version 3"})
	f.Add(CatalogEgress("MY", 1, 1, 10))
	f.Checkpoint("MY")
	f.ReceiptAt(f.Bundle.Entries[3].Time, "ID", "ID", "status", "ORD-7", 1)
	f.Bundle.Header.GeneratedAt = f.Bundle.Entries[len(f.Bundle.Entries)-1].Time.Add(time.Minute)
	return f
}

// NextTime is the time Add gives the next entry.
func (f *Fixture) NextTime() time.Time {
	return Start.Add(time.Duration(len(f.Bundle.Entries)) * time.Minute)
}
