package validation

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// TextKind says which layout characters a free-text field may hold.
type TextKind int

const (
	// Line is one line of text: titles, names, attribute values. No
	// control character at all, not even a tab.
	Line TextKind = iota
	// Multiline is text with paragraphs: descriptions, postal addresses.
	// Line feed and tab are allowed, and a carriage return directly before
	// a line feed (text written on Windows); nothing else of C0.
	Multiline
)

// Codes of the errors Text returns.
const (
	CodeInvalidUTF8 = "invalid_utf8"
	CodeControl     = "control_character"
	CodeBidi        = "bidi_control"
	CodeBlank       = "blank"
)

// Text checks free text that people read: a listing's title and
// description, a seller's name, and the same fields when a peer sends
// them. It refuses, naming the field, the code point and its position
// (characters counted from 1):
//
//   - bytes that are not UTF-8 (this includes encoded surrogates);
//   - C0 controls (U+0000-U+001F) except what kind allows, DEL and the
//     C1 controls (U+0080-U+009F): they end strings in C, move terminal
//     cursors and break CSV exports and logs;
//   - the bidirectional embeddings, overrides and isolates
//     (U+202A-U+202E, U+2066-U+2069), which make text display in another
//     order than it is stored and so misrepresent a product or a price;
//     the deprecated format characters U+206A-U+206F with them;
//   - the line and paragraph separators U+2028 and U+2029 (a description
//     uses a line feed) and noncharacters (U+FDD0-U+FDEF, U+xxFFFE/F);
//   - text that is not empty but is blank once invisible characters are
//     removed (see invisible).
//
// The marks U+200E LEFT-TO-RIGHT MARK, U+200F RIGHT-TO-LEFT MARK and
// U+061C ARABIC LETTER MARK are allowed: they have no scope, and Jawi
// (Malay in Arabic script) next to Latin digits needs them. ZWJ and ZWNJ
// are allowed too: Thai, Indic scripts and emoji sequences use them. Like
// every invisible character, they do not count towards being not blank.
//
// Empty text is not an error here: whether a field is required is the
// caller's rule.
func Text(field, s string, kind TextKind) error {
	visible := false
	pos := 0
	for i, r := range s {
		pos++
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return Field(field, CodeInvalidUTF8, "is not valid UTF-8 at byte %d (character %d)", i+1, pos)
			}
		}
		if code, why := refused(r, s[i+utf8.RuneLen(r):], kind); code != "" {
			return Field(field, code, "contains %s at character %d%s", RuneName(r), pos, why)
		}
		if !visible && !invisible(r) {
			visible = true
		}
	}
	if s != "" && !visible {
		return Field(field, CodeBlank, "is blank once invisible characters (white space, zero-width and format characters) are removed")
	}
	return nil
}

// refused returns the code for a code point Text refuses ("" if allowed)
// and, for a layout character, why. rest is the text after r.
func refused(r rune, rest string, kind TextKind) (code, why string) {
	switch {
	case r < 0x20:
		if kind == Multiline && (r == '\n' || r == '\t' || r == '\r' && len(rest) > 0 && rest[0] == '\n') {
			return "", ""
		}
		switch {
		case kind == Line && (r == '\n' || r == '\t' || r == '\r'):
			return CodeControl, " (this field is one line)"
		case r == '\r':
			return CodeControl, " not followed by a line feed"
		}
		return CodeControl, ""
	case r < 0x7F:
		return "", ""
	case r <= 0x9F: // DEL and C1
		return CodeControl, ""
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return CodeBidi, ""
	case r >= 0x206A && r <= 0x206F:
		return CodeControl, ""
	case r == 0x2028 || r == 0x2029:
		return CodeControl, " (use a line feed)"
	case r >= 0xFDD0 && r <= 0xFDEF, r&0xFFFE == 0xFFFE:
		return CodeControl, ""
	}
	return "", ""
}

// invisible reports whether r shows nothing on its own: white space,
// format characters (Cf: zero-width space, joiners, marks, word joiner,
// byte order mark, soft hyphen, tags...), variation selectors, the
// combining grapheme joiner, and the fillers and blanks that render as
// empty (Hangul fillers, Khmer inherent vowels, the braille blank).
func invisible(r rune) bool {
	switch r {
	case 0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2800, 0x3164, 0xFFA0:
		return true
	}
	return unicode.Is(unicode.White_Space, r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Variation_Selector, r)
}

// runeNames are the names of the code points Text refuses by name; the
// others are described by their class.
var runeNames = map[rune]string{
	0x00: "NULL", 0x01: "START OF HEADING", 0x02: "START OF TEXT", 0x03: "END OF TEXT",
	0x04: "END OF TRANSMISSION", 0x05: "ENQUIRY", 0x06: "ACKNOWLEDGE", 0x07: "BELL",
	0x08: "BACKSPACE", 0x09: "CHARACTER TABULATION", 0x0A: "LINE FEED", 0x0B: "LINE TABULATION",
	0x0C: "FORM FEED", 0x0D: "CARRIAGE RETURN", 0x0E: "SHIFT OUT", 0x0F: "SHIFT IN",
	0x10: "DATA LINK ESCAPE", 0x11: "DEVICE CONTROL ONE", 0x12: "DEVICE CONTROL TWO",
	0x13: "DEVICE CONTROL THREE", 0x14: "DEVICE CONTROL FOUR", 0x15: "NEGATIVE ACKNOWLEDGE",
	0x16: "SYNCHRONOUS IDLE", 0x17: "END OF TRANSMISSION BLOCK", 0x18: "CANCEL",
	0x19: "END OF MEDIUM", 0x1A: "SUBSTITUTE", 0x1B: "ESCAPE", 0x1C: "INFORMATION SEPARATOR FOUR",
	0x1D: "INFORMATION SEPARATOR THREE", 0x1E: "INFORMATION SEPARATOR TWO", 0x1F: "INFORMATION SEPARATOR ONE",
	0x7F:   "DELETE",
	0x200B: "ZERO WIDTH SPACE", 0x200C: "ZERO WIDTH NON-JOINER", 0x200D: "ZERO WIDTH JOINER",
	0x200E: "LEFT-TO-RIGHT MARK", 0x200F: "RIGHT-TO-LEFT MARK",
	0x202A: "LEFT-TO-RIGHT EMBEDDING", 0x202B: "RIGHT-TO-LEFT EMBEDDING", 0x202C: "POP DIRECTIONAL FORMATTING",
	0x202D: "LEFT-TO-RIGHT OVERRIDE", 0x202E: "RIGHT-TO-LEFT OVERRIDE",
	0x2028: "LINE SEPARATOR", 0x2029: "PARAGRAPH SEPARATOR",
	0x2066: "LEFT-TO-RIGHT ISOLATE", 0x2067: "RIGHT-TO-LEFT ISOLATE", 0x2068: "FIRST STRONG ISOLATE",
	0x2069: "POP DIRECTIONAL ISOLATE", 0xFEFF: "ZERO WIDTH NO-BREAK SPACE",
}

// RuneName is r as "U+202E RIGHT-TO-LEFT OVERRIDE": its code point and,
// for the characters Text refuses, its Unicode name or class.
func RuneName(r rune) string {
	if n, ok := runeNames[r]; ok {
		return fmt.Sprintf("U+%04X %s", r, n)
	}
	switch {
	case r >= 0x80 && r <= 0x9F:
		return fmt.Sprintf("U+%04X (a C1 control character)", r)
	case r >= 0x206A && r <= 0x206F:
		return fmt.Sprintf("U+%04X (a deprecated format character)", r)
	case r >= 0xFDD0 && r <= 0xFDEF, r&0xFFFE == 0xFFFE:
		return fmt.Sprintf("U+%04X (a noncharacter)", r)
	}
	return fmt.Sprintf("U+%04X", r)
}
