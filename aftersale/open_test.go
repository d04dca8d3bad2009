package aftersale_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/aftersale"
	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/validation"
)

// t0 is the clock every test starts from; deadlines are measured from it.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

var myr10 = money.Wire{Amount: "10", Currency: "MYR"}

var deadlines = aftersale.Deadlines{RespondWithin: 48, ResolveWithin: 14}

const sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func thb(s string) money.Amount {
	a, err := money.Parse(s, "THB")
	if err != nil {
		panic(err)
	}
	return a
}

func wire(s string) *money.Wire { return &money.Wire{Amount: s, Currency: "THB"} }

// order is a shipped two-listing order paid 1000.00 THB.
func order() aftersale.OrderView {
	return aftersale.OrderView{
		ID: "ord_01", MarketplaceID: "mkt_1", BuyerCountry: "MY", SellerCountry: "TH", SellerID: "sel_1",
		Status: aftersale.OrderShipped,
		Items:  []aftersale.ItemQty{{ListingID: "lst_A", Quantity: 2}, {ListingID: "lst_B", Quantity: 1}},
		Paid:   thb("1000"),
	}
}

func input(remedy aftersale.RemedyKind) aftersale.OpenInput {
	return aftersale.OpenInput{
		Category: aftersale.Damaged, Description: "The jar arrived broken.\nPhoto attached.",
		Items:           []aftersale.ItemQty{{ListingID: "lst_A", Quantity: 1}},
		RemedyRequested: remedy,
		Attachments:     []aftersale.Attachment{{SHA256: sha, Size: 123456, ContentType: "image/jpeg"}},
	}
}

func TestOpen(t *testing.T) {
	in := input(aftersale.RemedyRefund)
	in.Items = append(in.Items, aftersale.ItemQty{ListingID: "lst_A", Quantity: 1}) // merged
	is, err := aftersale.Open(order(), in, deadlines, t0)
	require.NoError(t, err)
	require.True(t, aftersale.ValidID(is.ID), is.ID)
	require.Equal(t, aftersale.StatusOpen, is.Status)
	require.Equal(t, t0.Add(48*time.Hour), is.RespondBy)
	require.Equal(t, t0.AddDate(0, 0, 14), is.ResolveBy)
	require.Equal(t, []aftersale.ItemQty{{ListingID: "lst_A", Quantity: 2}}, is.Items)
	require.Equal(t, "mkt_1", is.MarketplaceID)
	require.Equal(t, "TH", is.SellerCountry)
	require.Equal(t, []aftersale.Event{{Status: aftersale.StatusOpen, At: t0, By: aftersale.ByMarketplace}}, is.History)

	// The same input with the same ID is the same issue: Open is a pure function.
	in.ID = is.ID
	again, err := aftersale.Open(order(), in, deadlines, t0)
	require.NoError(t, err)
	require.Equal(t, is, again)

	// The JSON uses the contract's field names.
	b, err := json.Marshal(is)
	require.NoError(t, err)
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &m))
	for _, k := range []string{"id", "order_id", "marketplace_id", "buyer_country", "seller_country", "seller_id",
		"category", "description", "items", "remedy_requested", "attachments", "status", "respond_by", "resolve_by",
		"responses", "refunds", "history", "created_at", "updated_at"} {
		require.Contains(t, m, k)
	}
	require.JSONEq(t, `"2026-03-04T09:00:00Z"`, string(m["respond_by"]))
	var back aftersale.Issue
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, *is, back)

	in.ID = "ord_01"
	_, err = aftersale.Open(order(), in, deadlines, t0)
	require.ErrorContains(t, err, "not an issue ID")
}

func TestOpenRefuses(t *testing.T) {
	for _, tc := range []struct {
		name        string
		edit        func(in *aftersale.OpenInput)
		field, code string
		contains    string
	}{
		{"no category", func(in *aftersale.OpenInput) { in.Category = "" }, "category", "required", "category is required"},
		{"unknown category", func(in *aftersale.OpenInput) { in.Category = "late" }, "category", "invalid_category", `"late" is not one of`},
		{"no remedy", func(in *aftersale.OpenInput) { in.RemedyRequested = "" }, "remedy_requested", "required", "remedy_requested is required"},
		{"unknown remedy", func(in *aftersale.OpenInput) { in.RemedyRequested = "voucher" }, "remedy_requested", "invalid_remedy", `"voucher"`},
		{"no description", func(in *aftersale.OpenInput) { in.Description = "" }, "description", "required", "description is required"},
		{"blank description", func(in *aftersale.OpenInput) { in.Description = " \u200b " }, "description", validation.CodeBlank, "blank"},
		{"bidi override in the description", func(in *aftersale.OpenInput) { in.Description = "paid \u202e0001" }, "description", validation.CodeBidi, "U+202E"},
		{"description too long", func(in *aftersale.OpenInput) { in.Description = strings.Repeat("ก", aftersale.MaxDescription+1) }, "description", "too_long", "5001 characters"},
		{"no items", func(in *aftersale.OpenInput) { in.Items = nil }, "items", "required", "at least one item"},
		{"item without listing", func(in *aftersale.OpenInput) { in.Items[0].ListingID = "" }, "items[0].listing_id", "required", "required"},
		{"item not in the order", func(in *aftersale.OpenInput) { in.Items[0].ListingID = "lst_Z" }, "items[0].listing_id", "not_in_order", `"lst_Z" is not an item of order ord_01`},
		{"zero quantity", func(in *aftersale.OpenInput) { in.Items[0].Quantity = 0 }, "items[0].quantity", "invalid_quantity", "at least 1"},
		{"more than ordered", func(in *aftersale.OpenInput) { in.Items[0].Quantity = 3 }, "items[0].quantity", "exceeds_ordered", "3 of lst_A claimed, but 2 were ordered"},
		{"more than ordered across lines", func(in *aftersale.OpenInput) {
			in.Items = []aftersale.ItemQty{{ListingID: "lst_B", Quantity: 1}, {ListingID: "lst_B", Quantity: 1}}
		}, "items[1].quantity", "exceeds_ordered", "2 of lst_B claimed, but 1 were ordered"},
		{"too many attachments", func(in *aftersale.OpenInput) {
			in.Attachments = make([]aftersale.Attachment, aftersale.MaxAttachments+1)
		}, "attachments", "too_many", "at most 10"},
		{"hash not hex", func(in *aftersale.OpenInput) { in.Attachments[0].SHA256 = strings.Repeat("z", 64) }, "attachments[0].sha256", "invalid_sha256", "64 hex digits"},
		{"hash too short", func(in *aftersale.OpenInput) { in.Attachments[0].SHA256 = sha[:62] }, "attachments[0].sha256", "invalid_sha256", "64 hex digits"},
		{"empty attachment", func(in *aftersale.OpenInput) { in.Attachments[0].Size = 0 }, "attachments[0].size", "invalid_size", "1 to"},
		{"no content type", func(in *aftersale.OpenInput) { in.Attachments[0].ContentType = "" }, "attachments[0].content_type", "required", "required"},
		{"content type with parameters", func(in *aftersale.OpenInput) { in.Attachments[0].ContentType = "image/jpeg; q=1" }, "attachments[0].content_type", "invalid_content_type", "without parameters"},
		{"content type not a media type", func(in *aftersale.OpenInput) { in.Attachments[0].ContentType = "jpeg photo" }, "attachments[0].content_type", "invalid_content_type", "media type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := input(aftersale.RemedyRefund)
			tc.edit(&in)
			_, err := aftersale.Open(order(), in, deadlines, t0)
			require.ErrorIs(t, err, validation.ErrInvalid)
			ve, ok := validation.As(err)
			require.True(t, ok)
			require.Equal(t, tc.field, ve.Field)
			require.Equal(t, tc.code, ve.Code)
			require.Contains(t, err.Error(), tc.contains)
			require.True(t, strings.HasPrefix(err.Error(), tc.field+": "), err.Error())
		})
	}
}

func TestOpenEligibility(t *testing.T) {
	late := t0.Add(-time.Hour)  // the expected delivery passed an hour ago
	coming := t0.Add(time.Hour) // it is still to come
	for _, tc := range []struct {
		status   string
		category aftersale.Category
		expected time.Time
		ok       bool
	}{
		{aftersale.OrderShipped, aftersale.Damaged, time.Time{}, true},
		{aftersale.OrderDelivered, aftersale.WrongItem, time.Time{}, true},
		{aftersale.OrderShipped, aftersale.NotReceived, coming, true},
		{aftersale.OrderPacked, aftersale.NotReceived, late, true},
		{aftersale.OrderAccepted, aftersale.NotReceived, late, true},
		{aftersale.OrderReceived, aftersale.NotReceived, late, true},
		{aftersale.OrderPacked, aftersale.NotReceived, coming, false},
		{aftersale.OrderPacked, aftersale.NotReceived, t0, false}, // at, not past
		{aftersale.OrderPacked, aftersale.NotReceived, time.Time{}, false},
		{aftersale.OrderPacked, aftersale.Damaged, late, false},
		{"submitted", aftersale.NotReceived, late, false},
		{"cancelled", aftersale.NotReceived, late, false},
		{"rejected", aftersale.Other, time.Time{}, false},
	} {
		t.Run(tc.status+"/"+string(tc.category), func(t *testing.T) {
			o := order()
			o.Status, o.ExpectedDelivery = tc.status, tc.expected
			in := input(aftersale.RemedyRefund)
			in.Category = tc.category
			_, err := aftersale.Open(o, in, deadlines, t0)
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, aftersale.ErrNotEligible)
			require.Contains(t, err.Error(), "the order is "+tc.status)
		})
	}
}

func TestDeadlinesCheck(t *testing.T) {
	for _, d := range []aftersale.Deadlines{{0, 14}, {48, 0}, {-1, 3}, {24 * 8, 7}} {
		_, err := aftersale.Open(order(), input(aftersale.RemedyRefund), d, t0)
		require.ErrorIs(t, err, aftersale.ErrBadDeadlines, "%+v", d)
	}
	require.NoError(t, aftersale.Deadlines{RespondWithin: 24 * 7, ResolveWithin: 7}.Check())
}

func TestDecodeOpenInput(t *testing.T) {
	in, err := aftersale.DecodeOpenInput([]byte(`{"category":"not_received","description":"Never came","items":[{"listing_id":"lst_A","quantity":2}],"remedy_requested":"refund"}`))
	require.NoError(t, err)
	require.Equal(t, aftersale.NotReceived, in.Category)
	require.Equal(t, []aftersale.ItemQty{{ListingID: "lst_A", Quantity: 2}}, in.Items)
	for _, tc := range []struct{ body, field, contains string }{
		{`{"category":"damaged","colour":"red"}`, "", "unknown field"},
		{`{"items":[{"listing_id":"lst_A","quantity":"2"}]}`, "items.quantity", "must be a JSON int64"},
		{`{"description":"bad \udc00"}`, "description", "surrogate"},
		{`{} {}`, "", "exactly one JSON object"},
		{`{"id":"iss_01"}`, "", "unknown field"}, // the ID is never the client's
	} {
		_, err := aftersale.DecodeOpenInput([]byte(tc.body))
		require.ErrorIs(t, err, validation.ErrInvalid, tc.body)
		ve, _ := validation.As(err)
		require.Equal(t, tc.field, ve.Field, tc.body)
		require.Contains(t, err.Error(), tc.contains, tc.body)
	}
}

// FuzzDecodeOpenInput: decoding outside JSON never panics; what decodes
// encodes back to the same input (as JSON), and what Open accepts has a description
// people can read.
func FuzzDecodeOpenInput(f *testing.F) {
	f.Add([]byte(`{"category":"damaged","description":"Broken","items":[{"listing_id":"lst_A","quantity":1}],"remedy_requested":"refund","attachments":[{"sha256":"` + sha + `","size":10,"content_type":"image/png"}]}`))
	f.Add([]byte(`{"category":"other","description":"\u202e","items":[]}`))
	f.Add([]byte(`{"items":[{"listing_id":"lst_B","quantity":9223372036854775807},{"listing_id":"lst_B","quantity":9223372036854775807}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := aftersale.DecodeOpenInput(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(in)
		require.NoError(t, err)
		again, err := aftersale.DecodeOpenInput(out)
		require.NoError(t, err)
		out2, err := json.Marshal(again)
		require.NoError(t, err)
		require.Equal(t, string(out), string(out2)) // nil and empty attachments encode alike
		is, err := aftersale.Open(order(), in, deadlines, t0)
		if err != nil {
			return
		}
		require.NoError(t, validation.Text("description", is.Description, validation.Multiline))
		require.NotEmpty(t, is.Items)
		for _, it := range is.Items {
			require.Positive(t, it.Quantity)
		}
	})
}
