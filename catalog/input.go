package catalog

import (
	"errors"
	"fmt"
	"net/url"
	"unicode/utf8"

	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/refdata"
	"github.com/imtgt/imtgt-node/validation"
)

// Limits on a listing's fields. They bound memory per listing (100,000
// listings must fit comfortably in a node's index) and keep a catalog
// record well under the federation's maximum message size.
const (
	MaxTitle       = 200
	MaxDescription = 5000
	MaxImages      = 10
	MaxImageURL    = 2048
	MaxAttributes  = 30
	MaxAttrKey     = 64
	MaxAttrValue   = 256
	MaxQuantity    = 1_000_000_000
)

// Input is a listing as a seller sends it: the body of POST /v1/listings
// and one row of a bulk import.
type Input struct {
	Title       string            `json:"title"`
	Description string            `json:"description"`
	HSCode      string            `json:"hs_code"`
	Price       money.Wire        `json:"price"`
	Quantity    int64             `json:"quantity"`
	ShipFrom    string            `json:"ship_from"`
	Images      []string          `json:"images"`
	Attributes  map[string]string `json:"attributes"`
}

// Patch is a partial update: the body of PATCH /v1/listings/{id}. A field
// left out (nil) keeps its value.
type Patch struct {
	Title       *string            `json:"title"`
	Description *string            `json:"description"`
	HSCode      *string            `json:"hs_code"`
	Price       *money.Wire        `json:"price"`
	Quantity    *int64             `json:"quantity"`
	ShipFrom    *string            `json:"ship_from"`
	Images      *[]string          `json:"images"`
	Attributes  *map[string]string `json:"attributes"`
}

// apply returns the input that results from applying p to l.
func (p *Patch) apply(l *Listing) Input {
	in := Input{
		Title: l.Title, Description: l.Description, HSCode: l.HSCode,
		Price: l.Price.ToWire(), Quantity: l.Quantity, ShipFrom: l.ShipFrom,
		Images: l.Images, Attributes: l.Attributes,
	}
	if p.Title != nil {
		in.Title = *p.Title
	}
	if p.Description != nil {
		in.Description = *p.Description
	}
	if p.HSCode != nil {
		in.HSCode = *p.HSCode
	}
	if p.Price != nil {
		in.Price = *p.Price
	}
	if p.Quantity != nil {
		in.Quantity = *p.Quantity
	}
	if p.ShipFrom != nil {
		in.ShipFrom = *p.ShipFrom
	}
	if p.Images != nil {
		in.Images = *p.Images
	}
	if p.Attributes != nil {
		in.Attributes = *p.Attributes
	}
	return in
}

// validate checks an input against the node's country and currency and
// returns its parsed price. The error is a *validation.Error naming the field.
func (in *Input) validate(country, currency string) (money.Amount, error) {
	if in.Title == "" {
		return money.Amount{}, validation.Field("title", "required", "title is required")
	}
	if err := checkText(in); err != nil {
		return money.Amount{}, err
	}
	if in.HSCode == "" {
		return money.Amount{}, validation.Field("hs_code", "required", "hs_code is required")
	}
	if err := refdata.ValidListingHS(in.HSCode); err != nil {
		return money.Amount{}, validation.Wrap("hs_code", "invalid_hs_code", err)
	}
	if in.Price.Currency != currency {
		return money.Amount{}, validation.Field("price.currency", "wrong_currency",
			"price.currency must be %s, this node's currency (got %q)", currency, in.Price.Currency)
	}
	price, err := money.FromWire(in.Price)
	if err != nil {
		return money.Amount{}, validation.Wrap("price.amount", "invalid_amount", err)
	}
	if price.Minor <= 0 {
		return money.Amount{}, validation.Field("price.amount", "not_positive", "price.amount must be greater than zero")
	}
	if price.Minor > money.MaxMinor {
		return money.Amount{}, validation.Field("price.amount", "too_large", "price.amount is larger than the node accepts")
	}
	if in.Quantity < 0 || in.Quantity > MaxQuantity {
		return money.Amount{}, validation.Field("quantity", "out_of_range", "quantity must be between 0 and %d", MaxQuantity)
	}
	if in.ShipFrom == "" {
		return money.Amount{}, validation.Field("ship_from", "required", "ship_from is required (an ISO 3166-2 code such as %s-90)", country)
	}
	if err := refdata.ValidRegion(country, in.ShipFrom); err != nil {
		return money.Amount{}, validation.Wrap("ship_from", "invalid_region", err)
	}
	if len(in.Images) > MaxImages {
		return money.Amount{}, validation.Field("images", "too_many", "at most %d images", MaxImages)
	}
	for i, img := range in.Images {
		field := fmt.Sprintf("images[%d]", i)
		if len(img) > MaxImageURL {
			return money.Amount{}, validation.Field(field, "too_long", "%s is longer than %d bytes", field, MaxImageURL)
		}
		u, err := url.Parse(img)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return money.Amount{}, validation.Field(field, "invalid_url", "%s must be an http(s) URL", field)
		}
	}
	return price, nil
}

// checkText applies the free-text rule (validation.Text) and the length
// limits to the fields of a listing people read: title, description,
// attribute names and values. Peers' records go through the same check
// (CheckText), so a member cannot put into this catalog text its own
// sellers could not.
func checkText(in *Input) error {
	for _, f := range []struct {
		field, value string
		kind         validation.TextKind
		max          int
	}{
		{"title", in.Title, validation.Line, MaxTitle},
		{"description", in.Description, validation.Multiline, MaxDescription},
	} {
		if err := validation.Text(f.field, f.value, f.kind); err != nil {
			if ve, ok := validation.As(err); ok && f.field == "title" && ve.Code == validation.CodeBlank {
				ve.Code = "required" // a blank title is a missing one
			}
			return err
		}
		if n := utf8.RuneCountInString(f.value); n > f.max {
			return validation.Field(f.field, "too_long", "%s has %d characters; the limit is %d", f.field, n, f.max)
		}
	}
	if len(in.Attributes) > MaxAttributes {
		return validation.Field("attributes", "too_many", "at most %d attributes", MaxAttributes)
	}
	for k, v := range in.Attributes {
		if k == "" || len(k) > MaxAttrKey {
			return validation.Field("attributes", "invalid_key", "attribute names must be 1 to %d bytes of UTF-8", MaxAttrKey)
		}
		if err := validation.Text("attributes", k, validation.Line); err != nil {
			return err
		}
		if len(v) > MaxAttrValue {
			return validation.Field("attributes."+k, "invalid_value", "attribute values must be at most %d bytes of UTF-8", MaxAttrValue)
		}
		if err := validation.Text("attributes."+k, v, validation.Line); err != nil {
			return err
		}
	}
	return nil
}

// CheckText applies the rules of checkText to a listing received from a
// peer: the fields a seller wrote, and the seller's legal name.
func CheckText(l *Listing) error {
	// Fields the origin's policy leaves out of its records are absent, not
	// blank: only the fields present are checked.
	in := Input{Title: l.Title, Description: l.Description, Attributes: l.Attributes}
	if in.Title == "" {
		in.Title = "-"
	}
	if err := checkText(&in); err != nil {
		return err
	}
	if l.Seller.LegalName == "" {
		return nil
	}
	return validation.Text("seller.legal_name", l.Seller.LegalName, validation.Line)
}

// Errors of the catalog service.
var (
	ErrNotFound       = errors.New("listing not found")
	ErrNotOwner       = errors.New("listing belongs to another seller")
	ErrSellerInactive = errors.New("seller is not active: only active sellers can publish")
)
