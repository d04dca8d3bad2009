package policy_test

import (
	"fmt"
	"time"

	"github.com/imtgt/imtgt-node/configs"
	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/policy"
)

// Thailand's default policy bans e-cigarette imports: a Malaysian listing
// of one is not orderable by Thai buyers, and the decision cites the rule.
func ExampleEvaluate() {
	raw, _ := configs.DefaultPolicy("TH")
	p, err := policy.Parse("policy-TH.yaml", raw)
	if err != nil {
		panic(err)
	}
	vape := policy.Listing{Origin: "MY", HSCode: "854340", UnitPrice: money.Amount{Minor: 5000, Currency: "MYR"}}
	d := policy.Evaluate(p, vape, time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC))
	fmt.Println("orderable:", d.Orderable)
	fmt.Println("rule:", d.Reasons[0].Rule)
	// Output:
	// orderable: false
	// rule: TH-IMP-ECIG
}

// Indonesia quotes an RM 600 listing in rupiah with 7.5% duty and 11% VAT.
func ExampleMakeQuote() {
	raw, _ := configs.DefaultPolicy("ID")
	p, _ := policy.Parse("policy-ID.yaml", raw)
	coffee := policy.Listing{Origin: "MY", HSCode: "090111", UnitPrice: money.Amount{Minor: 60000, Currency: "MYR"}}
	q, _ := policy.MakeQuote(p, coffee, 1, "ID-SU", time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC))
	fmt.Println("item total:", q.ItemTotal)
	for _, l := range append(q.Duties, q.Taxes...) {
		fmt.Printf("%s %s: %s\n", l.Rule, l.Rate, l.Amount)
	}
	fmt.Println("landed total:", q.LandedTotal)
	// Output:
	// item total: 2190000.00 IDR
	// ID-DUTY 0.075: 164250.00 IDR
	// ID-VAT 0.11: 258967.50 IDR
	// landed total: 2613217.50 IDR
}
