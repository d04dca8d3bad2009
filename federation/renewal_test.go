package federation

import (
	"crypto/ed25519"
	"encoding/base64"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/membership"
)

// TestExpiredManifestServesOnlyRenewal: under an expired manifest a node
// admits its members (not outsiders), refuses them everything but the
// manifest protocol, refuses a renewal without the expired manifest's
// quorum, and installs one with it.
func TestExpiredManifestServesOnlyRenewal(t *testing.T) {
	th, my, outsider := newIdentity(t, "TH"), newIdentity(t, "MY"), newIdentity(t, "XX")
	manifest := func(version uint64, expires time.Time, threshold int, signers ...identity) (*membership.Manifest, []byte) {
		var ms []membership.Member
		for _, i := range []identity{th, my} {
			ms = append(ms, membership.Member{Country: i.country, Agency: i.country + " agency", PeerID: i.id.String(),
				Addrs: []string{i.addr}, GovernanceKey: base64.StdEncoding.EncodeToString(i.gov.Public().(ed25519.PublicKey))})
		}
		m, err := membership.New("imtgt-test", version, expires.UTC().Truncate(time.Second), threshold, ms)
		require.NoError(t, err)
		for _, s := range signers {
			require.NoError(t, membership.Sign(m, s.country, s.gov))
		}
		raw, err := m.Marshal()
		require.NoError(t, err)
		return m, raw
	}
	m1, raw1 := manifest(1, time.Now().Add(-time.Minute), 2, th, my)
	psk, err := NewPSK()
	require.NoError(t, err)
	node := startNode(t, th, m1, raw1, psk)
	require.ErrorIs(t, node.svc.Ready(), ErrNoManifest)

	// The dialer may finish its half of the handshake before the gater
	// refuses; what matters is that the refusal happens and no stream
	// gets through.
	outHost := rawHost(t, outsider, psk)
	_ = connect(t, outHost, th)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(node.svc.metrics.rejected.WithLabelValues("outsider")) > 0
	}, 5*time.Second, 10*time.Millisecond, "an outsider is refused under an expired manifest too")
	_, err = send(t, outHost, th.id, ProtoManifest, []byte("x"))
	require.Error(t, err, "an outsider opened a stream")
	peerHost := rawHost(t, my, psk)
	require.NoError(t, connect(t, peerHost, th), "a member of the expired manifest may connect, for a renewal")

	seal := func(msg *pb.Message) []byte {
		b, err := sealerFor(my, time.Now(), "imtgt-test").Seal(msg)
		require.NoError(t, err)
		return b
	}
	_, err = send(t, peerHost, th.id, ProtoHeads, seal(headsRequest()))
	require.Error(t, err, "heads must not be served under an expired manifest")
	offer := func(raw []byte) *pb.ManifestReply {
		t.Helper()
		data, err := send(t, peerHost, th.id, ProtoManifest, seal(&pb.Message{Body: &pb.Message_ManifestOffer{ManifestOffer: &pb.ManifestOffer{Manifest: raw}}}))
		require.NoError(t, err)
		reply := &pb.Message{}
		_, err = openProto(data, MessageDomain, messageCodec, reply)
		require.NoError(t, err)
		require.NotNil(t, reply.GetManifestReply(), "%v", reply)
		return reply.GetManifestReply()
	}
	// Version 2 with a threshold of 1, signed by MY alone: valid on its
	// own, but not the expired manifest's quorum of two.
	_, weak := manifest(2, time.Now().Add(time.Hour), 1, my)
	r := offer(weak)
	require.False(t, r.Accepted)
	require.Contains(t, r.Reason, "quorum")
	// An expired successor is refused too.
	_, stale := manifest(2, time.Now().Add(-time.Second), 2, th, my)
	r = offer(stale)
	require.False(t, r.Accepted)
	require.Contains(t, r.Reason, "expired")
	m, _ := node.svc.Manifest()
	require.Equal(t, uint64(1), m.Version)

	_, good := manifest(2, time.Now().Add(time.Hour), 2, th, my)
	r = offer(good)
	require.True(t, r.Accepted, r.Reason)
	require.NoError(t, node.svc.Ready())
	m, _ = node.svc.Manifest()
	require.Equal(t, uint64(2), m.Version)
	_, err = send(t, peerHost, th.id, ProtoHeads, seal(headsRequest()))
	require.NoError(t, err, "after the renewal the member is served again")
}
