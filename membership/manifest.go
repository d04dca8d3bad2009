package membership

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Errors. Every error of this package wraps one of them.
var (
	// ErrMalformed: a manifest or member descriptor breaks a syntax or
	// validity rule.
	ErrMalformed = errors.New("malformed manifest")
	// ErrThreshold: too few valid signatures, either of the manifest's own
	// threshold or of the installed federation's quorum.
	ErrThreshold = errors.New("not enough valid signatures")
	// ErrVersion: the manifest's version is not newer than the installed one.
	ErrVersion = errors.New("stale manifest version")
	// ErrExpired: the manifest's expiry has passed.
	ErrExpired = errors.New("manifest expired")
	// ErrNotMember: a country is not a member of the manifest, or a key is not
	// its governance key.
	ErrNotMember = errors.New("not a member")
	// ErrFederation: the manifest names another federation than the installed
	// one.
	ErrFederation = errors.New("different federation")
)

// Limits enforced by Validate.
const (
	MaxMembers          = 64
	MaxAgencyLength     = 200 // in characters (Unicode code points)
	MaxAddrs            = 16  // per member
	MaxAddrLength       = 256 // bytes
	MinPeerIDLength     = 40
	MaxPeerIDLength     = 64
	MaxFederationLength = 64
)

// Member is one member agency of the federation and its national node.
type Member struct {
	// Country is the ISO 3166-1 alpha-2 code, upper case, unique in a
	// manifest. Membership in refdata is not required: a new state may join
	// with its own code.
	Country string `yaml:"country" json:"country"`
	// Agency is the member agency's name.
	Agency string `yaml:"agency" json:"agency"`
	// PeerID is the libp2p peer ID of the member's node (e.g. 12D3KooW...),
	// opaque here: 40 to 64 base58 characters.
	PeerID string `yaml:"peer_id" json:"peer_id"`
	// Addrs are the node's multiaddrs (e.g. /ip4/127.0.0.1/tcp/4001), in the
	// member's order of preference.
	Addrs []string `yaml:"addrs" json:"addrs"`
	// GovernanceKey is the standard base64 encoding (with padding) of the
	// agency's 32-byte Ed25519 governance public key.
	GovernanceKey string `yaml:"governance_key" json:"governance_key"`
}

// Signature is one member's signature of a manifest.
type Signature struct {
	// Country is the member whose governance key signed.
	Country string `yaml:"country"`
	// Signature is the standard base64 encoding (with padding) of the
	// 64-byte Ed25519 signature over the manifest's SigningBytes.
	Signature string `yaml:"signature"`
}

// Manifest is the federation's signed membership manifest.
type Manifest struct {
	Federation string    `yaml:"federation"`
	Version    uint64    `yaml:"version"`
	Expires    time.Time `yaml:"expires"` // UTC, whole seconds
	Threshold  int       `yaml:"threshold"`
	Members    []Member  `yaml:"members"`
	// Signatures are kept sorted by country by Sign and Parse; they are not
	// covered by SigningBytes.
	Signatures []Signature `yaml:"signatures"`
}

// fieldError is a validation error naming the offending field, e.g.
// "members[1].governance_key". Parse adds the YAML line when it can.
type fieldError struct {
	what  string // "manifest" or "member descriptor"
	line  int    // 0 when unknown
	field string
	msg   string
}

func (e *fieldError) Error() string {
	var b strings.Builder
	b.WriteString("malformed ")
	b.WriteString(e.what)
	b.WriteString(": ")
	if e.line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.line)
	}
	if e.field != "" {
		b.WriteString(e.field)
		b.WriteString(": ")
	}
	b.WriteString(e.msg)
	return b.String()
}

func (e *fieldError) Unwrap() error { return ErrMalformed }

func malformed(field, format string, args ...any) *fieldError {
	return &fieldError{what: "manifest", field: field, msg: fmt.Sprintf(format, args...)}
}

// New builds and validates an unsigned manifest. Members are copied and
// sorted by country; expires is converted to UTC and must be a whole second
// (truncate it with expires.Truncate(time.Second) if it comes from a clock).
func New(federation string, version uint64, expires time.Time, threshold int, members []Member) (*Manifest, error) {
	m := &Manifest{
		Federation: federation,
		Version:    version,
		Expires:    expires.UTC(),
		Threshold:  threshold,
		Members:    make([]Member, len(members)),
	}
	for i, mem := range members {
		mem.Addrs = slices.Clone(mem.Addrs)
		m.Members[i] = mem
	}
	sortMembers(m.Members)
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

func sortMembers(ms []Member) {
	slices.SortStableFunc(ms, func(a, b Member) int { return strings.Compare(a.Country, b.Country) })
}

func sortSignatures(ss []Signature) {
	slices.SortStableFunc(ss, func(a, b Signature) int { return strings.Compare(a.Country, b.Country) })
}

// Validate checks every field and names the first bad one; its errors wrap
// ErrMalformed. It does not verify signatures (see CheckSignatures): a
// wrong signature makes a manifest unsigned, not malformed.
func (m *Manifest) Validate() error {
	if m == nil {
		return malformed("", "no manifest")
	}
	if !validFederation(m.Federation) {
		return malformed("federation", "%q must be 1 to %d characters a-z, 0-9 or '-'", m.Federation, MaxFederationLength)
	}
	if m.Version < 1 {
		return malformed("version", "must be at least 1")
	}
	if err := validateExpires(m.Expires); err != "" {
		return malformed("expires", "%s", err)
	}
	if len(m.Members) < 1 || len(m.Members) > MaxMembers {
		return malformed("members", "%d members, want 1 to %d", len(m.Members), MaxMembers)
	}
	countries := make(map[string]int, len(m.Members))
	peers := make(map[string]int, len(m.Members))
	govKeys := make(map[string]int, len(m.Members))
	for i, mem := range m.Members {
		prefix := fmt.Sprintf("members[%d].", i)
		if err := validateMember(mem, prefix); err != nil {
			return err
		}
		if j, dup := countries[mem.Country]; dup {
			return malformed(prefix+"country", "duplicate country %s (also members[%d])", mem.Country, j)
		}
		countries[mem.Country] = i
		if j, dup := peers[mem.PeerID]; dup {
			return malformed(prefix+"peer_id", "duplicate peer ID %s (also members[%d])", mem.PeerID, j)
		}
		peers[mem.PeerID] = i
		// The key strings are canonical base64 (validateMember), so equal
		// keys have equal strings.
		if j, dup := govKeys[mem.GovernanceKey]; dup {
			return malformed(prefix+"governance_key", "duplicate governance key (also members[%d])", j)
		}
		govKeys[mem.GovernanceKey] = i
	}
	if m.Threshold < 1 || m.Threshold > len(m.Members) {
		return malformed("threshold", "%d must be between 1 and the number of members (%d)", m.Threshold, len(m.Members))
	}
	signed := make(map[string]int, len(m.Signatures))
	for i, s := range m.Signatures {
		prefix := fmt.Sprintf("signatures[%d].", i)
		if _, ok := countries[s.Country]; !ok {
			return malformed(prefix+"country", "%q is not a member", s.Country)
		}
		if j, dup := signed[s.Country]; dup {
			return malformed(prefix+"country", "second signature by %s (also signatures[%d])", s.Country, j)
		}
		signed[s.Country] = i
		if _, err := decodeBase64(s.Signature, ed25519.SignatureSize); err != "" {
			return malformed(prefix+"signature", "%s", err)
		}
	}
	return nil
}

func validFederation(s string) bool {
	if len(s) < 1 || len(s) > MaxFederationLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func validateExpires(t time.Time) string {
	switch {
	case t.IsZero():
		return "required"
	case t.Location() != time.UTC:
		return fmt.Sprintf("%s must be in UTC", t.Format(time.RFC3339Nano))
	case t.Nanosecond() != 0:
		return fmt.Sprintf("%s must be a whole second", t.Format(time.RFC3339Nano))
	case t.Year() < 1 || t.Year() > 9999:
		return "year must be between 0001 and 9999"
	}
	return ""
}

// validateMember checks one member's fields; prefix names it in errors
// ("members[1]." in a manifest, "" in a descriptor).
func validateMember(m Member, prefix string) *fieldError {
	if !validCountry(m.Country) {
		return malformed(prefix+"country", "%q must be two upper-case letters (ISO 3166-1 alpha-2)", m.Country)
	}
	if err := validateAgency(m.Agency); err != "" {
		return malformed(prefix+"agency", "%s", err)
	}
	if !validPeerID(m.PeerID) {
		return malformed(prefix+"peer_id", "%q must be %d to %d base58 characters", m.PeerID, MinPeerIDLength, MaxPeerIDLength)
	}
	if len(m.Addrs) < 1 || len(m.Addrs) > MaxAddrs {
		return malformed(prefix+"addrs", "%d addresses, want 1 to %d", len(m.Addrs), MaxAddrs)
	}
	for i, a := range m.Addrs {
		if err := validateAddr(a); err != "" {
			return malformed(fmt.Sprintf("%saddrs[%d]", prefix, i), "%s", err)
		}
	}
	if _, err := decodeBase64(m.GovernanceKey, ed25519.PublicKeySize); err != "" {
		return malformed(prefix+"governance_key", "%s", err)
	}
	return nil
}

func validCountry(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

func validateAgency(s string) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "required"
	case !utf8.ValidString(s):
		return "not valid UTF-8"
	case utf8.RuneCountInString(s) > MaxAgencyLength:
		return fmt.Sprintf("longer than %d characters", MaxAgencyLength)
	case strings.ContainsRune(s, '|'):
		return fmt.Sprintf("%q must not contain '|'", s)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return fmt.Sprintf("%q must not contain control characters", s)
	}
	return ""
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

func validPeerID(s string) bool {
	if len(s) < MinPeerIDLength || len(s) > MaxPeerIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(base58Alphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}

func validateAddr(a string) string {
	if len(a) < 2 || a[0] != '/' || len(a) > MaxAddrLength {
		return fmt.Sprintf("%q must be a multiaddr like /ip4/127.0.0.1/tcp/4001 (at most %d bytes)", a, MaxAddrLength)
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		switch {
		case c == '|' || c == ',':
			return fmt.Sprintf("%q must not contain %q", a, c)
		case c <= ' ' || c > '~':
			return fmt.Sprintf("%q must contain only printable ASCII without spaces", a)
		}
	}
	return ""
}

// decodeBase64 decodes canonical standard base64 (padding, no line breaks,
// zero padding bits) of exactly n bytes. Canonical means one string per
// value, so the string can stand for the value in SigningBytes.
func decodeBase64(s string, n int) ([]byte, string) {
	if s == "" {
		return nil, "required"
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Sprintf("not standard base64: %v", err)
	}
	if base64.StdEncoding.EncodeToString(b) != s {
		return nil, "not canonical standard base64"
	}
	if len(b) != n {
		return nil, fmt.Sprintf("decodes to %d bytes, want %d", len(b), n)
	}
	return b, ""
}

// Member returns the member of country.
func (m *Manifest) Member(country string) (Member, bool) {
	if i := m.memberIndex(country); i >= 0 {
		return m.Members[i], true
	}
	return Member{}, false
}

func (m *Manifest) memberIndex(country string) int {
	for i := range m.Members {
		if m.Members[i].Country == country {
			return i
		}
	}
	return -1
}

// MemberByPeerID returns the member whose node has peer ID id. A node
// admits a peer only if this finds it in the installed manifest.
func (m *Manifest) MemberByPeerID(id string) (Member, bool) {
	for i := range m.Members {
		if m.Members[i].PeerID == id {
			return m.Members[i], true
		}
	}
	return Member{}, false
}

// GovernancePublicKey returns the governance key of country's member.
func (m *Manifest) GovernancePublicKey(country string) (ed25519.PublicKey, bool) {
	i := m.memberIndex(country)
	if i < 0 {
		return nil, false
	}
	k, err := decodeBase64(m.Members[i].GovernanceKey, ed25519.PublicKeySize)
	if err != "" {
		return nil, false
	}
	return ed25519.PublicKey(k), true
}

// Expired reports whether the manifest has expired at now (now >= Expires).
func (m *Manifest) Expired(now time.Time) bool {
	return !now.Before(m.Expires)
}

// sameGovernanceKey reports whether a and b are the same public key.
func sameGovernanceKey(a, b string) bool {
	ka, errA := decodeBase64(a, ed25519.PublicKeySize)
	kb, errB := decodeBase64(b, ed25519.PublicKeySize)
	return errA == "" && errB == "" && bytes.Equal(ka, kb)
}
