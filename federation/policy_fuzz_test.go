package federation

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/imtgt/imtgt-node/configs"
	"github.com/imtgt/imtgt-node/membership"
	"github.com/imtgt/imtgt-node/policy"
)

// FuzzCheckPeerPolicy drives the receiver's checks of an offered policy
// file (an outside input) with arbitrary bytes: it never panics, a
// refusal always carries the bad_policy label, and what it accepts is
// MY's, signed by MY's governance key in the manifest.
func FuzzCheckPeerPolicy(f *testing.F) {
	gov := ed25519.NewKeyFromSeed(make([]byte, 32))
	other := ed25519.NewKeyFromSeed([]byte("another agency's governance key!"))
	m := &membership.Manifest{Version: 1, Members: []membership.Member{
		{Country: "MY", GovernanceKey: base64.StdEncoding.EncodeToString(gov.Public().(ed25519.PublicKey))},
		{Country: "TH", GovernanceKey: base64.StdEncoding.EncodeToString(other.Public().(ed25519.PublicKey))},
	}}
	for _, c := range []struct {
		country string
		key     ed25519.PrivateKey
	}{{"MY", gov}, {"MY", other}, {"TH", other}} {
		raw, err := configs.DefaultPolicy(c.country)
		if err != nil {
			f.Fatal(err)
		}
		signed, err := policy.Sign(raw, c.country, c.key)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(signed)
	}
	f.Add([]byte{})
	f.Add([]byte("country: MY\nversion: 1\nsignature:\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := checkPeerPolicy(m, "MY", raw)
		if err != nil {
			if !errors.Is(err, ErrBadPolicy) || Reason(err) != "bad_policy" {
				t.Fatalf("refusal without the bad_policy label: %v", err)
			}
			return
		}
		if p.Country != "MY" {
			t.Fatalf("accepted %s's policy from MY", p.Country)
		}
		if err := policy.Verify(raw, p, gov.Public().(ed25519.PublicKey)); err != nil {
			t.Fatalf("accepted a policy MY's key did not sign: %v", err)
		}
	})
}
