package validation

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// JSONStrings checks every string of a JSON text, names and values, for
// what encoding/json would silently turn into U+FFFD: bytes that are not
// UTF-8, and \u escapes of a lone surrogate (a \uD800-\uDBFF not followed
// by a \uDC00-\uDFFF escape, or a \uDC00-\uDFFF on its own). RFC 8259
// requires UTF-8 and RFC 7493 (I-JSON) forbids lone surrogates; a node
// refuses them rather than store a title that is not what the seller
// sent. The error names the field by its JSON path ("title",
// "attributes.colour", "items[0].listing_id") and the byte offset.
//
// It is meant for text the JSON decoder accepted, but any input is safe:
// what is not JSON is skipped, and the decoder reports it.
func JSONStrings(b []byte) error {
	var stack []jsonFrame
	for i := 0; i < len(b); {
		switch b[i] {
		case '{':
			stack = append(stack, jsonFrame{object: true, expectKey: true})
			i++
		case '[':
			stack = append(stack, jsonFrame{})
			i++
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			i++
		case ',':
			if n := len(stack); n > 0 {
				if stack[n-1].object {
					stack[n-1].expectKey = true
				} else {
					stack[n-1].index++
				}
			}
			i++
		case ':':
			if n := len(stack); n > 0 {
				stack[n-1].expectKey = false
			}
			i++
		case '"':
			isKey := len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].expectKey
			end, msg := scanJSONString(b, i)
			if msg != "" {
				if isKey {
					return Field(jsonPath(stack, true), CodeInvalidUTF8, "a field name %s", msg)
				}
				return Field(jsonPath(stack, false), CodeInvalidUTF8, "%s", msg)
			}
			if isKey {
				stack[len(stack)-1].key = jsonKey(b[i:end])
			}
			i = end
		default:
			i++
		}
	}
	return nil
}

// jsonFrame is one open object or array of the text JSONStrings scans.
type jsonFrame struct {
	object    bool
	expectKey bool   // object: the next string is a name
	key       string // object: the name of the current member
	index     int    // array: the index of the current element
}

// jsonPath names the current position; withoutLastKey leaves out the
// innermost object's member name (for an error in the name itself).
func jsonPath(stack []jsonFrame, withoutLastKey bool) string {
	var b strings.Builder
	for i, f := range stack {
		switch {
		case !f.object:
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
		case withoutLastKey && i == len(stack)-1:
		case f.key != "":
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		}
	}
	return b.String()
}

// jsonKey decodes a member name (with its quotes) for jsonPath.
func jsonKey(lit []byte) string {
	var s string
	if json.Unmarshal(lit, &s) != nil {
		return strings.Trim(string(lit), `"`)
	}
	return s
}

// scanJSONString reads the string literal starting at b[i] (a quote) and
// returns the offset after it, or what is wrong with it ("" if nothing).
// An unterminated string ends the text.
func scanJSONString(b []byte, i int) (int, string) {
	j := i + 1
	for j < len(b) {
		c := b[j]
		switch {
		case c == '"':
			return j + 1, ""
		case c == '\\':
			if j+1 < len(b) && b[j+1] == 'u' {
				u, ok := hex4(b, j+2)
				switch {
				case !ok:
					j += 2
				case u >= 0xD800 && u <= 0xDBFF:
					if lo, ok := hex4(b, j+8); ok && b[j+6] == '\\' && b[j+7] == 'u' && lo >= 0xDC00 && lo <= 0xDFFF {
						j += 12
						continue
					}
					return j, "contains the lone surrogate escape \\u" + string(b[j+2:j+6]) + " at byte " + strconv.Itoa(j+1) +
						" of the body (a high surrogate must be followed by a low one)"
				case u >= 0xDC00 && u <= 0xDFFF:
					return j, "contains the lone surrogate escape \\u" + string(b[j+2:j+6]) + " at byte " + strconv.Itoa(j+1) +
						" of the body (a low surrogate without a high one before it)"
				default:
					j += 6
				}
				continue
			}
			j += 2
		case c < utf8.RuneSelf:
			j++
		default:
			r, size := utf8.DecodeRune(b[j:])
			if r == utf8.RuneError && size == 1 {
				return j, "is not valid UTF-8 at byte " + strconv.Itoa(j+1) + " of the body"
			}
			j += size
		}
	}
	return len(b), ""
}

// hex4 decodes the four hex digits at b[i:i+4].
func hex4(b []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
