package sellers_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/sellers"
	"github.com/imtgt/imtgt-node/validation"
)

// ValidTHRegistration is a registration that passes every TH rule.
func validTH() sellers.Registration {
	return sellers.Registration{
		LegalName:  "Songkhla Seafood Export Co., Ltd.",
		BusinessID: "0105537001232",
		Region:     "TH-90",
		Contact:    sellers.Contact{Email: "sales@example.co.th", Phone: "+66 74 311 200"},
		Owner: sellers.Owner{FullName: "Somchai Jaidee", NationalID: "1900100123457", Phone: "+66 81 000 0000",
			Email: "somchai@example.co.th", Address: "12 Moo 3, Hat Yai, Songkhla"},
		BankAccount: sellers.BankAccount{Bank: "Krungthai Bank", Number: "9876543210"},
	}
}

func TestRegistrationValidate(t *testing.T) {
	tests := []struct {
		name    string
		country string
		mutate  func(*sellers.Registration)
		field   string // "" = valid
	}{
		{"valid TH", "TH", func(*sellers.Registration) {}, ""},
		{"missing legal name", "TH", func(r *sellers.Registration) { r.LegalName = " " }, "legal_name"},
		{"bad TH check digit", "TH", func(r *sellers.Registration) { r.BusinessID = "0105537001233" }, "business_id"},
		{"TH business id too short", "TH", func(r *sellers.Registration) { r.BusinessID = "010553700123" }, "business_id"},
		{"region of another country", "TH", func(r *sellers.Registration) { r.Region = "MY-01" }, "region"},
		{"unknown region", "TH", func(r *sellers.Registration) { r.Region = "TH-99" }, "region"},
		{"bad national id", "TH", func(r *sellers.Registration) { r.Owner.NationalID = "1900100123450" }, "owner.national_id"},
		{"bad email", "TH", func(r *sellers.Registration) { r.Contact.Email = "sales.example.co.th" }, "contact.email"},
		{"bad owner email", "TH", func(r *sellers.Registration) { r.Owner.Email = "a@b" }, "owner.email"},
		{"bad phone", "TH", func(r *sellers.Registration) { r.Owner.Phone = "call me" }, "owner.phone"},
		{"missing bank", "TH", func(r *sellers.Registration) { r.BankAccount.Number = "" }, "bank_account.number"},
		{"too long name", "TH", func(r *sellers.Registration) { r.LegalName = string(make([]byte, 201)) }, "legal_name"},
		{"bidi override in the legal name", "TH", func(r *sellers.Registration) { r.LegalName = "Songkhla \u202eoC" }, "legal_name"},
		{"zero-width legal name", "TH", func(r *sellers.Registration) { r.LegalName = "\u200b\u200d" }, "legal_name"},
		{"NUL in the owner's name", "TH", func(r *sellers.Registration) { r.Owner.FullName = "Somchai\x00" }, "owner.full_name"},
		{"invalid UTF-8 in the address", "TH", func(r *sellers.Registration) { r.Owner.Address = "99 \xff Road" }, "owner.address"},
		{"multi-line address", "TH", func(r *sellers.Registration) { r.Owner.Address = "99 Moo 3\nHat Yai" }, ""},
		{"control in the bank name", "TH", func(r *sellers.Registration) { r.BankAccount.Bank = "Krungthai\x1b" }, "bank_account.bank"},
		{"valid MY", "MY", func(r *sellers.Registration) {
			r.BusinessID, r.Region, r.Owner.NationalID = "201901000005", "MY-07", "900101-14-5678"
		}, ""},
		{"MY entity type 09", "MY", func(r *sellers.Registration) {
			r.BusinessID, r.Region, r.Owner.NationalID = "201909000005", "MY-07", "900101-14-5678"
		}, "business_id"},
		{"valid ID", "ID", func(r *sellers.Registration) {
			r.BusinessID, r.Region, r.Owner.NationalID = "9120001234567", "ID-SU", "1271011203900001"
		}, ""},
		{"ID NIK too short", "ID", func(r *sellers.Registration) {
			r.BusinessID, r.Region, r.Owner.NationalID = "9120001234567", "ID-SU", "127101120390"
		}, "owner.national_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validTH()
			tt.mutate(&r)
			err := r.Validate(tt.country)
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			ve, ok := validation.As(err)
			require.True(t, ok, "want a validation error, got %v", err)
			require.Equal(t, tt.field, ve.Field)
			require.NotEmpty(t, ve.Code)
			// An identifier is personal data: the message must not echo it.
			require.NotContains(t, ve.Message, r.Owner.NationalID)
		})
	}
}
