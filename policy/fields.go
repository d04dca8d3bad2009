package policy

import "slices"

// Record kinds whose fields a policy classifies and whose transfers it rules.
const (
	KindSeller  = "seller"
	KindListing = "listing"
	KindBuyer   = "buyer"
	KindOrder   = "order"
)

// Class is how sensitive a field is.
type Class string

// Field classes.
const (
	Public    Class = "public"
	Personal  Class = "personal"
	Sensitive Class = "sensitive"
)

// knownFields are the field paths of each record kind. A policy must
// classify every one of them and may not name others: a field the code
// adds later is then refused at load until an agency classifies it, so it
// can never leave by default.
var knownFields = map[string][]string{
	KindSeller: {
		"id", "legal_name", "business_id", "region", "contact.email", "contact.phone",
		"owner.full_name", "owner.national_id", "owner.phone", "owner.email", "owner.address",
		"bank_account.bank", "bank_account.number",
	},
	KindListing: {
		"id", "seller.id", "seller.legal_name", "seller.business_id", "seller.region",
		"title", "description", "hs_code", "price", "quantity", "ship_from", "images", "attributes",
		"created_at", "updated_at", "version",
	},
	KindBuyer: {
		"name", "email", "phone", "address.line1", "address.city", "address.region",
		"address.postcode", "address.country", "account_id",
	},
	KindOrder: {
		"id", "marketplace_id", "items", "quote", "status", "reason", "tracking", "created_at", "updated_at",
		"consent",
	},
	// An after-sale issue (aftersale.Issue): "parties" are the countries
	// and the seller ID, "deadlines" respond_by and resolve_by,
	// "created_at" also the time of the last change.
	KindIssue: {
		"id", "order_id", "marketplace_id", "parties", "category", "description", "items", "remedy_requested",
		"attachments", "status", "deadlines", "remedy", "responses", "refunds", "decision", "history", "created_at",
	},
}

// KnownFields returns the field paths of a record kind.
func KnownFields(kind string) []string { return knownFields[kind] }

func isKnownField(kind, field string) bool { return slices.Contains(knownFields[kind], field) }
