package membership

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SigningHeader is the first line of SigningBytes. It names the format and
// separates manifest signatures from anything else a governance key signs.
const SigningHeader = "imtgt-manifest-v1"

// expiresLayout is RFC 3339 with second precision in UTC.
const expiresLayout = "2006-01-02T15:04:05Z"

// SigningBytes returns the canonical form every signature covers; the
// package documentation specifies it. Signatures are not part of it. It is
// unambiguous only for a manifest that passes Validate.
func (m *Manifest) SigningBytes() []byte {
	order := make([]int, len(m.Members))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return strings.Compare(m.Members[a].Country, m.Members[b].Country)
	})
	var b bytes.Buffer
	b.WriteString(SigningHeader + "\n")
	b.WriteString("federation=" + m.Federation + "\n")
	b.WriteString("version=" + strconv.FormatUint(m.Version, 10) + "\n")
	b.WriteString("expires=" + m.Expires.UTC().Format(expiresLayout) + "\n")
	b.WriteString("threshold=" + strconv.Itoa(m.Threshold) + "\n")
	for _, i := range order {
		mem := &m.Members[i]
		b.WriteString("member=")
		b.WriteString(mem.Country + "|" + mem.Agency + "|" + mem.PeerID + "|" + mem.GovernanceKey + "|")
		b.WriteString(strings.Join(mem.Addrs, ","))
		b.WriteString("\n")
	}
	return b.Bytes()
}

// Sign signs m as country's member with its governance key, replacing any
// earlier signature of that country and keeping Signatures sorted by
// country. m must be valid, and key's public half must be the member's
// governance key (else the error wraps ErrNotMember). m is unchanged on
// error.
func Sign(m *Manifest, country string, key ed25519.PrivateKey) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("sign: private key is %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	pub, ok := m.GovernancePublicKey(country)
	if !ok {
		return notMember(fmt.Sprintf("sign: %q is not a member of %s version %d", country, m.Federation, m.Version))
	}
	// Derive the public key from the seed rather than trusting the copy in
	// the second half of key.
	key = ed25519.NewKeyFromSeed(key.Seed())
	if actual := key.Public().(ed25519.PublicKey); !pub.Equal(actual) {
		return notMember(fmt.Sprintf("sign: the key (public %s) is not %s's governance key (%s)",
			base64.StdEncoding.EncodeToString(actual), country, base64.StdEncoding.EncodeToString(pub)))
	}
	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(key, m.SigningBytes()))
	sigs := slices.DeleteFunc(slices.Clone(m.Signatures), func(s Signature) bool { return s.Country == country })
	sigs = append(sigs, Signature{Country: country, Signature: sig})
	sortSignatures(sigs)
	m.Signatures = sigs
	return nil
}

// notMemberError wraps ErrNotMember with a message of its own.
type notMemberError string

func notMember(msg string) error       { return notMemberError(msg) }
func (e notMemberError) Error() string { return string(e) }
func (e notMemberError) Unwrap() error { return ErrNotMember }

// SignatureStatus is the verdict on one signature.
type SignatureStatus struct {
	Country string
	Valid   bool
	Reason  string // why it is not valid; empty when valid
}

// CheckSignatures verifies each signature, in order, against the governance
// key of its country's member. A second signature of the same country is
// not valid.
func (m *Manifest) CheckSignatures() []SignatureStatus {
	if len(m.Signatures) == 0 {
		return nil
	}
	msg := m.SigningBytes()
	out := make([]SignatureStatus, len(m.Signatures))
	seen := make(map[string]bool, len(m.Signatures))
	for i, s := range m.Signatures {
		st := SignatureStatus{Country: s.Country}
		pub, isMember := m.GovernancePublicKey(s.Country)
		sig, sigErr := decodeBase64(s.Signature, ed25519.SignatureSize)
		switch {
		case m.memberIndex(s.Country) < 0:
			st.Reason = "not a member"
		case !isMember:
			st.Reason = "the member's governance key is malformed"
		case seen[s.Country]:
			st.Reason = "duplicate signature of " + s.Country
		case sigErr != "":
			st.Reason = "signature " + sigErr
		case !ed25519.Verify(pub, msg, sig):
			st.Reason = "signature does not verify with " + s.Country + "'s governance key"
		default:
			st.Valid = true
		}
		seen[s.Country] = true
		out[i] = st
	}
	return out
}

// ValidSigners returns the countries whose signatures are valid, sorted.
func (m *Manifest) ValidSigners() []string {
	var out []string
	for _, st := range m.CheckSignatures() {
		if st.Valid {
			out = append(out, st.Country)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// CheckInstall decides whether a node may replace its installed manifest
// (nil for the first install) with next at time now:
//
//  1. next is valid (ErrMalformed);
//  2. next has not expired (ErrExpired);
//  3. next carries at least next.Threshold valid signatures of its own
//     members (ErrThreshold);
//  4. if a manifest is installed: next names the same federation
//     (ErrFederation), has a higher version (ErrVersion), and carries at
//     least installed.Threshold valid signatures by members of installed
//     whose governance key in next is the same as in installed
//     (ErrThreshold). So a quorum of the current federation approves every
//     change, including adding and removing members and rotating keys.
//
// The installed manifest's own expiry does not matter: an expired
// federation renews itself with its current quorum.
func CheckInstall(installed, next *Manifest, now time.Time) error {
	if next == nil {
		return fmt.Errorf("%w: no manifest to install", ErrMalformed)
	}
	if err := next.Validate(); err != nil {
		return err
	}
	if next.Expired(now) {
		return fmt.Errorf("%w: version %d expired at %s (now %s)", ErrExpired, next.Version,
			next.Expires.Format(expiresLayout), now.UTC().Format(time.RFC3339))
	}
	valid := next.ValidSigners()
	if len(valid) < next.Threshold {
		return fmt.Errorf("%w: version %d has %d valid signature(s) of %d required (valid: %s)",
			ErrThreshold, next.Version, len(valid), next.Threshold, listOrNone(valid))
	}
	if installed == nil {
		return nil
	}
	if err := installed.Validate(); err != nil {
		return fmt.Errorf("installed manifest: %w", err)
	}
	if next.Federation != installed.Federation {
		return fmt.Errorf("%w: manifest is for federation %q, the installed one for %q",
			ErrFederation, next.Federation, installed.Federation)
	}
	if next.Version <= installed.Version {
		return fmt.Errorf("%w: version %d is not newer than the installed version %d",
			ErrVersion, next.Version, installed.Version)
	}
	var current []string
	for _, c := range valid {
		cur, ok := installed.Member(c)
		nxt, _ := next.Member(c)
		if ok && sameGovernanceKey(cur.GovernanceKey, nxt.GovernanceKey) {
			current = append(current, c)
		}
	}
	if len(current) < installed.Threshold {
		return fmt.Errorf("%w: the current federation's quorum is missing: version %d has %d valid signature(s) "+
			"by governance keys of installed version %d, which requires %d (counted: %s; valid: %s)",
			ErrThreshold, next.Version, len(current), installed.Version, installed.Threshold,
			listOrNone(current), listOrNone(valid))
	}
	return nil
}

func listOrNone(cs []string) string {
	if len(cs) == 0 {
		return "none"
	}
	return strings.Join(cs, ", ")
}
