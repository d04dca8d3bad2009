package membership_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/membership"
)

// validYAML is a signed manifest as Marshal writes it. Its lines:
//
//	 5 federation     6 version      7 expires      8 threshold    9 members:
//	10 ID country    11 ID agency   12 ID peer_id  14 ID addr     15 ID key
//	16 MY country    17 MY agency   ...            21 MY key
//	22 TH country    ...                           27 TH key
//	28 signatures:   29 MY country  30 MY signature
//	31 TH country    32 TH signature
func validYAML(t *testing.T) string {
	t.Helper()
	data, err := sign(t, manifest(t, 1, 2, "TH", "MY", "ID"), "TH", "MY").Marshal()
	require.NoError(t, err)
	return string(data)
}

func TestParseErrors(t *testing.T) {
	base := validYAML(t)
	idKey := member("ID").GovernanceKey
	key31 := base64.StdEncoding.EncodeToString(make([]byte, 31))
	cases := []struct {
		name string
		edit func(string) string
		msg  string // the error must contain it
	}{
		{"duplicate country", replace("country: MY\n    agency", "country: ID\n    agency"),
			"line 16: members[1].country: duplicate country ID (also members[0])"},
		{"duplicate peer ID", replace(member("MY").PeerID, member("ID").PeerID),
			"line 18: members[1].peer_id: duplicate peer ID"},
		{"duplicate governance key", replace(member("MY").GovernanceKey, idKey),
			"line 21: members[1].governance_key: duplicate governance key (also members[0])"},
		{"governance key of 31 bytes", replace(idKey, key31),
			"line 15: members[0].governance_key: decodes to 31 bytes, want 32"},
		{"governance key of 33 bytes", replace(idKey, base64.StdEncoding.EncodeToString(make([]byte, 33))),
			"members[0].governance_key: decodes to 33 bytes, want 32"},
		{"governance key not base64", replace(idKey, "not base64!"),
			"line 15: members[0].governance_key: not standard base64"},
		{"governance key URL base64", replace(idKey, strings.NewReplacer("+", "-", "/", "_").Replace(member("MY").GovernanceKey)),
			"not standard base64"},
		{"governance key without padding", replace(idKey, strings.TrimRight(idKey, "=")),
			"members[0].governance_key: not standard base64"},
		{"governance key with non-zero padding bits", replace(idKey, idKey[:42]+"t="),
			"members[0].governance_key: not standard base64"},
		{"governance key with a line break", replace("governance_key: "+idKey, `governance_key: "`+idKey[:20]+`\n`+idKey[20:]+`"`),
			"members[0].governance_key: not canonical standard base64"},
		{"governance key missing", replace("    governance_key: "+idKey+"\n", ""),
			"members[0].governance_key: required"},
		{"signature of 3 bytes", replaceNth("signature: ", "signature: AAAA #", 1),
			"line 30: signatures[0].signature: decodes to 3 bytes, want 64"},
		{"signature not base64", replaceNth("signature: ", "signature: x!", 2),
			"line 32: signatures[1].signature: not standard base64"},
		{"signature by a non-member", replace("  - country: MY\n    signature", "  - country: SG\n    signature"),
			`line 29: signatures[0].country: "SG" is not a member`},
		{"two signatures of one country", replace("  - country: MY\n    signature", "  - country: TH\n    signature"),
			"line 31: signatures[1].country: second signature by TH (also signatures[0])"},
		{"threshold 0", replace("threshold: 2", "threshold: 0"),
			"line 8: threshold: 0 must be between 1 and the number of members (3)"},
		{"threshold above members", replace("threshold: 2", "threshold: 4"),
			"line 8: threshold: 4 must be between 1 and the number of members (3)"},
		{"threshold missing", replace("threshold: 2\n", ""), "threshold: 0 must be between 1"},
		{"'|' in agency", replace("agency: Kementerian Perdagangan", "agency: Kementerian | Perdagangan"),
			`line 11: members[0].agency: "Kementerian | Perdagangan" must not contain '|'`},
		{"control character in agency", replace("agency: Kementerian Perdagangan", `agency: "Kementerian\tPerdagangan"`),
			"line 11: members[0].agency: \"Kementerian\\tPerdagangan\" must not contain control characters"},
		{"line feed in agency", replace("agency: Kementerian Perdagangan", `agency: "Kementerian\nmember=XX"`),
			"members[0].agency: \"Kementerian\\nmember=XX\" must not contain control characters"},
		{"blank agency", replace("agency: Kementerian Perdagangan", `agency: "  "`), "members[0].agency: required"},
		{"lower-case country", replace("country: ID\n    agency", "country: id\n    agency"),
			`line 10: members[0].country: "id" must be two upper-case letters`},
		{"three-letter country", replace("country: ID\n    agency", "country: IDN\n    agency"),
			`members[0].country: "IDN" must be two upper-case letters`},
		{"peer ID with 0", replace(member("ID").PeerID, "12D3KooW0"+strings.Repeat("D", 43)),
			"line 12: members[0].peer_id: "},
		{"peer ID too short", replace(member("ID").PeerID, "12D3KooW"), "members[0].peer_id: \"12D3KooW\" must be 40 to 64 base58 characters"},
		{"addr with a space", replace("/ip4/192.0.2.3/tcp/4001", "/ip4/192.0.2.3/tcp/4001 x"),
			"line 14: members[0].addrs[0]: \"/ip4/192.0.2.3/tcp/4001 x\" must contain only printable ASCII without spaces"},
		{"addr with a comma", replace("/ip4/192.0.2.3/tcp/4001", "/ip4/192.0.2.3/tcp/4001,/ip4/192.0.2.9/tcp/1"),
			"members[0].addrs[0]: \"/ip4/192.0.2.3/tcp/4001,/ip4/192.0.2.9/tcp/1\" must not contain ','"},
		{"addr with '|'", replace("/ip4/192.0.2.3/tcp/4001", "/ip4/192.0.2.3/tcp/4001|x"), "must not contain '|'"},
		{"addr without a slash", replace("/ip4/192.0.2.3/tcp/4001", "192.0.2.3:4001"),
			"members[0].addrs[0]: \"192.0.2.3:4001\" must be a multiaddr"},
		{"no addrs", replace("    addrs:\n      - /ip4/192.0.2.3/tcp/4001\n", "    addrs: []\n"),
			"line 13: members[0].addrs: 0 addresses, want 1 to 16"},
		{"no members", func(s string) string {
			head, _, _ := strings.Cut(s, "members:")
			return head + "members: []\n"
		}, "line 9: members: 0 members, want 1 to 64"},
		{"upper-case federation", replace("federation: imtgt", "federation: IMTGT"),
			`line 5: federation: "IMTGT" must be 1 to 64 characters a-z, 0-9 or '-'`},
		{"version 0", replace("version: 1", "version: 0"), "line 6: version: must be at least 1"},
		{"negative version", replace("version: 1", "version: -1"), "line 6: cannot unmarshal !!int `-1` into uint64"},
		{"version not a number", replace("version: 1", "version: one"), "line 6: cannot unmarshal !!str `one` into uint64"},
		{"expires with an offset", replace("2027-01-01T00:00:00Z", "2027-01-01T07:00:00+07:00"),
			`line 7: expires: "2027-01-01T07:00:00+07:00" must be RFC 3339 in UTC with second precision`},
		{"expires with fractional seconds", replace("2027-01-01T00:00:00Z", "2027-01-01T00:00:00.5Z"), "line 7: expires: "},
		{"expires as a date", replace("2027-01-01T00:00:00Z", "2027-01-01"), "line 7: expires: "},
		{"expires not a time", replace("2027-01-01T00:00:00Z", "soon"), `line 7: expires: "soon" must be RFC 3339`},
		{"expires a mapping", replace("2027-01-01T00:00:00Z", "{at: 2027-01-01T00:00:00Z}"), `line 7: expires: "" must be RFC 3339`},
		{"expires missing", replace("expires: 2027-01-01T00:00:00Z\n", ""), "expires: required"},
		{"unknown YAML key", replace("threshold: 2\n", "threshold: 2\ncomment: hello\n"),
			"line 9: field comment not found in type membership.Manifest"},
		{"unknown YAML key in a member", replace("    agency: Kementerian Perdagangan\n", "    agency: Kementerian Perdagangan\n    website: x\n"),
			"line 12: field website not found in type membership.Member"},
		{"misspelt YAML key", replace("threshold: 2", "treshold: 2"), "field treshold not found"},
		{"duplicate YAML key", replace("threshold: 2\n", "threshold: 2\nthreshold: 1\n"), `mapping key "threshold" already defined`},
		{"two YAML documents", func(s string) string { return s + "---\n" + s }, "line 33: more than one YAML document"},
		{"a broken second document", func(s string) string { return s + "---\n[\n" }, "more than one YAML document"},
		{"empty", func(string) string { return "" }, "empty document"},
		{"only comments", func(string) string { return "# nothing\n" }, "empty document"},
		{"null document", func(string) string { return "---\n...\n" }, "federation: \"\" must be"},
		{"a list", func(string) string { return "- federation: imtgt\n" }, "cannot unmarshal !!seq into membership.Manifest"},
		{"not YAML", func(string) string { return "federation: [imtgt\n" }, "did not find expected"},
		{"too large", func(s string) string { return s + "#" + strings.Repeat("x", membership.MaxManifestSize) + "\n" },
			"larger than 1048576 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := c.edit(base)
			require.NotEqual(t, base, text, "the edit must change the text")
			_, err := membership.Parse([]byte(text))
			require.ErrorIs(t, err, membership.ErrMalformed, text)
			require.ErrorContains(t, err, c.msg)
			require.True(t, strings.HasPrefix(err.Error(), "malformed manifest: "), err.Error())
		})
	}
	_, err := membership.Parse([]byte(base))
	require.NoError(t, err)
}

// replace returns an edit that replaces the first old by new.
func replace(old, new string) func(string) string {
	return func(s string) string { return strings.Replace(s, old, new, 1) }
}

// replaceNth returns an edit that replaces the nth (1-based) old by new.
func replaceNth(old, new string, n int) func(string) string {
	return func(s string) string {
		parts := strings.SplitN(s, old, n+1)
		if len(parts) <= n {
			return s
		}
		return strings.Join(parts[:n], old) + new + parts[n]
	}
}

func TestValidateErrors(t *testing.T) {
	cases := []struct {
		name string
		edit func(m *membership.Manifest)
		msg  string
	}{
		{"zero expiry", func(m *membership.Manifest) { m.Expires = time.Time{} }, "expires: required"},
		{"expiry not in UTC", func(m *membership.Manifest) { m.Expires = m.Expires.In(time.FixedZone("ICT", 7*3600)) },
			"expires: 2027-01-01T07:00:00+07:00 must be in UTC"},
		{"expiry after 9999", func(m *membership.Manifest) { m.Expires = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
			"expires: year must be between 0001 and 9999"},
		{"empty federation", func(m *membership.Manifest) { m.Federation = "" }, `federation: "" must be`},
		{"federation of 65 characters", func(m *membership.Manifest) { m.Federation = strings.Repeat("a", 65) }, "federation: "},
		{"federation with a line feed", func(m *membership.Manifest) { m.Federation = "imtgt\nversion=9" }, "federation: "},
		{"65 members", func(m *membership.Manifest) { m.Members = manyMembers(65); m.Signatures = nil },
			"members: 65 members, want 1 to 64"},
		{"agency of 201 characters", func(m *membership.Manifest) { m.Members[0].Agency = strings.Repeat("ก", 201) },
			"members[0].agency: longer than 200 characters"},
		{"agency not UTF-8", func(m *membership.Manifest) { m.Members[1].Agency = "Agency \xff" }, "members[1].agency: not valid UTF-8"},
		{"agency with a C1 control", func(m *membership.Manifest) { m.Members[1].Agency = "Agency \u0085" },
			"members[1].agency: \"Agency \\u0085\" must not contain control characters"},
		{"17 addrs", func(m *membership.Manifest) {
			for i := range 16 {
				m.Members[2].Addrs = append(m.Members[2].Addrs, fmt.Sprintf("/ip4/192.0.2.%d/tcp/4001", 100+i))
			}
		}, "members[2].addrs: 17 addresses, want 1 to 16"},
		{"addr of 257 bytes", func(m *membership.Manifest) { m.Members[2].Addrs[0] = "/dns/" + strings.Repeat("a", 252) },
			"members[2].addrs[0]: "},
		{"addr with a line feed", func(m *membership.Manifest) { m.Members[2].Addrs[0] = "/ip4/192.0.2.1/tcp/1\nmember=" },
			"members[2].addrs[0]: "},
		{"addr just a slash", func(m *membership.Manifest) { m.Members[2].Addrs[0] = "/" }, "members[2].addrs[0]: "},
		{"non-ASCII addr", func(m *membership.Manifest) { m.Members[2].Addrs[0] = "/dns/ไทย.example/tcp/1" }, "members[2].addrs[0]: "},
		{"peer ID of 65 characters", func(m *membership.Manifest) { m.Members[0].PeerID = strings.Repeat("z", 65) }, "members[0].peer_id: "},
		{"peer ID with l", func(m *membership.Manifest) { m.Members[0].PeerID = "12D3KooWl" + strings.Repeat("z", 40) }, "members[0].peer_id: "},
		{"governance key with a line feed", func(m *membership.Manifest) { m.Members[0].GovernanceKey += "\n" },
			"members[0].governance_key: not canonical standard base64"},
		{"signature with a country not a member", func(m *membership.Manifest) { m.Signatures[0].Country = "th" },
			`signatures[0].country: "th" is not a member`},
		{"empty signature", func(m *membership.Manifest) { m.Signatures[1].Signature = "" }, "signatures[1].signature: required"},
		{"signature of 65 bytes", func(m *membership.Manifest) {
			m.Signatures[1].Signature = base64.StdEncoding.EncodeToString(make([]byte, 65))
		}, "signatures[1].signature: decodes to 65 bytes, want 64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := sign(t, manifest(t, 1, 2, "TH", "MY", "ID"), "TH", "MY")
			c.edit(m)
			err := m.Validate()
			require.ErrorIs(t, err, membership.ErrMalformed)
			require.ErrorContains(t, err, c.msg)
			require.ErrorIs(t, membership.CheckInstall(nil, m, now), membership.ErrMalformed)
			_, err = m.Marshal()
			require.ErrorIs(t, err, membership.ErrMalformed)
		})
	}

	t.Run("limits are inclusive", func(t *testing.T) {
		m := sign(t, manifest(t, 1, 2, "TH", "MY", "ID"), "TH", "MY")
		m.Members[0].Agency = strings.Repeat("ก", 200)
		m.Members[0].PeerID = strings.Repeat("z", 64)
		m.Members[1].PeerID = strings.Repeat("z", 40)
		m.Members[2].Addrs = nil
		for i := range 16 {
			m.Members[2].Addrs = append(m.Members[2].Addrs, "/dns/"+strings.Repeat("a", 244)+fmt.Sprintf("/tcp/%d", 10+i))
		}
		m.Federation = strings.Repeat("a-0", 21) + "z"
		m.Threshold = 3
		require.NoError(t, m.Validate())
		m.Members = manyMembers(64)
		m.Signatures = nil
		m.Threshold = 64
		require.NoError(t, m.Validate())
		data, err := m.Marshal()
		require.NoError(t, err)
		got, err := membership.Parse(data)
		require.NoError(t, err)
		require.Equal(t, m, got)
	})
}

// manyMembers returns n valid members with distinct countries AA, AB, ...
func manyMembers(n int) []membership.Member {
	const b58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	var ms []membership.Member
	for i := range n {
		c := string([]byte{'A' + byte(i/26), 'A' + byte(i%26)})
		ms = append(ms, membership.Member{
			Country:       c,
			Agency:        "Agency " + c,
			PeerID:        "12D3KooW" + string(b58[i/58]) + string(b58[i%58]) + strings.Repeat("z", 42),
			Addrs:         []string{fmt.Sprintf("/ip4/192.0.2.%d/tcp/4001", i)},
			GovernanceKey: pubB64(govKey(c)),
		})
	}
	return ms
}

func TestParseMember(t *testing.T) {
	th := member("TH")
	valid, err := json.MarshalIndent(th, "", "  ")
	require.NoError(t, err)
	got, err := membership.ParseMember(valid)
	require.NoError(t, err)
	require.Equal(t, th, got)

	// Line 2 is country, 3 agency, 4 peer_id, 5-7 addrs, 8 governance_key.
	base := string(valid)
	cases := []struct {
		name string
		text string
		msg  string
	}{
		{"unknown field", strings.Replace(base, `"agency"`, `"website": "x", "agency"`, 1), `unknown field "website"`},
		{"field in another case", strings.Replace(base, `"country"`, `"Country"`, 1),
			`line 2: unknown field "Country" (keys are case-sensitive`},
		{"duplicate field", strings.Replace(base, `"agency"`, `"country": "MY", "agency"`, 1), `line 3: duplicate field "country"`},
		{"two objects", base + base, "trailing data after the JSON object"},
		{"trailing garbage", base + "\n}", "line 10: trailing data"},
		{"empty", "", "empty document"},
		{"null", "null", "not a JSON object"},
		{"array", "[]", "cannot unmarshal array into Go value of type membership.Member"},
		{"syntax error", strings.Replace(base, `"agency":`, `"agency"`, 1), "line 3: invalid character"},
		{"addrs a string", strings.Replace(base, `"addrs": [`, `"addrs": "/ip4/1.2.3.4/tcp/1", "x": [`, 1),
			"line 5: cannot unmarshal string into Go struct field Member.addrs of type []string"},
		{"no addrs", strings.Replace(base, `"/ip4/192.0.2.1/tcp/4001"`, ``, 1), "addrs: 0 addresses"},
		{"missing governance key", `{"country":"TH","agency":"A","peer_id":"` + th.PeerID + `","addrs":["/ip4/1.2.3.4/tcp/1"]}`,
			"governance_key: required"},
		{"governance key of 31 bytes", strings.Replace(base, th.GovernanceKey, base64.StdEncoding.EncodeToString(make([]byte, 31)), 1),
			"governance_key: decodes to 31 bytes, want 32"},
		{"'|' in agency", strings.Replace(base, "Department of", "Department | of", 1), "agency: "},
		{"lower-case country", strings.Replace(base, `"TH"`, `"th"`, 1), `country: "th" must be two upper-case letters`},
		{"bad peer ID", strings.Replace(base, th.PeerID, "QmNotBase58!", 1), "peer_id: "},
		{"bad addr", strings.Replace(base, "/ip4/192.0.2.1/tcp/4001", "192.0.2.1:4001", 1), "addrs[0]: "},
		{"too large", base + strings.Repeat(" ", membership.MaxDescriptorSize), "larger than 65536 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.NotEqual(t, base, c.text)
			_, err := membership.ParseMember([]byte(c.text))
			require.ErrorIs(t, err, membership.ErrMalformed, c.text)
			require.ErrorContains(t, err, c.msg)
			require.True(t, strings.HasPrefix(err.Error(), "malformed member descriptor: "), err.Error())
		})
	}
}
