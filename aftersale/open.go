package aftersale

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/imtgt/imtgt-node/validation"
)

// Limits on an issue's outside input. They keep an issue, with its
// responses, well under the federation's maximum message size.
const (
	MaxDescription    = 5000 // characters
	MaxReason         = 2000 // characters, of a response, refund or decision
	MaxItems          = 50   // as orders.MaxItems
	MaxAttachments    = 10
	MaxAttachmentSize = 25 << 20 // bytes: a phone photo or a scanned receipt
	MaxContentType    = 100
	MaxTracking       = 100
	MaxReference      = 200 // a payment reference
	MaxRefunds        = 10  // refunds of one issue (partial refunds add up to the remedy)
)

// OpenInput is an issue as a marketplace opens it: the body of
// POST /v1/orders/{id}/issues.
type OpenInput struct {
	Category        Category     `json:"category"`
	Description     string       `json:"description"`
	Items           []ItemQty    `json:"items"`
	RemedyRequested RemedyKind   `json:"remedy_requested"`
	Attachments     []Attachment `json:"attachments,omitempty"`
	// ID, when set by the caller (a service replaying an idempotent
	// request), is the issue's ID; empty means a fresh one made at now.
	ID string `json:"-"`
}

// DecodeOpenInput reads an OpenInput from outside JSON: one object, no
// unknown fields, no invalid UTF-8 or lone surrogates hidden by the
// decoder. It checks the shape only; Open checks the rules.
func DecodeOpenInput(b []byte) (OpenInput, error) {
	var in OpenInput
	return in, decodeStrict(b, &in)
}

// decodeStrict decodes exactly one JSON object into v.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return validation.Field(te.Field, "invalid_type", "%s must be a JSON %s", te.Field, te.Type.Kind())
		}
		return validation.Wrap("", "malformed_json", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return validation.Field("", "malformed_json", "exactly one JSON object is required")
	}
	return validation.JSONStrings(b)
}

// Open makes an issue about order from in, at now, with the buyer
// country's deadlines. It refuses bad input (a *validation.Error naming the
// field) and an order the issue cannot be about (ErrNotEligible).
func Open(order OrderView, in OpenInput, cfg Deadlines, now time.Time) (*Issue, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if err := checkOpen(order, &in); err != nil {
		return nil, err
	}
	if err := eligible(order, in.Category, now); err != nil {
		return nil, err
	}
	id := in.ID
	if id == "" {
		id = NewID(now)
	} else if !ValidID(id) {
		return nil, fmt.Errorf("aftersale: %q is not an issue ID", id)
	}
	now = now.UTC()
	is := &Issue{
		ID: id, OrderID: order.ID, MarketplaceID: order.MarketplaceID,
		BuyerCountry: order.BuyerCountry, SellerCountry: order.SellerCountry, SellerID: order.SellerID,
		Category: in.Category, Description: in.Description,
		Items: mergeItems(in.Items), RemedyRequested: in.RemedyRequested, Attachments: in.Attachments,
		Status:    StatusOpen,
		RespondBy: now.Add(time.Duration(cfg.RespondWithin) * time.Hour),
		ResolveBy: now.AddDate(0, 0, cfg.ResolveWithin),
		Responses: []Response{}, Refunds: []Refund{},
		History:   []Event{{Status: StatusOpen, At: now, By: ByMarketplace}},
		CreatedAt: now, UpdatedAt: now,
	}
	return is, nil
}

// eligible is the precondition on the order: shipped or delivered, or, for
// goods that never came, past the delivery the buyer was promised while the
// seller still holds the order.
func eligible(order OrderView, c Category, now time.Time) error {
	switch order.Status {
	case OrderShipped, OrderDelivered:
		return nil
	case OrderReceived, OrderAccepted, OrderPacked:
		if c != NotReceived {
			return fmt.Errorf("%w: the order is %s; an issue needs a shipped or delivered order", ErrNotEligible, order.Status)
		}
		if order.ExpectedDelivery.IsZero() || !now.After(order.ExpectedDelivery) {
			return fmt.Errorf("%w: the order is %s and not past its expected delivery; not_received needs one that is, or a shipped order",
				ErrNotEligible, order.Status)
		}
		return nil
	}
	return fmt.Errorf("%w: the order is %s; an issue needs a shipped or delivered order", ErrNotEligible, order.Status)
}

// checkOpen applies the rules of an OpenInput that do not depend on time.
func checkOpen(order OrderView, in *OpenInput) error {
	if in.Category == "" {
		return validation.Field("category", "required", "category is required: one of %v", Categories)
	}
	if !slices.Contains(Categories, in.Category) {
		return validation.Field("category", "invalid_category", "category %q is not one of %v", in.Category, Categories)
	}
	if in.RemedyRequested == "" {
		return validation.Field("remedy_requested", "required", "remedy_requested is required: one of %v", RemedyKinds)
	}
	if !slices.Contains(RemedyKinds, in.RemedyRequested) {
		return validation.Field("remedy_requested", "invalid_remedy", "remedy_requested %q is not one of %v", in.RemedyRequested, RemedyKinds)
	}
	if in.Description == "" {
		return validation.Field("description", "required", "description is required")
	}
	if err := checkText("description", in.Description, validation.Multiline, MaxDescription); err != nil {
		return err
	}
	if err := checkItems(order, in.Items); err != nil {
		return err
	}
	return checkAttachments(in.Attachments)
}

// checkText is validation.Text with a length limit in characters.
func checkText(field, s string, kind validation.TextKind, max int) error {
	if err := validation.Text(field, s, kind); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(s); n > max {
		return validation.Field(field, "too_long", "%s has %d characters; the limit is %d", field, n, max)
	}
	return nil
}

// checkItems: at least one item, each a listing of the order, and no more
// of a listing (across lines naming it) than was ordered.
func checkItems(order OrderView, items []ItemQty) error {
	if len(items) == 0 {
		return validation.Field("items", "required", "items is required: at least one item of the order")
	}
	if len(items) > MaxItems {
		return validation.Field("items", "too_many", "at most %d items", MaxItems)
	}
	ordered := map[string]int64{}
	for _, it := range order.Items {
		ordered[it.ListingID] += it.Quantity
	}
	claimed := map[string]int64{}
	for i, it := range items {
		field := fmt.Sprintf("items[%d]", i)
		if it.ListingID == "" {
			return validation.Field(field+".listing_id", "required", "%s.listing_id is required", field)
		}
		max, ok := ordered[it.ListingID]
		if !ok {
			return validation.Field(field+".listing_id", "not_in_order", "%s.listing_id %q is not an item of order %s", field, it.ListingID, order.ID)
		}
		if it.Quantity <= 0 {
			return validation.Field(field+".quantity", "invalid_quantity", "%s.quantity must be at least 1", field)
		}
		claimed[it.ListingID] += it.Quantity
		if claimed[it.ListingID] > max || claimed[it.ListingID] < 0 {
			return validation.Field(field+".quantity", "exceeds_ordered", "%s.quantity: %d of %s claimed, but %d were ordered",
				field, claimed[it.ListingID], it.ListingID, max)
		}
	}
	return nil
}

// mergeItems sums lines naming the same listing, in first-seen order, so
// an issue's items (and what a return restocks) name each listing once.
func mergeItems(items []ItemQty) []ItemQty {
	out := make([]ItemQty, 0, len(items))
	at := map[string]int{}
	for _, it := range items {
		if i, ok := at[it.ListingID]; ok {
			out[i].Quantity += it.Quantity
			continue
		}
		at[it.ListingID] = len(out)
		out = append(out, it)
	}
	return out
}

// checkAttachments: references only, each a SHA-256 in hex, a size and a
// media type.
func checkAttachments(as []Attachment) error {
	if len(as) > MaxAttachments {
		return validation.Field("attachments", "too_many", "at most %d attachments", MaxAttachments)
	}
	for i, a := range as {
		field := fmt.Sprintf("attachments[%d]", i)
		if b, err := hex.DecodeString(a.SHA256); err != nil || len(b) != 32 {
			return validation.Field(field+".sha256", "invalid_sha256", "%s.sha256 must be a SHA-256 digest as 64 hex digits", field)
		}
		if a.Size <= 0 || a.Size > MaxAttachmentSize {
			return validation.Field(field+".size", "invalid_size", "%s.size must be 1 to %d bytes", field, MaxAttachmentSize)
		}
		if a.ContentType == "" {
			return validation.Field(field+".content_type", "required", "%s.content_type is required", field)
		}
		if len(a.ContentType) > MaxContentType {
			return validation.Field(field+".content_type", "too_long", "%s.content_type is longer than %d bytes", field, MaxContentType)
		}
		if mt, params, err := mime.ParseMediaType(a.ContentType); err != nil || len(params) > 0 || mt != a.ContentType {
			return validation.Field(field+".content_type", "invalid_content_type",
				"%s.content_type %q must be a media type such as image/jpeg, in lower case, without parameters", field, a.ContentType)
		}
	}
	return nil
}
