package policy

import (
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/imtgt/imtgt-node/money"
)

// Format identifies the policy file format.
const Format = "imtgt-policy/1"

// ErrInvalid is wrapped by every error of a policy file that cannot be
// loaded; the message names the file, line and reason.
var ErrInvalid = errors.New("invalid policy")

// Policy is one country's signed, declarative rules: what data may leave
// and on what legal basis, what its buyers may import at what cost, what may
// be exported, and how long records are kept.
type Policy struct {
	Format       string                      `yaml:"format"`
	Country      string                      `yaml:"country"`
	Version      uint64                      `yaml:"version"`
	IssuedBy     string                      `yaml:"issued_by"`
	Effective    time.Time                   `yaml:"effective"`
	Expires      time.Time                   `yaml:"expires"`
	Currency     string                      `yaml:"currency"`
	Regions      []string                    `yaml:"regions"`
	FieldClasses map[string]map[string]Class `yaml:"field_classes"`
	Transfers    []TransferRule              `yaml:"transfers"`
	Retention    []RetentionRule             `yaml:"retention"`
	Imports      ImportRules                 `yaml:"imports"`
	Exports      []HSRule                    `yaml:"exports"`
	Rates        ExchangeRates               `yaml:"exchange_rates"`
	Signature    *Signature                  `yaml:"signature,omitempty"`

	// ConsumerSection is the optional consumer section; read it through
	// Consumer, which gives the defaults when it is absent.
	ConsumerSection *ConsumerRules `yaml:"consumer,omitempty"`

	compiled *compiled // built by Parse
}

// Sourced is what every rule carries: an ID, the source of the fact, and
// whether the fact is confirmed (facts marked unconfirmed are ones an
// agency must check before relying on them).
type Sourced struct {
	ID        string `yaml:"id"`
	Source    string `yaml:"source"`
	Confirmed *bool  `yaml:"confirmed"`
}

// IsConfirmed reports whether the rule's fact is confirmed.
func (s Sourced) IsConfirmed() bool { return s.Confirmed == nil || *s.Confirmed }

// Legal bases of a transfer.
const (
	BasisNotPersonal       = "not_personal"       // no personal data crosses
	BasisAdequacy          = "adequacy"           // destination protection adequate/equal
	BasisContractNecessity = "contract_necessity" // needed to perform a contract with the data subject
	BasisConsent           = "consent"            // the data subject's recorded consent
	BasisSafeguards        = "safeguards"         // contractual clauses, BCRs, certification
)

var legalBases = map[string]bool{BasisNotPersonal: true, BasisAdequacy: true, BasisContractNecessity: true, BasisConsent: true, BasisSafeguards: true}

// TransferRule allows named fields of a record kind to leave for some
// destinations and one purpose, on a legal basis. A field no rule allows
// never leaves.
type TransferRule struct {
	Sourced      `yaml:",inline"`
	Purpose      Purpose  `yaml:"purpose"`
	Record       string   `yaml:"record"`
	Destinations []string `yaml:"destinations"` // country codes, or "*" for every member
	Fields       []string `yaml:"fields"`
	LegalBasis   string   `yaml:"legal_basis"`
}

// RetentionRule says how long a record kind is kept (and where).
type RetentionRule struct {
	Sourced `yaml:",inline"`
	Record  string `yaml:"record"`
	Days    int    `yaml:"days"`
	// KeepInCountry means the records must stay in the country (business
	// records under tax law, say).
	KeepInCountry bool   `yaml:"keep_in_country"`
	Note          string `yaml:"note"`
}

// HS rule actions.
const (
	ActionProhibited     = "prohibited"      // may not be imported / exported
	ActionPermitRequired = "permit_required" // allowed with a permit the buyer must hold
	ActionDutyRate       = "duty_rate"       // a special duty rate
)

// HSRule applies to goods whose HS code starts with one of the prefixes.
type HSRule struct {
	Sourced `yaml:",inline"`
	HS      []string `yaml:"hs"`
	Action  string   `yaml:"action"`
	Rate    string   `yaml:"rate"`    // for duty_rate
	Permit  string   `yaml:"permit"`  // for permit_required: the permit's name
	Message string   `yaml:"message"` // for people
}

// Amount is money in a policy file: {amount: "1500.00", currency: THB}.
type Amount struct {
	Amount   string `yaml:"amount"`
	Currency string `yaml:"currency"`
}

// ImportRules are what this country's buyers may import, and the cost.
type ImportRules struct {
	Rules []HSRule `yaml:"rules"`
	Duty  Duty     `yaml:"duty"`
	Taxes []Tax    `yaml:"taxes"`
	// MinUnitPrice, if set, is the lowest unit price a foreign seller may
	// sell directly at (goods under it are not orderable), except HS
	// prefixes in Exceptions.
	MinUnitPrice *MinUnitPrice `yaml:"min_unit_price"`
}

// Duty is the customs duty on imported goods.
type Duty struct {
	Sourced `yaml:",inline"`
	// Rate applies above the de minimis value, unless an HS rule gives a
	// special rate. Empty means the general customs tariff applies and is
	// not computed here (the quote says so).
	Rate      string  `yaml:"rate"`
	DeMinimis *Amount `yaml:"de_minimis"` // no duty at or below this value
	Basis     string  `yaml:"basis"`      // cif or fob: how the value is reckoned
}

// Tax bases.
const (
	BaseValue         = "value"           // the goods' value
	BaseValuePlusDuty = "value_plus_duty" // value plus duty
)

// Tax is a tax on imported goods (VAT, sales tax).
type Tax struct {
	Sourced `yaml:",inline"`
	Name    string `yaml:"name"`
	Rate    string `yaml:"rate"`
	Base    string `yaml:"base"`
	// The tax applies only when the goods' value is at least MinValue and
	// at most MaxValue (each optional).
	MinValue *Amount `yaml:"min_value"`
	MaxValue *Amount `yaml:"max_value"`
	// ExcludeHS lists HS prefixes the tax does not apply to.
	ExcludeHS []string `yaml:"exclude_hs"`
	Note      string   `yaml:"note"`
}

// MinUnitPrice is a floor on foreign direct sellers' unit prices.
type MinUnitPrice struct {
	Sourced    `yaml:",inline"`
	Price      Amount   `yaml:"price"`
	Basis      string   `yaml:"basis"`
	Exceptions []string `yaml:"exceptions"` // HS prefixes exempt (a positive list)
	Message    string   `yaml:"message"`
}

// ExchangeRates converts other currencies into the policy's: Rates[X] is
// how many units of Currency one unit of X is worth. Operator-maintained,
// never fetched.
type ExchangeRates struct {
	Date   string            `yaml:"date"` // YYYY-MM-DD
	Source string            `yaml:"source"`
	Rates  map[string]string `yaml:"rates"`
}

// Signature is the issuing agency's signature over the policy file.
type Signature struct {
	Country   string `yaml:"country"`
	PublicKey string `yaml:"public_key"` // base64 Ed25519
	Value     string `yaml:"value"`      // base64 Ed25519 signature
}

// compiled holds what evaluation needs, parsed once at load: exact rates,
// amounts in minor units, HS rules by prefix, transfer fields by key.
type compiled struct {
	rates     map[string]*big.Rat // currency -> units of the policy currency
	dutyRate  *big.Rat            // nil: tariff not computed
	deMinimis *money.Amount
	taxes     []compiledTax
	hs        map[string][]*compiledHS // prefix -> rules
	minPrice  *money.Amount
	minFloor  map[string]int64 // currency -> lowest allowed unit price, minor units
	minExcept []string
	exports   map[string][]*compiledHS
	transfers map[transferKey]*compiledTransfer
}

type compiledTax struct {
	*Tax
	rate     *big.Rat
	min, max *money.Amount
}

type compiledHS struct {
	*HSRule
	rate *big.Rat
}

type transferKey struct {
	record      string
	purpose     Purpose
	destination string
}

type compiledTransfer struct {
	rules  []*TransferRule
	fields map[string]bool
	basis  string
}

func (a *Amount) String() string { return a.Amount + " " + a.Currency }

func (a *Amount) parse() (money.Amount, error) {
	return money.Parse(a.Amount, a.Currency)
}

// parseRate parses a duty or tax rate: a fraction from 0 to 10.
func parseRate(s string) (*big.Rat, error) {
	r, err := parseNonNegative(s)
	if err != nil {
		return nil, err
	}
	if r.Cmp(big.NewRat(10, 1)) > 0 {
		return nil, fmt.Errorf("rate %q is more than 10 (1000%%): rates are fractions, 7%% is 0.07", s)
	}
	return r, nil
}

// parseNonNegative parses a decimal number that is not negative (an
// exchange rate has no upper bound, unlike parseRate).
func parseNonNegative(s string) (*big.Rat, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, fmt.Errorf("rate %q is not a decimal number", s)
	}
	if r.Sign() < 0 {
		return nil, fmt.Errorf("rate %q is negative", s)
	}
	return r, nil
}
