package audit_test

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

// btCountries are the federation's members; btNode is the node whose
// bundle the tests export.
var btCountries = []string{"ID", "MY", "TH"}

const btNode = "TH"

// btStart is the time of the first entry; entries are a minute apart.
var btStart = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

// btFixture is a federation of three nodes with real keys, a signed
// manifest and TH's signed policies, and a bundle of TH's chain that the
// tests break in one place each.
type btFixture struct {
	tb       testing.TB
	keys     map[string]crypto.PrivKey     // node keys by country
	gov      map[string]ed25519.PrivateKey // governance keys by country
	peers    map[string]string             // peer IDs by country
	manifest string                        // the signed manifest YAML
	policies map[uint64]string             // TH's signed policy documents by version
	b        audit.Bundle                  // header and records; lines are not set
	sent     map[string][]byte             // payloads sent, by order ID and kind
}

// btKey returns a new Ed25519 libp2p key and its peer ID.
func btKey(tb testing.TB) (crypto.PrivKey, string) {
	tb.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	require.NoError(tb, err)
	id, err := peer.IDFromPrivateKey(k)
	require.NoError(tb, err)
	return k, id.String()
}

// btFederation builds the keys, the manifest (threshold 2, signed by all)
// and TH's default policy signed as versions 1 and 2.
func btFederation(tb testing.TB) *btFixture {
	tb.Helper()
	f := &btFixture{tb: tb, keys: map[string]crypto.PrivKey{}, gov: map[string]ed25519.PrivateKey{},
		peers: map[string]string{}, policies: map[uint64]string{}, sent: map[string][]byte{}}
	var members []membership.Member
	for i, c := range btCountries {
		f.keys[c], f.peers[c] = btKey(tb)
		_, gk, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(tb, err)
		f.gov[c] = gk
		members = append(members, membership.Member{
			Country: c, Agency: "Agency of " + c, PeerID: f.peers[c],
			Addrs:         []string{fmt.Sprintf("/ip4/192.0.2.%d/tcp/4001", i+1)},
			GovernanceKey: base64.StdEncoding.EncodeToString(gk.Public().(ed25519.PublicKey)),
		})
	}
	m, err := membership.New("imtgt-test", 1, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), 2, members)
	require.NoError(tb, err)
	for _, c := range btCountries {
		require.NoError(tb, membership.Sign(m, c, f.gov[c]))
	}
	raw, err := m.Marshal()
	require.NoError(tb, err)
	f.manifest = string(raw)
	for v := uint64(1); v <= 2; v++ {
		f.policies[v] = f.signedPolicy(btNode, v, f.gov[btNode])
	}
	return f
}

// signedPolicy returns country's default policy as version v, signed by key.
func (f *btFixture) signedPolicy(country string, v uint64, key ed25519.PrivateKey) string {
	f.tb.Helper()
	raw, err := configs.DefaultPolicy(country)
	require.NoError(f.tb, err)
	raw = bytes.Replace(raw, []byte("\nversion: 1\n"), fmt.Appendf(nil, "\nversion: %d\n", v), 1)
	signed, err := policy.Sign(raw, country, key)
	require.NoError(f.tb, err)
	return string(signed)
}

// btNewFixture returns the federation and TH's bundle:
//
//	1 admin.manifest       6 receipt.ingress from MY
//	2 admin.policy v1      7 rejection of ID
//	3 catalog.egress → MY  — checkpoint at 7, witnessed by MY and ID
//	4 catalog.ingress ← ID 8 admin.policy v2
//	5 handoff.egress → MY  9 status.egress → MY
//	                       10 catalog.egress → ID
//
// then bulk more catalog entries (with a witnessed checkpoint every 1000)
// and a final checkpoint the node signs alone; the receipts of 5 and 9
// close it. Lines: header 1, entry n on line n+1.
func btNewFixture(tb testing.TB, bulk int) *btFixture {
	tb.Helper()
	f := btFederation(tb)
	f.b.Header = audit.Header{
		Node: btNode, PeerID: f.peers[btNode], PublicKey: btMarshalPub(tb, f.keys[btNode]),
		Manifest: f.manifest, FirstSeq: 1,
		Policies:    []audit.PolicyDoc{{Version: 1, Document: f.policies[1]}, {Version: 2, Document: f.policies[2]}},
		GeneratedAt: btStart.Add(24 * time.Hour),
	}
	f.add(audit.Entry{Kind: audit.AdminManifest, Actor: "operator:tok-1", Reason: "manifest imtgt-test version 1 installed"})
	f.add(audit.Entry{Kind: audit.AdminPolicy, PolicyVersion: 1, Actor: "node", Reason: "policy version 1 installed"})
	f.add(btCatalogEgress("MY", 1, 1, 10))
	f.add(audit.Entry{Kind: audit.CatalogIngress, Peer: "ID", PeerID: f.peers["ID"], Purpose: "catalog",
		Records: []string{"ID#1-4"}, Count: 4, Fields: []string{"listing.id", "listing.title"}, PayloadHash: btHash("ID#1-4")})
	f.add(f.orderEgress(audit.HandoffEgress, "MY", "ORD-1", 1, 1,
		"buyer.name", "buyer.phone", "buyer.address.line1", "buyer.address.city", "order.id", "order.items", "order.quote"))
	f.add(audit.Entry{Kind: audit.ReceiptIngress, Peer: "MY", PeerID: f.peers["MY"], Records: []string{"ORD-1"},
		ReceiptHash: f.b.Entries[4].ReceiptHash})
	f.add(audit.Entry{Kind: audit.Rejection, Peer: "ID", PeerID: f.peers["ID"], Reason: "policy: listing ID-9 has no HS code"})
	f.checkpoint("MY", "ID")
	f.add(audit.Entry{Kind: audit.AdminPolicy, PolicyVersion: 2, Actor: "operator:tok-1", Reason: "policy version 2 installed"})
	f.add(f.orderEgress(audit.StatusEgress, "MY", "ORD-1", 2, 2, "order.id", "order.status", "order.tracking"))
	f.add(btCatalogEgress("ID", 2, 11, 20))
	for i := range bulk {
		if i%2 == 0 {
			f.add(btCatalogEgress("MY", 2, uint64(21+i), uint64(21+i)))
		} else {
			f.add(audit.Entry{Kind: audit.CatalogIngress, Peer: "MY", PeerID: f.peers["MY"], Purpose: "catalog",
				Records: []string{fmt.Sprintf("MY#%d-%d", i, i)}, Count: 1,
				Fields: []string{"listing.id", "listing.title", "listing.price"}, PayloadHash: btHash(fmt.Sprint(i))})
		}
		if (i+1)%1000 == 0 {
			f.checkpoint("MY")
		}
	}
	f.checkpoint()
	f.receipt("MY", "MY", "handoff", "ORD-1", 1)
	f.receipt("MY", "MY", "status", "ORD-1", 2)
	return f
}

func btMarshalPub(tb testing.TB, k crypto.PrivKey) []byte {
	tb.Helper()
	b, err := crypto.MarshalPublicKey(k.GetPublic())
	require.NoError(tb, err)
	return b
}

func btHash(s string) string { return audit.HashHex([]byte(s)) }

// btCatalogEgress is log records from..to served to peer under policy v.
func btCatalogEgress(peer string, v, from, to uint64) audit.Entry {
	r := fmt.Sprintf("TH#%d-%d", from, to)
	return audit.Entry{Kind: audit.CatalogEgress, Peer: peer, Purpose: "catalog", Records: []string{r}, Count: int(to - from + 1),
		Fields:        []string{"listing.id", "listing.title", "listing.price", "listing.hs_code", "listing.seller.legal_name"},
		PolicyVersion: v, Rules: []string{"TH-TR-CATALOG"}, LegalBasis: "not_personal", PayloadHash: btHash(r), Actor: "node"}
}

// orderEgress is an order message to peer; its receipt (made by receipt)
// is sealed now so that the entry can carry its hash.
func (f *btFixture) orderEgress(kind audit.Kind, peer, order string, seq, v uint64, fields ...string) audit.Entry {
	payload := fmt.Appendf(nil, "%s %s seq %d", kind, order, seq)
	k := "handoff"
	purpose := "order_handoff"
	if kind == audit.StatusEgress {
		k, purpose = "status", "order_status"
	}
	f.sent[order+k] = payload
	env := f.seal(peer, peer, k, order, seq)
	return audit.Entry{Kind: kind, Peer: peer, PeerID: f.peers[peer], Purpose: purpose, Records: []string{order}, Count: 1,
		Fields: fields, PolicyVersion: v, Rules: []string{"TH-TR-ORDER"}, LegalBasis: "contract_necessity",
		PayloadHash: audit.HashHex(payload), ReceiptHash: audit.HashHex(env), Actor: "node"}
}

// seal returns the receipt receiver gives for order's message, signed
// with signer's key. Sealing is deterministic (Ed25519, deterministic
// protobuf), so the same call gives the same bytes.
func (f *btFixture) seal(signer, receiver, kind, order string, seq uint64) []byte {
	f.tb.Helper()
	h := sha256.Sum256(f.sent[order+kind])
	env, err := federation.SealReceipt(f.keys[signer], &pb.Receipt{OrderId: order, Kind: kind, Seq: seq, PayloadHash: h[:],
		Receiver: receiver, ReceivedUnixMs: btStart.UnixMilli(), Result: "received", Status: "accepted"})
	require.NoError(f.tb, err)
	return env
}

func (f *btFixture) receipt(signer, from, kind, order string, seq uint64) {
	f.b.Receipts = append(f.b.Receipts, audit.Receipt{From: from, OrderID: order, Kind: kind, Seq: seq,
		Envelope: f.seal(signer, from, kind, order, seq)})
}

// add links e after the last entry and appends it.
func (f *btFixture) add(e audit.Entry) {
	var seq uint64
	var prev string
	if n := len(f.b.Entries); n > 0 {
		seq, prev = f.b.Entries[n-1].Seq, f.b.Entries[n-1].Hash
	}
	e.Time = btStart.Add(time.Duration(seq) * time.Minute)
	e.Link(seq, prev)
	f.b.Entries = append(f.b.Entries, e)
}

// checkpoint signs the head with the node key, countersigned by witnesses.
func (f *btFixture) checkpoint(witnesses ...string) {
	f.tb.Helper()
	last := f.b.Entries[len(f.b.Entries)-1]
	c := audit.Checkpoint{Node: btNode, Seq: last.Seq, Head: last.Hash, Time: last.Time.Add(time.Second)}
	require.NoError(f.tb, audit.SignCheckpoint(f.keys[btNode], &c))
	for _, w := range witnesses {
		wt, err := audit.Countersign(f.keys[w], w, &c, c.Time.Add(time.Second))
		require.NoError(f.tb, err)
		c.Witnesses = append(c.Witnesses, wt)
	}
	f.b.Checkpoints = append(f.b.Checkpoints, c)
}

// encode writes the bundle with BundleWriter.
func (f *btFixture) encode() []byte {
	f.tb.Helper()
	var buf bytes.Buffer
	w, err := audit.NewBundleWriter(&buf, f.b.Header)
	require.NoError(f.tb, err)
	for i := range f.b.Entries {
		require.NoError(f.tb, w.Entry(&f.b.Entries[i]))
	}
	for i := range f.b.Checkpoints {
		require.NoError(f.tb, w.Checkpoint(&f.b.Checkpoints[i]))
	}
	for i := range f.b.Receipts {
		require.NoError(f.tb, w.Receipt(&f.b.Receipts[i]))
	}
	require.NoError(f.tb, w.Close())
	return buf.Bytes()
}

// lines returns the encoded bundle's lines, without their newlines.
func (f *btFixture) lines() []string {
	return strings.Split(strings.TrimSuffix(string(f.encode()), "\n"), "\n")
}

// btJoin is the bundle of lines.
func btJoin(lines []string) []byte { return []byte(strings.Join(lines, "\n") + "\n") }

// btShort is the first 12 hex digits of a hash, as errors print them.
func btShort(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
