package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/internal/testnet"
)

// rawBody is v as JSON with each placeholder replaced verbatim by its
// raw text: bytes and escapes json.Marshal would never write.
func rawBody(t *testing.T, v any, raw map[string]string) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	s := string(b)
	for k, r := range raw {
		require.Contains(t, s, `"`+k+`"`)
		s = strings.Replace(s, `"`+k+`"`, `"`+r+`"`, 1)
	}
	return s
}

// TestTextIsNotSilentlyReplaced: invalid UTF-8 and lone surrogate escapes
// in a JSON body are refused with 400 naming the field (encoding/json alone
// would store U+FFFD), and control characters, bidi overrides and blank
// titles with 422 naming the field and the code point. Nothing refused is
// stored; real text with joiners and escaped surrogate pairs is kept as sent.
func TestTextIsNotSilentlyReplaced(t *testing.T) {
	n := testnet.Start(t, "TH")
	_, tok := n.ActiveSeller(testnet.THSeller("Songkhla Seafood Export Co., Ltd.", 0))
	listing := func(title string) map[string]any { return testnet.Listing(title, "030749", "420.00") }
	withAttr := func(v string) map[string]any {
		m := listing("ปลาหมึกแห้ง")
		m["attributes"] = map[string]string{"weight": v}
		return m
	}
	seller := testnet.THSeller("X Co., Ltd.", 1)
	seller["owner"].(map[string]string)["address"] = "ADDR"

	tests := []struct {
		name, path, token, body string
		status                  int
		code, field, message    string
	}{
		{"invalid UTF-8 in a title", "/v1/listings", tok, rawBody(t, listing("TITLE"), map[string]string{"TITLE": "ปลา \xff"}),
			400, "invalid_utf8", "title", "not valid UTF-8 at byte"},
		{"Latin-1 description", "/v1/listings", tok, rawBody(t, map[string]any{"title": "x", "description": "DESC", "hs_code": "030749",
			"price": map[string]string{"amount": "1.00", "currency": "THB"}, "quantity": 1, "ship_from": "TH-90"}, map[string]string{"DESC": "caf\xe9"}),
			400, "invalid_utf8", "description", "not valid UTF-8"},
		{"lone high surrogate in a title", "/v1/listings", tok, rawBody(t, listing("TITLE"), map[string]string{"TITLE": `rice \ud800`}),
			400, "invalid_utf8", "title", `lone surrogate escape \ud800`},
		{"lone low surrogate in an attribute", "/v1/listings", tok, rawBody(t, withAttr("VAL"), map[string]string{"VAL": `\uDC00 kg`}),
			400, "invalid_utf8", "attributes.weight", "lone surrogate"},
		{"lone surrogate in a seller's address", "/v1/sellers", "", rawBody(t, seller, map[string]string{"ADDR": `99 \ud83c Moo 4`}),
			400, "invalid_utf8", "owner.address", "lone surrogate"},
		{"NUL escape in a title", "/v1/listings", tok, rawBody(t, listing("TITLE"), map[string]string{"TITLE": `rice\u0000`}),
			422, "control_character", "title", "title: contains U+0000 NULL at character 5"},
		{"right-to-left override in a title", "/v1/listings", tok, rawBody(t, listing("TITLE"), map[string]string{"TITLE": `ปลา\u202e001`}),
			422, "bidi_control", "title", "title: contains U+202E RIGHT-TO-LEFT OVERRIDE at character 4"},
		{"isolate in an attribute", "/v1/listings", tok, rawBody(t, withAttr("VAL"), map[string]string{"VAL": `5\u2067kg`}),
			422, "bidi_control", "attributes.weight", "U+2067 RIGHT-TO-LEFT ISOLATE"},
		{"zero-width title", "/v1/listings", tok, rawBody(t, listing("TITLE"), map[string]string{"TITLE": `\u200b\u200d\ufeff `}),
			422, "required", "title", "blank"},
		{"escape sequence in a legal name", "/v1/sellers", "", rawBody(t, testnet.THSeller("NAME", 2), map[string]string{"NAME": `\u001b[31mX Co.`}),
			422, "control_character", "legal_name", "U+001B ESCAPE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := n.Do("POST", tt.path, tt.token, tt.body)
			require.Equal(t, tt.status, r.Status, string(r.Body))
			code, field := errField(r)
			require.Equal(t, tt.code, code, string(r.Body))
			require.Equal(t, tt.field, field, string(r.Body))
			require.Contains(t, r.JSON["error"].(map[string]any)["message"], tt.message)
		})
	}
	r := n.Do("GET", "/v1/catalog/search", tok, nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Empty(t, r.JSON["items"], "nothing refused may be stored")

	// PATCH goes through the same decoder.
	title := "ปลาหมึกแห้ง 🦑 สงขลา"
	r = n.Do("POST", "/v1/listings", tok, rawBody(t, listing("TITLE"), map[string]string{"TITLE": `ปลาหมึกแห้ง \ud83e\udd91 สงขลา`}))
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	require.Equal(t, title, r.JSON["title"], "an escaped surrogate pair is one character")
	id := r.JSON["id"].(string)
	r = n.Do("PATCH", "/v1/listings/"+id, tok, `{"description":"ok \udfff"}`)
	require.Equal(t, http.StatusBadRequest, r.Status, string(r.Body))
	code, field := errField(r)
	require.Equal(t, "invalid_utf8", code)
	require.Equal(t, "description", field)
	r = n.Do("PATCH", "/v1/listings/"+id, tok, `{"description":"Baris satu\r\n\tกาแฟ\u200bดอย"}`)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.Equal(t, title, r.JSON["title"])
}
