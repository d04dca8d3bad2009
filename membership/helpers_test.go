package membership_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/membership"
)

// Fixed times of the tests: manifests expire at the start of 2027 and are
// checked in mid-2026.
var (
	expires = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	now     = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
)

// govKey is a deterministic governance key; name is a country code or any
// other label (e.g. "attacker").
func govKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("imtgt test governance key " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func pubB64(k ed25519.PrivateKey) string {
	return base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey))
}

var agencies = map[string]string{
	"TH": "Department of Business Development",
	"MY": "Ministry of Investment, Trade and Industry",
	"ID": "Kementerian Perdagangan",
	"BN": "Ministry of Finance and Economy",
}

var peerChar = map[string]string{"TH": "T", "MY": "M", "ID": "D", "BN": "B"}

var addrOctet = map[string]string{"TH": "1", "MY": "2", "ID": "3", "BN": "4"}

// member is a valid member of country with its test governance key.
func member(country string) membership.Member {
	return membership.Member{
		Country:       country,
		Agency:        agencies[country],
		PeerID:        "12D3KooW" + strings.Repeat(peerChar[country], 44),
		Addrs:         []string{"/ip4/192.0.2." + addrOctet[country] + "/tcp/4001"},
		GovernanceKey: pubB64(govKey(country)),
	}
}

// manifest builds a valid unsigned manifest of federation "imtgt".
func manifest(t testing.TB, version uint64, threshold int, countries ...string) *membership.Manifest {
	t.Helper()
	var ms []membership.Member
	for _, c := range countries {
		ms = append(ms, member(c))
	}
	m, err := membership.New("imtgt", version, expires, threshold, ms)
	require.NoError(t, err)
	return m
}

// sign signs m by each country with its test governance key.
func sign(t testing.TB, m *membership.Manifest, countries ...string) *membership.Manifest {
	t.Helper()
	for _, c := range countries {
		require.NoError(t, membership.Sign(m, c, govKey(c)))
	}
	return m
}
