package refdata

import (
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"sync"
)

// ErrUnknownHS is returned for a well-formed HS code that is not in the HS
// 2022 nomenclature.
var ErrUnknownHS = errors.New("unknown HS code")

// ErrMalformedHS is returned for an HS code that is not 4 or 6 ASCII digits.
var ErrMalformedHS = errors.New("malformed HS code")

// HSEntry is one code of the Harmonized System 2022 nomenclature.
type HSEntry struct {
	// Code is 2 (chapter), 4 (heading) or 6 (subheading) digits.
	Code string
	// Description is the UN Comtrade short form of the WCO text.
	Description string
	// Parent is the code one level up; empty for a chapter.
	Parent string
	// Level is the number of digits of Code: 2, 4 or 6.
	Level int
}

//go:embed data/harmonized-system.csv
var hsCSV string

// hsTable is parsed on first use so that programs which never touch HS codes
// (CLI helpers, tests of other packages) do not pay for ~7,000 rows at start.
var hsTable = sync.OnceValue(func() map[string]HSEntry {
	t, err := parseHS(hsCSV)
	if err != nil {
		panic(fmt.Sprintf("refdata: embedded data/harmonized-system.csv: %v", err))
	}
	return t
})

// comtradeAggregate is the section of the UN Comtrade rows that are reporting
// aggregates (99, 9999, 999999, TOTAL) rather than HS codes. Chapter 99 is
// reserved by the WCO for national use, so accepting it would let a seller
// dodge every rule keyed by a real chapter.
const comtradeAggregate = "TOTAL"

// parseHS reads the HS CSV and checks that it forms a tree: every code is
// all digits with as many digits as its level, and every heading or
// subheading extends an existing parent.
func parseHS(data string) (map[string]HSEntry, error) {
	rows, err := readCSV(data, []string{"section", "hscode", "description", "parent", "level"})
	if err != nil {
		return nil, err
	}
	t := make(map[string]HSEntry, len(rows))
	for i, r := range rows {
		line := i + 2 // 1-based, after the header
		section, code, desc, parent, levelStr := r[0], r[1], r[2], r[3], r[4]
		if section == comtradeAggregate {
			continue
		}
		level, err := strconv.Atoi(levelStr)
		if err != nil || (level != 2 && level != 4 && level != 6) {
			return nil, fmt.Errorf("line %d: level %q is not 2, 4 or 6", line, levelStr)
		}
		if len(code) != level || !allDigits(code) {
			return nil, fmt.Errorf("line %d: code %q is not %d digits", line, code, level)
		}
		if desc == "" {
			return nil, fmt.Errorf("line %d: code %s has no description", line, code)
		}
		if level == 2 {
			if parent != "TOTAL" {
				return nil, fmt.Errorf("line %d: chapter %s has parent %q, want TOTAL", line, code, parent)
			}
			parent = ""
		} else if parent != code[:level-2] {
			return nil, fmt.Errorf("line %d: code %s has parent %q, want %q", line, code, parent, code[:level-2])
		}
		if _, dup := t[code]; dup {
			return nil, fmt.Errorf("line %d: duplicate code %s", line, code)
		}
		t[code] = HSEntry{Code: code, Description: desc, Parent: parent, Level: level}
	}
	// Checked after the loop so that the file need not list parents first.
	for _, e := range t {
		if _, ok := t[e.Parent]; e.Parent != "" && !ok {
			return nil, fmt.Errorf("code %s: parent %s is missing", e.Code, e.Parent)
		}
	}
	return t, nil
}

// HS returns the entry for an exact 2, 4 or 6-digit code.
func HS(code string) (HSEntry, bool) {
	e, ok := hsTable()[code]
	return e, ok
}

// ValidListingHS reports whether code may classify a listing: a 4-digit
// heading or a 6-digit subheading of HS 2022. A chapter alone is too coarse
// for the trade rules, which are often keyed by heading or subheading.
func ValidListingHS(code string) error {
	if (len(code) != 4 && len(code) != 6) || !allDigits(code) {
		return fmt.Errorf("%w %q: must be a 4-digit heading or a 6-digit subheading", ErrMalformedHS, code)
	}
	if _, ok := hsTable()[code]; !ok {
		return fmt.Errorf("%w %q: not in HS 2022", ErrUnknownHS, code)
	}
	return nil
}

// HSPrefixExists reports whether prefix is an existing chapter, heading or
// subheading, so that a policy rule keyed by a typo is caught when the rule
// is loaded rather than silently matching nothing.
func HSPrefixExists(prefix string) bool {
	_, ok := hsTable()[prefix]
	return ok
}

// allDigits reports whether s is non-empty and all ASCII digits; unicode
// digits (Thai numerals, full-width) are rejected rather than normalised.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
