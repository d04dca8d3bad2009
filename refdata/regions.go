package refdata

import (
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// ErrUnknownRegion is returned for a region code that is not an ISO 3166-2
// subdivision of the given country.
var ErrUnknownRegion = errors.New("unknown region")

// ErrUnknownCountry is returned for a country code that is not a member of
// the federation.
var ErrUnknownCountry = errors.New("unknown country")

// Country is a member country of the federation.
type Country struct {
	// Code is the ISO 3166-1 alpha-2 code.
	Code string
	// Name is the English short name.
	Name string
	// Currency is the ISO 4217 code of the country's currency.
	Currency string
}

// Countries returns the member countries in the order TH, MY, ID. The slice
// is new on every call, so callers may keep or modify it.
func Countries() []Country {
	return []Country{
		{Code: "TH", Name: "Thailand", Currency: "THB"},
		{Code: "MY", Name: "Malaysia", Currency: "MYR"},
		{Code: "ID", Name: "Indonesia", Currency: "IDR"},
	}
}

var countryTable = sync.OnceValue(func() map[string]Country {
	cs := Countries()
	t := make(map[string]Country, len(cs))
	for _, c := range cs {
		t[c.Code] = c
	}
	return t
})

// CountryByCode returns the member country with ISO 3166-1 alpha-2 code
// code. Codes are upper case; "th" is not found.
func CountryByCode(code string) (Country, bool) {
	c, ok := countryTable()[code]
	return c, ok
}

// Subdivision is an ISO 3166-2 subdivision (province, state, ...) of a member
// country.
type Subdivision struct {
	// Country is the ISO 3166-1 alpha-2 code, e.g. "TH".
	Country string
	// Code is the ISO 3166-2 code, e.g. "TH-90".
	Code string
	// Name is the ISO 3166-2 name, e.g. "Songkhla".
	Name string
	// Type is the ISO 3166-2 category, e.g. "Province" or "State".
	Type string
	// IMTGT is true for the 32 members of the Indonesia-Malaysia-Thailand
	// Growth Triangle, which reports treat as one area.
	IMTGT bool
}

//go:embed data/subdivisions.csv
var subdivisionsCSV string

type subdivisionIndex struct {
	byCode    map[string]Subdivision
	byCountry map[string][]Subdivision // each sorted by Code
}

var subdivisionTable = sync.OnceValue(func() subdivisionIndex {
	idx, err := parseSubdivisions(subdivisionsCSV)
	if err != nil {
		panic(fmt.Sprintf("refdata: embedded data/subdivisions.csv: %v", err))
	}
	return idx
})

// parseSubdivisions reads the subdivisions CSV and checks that every row
// belongs to a member country and carries that country's code prefix, so a
// region can never validate against the wrong country.
func parseSubdivisions(data string) (subdivisionIndex, error) {
	rows, err := readCSV(data, []string{"country", "code", "name", "type", "imtgt"})
	if err != nil {
		return subdivisionIndex{}, err
	}
	idx := subdivisionIndex{
		byCode:    make(map[string]Subdivision, len(rows)),
		byCountry: make(map[string][]Subdivision),
	}
	for i, r := range rows {
		line := i + 2 // 1-based, after the header
		s := Subdivision{Country: r[0], Code: r[1], Name: r[2], Type: r[3]}
		if _, ok := CountryByCode(s.Country); !ok {
			return subdivisionIndex{}, fmt.Errorf("line %d: country %q is not a member", line, s.Country)
		}
		if !strings.HasPrefix(s.Code, s.Country+"-") || len(s.Code) <= len(s.Country)+1 {
			return subdivisionIndex{}, fmt.Errorf("line %d: code %q is not a %s subdivision", line, s.Code, s.Country)
		}
		if s.Name == "" || s.Type == "" {
			return subdivisionIndex{}, fmt.Errorf("line %d: %s has no name or type", line, s.Code)
		}
		switch r[4] {
		case "1":
			s.IMTGT = true
		case "0":
		default:
			return subdivisionIndex{}, fmt.Errorf("line %d: imtgt %q is not 0 or 1", line, r[4])
		}
		if _, dup := idx.byCode[s.Code]; dup {
			return subdivisionIndex{}, fmt.Errorf("line %d: duplicate code %s", line, s.Code)
		}
		idx.byCode[s.Code] = s
		idx.byCountry[s.Country] = append(idx.byCountry[s.Country], s)
	}
	for _, subs := range idx.byCountry {
		slices.SortFunc(subs, func(a, b Subdivision) int { return strings.Compare(a.Code, b.Code) })
	}
	return idx, nil
}

// SubdivisionByCode returns the subdivision with ISO 3166-2 code code, such
// as "TH-90".
func SubdivisionByCode(code string) (Subdivision, bool) {
	s, ok := subdivisionTable().byCode[code]
	return s, ok
}

// Subdivisions returns the subdivisions of country sorted by code, or nil
// for a country that is not a member. The slice is a copy, so callers may
// keep or modify it without affecting other callers.
func Subdivisions(country string) []Subdivision {
	return slices.Clone(subdivisionTable().byCountry[country])
}

// ValidRegion reports whether code is an ISO 3166-2 subdivision of country.
// Any subdivision is valid, not only the IMT-GT ones: buyers anywhere in a
// member country may receive deliveries.
func ValidRegion(country, code string) error {
	if _, ok := CountryByCode(country); !ok {
		return fmt.Errorf("%w %q: %w %q", ErrUnknownRegion, code, ErrUnknownCountry, country)
	}
	s, ok := subdivisionTable().byCode[code]
	if !ok || s.Country != country {
		return fmt.Errorf("%w %q: not a subdivision of %s", ErrUnknownRegion, code, country)
	}
	return nil
}
