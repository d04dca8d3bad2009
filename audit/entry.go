package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind says what an entry records.
type Kind string

// Entry kinds. Crossings are "<what>.egress" or "<what>.ingress"; admin
// acts start with "admin.". A kind filter "admin" matches every admin act,
// "order" every order message, and so on (see Kind.Matches).
const (
	CatalogEgress  Kind = "catalog.egress"  // log records served to a peer
	CatalogIngress Kind = "catalog.ingress" // log records pulled from a peer and stored
	HandoffEgress  Kind = "order.handoff.egress"
	HandoffIngress Kind = "order.handoff.ingress"
	StatusEgress   Kind = "order.status.egress"
	StatusIngress  Kind = "order.status.ingress"
	ReceiptEgress  Kind = "receipt.egress"  // a receipt this node signed and returned
	ReceiptIngress Kind = "receipt.ingress" // a peer's receipt this node verified and kept
	Rejection      Kind = "rejection"       // a message, peer or record refused
	// PeerPolicy: a member's signed policy file received and stored
	// (federation/policy.go). An ingress, not an admin act: the file
	// crossed from that member; no operator of this node installed it.
	PeerPolicy Kind = "policy.ingress"
	// An after-sale issue's change crossing to or from the other side's
	// node (purpose "issue"), and a step of an issue taken on this node
	// (opened, a response, an escalation, a decision, a refund). A step's
	// Records are the issue and order IDs and its Reason is key=value pairs
	// (event, category, status, remedy, outcome, refund, respond, resolve:
	// met or missed), never what the buyer or seller wrote.
	IssueEgress  Kind = "issue.egress"
	IssueIngress Kind = "issue.ingress"
	IssueStep    Kind = "issue.step"

	AdminSeller   Kind = "admin.seller"   // seller registered, approved, suspended
	AdminToken    Kind = "admin.token"    // a token created (marketplace, auditor, seller)
	AdminManifest Kind = "admin.manifest" // a federation manifest installed
	AdminPolicy   Kind = "admin.policy"   // a signed policy installed
	AdminBackup   Kind = "admin.backup"   // a backup taken
	AdminRestore  Kind = "admin.restore"  // a backup restored
	AdminStore    Kind = "admin.store"    // the store moved to another backend (store migrate)
	// AdminReconcile: a step of the reconciliation with the peers after a
	// restore (own catalog records taken back, orders recovered, done).
	AdminReconcile Kind = "admin.reconcile"
)

// PurposeRelay is the purpose of catalog records of another origin that
// this node passes on as their origin signed them: no data of this
// country crosses.
const PurposeRelay = "catalog_relay"

// Egress reports whether the kind records data leaving this node.
func (k Kind) Egress() bool { return strings.HasSuffix(string(k), ".egress") }

// Ingress reports whether the kind records data arriving at this node.
func (k Kind) Ingress() bool { return strings.HasSuffix(string(k), ".ingress") }

// Matches reports whether the kind is filter or under it ("admin" matches
// "admin.policy"). An empty filter matches every kind.
func (k Kind) Matches(filter string) bool {
	return filter == "" || string(k) == filter || strings.HasPrefix(string(k), filter+".")
}

// Entry is one link of the chain. Fields names the fields that crossed as
// "<record kind>.<field path>" (listing.title, buyer.name, order.items),
// the form policy transfer rules use, never their values.
type Entry struct {
	Seq           uint64    `json:"seq"`
	Time          time.Time `json:"time"`
	Kind          Kind      `json:"kind"`
	Peer          string    `json:"peer,omitempty"`    // the other member's country
	PeerID        string    `json:"peer_id,omitempty"` // its libp2p peer ID, when known
	Purpose       string    `json:"purpose,omitempty"` // policy purpose of a crossing
	Records       []string  `json:"records,omitempty"` // record IDs: listing or order IDs, or origin#from-to log ranges
	Count         int       `json:"count,omitempty"`   // records covered (a log range counts each record)
	Fields        []string  `json:"fields,omitempty"`
	PolicyVersion uint64    `json:"policy_version,omitempty"` // the policy in force that allowed it
	Rules         []string  `json:"rules,omitempty"`          // the rule IDs that allowed it
	LegalBasis    string    `json:"legal_basis,omitempty"`
	PayloadHash   string    `json:"payload_hash,omitempty"` // hex SHA-256 of the exact bytes sent or received
	ReceiptHash   string    `json:"receipt_hash,omitempty"` // hex SHA-256 of the receipt envelope, for messages that have one
	Actor         string    `json:"actor,omitempty"`        // who acted: a role and token ID, or "node"
	Reason        string    `json:"reason,omitempty"`       // why a rejection; what an admin act did
	Prev          string    `json:"prev"`                   // hex hash of the previous entry ("" for the first)
	Hash          string    `json:"hash"`                   // hex SHA-256 of this entry's canonical bytes
}

// ErrChain means an entry does not follow its predecessor or its hash does
// not match its content.
var ErrChain = errors.New("audit chain broken")

// HashHex returns the hex SHA-256 of b, the form entries hold hashes in.
func HashHex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Canonical returns the bytes an entry's hash covers: every field but
// Hash, each length-prefixed, in a fixed order. Binary rather than JSON so
// that a verifier's hash does not depend on how a bundle was formatted,
// and so that checking is cheap.
func (e *Entry) Canonical() []byte {
	b := make([]byte, 0, 256)
	b = append(b, canonicalDomain...)
	return e.appendFields(b, appendStr)
}

// appendFields appends every field of e but Hash, in the order the
// canonical and the stored forms share, to b: Seq and Time as 8 bytes
// big-endian, Count as a uvarint, PolicyVersion as 8 bytes, strings and
// lists length-prefixed (uvarint), and the three hex hashes (PayloadHash,
// ReceiptHash, Prev) as hash writes them.
func (e *Entry) appendFields(b []byte, hash func([]byte, string) []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, e.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixNano()))
	b = appendStr(b, string(e.Kind))
	b = appendStr(b, e.Peer)
	b = appendStr(b, e.PeerID)
	b = appendStr(b, e.Purpose)
	b = appendList(b, e.Records)
	b = binary.AppendUvarint(b, uint64(e.Count))
	b = appendList(b, e.Fields)
	b = binary.BigEndian.AppendUint64(b, e.PolicyVersion)
	b = appendList(b, e.Rules)
	b = appendStr(b, e.LegalBasis)
	b = hash(b, e.PayloadHash)
	b = hash(b, e.ReceiptHash)
	b = appendStr(b, e.Actor)
	b = appendStr(b, e.Reason)
	return hash(b, e.Prev)
}

// appendList appends the number of strings in l as a uvarint, then each
// as appendStr (checkpoint.go) writes it.
func appendList(b []byte, l []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(l)))
	for _, s := range l {
		b = appendStr(b, s)
	}
	return b
}

// appendRawHash is the stored form of a hash: 1 and the 32 raw bytes when
// s is lowercase hex of a SHA-256, else 0 and s as appendStr writes it.
func appendRawHash(b []byte, s string) []byte {
	if raw, err := hex.DecodeString(s); err == nil && len(raw) == sha256.Size && hex.EncodeToString(raw) == s {
		b = append(b, 1)
		return append(b, raw...)
	}
	b = append(b, 0)
	return appendStr(b, s)
}

// ComputeHash returns the hash the entry should carry.
func (e *Entry) ComputeHash() string {
	h := sha256.Sum256(e.Canonical())
	return hex.EncodeToString(h[:])
}

// Link sets the entry's sequence number, previous hash and hash, making it
// the successor of an entry with seq prevSeq and hash prevHash (0 and ""
// for the first entry). Time is normalised to UTC.
func (e *Entry) Link(prevSeq uint64, prevHash string) {
	e.Seq = prevSeq + 1
	e.Prev = prevHash
	e.Time = e.Time.UTC()
	e.Hash = e.ComputeHash()
}

// Follows checks that e is the intact successor of prevSeq/prevHash.
func (e *Entry) Follows(prevSeq uint64, prevHash string) error {
	switch {
	case e.Seq != prevSeq+1:
		return fmt.Errorf("%w: entry %d follows entry %d", ErrChain, e.Seq, prevSeq)
	case e.Prev != prevHash:
		return fmt.Errorf("%w: entry %d does not link to entry %d (prev %.12s…, want %.12s…)", ErrChain, e.Seq, prevSeq, e.Prev, prevHash)
	case e.Hash != e.ComputeHash():
		return fmt.Errorf("%w: entry %d was altered (its hash does not match its content)", ErrChain, e.Seq)
	}
	return nil
}

// Query selects entries (GET /v1/audit/entries).
type Query struct {
	Kind     string    // a kind or a kind prefix ("admin", "order"); "" for all
	Peer     string    // a peer's country or peer ID; "" for all
	From, To time.Time // From included, To excluded; zero: unbounded
	After    uint64    // the cursor: entries after this seq
	Limit    int       // at most this many (1 to 1000; 0: 100)
}

// canonicalDomain opens every entry's canonical bytes.
const canonicalDomain = "imtgt-audit-entry/1"

// storedVersion opens the stored form.
const storedVersion = 1

// MarshalBinary is the form the store keeps an entry in: the canonical
// fields without the domain, the hex hashes (payload, receipt, prev) as
// 32 raw bytes, then the entry's own hash, raw. A third smaller than the
// canonical bytes and far cheaper than JSON to write, which matters on the
// order path (four entries an order); UnmarshalBinary recomputes the hash
// and refuses bytes that do not match it.
func (e *Entry) MarshalBinary() ([]byte, error) {
	h, err := hex.DecodeString(e.Hash)
	if err != nil || len(h) != sha256.Size {
		return nil, fmt.Errorf("%w: entry %d has no valid hash", ErrChain, e.Seq)
	}
	b := make([]byte, 0, 384)
	b = append(b, storedVersion)
	b = e.appendFields(b, appendRawHash)
	return append(b, h...), nil
}

// UnmarshalBinary reads what MarshalBinary wrote, refusing bytes whose
// hash does not match their content.
func (e *Entry) UnmarshalBinary(b []byte) error {
	if len(b) < 1+sha256.Size || b[0] != storedVersion {
		return fmt.Errorf("%w: not a stored audit entry", ErrChain)
	}
	d := decoder{b: b[1 : len(b)-sha256.Size]}
	sum := b[len(b)-sha256.Size:]
	*e = Entry{}
	e.Seq = d.u64()
	e.Time = time.Unix(0, int64(d.u64())).UTC()
	e.Kind = Kind(d.str())
	e.Peer = d.str()
	e.PeerID = d.str()
	e.Purpose = d.str()
	e.Records = d.list()
	e.Count = int(d.uvarint())
	e.Fields = d.list()
	e.PolicyVersion = d.u64()
	e.Rules = d.list()
	e.LegalBasis = d.str()
	e.PayloadHash = d.hash()
	e.ReceiptHash = d.hash()
	e.Actor = d.str()
	e.Reason = d.str()
	e.Prev = d.hash()
	if d.err != nil || len(d.b) != 0 {
		return fmt.Errorf("%w: stored entry is malformed", ErrChain)
	}
	e.Hash = hex.EncodeToString(sum)
	if e.ComputeHash() != e.Hash {
		return fmt.Errorf("%w: stored entry %d does not match its hash", ErrChain, e.Seq)
	}
	return nil
}

// decoder reads canonical bytes; the first failure sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil || n < 0 || n > len(d.b) {
		d.err = errors.New("short")
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) u64() uint64 {
	if b := d.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errors.New("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = errors.New("short")
		return ""
	}
	return string(d.take(int(n)))
}

func (d *decoder) hash() string {
	switch t := d.take(1); {
	case t == nil:
		return ""
	case t[0] == 1:
		return hex.EncodeToString(d.take(sha256.Size))
	case t[0] == 0:
		return d.str()
	}
	d.err = errors.New("bad hash tag")
	return ""
}

func (d *decoder) list() []string {
	n := d.uvarint()
	if n > uint64(len(d.b)) { // every element takes at least a byte
		d.err = errors.New("short")
		return nil
	}
	var out []string
	for range n {
		out = append(out, d.str())
	}
	return out
}
