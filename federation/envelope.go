package federation

import (
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	"google.golang.org/protobuf/proto"

	"github.com/imtgt/imtgt-node/federation/pb"
)

// Signing domains and payload types. A signature made for one domain never
// verifies in another, so a catalog record cannot be replayed as a message
// or the other way round.
const (
	MessageDomain = "imtgt-message"
	RecordDomain  = "imtgt-catalog-record"
)

var (
	messageCodec = []byte("/imtgt/message/1")
	recordCodec  = []byte("/imtgt/listing-record/1")
)

// Limits of the message layer.
const (
	// MaxMessageSize bounds one framed message on a stream.
	MaxMessageSize = 4 << 20
	// MaxValidity is the longest a message may stay valid.
	MaxValidity = 60 * time.Second
	// DefaultValidity is how long the messages this node sends stay valid.
	DefaultValidity = 30 * time.Second
	// MaxClockSkew is how far in the future a message's creation time may be.
	MaxClockSkew = 5 * time.Second
)

// Reasons a message or record is rejected. Each is a label of the
// imtgt_federation_rejected_total metric.
var (
	ErrMalformed    = errors.New("malformed")
	ErrBadSignature = errors.New("bad_signature")
	ErrUnknownPeer  = errors.New("unknown_signer")
	ErrWrongSigner  = errors.New("signer_is_not_sender")
	ErrExpired      = errors.New("expired")
	ErrFuture       = errors.New("from_the_future")
	ErrReplay       = errors.New("replay")
	ErrTooLarge     = errors.New("too_large")
	ErrWrongFed     = errors.New("wrong_federation")
	ErrBadRecord    = errors.New("bad_record")
)

// Reason returns the metric label of a rejection error.
func Reason(err error) string {
	for _, e := range []error{ErrMalformed, ErrBadSignature, ErrUnknownPeer, ErrWrongSigner, ErrExpired,
		ErrFuture, ErrReplay, ErrTooLarge, ErrWrongFed, ErrBadRecord, ErrBadPolicy} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "other"
}

// protoRecord adapts a protobuf payload to libp2p's record.Record under
// one signing domain and payload type: messages, catalog records and
// receipts differ only in those.
type protoRecord struct {
	domain string
	codec  []byte
	msg    proto.Message
}

func (r *protoRecord) Domain() string { return r.domain }
func (r *protoRecord) Codec() []byte  { return r.codec }
func (r *protoRecord) MarshalRecord() ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(r.msg)
}
func (r *protoRecord) UnmarshalRecord(b []byte) error { return proto.Unmarshal(b, r.msg) }

// sealProto signs msg under domain and codec and returns the envelope bytes.
func sealProto(key crypto.PrivKey, domain string, codec []byte, msg proto.Message) ([]byte, error) {
	env, err := record.Seal(&protoRecord{domain: domain, codec: codec, msg: msg}, key)
	if err != nil {
		return nil, err
	}
	return env.Marshal()
}

// openProto verifies an envelope of domain and codec, decodes its payload
// into msg and returns the signer.
func openProto(data []byte, domain string, codec []byte, msg proto.Message) (peer.ID, error) {
	env, err := record.ConsumeTypedEnvelope(data, &protoRecord{domain: domain, codec: codec, msg: msg})
	if err != nil {
		if env != nil && errors.Is(err, record.ErrInvalidSignature) {
			return "", fmt.Errorf("%w: %v", ErrBadSignature, err)
		}
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if string(env.PayloadType) != string(codec) {
		return "", fmt.Errorf("%w: payload type %q", ErrMalformed, env.PayloadType)
	}
	signer, err := peer.IDFromPublicKey(env.PublicKey)
	if err != nil {
		return "", fmt.Errorf("%w: signer key: %v", ErrMalformed, err)
	}
	return signer, nil
}

// SealRecord signs a catalog record with the origin node's key and returns
// the envelope bytes, which are stored and relayed as they are.
func SealRecord(key crypto.PrivKey, rec *pb.ListingRecord) ([]byte, error) {
	return sealProto(key, RecordDomain, recordCodec, rec)
}

// OpenRecord verifies a catalog record envelope and returns the record and
// its signer. Whether the signer is the origin's node is the caller's check
// (it needs the manifest).
func OpenRecord(data []byte) (*pb.ListingRecord, peer.ID, error) {
	rec := &pb.ListingRecord{}
	signer, err := openProto(data, RecordDomain, recordCodec, rec)
	if err != nil {
		return nil, "", err
	}
	return rec, signer, nil
}

// Sealer makes the signed messages this node sends.
type Sealer struct {
	key        crypto.PrivKey
	now        func() time.Time
	validity   time.Duration
	federation func() (string, uint64) // current manifest's name and version
}

// Seal fills in the message's ID, times and federation, signs it and
// returns the envelope bytes.
func (s *Sealer) Seal(msg *pb.Message) ([]byte, error) {
	msg.Id = make([]byte, 16)
	if _, err := rand.Read(msg.Id); err != nil {
		return nil, err
	}
	now := s.now()
	msg.CreatedUnixMs = now.UnixMilli()
	msg.ExpiresUnixMs = now.Add(s.validity).UnixMilli()
	msg.Federation, msg.ManifestVersion = s.federation()
	return sealProto(s.key, MessageDomain, messageCodec, msg)
}

// Opener verifies received messages: signature, signer, freshness, replay.
type Opener struct {
	now        func() time.Time
	isMember   func(peer.ID) bool
	federation func() string
	seen       *seenSet
}

// Open verifies a message received on a stream from peer from.
func (o *Opener) Open(data []byte, from peer.ID) (*pb.Message, error) {
	if len(data) > MaxMessageSize {
		return nil, ErrTooLarge
	}
	msg := &pb.Message{}
	signer, err := openProto(data, MessageDomain, messageCodec, msg)
	if err != nil {
		return nil, err
	}
	if !o.isMember(signer) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownPeer, signer)
	}
	if signer != from {
		return nil, fmt.Errorf("%w: signed by %s, sent by %s", ErrWrongSigner, signer, from)
	}
	if len(msg.Id) != 16 {
		return nil, fmt.Errorf("%w: message id must be 16 bytes", ErrMalformed)
	}
	now := o.now()
	created, expires := time.UnixMilli(msg.CreatedUnixMs), time.UnixMilli(msg.ExpiresUnixMs)
	if created.After(now.Add(MaxClockSkew)) {
		return nil, fmt.Errorf("%w: created %s, now %s", ErrFuture, created.UTC().Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339Nano))
	}
	if !expires.After(now) {
		return nil, fmt.Errorf("%w: at %s", ErrExpired, expires.UTC().Format(time.RFC3339Nano))
	}
	if !expires.After(created) || expires.Sub(created) > MaxValidity {
		return nil, fmt.Errorf("%w: validity window %s exceeds %s", ErrMalformed, expires.Sub(created), MaxValidity)
	}
	if fed := o.federation(); msg.Federation != fed {
		return nil, fmt.Errorf("%w: %q, not %q", ErrWrongFed, msg.Federation, fed)
	}
	if !o.seen.add(string(signer)+string(msg.Id), expires, now) {
		return nil, fmt.Errorf("%w: message %x from %s", ErrReplay, msg.Id, signer)
	}
	return msg, nil
}

// seenSet remembers message IDs until they expire: a message that is
// still valid can be seen once only, and an expired one is refused by its
// time, so the set never needs to remember longer than MaxValidity.
type seenSet struct {
	mu        sync.Mutex
	ids       map[string]time.Time
	lastPrune time.Time
}

func newSeenSet() *seenSet { return &seenSet{ids: make(map[string]time.Time)} }

// maxSeen bounds memory under a flood; past it new messages are refused
// (fail closed) until old ones expire.
const maxSeen = 1 << 20

func (s *seenSet) add(key string, expires, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.lastPrune) > time.Second {
		for k, exp := range s.ids {
			if !exp.After(now) {
				delete(s.ids, k)
			}
		}
		s.lastPrune = now
	}
	if _, dup := s.ids[key]; dup || len(s.ids) >= maxSeen {
		return false
	}
	s.ids[key] = expires
	return true
}
