package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/refdata"
)

// MaxFileSize bounds a policy file.
const MaxFileSize = 1 << 20

var ruleIDPattern = regexp.MustCompile(`^[A-Z]{2}-[A-Z0-9-]{1,60}$`)

// Parse reads, validates and compiles a policy file. name is used in error
// messages ("configs/policy-TH.yaml:42: ..."). A policy that fails any
// check is refused whole: a node never runs half a policy.
func Parse(name string, data []byte) (*Policy, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrInvalid, name, MaxFileSize)
	}
	var p Policy
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s: the file is empty", ErrInvalid, name)
		}
		return nil, fmt.Errorf("%w: %s", ErrInvalid, yamlError(name, err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s: more than one YAML document", ErrInvalid, name)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, name, err)
	}
	v := &validator{name: name, root: &root}
	p.validate(v)
	if v.err != nil {
		return nil, v.err
	}
	return &p, nil
}

// validator collects the first error with its position.
type validator struct {
	name string
	root *yaml.Node
	err  error
}

// fail records an error at the node found by path (keys and indexes).
func (v *validator) fail(path []any, format string, args ...any) {
	if v.err != nil {
		return
	}
	line := v.line(path)
	where := v.name
	if line > 0 {
		where += ":" + strconv.Itoa(line)
	}
	field := ""
	for _, p := range path {
		switch p := p.(type) {
		case string:
			if field != "" {
				field += "."
			}
			field += p
		case int:
			field += "[" + strconv.Itoa(p) + "]"
		}
	}
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = field + ": " + msg
	}
	v.err = fmt.Errorf("%w: %s: %s", ErrInvalid, where, msg)
}

// line finds the line of the deepest node of path that exists.
func (v *validator) line(path []any) int {
	n := v.root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		var next *yaml.Node
		switch p := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == p {
						next = n.Content[i+1]
						line = n.Content[i].Line
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && p < len(n.Content) {
				next = n.Content[p]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

func (v *validator) sourced(path []any, s Sourced, ids map[string]bool, country string) {
	if !ruleIDPattern.MatchString(s.ID) {
		v.fail(append(path, "id"), "rule id %q must look like %s-RULE-NAME (upper case, digits, dashes)", s.ID, country)
		return
	}
	if !strings.HasPrefix(s.ID, country+"-") {
		v.fail(append(path, "id"), "rule id %q must start with the policy's country %s-", s.ID, country)
	}
	if ids[s.ID] {
		v.fail(append(path, "id"), "rule id %q is used twice", s.ID)
	}
	ids[s.ID] = true
	if strings.TrimSpace(s.Source) == "" {
		v.fail(append(path, "source"), "every rule needs a source (the law, notice or reference it encodes)")
	}
}

func (v *validator) amount(path []any, a *Amount, p *Policy) *money.Amount {
	m, err := a.parse()
	if err != nil {
		v.fail(path, "%v", err)
		return nil
	}
	if m.Minor < 0 {
		v.fail(path, "amount is negative")
	}
	if m.Currency != p.Currency {
		if _, ok := p.Rates.Rates[m.Currency]; !ok {
			v.fail(path, "currency %s has no rate in exchange_rates", m.Currency)
		}
	}
	return &m
}

func (v *validator) hsPrefixes(path []any, hs []string) {
	if len(hs) == 0 {
		v.fail(path, "at least one HS prefix is needed")
	}
	for i, h := range hs {
		if len(h)%2 != 0 || len(h) < 2 || len(h) > 6 || !refdata.HSPrefixExists(h) {
			v.fail(append(path, i), "HS prefix %q does not exist in HS 2022 (use a 2-digit chapter, 4-digit heading or 6-digit subheading)", h)
		}
	}
}

// validate checks everything and compiles what evaluation needs.
func (p *Policy) validate(v *validator) {
	c := &compiled{rates: map[string]*big.Rat{}, hs: map[string][]*compiledHS{}, exports: map[string][]*compiledHS{}, transfers: map[transferKey]*compiledTransfer{}}
	if p.Format != Format {
		v.fail([]any{"format"}, "format must be %q", Format)
	}
	country, ok := refdata.CountryByCode(p.Country)
	if !ok {
		v.fail([]any{"country"}, "country %q is not a member country", p.Country)
	}
	if p.Version < 1 {
		v.fail([]any{"version"}, "version must be 1 or more")
	}
	if strings.TrimSpace(p.IssuedBy) == "" {
		v.fail([]any{"issued_by"}, "issued_by (the issuing agency) is required")
	}
	if p.Effective.IsZero() || p.Expires.IsZero() || !p.Expires.After(p.Effective) {
		v.fail([]any{"expires"}, "effective and expires are required, and expires must be after effective")
	}
	if ok && p.Currency != country.Currency {
		v.fail([]any{"currency"}, "currency must be %s, %s's currency", country.Currency, p.Country)
	}
	for i, r := range p.Regions {
		if err := refdata.ValidRegion(p.Country, r); err != nil {
			v.fail([]any{"regions", i}, "%v", err)
		}
	}
	// Exchange rates first: amounts below need them.
	if p.Rates.Date == "" || strings.TrimSpace(p.Rates.Source) == "" {
		v.fail([]any{"exchange_rates"}, "exchange_rates needs its date and source")
	}
	for cur, r := range p.Rates.Rates {
		if _, err := money.Exponent(cur); err != nil {
			v.fail([]any{"exchange_rates", "rates", cur}, "%v", err)
			continue
		}
		rat, err := parseNonNegative(r)
		if err != nil {
			v.fail([]any{"exchange_rates", "rates", cur}, "%v", err)
			continue
		}
		if rat.Sign() <= 0 {
			v.fail([]any{"exchange_rates", "rates", cur}, "rate must be positive")
			continue
		}
		c.rates[cur] = rat
	}
	c.rates[p.Currency] = big.NewRat(1, 1)
	// Every member's currency must convert, or quotes could not be made.
	for _, mc := range refdata.Countries() {
		if _, ok := c.rates[mc.Currency]; !ok {
			v.fail([]any{"exchange_rates", "rates"}, "currency %s (of %s) has no rate", mc.Currency, mc.Code)
		}
	}

	// Field classes: every known field of every kind, nothing else.
	for kind := range knownFields {
		classes, ok := p.FieldClasses[kind]
		if !ok && optionalKinds[kind] {
			continue
		}
		if !ok {
			v.fail([]any{"field_classes"}, "field classes for %q are missing", kind)
			continue
		}
		for _, f := range knownFields[kind] {
			if _, ok := classes[f]; !ok {
				v.fail([]any{"field_classes", kind}, "field %q of %s has no class", f, kind)
			}
		}
		for f, cl := range classes {
			if !isKnownField(kind, f) {
				v.fail([]any{"field_classes", kind, f}, "%s has no field %q (fields: %s)", kind, f, strings.Join(knownFields[kind], ", "))
			}
			if cl != Public && cl != Personal && cl != Sensitive {
				v.fail([]any{"field_classes", kind, f}, "class %q must be public, personal or sensitive", cl)
			}
		}
	}
	for kind := range p.FieldClasses {
		if _, ok := knownFields[kind]; !ok {
			v.fail([]any{"field_classes", kind}, "unknown record kind %q", kind)
		}
	}

	ids := map[string]bool{}
	for i := range p.Transfers {
		r := &p.Transfers[i]
		path := []any{"transfers", i}
		v.sourced(path, r.Sourced, ids, p.Country)
		if r.Purpose != PurposeCatalog && r.Purpose != PurposeOrderHandoff && r.Purpose != PurposeOrderStatus && r.Purpose != PurposeIssue {
			v.fail(append(path, "purpose"), "purpose %q must be catalog, order_handoff, order_status or issue", r.Purpose)
		}
		if _, ok := knownFields[r.Record]; !ok {
			v.fail(append(path, "record"), "record %q must be seller, listing, buyer, order or issue", r.Record)
			continue
		}
		if _, ok := p.FieldClasses[r.Record]; !ok && optionalKinds[r.Record] {
			v.fail(append(path, "record"), "record %q has no field_classes: classify its fields before a rule lets them cross", r.Record)
			continue
		}
		if !legalBases[r.LegalBasis] {
			v.fail(append(path, "legal_basis"), "legal_basis %q must be one of not_personal, adequacy, contract_necessity, consent, safeguards", r.LegalBasis)
		}
		if len(r.Destinations) == 0 || len(r.Fields) == 0 {
			v.fail(path, "destinations and fields are required")
		}
		for j, f := range r.Fields {
			cl, ok := p.FieldClasses[r.Record][f]
			if !ok {
				v.fail(append(path, "fields", j), "%s has no field %q", r.Record, f)
				continue
			}
			if cl != Public && r.LegalBasis == BasisNotPersonal {
				v.fail(append(path, "fields", j), "field %q is %s: a rule with legal_basis not_personal may carry public fields only", f, cl)
			}
			if cl == Sensitive {
				v.fail(append(path, "fields", j), "field %q is sensitive: sensitive fields never leave", f)
			}
		}
		for j, d := range r.Destinations {
			if d != AllMembers && (len(d) != 2 || strings.ToUpper(d) != d) {
				v.fail(append(path, "destinations", j), "destination %q must be a country code or \"*\"", d)
			}
			if d == p.Country {
				v.fail(append(path, "destinations", j), "a transfer to %s itself is not a transfer", d)
			}
			key := transferKey{record: r.Record, purpose: r.Purpose, destination: d}
			ct := c.transfers[key]
			if ct == nil {
				ct = &compiledTransfer{fields: map[string]bool{}, basis: r.LegalBasis}
				c.transfers[key] = ct
			} else if ct.basis != r.LegalBasis {
				v.fail(append(path, "legal_basis"), "contradicts rule %s: the same %s transfer for %s to %s on another legal basis (%s)", ct.rules[0].ID, r.Record, r.Purpose, d, ct.basis)
			}
			ct.rules = append(ct.rules, r)
			for _, f := range r.Fields {
				ct.fields[f] = true
			}
		}
	}
	for i := range p.Retention {
		r := &p.Retention[i]
		path := []any{"retention", i}
		v.sourced(path, r.Sourced, ids, p.Country)
		if _, ok := knownFields[r.Record]; !ok {
			v.fail(append(path, "record"), "record %q must be seller, listing, buyer, order or issue", r.Record)
		}
		if r.Days < 1 || r.Days > 36500 {
			v.fail(append(path, "days"), "days must be between 1 and 36500")
		}
	}

	// Import rules by HS prefix.
	for i := range p.Imports.Rules {
		r := &p.Imports.Rules[i]
		path := []any{"imports", "rules", i}
		v.sourced(path, r.Sourced, ids, p.Country)
		v.hsPrefixes(append(path, "hs"), r.HS)
		ch := v.hsRule(path, r)
		for _, h := range r.HS {
			for _, other := range c.hs[h] {
				if conflicts(other, ch) {
					v.fail(append(path, "hs"), "HS %s: contradicts rule %s (%s) with %s", h, other.ID, describe(other), describe(ch))
				}
			}
			c.hs[h] = append(c.hs[h], ch)
		}
	}
	// A prohibition cannot be narrowed by a more specific rule: that would
	// silently allow what the broader rule bans.
	for prefix, rules := range c.hs {
		for _, r := range rules {
			if r.Action != ActionProhibited {
				continue
			}
			for other, ors := range c.hs {
				if other != prefix && strings.HasPrefix(other, prefix) {
					for _, o := range ors {
						if o.Action != ActionProhibited {
							v.fail([]any{"imports", "rules"}, "rule %s (%s for HS %s) narrows prohibition %s of HS %s", o.ID, o.Action, other, r.ID, prefix)
						}
					}
				}
			}
		}
	}
	d := &p.Imports.Duty
	if d.ID != "" || d.Rate != "" || d.DeMinimis != nil {
		v.sourced([]any{"imports", "duty"}, d.Sourced, ids, p.Country)
		if d.Rate != "" {
			r, err := parseRate(d.Rate)
			if err != nil {
				v.fail([]any{"imports", "duty", "rate"}, "%v", err)
			}
			c.dutyRate = r
		}
		if d.DeMinimis != nil {
			c.deMinimis = v.amount([]any{"imports", "duty", "de_minimis"}, d.DeMinimis, p)
		}
		if d.Basis != "cif" && d.Basis != "fob" {
			v.fail([]any{"imports", "duty", "basis"}, "basis %q must be cif or fob", d.Basis)
		}
	}
	for i := range p.Imports.Taxes {
		t := &p.Imports.Taxes[i]
		path := []any{"imports", "taxes", i}
		v.sourced(path, t.Sourced, ids, p.Country)
		ct := compiledTax{Tax: t}
		var err error
		if ct.rate, err = parseRate(t.Rate); err != nil {
			v.fail(append(path, "rate"), "%v", err)
		}
		if t.Base != BaseValue && t.Base != BaseValuePlusDuty {
			v.fail(append(path, "base"), "base %q must be value or value_plus_duty", t.Base)
		}
		if strings.TrimSpace(t.Name) == "" {
			v.fail(append(path, "name"), "name is required")
		}
		if t.MinValue != nil {
			ct.min = v.amount(append(path, "min_value"), t.MinValue, p)
		}
		if t.MaxValue != nil {
			ct.max = v.amount(append(path, "max_value"), t.MaxValue, p)
		}
		if len(t.ExcludeHS) > 0 {
			v.hsPrefixes(append(path, "exclude_hs"), t.ExcludeHS)
		}
		c.taxes = append(c.taxes, ct)
	}
	if m := p.Imports.MinUnitPrice; m != nil {
		path := []any{"imports", "min_unit_price"}
		v.sourced(path, m.Sourced, ids, p.Country)
		c.minPrice = v.amount(append(path, "price"), &m.Price, p)
		if len(m.Exceptions) > 0 {
			v.hsPrefixes(append(path, "exceptions"), m.Exceptions)
		}
		c.minExcept = m.Exceptions
		if c.minPrice != nil && v.err == nil {
			c.minFloor = minFloors(c, *c.minPrice)
		}
	}
	for i := range p.Exports {
		r := &p.Exports[i]
		path := []any{"exports", i}
		v.sourced(path, r.Sourced, ids, p.Country)
		v.hsPrefixes(append(path, "hs"), r.HS)
		if r.Action != ActionProhibited && r.Action != ActionPermitRequired {
			v.fail(append(path, "action"), "export action %q must be prohibited or permit_required", r.Action)
		}
		ch := &compiledHS{HSRule: r}
		for _, h := range r.HS {
			c.exports[h] = append(c.exports[h], ch)
		}
	}
	if p.ConsumerSection != nil {
		v.consumer(p.ConsumerSection, ids, p.Country)
	} else if v.hasKey([]any{"consumer"}) {
		v.fail([]any{"consumer"}, "the consumer section is empty: give respond_within_hours, resolve_within_days, escalation and source, or remove the key")
	}
	if p.Signature != nil && (p.Signature.Country != p.Country || p.Signature.PublicKey == "" || p.Signature.Value == "") {
		v.fail([]any{"signature"}, "signature needs the policy's country, public_key and value")
	}
	p.compiled = c
}

func (v *validator) hsRule(path []any, r *HSRule) *compiledHS {
	ch := &compiledHS{HSRule: r}
	switch r.Action {
	case ActionProhibited:
	case ActionPermitRequired:
		if strings.TrimSpace(r.Permit) == "" {
			v.fail(append(path, "permit"), "permit_required needs the permit's name")
		}
	case ActionDutyRate:
		rate, err := parseRate(r.Rate)
		if err != nil {
			v.fail(append(path, "rate"), "%v", err)
		}
		ch.rate = rate
	default:
		v.fail(append(path, "action"), "action %q must be prohibited, permit_required or duty_rate", r.Action)
	}
	return ch
}

// conflicts reports whether two rules for the same HS prefix contradict
// each other: a ban beside anything but a ban, or two different duty rates.
// A permit requirement and a duty rate go together.
func conflicts(a, b *compiledHS) bool {
	switch {
	case a.Action == ActionProhibited || b.Action == ActionProhibited:
		return a.Action != b.Action
	case a.Action == ActionDutyRate && b.Action == ActionDutyRate:
		return a.rate == nil || b.rate == nil || a.rate.Cmp(b.rate) != 0
	}
	return false
}

func describe(r *compiledHS) string {
	if r.Action == ActionDutyRate {
		return "duty rate " + r.Rate
	}
	return r.Action
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError rewrites the YAML decoder's "line N: ..." messages as
// "name:N: ...", the form every other load error takes.
func yamlError(name string, err error) string {
	var lines []string
	if te, ok := err.(*yaml.TypeError); ok {
		lines = te.Errors
	} else {
		lines = []string{err.Error()}
	}
	for i, l := range lines {
		if m := yamlLine.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			lines[i] = name + ":" + m[1] + ": " + m[2]
		} else {
			lines[i] = name + ": " + strings.TrimPrefix(l, "yaml: ")
		}
	}
	return strings.Join(lines, "; ")
}

// minFloors converts the minimum unit price into each rated currency's
// minor units, rounded up.
func minFloors(c *compiled, min money.Amount) map[string]int64 {
	out := make(map[string]int64, len(c.rates))
	minExp, _ := money.Exponent(min.Currency)
	// The floor in the policy currency.
	floor := new(big.Rat).SetFrac(big.NewInt(min.Minor), pow10(minExp))
	floor.Mul(floor, c.rates[min.Currency])
	for cur, rate := range c.rates {
		exp, err := money.Exponent(cur)
		if err != nil {
			continue
		}
		t := new(big.Rat).Quo(floor, rate)
		t.Mul(t, new(big.Rat).SetInt(pow10(exp)))
		q, r := new(big.Int).QuoRem(t.Num(), t.Denom(), new(big.Int))
		if r.Sign() > 0 {
			q.Add(q, big.NewInt(1))
		}
		out[cur] = q.Int64()
	}
	return out
}

func pow10(n int) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil) }
