package policy

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/money"
)

// ErrNoConsent means the buyer country's policy sends the buyer's data
// abroad on the basis of consent, and the order carries none.
var ErrNoConsent = errors.New("the buyer's recorded consent to the cross-border transfer is required")

// OrderHandoff is an order as the buyer's node holds it, before the
// policy projects it for the seller's node.
type OrderHandoff struct {
	OrderID      string
	BuyerCountry string
	SellerID     string
	Items        []OrderItem
	Quote        OrderQuote
	Buyer        OrderBuyer
	Consent      bool
	ConsentAt    time.Time
	CreatedAt    time.Time
}

// OrderItem is an order line.
type OrderItem struct {
	ListingID string
	Title     string
	HSCode    string
	Quantity  int64
	UnitPrice money.Amount
}

// OrderQuote is an order's landed cost.
type OrderQuote struct {
	ItemTotal, DutiesTotal, TaxesTotal, LandedTotal money.Amount
	RatesDate                                       string
	PolicyVersion                                   uint64
}

// OrderBuyer is the buyer's personal data.
type OrderBuyer struct {
	Name, Email, Phone, AccountID                 string
	Line1, City, Region, Postcode, AddressCountry string
}

// OrderStatus is one state change of an order.
type OrderStatus struct {
	OrderID   string
	Seq       uint64
	Status    string
	Reason    string
	Tracking  string
	UpdatedAt time.Time
}

func pbMoney(a money.Amount) *pb.Money { return &pb.Money{Minor: a.Minor, Currency: a.Currency} }

// projectHandoff keeps the buyer and order fields the rules allow. The
// order ID and seller ID always travel (they name the record); a buyer
// field no rule allows is left empty.
func (p *Policy) projectHandoff(o *OrderHandoff, destination string) (*pb.OrderHandoff, *Transfer, error) {
	buyer, err := p.allowed(KindBuyer, destination, PurposeOrderHandoff)
	if err != nil {
		return nil, nil, err
	}
	order, err := p.allowed(KindOrder, destination, PurposeOrderHandoff)
	if err != nil {
		return nil, nil, err
	}
	if buyer.basis == BasisConsent && !o.Consent {
		return nil, nil, fmt.Errorf("%w (rule %s of the %s policy)", ErrNoConsent, buyer.rules[0].ID, p.Country)
	}
	bf, of := buyer.fields, order.fields
	out := &pb.OrderHandoff{OrderId: o.OrderID, BuyerCountry: o.BuyerCountry, SellerId: o.SellerID, LegalBasis: buyer.basis}
	if of["items"] {
		for _, it := range o.Items {
			out.Items = append(out.Items, &pb.OrderItem{ListingId: it.ListingID, Quantity: it.Quantity, UnitPrice: pbMoney(it.UnitPrice), Title: it.Title, HsCode: it.HSCode})
		}
	}
	if of["quote"] {
		out.Quote = &pb.OrderQuote{ItemTotal: pbMoney(o.Quote.ItemTotal), DutiesTotal: pbMoney(o.Quote.DutiesTotal), TaxesTotal: pbMoney(o.Quote.TaxesTotal),
			LandedTotal: pbMoney(o.Quote.LandedTotal), RatesDate: o.Quote.RatesDate, PolicyVersion: o.Quote.PolicyVersion}
	}
	if of["consent"] {
		out.Consent = &pb.Consent{CrossBorderTransfer: o.Consent}
		if !o.ConsentAt.IsZero() {
			out.Consent.RecordedUnixMs = o.ConsentAt.UnixMilli()
		}
	}
	if of["created_at"] {
		out.CreatedUnixMs = o.CreatedAt.UnixMilli()
	}
	r := &pb.Recipient{}
	set := func(field string, dst *string, v string) {
		if bf[field] {
			*dst = v
		}
	}
	set("name", &r.Name, o.Buyer.Name)
	set("phone", &r.Phone, o.Buyer.Phone)
	set("address.line1", &r.Line1, o.Buyer.Line1)
	set("address.city", &r.City, o.Buyer.City)
	set("address.region", &r.Region, o.Buyer.Region)
	set("address.postcode", &r.Postcode, o.Buyer.Postcode)
	set("address.country", &r.Country, o.Buyer.AddressCountry)
	// email and account_id have no place on the wire at all: even a rule
	// naming them could not send them.
	out.Recipient = r
	t := &Transfer{Record: KindBuyer + "+" + KindOrder, Destination: destination, Purpose: PurposeOrderHandoff, LegalBasis: buyer.basis, Version: p.Version}
	for _, f := range slices.Sorted(maps.Keys(bf)) {
		t.Fields = append(t.Fields, "buyer."+f)
	}
	for _, f := range slices.Sorted(maps.Keys(of)) {
		t.Fields = append(t.Fields, "order."+f)
	}
	for _, r := range append(append([]*TransferRule{}, buyer.rules...), order.rules...) {
		t.Rules = append(t.Rules, r.ID)
		out.Rules = append(out.Rules, r.ID)
	}
	return out, t, nil
}

func (p *Policy) projectStatus(s *OrderStatus, destination string) (*pb.OrderStatus, *Transfer, error) {
	ct, err := p.allowed(KindOrder, destination, PurposeOrderStatus)
	if err != nil {
		return nil, nil, err
	}
	f := ct.fields
	out := &pb.OrderStatus{OrderId: s.OrderID, Seq: s.Seq}
	if f["status"] {
		out.Status = s.Status
	}
	if f["reason"] {
		out.Reason = s.Reason
	}
	if f["tracking"] {
		out.Tracking = s.Tracking
	}
	if f["updated_at"] {
		out.UpdatedUnixMs = s.UpdatedAt.UnixMilli()
	}
	return out, p.transfer(ct, KindOrder, destination, PurposeOrderStatus), nil
}
