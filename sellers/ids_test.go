package sellers_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/sellers"
)

// thCheckDigit computes the Thai ID check digit independently of the
// package: weights 13..2 over the first 12 digits, (11 - sum mod 11) mod 10.
func thCheckDigit(t testing.TB, prefix string) byte {
	t.Helper()
	require.Len(t, prefix, 12)
	sum := 0
	for i, w := 0, 13; i < 12; i, w = i+1, w-1 {
		sum += int(prefix[i]-'0') * w
	}
	return byte('0' + (11-sum%11)%10)
}

// thID returns prefix with its check digit appended.
func thID(t testing.TB, prefix string) string {
	t.Helper()
	return prefix + string(thCheckDigit(t, prefix))
}

// Hand-checked Thai numbers (digit × weight, 13 down to 2):
//
//	1101700230708: 13+12+0+10+63+0+0+12+15+0+21+0 = 146; 146 mod 11 = 3; (11-3) mod 10 = 8
//	0105536082000: 0+12+0+50+45+24+42+0+40+8+0+0 = 221; 221 mod 11 = 1; (11-1) mod 10 = 0
//	1234567890121: 13+24+33+40+45+48+49+48+45+0+3+4 = 352; 352 mod 11 = 0; (11-0) mod 10 = 1
const (
	thPerson   = "1101700230708"
	thJuristic = "0105536082000" // sum mod 11 = 1: the check is 10, which wraps to 0
	thWrapOne  = "1234567890121" // sum mod 11 = 0: the check is 11, which wraps to 1
)

type idCase struct {
	name    string
	country string
	id      string
	want    string // "" for valid, else a substring of the error
}

func TestValidateBusinessID(t *testing.T) {
	tests := []idCase{
		// Thailand: 13 digits with a check digit.
		{"TH juristic", "TH", thJuristic, ""},
		{"TH person", "TH", thPerson, ""},
		{"TH check wraps to 1", "TH", thWrapOne, ""},
		{"TH computed", "TH", thID(t, "010555512345"), ""},
		{"TH computed 2", "TH", thID(t, "099999999999"), ""},
		{"TH bad check", "TH", "0105536082007", "check digit is 7, expected 0"},
		{"TH bad check 2", "TH", "1101700230701", "check digit is 1, expected 8"},
		{"TH short", "TH", "010553608200", "must be 13 digits, got 12 characters"},
		{"TH long", "TH", "01055360820000", "must be 13 digits, got 14 characters"},
		{"TH empty", "TH", "", "must be 13 digits, got 0 characters"},
		{"TH letter", "TH", "01055360820O0", "character 12 is not a digit"},
		{"TH hyphens not normalised", "TH", "0-1055-36082-00-0", "must be 13 digits"},
		{"TH spaces not trimmed", "TH", " " + thJuristic, "must be 13 digits, got 14 characters"},
		{"TH Thai digits", "TH", "๐๑๐๕๕๓๖๐๘๒๐๐๐", "character 1 is not a digit"},

		// Malaysia: SSM YYYY TT NNNNNN.
		{"MY company", "MY", "201901000005", ""},
		{"MY business", "MY", "202003123456", ""},
		{"MY professional LLP", "MY", "202306000001", ""},
		{"MY old company renumbered", "MY", "196501000672", ""},
		{"MY entity 09", "MY", "202009000001", "entity type 09 is not one of 01-06"},
		{"MY entity 00", "MY", "202000000001", "entity type 00 is not one of 01-06"},
		{"MY entity 07", "MY", "202007000001", "entity type 07 is not one of 01-06"},
		{"MY year too early", "MY", "189901000001", "year 1899 is not between 1900 and 2100"},
		{"MY year too late", "MY", "210101000001", "year 2101 is not between 1900 and 2100"},
		{"MY old format", "MY", "1312525-A", "must be 12 digits, got 9 characters"},
		{"MY short", "MY", "20190100000", "must be 12 digits, got 11 characters"},
		{"MY letter", "MY", "2019O1000005", "character 5 is not a digit"},

		// Indonesia: NIB, 13 digits.
		{"ID NIB", "ID", "9120001234567", ""},
		{"ID NIB zeros", "ID", "0000000000000", ""},
		{"ID short", "ID", "912000123456", "must be 13 digits, got 12 characters"},
		{"ID NIK is not a NIB", "ID", "3171011501900001", "must be 13 digits, got 16 characters"},
		{"ID letter", "ID", "912000123456X", "character 13 is not a digit"},

		// Unsupported countries, including case variants of members.
		{"SG", "SG", "201912345A", `country "SG" is not supported`},
		{"lower case", "th", thJuristic, `country "th" is not supported`},
		{"empty country", "", thJuristic, `country "" is not supported`},
	}
	runIDCases(t, tests, sellers.ValidateBusinessID, sellers.ErrInvalidBusinessID, sellers.ErrInvalidNationalID)
}

func TestValidateNationalID(t *testing.T) {
	tests := []idCase{
		// Thailand: the ID card number, same format and check as the business ID.
		{"TH person", "TH", thPerson, ""},
		{"TH check wraps to 1", "TH", thWrapOne, ""},
		{"TH computed", "TH", thID(t, "310120034567"), ""},
		{"TH bad check", "TH", "1101700230707", "check digit is 7, expected 8"},
		{"TH short", "TH", "110170023070", "must be 13 digits, got 12 characters"},
		{"TH dashed", "TH", "1-1017-00230-70-8", "must be 13 digits, got 17 characters"},

		// Malaysia: MyKad, with both hyphens or none.
		{"MY plain", "MY", "900101145678", ""},
		{"MY hyphens", "MY", "900101-14-5678", ""},
		{"MY 2000s birth", "MY", "050630-10-1234", ""},
		{"MY 29 Feb 2000", "MY", "000229-01-0001", ""},
		{"MY 29 Feb 1996", "MY", "960229010001", ""},
		{"MY 31 Dec", "MY", "991231-99-9999", ""},
		{"MY 29 Feb 1997", "MY", "970229010001", "birth date day 29 is not 01-28 for month 02"},
		{"MY 31 Apr", "MY", "900431-14-5678", "birth date day 31 is not 01-30 for month 04"},
		{"MY day 00", "MY", "900100145678", "birth date day 00 is not 01-31 for month 01"},
		{"MY month 13", "MY", "901301145678", "birth date month 13 is not 01-12"},
		{"MY month 00", "MY", "900001145678", "birth date month 00 is not 01-12"},
		{"MY one hyphen", "MY", "900101-145678", "must be 12 digits, as YYMMDD-PB-###G or YYMMDDPB###G"},
		{"MY hyphens misplaced", "MY", "90010-114-5678", "must be 12 digits, as YYMMDD-PB-###G or YYMMDDPB###G"},
		{"MY spaces", "MY", "900101 14 5678", "must be 12 digits, as YYMMDD-PB-###G or YYMMDDPB###G"},
		{"MY letter hyphenated", "MY", "900101-14-567X", "must be YYMMDD-PB-###G, character 14 is not a digit"},
		{"MY letter plain", "MY", "90010114567X", "character 12 is not a digit"},
		{"MY short", "MY", "90010114567", "must be 12 digits"},
		{"MY empty", "MY", "", "must be 12 digits"},

		// Indonesia: NIK, 16 digits.
		{"ID NIK", "ID", "3171011501900001", ""},
		{"ID short", "ID", "317101150190000", "must be 16 digits, got 15 characters"},
		{"ID long", "ID", "31710115019000011", "must be 16 digits, got 17 characters"},
		{"ID dotted", "ID", "3171.0115.0190.0001", "must be 16 digits, got 19 characters"},
		{"ID letter", "ID", "317101150190000l", "character 16 is not a digit"},

		{"SG", "SG", "S1234567D", `country "SG" is not supported`},
		{"lower case", "my", "900101145678", `country "my" is not supported`},
	}
	runIDCases(t, tests, sellers.ValidateNationalID, sellers.ErrInvalidNationalID, sellers.ErrInvalidBusinessID)
}

func runIDCases(t *testing.T, tests []idCase, validate func(country, id string) error, sentinel, other error) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validate(tt.country, tt.id)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, sentinel)
			require.NotErrorIs(t, err, other)
			require.ErrorContains(t, err, tt.want)
			// Identifiers are personal data: errors must not echo them.
			if len(tt.id) >= 6 {
				require.NotContains(t, err.Error(), tt.id)
			}
		})
	}
}

// TestValidateTHEveryCheckDigit flips the check digit of valid numbers
// through all ten values: exactly one must pass.
func TestValidateTHEveryCheckDigit(t *testing.T) {
	for _, prefix := range []string{"010553608200", "110170023070", "123456789012", "000000000000", "999999999999"} {
		valid := 0
		for d := byte('0'); d <= '9'; d++ {
			id := prefix + string(d)
			errB := sellers.ValidateBusinessID("TH", id)
			errN := sellers.ValidateNationalID("TH", id)
			require.Equal(t, errB == nil, errN == nil, id)
			if errB == nil {
				valid++
				require.Equal(t, thCheckDigit(t, prefix), d, id)
			}
		}
		require.Equal(t, 1, valid, prefix)
	}
}

func ExampleValidateBusinessID() {
	fmt.Println(sellers.ValidateBusinessID("TH", "0105536082000"))
	fmt.Println(sellers.ValidateBusinessID("TH", "0105536082007"))
	fmt.Println(sellers.ValidateBusinessID("MY", "202009000001"))
	// Output:
	// <nil>
	// invalid business_id: check digit is 7, expected 0
	// invalid business_id: entity type 09 is not one of 01-06
}

// fuzzSeeds are shared by both fuzz targets: every country and a mix of
// valid and broken identifiers.
func fuzzSeeds(f *testing.F) {
	for _, s := range []struct {
		country, id string
	}{
		{"TH", thJuristic}, {"TH", thPerson}, {"TH", "0105536082007"}, {"TH", ""},
		{"MY", "201901000005"}, {"MY", "900101-14-5678"}, {"MY", "900101145678"},
		{"MY", "000229-01-0001"}, {"MY", "1312525-A"}, {"MY", "9001-01-14-56"},
		{"ID", "9120001234567"}, {"ID", "3171011501900001"},
		{"SG", "x"}, {"", ""}, {"TH", "๐๑๐๕๕๓๖๐๘๒๐๐๐"}, {"MY", "\xff\xfe"},
	} {
		f.Add(s.country, s.id, uint64(len(s.id)))
	}
}

// fuzzIDs checks what holds for any input: no panic, every error wraps the
// sentinel (and only it), and an accepted identifier has the shape its
// country demands.
func fuzzIDs(f *testing.F, validate func(country, id string) error, sentinel, other error, wantLen map[string]int) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, country, id string, seed uint64) {
		if err := validate(country, id); err != nil {
			require.ErrorIs(t, err, sentinel)
			require.NotErrorIs(t, err, other)
		} else {
			require.Contains(t, wantLen, country, "accepted an unsupported country")
			digitsOnly := id
			if country == "MY" && len(id) == 14 {
				digitsOnly = strings.ReplaceAll(id, "-", "")
			}
			require.Len(t, digitsOnly, wantLen[country], id)
			require.Equal(t, -1, strings.IndexFunc(digitsOnly, func(r rune) bool { return r < '0' || r > '9' }), id)
		}

		// Any 12-digit prefix with its computed check digit is a valid Thai
		// number, and any other last digit is not.
		prefix := fmt.Sprintf("%012d", seed%1_000_000_000_000)
		good := thID(t, prefix)
		require.NoError(t, validate("TH", good))
		bad := prefix + string('0'+(good[12]-'0'+1+byte(seed>>40)%9)%10)
		require.True(t, errors.Is(validate("TH", bad), sentinel), bad)
	})
}

func FuzzValidateBusinessID(f *testing.F) {
	fuzzIDs(f, sellers.ValidateBusinessID, sellers.ErrInvalidBusinessID, sellers.ErrInvalidNationalID,
		map[string]int{"TH": 13, "MY": 12, "ID": 13})
}

func FuzzValidateNationalID(f *testing.F) {
	fuzzIDs(f, sellers.ValidateNationalID, sellers.ErrInvalidNationalID, sellers.ErrInvalidBusinessID,
		map[string]int{"TH": 13, "MY": 12, "ID": 16})
}
