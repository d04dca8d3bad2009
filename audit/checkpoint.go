package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrBadCheckpoint means a checkpoint or one of its countersignatures does
// not verify, or does not match the chain it claims to sign.
var ErrBadCheckpoint = errors.New("bad checkpoint")

// Signing domains. Each signature covers its domain first, so that a
// checkpoint signature can never be replayed as a witness signature, an
// entry, a receipt or anything else the same node key signs.
const (
	checkpointDomain = "imtgt-audit-checkpoint/1"
	witnessDomain    = "imtgt-audit-witness/1"
)

// Checkpoint is a node's signed statement of its chain head. Because every
// entry's hash covers its predecessor's, signing the head signs every
// entry up to it: a later edit, drop or insertion anywhere before Seq no
// longer leads to Head.
type Checkpoint struct {
	Node      string    `json:"node"`      // country code of the node
	PeerID    string    `json:"peer_id"`   // the node's libp2p peer ID
	Seq       uint64    `json:"seq"`       // the last entry covered
	Head      string    `json:"head"`      // that entry's hash
	Time      time.Time `json:"time"`      // when the node signed
	Signature []byte    `json:"signature"` // node key over SigningBytes()
	Witnesses []Witness `json:"witnesses,omitempty"`
}

// Witness is a peer's countersignature of a checkpoint. A witness holds a
// copy of the head it saw, so the node can no longer rewrite its history
// alone: a rewritten chain would contradict what its peers signed.
type Witness struct {
	Node      string    `json:"node"` // the witnessing peer's country
	PeerID    string    `json:"peer_id"`
	Time      time.Time `json:"time"`
	Signature []byte    `json:"signature"` // witness key over WitnessBytes(w.Node, w.PeerID, w.Time)
}

// appendStr appends s length-prefixed, so that no two field lists encode
// to the same bytes.
func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendTime appends t as Unix seconds and nanoseconds, fixed width. Unlike
// UnixNano it is defined for every time, so two different times never
// encode alike; the zone does not matter.
func appendTime(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix()))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

// SigningBytes returns what the node's signature covers: the domain, then
// Node, PeerID, Seq, Head and Time, each length-prefixed or fixed width.
// Binary, not JSON, so that the signature does not depend on how a bundle
// was formatted. Signature and Witnesses are not covered.
func (c *Checkpoint) SigningBytes() []byte {
	b := make([]byte, 0, 64+len(c.Node)+len(c.PeerID)+len(c.Head))
	b = append(b, checkpointDomain...)
	b = appendStr(b, c.Node)
	b = appendStr(b, c.PeerID)
	b = binary.BigEndian.AppendUint64(b, c.Seq)
	b = appendStr(b, c.Head)
	return appendTime(b, c.Time)
}

// WitnessBytes returns what a witness's signature covers: the domain, the
// checkpoint's SigningBytes (so the witness signs the head the node
// signed), then the witness's country, peer ID and time.
func (c *Checkpoint) WitnessBytes(node, peerID string, at time.Time) []byte {
	sb := c.SigningBytes()
	b := make([]byte, 0, 48+len(sb)+len(node)+len(peerID))
	b = append(b, witnessDomain...)
	b = binary.AppendUvarint(b, uint64(len(sb)))
	b = append(b, sb...)
	b = appendStr(b, node)
	b = appendStr(b, peerID)
	return appendTime(b, at)
}

// SignCheckpoint signs c with the node key. It sets c.PeerID from the key
// when empty; a PeerID naming another key is refused, since the signature
// would then not verify. Time is normalised to UTC.
func SignCheckpoint(key crypto.PrivKey, c *Checkpoint) error {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
	}
	switch {
	case c.PeerID == "":
		c.PeerID = id.String()
	case c.PeerID != id.String():
		return fmt.Errorf("%w: peer_id %s is not the signing key's (%s)", ErrBadCheckpoint, c.PeerID, id)
	}
	c.Time = c.Time.UTC()
	sig, err := key.Sign(c.SigningBytes())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
	}
	c.Signature = sig
	return nil
}

// publicKeyOf returns the key a peer ID embeds. Ed25519 peer IDs hold the
// key itself, which is what lets a checkpoint be checked with no key
// distribution beyond the peer ID.
func publicKeyOf(peerID string) (crypto.PubKey, error) {
	id, err := peer.Decode(peerID)
	if err != nil {
		return nil, fmt.Errorf("peer_id %q is not a peer ID: %w", peerID, err)
	}
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("peer_id %s does not embed its public key: %w", peerID, err)
	}
	return pub, nil
}

// verifySig checks sig over msg by the key peerID embeds.
func verifySig(peerID string, msg, sig []byte) error {
	if len(sig) == 0 {
		return errors.New("not signed")
	}
	pub, err := publicKeyOf(peerID)
	if err != nil {
		return err
	}
	ok, err := pub.Verify(msg, sig)
	if err != nil || !ok {
		return fmt.Errorf("signature does not verify with %s's key", peerID)
	}
	return nil
}

// Verify checks the node's signature with the key PeerID embeds. It says
// that the holder of PeerID's key signed this head; whether that peer is
// the node it claims to be is for the caller to check (against a
// manifest). Witnesses are checked by Witness.Verify.
func (c *Checkpoint) Verify() error {
	if c.Node == "" {
		return fmt.Errorf("%w: no node", ErrBadCheckpoint)
	}
	if err := verifySig(c.PeerID, c.SigningBytes(), c.Signature); err != nil {
		return fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
	}
	return nil
}

// Countersign returns key's countersignature of c as node's witness. It
// verifies c first: a witness vouches that the node signed this head, so
// it must never sign one the node did not. A node does not witness itself.
func Countersign(key crypto.PrivKey, node string, c *Checkpoint, at time.Time) (Witness, error) {
	if err := c.Verify(); err != nil {
		return Witness{}, err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return Witness{}, fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
	}
	if id.String() == c.PeerID {
		return Witness{}, fmt.Errorf("%w: %s cannot witness its own checkpoint", ErrBadCheckpoint, id)
	}
	w := Witness{Node: node, PeerID: id.String(), Time: at.UTC()}
	if w.Signature, err = key.Sign(c.WitnessBytes(w.Node, w.PeerID, w.Time)); err != nil {
		return Witness{}, fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
	}
	return w, nil
}

// Verify checks the witness's signature of c with the key its PeerID
// embeds. Whether the witness is a member of the federation is for the
// caller to check.
func (w *Witness) Verify(c *Checkpoint) error {
	if w.Node == "" {
		return fmt.Errorf("%w: witness %s names no node", ErrBadCheckpoint, w.PeerID)
	}
	if err := verifySig(w.PeerID, c.WitnessBytes(w.Node, w.PeerID, w.Time), w.Signature); err != nil {
		return fmt.Errorf("%w: witness %s: %w", ErrBadCheckpoint, w.Node, err)
	}
	return nil
}
