package federation

// Tests of what a member node refuses: messages that are forged, tampered
// with, replayed, expired, from the future, oversized or from the wrong
// federation, and catalog records whose origin signature fails. The node
// under test is a real Service on loopback; the other side is a raw libp2p
// host holding a member's key (or not), crafting bytes by hand.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"io"
	"log/slog"
	mathrand "math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/libp2p/go-msgio"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/configs"
	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/membership"
	"github.com/imtgt/imtgt-node/policy"
	"github.com/imtgt/imtgt-node/store"
)

type identity struct {
	country string
	key     crypto.PrivKey
	id      peer.ID
	gov     ed25519.PrivateKey
	addr    string
}

func newIdentity(t testing.TB, country string) identity {
	t.Helper()
	_, raw, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	key, id, err := Identity(raw)
	require.NoError(t, err)
	_, gov, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return identity{country: country, key: key, id: id, gov: gov, addr: freeAddr(t)}
}

// freeAddr picks a free loopback port below the kernel's ephemeral range,
// so that no outgoing connection of a parallel test takes it before the
// node listens (see testnet.FreePort, which this package cannot import).
func freeAddr(t testing.TB) string {
	t.Helper()
	for range 100 {
		port := 20000 + mathrand.IntN(12000)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			ln.Close()
			return "/ip4/127.0.0.1/tcp/" + strconv.Itoa(port)
		}
	}
	t.Fatal("no free port")
	return ""
}

func testManifest(t testing.TB, ids ...identity) (*membership.Manifest, []byte) {
	t.Helper()
	var ms []membership.Member
	for _, i := range ids {
		ms = append(ms, membership.Member{Country: i.country, Agency: i.country + " agency", PeerID: i.id.String(),
			Addrs: []string{i.addr}, GovernanceKey: base64.StdEncoding.EncodeToString(i.gov.Public().(ed25519.PublicKey))})
	}
	m, err := membership.New("imtgt-test", 1, time.Now().Add(time.Hour).UTC().Truncate(time.Second), 1, ms)
	require.NoError(t, err)
	require.NoError(t, membership.Sign(m, ids[0].country, ids[0].gov))
	raw, err := m.Marshal()
	require.NoError(t, err)
	return m, raw
}

type testNode struct {
	svc *Service
	cat *catalog.Catalog
	reg *prometheus.Registry
}

// startNode runs a Service for me with its own store and catalog.
func startNode(t testing.TB, me identity, m *membership.Manifest, raw, psk []byte) *testNode {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "node.db"), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	key, err := ParsePSK(psk)
	require.NoError(t, err)
	tn := &testNode{reg: prometheus.NewRegistry()}
	tn.svc, err = New(Config{
		Country: me.country, Key: me.key, ListenAddr: me.addr, PSK: key, Manifest: m, ManifestRaw: raw,
		CatalogFunc: func() *catalog.Catalog { return tn.cat },
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: tn.reg, SyncInterval: time.Hour,
	})
	require.NoError(t, err)
	tn.cat = catalog.New(db, catalog.NewIndex(), catalog.Config{Country: me.country, Currency: "THB",
		Seal: RecordSealer(me.key, me.country, time.Now, defaultPolicy(t, me.country)), Published: tn.svc.Published})
	require.NoError(t, tn.svc.Start(context.Background()))
	t.Cleanup(func() { tn.svc.Close() })
	return tn
}

// rawHost is a libp2p host with a member's (or an outsider's) key and the
// federation key, but none of the node's checks.
func rawHost(t testing.TB, who identity, psk []byte) host.Host {
	t.Helper()
	key, err := ParsePSK(psk)
	require.NoError(t, err)
	h, err := libp2p.New(libp2p.Identity(who.key), libp2p.ListenAddrStrings(who.addr), libp2p.NoTransports,
		libp2p.Transport(tcp.NewTCPTransport), libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport), libp2p.PrivateNetwork(key), libp2p.DisableRelay())
	require.NoError(t, err)
	t.Cleanup(func() { h.Close() })
	return h
}

func connect(t testing.TB, h host.Host, to identity) error {
	maddr, err := ma.NewMultiaddr(to.addr)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return h.Connect(ctx, peer.AddrInfo{ID: to.id, Addrs: []ma.Multiaddr{maddr}})
}

func sealerFor(who identity, at time.Time, fed string) *Sealer {
	return &Sealer{key: who.key, now: func() time.Time { return at }, validity: DefaultValidity,
		federation: func() (string, uint64) { return fed, 1 }}
}

// send writes raw bytes as one framed message and returns the reply bytes,
// or an error if the node reset the stream.
func send(t testing.TB, h host.Host, to peer.ID, proto protocol.ID, data []byte) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := h.NewStream(ctx, to, proto)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(5 * time.Second))
	if err := msgio.NewVarintWriter(st).WriteMsg(data); err != nil {
		return nil, err
	}
	_ = st.CloseWrite()
	return msgio.NewVarintReaderSize(st, MaxMessageSize).ReadMsg()
}

func headsRequest() *pb.Message {
	return &pb.Message{Body: &pb.Message_HeadsRequest{HeadsRequest: &pb.HeadsRequest{}}}
}

func TestRejectsBadMessages(t *testing.T) {
	th, my, id := newIdentity(t, "TH"), newIdentity(t, "MY"), newIdentity(t, "ID")
	outsider := newIdentity(t, "XX")
	m, raw := testManifest(t, th, my, id)
	psk, err := NewPSK()
	require.NoError(t, err)
	node := startNode(t, th, m, raw, psk)
	attacker := rawHost(t, my, psk)
	require.NoError(t, connect(t, attacker, th))

	valid := func() []byte {
		b, err := sealerFor(my, time.Now(), "imtgt-test").Seal(headsRequest())
		require.NoError(t, err)
		return b
	}
	replayed := valid()
	_, err = send(t, attacker, th.id, ProtoHeads, replayed)
	require.NoError(t, err, "the first delivery is accepted")

	tampered := valid()
	tampered[len(tampered)/2] ^= 0x01

	mk := func(who identity, at time.Time, fed string) []byte {
		b, err := sealerFor(who, at, fed).Seal(headsRequest())
		require.NoError(t, err)
		return b
	}
	tests := []struct {
		name, reason string
		data         []byte
	}{
		{"signed by a non-member", "unknown_signer", mk(outsider, time.Now(), "imtgt-test")},
		{"signed by another member than the sender", "signer_is_not_sender", mk(id, time.Now(), "imtgt-test")},
		{"tampered", "", tampered},
		{"replayed", "replay", replayed},
		{"expired", "expired", mk(my, time.Now().Add(-2*time.Minute), "imtgt-test")},
		{"from the future", "from_the_future", mk(my, time.Now().Add(time.Minute), "imtgt-test")},
		{"another federation", "wrong_federation", mk(my, time.Now(), "other-federation")},
		{"not an envelope", "malformed", []byte("hello")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before float64
			if tt.reason != "" {
				before = testutil.ToFloat64(node.svc.metrics.rejected.WithLabelValues(tt.reason))
			}
			_, err := send(t, attacker, th.id, ProtoHeads, tt.data)
			require.Error(t, err, "the node must reset the stream")
			if tt.reason != "" {
				require.Equal(t, before+1, testutil.ToFloat64(node.svc.metrics.rejected.WithLabelValues(tt.reason)))
			} else {
				// A flipped byte breaks the signature, or the protobuf.
				require.Positive(t, testutil.ToFloat64(node.svc.metrics.rejected.WithLabelValues("bad_signature"))+
					testutil.ToFloat64(node.svc.metrics.rejected.WithLabelValues("malformed")))
			}
			// The handler survived: a valid request still gets its reply.
			reply, err := send(t, attacker, th.id, ProtoHeads, valid())
			require.NoError(t, err)
			require.NotEmpty(t, reply)
		})
	}

	t.Run("oversized", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := attacker.NewStream(ctx, th.id, ProtoHeads)
		require.NoError(t, err)
		big := make([]byte, MaxMessageSize+1)
		_ = msgio.NewVarintWriter(st).WriteMsg(big) // the node may reset mid-write
		_, err = msgio.NewVarintReaderSize(st, MaxMessageSize).ReadMsg()
		require.Error(t, err)
		require.Equal(t, 1.0, testutil.ToFloat64(node.svc.metrics.rejected.WithLabelValues("too_large")))
		_, err = send(t, attacker, th.id, ProtoHeads, valid())
		require.NoError(t, err)
	})
}

func TestRefusesOutsiderWithLeakedKey(t *testing.T) {
	th, my := newIdentity(t, "TH"), newIdentity(t, "MY")
	outsider := newIdentity(t, "MY") // claims to be a second MY node
	m, raw := testManifest(t, th, my)
	psk, err := NewPSK()
	require.NoError(t, err)
	node := startNode(t, th, m, raw, psk)

	// The outsider has the leaked federation key and its own manifest that
	// names TH; TH's manifest does not name it.
	om, oraw := testManifest(t, outsider, th)
	out := startNode(t, outsider, om, oraw, psk)
	// The dialer may finish its half of the handshake before TH's gater
	// refuses and closes; what matters is that no stream gets through.
	_ = connect(t, out.svc.Host(), th)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(node.svc.metrics.rejected.WithLabelValues("outsider")) > 0
	}, 5*time.Second, 10*time.Millisecond)
	require.NotContains(t, node.svc.Host().Network().Peers(), outsider.id)
	_, err = send(t, out.svc.Host(), th.id, ProtoHeads, []byte("x"))
	require.Error(t, err, "an outsider opened a stream")
	require.Zero(t, node.cat.Index().Count())

	// Without the federation key, not even the handshake completes.
	otherPSK, _ := NewPSK()
	stranger := rawHost(t, newIdentity(t, "ID"), otherPSK)
	require.Error(t, connect(t, stranger, th))
}

// servePeer makes h answer heads and sync requests like a (relaying or
// hostile) member, with the records it is given for origin.
func servePeer(t testing.TB, h host.Host, me identity, origin string, records [][]byte) {
	reply := func(st network.Stream, msg *pb.Message) {
		b, err := sealerFor(me, time.Now(), "imtgt-test").Seal(msg)
		require.NoError(t, err)
		_ = msgio.NewVarintWriter(st).WriteMsg(b)
		st.Close()
	}
	h.SetStreamHandler(ProtoHeads, func(st network.Stream) {
		_, _ = msgio.NewVarintReaderSize(st, MaxMessageSize).ReadMsg()
		reply(st, &pb.Message{Body: &pb.Message_Heads{Heads: &pb.Heads{Heads: map[string]uint64{origin: uint64(len(records))}}}})
	})
	h.SetStreamHandler(ProtoSync, func(st network.Stream) {
		data, err := msgio.NewVarintReaderSize(st, MaxMessageSize).ReadMsg()
		if err != nil {
			st.Reset()
			return
		}
		msg := &pb.Message{}
		if _, err := openProto(data, MessageDomain, messageCodec, msg); err != nil || msg.GetRangeRequest() == nil {
			st.Reset()
			return
		}
		from := min(int(msg.GetRangeRequest().FromSeq)-1, len(records))
		reply(st, &pb.Message{Body: &pb.Message_RangeReply{RangeReply: &pb.RangeReply{Origin: origin, Records: records[from:], Head: uint64(len(records))}}})
	})
}

func signedTestRecord(t testing.TB, signer identity, origin string, seq uint64) []byte {
	t.Helper()
	id := "lst_01TEST" + strconv.FormatUint(seq, 10)
	rec := &pb.ListingRecord{Origin: origin, Seq: seq, Op: pb.ListingRecord_OP_UPSERT, ListingId: id, CreatedUnixMs: time.Now().UnixMilli(),
		Listing: &pb.Listing{Id: id, Seller: &pb.SellerProfile{Id: "sel_1", LegalName: "Koperasi Kopi Gayo"}, Title: "Kopi Gayo " + strconv.FormatUint(seq, 10),
			HsCode: "090111", Price: &pb.Money{Minor: 18500000, Currency: "IDR"}, Quantity: 5, ShipFrom: "ID-AC"}}
	b, err := SealRecord(signer.key, rec)
	require.NoError(t, err)
	return b
}

func TestPullVerifiesOriginSignatures(t *testing.T) {
	th, my, id := newIdentity(t, "TH"), newIdentity(t, "MY"), newIdentity(t, "ID")
	m, raw := testManifest(t, th, my, id)
	psk, err := NewPSK()
	require.NoError(t, err)
	tests := []struct {
		name    string
		records func() [][]byte
		stored  int
		reason  string
	}{
		{"relayed records of ID, signed by ID, are accepted from MY", func() [][]byte {
			return [][]byte{signedTestRecord(t, id, "ID", 1), signedTestRecord(t, id, "ID", 2)}
		}, 2, ""},
		{"records of ID signed by MY are refused", func() [][]byte {
			return [][]byte{signedTestRecord(t, my, "ID", 1)}
		}, 0, "bad_signature"},
		{"a tampered record is refused, the good prefix kept", func() [][]byte {
			bad := signedTestRecord(t, id, "ID", 2)
			bad[len(bad)-70] ^= 0x01 // inside the payload, before the signature
			return [][]byte{signedTestRecord(t, id, "ID", 1), bad}
		}, 1, ""},
		{"a record out of sequence is refused", func() [][]byte {
			return [][]byte{signedTestRecord(t, id, "ID", 2)}
		}, 0, "bad_record"},
		{"a record with content no seller could publish is refused", func() [][]byte {
			rec := &pb.ListingRecord{Origin: "ID", Seq: 1, Op: pb.ListingRecord_OP_UPSERT, ListingId: "lst_X",
				Listing: &pb.Listing{Id: "lst_X", Seller: &pb.SellerProfile{}, HsCode: "999999", Price: &pb.Money{Minor: 1, Currency: "IDR"}, ShipFrom: "ID-AC"}}
			b, err := SealRecord(id.key, rec)
			require.NoError(t, err)
			return [][]byte{b}
		}, 0, "bad_record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th.addr, my.addr = freeAddr(t), freeAddr(t)
			m, raw = testManifest(t, th, my, id)
			node := startNode(t, th, m, raw, psk)
			peerHost := rawHost(t, my, psk)
			servePeer(t, peerHost, my, "ID", tt.records())
			// The connection wakes the node's worker for MY, which syncs.
			require.NoError(t, connect(t, peerHost, th))
			rejected := func() float64 {
				n := 0.0
				for _, r := range []string{"bad_signature", "bad_record", "malformed"} {
					n += testutil.ToFloat64(node.svc.metrics.rejected.WithLabelValues(r))
				}
				return n
			}
			require.Eventually(t, func() bool {
				synced := testutil.ToFloat64(node.svc.metrics.syncs.WithLabelValues("ok")) > 0
				return node.cat.Index().Count() == tt.stored && (synced || rejected() > 0)
			}, 5*time.Second, 10*time.Millisecond)
			if tt.reason != "" {
				require.Positive(t, testutil.ToFloat64(node.svc.metrics.rejected.WithLabelValues(tt.reason)))
			}
			require.Never(t, func() bool { return node.cat.Index().Count() > tt.stored }, 200*time.Millisecond, 20*time.Millisecond)
		})
	}
}

// defaultPolicy is the country's default policy (unsigned: the sealer
// only projects with it).
func defaultPolicy(tb testing.TB, country string) func() *policy.Policy {
	tb.Helper()
	if country != "TH" && country != "MY" && country != "ID" {
		country = "TH"
	}
	raw, err := configs.DefaultPolicy(country)
	require.NoError(tb, err)
	p, err := policy.Parse(country, raw)
	require.NoError(tb, err)
	return func() *policy.Policy { return p }
}
