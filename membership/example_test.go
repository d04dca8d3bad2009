package membership_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/imtgt/imtgt-node/membership"
)

func ExampleSign() {
	// Each agency's governance key; in real life each stays with its agency
	// (keys.LoadGovernanceKey) and the manifest travels between them.
	keyOf := map[string]ed25519.PrivateKey{}
	var members []membership.Member
	for i, c := range []string{"TH", "MY", "ID"} {
		keyOf[c] = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(i + 1)}, ed25519.SeedSize))
		members = append(members, membership.Member{
			Country:       c,
			Agency:        c + " trade agency",
			PeerID:        "12D3KooW" + strings.Repeat(string("123"[i]), 44),
			Addrs:         []string{fmt.Sprintf("/ip4/192.0.2.%d/tcp/4001", i+1)},
			GovernanceKey: base64.StdEncoding.EncodeToString(keyOf[c].Public().(ed25519.PublicKey)),
		})
	}
	expires := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	m, err := membership.New("imtgt", 1, expires, 2, members)
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

	if err := membership.Sign(m, "TH", keyOf["TH"]); err != nil {
		panic(err)
	}
	fmt.Println(membership.CheckInstall(nil, m, now))

	if err := membership.Sign(m, "MY", keyOf["MY"]); err != nil {
		panic(err)
	}
	fmt.Println(m.ValidSigners(), membership.CheckInstall(nil, m, now))

	// A key that is not the member's governance key is refused.
	fmt.Println(membership.Sign(m, "ID", keyOf["TH"]))
	// Output:
	// not enough valid signatures: version 1 has 1 valid signature(s) of 2 required (valid: TH)
	// [MY TH] <nil>
	// sign: the key (public iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=) is not ID's governance key (7UkoxijRwsbq6QM4kFmVYSlZJzpcY/k2NsFGFKyHN9E=)
}
