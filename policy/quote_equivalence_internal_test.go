package policy

import (
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/configs"
	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/refdata"
)

// quoteOneItemBefore is MakeQuote as it was before consignments (kept
// verbatim but for the names): the reference that one-item quotes must
// still match.
func quoteOneItemBefore(p *Policy, l Listing, quantity int64, region string, now time.Time) (*Quote, error) {
	if quantity < 1 {
		return nil, ErrQuantity
	}
	if region != "" {
		if err := refdata.ValidRegion(p.Country, region); err != nil {
			return nil, err
		}
	}
	d := Evaluate(p, l, now)
	q := &Quote{Orderable: d.Orderable, Reasons: d.Reasons, Permits: d.Permits, Duties: []Line{}, Taxes: []Line{}, Notes: []Reason{},
		RatesDate: p.Rates.Date, RatesSource: p.Rates.Source, PolicyVersion: p.Version}
	unit, err := p.convert(l.UnitPrice)
	if err != nil {
		return nil, err
	}
	q.UnitPrice = p.round(unit)
	q.ItemTotal = p.round(new(big.Rat).Mul(unit, new(big.Rat).SetInt64(quantity)))
	value := p.rat(q.ItemTotal)
	total := new(big.Rat).Set(value)
	if l.Origin == p.Country {
		q.LandedTotal = q.ItemTotal
		return q, nil
	}
	c := p.compiled
	duty := new(big.Rat)
	if dd := p.Imports.Duty; dd.ID != "" {
		switch {
		case c.deMinimis != nil && value.Cmp(p.rat(*c.deMinimis)) <= 0:
			q.Duties = append(q.Duties, Line{Rule: dd.ID, Name: "import duty (at or below de minimis " + dd.DeMinimis.String() + ")",
				Rate: "0", Base: q.ItemTotal, Amount: money.Amount{Currency: p.Currency}})
		default:
			rule, rate, name := dd.ID, c.dutyRate, "import duty"
			rateText := dd.Rate
			for _, r := range hsMatches(c.hs, l.HSCode) {
				if r.Action == ActionDutyRate {
					rule, rate, rateText, name = r.ID, r.rate, r.Rate, "import duty ("+r.Message+")"
					break
				}
			}
			if rate == nil {
				q.Notes = append(q.Notes, reason(dd.Sourced, "the general customs tariff applies above the de minimis value; it is not included in this quote"))
				break
			}
			amt := p.round(new(big.Rat).Mul(value, rate))
			duty = p.rat(amt)
			q.Duties = append(q.Duties, Line{Rule: rule, Name: name, Rate: rateText, Base: q.ItemTotal, Amount: amt})
		}
	}
	total.Add(total, duty)
	for _, t := range c.taxes {
		if hasPrefix(l.HSCode, t.ExcludeHS) {
			if t.Note != "" {
				q.Notes = append(q.Notes, reason(t.Sourced, t.Note))
			}
			continue
		}
		if t.min != nil && value.Cmp(p.rat(*t.min)) < 0 || t.max != nil && value.Cmp(p.rat(*t.max)) > 0 {
			continue
		}
		base := new(big.Rat).Set(value)
		if t.Base == BaseValuePlusDuty {
			base.Add(base, duty)
		}
		baseAmt := p.round(base)
		amt := p.round(new(big.Rat).Mul(base, t.rate))
		q.Taxes = append(q.Taxes, Line{Rule: t.ID, Name: t.Name, Rate: t.Rate, Base: baseAmt, Amount: amt})
		total.Add(total, p.rat(amt))
	}
	q.LandedTotal = p.round(total)
	return q, nil
}

// TestOneItemQuoteUnchanged proves, for every HS prefix any rule of the
// three default policies names (import rules, tax exclusions, minimum
// price exceptions, export rules) and an HS code no rule names, from every
// member country, at prices around every threshold and in every currency,
// that MakeQuote equals MakeOrderQuote of one item, and that both equal
// the quote of the code before consignments.
func TestOneItemQuoteUnchanged(t *testing.T) {
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	prices := []string{"0.01", "1.00", "1.50", "49.49", "60.00", "99.99", "438.36", "600.00", "1899.70", "3000.00", "3300.00", "50000.00", "1000000.00"}
	checked := 0
	for _, cc := range []string{"TH", "MY", "ID"} {
		raw, err := configs.DefaultPolicy(cc)
		require.NoError(t, err)
		p, err := Parse("policy-"+cc+".yaml", raw)
		require.NoError(t, err)
		prefixes := []string{"100630"}
		for _, r := range p.Imports.Rules {
			prefixes = append(prefixes, r.HS...)
		}
		for _, x := range p.Imports.Taxes {
			prefixes = append(prefixes, x.ExcludeHS...)
		}
		if m := p.Imports.MinUnitPrice; m != nil {
			prefixes = append(prefixes, m.Exceptions...)
		}
		for _, r := range p.Exports {
			prefixes = append(prefixes, r.HS...)
		}
		var codes []string
		for _, pre := range prefixes {
			// The prefix as a listing's code, and a subheading under it.
			codes = append(codes, pre, pre+strings.Repeat("1", 6-len(pre)))
		}
		for _, hs := range codes {
			for _, origin := range []string{"TH", "MY", "ID"} {
				for _, cur := range []string{"THB", "MYR", "IDR", "USD"} {
					for _, price := range prices {
						for _, qty := range []int64{1, 3, 7} {
							a, err := money.Parse(price, cur)
							require.NoError(t, err)
							l := Listing{ID: "lst_1", Origin: origin, HSCode: hs, UnitPrice: a}
							single, err := MakeQuote(p, l, qty, "", now)
							require.NoError(t, err)
							order, err := MakeOrderQuote(p, []QuoteItem{{Listing: l, Quantity: qty}}, "", now)
							require.NoError(t, err)
							require.Equal(t, single, order)
							before, err := quoteOneItemBefore(p, l, qty, "", now)
							require.NoError(t, err)
							require.Equal(t, []ItemQuote{{ListingID: "lst_1", Quantity: qty, UnitPrice: single.UnitPrice, ItemTotal: single.ItemTotal}}, single.Items)
							single.Items = nil
							for _, ls := range [][]Line{single.Duties, single.Taxes} {
								for i := range ls {
									if ls[i].ListingID == "" {
										require.Contains(t, ls[i].Name, "at or below de minimis", "only the consignment's de minimis line names no item")
									} else {
										require.Equal(t, "lst_1", ls[i].ListingID, "a line of one item names it")
									}
									ls[i].ListingID = ""
								}
							}
							require.Equal(t, before, single, "%s quote of %s %s x%d from %s", cc, hs, a, qty, origin)
							checked++
						}
					}
				}
			}
		}
	}
	t.Logf("%d one-item quotes checked", checked)
}
