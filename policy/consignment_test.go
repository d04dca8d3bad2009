package policy_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/policy"
)

// item is a consignment item of the tests: listing ID, origin, HS code,
// unit price ("60.00 THB") and quantity.
type item struct {
	id, origin, hs, price string
	qty                   int64
}

func quoteItems(t *testing.T, its []item) []policy.QuoteItem {
	t.Helper()
	out := make([]policy.QuoteItem, 0, len(its))
	for _, it := range its {
		var amount, currency string
		_, err := fmt.Sscan(it.price, &amount, &currency)
		require.NoError(t, err)
		price, err := money.Parse(amount, currency)
		require.NoError(t, err)
		out = append(out, policy.QuoteItem{Listing: policy.Listing{ID: it.id, Origin: it.origin, HSCode: it.hs, UnitPrice: price}, Quantity: it.qty})
	}
	return out
}

// lineText is "RULE LISTING AMOUNT/BASE", LISTING "-" for a line of the
// whole consignment.
func lineText(ls []policy.Line) []string {
	out := []string{}
	for _, l := range ls {
		id := l.ListingID
		if id == "" {
			id = "-"
		}
		out = append(out, fmt.Sprintf("%s %s %s/%s", l.Rule, id, l.Amount.Decimal(), l.Base.Decimal()))
	}
	return out
}

// TestMakeOrderQuote quotes consignments of several items with the real
// default policies: de minimis and tax thresholds are decided on the
// consignment's value, duty and taxes are computed per item.
func TestMakeOrderQuote(t *testing.T) {
	cases := []struct {
		name    string
		policy  string
		items   []item
		value   string   // the consignment's value
		items2  []string // each item's total
		duties  []string // lineText
		taxes   []string
		notes   []string
		landed  string
		compare string // why it differs from quoting each item alone
	}{
		{
			name:   "ID: two items each under the USD 3 de minimis, together over it, pay 7.5% duty each",
			policy: "ID",
			// THB 60 = IDR 29,100 < IDR 48,000 each; 58,200 together.
			items:  []item{{"a", "TH", "852349", "60.00 THB", 1}, {"b", "TH", "852341", "60.00 THB", 1}},
			value:  "58200.00",
			items2: []string{"29100.00", "29100.00"},
			duties: []string{"ID-DUTY a 2182.50/29100.00", "ID-DUTY b 2182.50/29100.00"},
			// VAT on value + duty: 31,282.50 × 0.11 = 3,441.075 → 3,441.08.
			taxes:   []string{"ID-VAT a 3441.08/31282.50", "ID-VAT b 3441.08/31282.50"},
			notes:   []string{},
			landed:  "69447.16",
			compare: "alone, each is at or below de minimis: no duty",
		},
		{
			name:   "ID: a consignment under de minimis has one zero duty line for the whole",
			policy: "ID",
			// IDR 19,400 + 24,250 = 43,650 ≤ 48,000.
			items:  []item{{"a", "TH", "852349", "40.00 THB", 1}, {"b", "TH", "852349", "50.00 THB", 1}},
			value:  "43650.00",
			items2: []string{"19400.00", "24250.00"},
			duties: []string{"ID-DUTY - 0.00/43650.00"},
			taxes:  []string{"ID-VAT a 2134.00/19400.00", "ID-VAT b 2667.50/24250.00"},
			notes:  []string{},
			landed: "48451.50",
		},
		{
			name:   "ID: above de minimis each item pays its own HS rate on its own value",
			policy: "ID",
			// A bag (25%) at the minimum unit price and a book (0%).
			items:  []item{{"bag", "MY", "420221", "438.36 MYR", 1}, {"book", "MY", "490199", "10.00 MYR", 2}},
			value:  "1673014.00",
			items2: []string{"1600014.00", "73000.00"},
			duties: []string{"ID-DUTY-BAGS bag 400003.50/1600014.00", "ID-DUTY-BOOKS book 0.00/73000.00"},
			// VAT: 2,000,017.50 × 0.11 = 220,001.925 → 220,001.93; 73,000 × 0.11.
			taxes:  []string{"ID-VAT bag 220001.93/2000017.50", "ID-VAT book 8030.00/73000.00"},
			notes:  []string{},
			landed: "2301049.43",
		},
		{
			name:   "ID, currencies: USD items exactly at de minimis together pay no duty",
			policy: "ID",
			// USD 1.50 × 16,000 = IDR 24,000; twice: 48,000, at de minimis.
			items:  []item{{"a", "TH", "852349", "1.50 USD", 1}, {"b", "TH", "852349", "1.50 USD", 1}},
			value:  "48000.00",
			items2: []string{"24000.00", "24000.00"},
			duties: []string{"ID-DUTY - 0.00/48000.00"},
			taxes:  []string{"ID-VAT a 2640.00/24000.00", "ID-VAT b 2640.00/24000.00"},
			notes:  []string{},
			landed: "53280.00",
		},
		{
			name:   "ID, currencies: IDR 2.65 over de minimis, in USD and THB, pays duty",
			policy: "ID",
			// USD 1.50 = IDR 24,000; THB 49.49 × 485 = IDR 24,002.65.
			items:  []item{{"usd", "TH", "852349", "1.50 USD", 1}, {"thb", "TH", "852349", "49.49 THB", 1}},
			value:  "48002.65",
			items2: []string{"24000.00", "24002.65"},
			// 24,002.65 × 0.075 = 1,800.19875 → 1,800.20.
			duties: []string{"ID-DUTY usd 1800.00/24000.00", "ID-DUTY thb 1800.20/24002.65"},
			// 25,802.85 × 0.11 = 2,838.3135 → 2,838.31.
			taxes:  []string{"ID-VAT usd 2838.00/25800.00", "ID-VAT thb 2838.31/25802.85"},
			notes:  []string{},
			landed: "57279.16",
		},
		{
			name:   "MY: two items each under RM 500, together over it: no low-value sales tax, duty not exempt",
			policy: "MY",
			// THB 3,000 × 0.1316 = RM 394.80 each; 789.60 together.
			items:   []item{{"a", "TH", "100630", "3000.00 THB", 1}, {"b", "TH", "090111", "3000.00 THB", 1}},
			value:   "789.60",
			items2:  []string{"394.80", "394.80"},
			duties:  []string{},
			taxes:   []string{},
			notes:   []string{"MY-DUTY-DEMINIMIS"},
			landed:  "789.60",
			compare: "alone, each is low-value goods: duty exempt, 10% sales tax",
		},
		{
			name:   "MY: a consignment of exactly RM 500 is low-value goods",
			policy: "MY",
			// THB 1,899.70 × 0.1316 = 250.00052 → RM 250.00 each.
			items:  []item{{"a", "TH", "100630", "1899.70 THB", 1}, {"b", "TH", "100630", "1899.70 THB", 1}},
			value:  "500.00",
			items2: []string{"250.00", "250.00"},
			duties: []string{"MY-DUTY-DEMINIMIS - 0.00/500.00"},
			taxes:  []string{"MY-SST-LVG a 25.00/250.00", "MY-SST-LVG b 25.00/250.00"},
			notes:  []string{},
			landed: "550.00",
		},
		{
			name:   "MY: one sen over RM 500 (rounded item totals) is not",
			policy: "MY",
			// THB 1,899.80 × 0.1316 = 250.01368 → RM 250.01.
			items:  []item{{"a", "TH", "100630", "1899.70 THB", 1}, {"b", "TH", "100630", "1899.80 THB", 1}},
			value:  "500.01",
			items2: []string{"250.00", "250.01"},
			duties: []string{},
			taxes:  []string{},
			notes:  []string{"MY-DUTY-DEMINIMIS"},
			landed: "500.01",
		},
		{
			name:   "MY, rounding: each item's tax is rounded, the landed total is the sum of the lines",
			policy: "MY",
			// THB 99.99 × 0.1316 = 13.158684 → RM 13.16; tax 1.316 → 1.32
			// per item: 2.64 together, where 10% of 26.32 would be 2.63.
			items:  []item{{"a", "TH", "100630", "99.99 THB", 1}, {"b", "TH", "090111", "99.99 THB", 1}},
			value:  "26.32",
			items2: []string{"13.16", "13.16"},
			duties: []string{"MY-DUTY-DEMINIMIS - 0.00/26.32"},
			taxes:  []string{"MY-SST-LVG a 1.32/13.16", "MY-SST-LVG b 1.32/13.16"},
			notes:  []string{},
			landed: "28.96",
		},
		{
			name:   "MY, rounding: an item total is rounded once from the exact unit price",
			policy: "MY",
			// 13.158684 × 7 = 92.110788 → 92.11 (not 7 × 13.16 = 92.12).
			items:  []item{{"a", "TH", "100630", "99.99 THB", 7}, {"b", "TH", "100630", "99.99 THB", 1}},
			value:  "105.27",
			items2: []string{"92.11", "13.16"},
			duties: []string{"MY-DUTY-DEMINIMIS - 0.00/105.27"},
			taxes:  []string{"MY-SST-LVG a 9.21/92.11", "MY-SST-LVG b 1.32/13.16"},
			notes:  []string{},
			landed: "115.80",
		},
		{
			name:   "MY: cigarettes count towards the consignment but pay no LVG tax; the note once",
			policy: "MY",
			// IDR 50,000 × 0.000277 = RM 13.85 each.
			items:  []item{{"cig", "ID", "240220", "50000.00 IDR", 1}, {"cig2", "ID", "240311", "50000.00 IDR", 1}, {"tea", "ID", "090230", "50000.00 IDR", 1}},
			value:  "41.55",
			items2: []string{"13.85", "13.85", "13.85"},
			duties: []string{"MY-DUTY-DEMINIMIS - 0.00/41.55"},
			taxes:  []string{"MY-SST-LVG tea 1.39/13.85"},
			notes:  []string{"MY-SST-LVG"},
			landed: "42.94",
		},
		{
			name:   "TH, currencies: MYR and USD items under THB 1,500 each, over it together",
			policy: "TH",
			// RM 100 × 7.60 = THB 760; USD 25 × 33 = THB 825; 1,585 > 1,500.
			items:  []item{{"myr", "MY", "090111", "100.00 MYR", 1}, {"usd", "MY", "090111", "25.00 USD", 1}},
			value:  "1585.00",
			items2: []string{"760.00", "825.00"},
			duties: []string{},
			// VAT 7% on value (+ no computed duty): 53.20, 57.75.
			taxes:  []string{"TH-VAT-LVG myr 53.20/760.00", "TH-VAT-LVG usd 57.75/825.00"},
			notes:  []string{"TH-DUTY-DEMINIMIS"},
			landed: "1695.95",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := defaultPolicy(t, c.policy)
			items := quoteItems(t, c.items)
			q, err := policy.MakeOrderQuote(p, items, "", inForce)
			require.NoError(t, err)
			require.True(t, q.Orderable, "%v", q.Reasons)
			require.Equal(t, money.Amount{Currency: p.Currency}, q.UnitPrice, "several items have no one unit price")
			require.Equal(t, c.value, q.ItemTotal.Decimal())
			require.Equal(t, p.Currency, q.ItemTotal.Currency)
			got := []string{}
			for i, iq := range q.Items {
				require.Equal(t, c.items[i].id, iq.ListingID)
				require.Equal(t, c.items[i].qty, iq.Quantity)
				require.Equal(t, p.Currency, iq.ItemTotal.Currency)
				got = append(got, iq.ItemTotal.Decimal())
			}
			require.Equal(t, c.items2, got)
			require.Equal(t, c.duties, lineText(q.Duties), "duties")
			require.Equal(t, c.taxes, lineText(q.Taxes), "taxes")
			require.Equal(t, c.notes, ruleIDs(q.Notes, func(r policy.Reason) string { return r.Rule }), "notes")
			require.Equal(t, c.landed, q.LandedTotal.Decimal())
			// The landed total is the value plus every line, exactly.
			sum := q.ItemTotal.Minor
			for _, l := range append(append([]policy.Line{}, q.Duties...), q.Taxes...) {
				sum += l.Amount.Minor
			}
			require.Equal(t, sum, q.LandedTotal.Minor)
			if c.compare != "" {
				// Quoted one by one (what the order service did before),
				// the same items come out differently.
				alone := int64(0)
				for _, it := range items {
					s, err := policy.MakeQuote(p, it.Listing, it.Quantity, "", inForce)
					require.NoError(t, err)
					alone += s.LandedTotal.Minor
				}
				require.NotEqual(t, alone, q.LandedTotal.Minor, c.compare)
			}
		})
	}
}

func TestMakeOrderQuoteRefuses(t *testing.T) {
	p := defaultPolicy(t, "ID")
	th := item{"a", "TH", "852349", "60.00 THB", 1}
	cases := []struct {
		name  string
		items []item
		want  error
		msg   string
	}{
		{"no items", nil, policy.ErrNoItems, "a quote needs at least one item"},
		{"mixed origins", []item{th, {"b", "MY", "852349", "10.00 MYR", 1}}, policy.ErrMixedOrigins,
			"the items of one quote must come from one country: item 1 (listing b) is from MY, item 0 from TH"},
		{"zero quantity", []item{th, {"b", "TH", "852349", "60.00 THB", 0}}, policy.ErrQuantity,
			"item 1 (listing b): quantity must be 1 or more"},
		{"one item, zero quantity", []item{{"b", "TH", "852349", "60.00 THB", 0}}, policy.ErrQuantity, "quantity must be 1 or more"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := policy.MakeOrderQuote(p, quoteItems(t, c.items), "", inForce)
			require.ErrorIs(t, err, c.want)
			require.EqualError(t, err, c.msg)
		})
	}
	_, err := policy.MakeOrderQuote(p, quoteItems(t, []item{th}), "MY-01", inForce)
	require.Error(t, err, "a region of another country")
}
