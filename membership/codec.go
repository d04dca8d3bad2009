package membership

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Size limits of the inputs Parse and ParseMember accept.
const (
	MaxManifestSize   = 1 << 20
	MaxDescriptorSize = 64 << 10
)

// expiresText is the only accepted spelling of expires in a manifest file.
var expiresText = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$`)

// Parse decodes a manifest file and validates it. Unknown keys, duplicate
// keys, a second YAML document and an expires that is not RFC 3339 UTC with
// second precision (2027-01-02T15:04:05Z) are refused. Errors wrap
// ErrMalformed and give the YAML line when it is known. Members and
// signatures of the result are sorted by country, and no signatures is a
// nil slice.
func Parse(data []byte) (*Manifest, error) {
	if len(data) > MaxManifestSize {
		return nil, malformed("", "larger than %d bytes", MaxManifestSize)
	}
	// The node tree gives the text and lines of fields; parsing it first
	// also reports syntax errors before field errors.
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(err)
	}
	if n := lookup(&doc, "expires"); n != nil && !expiresText.MatchString(n.Value) {
		e := malformed("expires", "%q must be RFC 3339 in UTC with second precision, like 2027-01-02T15:04:05Z", n.Value)
		e.line = n.Line
		return nil, e
	}
	var m Manifest
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, malformed("", "empty document")
		}
		return nil, yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		e := malformed("", "more than one YAML document")
		if err == nil {
			e.line = extra.Line
		}
		return nil, e
	}
	if err := m.Validate(); err != nil {
		var fe *fieldError
		if errors.As(err, &fe) && fe.field != "" {
			if n := lookup(&doc, fe.field); n != nil {
				fe.line = n.Line
			}
		}
		return nil, err
	}
	sortMembers(m.Members)
	sortSignatures(m.Signatures)
	if len(m.Signatures) == 0 {
		m.Signatures = nil
	}
	return &m, nil
}

// yamlError turns a decoder error into one that wraps ErrMalformed.
func yamlError(err error) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msg = strings.Join(te.Errors, "; ")
	}
	return fmt.Errorf("%w: %s", ErrMalformed, strings.TrimPrefix(msg, "yaml: "))
}

// lookup finds the value node of a field path such as
// "members[1].governance_key" in a decoded document, or nil.
func lookup(doc *yaml.Node, field string) *yaml.Node {
	n := doc
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		n = n.Content[0]
	}
	for seg := range strings.SplitSeq(field, ".") {
		name, idx := seg, -1
		if k := strings.IndexByte(seg, '['); k >= 0 {
			i, err := strconv.Atoi(strings.TrimSuffix(seg[k+1:], "]"))
			if err != nil {
				return nil
			}
			name, idx = seg[:k], i
		}
		n = unalias(n)
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var v *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == name {
				v = n.Content[i+1]
			}
		}
		n = unalias(v)
		if n == nil {
			return nil
		}
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return nil
			}
			n = unalias(n.Content[idx])
		}
	}
	return n
}

func unalias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

// Marshal encodes a valid manifest as YAML, with a comment header, members
// and signatures sorted by country. Parse(Marshal(m)) equals m when m's
// members and signatures are sorted (as New, Sign and Parse leave them) and
// m has no signatures only as a nil slice.
func (m *Manifest) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	c := *m
	c.Members = slices.Clone(m.Members)
	sortMembers(c.Members)
	c.Signatures = slices.Clone(m.Signatures)
	sortSignatures(c.Signatures)

	var b bytes.Buffer
	fmt.Fprintf(&b, "# Membership manifest of federation %s, version %d.\n", c.Federation, c.Version)
	b.WriteString("# Signatures cover every field but \"signatures\", in the canonical form\n")
	b.WriteString("# " + SigningHeader + " (see the documentation of package membership):\n")
	b.WriteString("# any other edit invalidates them. Unknown keys are refused.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("marshal manifest: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal manifest: %w", err)
	}
	return b.Bytes(), nil
}

// memberFields are the exact keys of a member descriptor.
var memberFields = []string{"country", "agency", "peer_id", "addrs", "governance_key"}

// ParseMember decodes and validates the JSON member descriptor that
// "imtgt-node member" prints (one JSON object with the fields of Member).
// Unknown, duplicate and differently-cased keys and trailing data are
// refused. Errors wrap ErrMalformed.
func ParseMember(data []byte) (Member, error) {
	fail := func(line int, format string, args ...any) (Member, error) {
		return Member{}, &fieldError{what: "member descriptor", line: line, msg: fmt.Sprintf(format, args...)}
	}
	if len(data) > MaxDescriptorSize {
		return fail(0, "larger than %d bytes", MaxDescriptorSize)
	}
	var mem Member
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&mem); err != nil {
		if errors.Is(err, io.EOF) {
			return fail(0, "empty document")
		}
		return fail(jsonErrorLine(data, err), "%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fail(lineAt(data, dec.InputOffset()), "trailing data after the JSON object")
	}
	// encoding/json matches keys case-insensitively and lets a repeated key
	// win silently; a descriptor is copied into a signed manifest, so
	// insist on one exact spelling of each key.
	keys := json.NewDecoder(bytes.NewReader(data))
	if tok, err := keys.Token(); err != nil || tok != json.Delim('{') {
		return fail(0, "not a JSON object")
	}
	seen := make(map[string]bool, len(memberFields))
	for keys.More() {
		tok, err := keys.Token()
		if err != nil {
			return fail(jsonErrorLine(data, err), "%s", strings.TrimPrefix(err.Error(), "json: "))
		}
		key, _ := tok.(string)
		line := lineAt(data, keys.InputOffset())
		if !slices.Contains(memberFields, key) {
			return fail(line, "unknown field %q (keys are case-sensitive: %s)", key, strings.Join(memberFields, ", "))
		}
		if seen[key] {
			return fail(line, "duplicate field %q", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := keys.Decode(&skip); err != nil {
			return fail(jsonErrorLine(data, err), "%s", strings.TrimPrefix(err.Error(), "json: "))
		}
	}
	if err := validateMember(mem, ""); err != nil {
		err.what = "member descriptor"
		return Member{}, err
	}
	return mem, nil
}

func jsonErrorLine(data []byte, err error) int {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return lineAt(data, se.Offset)
	case errors.As(err, &te):
		return lineAt(data, te.Offset)
	}
	return 0
}

// lineAt is the 1-based line of byte offset off in data.
func lineAt(data []byte, off int64) int {
	off = min(max(off, 0), int64(len(data)))
	return 1 + bytes.Count(data[:off], []byte("\n"))
}
