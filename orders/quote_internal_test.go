package orders

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/configs"
	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/policy"
)

// TestQuoteOfConsignment: an order's quote carries the consignment's
// totals, duties and taxes summed from lines that name their items.
func TestQuoteOfConsignment(t *testing.T) {
	raw, err := configs.DefaultPolicy("ID")
	require.NoError(t, err)
	p, err := policy.Parse("policy-ID.yaml", raw)
	require.NoError(t, err)
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	item := func(id string) policy.QuoteItem {
		return policy.QuoteItem{Listing: policy.Listing{ID: id, Origin: "TH", HSCode: "852349", UnitPrice: money.Amount{Minor: 6000, Currency: "THB"}}, Quantity: 1}
	}
	cases := []struct {
		name                 string
		items                []policy.QuoteItem
		item, duties, landed string
		lines                []QuoteLine
	}{
		{"one item under de minimis", []policy.QuoteItem{item("a")}, "29100.00", "0.00", "32301.00", []QuoteLine{
			{Kind: "duty", Rule: "ID-DUTY", Name: "import duty (at or below de minimis 3.00 USD)", Rate: "0", Amount: money.Amount{Currency: "IDR"}},
			{Kind: "tax", Rule: "ID-VAT", Name: "VAT", Rate: "0.11", Amount: money.Amount{Minor: 320100, Currency: "IDR"}, ListingID: "a"},
		}},
		{"two items over it together", []policy.QuoteItem{item("a"), item("b")}, "58200.00", "4365.00", "69447.16", []QuoteLine{
			{Kind: "duty", Rule: "ID-DUTY", Name: "import duty", Rate: "0.075", Amount: money.Amount{Minor: 218250, Currency: "IDR"}, ListingID: "a"},
			{Kind: "duty", Rule: "ID-DUTY", Name: "import duty", Rate: "0.075", Amount: money.Amount{Minor: 218250, Currency: "IDR"}, ListingID: "b"},
			{Kind: "tax", Rule: "ID-VAT", Name: "VAT", Rate: "0.11", Amount: money.Amount{Minor: 344108, Currency: "IDR"}, ListingID: "a"},
			{Kind: "tax", Rule: "ID-VAT", Name: "VAT", Rate: "0.11", Amount: money.Amount{Minor: 344108, Currency: "IDR"}, ListingID: "b"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pq, err := policy.MakeOrderQuote(p, c.items, "", now)
			require.NoError(t, err)
			q := quoteOf(pq)
			require.Equal(t, c.item, q.ItemTotal.Decimal())
			require.Equal(t, c.duties, q.DutiesTotal.Decimal())
			require.Equal(t, c.landed, q.LandedTotal.Decimal())
			require.Equal(t, q.LandedTotal.Minor, q.ItemTotal.Minor+q.DutiesTotal.Minor+q.TaxesTotal.Minor)
			require.Equal(t, c.lines, q.Lines)
			require.Equal(t, "IDR", q.TaxesTotal.Currency)
			require.Equal(t, p.Version, q.PolicyVersion)
			require.Equal(t, p.Rates.Date, q.RatesDate)
		})
	}
}
