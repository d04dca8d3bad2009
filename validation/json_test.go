package validation_test

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/validation"
)

func TestJSONStrings(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		field      string // "" when the body is accepted
		contains   string
	}{
		{"plain", `{"title":"ข้าว","price":{"amount":"1.00"}}`, "", ""},
		{"escaped surrogate pair", `{"title":"\ud83c\udf5a rice"}`, "", ""},
		{"escaped BMP character and quote", `{"title":"\u0e02\"\\"}`, "", ""},
		{"not JSON at all", `]]"}`, "", ""},
		{"invalid UTF-8 in a value", "{\"title\":\"Kopi \xff\"}", "title", "not valid UTF-8 at byte 16"},
		{"lone high surrogate", `{"title":"a\ud800"}`, "title", `lone surrogate escape \ud800 at byte 12`},
		{"high surrogate before another high", `{"title":"\uD800\uD800"}`, "title", `\uD800`},
		{"high surrogate before a plain escape", `{"title":"\ud800\n"}`, "title", "high surrogate must be followed"},
		{"lone low surrogate", `{"title":"\udc00x"}`, "title", `\udc00`},
		{"truncated high surrogate at the end", `{"title":"\ud800`, "title", "lone surrogate"},
		{"nested object", `{"buyer":{"address":{"line1":"\udfff"}}}`, "buyer.address.line1", "lone surrogate"},
		{"array element", `{"images":["https://a","x\ud800"]}`, "images[1]", "lone surrogate"},
		{"object in an array", `{"items":[{"listing_id":"a"},{"listing_id":"\ud800"}]}`, "items[1].listing_id", "lone surrogate"},
		{"member after a nested value", `{"a":{"b":1},"title":"\ud800"}`, "title", "lone surrogate"},
		{"escaped name", `{"ti\u0074le":"\ud800"}`, "title", "lone surrogate"},
		{"bad field name", "{\"attributes\":{\"col\xffour\":\"red\"}}", "attributes", "a field name is not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validation.JSONStrings([]byte(tc.body))
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			ve, ok := validation.As(err)
			require.True(t, ok)
			require.Equal(t, tc.field, ve.Field)
			require.Equal(t, validation.CodeInvalidUTF8, ve.Code)
			require.Contains(t, err.Error(), tc.contains)
		})
	}
}

// FuzzJSONStrings: the scanner never panics, and a JSON text it accepts
// decodes to strings exactly as sent: no U+FFFD that was not in the text.
func FuzzJSONStrings(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `{"a":"\ud800"}`, `["\ud83c\udf5a"]`, "{\"a\":\"\xff\"}", `"\u`, `{"a":[1,{"b":"\\"}]}`, `"\ud800\u`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := validation.JSONStrings(b)
		var v any
		if err != nil || json.Unmarshal(b, &v) != nil {
			return
		}
		if strings.Contains(string(b), "\ufffd") || strings.Contains(strings.ToLower(string(b)), `\ufffd`) {
			return // a replacement character the client sent itself
		}
		require.True(t, utf8.Valid(b), "accepted invalid UTF-8: %q", b)
		var walk func(any)
		walk = func(v any) {
			switch x := v.(type) {
			case string:
				require.NotContains(t, x, "\ufffd", "a lone surrogate was accepted in %q", b)
			case []any:
				for _, e := range x {
					walk(e)
				}
			case map[string]any:
				for k, e := range x {
					require.NotContains(t, k, "\ufffd", "%q", b)
					walk(e)
				}
			}
		}
		walk(v)
	})
}
