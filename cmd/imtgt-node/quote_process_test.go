package main

// Process-level test of the consignment quote (issue 13): an order with
// several items gets one quote, and de minimis and tax thresholds are
// decided on the order's total, on the built binary, for Indonesian and
// Malaysian buyers of a Thai seller.

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/internal/testnet"
)

func TestProcessOrderQuoteIsOneConsignment(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three node processes")
	}
	nodes := onboardOrderNodes(t)
	th, my, id := nodes["TH"], nodes["MY"], nodes["ID"]

	status, reg := apiDo(t, "POST", th.url+"/v1/sellers", "", testnet.THSeller("Hat Yai Media & Rice Co., Ltd.", 4))
	require.Equal(t, http.StatusCreated, status, reg)
	sid, seller := reg["id"].(string), reg["token"].(string)
	status, res := apiDo(t, "POST", th.url+"/v1/sellers/"+sid+"/approve", th.token, nil)
	require.Equal(t, http.StatusOK, status, res)
	list := func(title, hs, price string) string {
		status, res := apiDo(t, "POST", th.url+"/v1/listings", seller, testnet.Listing(title, hs, price))
		require.Equal(t, http.StatusCreated, status, res)
		return res["id"].(string)
	}
	// For Indonesia: recorded and blank optical media (exempt from the
	// minimum unit price), THB 60 = IDR 29,100 each, under the USD 3 de
	// minimis (IDR 48,000) alone, over it together.
	dvd, blank := list("Nora dance DVD", "852349", "60.00"), list("Blank DVD-R", "852341", "60.00")
	// For Malaysia: THB 3,000 = RM 394.80 each, low-value goods alone,
	// over RM 500 together.
	rice, coffee := list("Jasmine rice 50 kg", "100630", "3000.00"), list("Robusta coffee 20 kg", "090111", "3000.00")
	for _, n := range []*fedNode{id, my} {
		testnet.Eventually(t, 20*time.Second, func() bool {
			for _, l := range []string{dvd, blank, rice, coffee} {
				if status, _ := n.get(t, "/v1/catalog/listings/"+l); status != http.StatusOK {
					return false
				}
			}
			return true
		}, "the listings did not reach "+n.cc)
	}

	// Quoted alone, each DVD is at or below the de minimis.
	status, alone := id.get(t, "/v1/catalog/listings/"+dvd+"/quote")
	require.Equal(t, http.StatusOK, status, alone)
	require.Equal(t, "0.00", alone["duties"].([]any)[0].(map[string]any)["amount"].(map[string]any)["amount"], "one DVD alone pays no duty")

	shop := func(n *fedNode, name string) string {
		status, res := apiDo(t, "POST", n.url+"/v1/marketplaces", n.token, map[string]string{"name": name})
		require.Equal(t, http.StatusCreated, status, res)
		return res["token"].(string)
	}
	money := func(m map[string]any, key string) string {
		w := m[key].(map[string]any)
		return w["amount"].(string) + " " + w["currency"].(string)
	}
	type line struct{ kind, rule, listing, amount string }
	lines := func(q map[string]any) []line {
		out := []line{}
		for _, x := range q["lines"].([]any) {
			l := x.(map[string]any)
			lid, _ := l["listing_id"].(string)
			out = append(out, line{l["kind"].(string), l["rule"].(string), lid, money(l, "amount")})
		}
		return out
	}
	cases := []struct {
		name          string
		buyer         *fedNode
		address       map[string]string
		items         []string
		item, duties  string
		taxes, landed string
		lines         []line
		consent       bool
		marketplace   string
	}{
		{
			name: "ID: two DVDs under de minimis each, over it together, pay 7.5% duty each", buyer: id, consent: true,
			marketplace: "Tokopedia-like ID",
			address:     map[string]string{"line1": "Jl. Gatot Subroto 12", "city": "Medan", "region": "ID-SU", "postcode": "20112", "country": "ID"},
			items:       []string{dvd, blank},
			item:        "58200.00 IDR", duties: "4365.00 IDR", taxes: "6882.16 IDR", landed: "69447.16 IDR",
			lines: []line{{"duty", "ID-DUTY", dvd, "2182.50 IDR"}, {"duty", "ID-DUTY", blank, "2182.50 IDR"},
				{"tax", "ID-VAT", dvd, "3441.08 IDR"}, {"tax", "ID-VAT", blank, "3441.08 IDR"}},
		},
		{
			name: "MY: two low-value items over RM 500 together pay no low-value sales tax", buyer: my,
			marketplace: "Shopee-like MY",
			address:     map[string]string{"line1": "12 Jalan Burma", "city": "George Town", "region": "MY-07", "postcode": "10050", "country": "MY"},
			items:       []string{rice, coffee},
			item:        "789.60 MYR", duties: "0.00 MYR", taxes: "0.00 MYR", landed: "789.60 MYR",
			lines: []line{},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			items := []map[string]any{}
			for _, l := range c.items {
				items = append(items, map[string]any{"listing_id": l, "quantity": 1})
			}
			body := map[string]any{
				"buyer":   map[string]any{"name": "Siti Rahma", "email": "siti@example.com", "phone": "+62 812 3456 7890", "address": c.address},
				"consent": map[string]bool{"cross_border_transfer": c.consent},
				"items":   items,
			}
			status, res, _ := ordPost(t, c.buyer, shop(c.buyer, c.marketplace), "quote-"+c.buyer.cc, body)
			require.Equal(t, http.StatusCreated, status, res)
			require.Len(t, res["orders"], 1, "one seller, one order")
			q := res["quote"].(map[string]any)
			got := []string{money(q, "item_total"), money(q, "duties_total"), money(q, "taxes_total"), money(q, "landed_total")}
			require.Equal(t, []string{c.item, c.duties, c.taxes, c.landed}, got, "item, duties, taxes, landed totals")
			require.Equal(t, c.lines, lines(q))

			// The handoff carries the totals: the seller's node shows them.
			orderID := res["id"].(string)
			var o map[string]any
			testnet.Eventually(t, 30*time.Second, func() bool {
				o = ordList(t, th, seller)[orderID]
				return o != nil
			}, "the order did not reach TH")
			sq := o["quote"].(map[string]any)
			require.Equal(t, got, []string{money(sq, "item_total"), money(sq, "duties_total"), money(sq, "taxes_total"), money(sq, "landed_total")})
		})
	}
}
