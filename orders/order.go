package orders

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/imtgt/imtgt-node/aftersale"
	"github.com/imtgt/imtgt-node/money"
)

// Status is where an order is.
type Status string

// Order states.
const (
	Created   Status = "created"
	Submitted Status = "submitted"
	Received  Status = "received"
	Accepted  Status = "accepted"
	Rejected  Status = "rejected"
	Packed    Status = "packed"
	Shipped   Status = "shipped"
	Delivered Status = "delivered"
	Cancelled Status = "cancelled"
)

// next lists the legal transitions.
var next = map[Status][]Status{
	Created:   {Submitted, Cancelled},
	Submitted: {Received, Rejected, Cancelled},
	Received:  {Accepted, Rejected, Cancelled},
	Accepted:  {Packed, Cancelled},
	Packed:    {Shipped, Cancelled},
	Shipped:   {Delivered},
}

// CanTransition reports whether an order may go from one state to another.
func CanTransition(from, to Status) bool { return slices.Contains(next[from], to) }

// Final reports whether no transition leaves s.
func Final(s Status) bool { return len(next[s]) == 0 }

// ValidStatus reports whether s is a known state.
func ValidStatus(s Status) bool {
	switch s {
	case Created, Submitted, Received, Accepted, Rejected, Packed, Shipped, Delivered, Cancelled:
		return true
	}
	return false
}

// SellerTransitions are the states a seller may move its order to.
var SellerTransitions = []Status{Accepted, Rejected, Packed, Shipped, Delivered, Cancelled}

// Side says which end of an order this node holds.
type Side string

// Sides.
const (
	SideBuyer  Side = "buyer"
	SideSeller Side = "seller"
)

// Address is a delivery address.
type Address struct {
	Line1    string `json:"line1"`
	City     string `json:"city"`
	Region   string `json:"region"`
	Postcode string `json:"postcode"`
	Country  string `json:"country"`
}

// Buyer is the buyer as the marketplace sends it: personal data.
type Buyer struct {
	Name    string  `json:"name"`
	Email   string  `json:"email"`
	Phone   string  `json:"phone"`
	Address Address `json:"address"`
}

// Item is one line of an order.
type Item struct {
	ListingID string       `json:"listing_id"`
	Title     string       `json:"title"`
	HSCode    string       `json:"hs_code"`
	Quantity  int64        `json:"quantity"`
	UnitPrice money.Amount `json:"unit_price"`
}

// QuoteLine is one duty or tax of an order's quote.
type QuoteLine struct {
	Kind   string       `json:"kind"` // duty or tax
	Rule   string       `json:"rule"`
	Name   string       `json:"name"`
	Rate   string       `json:"rate"`
	Amount money.Amount `json:"amount"`
	// ListingID names the item the line is for; empty for a line of the
	// whole consignment (the duty at or below de minimis).
	ListingID string `json:"listing_id,omitempty"`
}

// Quote is the landed cost attached to an order, in the buyer's currency:
// one quote for the order's consignment (policy.MakeOrderQuote).
type Quote struct {
	ItemTotal     money.Amount `json:"item_total"`
	DutiesTotal   money.Amount `json:"duties_total"`
	TaxesTotal    money.Amount `json:"taxes_total"`
	LandedTotal   money.Amount `json:"landed_total"`
	Lines         []QuoteLine  `json:"lines"`
	RatesDate     string       `json:"rates_date"`
	PolicyVersion uint64       `json:"policy_version"`
}

// Event is one entry of an order's history.
type Event struct {
	Status   Status    `json:"status"`
	At       time.Time `json:"at"`
	By       string    `json:"by"` // marketplace, seller, operator, peer, system
	Reason   string    `json:"reason,omitempty"`
	Tracking string    `json:"tracking,omitempty"`
}

// Personal is an order's personal data, sealed at rest: the whole buyer on
// the buyer's node, the recipient on the seller's node.
type Personal struct {
	Buyer Buyer `json:"buyer"`
}

// Order is one order, on either side.
type Order struct {
	ID            string    `json:"id"`
	Side          Side      `json:"side"`
	MarketplaceID string    `json:"marketplace_id,omitempty"` // buyer side
	BuyerCountry  string    `json:"buyer_country"`
	SellerCountry string    `json:"seller_country"`
	SellerID      string    `json:"seller_id"`
	Items         []Item    `json:"items"`
	Quote         Quote     `json:"quote"`
	Consent       bool      `json:"consent"`
	ConsentAt     time.Time `json:"consent_at,omitzero"`
	LegalBasis    string    `json:"legal_basis,omitempty"`
	TransferRules []string  `json:"transfer_rules,omitempty"`
	Status        Status    `json:"status"`
	Reason        string    `json:"reason,omitempty"`
	Tracking      string    `json:"tracking,omitempty"`
	History       []Event   `json:"history"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	// OutSeq is the last status seq this node sent the other side; InSeq
	// the last it applied from the other side.
	OutSeq uint64 `json:"out_seq"`
	InSeq  uint64 `json:"in_seq"`
	// Receipt is the seller node's signed receipt of the handoff (buyer
	// side, once delivered; seller side, the one it issued).
	Receipt []byte `json:"receipt,omitempty"`
	// Sealed holds Personal (AES-256-GCM, bound to the order ID).
	Sealed []byte `json:"sealed,omitempty"`
	// Delivered (buyer side) is the handoff exactly as the seller's node
	// acknowledged it, sealed like Personal: what the buyer's node
	// re-delivers if the seller's node is restored from a backup (see
	// Recoverable). Retention erases it with the personal data.
	Delivered []byte `json:"delivered,omitempty"`
	// ErasedAt is set when retention ended and the personal data was erased.
	ErasedAt *time.Time `json:"erased_at,omitempty"`

	// Issues are the after-sale issues opened on the order, the same on
	// both nodes (the buyer's node is their authority, see issues.go).
	Issues []*aftersale.Issue `json:"issues,omitempty"`
	// Refunds are the refunds of all its issues, as the marketplace
	// reported them: shown on both sides, never more than was paid.
	Refunds []aftersale.Refund `json:"refunds,omitempty"`
	// IssueKeys (buyer side) are the Idempotency-Keys issues were opened
	// with, so a retry gets the issue it made.
	IssueKeys map[string]IssueKey `json:"issue_keys,omitempty"`
	// Restocked (seller side) lists the issues whose returned goods were
	// put back into stock, so that happens once per issue.
	Restocked []string `json:"restocked,omitempty"`

	Personal *Personal `json:"-"`
}

// peer is the country of the node that holds the other side of o.
func (o *Order) peer() string {
	if o.Side == SideSeller {
		return o.BuyerCountry
	}
	return o.SellerCountry
}

// transition moves o to status, recording the event.
func (o *Order) transition(to Status, at time.Time, by, reason, tracking string) error {
	if !CanTransition(o.Status, to) {
		return &TransitionError{From: o.Status, To: to}
	}
	o.Status, o.UpdatedAt = to, at
	if reason != "" {
		o.Reason = reason
	}
	if tracking != "" {
		o.Tracking = tracking
	}
	o.History = append(o.History, Event{Status: to, At: at, By: by, Reason: reason, Tracking: tracking})
	return nil
}

// Errors.
var (
	ErrNotFound     = errors.New("order not found")
	ErrIllegal      = errors.New("illegal transition")
	ErrIdempotency  = errors.New("Idempotency-Key reused with a different request")
	ErrNotOrderable = errors.New("not orderable")
	ErrNoLegalBasis = errors.New("no legal basis to send the buyer's data")
	ErrConflict     = errors.New("same order ID with different content")
	ErrForbidden    = errors.New("not your order")
	ErrBadReceipt   = errors.New("bad receipt")
)

// TransitionError is an illegal transition, with the current state.
type TransitionError struct{ From, To Status }

func (e *TransitionError) Error() string {
	return fmt.Sprintf("illegal transition from %s to %s", e.From, e.To)
}

// Unwrap makes errors.Is(err, ErrIllegal) work.
func (e *TransitionError) Unwrap() error { return ErrIllegal }
