package catalog_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/store"
	"github.com/imtgt/imtgt-node/validation"
)

var seller = catalog.SellerProfile{ID: "sel_A", LegalName: "Songkhla Seafood Export Co., Ltd.", BusinessID: "0105537001232", Region: "TH-90"}

func newCatalog(t *testing.T) (*catalog.Catalog, *store.DB) {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "node.db"), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return catalog.New(db, catalog.NewIndex(), catalog.Config{Country: "TH", Currency: "THB"}), db
}

func validInput() catalog.Input {
	return catalog.Input{
		Title: "ข้าวหอมมะลิ 5 กก.", Description: "Jasmine rice", HSCode: "100630",
		Price: money.Wire{Amount: "265.00", Currency: "THB"}, Quantity: 10, ShipFrom: "TH-84",
		Images: []string{"https://img.example/rice.jpg"}, Attributes: map[string]string{"weight": "5 kg"},
	}
}

func TestCreateValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*catalog.Input)
		field  string
	}{
		{"missing title", func(in *catalog.Input) { in.Title = "" }, "title"},
		{"title too long", func(in *catalog.Input) { in.Title = strings.Repeat("ก", catalog.MaxTitle+1) }, "title"},
		{"missing hs", func(in *catalog.Input) { in.HSCode = "" }, "hs_code"},
		{"hs chapter only", func(in *catalog.Input) { in.HSCode = "10" }, "hs_code"},
		{"hs not in HS 2022", func(in *catalog.Input) { in.HSCode = "100699" }, "hs_code"},
		{"other currency", func(in *catalog.Input) { in.Price.Currency = "MYR" }, "price.currency"},
		{"float-looking price", func(in *catalog.Input) { in.Price.Amount = "2.655" }, "price.amount"},
		{"zero price", func(in *catalog.Input) { in.Price.Amount = "0" }, "price.amount"},
		{"negative quantity", func(in *catalog.Input) { in.Quantity = -1 }, "quantity"},
		{"ship_from in MY", func(in *catalog.Input) { in.ShipFrom = "MY-07" }, "ship_from"},
		{"image not a URL", func(in *catalog.Input) { in.Images = []string{"file:///etc/passwd"} }, "images[0]"},
		{"too many images", func(in *catalog.Input) { in.Images = make([]string, catalog.MaxImages+1) }, "images"},
		{"empty attribute name", func(in *catalog.Input) { in.Attributes = map[string]string{"": "x"} }, "attributes"},
		{"NUL in the title", func(in *catalog.Input) { in.Title = "rice\x00" }, "title"},
		{"bidi override in the title", func(in *catalog.Input) { in.Title = "rice \u202e001" }, "title"},
		{"blank title", func(in *catalog.Input) { in.Title = "\u200b \u00a0" }, "title"},
		{"invalid UTF-8 in the description", func(in *catalog.Input) { in.Description = "a\xffb" }, "description"},
		{"escape in the description", func(in *catalog.Input) { in.Description = "\x1b[2J" }, "description"},
		{"blank description", func(in *catalog.Input) { in.Description = "\u2060\n" }, "description"},
		{"isolate in an attribute value", func(in *catalog.Input) { in.Attributes = map[string]string{"weight": "5\u2066kg"} }, "attributes.weight"},
		{"control in an attribute name", func(in *catalog.Input) { in.Attributes = map[string]string{"we\x07ight": "5 kg"} }, "attributes"},
	}
	c, _ := newCatalog(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := validInput()
			tt.mutate(&in)
			_, err := c.Create(context.Background(), seller, in)
			ve, ok := validation.As(err)
			require.True(t, ok, "want a validation error, got %v", err)
			require.Equal(t, tt.field, ve.Field)
		})
	}
	require.Zero(t, c.Index().Count(), "nothing refused may be stored")
}

func TestCreateUpdateDeleteSurvivesReload(t *testing.T) {
	ctx := context.Background()
	c, db := newCatalog(t)
	l, err := c.Create(ctx, seller, validInput())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(l.ID, "lst_"))
	require.Equal(t, "TH", l.Origin)
	require.Equal(t, uint64(1), l.Version)

	title := "Hom Mali jasmine rice 5 kg"
	price := money.Wire{Amount: "275.50", Currency: "THB"}
	up, err := c.Update(ctx, seller, l.ID, catalog.Patch{Title: &title, Price: &price})
	require.NoError(t, err)
	require.Equal(t, title, up.Title)
	require.Equal(t, int64(27550), up.Price.Minor)
	require.Equal(t, "100630", up.HSCode, "fields left out of a patch keep their value")
	require.Equal(t, uint64(2), up.Version)

	bad := "0000"
	_, err = c.Update(ctx, seller, l.ID, catalog.Patch{HSCode: &bad})
	require.ErrorIs(t, err, validation.ErrInvalid)
	got, _ := c.Get(l.ID)
	require.Equal(t, "100630", got.HSCode, "a refused patch changes nothing")

	other := seller
	other.ID = "sel_B"
	_, err = c.Update(ctx, other, l.ID, catalog.Patch{Title: &title})
	require.ErrorIs(t, err, catalog.ErrNotOwner)
	require.ErrorIs(t, c.Delete(ctx, "sel_B", l.ID), catalog.ErrNotOwner)

	l2, err := c.Create(ctx, seller, validInput())
	require.NoError(t, err)
	require.NoError(t, c.Delete(ctx, seller.ID, l2.ID))
	require.ErrorIs(t, c.Delete(ctx, seller.ID, l2.ID), catalog.ErrNotFound)

	// A fresh catalog over the same store sees exactly the surviving listing.
	c2 := catalog.New(db, catalog.NewIndex(), catalog.Config{Country: "TH", Currency: "THB"})
	require.NoError(t, c2.Load(ctx))
	require.Equal(t, 1, c2.Index().Count())
	page, err := c2.Search(catalog.Query{Text: "jasmine"})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	require.Equal(t, l.ID, page.Items[0].ID)
}

func TestImportStoresGoodRowsOnly(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t)
	csv := "title,hs_code,price,quantity,ship_from\n" +
		"ทุเรียนหมอนทอง,081340,259.00,5,TH-84\n" +
		"Bad HS,999999,1.00,1,TH-84\n" +
		"Coffee,090111,350,5,TH-84\n" +
		"Bad qty,090111,350,many,TH-84\n"
	rows, refused, err := catalog.ParseImport(strings.NewReader(csv), catalog.FormatCSV, "THB")
	require.NoError(t, err)
	rep, err := c.Import(ctx, seller, rows, refused)
	require.NoError(t, err)
	require.Equal(t, 2, rep.Imported)
	require.Equal(t, 2, rep.Failed)
	require.Len(t, rep.IDs, 2)
	require.Equal(t, 3, rep.Errors[0].Line)
	require.Equal(t, "hs_code", rep.Errors[0].Field)
	require.Equal(t, 5, rep.Errors[1].Line)
	require.Equal(t, "quantity", rep.Errors[1].Field)
	require.Equal(t, 2, c.Index().Count())
	page, err := c.Search(catalog.Query{Text: "หมอนทอง"})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
}

// TestTextRuleCodes: the codes and messages a seller sees for refused text,
// and real titles with joiners and marks that must pass.
func TestTextRuleCodes(t *testing.T) {
	c, _ := newCatalog(t)
	ctx := context.Background()
	for _, tt := range []struct {
		title, code, msg string
	}{
		{"ข้าว\u202e001", "bidi_control", "contains U+202E RIGHT-TO-LEFT OVERRIDE at character 5"},
		{"   ", "required", "blank"},
		{"a\tb", "control_character", "U+0009 CHARACTER TABULATION at character 2"},
	} {
		in := validInput()
		in.Title = tt.title
		_, err := c.Create(ctx, seller, in)
		ve, ok := validation.As(err)
		require.True(t, ok, "%q: %v", tt.title, err)
		require.Equal(t, tt.code, ve.Code, tt.title)
		require.Contains(t, ve.Error(), "title: ")
		require.Contains(t, ve.Error(), tt.msg)
	}
	for _, title := range []string{"ทุเรียน\u200bหมอนทอง", "Kuih Lapis Sarawak", "Kopi Gayo ☕\ufe0f", "کوڤي\u200f 250 g"} {
		in := validInput()
		in.Title = title
		in.Description = "Baris satu\r\n\tBaris dua"
		_, err := c.Create(ctx, seller, in)
		require.NoError(t, err, "%q", title)
	}
}

// TestImportRefusesBadTextByLine: a CSV row with invalid UTF-8 or a control
// character and an NDJSON line with a lone surrogate are refused with their
// line numbers; the other rows are stored.
func TestImportRefusesBadTextByLine(t *testing.T) {
	c, _ := newCatalog(t)
	ctx := context.Background()
	csvIn := "title,hs_code,price,quantity,ship_from,description\n" +
		"Good rice,100630,1.00,1,TH-84,fine\n" +
		"Bad \xff rice,100630,1.00,1,TH-84,\n" +
		"Nul rice,100630,1.00,1,TH-84,\"a\x00b\"\n" +
		"\u202eecir,100630,1.00,1,TH-84,\n" +
		"Good coffee,090111,2.00,1,TH-84,\"two\nlines\"\n"
	rows, bad, err := catalog.ParseImport(strings.NewReader(csvIn), catalog.FormatCSV, "THB")
	require.NoError(t, err)
	rep, err := c.Import(ctx, seller, rows, bad)
	require.NoError(t, err)
	require.Equal(t, 2, rep.Imported)
	require.Len(t, rep.Errors, 3)
	for i, want := range []struct {
		line        int
		field, code string
	}{{3, "title", "invalid_utf8"}, {4, "description", "control_character"}, {5, "title", "bidi_control"}} {
		require.Equal(t, want.line, rep.Errors[i].Line, "%+v", rep.Errors[i])
		require.Equal(t, want.field, rep.Errors[i].Field, "%+v", rep.Errors[i])
		require.Equal(t, want.code, rep.Errors[i].Code, "%+v", rep.Errors[i])
	}

	nd := `{"title":"Good tea","hs_code":"0902","price":{"amount":"1.00","currency":"THB"},"quantity":1,"ship_from":"TH-84"}` + "\n" +
		`{"title":"Bad \ud800 tea","hs_code":"0902","price":{"amount":"1.00","currency":"THB"},"quantity":1,"ship_from":"TH-84"}` + "\n" +
		"{\"title\":\"Bad \xfe tea\",\"hs_code\":\"0902\",\"price\":{\"amount\":\"1.00\",\"currency\":\"THB\"},\"quantity\":1,\"ship_from\":\"TH-84\"}\n" +
		`{"title":"Esc \u001b tea","hs_code":"0902","price":{"amount":"1.00","currency":"THB"},"quantity":1,"ship_from":"TH-84"}` + "\n"
	rows, bad, err = catalog.ParseImport(strings.NewReader(nd), catalog.FormatNDJSON, "THB")
	require.NoError(t, err)
	rep, err = c.Import(ctx, seller, rows, bad)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Imported)
	require.Len(t, rep.Errors, 3)
	for i, want := range []struct {
		line int
		code string
		msg  string
	}{{2, "invalid_utf8", "lone surrogate escape \\ud800"}, {3, "invalid_utf8", "not valid UTF-8"}, {4, "control_character", "U+001B ESCAPE"}} {
		require.Equal(t, want.line, rep.Errors[i].Line, "%+v", rep.Errors[i])
		require.Equal(t, "title", rep.Errors[i].Field, "%+v", rep.Errors[i])
		require.Equal(t, want.code, rep.Errors[i].Code, "%+v", rep.Errors[i])
		require.Contains(t, rep.Errors[i].Message, want.msg)
	}
	require.Equal(t, 3, c.Index().Count(), "only the good rows are stored")
}
