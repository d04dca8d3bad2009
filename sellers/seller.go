package sellers

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/imtgt/imtgt-node/refdata"
	"github.com/imtgt/imtgt-node/validation"
)

// Status is where a seller is in its life on the node.
type Status string

// Seller statuses: a new seller is pending until the operator approves it;
// only active sellers can publish listings.
const (
	StatusPending   Status = "pending"
	StatusActive    Status = "active"
	StatusSuspended Status = "suspended"
)

// ValidStatus reports whether s is a known status.
func ValidStatus(s Status) bool {
	return s == StatusPending || s == StatusActive || s == StatusSuspended
}

// Contact is the business contact a seller publishes.
type Contact struct {
	Email string `json:"email"`
	Phone string `json:"phone"`
}

// Owner is the natural person behind the seller: personal data.
type Owner struct {
	FullName   string `json:"full_name"`
	NationalID string `json:"national_id"`
	Phone      string `json:"phone"`
	Email      string `json:"email"`
	Address    string `json:"address"`
}

// BankAccount is where the seller is paid: personal data.
type BankAccount struct {
	Bank   string `json:"bank"`
	Number string `json:"number"`
}

// Personal is everything about a seller that is sealed at rest.
type Personal struct {
	Owner       Owner       `json:"owner"`
	BankAccount BankAccount `json:"bank_account"`
}

// Registration is what a seller sends to register: the body of
// POST /v1/sellers.
type Registration struct {
	LegalName   string      `json:"legal_name"`
	BusinessID  string      `json:"business_id"`
	Region      string      `json:"region"`
	Contact     Contact     `json:"contact"`
	Owner       Owner       `json:"owner"`
	BankAccount BankAccount `json:"bank_account"`
}

// Seller is a registered seller with its personal fields opened.
type Seller struct {
	ID         string    `json:"id"`
	LegalName  string    `json:"legal_name"`
	BusinessID string    `json:"business_id"`
	Region     string    `json:"region"`
	Contact    Contact   `json:"contact"`
	Status     Status    `json:"status"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	Personal   Personal  `json:"-"`
}

// Record is a seller as the store keeps it: public fields in the clear,
// personal fields sealed.
type Record struct {
	ID         string    `json:"id"`
	LegalName  string    `json:"legal_name"`
	BusinessID string    `json:"business_id"`
	Region     string    `json:"region"`
	Contact    Contact   `json:"contact"`
	Status     Status    `json:"status"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	Sealed     []byte    `json:"sealed"`
}

// Validate checks a registration for the node's country and returns the
// first broken rule as a *validation.Error naming the field.
func (r *Registration) Validate(country string) error {
	for _, f := range []struct {
		field, value string
		max          int
	}{
		{"legal_name", r.LegalName, 200},
		{"business_id", r.BusinessID, 32},
		{"region", r.Region, 16},
		{"contact.email", r.Contact.Email, 254},
		{"contact.phone", r.Contact.Phone, 32},
		{"owner.full_name", r.Owner.FullName, 200},
		{"owner.national_id", r.Owner.NationalID, 32},
		{"owner.phone", r.Owner.Phone, 32},
		{"owner.email", r.Owner.Email, 254},
		{"owner.address", r.Owner.Address, 500},
		{"bank_account.bank", r.BankAccount.Bank, 100},
		{"bank_account.number", r.BankAccount.Number, 34},
	} {
		if strings.TrimSpace(f.value) == "" {
			return validation.Field(f.field, "required", "%s is required", f.field)
		}
		if !utf8.ValidString(f.value) {
			return validation.Field(f.field, "invalid_utf8", "%s is not valid UTF-8", f.field)
		}
		if utf8.RuneCountInString(f.value) > f.max {
			return validation.Field(f.field, "too_long", "%s is longer than %d characters", f.field, f.max)
		}
	}
	// Names people read (the legal name is published with every listing)
	// follow the free-text rule; the message names the code point, never
	// the value, which may be personal data.
	for _, f := range []struct {
		field, value string
		kind         validation.TextKind
	}{
		{"legal_name", r.LegalName, validation.Line},
		{"owner.full_name", r.Owner.FullName, validation.Line},
		{"owner.address", r.Owner.Address, validation.Multiline},
		{"bank_account.bank", r.BankAccount.Bank, validation.Line},
	} {
		if err := validation.Text(f.field, f.value, f.kind); err != nil {
			if ve, ok := validation.As(err); ok && ve.Code == validation.CodeBlank {
				ve.Code = "required"
			}
			return err
		}
	}
	if err := ValidateBusinessID(country, r.BusinessID); err != nil {
		return validation.Wrap("business_id", "invalid_business_id", err)
	}
	if err := refdata.ValidRegion(country, r.Region); err != nil {
		return validation.Wrap("region", "invalid_region", err)
	}
	if err := ValidateNationalID(country, r.Owner.NationalID); err != nil {
		return validation.Wrap("owner.national_id", "invalid_national_id", err)
	}
	for _, f := range []struct{ field, value string }{
		{"contact.email", r.Contact.Email},
		{"owner.email", r.Owner.Email},
	} {
		if !plausibleEmail(f.value) {
			// The value is not echoed: an owner's e-mail is personal data.
			return validation.Field(f.field, "invalid_email", "%s is not an e-mail address", f.field)
		}
	}
	for _, f := range []struct{ field, value string }{
		{"contact.phone", r.Contact.Phone},
		{"owner.phone", r.Owner.Phone},
	} {
		if !plausiblePhone(f.value) {
			return validation.Field(f.field, "invalid_phone", "%s must be digits, spaces, dashes and an optional leading +", f.field)
		}
	}
	return nil
}

// plausibleEmail is deliberately loose: one @ with something on each side
// and a dot in the domain. Deliverability is checked by sending mail, not
// by a regular expression.
func plausibleEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && strings.Contains(domain, ".") && !strings.ContainsAny(s, " \t\r\n") &&
		!strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".") && !strings.Contains(domain, "@")
}

func plausiblePhone(s string) bool {
	digits := 0
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0, r == ' ', r == '-', r == '(', r == ')':
		default:
			return false
		}
	}
	return digits >= 6 && digits <= 15
}
