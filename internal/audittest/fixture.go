package audittest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/configs"
	"github.com/imtgt/imtgt-node/federation"
	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/membership"
	"github.com/imtgt/imtgt-node/policy"
)

// Countries are the federation's members; Node is the node whose bundle
// the tests export.
var Countries = []string{"ID", "MY", "TH"}

const Node = "TH"

// Start is the time of the first entry; entries are a minute apart.
var Start = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

// Fixture is a federation of three nodes with real keys, a signed
// manifest and TH's signed policies, and a bundle of TH's chain that the
// tests break in one place each.
type Fixture struct {
	TB       testing.TB
	Keys     map[string]crypto.PrivKey     // node keys by country
	Gov      map[string]ed25519.PrivateKey // governance keys by country
	Peers    map[string]string             // peer IDs by country
	Members  map[string]membership.Member  // members by country
	Manifest string                        // the signed manifest YAML (version 1, every country)
	Policies map[uint64]string             // TH's signed policy documents by version
	Bundle   audit.Bundle                  // header and records; lines are not set
	Sent     map[string][]byte             // payloads sent, by order ID and kind
}

// Key returns a new Ed25519 libp2p key and its peer ID.
func Key(tb testing.TB) (crypto.PrivKey, string) {
	tb.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	require.NoError(tb, err)
	id, err := peer.IDFromPrivateKey(k)
	require.NoError(tb, err)
	return k, id.String()
}

// Federation builds the keys, the manifest (threshold 2, signed by all)
// and TH's default policy signed as versions 1 and 2.
func Federation(tb testing.TB) *Fixture {
	tb.Helper()
	f := &Fixture{TB: tb, Keys: map[string]crypto.PrivKey{}, Gov: map[string]ed25519.PrivateKey{},
		Peers: map[string]string{}, Members: map[string]membership.Member{}, Policies: map[uint64]string{}, Sent: map[string][]byte{}}
	for i, c := range Countries {
		f.Keys[c], f.Peers[c] = Key(tb)
		_, gk, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(tb, err)
		f.Gov[c] = gk
		f.Members[c] = membership.Member{
			Country: c, Agency: "Agency of " + c, PeerID: f.Peers[c],
			Addrs:         []string{fmt.Sprintf("/ip4/192.0.2.%d/tcp/4001", i+1)},
			GovernanceKey: base64.StdEncoding.EncodeToString(gk.Public().(ed25519.PublicKey)),
		}
	}
	f.Manifest = f.SignedManifest(1, 2, Countries, Countries...)
	for v := uint64(1); v <= 2; v++ {
		f.Policies[v] = f.SignedPolicy(Node, v, f.Gov[Node])
	}
	return f
}

// SignedManifest returns manifest version v of the members, with
// threshold k, signed by the signers' governance keys.
func (f *Fixture) SignedManifest(v uint64, k int, members []string, signers ...string) string {
	f.TB.Helper()
	var ms []membership.Member
	for _, c := range members {
		ms = append(ms, f.Members[c])
	}
	m, err := membership.New("imtgt-test", v, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), k, ms)
	require.NoError(f.TB, err)
	for _, c := range signers {
		require.NoError(f.TB, membership.Sign(m, c, f.Gov[c]))
	}
	raw, err := m.Marshal()
	require.NoError(f.TB, err)
	return string(raw)
}

// SignedPolicy returns country's default policy as version v, signed by key.
func (f *Fixture) SignedPolicy(country string, v uint64, key ed25519.PrivateKey) string {
	f.TB.Helper()
	raw, err := configs.DefaultPolicy(country)
	require.NoError(f.TB, err)
	raw = bytes.Replace(raw, []byte("\nversion: 1\n"), fmt.Appendf(nil, "\nversion: %d\n", v), 1)
	signed, err := policy.Sign(raw, country, key)
	require.NoError(f.TB, err)
	return string(signed)
}

// NewFixture returns the federation and TH's bundle:
//
//	1 admin.manifest       6 receipt.ingress from MY
//	2 admin.policy v1      7 rejection of ID
//	3 catalog.egress → MY  — checkpoint at 7, witnessed by MY and ID
//	4 catalog.ingress ← ID 8 admin.policy v2
//	5 handoff.egress → MY  9 status.egress → MY
//	                       10 catalog.egress → ID
//
// then bulk more catalog entries (with a witnessed checkpoint every 1000
// and 5 before the end) and a final checkpoint the node signs alone; the receipts of 5 and 9
// close it. Lines: header 1, entry n on line n+1.
func NewFixture(tb testing.TB, bulk int) *Fixture {
	tb.Helper()
	f := Federation(tb)
	f.Bundle.Header = audit.Header{
		Node: Node, PeerID: f.Peers[Node], PublicKey: MarshalPub(tb, f.Keys[Node]),
		Manifest: f.Manifest, FirstSeq: 1, Manifests: []audit.ManifestDoc{{Version: 1, Document: f.Manifest}},
		Policies: []audit.PolicyDoc{{Version: 1, Document: f.Policies[1]}, {Version: 2, Document: f.Policies[2]}},
	}
	f.Add(audit.Entry{Kind: audit.AdminManifest, Actor: "operator:tok-1", PayloadHash: Hash(f.Manifest), Reason: "manifest imtgt-test version 1 installed"})
	f.Add(audit.Entry{Kind: audit.AdminPolicy, PolicyVersion: 1, Actor: "node", Reason: "policy version 1 installed"})
	f.Add(CatalogEgress("MY", 1, 1, 10))
	f.Add(audit.Entry{Kind: audit.CatalogIngress, Peer: "ID", PeerID: f.Peers["ID"], Purpose: "catalog",
		Records: []string{"ID#1-4"}, Count: 4, Fields: []string{"listing.id", "listing.title"}, PayloadHash: Hash("ID#1-4")})
	f.Add(f.OrderEgress(audit.HandoffEgress, "MY", "ORD-1", 1, 1,
		"buyer.name", "buyer.phone", "buyer.address.line1", "buyer.address.city", "order.id", "order.items", "order.quote"))
	f.Add(audit.Entry{Kind: audit.ReceiptIngress, Peer: "MY", PeerID: f.Peers["MY"], Records: []string{"ORD-1"},
		ReceiptHash: f.Bundle.Entries[4].ReceiptHash})
	f.Add(audit.Entry{Kind: audit.Rejection, Peer: "ID", PeerID: f.Peers["ID"], Reason: "policy: listing ID-9 has no HS code"})
	f.Checkpoint("MY", "ID")
	f.Add(audit.Entry{Kind: audit.AdminPolicy, PolicyVersion: 2, Actor: "operator:tok-1", Reason: "policy version 2 installed"})
	f.Add(f.OrderEgress(audit.StatusEgress, "MY", "ORD-1", 2, 2, "order.id", "order.status", "order.tracking"))
	f.Add(CatalogEgress("ID", 2, 11, 20))
	for i := range bulk {
		if i%2 == 0 {
			f.Add(CatalogEgress("MY", 2, uint64(21+i), uint64(21+i)))
		} else {
			f.Add(audit.Entry{Kind: audit.CatalogIngress, Peer: "MY", PeerID: f.Peers["MY"], Purpose: "catalog",
				Records: []string{fmt.Sprintf("MY#%d-%d", i, i)}, Count: 1,
				Fields: []string{"listing.id", "listing.title", "listing.price"}, PayloadHash: Hash(fmt.Sprint(i))})
		}
		// Entries are a minute apart here, while a node's peers
		// countersign every few seconds: the bulk's last witnessed
		// checkpoint leaves a tail of 5 entries (minutes) to the final
		// one, within the verifier's window for unwitnessed history.
		if (i+1)%1000 == 0 || i == bulk-5 {
			f.Checkpoint("MY")
		}
	}
	f.Checkpoint()
	f.Receipt("MY", "MY", "handoff", "ORD-1", 1)
	f.Receipt("MY", "MY", "status", "ORD-1", 2)
	// Exported a minute after its last entry, as a node exports at once.
	f.Bundle.Header.GeneratedAt = f.Bundle.Entries[len(f.Bundle.Entries)-1].Time.Add(time.Minute)
	return f
}

// MarshalPub returns k's public key in libp2p's encoding, as the bundle
// header holds it.
func MarshalPub(tb testing.TB, k crypto.PrivKey) []byte {
	tb.Helper()
	b, err := crypto.MarshalPublicKey(k.GetPublic())
	require.NoError(tb, err)
	return b
}

// Hash is the hex hash of s, as entries carry payload hashes.
func Hash(s string) string { return audit.HashHex([]byte(s)) }

// CatalogEgress is log records from..to served to peer under policy v.
func CatalogEgress(peer string, v, from, to uint64) audit.Entry {
	r := fmt.Sprintf("TH#%d-%d", from, to)
	return audit.Entry{Kind: audit.CatalogEgress, Peer: peer, Purpose: "catalog", Records: []string{r}, Count: int(to - from + 1),
		Fields:        []string{"listing.id", "listing.title", "listing.price", "listing.hs_code", "listing.seller.legal_name"},
		PolicyVersion: v, Rules: []string{"TH-TR-CATALOG"}, LegalBasis: "not_personal", PayloadHash: Hash(r), Actor: "node"}
}

// OrderEgress is an order message to peer; its receipt (made by Receipt)
// is sealed now so that the entry can carry its hash.
func (f *Fixture) OrderEgress(kind audit.Kind, peer, order string, seq, v uint64, fields ...string) audit.Entry {
	return f.OrderEgressAt(Start, kind, peer, order, seq, v, fields...)
}

// OrderEgressAt is OrderEgress with a receipt received at time at (made
// by ReceiptAt with the same time).
func (f *Fixture) OrderEgressAt(at time.Time, kind audit.Kind, peer, order string, seq, v uint64, fields ...string) audit.Entry {
	payload := fmt.Appendf(nil, "%s %s seq %d", kind, order, seq)
	k := "handoff"
	purpose := "order_handoff"
	if kind == audit.StatusEgress {
		k, purpose = "status", "order_status"
	}
	f.Sent[order+k] = payload
	env := f.SealAt(at, peer, peer, k, order, seq)
	return audit.Entry{Kind: kind, Peer: peer, PeerID: f.Peers[peer], Purpose: purpose, Records: []string{order}, Count: 1,
		Fields: fields, PolicyVersion: v, Rules: []string{"TH-TR-ORDER"}, LegalBasis: "contract_necessity",
		PayloadHash: audit.HashHex(payload), ReceiptHash: audit.HashHex(env), Actor: "node"}
}

// Seal returns the receipt receiver gives for order's message, signed
// with signer's key. Sealing is deterministic (Ed25519, deterministic
// protobuf), so the same call gives the same bytes.
func (f *Fixture) Seal(signer, receiver, kind, order string, seq uint64) []byte {
	return f.SealAt(Start, signer, receiver, kind, order, seq)
}

// SealAt is Seal for a receipt received at time at.
func (f *Fixture) SealAt(at time.Time, signer, receiver, kind, order string, seq uint64) []byte {
	f.TB.Helper()
	h := sha256.Sum256(f.Sent[order+kind])
	env, err := federation.SealReceipt(f.Keys[signer], &pb.Receipt{OrderId: order, Kind: kind, Seq: seq, PayloadHash: h[:],
		Receiver: receiver, ReceivedUnixMs: at.UnixMilli(), Result: "received", Status: "accepted"})
	require.NoError(f.TB, err)
	return env
}

// Receipt appends to the bundle the receipt from gives for order's
// message, signed with signer's key.
func (f *Fixture) Receipt(signer, from, kind, order string, seq uint64) {
	f.ReceiptAt(Start, signer, from, kind, order, seq)
}

// ReceiptAt is Receipt for a receipt received at time at.
func (f *Fixture) ReceiptAt(at time.Time, signer, from, kind, order string, seq uint64) {
	f.Bundle.Receipts = append(f.Bundle.Receipts, audit.Receipt{From: from, OrderID: order, Kind: kind, Seq: seq,
		Envelope: f.SealAt(at, signer, from, kind, order, seq)})
}

// Add links e after the last entry and appends it.
func (f *Fixture) Add(e audit.Entry) {
	var seq uint64
	var prev string
	if n := len(f.Bundle.Entries); n > 0 {
		seq, prev = f.Bundle.Entries[n-1].Seq, f.Bundle.Entries[n-1].Hash
	}
	e.Time = Start.Add(time.Duration(seq) * time.Minute)
	e.Link(seq, prev)
	f.Bundle.Entries = append(f.Bundle.Entries, e)
}

// Checkpoint signs the head with the node key, countersigned by witnesses.
func (f *Fixture) Checkpoint(witnesses ...string) {
	f.TB.Helper()
	last := f.Bundle.Entries[len(f.Bundle.Entries)-1]
	c := audit.Checkpoint{Node: Node, Seq: last.Seq, Head: last.Hash, Time: last.Time.Add(time.Second)}
	require.NoError(f.TB, audit.SignCheckpoint(f.Keys[Node], &c))
	for _, w := range witnesses {
		wt, err := audit.Countersign(f.Keys[w], w, &c, c.Time.Add(time.Second))
		require.NoError(f.TB, err)
		c.Witnesses = append(c.Witnesses, wt)
	}
	f.Bundle.Checkpoints = append(f.Bundle.Checkpoints, c)
}

// Encode writes the bundle with BundleWriter.
func (f *Fixture) Encode() []byte {
	f.TB.Helper()
	var buf bytes.Buffer
	w, err := audit.NewBundleWriter(&buf, f.Bundle.Header)
	require.NoError(f.TB, err)
	for i := range f.Bundle.Entries {
		require.NoError(f.TB, w.Entry(&f.Bundle.Entries[i]))
	}
	for i := range f.Bundle.Checkpoints {
		require.NoError(f.TB, w.Checkpoint(&f.Bundle.Checkpoints[i]))
	}
	for i := range f.Bundle.Receipts {
		require.NoError(f.TB, w.Receipt(&f.Bundle.Receipts[i]))
	}
	require.NoError(f.TB, w.Close())
	return buf.Bytes()
}

// Lines returns the encoded bundle's lines, without their newlines.
func (f *Fixture) Lines() []string {
	return strings.Split(strings.TrimSuffix(string(f.Encode()), "\n"), "\n")
}

// Join is the bundle of lines.
func Join(lines []string) []byte { return []byte(strings.Join(lines, "\n") + "\n") }
