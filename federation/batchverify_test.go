package federation

import (
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/record"
	recordpb "github.com/libp2p/go-libp2p/core/record/pb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/imtgt/imtgt-node/federation/pb"
)

// TestOpenRecords checks batch verification against one signature at a
// time: every record of a batch is judged as it would be alone, whatever
// is sent with it, and a bad one is named.
func TestOpenRecords(t *testing.T) {
	th, my := newIdentity(t, "TH"), newIdentity(t, "MY")
	good := func(n int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i] = thRecord(t, th, uint64(i+1))
		}
		return out
	}
	flipSig := func(b []byte) []byte {
		c := append([]byte(nil), b...)
		c[len(c)-1] ^= 1 // the signature is the envelope's last field
		return c
	}
	otherPayloadType := func() []byte {
		env, err := record.Seal(&protoRecord{domain: RecordDomain, codec: []byte("/imtgt/other/1"), msg: mustRecord(t, thRecord(t, th, 1))}, th.key)
		require.NoError(t, err)
		b, err := env.Marshal()
		require.NoError(t, err)
		return b
	}
	for _, tc := range []struct {
		name string
		data [][]byte
		bad  map[int]error // index → the error it must wrap
	}{
		{"one", good(1), nil},
		{"below a batch", good(minBatch - 1), nil},
		{"a batch", good(100), nil},
		{"a full range", good(MaxRangeCount), nil},
		{"a bad signature in a batch", func() [][]byte { d := good(100); d[37] = flipSig(d[37]); return d }(), map[int]error{37: ErrBadSignature}},
		{"a bad signature alone", [][]byte{flipSig(good(1)[0])}, map[int]error{0: ErrBadSignature}},
		{"two bad in different batches", func() [][]byte { d := good(64); d[3], d[60] = flipSig(d[3]), flipSig(d[60]); return d }(), map[int]error{3: ErrBadSignature, 60: ErrBadSignature}},
		{"signed by another member", func() [][]byte { d := good(20); d[5] = thRecord(t, my, 6); return d }(), map[int]error{5: ErrBadSignature}},
		{"not an envelope", func() [][]byte { d := good(20); d[0] = []byte("not protobuf \xff\xff"); return d }(), map[int]error{0: ErrMalformed}},
		{"another payload type", func() [][]byte { d := good(20); d[9] = otherPayloadType(); return d }(), map[int]error{9: ErrMalformed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, errs := OpenRecords(tc.data, th.id)
			require.Len(t, recs, len(tc.data))
			for i := range tc.data {
				if want := tc.bad[i]; want != nil {
					require.ErrorIs(t, errs[i], want, "record %d", i)
					require.Nil(t, recs[i])
					continue
				}
				require.NoError(t, errs[i], "record %d", i)
				require.Equal(t, uint64(i+1), recs[i].Seq)
				// The one-by-one check of go-libp2p (crypto/ed25519) agrees.
				_, signer, err := OpenRecord(tc.data[i])
				require.NoError(t, err)
				require.Equal(t, th.id, signer)
			}
		})
	}
}

// A signature with a small-order R (the identity point) is refused alone
// and in a batch alike, as an error and not a panic: the rule never depends
// on the batch.
func TestOpenRecordsSmallOrderR(t *testing.T) {
	th := newIdentity(t, "TH")
	d := thRecord(t, th, 1)
	env, err := record.UnmarshalEnvelope(d)
	require.NoError(t, err)
	msg := signedBytes(RecordDomain, env.PayloadType, env.RawPayload)
	raw, err := env.PublicKey.Raw()
	require.NoError(t, err)
	// R = the identity point (small order), s = 0.
	sig := make([]byte, ed25519.SignatureSize)
	sig[0] = 1
	require.False(t, ed25519.Verify(raw, msg, sig))
	forged, err := marshalEnvelope(env.PublicKey, env.PayloadType, env.RawPayload, sig)
	require.NoError(t, err)
	for _, n := range []int{1, 20} {
		data := make([][]byte, n)
		for i := range data {
			data[i] = thRecord(t, th, uint64(i+1))
		}
		data[0] = forged
		_, errs := OpenRecords(data, th.id)
		require.True(t, errors.Is(errs[0], ErrBadSignature), "%d records: %v", n, errs[0])
		for _, err := range errs[1:] {
			require.NoError(t, err)
		}
	}
}

func mustRecord(t *testing.T, b []byte) *pb.ListingRecord {
	t.Helper()
	rec, _, err := OpenRecord(b)
	require.NoError(t, err)
	return rec
}

// marshalEnvelope builds an envelope with any signature.
func marshalEnvelope(pub crypto.PubKey, payloadType, payload, sig []byte) ([]byte, error) {
	k, err := crypto.PublicKeyToProto(pub)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(&recordpb.Envelope{PublicKey: k, PayloadType: payloadType, Payload: payload, Signature: sig})
}

// FuzzOpenRecords: whatever bytes arrive in a range, OpenRecords does not
// panic, and a record it accepts is one go-libp2p's own check accepts from
// the origin too.
func FuzzOpenRecords(f *testing.F) {
	th := newIdentity(f, "TH")
	good := thRecord(f, th, 1)
	f.Add(good, good)
	f.Add([]byte{}, good)
	f.Add(good[:len(good)-3], []byte("\x0a\x24"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		data := [][]byte{a, b}
		for range minBatch {
			data = append(data, good)
		}
		recs, errs := OpenRecords(data, th.id)
		for i, d := range data {
			if errs[i] != nil {
				continue
			}
			require.NotNil(t, recs[i])
			_, signer, err := OpenRecord(d)
			require.NoError(t, err, "record %d accepted in a batch, refused alone", i)
			require.Equal(t, th.id, signer)
		}
	})
}
