package federation

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"

	"github.com/libp2p/go-libp2p/core/crypto"
	cryptopb "github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	recordpb "github.com/libp2p/go-libp2p/core/record/pb"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	"google.golang.org/protobuf/proto"

	"github.com/imtgt/imtgt-node/federation/pb"
)

// recordVerify is how catalog records' signatures are checked: RFC 8032's
// cofactored equation with canonical encodings of A and R, and no
// small-order A or R. The cofactored equation is what allows batch
// verification (section 7.3 of docs/PROTOCOL.md); one record alone is
// checked by the same rule, so that whether a record is accepted never
// depends on the records sent with it. Every signature an honest signer
// makes (crypto/ed25519, go-libp2p) passes it; it differs from
// crypto/ed25519's cofactorless check only on signatures crafted with the
// signer's own private key and a key or R with a torsion component.
var recordVerify = &voi.Options{Verify: &voi.VerifyOptions{}}

// minBatch is the smallest group verified as a batch; below it one
// verification each is as fast.
const minBatch = 8

// OpenRecords verifies catalog record envelopes that must all be signed by
// want (the origin's node) and decodes them. The signatures are checked in
// batches, one per core; a batch that fails is checked signature by
// signature, so errs names each bad record. recs[i] is set exactly when
// errs[i] is nil.
func OpenRecords(data [][]byte, want peer.ID) (recs []*pb.ListingRecord, errs []error) {
	recs, errs = make([]*pb.ListingRecord, len(data)), make([]error, len(data))
	wantKey, err := want.ExtractPublicKey()
	if err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("%w: the origin's peer ID %s holds no key: %v", ErrMalformed, want, err)
		}
		return recs, errs
	}
	raw, err := wantKey.Raw()
	if err != nil || wantKey.Type() != cryptopb.KeyType_Ed25519 {
		for i := range errs {
			errs[i] = fmt.Errorf("%w: the origin's key is not Ed25519", ErrMalformed)
		}
		return recs, errs
	}
	expanded, err := voi.NewExpandedPublicKey(voi.PublicKey(raw))
	if err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("%w: the origin's key: %v", ErrMalformed, err)
		}
		return recs, errs
	}
	workers := max(1, min(runtime.GOMAXPROCS(0), len(data)/minBatch))
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(data)/workers, (w+1)*len(data)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			openRange(data[lo:hi], raw, expanded, want, recs[lo:hi], errs[lo:hi])
		}()
	}
	wg.Wait()
	return recs, errs
}

// openRange decodes data's envelopes, checks their signer, and verifies
// the signatures of those that decoded as one batch.
func openRange(data [][]byte, wantKey []byte, expanded *voi.ExpandedPublicKey, want peer.ID, recs []*pb.ListingRecord, errs []error) {
	var idx []int // checked entry → record
	var msgs, sigs [][]byte
	for i, d := range data {
		env := &recordpb.Envelope{}
		if err := proto.Unmarshal(d, env); err != nil {
			errs[i] = fmt.Errorf("%w: envelope: %v", ErrMalformed, err)
			continue
		}
		k := env.GetPublicKey()
		if k == nil || k.GetType() != cryptopb.KeyType_Ed25519 || !bytes.Equal(k.GetData(), wantKey) {
			errs[i] = signerError(k, want)
			continue
		}
		if !bytes.Equal(env.PayloadType, recordCodec) {
			errs[i] = fmt.Errorf("%w: payload type %q", ErrMalformed, env.PayloadType)
			continue
		}
		rec := &pb.ListingRecord{}
		if err := proto.Unmarshal(env.Payload, rec); err != nil {
			errs[i] = fmt.Errorf("%w: record: %v", ErrMalformed, err)
			continue
		}
		recs[i] = rec
		idx = append(idx, i)
		msgs = append(msgs, signedBytes(RecordDomain, env.PayloadType, env.Payload))
		sigs = append(sigs, env.Signature)
	}
	valid := make([]bool, len(idx))
	if len(idx) < minBatch {
		for j := range idx {
			valid[j] = voi.VerifyExpandedWithOptions(expanded, msgs[j], sigs[j], recordVerify)
		}
	} else {
		batch := voi.NewBatchVerifierWithCapacity(len(idx))
		for j := range idx {
			batch.AddExpandedWithOptions(expanded, msgs[j], sigs[j], recordVerify)
		}
		_, valid = batch.Verify(nil) // one by one only if the batch fails
	}
	for j, i := range idx {
		if !valid[j] {
			recs[i], errs[i] = nil, fmt.Errorf("%w: catalog record signature", ErrBadSignature)
		}
	}
}

// signerError says who signed a record that want's node should have.
func signerError(k *cryptopb.PublicKey, want peer.ID) error {
	if k == nil {
		return fmt.Errorf("%w: envelope without a public key", ErrMalformed)
	}
	pub, err := crypto.PublicKeyFromProto(k)
	if err != nil {
		return fmt.Errorf("%w: signer key: %v", ErrMalformed, err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		return fmt.Errorf("%w: signer key: %v", ErrMalformed, err)
	}
	return fmt.Errorf("%w: record signed by %s, not by %s", ErrBadSignature, id, want)
}

// signedBytes are the bytes an envelope's signature covers (go-libp2p
// core/record makeUnsigned; docs/PROTOCOL.md 4.2).
func signedBytes(domain string, payloadType, payload []byte) []byte {
	b := make([]byte, 0, 3*binary.MaxVarintLen64+len(domain)+len(payloadType)+len(payload))
	b = binary.AppendUvarint(b, uint64(len(domain)))
	b = append(b, domain...)
	b = binary.AppendUvarint(b, uint64(len(payloadType)))
	b = append(b, payloadType...)
	b = binary.AppendUvarint(b, uint64(len(payload)))
	return append(b, payload...)
}
