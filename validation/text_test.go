package validation_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/validation"
)

func TestTextAccepts(t *testing.T) {
	for _, tc := range []struct {
		name, s string
		kind    validation.TextKind
	}{
		{"empty (required is the caller's rule)", "", validation.Line},
		{"Thai title", "ข้าวหอมมะลิ 5 กก.", validation.Line},
		{"Thai with a zero-width space between words", "ทุเรียน\u200bหมอนทอง", validation.Line},
		{"Malay", "Kuih Lapis Sarawak — 1 kg, buatan tangan", validation.Line},
		{"Indonesian", "Kopi Luwak Gayo Aceh 250 g (biji sangrai)", validation.Line},
		{"Jawi with a right-to-left mark", "کوڤي \u200f250 g", validation.Line},
		{"Devanagari with ZWJ and ZWNJ", "क्\u200dष र्\u200cय", validation.Line},
		{"emoji ZWJ sequence and a variation selector", "Batik 👩\u200d🎨 ❤\ufe0f", validation.Line},
		{"flag tag sequence", "🏴\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F tea", validation.Line},
		{"soft hyphen inside a word", "Pisang\u00adgoreng", validation.Line},
		{"replacement character sent as such", "size \ufffd", validation.Line},
		{"description with paragraphs and tabs", "Line one\n\tLine two\r\nLine three", validation.Multiline},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, validation.Text("title", tc.s, tc.kind))
		})
	}
}

func TestTextRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, s  string
		kind     validation.TextKind
		code     string
		contains string
	}{
		{"NUL", "Rice\x00 5 kg", validation.Line, validation.CodeControl, "U+0000 NULL at character 5"},
		{"escape sequence", "\x1b[31mSALE", validation.Multiline, validation.CodeControl, "U+001B ESCAPE at character 1"},
		{"tab in a title", "Rice\t5 kg", validation.Line, validation.CodeControl, "U+0009 CHARACTER TABULATION at character 5 (this field is one line)"},
		{"line feed in a title", "Rice\n5 kg", validation.Line, validation.CodeControl, "U+000A LINE FEED at character 5"},
		{"lone carriage return in a description", "a\rb", validation.Multiline, validation.CodeControl, "U+000D CARRIAGE RETURN at character 2 not followed by a line feed"},
		{"carriage return at the end", "a\r", validation.Multiline, validation.CodeControl, "U+000D CARRIAGE RETURN"},
		{"form feed in a description", "a\fb", validation.Multiline, validation.CodeControl, "U+000C FORM FEED"},
		{"DEL", "a\x7f", validation.Line, validation.CodeControl, "U+007F DELETE at character 2"},
		{"C1 control", "a\u0085b", validation.Multiline, validation.CodeControl, "U+0085 (a C1 control character) at character 2"},
		{"right-to-left override", "ข้าว\u202e001 THB", validation.Line, validation.CodeBidi, "U+202E RIGHT-TO-LEFT OVERRIDE at character 5"},
		{"left-to-right embedding", "\u202aa", validation.Line, validation.CodeBidi, "U+202A LEFT-TO-RIGHT EMBEDDING at character 1"},
		{"pop directional formatting", "a\u202c", validation.Multiline, validation.CodeBidi, "U+202C POP DIRECTIONAL FORMATTING"},
		{"right-to-left isolate", "a\u2067b\u2069", validation.Line, validation.CodeBidi, "U+2067 RIGHT-TO-LEFT ISOLATE at character 2"},
		{"first strong isolate", "\u2068x", validation.Line, validation.CodeBidi, "U+2068 FIRST STRONG ISOLATE"},
		{"deprecated format character", "a\u206eb", validation.Line, validation.CodeControl, "U+206E (a deprecated format character)"},
		{"line separator", "a\u2028b", validation.Multiline, validation.CodeControl, "U+2028 LINE SEPARATOR at character 2 (use a line feed)"},
		{"noncharacter", "a\uffff", validation.Line, validation.CodeControl, "U+FFFF (a noncharacter)"},
		{"invalid UTF-8", "Kopi \xff", validation.Line, validation.CodeInvalidUTF8, "not valid UTF-8 at byte 6 (character 6)"},
		{"encoded surrogate (CESU-8)", "a\xed\xa0\x80", validation.Multiline, validation.CodeInvalidUTF8, "not valid UTF-8 at byte 2"},
		{"truncated sequence", "ข\xe0\xb8", validation.Line, validation.CodeInvalidUTF8, "at byte 4 (character 2)"},
		{"spaces only", "   ", validation.Line, validation.CodeBlank, "blank"},
		{"no-break and ideographic spaces", "\u00a0\u3000", validation.Line, validation.CodeBlank, "blank"},
		{"zero-width characters only", "\u200b\u200c\u200d\u2060\ufeff", validation.Line, validation.CodeBlank, "blank"},
		{"soft hyphen and combining grapheme joiner", "\u00ad\u034f", validation.Line, validation.CodeBlank, "blank"},
		{"variation selectors", "\ufe0f\U000E0100", validation.Line, validation.CodeBlank, "blank"},
		{"marks only", "\u200e\u200f\u061c", validation.Line, validation.CodeBlank, "blank"},
		{"Hangul filler and braille blank", "\u3164\u2800", validation.Line, validation.CodeBlank, "blank"},
		{"blank description with line feeds", "\n\t\r\n", validation.Multiline, validation.CodeBlank, "blank"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validation.Text("description", tc.s, tc.kind)
			require.Error(t, err)
			require.ErrorIs(t, err, validation.ErrInvalid)
			ve, ok := validation.As(err)
			require.True(t, ok)
			require.Equal(t, "description", ve.Field)
			require.Equal(t, tc.code, ve.Code)
			require.Contains(t, err.Error(), tc.contains)
			require.True(t, strings.HasPrefix(err.Error(), "description: "), err.Error())
			require.True(t, utf8.ValidString(err.Error()), "the message must be printable as it is")
		})
	}
}

func TestRuneName(t *testing.T) {
	require.Equal(t, "U+202E RIGHT-TO-LEFT OVERRIDE", validation.RuneName(0x202E))
	require.Equal(t, "U+0000 NULL", validation.RuneName(0))
	require.Equal(t, "U+0041", validation.RuneName('A'))
	require.Equal(t, "U+1FFFE (a noncharacter)", validation.RuneName(0x1FFFE))
}

// FuzzText: Text never panics, and whatever it accepts is valid UTF-8
// without a refused character and is not blank.
func FuzzText(f *testing.F) {
	for _, s := range []string{"", "ข้าว", "a\x00", "\u202e", "\xff", "\u200b", "a\r\n", "a\r"} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, multi bool) {
		kind := validation.Line
		if multi {
			kind = validation.Multiline
		}
		if validation.Text("f", s, kind) != nil {
			return
		}
		require.True(t, utf8.ValidString(s))
		for i, r := range s {
			if r < 0x20 {
				require.True(t, multi, "a control in a line: %q", s)
				require.True(t, r == '\n' || r == '\t' || r == '\r' && strings.HasPrefix(s[i+1:], "\n"), "%q", s)
			}
			require.False(t, r >= 0x7F && r <= 0x9F || r >= 0x202A && r <= 0x202E || r >= 0x2066 && r <= 0x2069, "%q", s)
		}
	})
}
