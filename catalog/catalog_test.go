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
