package membership_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/membership"
)

func TestMarshalParseRoundTrip(t *testing.T) {
	multi := manifest(t, 3, 2, "TH", "MY", "ID", "BN")
	multi.Members[1].Addrs = []string{"/ip4/192.0.2.9/tcp/4001", "/ip6/2001:db8::1/tcp/4001", "/dns4/my.example/tcp/443"}
	multi.Members[2].Agency = "กรมพัฒนาธุรกิจการค้า: \"DBD\" # not a comment"
	for name, m := range map[string]*membership.Manifest{
		"unsigned":     manifest(t, 1, 2, "TH", "MY", "ID"),
		"signed":       sign(t, manifest(t, 1, 2, "TH", "MY", "ID"), "TH", "MY"),
		"all signed":   sign(t, multi, "TH", "MY", "ID", "BN"),
		"one member":   sign(t, manifest(t, 1<<63, 1, "TH"), "TH"),
		"yaml-ish":     withAgency(t, "yes"),
		"numeric":      withAgency(t, "0x10"),
		"leading dash": withAgency(t, "- dash, [bracket] {brace}: 'quote'"),
	} {
		t.Run(name, func(t *testing.T) {
			data, err := m.Marshal()
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(string(data), "# Membership manifest of federation imtgt"), string(data))
			got, err := membership.Parse(data)
			require.NoError(t, err, string(data))
			require.Equal(t, m, got)
			require.Equal(t, m.SigningBytes(), got.SigningBytes())
			again, err := got.Marshal()
			require.NoError(t, err)
			require.Equal(t, string(data), string(again))
		})
	}
}

func withAgency(t *testing.T, agency string) *membership.Manifest {
	m := manifest(t, 1, 1, "TH", "MY")
	m.Members[1].Agency = agency
	return sign(t, m, "TH")
}

func TestMarshalSortsAndDoesNotModify(t *testing.T) {
	m := sign(t, manifest(t, 1, 2, "TH", "MY", "ID"), "TH", "ID")
	shuffled := *m
	shuffled.Members = []membership.Member{m.Members[2], m.Members[0], m.Members[1]}
	shuffled.Signatures = []membership.Signature{m.Signatures[1], m.Signatures[0]}
	data, err := shuffled.Marshal()
	require.NoError(t, err)
	require.Equal(t, "TH", shuffled.Members[0].Country, "Marshal must not reorder its receiver")
	got, err := membership.Parse(data)
	require.NoError(t, err)
	require.Equal(t, m, got)
	require.Equal(t, m.SigningBytes(), shuffled.SigningBytes(), "member order must not change the signed bytes")

	_, err = (&membership.Manifest{}).Marshal()
	require.ErrorIs(t, err, membership.ErrMalformed)
}

func TestParseNormalises(t *testing.T) {
	m := manifest(t, 1, 2, "TH", "MY", "ID")
	data, err := m.Marshal()
	require.NoError(t, err)
	require.Contains(t, string(data), "signatures: []")
	got, err := membership.Parse(data)
	require.NoError(t, err)
	require.Nil(t, got.Signatures)

	// A hand-written file in another member order is accepted and sorted;
	// a missing signatures key is no signatures.
	text := strings.Replace(string(data), "signatures: []\n", "", 1)
	text = moveMember(t, text, "TH", 0)
	got, err = membership.Parse([]byte(text))
	require.NoError(t, err, text)
	require.Equal(t, m, got)
}

// moveMember moves the YAML block of country's member to position pos of
// the members list in a file written by Marshal.
func moveMember(t *testing.T, text, country string, pos int) string {
	head, rest, ok := strings.Cut(text, "members:\n")
	require.True(t, ok)
	list, tail, _ := strings.Cut(rest, "signatures:")
	var blocks []string
	for b := range strings.SplitSeq(list, "  - country: ") {
		if b != "" {
			blocks = append(blocks, "  - country: "+b)
		}
	}
	i := slices.IndexFunc(blocks, func(b string) bool { return strings.HasPrefix(b, "  - country: "+country+"\n") })
	require.GreaterOrEqual(t, i, 0)
	b := blocks[i]
	blocks = slices.Insert(slices.Delete(blocks, i, i+1), pos, b)
	if tail != "" {
		tail = "signatures:" + tail
	}
	return head + "members:\n" + strings.Join(blocks, "") + tail
}

func TestSigningBytesGolden(t *testing.T) {
	th := membership.Member{
		Country:       "TH",
		Agency:        "กรมพัฒนาธุรกิจการค้า (DBD)",
		PeerID:        "12D3KooWTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTT",
		Addrs:         []string{"/ip4/192.0.2.1/tcp/4001", "/dns/th.example/tcp/4001"},
		GovernanceKey: "v8+gJhlVR4hY8TPyFO/iz10xnO0qph7M8xPLgV2YpQU=",
	}
	my := membership.Member{
		Country:       "MY",
		Agency:        "Ministry of Investment, Trade and Industry",
		PeerID:        "12D3KooWMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMM",
		Addrs:         []string{"/ip4/192.0.2.2/tcp/4001"},
		GovernanceKey: "s/Yol8pE2iJyZbqEgqh2eyP5xBJLVDubgGOAKbFM/F8=",
	}
	m := &membership.Manifest{
		Federation: "imtgt",
		Version:    7,
		Expires:    time.Date(2027, 1, 2, 15, 4, 5, 0, time.UTC),
		Threshold:  2,
		Members:    []membership.Member{th, my}, // not sorted on purpose
		Signatures: []membership.Signature{{Country: "MY", Signature: strings.Repeat("A", 86) + "=="}},
	}
	require.NoError(t, m.Validate())
	const want = "imtgt-manifest-v1\n" +
		"federation=imtgt\n" +
		"version=7\n" +
		"expires=2027-01-02T15:04:05Z\n" +
		"threshold=2\n" +
		"member=MY|Ministry of Investment, Trade and Industry|12D3KooWMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMM|s/Yol8pE2iJyZbqEgqh2eyP5xBJLVDubgGOAKbFM/F8=|/ip4/192.0.2.2/tcp/4001\n" +
		"member=TH|กรมพัฒนาธุรกิจการค้า (DBD)|12D3KooWTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTT|v8+gJhlVR4hY8TPyFO/iz10xnO0qph7M8xPLgV2YpQU=|/ip4/192.0.2.1/tcp/4001,/dns/th.example/tcp/4001\n"
	require.Equal(t, want, string(m.SigningBytes()))

	// The same manifest in another time zone representation signs the same.
	other := *m
	other.Expires = m.Expires.In(time.FixedZone("ICT", 7*3600))
	require.Equal(t, want, string(other.SigningBytes()))

	// A reimplementation can check its Ed25519 against this: TH's
	// governance key is the one of this seed (RFC 8032 private key), and
	// Ed25519 signatures are deterministic.
	seed, err := hex.DecodeString("50035f00edd0fdccb5903ede5b2b31e003bc88ba49177c070820ed91a7bab5f6")
	require.NoError(t, err)
	key := ed25519.NewKeyFromSeed(seed)
	require.Equal(t, th.GovernanceKey, pubB64(key))
	require.NoError(t, membership.Sign(m, "TH", key))
	require.Equal(t, []membership.Signature{
		{Country: "MY", Signature: strings.Repeat("A", 86) + "=="},
		{Country: "TH", Signature: "9zBPOkdbT4sXHEAbOgJ2xn0saeofFs+7N8ljfM/Ts2snafZtCvhkS6LgfEtWUrzKjlgF13AlfOgka4X7REBnCg=="},
	}, m.Signatures)
	sig, err := base64.StdEncoding.DecodeString(m.Signatures[1].Signature)
	require.NoError(t, err)
	require.True(t, ed25519.Verify(key.Public().(ed25519.PublicKey), []byte(want), sig))
	require.Equal(t, []string{"TH"}, m.ValidSigners())
}

func TestSign(t *testing.T) {
	m := manifest(t, 1, 2, "TH", "MY", "ID")
	sign(t, m, "TH", "ID", "MY")
	require.Equal(t, []string{"ID", "MY", "TH"}, countries(m.Signatures), "signatures are kept sorted")
	first := m.Signatures[2].Signature

	// Re-signing replaces; Ed25519 is deterministic, so it is the same.
	sign(t, m, "TH")
	require.Len(t, m.Signatures, 3)
	require.Equal(t, first, m.Signatures[2].Signature)

	before := slices.Clone(m.Signatures)
	err := membership.Sign(m, "TH", govKey("MY"))
	require.ErrorIs(t, err, membership.ErrNotMember)
	require.ErrorContains(t, err, "not TH's governance key")
	err = membership.Sign(m, "SG", govKey("SG"))
	require.ErrorIs(t, err, membership.ErrNotMember)
	err = membership.Sign(m, "TH", govKey("TH")[:32])
	require.ErrorContains(t, err, "private key is 32 bytes")
	// A private key whose stored public half is TH's but whose seed is not.
	forged := ed25519.PrivateKey(slices.Concat(govKey("attacker").Seed(), govKey("TH").Public().(ed25519.PublicKey)))
	err = membership.Sign(m, "TH", forged)
	require.ErrorIs(t, err, membership.ErrNotMember)
	require.Equal(t, before, m.Signatures, "a failed Sign leaves the manifest alone")

	bad := *m
	bad.Threshold = 0
	require.ErrorIs(t, membership.Sign(&bad, "TH", govKey("TH")), membership.ErrMalformed)
}

func countries(sigs []membership.Signature) []string {
	var out []string
	for _, s := range sigs {
		out = append(out, s.Country)
	}
	return out
}

func TestCheckSignatures(t *testing.T) {
	m := sign(t, manifest(t, 1, 2, "TH", "MY", "ID"), "ID", "MY", "TH")
	// MY's signature replaced by one made with TH's key over the same bytes.
	m.Signatures[1].Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(govKey("TH"), m.SigningBytes()))
	require.Equal(t, []membership.SignatureStatus{
		{Country: "ID", Valid: true},
		{Country: "MY", Reason: "signature does not verify with MY's governance key"},
		{Country: "TH", Valid: true},
	}, m.CheckSignatures())
	require.Equal(t, []string{"ID", "TH"}, m.ValidSigners())

	// Not reachable through Parse or Validate, but CheckSignatures must
	// still judge a hand-built manifest sanely.
	m.Signatures = append(m.Signatures, membership.Signature{Country: "TH", Signature: m.Signatures[2].Signature},
		membership.Signature{Country: "SG", Signature: m.Signatures[2].Signature},
		membership.Signature{Country: "ID", Signature: "!!"})
	st := m.CheckSignatures()
	require.Equal(t, membership.SignatureStatus{Country: "TH", Reason: "duplicate signature of TH"}, st[3])
	require.Equal(t, membership.SignatureStatus{Country: "SG", Reason: "not a member"}, st[4])
	require.False(t, st[5].Valid)
	require.Equal(t, []string{"ID", "TH"}, m.ValidSigners())
	require.Nil(t, manifest(t, 1, 1, "TH").CheckSignatures())
}

func TestTamperingInvalidatesSignatures(t *testing.T) {
	for name, tamper := range map[string]func(m *membership.Manifest){
		"addr": func(m *membership.Manifest) { m.Members[2].Addrs[0] = "/ip4/198.51.100.66/tcp/4001" },
		"extra addr": func(m *membership.Manifest) {
			m.Members[2].Addrs = append(m.Members[2].Addrs, "/ip4/198.51.100.66/tcp/4001")
		},
		"version":        func(m *membership.Manifest) { m.Version++ },
		"expiry":         func(m *membership.Manifest) { m.Expires = m.Expires.Add(365 * 24 * time.Hour) },
		"threshold":      func(m *membership.Manifest) { m.Threshold = 1 },
		"agency":         func(m *membership.Manifest) { m.Members[0].Agency += " (acting)" },
		"peer id":        func(m *membership.Manifest) { m.Members[1].PeerID = "12D3KooW" + strings.Repeat("X", 44) },
		"governance key": func(m *membership.Manifest) { m.Members[0].GovernanceKey = pubB64(govKey("attacker")) },
		"federation":     func(m *membership.Manifest) { m.Federation = "imtgt-test" },
		"removed member": func(m *membership.Manifest) { m.Members = m.Members[1:] },
	} {
		t.Run(name, func(t *testing.T) {
			m := sign(t, manifest(t, 1, 2, "TH", "MY", "ID"), "MY", "TH")
			require.NoError(t, membership.CheckInstall(nil, m, now))
			// Tamper with a deep copy so that the manifest above stays intact.
			data, err := m.Marshal()
			require.NoError(t, err)
			tampered, err := membership.Parse(data)
			require.NoError(t, err)
			tamper(tampered)
			require.NoError(t, tampered.Validate())
			for _, st := range tampered.CheckSignatures() {
				require.False(t, st.Valid, st.Country)
			}
			require.Empty(t, tampered.ValidSigners())
			require.ErrorIs(t, membership.CheckInstall(nil, tampered, now), membership.ErrThreshold)
			require.ErrorIs(t, membership.CheckInstall(m, tampered, now), membership.ErrThreshold)
		})
	}
}

func TestCheckInstall(t *testing.T) {
	v1 := func(t *testing.T) *membership.Manifest {
		return sign(t, manifest(t, 1, 2, "TH", "MY", "ID"), "TH", "MY")
	}
	cases := []struct {
		name      string
		installed func(t *testing.T) *membership.Manifest // nil: first install
		next      func(t *testing.T) *membership.Manifest
		at        time.Time
		err       error
		msg       string
	}{
		{
			name: "first install, 2 of 3",
			next: v1,
		},
		{
			name: "first install, 3 of 3",
			next: func(t *testing.T) *membership.Manifest {
				return sign(t, manifest(t, 1, 3, "TH", "MY", "ID"), "TH", "MY", "ID")
			},
		},
		{
			name: "first install, fewer than K",
			next: func(t *testing.T) *membership.Manifest { return sign(t, manifest(t, 1, 2, "TH", "MY", "ID"), "TH") },
			err:  membership.ErrThreshold,
			msg:  "has 1 valid signature(s) of 2 required (valid: TH)",
		},
		{
			name: "first install, unsigned",
			next: func(t *testing.T) *membership.Manifest { return manifest(t, 1, 1, "TH", "MY", "ID") },
			err:  membership.ErrThreshold,
			msg:  "has 0 valid signature(s) of 1 required (valid: none)",
		},
		{
			name: "first install, signature by another member's key",
			next: func(t *testing.T) *membership.Manifest {
				m := sign(t, manifest(t, 1, 2, "TH", "MY", "ID"), "TH")
				m.Signatures = append(m.Signatures, membership.Signature{
					Country:   "MY",
					Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(govKey("ID"), m.SigningBytes())),
				})
				return m
			},
			err: membership.ErrThreshold,
			msg: "(valid: TH)",
		},
		{
			name: "first install, malformed",
			next: func(t *testing.T) *membership.Manifest {
				m := v1(t)
				m.Threshold = 4
				return m
			},
			err: membership.ErrMalformed,
			msg: "threshold",
		},
		{
			name: "expired",
			next: v1,
			at:   expires.Add(time.Second),
			err:  membership.ErrExpired,
			msg:  "version 1 expired at 2027-01-01T00:00:00Z",
		},
		{
			name: "expires exactly now",
			next: v1,
			at:   expires,
			err:  membership.ErrExpired,
		},
		{
			name: "one second before expiry",
			next: v1,
			at:   expires.Add(-time.Second),
		},
		{
			name:      "v2 signed by 2 of 3",
			installed: v1,
			next: func(t *testing.T) *membership.Manifest {
				return sign(t, manifest(t, 2, 2, "TH", "MY", "ID"), "MY", "ID")
			},
		},
		{
			name:      "renewal after the installed manifest expired",
			installed: v1,
			next: func(t *testing.T) *membership.Manifest {
				m := manifest(t, 2, 2, "TH", "MY", "ID")
				m.Expires = expires.AddDate(1, 0, 0)
				return sign(t, m, "MY", "ID")
			},
			at: expires.AddDate(0, 1, 0),
		},
		{
			name: "equal version",
			installed: func(t *testing.T) *membership.Manifest {
				return sign(t, manifest(t, 3, 2, "TH", "MY", "ID"), "TH", "MY")
			},
			next: func(t *testing.T) *membership.Manifest {
				return sign(t, manifest(t, 3, 2, "TH", "MY", "ID"), "MY", "ID")
			},
			err: membership.ErrVersion,
			msg: "version 3 is not newer than the installed version 3",
		},
		{
			name: "lower version",
			installed: func(t *testing.T) *membership.Manifest {
				return sign(t, manifest(t, 3, 2, "TH", "MY", "ID"), "TH", "MY")
			},
			next: func(t *testing.T) *membership.Manifest {
				return sign(t, manifest(t, 2, 2, "TH", "MY", "ID"), "TH", "MY")
			},
			err: membership.ErrVersion,
			msg: "version 2 is not newer than the installed version 3",
		},
		{
			name:      "other federation",
			installed: v1,
			next: func(t *testing.T) *membership.Manifest {
				m := manifest(t, 2, 2, "TH", "MY", "ID")
				m.Federation = "imtgt-staging"
				return sign(t, m, "TH", "MY")
			},
			err: membership.ErrFederation,
		},
		{
			name:      "adding a member, signed by 2 old members",
			installed: v1,
			next: func(t *testing.T) *membership.Manifest {
				return sign(t, manifest(t, 2, 2, "TH", "MY", "ID", "BN"), "TH", "ID")
			},
		},
		{
			name:      "adding a member, signed by the new member and 1 old",
			installed: v1,
			next: func(t *testing.T) *membership.Manifest {
				return sign(t, manifest(t, 2, 2, "TH", "MY", "ID", "BN"), "BN", "TH")
			},
			err: membership.ErrThreshold,
			msg: "the current federation's quorum is missing: version 2 has 1 valid signature(s) by governance keys of installed version 1, which requires 2 (counted: TH; valid: BN, TH)",
		},
		{
			name:      "removing a member, signed by the remaining 2",
			installed: v1,
			next: func(t *testing.T) *membership.Manifest {
				return sign(t, manifest(t, 2, 2, "TH", "MY"), "TH", "MY")
			},
		},
		{
			name:      "removing a member, signed by the remaining 1",
			installed: v1,
			next: func(t *testing.T) *membership.Manifest {
				return sign(t, manifest(t, 2, 1, "TH", "MY"), "TH")
			},
			err: membership.ErrThreshold,
			msg: "current federation's quorum",
		},
		{
			name:      "attacker swapped TH's governance key and signs as TH",
			installed: v1,
			next: func(t *testing.T) *membership.Manifest {
				m := manifest(t, 2, 2, "TH", "MY", "ID")
				i := slices.IndexFunc(m.Members, func(mem membership.Member) bool { return mem.Country == "TH" })
				m.Members[i].GovernanceKey = pubB64(govKey("attacker"))
				m.Members[i].Addrs = []string{"/ip4/198.51.100.66/tcp/4001"}
				require.NoError(t, membership.Sign(m, "TH", govKey("attacker")))
				return sign(t, m, "MY")
			},
			err: membership.ErrThreshold,
			msg: "(counted: MY; valid: MY, TH)",
		},
		{
			name:      "TH's key rotation approved by MY and ID",
			installed: v1,
			next: func(t *testing.T) *membership.Manifest {
				m := manifest(t, 2, 2, "TH", "MY", "ID")
				i := slices.IndexFunc(m.Members, func(mem membership.Member) bool { return mem.Country == "TH" })
				m.Members[i].GovernanceKey = pubB64(govKey("TH 2027"))
				require.NoError(t, membership.Sign(m, "TH", govKey("TH 2027")))
				return sign(t, m, "MY", "ID")
			},
		},
		{
			name:      "raising the threshold needs the new threshold of signatures",
			installed: v1,
			next: func(t *testing.T) *membership.Manifest {
				return sign(t, manifest(t, 2, 3, "TH", "MY", "ID"), "TH", "MY")
			},
			err: membership.ErrThreshold,
			msg: "of 3 required",
		},
		{
			name:      "lowering the threshold needs the installed quorum",
			installed: v1,
			next: func(t *testing.T) *membership.Manifest {
				return sign(t, manifest(t, 2, 1, "TH", "MY", "ID"), "ID")
			},
			err: membership.ErrThreshold,
			msg: "which requires 2 (counted: ID; valid: ID)",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var installed *membership.Manifest
			if c.installed != nil {
				installed = c.installed(t)
				require.NoError(t, membership.CheckInstall(nil, installed, now), "test setup")
			}
			at := c.at
			if at.IsZero() {
				at = now
			}
			err := membership.CheckInstall(installed, c.next(t), at)
			if c.err == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, c.err)
			require.ErrorContains(t, err, c.msg)
		})
	}
	require.ErrorIs(t, membership.CheckInstall(nil, nil, now), membership.ErrMalformed)
}

func TestAccessors(t *testing.T) {
	m := manifest(t, 1, 2, "TH", "MY", "ID")
	th, ok := m.Member("TH")
	require.True(t, ok)
	require.Equal(t, member("TH"), th)
	_, ok = m.Member("SG")
	require.False(t, ok)

	my, ok := m.MemberByPeerID(member("MY").PeerID)
	require.True(t, ok)
	require.Equal(t, "MY", my.Country)
	_, ok = m.MemberByPeerID("12D3KooW" + strings.Repeat("X", 44))
	require.False(t, ok)
	idPeer := member("ID").PeerID
	require.Zero(t, testing.AllocsPerRun(100, func() { _, _ = m.MemberByPeerID(idPeer) }))

	k, ok := m.GovernancePublicKey("ID")
	require.True(t, ok)
	require.True(t, k.Equal(govKey("ID").Public()))
	_, ok = m.GovernancePublicKey("SG")
	require.False(t, ok)

	require.False(t, m.Expired(expires.Add(-time.Nanosecond)))
	require.True(t, m.Expired(expires))
	require.True(t, m.Expired(expires.Add(time.Hour)))
}

func TestNew(t *testing.T) {
	ms := []membership.Member{member("TH"), member("MY"), member("ID")}
	local := expires.In(time.FixedZone("ICT", 7*3600))
	m, err := membership.New("imtgt", 1, local, 2, ms)
	require.NoError(t, err)
	require.Equal(t, expires, m.Expires)
	require.Equal(t, time.UTC, m.Expires.Location())
	require.Equal(t, []string{"ID", "MY", "TH"}, []string{m.Members[0].Country, m.Members[1].Country, m.Members[2].Country})
	require.Equal(t, "TH", ms[0].Country, "New must not reorder the caller's slice")
	ms[2].Addrs[0] = "/changed"
	require.Equal(t, "/ip4/192.0.2.3/tcp/4001", m.Members[0].Addrs[0], "New must copy the addresses")
	require.Nil(t, m.Signatures)

	_, err = membership.New("imtgt", 1, expires.Add(time.Millisecond), 2, ms)
	require.ErrorIs(t, err, membership.ErrMalformed)
	require.ErrorContains(t, err, "expires: 2027-01-01T00:00:00.001Z must be a whole second")
	_, err = membership.New("imtgt", 0, expires, 2, ms)
	require.ErrorContains(t, err, "version: must be at least 1")
}
