package federation

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/federation/pb"
)

// TestToRemoteTextRule: a peer's record goes through the same text rule as
// a local seller's listing, so a member cannot inject controls, bidi
// overrides, invalid UTF-8 or blank text.
func TestToRemoteTextRule(t *testing.T) {
	good := func() *pb.ListingRecord {
		return &pb.ListingRecord{Origin: "ID", Seq: 1, Op: pb.ListingRecord_OP_UPSERT, ListingId: "lst_1",
			Listing: &pb.Listing{Id: "lst_1", Seller: &pb.SellerProfile{Id: "sel_1", LegalName: "Koperasi Kopi Gayo"},
				Title: "Kopi Gayo", Description: "Biji sangrai\n250 g", HsCode: "090111",
				Price: &pb.Money{Minor: 100, Currency: "IDR"}, ShipFrom: "ID-AC", Attributes: map[string]string{"berat": "250 g"}}}
	}
	for _, tt := range []struct {
		name   string
		mutate func(*pb.Listing)
		want   string // "" = accepted
	}{
		{"good", func(*pb.Listing) {}, ""},
		{"Thai title with a zero-width space", func(l *pb.Listing) { l.Title = "กาแฟ\u200bดอยช้าง" }, ""},
		{"NUL in the title", func(l *pb.Listing) { l.Title = "Kopi\x00" }, "title: contains U+0000 NULL at character 5"},
		{"bidi override in the title", func(l *pb.Listing) { l.Title = "Kopi \u202e" }, "U+202E RIGHT-TO-LEFT OVERRIDE"},
		{"blank title", func(l *pb.Listing) { l.Title = "\u200b\u200d " }, "title"},
		{"invalid UTF-8 in the description", func(l *pb.Listing) { l.Description = "a\xffb" }, "description: is not valid UTF-8"},
		{"escape in the description", func(l *pb.Listing) { l.Description = "\x1b]0;x\x07" }, "U+001B ESCAPE"},
		{"isolate in an attribute", func(l *pb.Listing) { l.Attributes = map[string]string{"berat": "\u2066250 g"} }, "attributes.berat"},
		{"override in the seller's legal name", func(l *pb.Listing) { l.Seller.LegalName = "Koperasi \u202d" }, "seller.legal_name"},
		{"no title or legal name (the policy leaves them out)", func(l *pb.Listing) { l.Title, l.Seller.LegalName = "", "" }, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := good()
			tt.mutate(rec.Listing)
			r, err := toRemote(rec, nil)
			require.NoError(t, err, "a signed record breaking the text rule still continues the log")
			if tt.want == "" {
				require.NoError(t, r.Withheld)
				return
			}
			require.True(t, errors.Is(r.Withheld, ErrBadRecord), "%v", r.Withheld)
			require.ErrorContains(t, r.Withheld, tt.want)
			require.NotNil(t, r.Listing)
		})
	}
}
