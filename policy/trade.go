package policy

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/refdata"
)

// Listing is what the trade rules need to know of a listing.
type Listing struct {
	ID        string // the listing's ID, named by the quote's lines
	Origin    string // the seller's country
	HSCode    string
	UnitPrice money.Amount
}

// Reason is why a decision came out as it did, citing the rule.
type Reason struct {
	Rule      string `json:"rule"`
	Source    string `json:"source"`
	Message   string `json:"message"`
	Confirmed bool   `json:"confirmed"`
}

// Permit is a permit the buyer needs for an import.
type Permit struct {
	Rule   string `json:"rule"`
	Permit string `json:"permit"`
	Source string `json:"source"`
}

// Decision is the import decision for a listing, for this country's buyers.
type Decision struct {
	Orderable bool     `json:"orderable"`
	Reasons   []Reason `json:"reasons"`
	Permits   []Permit `json:"permits"`
}

// Empty, non-nil slices shared by decisions (they encode as [], and
// appending to a zero-capacity slice copies): no allocation per decision.
var (
	noReasons = make([]Reason, 0)
	noPermits = make([]Permit, 0)
)

// ruleNotInForce is the rule ID cited when the policy itself is not in force.
const ruleNotInForce = "POLICY-NOT-IN-FORCE"

// InForce reports whether the policy applies at now.
func (p *Policy) InForce(now time.Time) bool {
	return !now.Before(p.Effective) && now.Before(p.Expires)
}

func reason(s Sourced, msg string) Reason {
	return Reason{Rule: s.ID, Source: s.Source, Message: msg, Confirmed: s.IsConfirmed()}
}

// hsMatches returns the rules of table that may apply to goods of code,
// most specific first: rules whose prefix the code starts with, and, for a
// listing that names only a heading (4 digits), rules of its subheadings
// too: a seller's "8543" may be an e-cigarette (854340), so a rule for it
// cannot be escaped by naming the heading only.
func hsMatches(table map[string][]*compiledHS, code string) []*compiledHS {
	var out []*compiledHS
	if len(code) < 6 {
		for prefix, rules := range table {
			if len(prefix) > len(code) && prefix[:len(code)] == code {
				out = append(out, rules...)
			}
		}
	}
	for n := min(len(code), 6); n >= 2; n -= 2 {
		out = append(out, table[code[:n]]...)
	}
	return out
}

// hasPrefix reports whether code falls under one of prefixes, or (a code
// less specific than a prefix) may.
func hasPrefix(code string, prefixes []string) bool {
	for _, p := range prefixes {
		n := min(len(code), len(p))
		if code[:n] == p[:n] {
			return true
		}
	}
	return false
}

// Evaluate decides whether this country's buyers may order a listing.
// Domestic listings are always orderable; imports follow the import rules:
// prohibitions, permits and the minimum unit price for foreign direct
// sellers. It is pure: now is an argument.
func Evaluate(p *Policy, l Listing, now time.Time) Decision {
	d := Decision{Orderable: true, Reasons: noReasons, Permits: noPermits}
	if l.Origin == p.Country {
		return d
	}
	if !p.InForce(now) {
		d.Orderable = false
		d.Reasons = append(d.Reasons, Reason{Rule: ruleNotInForce, Source: p.IssuedBy, Confirmed: true,
			Message: fmt.Sprintf("%s policy version %d is not in force (%s to %s)", p.Country, p.Version,
				p.Effective.UTC().Format(time.DateOnly), p.Expires.UTC().Format(time.DateOnly))})
		return d
	}
	c := p.compiled
	if len(l.HSCode) < 6 {
		// A heading-only listing: rules of its subheadings may apply too
		// (rare; listings mostly name a subheading, the fast path below).
		for _, r := range hsMatches(c.hs, l.HSCode) {
			d.apply(r)
		}
	} else {
		for n := 6; n >= 2; n -= 2 {
			for _, r := range c.hs[l.HSCode[:n]] {
				d.apply(r)
			}
		}
	}
	if m := p.Imports.MinUnitPrice; m != nil && !hasPrefix(l.HSCode, c.minExcept) {
		// The floor is precomputed per currency in that currency's minor
		// units (rounded up), so the hot path is one integer comparison:
		// for a whole number n, n < t exactly when n < ceil(t).
		floor, ok := c.minFloor[l.UnitPrice.Currency]
		if !ok || l.UnitPrice.Minor < floor {
			d.Orderable = false
			d.Reasons = append(d.Reasons, reason(m.Sourced, fmt.Sprintf("%s (unit price %s is below %s)", m.Message, l.UnitPrice, m.Price.String())))
		}
	}
	return d
}

// Orderable is Evaluate(p, l, now).Orderable without building the
// reasons: what a search's orderable filter asks of every candidate, with
// no allocation. TestOrderableAgrees holds the two to the same answer.
func Orderable(p *Policy, l Listing, now time.Time) bool {
	if l.Origin == p.Country {
		return true
	}
	if !p.InForce(now) {
		return false
	}
	c := p.compiled
	if len(l.HSCode) < 6 {
		for _, r := range hsMatches(c.hs, l.HSCode) {
			if r.Action == ActionProhibited {
				return false
			}
		}
	} else {
		for n := 6; n >= 2; n -= 2 {
			for _, r := range c.hs[l.HSCode[:n]] {
				if r.Action == ActionProhibited {
					return false
				}
			}
		}
	}
	if p.Imports.MinUnitPrice != nil && !hasPrefix(l.HSCode, c.minExcept) {
		floor, ok := c.minFloor[l.UnitPrice.Currency]
		if !ok || l.UnitPrice.Minor < floor {
			return false
		}
	}
	return true
}

// ExportDecision decides whether this country's sellers may publish a
// listing abroad.
func ExportDecision(p *Policy, hsCode string, now time.Time) Decision {
	d := Decision{Orderable: true, Reasons: []Reason{}, Permits: []Permit{}}
	for _, r := range hsMatches(p.compiled.exports, hsCode) {
		d.apply(r)
	}
	return d
}

// apply adds an HS rule's verdict to d: a prohibition makes it not
// orderable, a permit requirement lists the permit; both cite the rule.
func (d *Decision) apply(r *compiledHS) {
	switch r.Action {
	case ActionProhibited:
		d.Orderable = false
		d.Reasons = append(d.Reasons, reason(r.Sourced, r.Message))
	case ActionPermitRequired:
		d.Permits = append(d.Permits, Permit{Rule: r.ID, Permit: r.Permit, Source: r.Source})
		d.Reasons = append(d.Reasons, reason(r.Sourced, r.Message))
	}
}

// convert returns an amount in the policy's currency, exactly.
func (p *Policy) convert(a money.Amount) (*big.Rat, error) {
	rate, ok := p.compiled.rates[a.Currency]
	if !ok {
		return nil, fmt.Errorf("no exchange rate for %s in %s policy version %d", a.Currency, p.Country, p.Version)
	}
	exp, err := money.Exponent(a.Currency)
	if err != nil {
		return nil, err
	}
	v := new(big.Rat).SetFrac(big.NewInt(a.Minor), pow10(exp))
	return v.Mul(v, rate), nil
}

// round turns an exact amount of the policy currency into minor units,
// rounding half away from zero (the rule stated in docs/POLICY.md).
func (p *Policy) round(v *big.Rat) money.Amount {
	exp, _ := money.Exponent(p.Currency)
	scaled := new(big.Rat).Mul(v, new(big.Rat).SetInt(pow10(exp)))
	num, den := scaled.Num(), scaled.Denom()
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	// |r|*2 >= den rounds away from zero.
	if new(big.Int).Mul(new(big.Int).Abs(r), big.NewInt(2)).Cmp(den) >= 0 {
		if num.Sign() >= 0 {
			q.Add(q, big.NewInt(1))
		} else {
			q.Sub(q, big.NewInt(1))
		}
	}
	return money.Amount{Minor: q.Int64(), Currency: p.Currency}
}

func (p *Policy) rat(a money.Amount) *big.Rat {
	v, _ := p.convert(a)
	return v
}

// Line is one duty or tax of a quote. ListingID names the item the line
// is for; a line for the whole consignment (the duty at or below de
// minimis) names none.
type Line struct {
	Rule      string       `json:"rule"`
	Name      string       `json:"name"`
	Rate      string       `json:"rate"`
	Base      money.Amount `json:"base"`
	Amount    money.Amount `json:"amount"`
	ListingID string       `json:"listing_id,omitempty"`
}

// QuoteItem is one item of a consignment: a listing and how many units.
type QuoteItem struct {
	Listing  Listing
	Quantity int64
}

// ItemQuote is what a quote says of one of its items.
type ItemQuote struct {
	ListingID string
	Quantity  int64
	UnitPrice money.Amount
	ItemTotal money.Amount
}

// Quote is the landed cost of a consignment (one or several items from one
// country) for this country's buyers, in the policy's currency.
type Quote struct {
	Orderable bool     `json:"orderable"`
	Reasons   []Reason `json:"reasons"`
	Permits   []Permit `json:"permits"`
	// UnitPrice is the unit price of a one-item quote; zero when the quote
	// has several items (each has its own in Items).
	UnitPrice money.Amount
	// ItemTotal is the consignment's value: the sum of the items' totals.
	ItemTotal     money.Amount
	Items         []ItemQuote
	Duties        []Line
	Taxes         []Line
	LandedTotal   money.Amount
	Notes         []Reason
	RatesDate     string
	RatesSource   string
	PolicyVersion uint64
}

var (
	// ErrQuantity is returned for a quantity below 1.
	ErrQuantity = fmt.Errorf("quantity must be 1 or more")
	// ErrNoItems is returned for a consignment without items.
	ErrNoItems = errors.New("a quote needs at least one item")
	// ErrMixedOrigins is returned for items from several countries: each
	// country's goods are a consignment of their own.
	ErrMixedOrigins = errors.New("the items of one quote must come from one country")
)

// MakeQuote computes the landed cost of quantity units of a listing
// delivered to region: the quote of a consignment of that one item
// (MakeOrderQuote).
func MakeQuote(p *Policy, l Listing, quantity int64, region string, now time.Time) (*Quote, error) {
	return MakeOrderQuote(p, []QuoteItem{{Listing: l, Quantity: quantity}}, region, now)
}

// MakeOrderQuote computes the landed cost of one consignment, the items
// of one order, delivered to region: each item's total converted at the
// policy's exchange rates; the consignment's value, their sum, decides de
// minimis and every tax's thresholds, as customs decide them for the
// parcel, not for each item; above de minimis each item pays the duty of
// its own HS code on its own value, and each tax inside its thresholds is
// computed per item on that item's base. The goods' value is the item
// total: shipping and insurance are not in the catalog, so CIF and FOB
// coincide here (docs/POLICY.md).
func MakeOrderQuote(p *Policy, items []QuoteItem, region string, now time.Time) (*Quote, error) {
	if len(items) == 0 {
		return nil, ErrNoItems
	}
	for i, it := range items {
		if it.Quantity < 1 {
			if len(items) == 1 {
				return nil, ErrQuantity
			}
			return nil, fmt.Errorf("item %d (listing %s): %w", i, it.Listing.ID, ErrQuantity)
		}
		if it.Listing.Origin != items[0].Listing.Origin {
			return nil, fmt.Errorf("%w: item %d (listing %s) is from %s, item 0 from %s", ErrMixedOrigins, i, it.Listing.ID, it.Listing.Origin, items[0].Listing.Origin)
		}
	}
	if region != "" {
		if err := refdata.ValidRegion(p.Country, region); err != nil {
			return nil, err
		}
	}
	zero := money.Amount{Currency: p.Currency}
	q := &Quote{Orderable: true, Reasons: noReasons, Permits: noPermits, UnitPrice: zero, ItemTotal: zero,
		Items: make([]ItemQuote, 0, len(items)), Duties: []Line{}, Taxes: []Line{}, Notes: []Reason{},
		RatesDate: p.Rates.Date, RatesSource: p.Rates.Source, PolicyVersion: p.Version}
	// value[i] is item i's rounded total, exact; consignment their sum.
	value := make([]*big.Rat, len(items))
	consignment := new(big.Rat)
	for i, it := range items {
		d := Evaluate(p, it.Listing, now)
		q.Orderable = q.Orderable && d.Orderable
		q.Reasons = append(q.Reasons, d.Reasons...)
		q.Permits = append(q.Permits, d.Permits...)
		unit, err := p.convert(it.Listing.UnitPrice)
		if err != nil {
			return nil, err
		}
		iq := ItemQuote{ListingID: it.Listing.ID, Quantity: it.Quantity, UnitPrice: p.round(unit),
			ItemTotal: p.round(new(big.Rat).Mul(unit, new(big.Rat).SetInt64(it.Quantity)))}
		q.Items = append(q.Items, iq)
		q.ItemTotal.Minor += iq.ItemTotal.Minor
		value[i] = p.rat(iq.ItemTotal)
		consignment.Add(consignment, value[i])
	}
	if len(items) == 1 {
		q.UnitPrice = q.Items[0].UnitPrice
	}
	total := new(big.Rat).Set(consignment)
	if items[0].Listing.Origin == p.Country {
		q.LandedTotal = q.ItemTotal
		return q, nil
	}
	c := p.compiled
	duty := make([]*big.Rat, len(items))
	for i := range duty {
		duty[i] = new(big.Rat)
	}
	if dd := p.Imports.Duty; dd.ID != "" {
		switch {
		case c.deMinimis != nil && consignment.Cmp(p.rat(*c.deMinimis)) <= 0:
			// One line for the consignment: it is the consignment that is
			// at or below de minimis.
			q.Duties = append(q.Duties, Line{Rule: dd.ID, Name: "import duty (at or below de minimis " + dd.DeMinimis.String() + ")",
				Rate: "0", Base: q.ItemTotal, Amount: zero})
		default:
			for i, it := range items {
				rule, rate, name := dd.ID, c.dutyRate, "import duty"
				rateText := dd.Rate
				for _, r := range hsMatches(c.hs, it.Listing.HSCode) {
					if r.Action == ActionDutyRate {
						rule, rate, rateText, name = r.ID, r.rate, r.Rate, "import duty ("+r.Message+")"
						break
					}
				}
				if rate == nil {
					q.addNote(reason(dd.Sourced, "the general customs tariff applies above the de minimis value; it is not included in this quote"))
					continue
				}
				amt := p.round(new(big.Rat).Mul(value[i], rate))
				duty[i] = p.rat(amt)
				total.Add(total, duty[i])
				q.Duties = append(q.Duties, Line{Rule: rule, Name: name, Rate: rateText, Base: q.Items[i].ItemTotal, Amount: amt, ListingID: it.Listing.ID})
			}
		}
	}
	for _, t := range c.taxes {
		inside := (t.min == nil || consignment.Cmp(p.rat(*t.min)) >= 0) && (t.max == nil || consignment.Cmp(p.rat(*t.max)) <= 0)
		for i, it := range items {
			// An excluded item earns the note whatever the thresholds say:
			// the tax is not for goods of its kind.
			if hasPrefix(it.Listing.HSCode, t.ExcludeHS) {
				if t.Note != "" {
					q.addNote(reason(t.Sourced, t.Note))
				}
				continue
			}
			if !inside {
				continue
			}
			base := new(big.Rat).Set(value[i])
			if t.Base == BaseValuePlusDuty {
				base.Add(base, duty[i])
			}
			amt := p.round(new(big.Rat).Mul(base, t.rate))
			q.Taxes = append(q.Taxes, Line{Rule: t.ID, Name: t.Name, Rate: t.Rate, Base: p.round(base), Amount: amt, ListingID: it.Listing.ID})
			total.Add(total, p.rat(amt))
		}
	}
	q.LandedTotal = p.round(total)
	return q, nil
}

// addNote adds a note once: several items may earn the same one.
func (q *Quote) addNote(n Reason) {
	if !slices.Contains(q.Notes, n) {
		q.Notes = append(q.Notes, n)
	}
}

// Retention returns the retention rule for a record kind, if any.
func (p *Policy) RetentionFor(record string) (RetentionRule, bool) {
	i := slices.IndexFunc(p.Retention, func(r RetentionRule) bool { return r.Record == record })
	if i < 0 {
		return RetentionRule{}, false
	}
	return p.Retention[i], true
}

// ConvertAmount converts an amount into the policy's currency at its
// exchange rates, rounded like quotes; false if there is no rate.
func (p *Policy) ConvertAmount(a money.Amount) (money.Amount, bool) {
	v, err := p.convert(a)
	if err != nil {
		return money.Amount{}, false
	}
	return p.round(v), true
}
