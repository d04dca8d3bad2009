package money

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrInvalidAmount is returned for an amount string that is not a plain
// non-negative decimal with at most the currency's number of fraction digits.
var ErrInvalidAmount = errors.New("invalid amount")

// ErrUnknownCurrency is returned for a currency code this node does not know.
var ErrUnknownCurrency = errors.New("unknown currency")

// exponents holds the ISO 4217 minor-unit exponent of each currency the
// federation trades in. IDR is 2 in ISO 4217 (0 in everyday use); we follow
// ISO so that amounts round-trip exactly with customs systems.
var exponents = map[string]int{
	"THB": 2,
	"MYR": 2,
	"IDR": 2,
	"USD": 2,
}

// Exponent returns the number of minor-unit digits of currency.
func Exponent(currency string) (int, error) {
	e, ok := exponents[currency]
	if !ok {
		return 0, fmt.Errorf("%w: %q", ErrUnknownCurrency, currency)
	}
	return e, nil
}

// Amount is an exact amount of money in minor units (satang, sen, ...).
type Amount struct {
	Minor    int64  `json:"minor"`
	Currency string `json:"currency"`
}

// Parse reads a decimal string such as "1250", "1250.5" or "1250.50" as an
// amount of currency. It refuses signs, exponents, spaces, thousands
// separators and more fraction digits than the currency has.
func Parse(s, currency string) (Amount, error) {
	exp, err := Exponent(currency)
	if err != nil {
		return Amount{}, err
	}
	if s == "" {
		return Amount{}, fmt.Errorf("%w: empty", ErrInvalidAmount)
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && frac == "") {
		return Amount{}, fmt.Errorf("%w: %q", ErrInvalidAmount, s)
	}
	if len(frac) > exp {
		return Amount{}, fmt.Errorf("%w: %q has more than %d decimal places for %s", ErrInvalidAmount, s, exp, currency)
	}
	for _, part := range []string{whole, frac} {
		for _, r := range part {
			if r < '0' || r > '9' {
				return Amount{}, fmt.Errorf("%w: %q", ErrInvalidAmount, s)
			}
		}
	}
	frac += strings.Repeat("0", exp-len(frac))
	minor, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil {
		return Amount{}, fmt.Errorf("%w: %q is out of range", ErrInvalidAmount, s)
	}
	return Amount{Minor: minor, Currency: currency}, nil
}

// Decimal formats the amount as a decimal string with exactly the
// currency's number of fraction digits.
func (a Amount) Decimal() string {
	exp, ok := exponents[a.Currency]
	if !ok || exp == 0 {
		return strconv.FormatInt(a.Minor, 10)
	}
	neg := a.Minor < 0
	u := uint64(a.Minor)
	if neg {
		u = uint64(-(a.Minor + 1)) + 1 // safe for math.MinInt64
	}
	s := strconv.FormatUint(u, 10)
	if len(s) <= exp {
		s = strings.Repeat("0", exp-len(s)+1) + s
	}
	s = s[:len(s)-exp] + "." + s[len(s)-exp:]
	if neg {
		s = "-" + s
	}
	return s
}

// String is the amount with its currency, for people: "1250.00 THB".
func (a Amount) String() string { return a.Decimal() + " " + a.Currency }

// Wire is the JSON form of an amount: {"amount": "1250.00", "currency": "THB"}.
type Wire struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

// ToWire converts an amount to its JSON form.
func (a Amount) ToWire() Wire { return Wire{Amount: a.Decimal(), Currency: a.Currency} }

// FromWire parses the JSON form of an amount.
func FromWire(w Wire) (Amount, error) { return Parse(w.Amount, w.Currency) }

// MaxMinor bounds prices so that sums of many line items cannot overflow.
const MaxMinor = math.MaxInt64 / 1_000_000
