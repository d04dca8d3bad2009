package policy

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
)

// SigningHeader starts the bytes a policy signature covers; it keeps policy
// signatures apart from anything else a governance key signs.
const SigningHeader = "imtgt-policy-v1\n"

// ErrSignature is wrapped by every failed signature check.
var ErrSignature = errors.New("policy signature")

// body returns the file up to its signature block: a line "signature:" at
// column 0, which must be the file's last top-level key.
func body(data []byte) []byte {
	if bytes.HasPrefix(data, []byte("signature:")) {
		return nil
	}
	if i := bytes.Index(data, []byte("\nsignature:")); i >= 0 {
		return data[:i+1]
	}
	return data
}

// SigningBytes returns what the signature covers: SigningHeader, then the
// file's exact bytes up to the signature block. Any change to those bytes,
// even a comment, breaks the signature: what the agency signed is what a
// node runs.
func SigningBytes(data []byte) []byte {
	b := body(data)
	out := make([]byte, 0, len(SigningHeader)+len(b))
	return append(append(out, SigningHeader...), b...)
}

// Sign returns the policy file with the agency's signature block replacing
// any earlier one. country is the issuing agency's country.
func Sign(data []byte, country string, key ed25519.PrivateKey) ([]byte, error) {
	b := body(data)
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(append([]byte{}, b...), '\n')
	}
	sig := ed25519.Sign(key, SigningBytes(b))
	pub := key.Public().(ed25519.PublicKey)
	out := append([]byte{}, b...)
	out = append(out, signatureBlock(&Signature{Country: country, PublicKey: base64.StdEncoding.EncodeToString(pub),
		Value: base64.StdEncoding.EncodeToString(sig)})...)
	return out, nil
}

// Verify checks the file's signature against the agency's governance key.
func Verify(data []byte, p *Policy, agencyKey ed25519.PublicKey) error {
	if p.Signature == nil {
		return fmt.Errorf("%w: the policy is not signed", ErrSignature)
	}
	pub, err := base64.StdEncoding.DecodeString(p.Signature.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public_key is not an Ed25519 key", ErrSignature)
	}
	if !agencyKey.Equal(ed25519.PublicKey(pub)) {
		return fmt.Errorf("%w: signed by key %s, not %s's governance key %s", ErrSignature, p.Signature.PublicKey, p.Country, base64.StdEncoding.EncodeToString(agencyKey))
	}
	sig, err := base64.StdEncoding.DecodeString(p.Signature.Value)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: value is not an Ed25519 signature", ErrSignature)
	}
	if !ed25519.Verify(agencyKey, SigningBytes(data), sig) {
		return fmt.Errorf("%w: does not verify: the file was changed after it was signed", ErrSignature)
	}
	// Nothing may follow the signature block: bytes after it are not
	// signed, and YAML would still read them.
	if want := signatureBlock(p.Signature); !bytes.Equal(data[len(body(data)):], want) {
		return fmt.Errorf("%w: the file has content after its signature block, or the block is not in the form policy sign writes", ErrSignature)
	}
	return nil
}

func signatureBlock(s *Signature) []byte {
	return fmt.Appendf(nil, "signature:\n  country: %s\n  public_key: %s\n  value: %s\n", s.Country, s.PublicKey, s.Value)
}
