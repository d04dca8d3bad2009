package sellers

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// ErrInvalidBusinessID is wrapped by every error from ValidateBusinessID.
var ErrInvalidBusinessID = errors.New("invalid business_id")

// ErrInvalidNationalID is wrapped by every error from ValidateNationalID.
var ErrInvalidNationalID = errors.New("invalid national_id")

// Error messages describe what is wrong with an identifier but never quote
// it: national IDs are personal data that must not reach logs or API error
// bodies, and business IDs are treated the same way for consistency.

// ValidateBusinessID checks a seller's business registration number for the
// node's country: TH 13-digit juristic person number with its check digit,
// MY 12-digit SSM registration number, ID 13-digit NIB. The id must already
// be in canonical form; nothing is trimmed or normalised, so that what is
// stored is exactly what was checked.
func ValidateBusinessID(country, id string) error {
	var problem string
	switch country {
	case "TH":
		problem = thaiID(id)
	case "MY":
		problem = ssmNumber(id)
	case "ID":
		// The NIB has no published check algorithm; length and digits are
		// all that can be checked offline.
		problem = digits(id, 13)
	default:
		problem = fmt.Sprintf("country %q is not supported", country)
	}
	if problem != "" {
		return fmt.Errorf("%w: %s", ErrInvalidBusinessID, problem)
	}
	return nil
}

// ValidateNationalID checks an owner's national ID where the country's
// format is known: TH 13-digit ID card number with its check digit, MY MyKad
// number (with or without its two hyphens), ID 16-digit NIK.
func ValidateNationalID(country, id string) error {
	var problem string
	switch country {
	case "TH":
		problem = thaiID(id)
	case "MY":
		problem = myKad(id)
	case "ID":
		problem = digits(id, 16)
	default:
		problem = fmt.Sprintf("country %q is not supported", country)
	}
	if problem != "" {
		return fmt.Errorf("%w: %s", ErrInvalidNationalID, problem)
	}
	return nil
}

// digits returns why s is not exactly n ASCII digits, or "" if it is. Thai
// and other non-ASCII digits are refused rather than converted, since the
// registries only ever issue ASCII numbers.
func digits(s string, n int) string {
	if c := utf8.RuneCountInString(s); c != n {
		return fmt.Sprintf("must be %d digits, got %d characters", n, c)
	}
	pos := 0
	for _, r := range s {
		pos++
		if r < '0' || r > '9' {
			return fmt.Sprintf("must be %d digits, character %d is not a digit", n, pos)
		}
	}
	return ""
}

// thaiID checks the 13-digit number shared by Thai ID cards and juristic
// persons (whose numbers start with 0): the last digit is a mod-11 check
// over the first twelve, weighted 13 down to 2.
func thaiID(id string) string {
	if p := digits(id, 13); p != "" {
		return p
	}
	if want, got := thaiCheckDigit(id[:12]), int(id[12]-'0'); got != want {
		return fmt.Sprintf("check digit is %d, expected %d", got, want)
	}
	return ""
}

// thaiCheckDigit computes the check digit of a 12-digit prefix.
func thaiCheckDigit(prefix string) int {
	sum := 0
	for i := 0; i < 12; i++ {
		sum += int(prefix[i]-'0') * (13 - i)
	}
	return (11 - sum%11) % 10
}

// ssmNumber checks the 12-digit SSM registration number used since
// 11 October 2019: YYYY year of registration, TT entity type, then a
// 6-digit running number. SSM publishes no check digit. Older numbers such
// as "1312525-A" are refused: SSM gave every entity a new-format number.
func ssmNumber(id string) string {
	if p := digits(id, 12); p != "" {
		return p
	}
	// A plausible range only: catches swapped fields (e.g. a running number
	// typed first) without tracking SSM's actual history.
	if year, _ := strconv.Atoi(id[:4]); year < 1900 || year > 2100 {
		return fmt.Sprintf("year %s is not between 1900 and 2100", id[:4])
	}
	// 01 local company, 02 foreign company, 03 business, 04 local LLP,
	// 05 foreign LLP, 06 professional LLP.
	if t := id[4:6]; t < "01" || t > "06" {
		return fmt.Sprintf("entity type %s is not one of 01-06", t)
	}
	return ""
}

// myKad checks a MyKad number, YYMMDD-PB-###G, written with both hyphens or
// with none: both forms are printed on the card and in forms, and stripping
// exactly these two hyphens loses nothing.
func myKad(id string) string {
	switch {
	case len(id) == 14 && id[6] == '-' && id[9] == '-':
		for i := 0; i < len(id); i++ {
			if i != 6 && i != 9 && (id[i] < '0' || id[i] > '9') {
				return fmt.Sprintf("must be YYMMDD-PB-###G, character %d is not a digit", i+1)
			}
		}
		id = id[:6] + id[7:9] + id[10:]
	case utf8.RuneCountInString(id) == 12:
		if p := digits(id, 12); p != "" {
			return p
		}
	default:
		return "must be 12 digits, as YYMMDD-PB-###G or YYMMDDPB###G"
	}
	// The century is not encoded, so accept a date valid in either century.
	// In 2000-2099 every year divisible by 4 is a leap year, so testing
	// against 20YY accepts 29 February whenever some century allows it.
	yy, _ := strconv.Atoi(id[0:2])
	mm, _ := strconv.Atoi(id[2:4])
	dd, _ := strconv.Atoi(id[4:6])
	if mm < 1 || mm > 12 {
		return fmt.Sprintf("birth date month %02d is not 01-12", mm)
	}
	// Day 0 of the next month is the last day of this one.
	last := time.Date(2000+yy, time.Month(mm)+1, 0, 0, 0, 0, 0, time.UTC).Day()
	if dd < 1 || dd > last {
		return fmt.Sprintf("birth date day %02d is not 01-%02d for month %02d", dd, last, mm)
	}
	return ""
}
