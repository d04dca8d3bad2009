package federation

// The test vectors of docs/PROTOCOL.md 6.10, checked against the code:
// an implementer builds the same bytes from the document, and a change of
// the wire format that the document does not follow fails here.

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/imtgt/imtgt-node/federation/pb"
)

// vectorKey is the Ed25519 key of seed hex s, as a node key.
func vectorKey(t *testing.T, s string) crypto.PrivKey {
	t.Helper()
	seed, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func vectorHex(t *testing.T, m proto.Message) string {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func sha256Hex(t *testing.T, m proto.Message) string {
	t.Helper()
	b, _ := hex.DecodeString(vectorHex(t, m))
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

const (
	vectorSellerSeed = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" // section 4.5's key
	vectorBuyerSeed  = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	vectorOpenIssue  = `{"id":"iss_01JGZ5Q6V0ABCDEFGHJKMNPQRT","order_id":"ord_01JGZ5Q6V0ABCDEFGHJKMNPQRS","marketplace_id":"mkt_01JGZ5Q6V0ABCDEFGHJKMNPQRX",` +
		`"buyer_country":"MY","seller_country":"TH","seller_id":"sel_01JGZ5Q6V0ABCDEFGHJKMNPQRV","category":"damaged",` +
		`"description":"The bag arrived torn.","items":[{"listing_id":"lst_01JGZ5Q6V0ABCDEFGHJKMNPQRW","quantity":1}],` +
		`"remedy_requested":"refund","status":"open","respond_by":"2026-01-04T00:00:00Z","resolve_by":"2026-01-31T00:00:00Z",` +
		`"responses":null,"refunds":null,"history":[{"status":"open","at":"2026-01-01T00:00:00Z","by":"marketplace"}],` +
		`"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}`
	vectorRespondInput = `{"action":"accept","remedy":{"kind":"refund","amount":{"amount":"10.00","currency":"MYR"}}}`
)

// protocolVectors computes every named value of section 6.10's vectors.
func protocolVectors(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	seller, buyer := vectorKey(t, vectorSellerSeed), vectorKey(t, vectorBuyerSeed)
	for name, k := range map[string]crypto.PrivKey{"seller": seller, "buyer": buyer} {
		pub, _ := k.GetPublic().Raw()
		id, err := peer.IDFromPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		out["key."+name+".public"] = hex.EncodeToString(pub)
		out["key."+name+".peer_id"] = id.String()
	}
	out["key.seller.seed"], out["key.buyer.seed"] = vectorSellerSeed, vectorBuyerSeed

	// The buyer's node (MY) opens an issue: the issue as it holds it.
	open := &pb.IssueMessage{OrderId: "ord_01JGZ5Q6V0ABCDEFGHJKMNPQRS", Seq: 1, IssueId: "iss_01JGZ5Q6V0ABCDEFGHJKMNPQRT",
		Event: "open", Actor: "marketplace", AtUnixMs: 1767225600000, BasedOn: 0, Issue: []byte(vectorOpenIssue)}
	out["open.payload"] = vectorHex(t, open)
	out["open.payload_hash"] = sha256Hex(t, open)

	// The seller's node (TH) answers: its event and the version it acted on.
	respond := &pb.IssueMessage{OrderId: "ord_01JGZ5Q6V0ABCDEFGHJKMNPQRS", Seq: 4, IssueId: "iss_01JGZ5Q6V0ABCDEFGHJKMNPQRT",
		Event: "respond", Actor: "seller", AtUnixMs: 1767229200000, BasedOn: 1, Input: []byte(vectorRespondInput)}
	out["respond.payload"] = vectorHex(t, respond)
	out["respond.payload_hash"] = sha256Hex(t, respond)
	id, _ := hex.DecodeString("102132435465768798a9bacbdcedfe0f")
	msg := &pb.Message{Id: id, CreatedUnixMs: 1767229200000, ExpiresUnixMs: 1767229230000, Federation: "imtgt", ManifestVersion: 3,
		Body: &pb.Message_IssueMessage{IssueMessage: respond}}
	out["respond.message"] = vectorHex(t, msg)
	env, err := sealProto(seller, MessageDomain, messageCodec, msg)
	if err != nil {
		t.Fatal(err)
	}
	out["respond.envelope"] = hex.EncodeToString(env)

	// MY's receipt of it.
	hash, _ := hex.DecodeString(out["respond.payload_hash"])
	rc := &pb.Receipt{OrderId: "ord_01JGZ5Q6V0ABCDEFGHJKMNPQRS", Kind: "issue", Seq: 4, PayloadHash: hash, Receiver: "MY",
		ReceivedUnixMs: 1767229201000, Result: "applied", Status: "accepted"}
	out["receipt.payload"] = vectorHex(t, rc)
	renv, err := SealReceipt(buyer, rc)
	if err != nil {
		t.Fatal(err)
	}
	out["receipt.envelope"] = hex.EncodeToString(renv)
	return out
}

// docVectors reads the `name = value` lines of the code blocks of section
// 6.10 of docs/PROTOCOL.md, and its json block.
func docVectors(t *testing.T) (vals map[string]string, jsonBlock string) {
	t.Helper()
	b, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "\n### 6.10 ")
	if start < 0 {
		t.Fatal("docs/PROTOCOL.md has no section 6.10")
	}
	doc = doc[start:]
	if end := strings.Index(doc, "\n## 7."); end > 0 {
		doc = doc[:end]
	}
	line := regexp.MustCompile(`^([a-z_]+(?:\.[a-z_]+)+) +=(?: +(\S+))?$`)
	more := regexp.MustCompile(`^[0-9a-f]+$`)
	vals = map[string]string{}
	var inBlock, inJSON bool
	last := "" // a long hex value continues on the lines after its name
	var js strings.Builder
	sc := bufio.NewScanner(strings.NewReader(doc))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "```"):
			last = ""
			inJSON = !inBlock && strings.TrimPrefix(l, "```") == "json"
			inBlock = !inBlock
			continue
		case inJSON:
			js.WriteString(l + "\n")
		case inBlock:
			switch l = strings.TrimSpace(l); {
			case line.MatchString(l):
				m := line.FindStringSubmatch(l)
				last, vals[m[1]] = m[1], m[2]
			case last != "" && more.MatchString(l):
				vals[last] += l
			default:
				last = ""
			}
		}
	}
	return vals, js.String()
}

func TestProtocolVectors(t *testing.T) {
	want := protocolVectors(t)
	got, js := docVectors(t)
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
	}) {
		if got[name] != want[name] {
			t.Errorf("docs/PROTOCOL.md 6.10: %s is %q; the code gives:\n%s = %s", name, got[name], name, want[name])
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("docs/PROTOCOL.md 6.10 names %s, which this test does not check", name)
		}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(js)); err != nil {
		t.Fatalf("the json block of 6.10: %v", err)
	}
	if compact.String() != vectorOpenIssue {
		t.Errorf("the json block of 6.10 is not the open vector's issue:\n%s\nwant\n%s", compact.String(), vectorOpenIssue)
	}

	// The vectors are real messages: the envelope opens with the seller's
	// key, the receipt with the buyer's, and the hash is the receipt's.
	env, _ := hex.DecodeString(want["respond.envelope"])
	m := &pb.Message{}
	signer, err := openProto(env, MessageDomain, messageCodec, m)
	if err != nil || signer.String() != want["key.seller.peer_id"] {
		t.Fatalf("respond envelope: signer %s, %v", signer, err)
	}
	renv, _ := hex.DecodeString(want["receipt.envelope"])
	rc, rsigner, err := OpenReceipt(renv)
	if err != nil || rsigner.String() != want["key.buyer.peer_id"] || hex.EncodeToString(rc.PayloadHash) != want["respond.payload_hash"] {
		t.Fatalf("receipt: %v %s %v", rc, rsigner, err)
	}
}
