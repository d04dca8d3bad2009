// Package membership holds the federation's signed membership manifest: the
// list of member agencies, their nodes and their governance keys, which a
// node consults before it admits a peer.
//
// A [Manifest] names the federation, a version that only increases, an
// expiry, a signature threshold K and the members. Member agencies sign it
// with their Ed25519 governance keys ([Sign]). A node installs a manifest
// only if [CheckInstall] accepts it: the manifest is valid and not expired,
// carries K valid signatures of its own members, and, when a manifest is
// already installed, names the same federation, has a higher version and
// carries the installed threshold of valid signatures by members of the
// installed manifest with unchanged governance keys. A quorum of the
// current federation therefore approves every change: adding or removing a
// member, changing addresses, rotating a key, changing the threshold.
//
// The package is pure: it reads no files and no clock; callers pass the
// bytes and the time.
//
// # File format
//
// A manifest is a single YAML document (see [Parse] and [Manifest.Marshal]):
//
//	federation: imtgt
//	version: 3
//	expires: 2027-01-02T15:04:05Z
//	threshold: 2
//	members:
//	  - country: ID
//	    agency: Kementerian Perdagangan
//	    peer_id: 12D3KooW...
//	    addrs:
//	      - /ip4/203.0.113.7/tcp/4001
//	    governance_key: <base64 of the 32-byte Ed25519 public key>
//	  - ...
//	signatures:
//	  - country: ID
//	    signature: <base64 of the 64-byte Ed25519 signature>
//
// Unknown and duplicate keys are refused, and expires must be written in
// UTC with second precision as above. A member descriptor (the output of
// "imtgt-node member", read by [ParseMember]) is one JSON object with the
// member keys above.
//
// # Validity
//
// [Manifest.Validate] requires: federation of 1 to 64 characters a-z, 0-9
// and '-'; version at least 1; expires set, in UTC, a whole second, year
// 0001 to 9999; 1 to 64 members; threshold between 1 and the number of
// members. Each member has a country of two upper-case ASCII letters (not
// checked against any list, so that a new state may join), an agency name
// that is not blank, is valid UTF-8 of at most 200 characters and contains
// neither '|' nor control characters (Unicode category Cc), a peer ID of 40
// to 64 base58 characters
// (123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz), 1 to 16
// addresses that start with '/' and consist of 2 to 256 printable ASCII
// characters other than space, '|' and ',', and a governance key in
// canonical standard base64 (with padding, no line breaks, zero padding
// bits: 44 characters) of 32 bytes. Countries, peer IDs and governance keys
// are unique. Each signature names a member, at most one per member, and is
// canonical standard base64 of 64 bytes (88 characters).
//
// # Signed bytes
//
// Every signature is a pure Ed25519 signature (RFC 8032, no pre-hashing,
// no context) over the manifest's canonical form, [Manifest.SigningBytes].
// It is UTF-8 text made of the following lines, each ended by a line feed
// (0x0A), including the last; there is no other whitespace and no
// escaping:
//
//	imtgt-manifest-v1
//	federation=<federation>
//	version=<version>
//	expires=<expires>
//	threshold=<threshold>
//	member=<country>|<agency>|<peer_id>|<governance_key>|<addrs>
//
// where
//
//   - <federation>, <country>, <agency>, <peer_id> and <governance_key> are
//     the field values exactly as in the manifest (the governance key as its
//     base64 text);
//   - <version> and <threshold> are decimal with no sign and no leading
//     zeros;
//   - <expires> is the expiry in UTC as YYYY-MM-DDTHH:MM:SSZ (RFC 3339
//     with second precision and a literal Z);
//   - <addrs> is the member's addresses in manifest order joined by ','
//     (a single address has no comma);
//   - there is one member line per member, sorted by country in byte order.
//
// The signatures themselves are not part of the signed bytes, so members
// sign independently and in any order. Validity makes the form unambiguous:
// no field may contain a line feed, an agency or address no '|', an address
// no ','. For example, the manifest of federation "imtgt", version 7,
// expiring at 2027-01-02T15:04:05Z, with threshold 2 and members TH (two
// addresses) and MY is signed as:
//
//	imtgt-manifest-v1
//	federation=imtgt
//	version=7
//	expires=2027-01-02T15:04:05Z
//	threshold=2
//	member=MY|Ministry of Investment, Trade and Industry|12D3KooWMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMM|s/Yol8pE2iJyZbqEgqh2eyP5xBJLVDubgGOAKbFM/F8=|/ip4/192.0.2.2/tcp/4001
//	member=TH|กรมพัฒนาธุรกิจการค้า (DBD)|12D3KooWTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTT|v8+gJhlVR4hY8TPyFO/iz10xnO0qph7M8xPLgV2YpQU=|/ip4/192.0.2.1/tcp/4001,/dns/th.example/tcp/4001
//
// (TestSigningBytesGolden holds these bytes, the private key behind TH's
// governance key and the signature it makes.)
package membership
