package orders

import (
	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/policy"
)

// quoteOf is the order's record of a consignment quote: its totals (what
// the handoff carries) and its lines, each naming its listing.
func quoteOf(pq *policy.Quote) Quote {
	zero := money.Amount{Currency: pq.ItemTotal.Currency}
	q := Quote{ItemTotal: pq.ItemTotal, DutiesTotal: zero, TaxesTotal: zero, LandedTotal: pq.LandedTotal,
		RatesDate: pq.RatesDate, PolicyVersion: pq.PolicyVersion, Lines: []QuoteLine{}}
	for _, d := range pq.Duties {
		q.DutiesTotal.Minor += d.Amount.Minor
		q.Lines = append(q.Lines, QuoteLine{Kind: "duty", Rule: d.Rule, Name: d.Name, Rate: d.Rate, Amount: d.Amount, ListingID: d.ListingID})
	}
	for _, t := range pq.Taxes {
		q.TaxesTotal.Minor += t.Amount.Minor
		q.Lines = append(q.Lines, QuoteLine{Kind: "tax", Rule: t.Rule, Name: t.Name, Rate: t.Rate, Amount: t.Amount, ListingID: t.ListingID})
	}
	return q
}
