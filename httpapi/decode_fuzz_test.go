package httpapi

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/orders"
	"github.com/imtgt/imtgt-node/sellers"
)

// FuzzDecodeJSON feeds arbitrary bodies to the JSON decoder every route
// uses, for each body type: it never panics, and every refusal is a 400 or
// 413 with a code, never a 500.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"legal_name":"x","business_id":"0105537001232","owner":{"national_id":"1"}}`,
		`{"title":"ข้าว","price":{"amount":"1.00","currency":"THB"},"quantity":1}`,
		`{"buyer":{"address":{}},"items":[{"listing_id":"lst_1","quantity":2}]}`,
		`{} {}`, `{"quantity":"x"}`, `[`, ``, `{"a":1}`, "\xff", `{"title":"\ud800"}`, "{\"title\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	targets := []func() any{
		func() any { return &sellers.Registration{} },
		func() any { return &catalog.Input{} },
		func() any { return &catalog.Patch{} },
		func() any { return &orders.PlaceRequest{} },
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, newTarget := range targets {
			r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
			r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 1<<16)
			err := decodeJSON(r, newTarget())
			if err == nil {
				continue
			}
			he := classify(err)
			if he.status != http.StatusBadRequest && he.status != http.StatusRequestEntityTooLarge {
				t.Fatalf("decode error classified %d (%s): %v", he.status, he.Code, err)
			}
			if he.Code == "" || he.Message == "" {
				t.Fatalf("refusal without code or message: %v", err)
			}
			var mbe *http.MaxBytesError
			if he.status == http.StatusRequestEntityTooLarge && !errors.As(err, &mbe) {
				t.Fatalf("413 without a size error: %v", err)
			}
		}
	})
}
