package aftersale

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/imtgt/imtgt-node/money"
)

// Category is what went wrong, as the buyer says.
type Category string

// Categories.
const (
	NotReceived       Category = "not_received"
	Damaged           Category = "damaged"
	WrongItem         Category = "wrong_item"
	MissingParts      Category = "missing_parts"
	RefundNotReceived Category = "refund_not_received"
	Other             Category = "other"
)

// Categories lists every category, in the order documentation shows them.
var Categories = []Category{NotReceived, Damaged, WrongItem, MissingParts, RefundNotReceived, Other}

// RemedyKind is what would put the buyer right.
type RemedyKind string

// Remedies.
const (
	RemedyRefund          RemedyKind = "refund"
	RemedyReplacement     RemedyKind = "replacement"
	RemedyReturnAndRefund RemedyKind = "return_and_refund"
)

// RemedyKinds lists every remedy.
var RemedyKinds = []RemedyKind{RemedyRefund, RemedyReplacement, RemedyReturnAndRefund}

// refunds reports whether the remedy pays money back (and so has an amount).
func (k RemedyKind) refunds() bool { return k == RemedyRefund || k == RemedyReturnAndRefund }

// Status is where an issue is.
type Status string

// Issue states.
const (
	StatusOpen            Status = "open"
	StatusAccepted        Status = "accepted"
	StatusProposed        Status = "proposed"
	StatusRejected        Status = "rejected"
	StatusDeclined        Status = "declined"
	StatusEscalated       Status = "escalated"
	StatusReturnRequested Status = "return_requested"
	StatusReturnShipped   Status = "return_shipped"
	StatusReturnReceived  Status = "return_received"
	StatusRefunded        Status = "refunded"
	StatusDecided         Status = "decided"
	StatusResolved        Status = "resolved"
	StatusClosed          Status = "closed"
)

// Statuses lists every state (for filters and documentation).
var Statuses = []Status{StatusOpen, StatusAccepted, StatusProposed, StatusRejected, StatusDeclined, StatusEscalated, StatusReturnRequested,
	StatusReturnShipped, StatusReturnReceived, StatusRefunded, StatusDecided, StatusResolved, StatusClosed}

// ValidStatus reports whether s is a known state.
func ValidStatus(s Status) bool {
	for _, v := range Statuses {
		if v == s {
			return true
		}
	}
	return false
}

// Actor is who acts on an issue: the buyer's marketplace, the seller, the
// operator of the buyer country's node (for its consumer body), or the node
// itself (deadlines, follow-on steps).
type Actor string

// Actors.
const (
	ByMarketplace Actor = "marketplace"
	BySeller      Actor = "seller"
	ByOperator    Actor = "operator"
	BySystem      Actor = "system"
)

// Order states an issue may be opened on; the values of orders.Status,
// repeated here so that orders may one day hold refunds without an import
// cycle.
const (
	OrderReceived  = "received"
	OrderAccepted  = "accepted"
	OrderPacked    = "packed"
	OrderShipped   = "shipped"
	OrderDelivered = "delivered"
)

// ItemQty is a quantity of one listing of the order.
type ItemQty struct {
	ListingID string `json:"listing_id"`
	Quantity  int64  `json:"quantity"`
}

// Attachment references a photo or document by content: the bytes stay
// with the marketplace and never cross the federation.
type Attachment struct {
	SHA256      string `json:"sha256"` // lower-case hex
	Size        int64  `json:"size"`
	ContentType string `json:"content_type"`
}

// Remedy is a remedy with, for a refund, its amount in the paid currency.
type Remedy struct {
	Kind   RemedyKind  `json:"kind"`
	Amount *money.Wire `json:"amount,omitempty"`
}

// Refund is one refund the marketplace reports having paid, with the
// payment reference both sides reconcile with.
type Refund struct {
	Amount           string    `json:"amount"` // decimal, as money.Wire
	Currency         string    `json:"currency"`
	Reason           string    `json:"reason"`
	IssueID          string    `json:"issue_id"`
	At               time.Time `json:"at"`
	PaymentReference string    `json:"payment_reference"`
}

// Money is the refund's amount.
func (r Refund) Money() (money.Amount, error) {
	return money.FromWire(money.Wire{Amount: r.Amount, Currency: r.Currency})
}

// Outcome is what the escalation body decided.
type Outcome string

// Outcomes.
const (
	Upheld          Outcome = "upheld"           // the buyer is right
	PartiallyUpheld Outcome = "partially_upheld" // in part
	Dismissed       Outcome = "dismissed"        // the seller is right; no refund
)

// Outcomes lists every outcome.
var Outcomes = []Outcome{Upheld, PartiallyUpheld, Dismissed}

// Decision is the operator's record of the escalation body's outcome; it
// binds the seller side.
type Decision struct {
	Outcome Outcome     `json:"outcome"`
	Refund  *money.Wire `json:"refund,omitempty"`
	Reason  string      `json:"reason"`
	By      Actor       `json:"by"`
	At      time.Time   `json:"at"`
}

// Event is one entry of an issue's history.
type Event struct {
	Status Status    `json:"status"`
	At     time.Time `json:"at"`
	By     Actor     `json:"by"`
	Reason string    `json:"reason,omitempty"`
}

// Response is one response as it was applied: what was sent, by whom, when.
type Response struct {
	ResponseInput
	By Actor     `json:"by"`
	At time.Time `json:"at"`
}

// Issue is one after-sale issue, the same on both nodes.
type Issue struct {
	ID              string       `json:"id"`
	OrderID         string       `json:"order_id"`
	MarketplaceID   string       `json:"marketplace_id"`
	BuyerCountry    string       `json:"buyer_country"`
	SellerCountry   string       `json:"seller_country"`
	SellerID        string       `json:"seller_id"`
	Category        Category     `json:"category"`
	Description     string       `json:"description"`
	Items           []ItemQty    `json:"items"`
	RemedyRequested RemedyKind   `json:"remedy_requested"`
	Attachments     []Attachment `json:"attachments,omitempty"`
	Status          Status       `json:"status"`
	RespondBy       time.Time    `json:"respond_by"`
	ResolveBy       time.Time    `json:"resolve_by"`
	// Remedy is the remedy agreed (an accepted response or a decision's
	// refund): what a refund is measured against. Nil until agreed.
	Remedy    *Remedy    `json:"remedy,omitempty"`
	Responses []Response `json:"responses"`
	Refunds   []Refund   `json:"refunds"`
	Decision  *Decision  `json:"decision,omitempty"`
	History   []Event    `json:"history"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// OrderView is what the rules need of the order an issue is about; the
// caller builds it from its order.
type OrderView struct {
	ID            string
	MarketplaceID string
	BuyerCountry  string
	SellerCountry string
	SellerID      string
	Status        string    // an orders.Status value
	Items         []ItemQty // what was ordered
	Paid          money.Amount
	// ExpectedDelivery is when the order should have arrived; zero if
	// unknown (then not_received needs a shipped order like the others).
	ExpectedDelivery time.Time
	// Refunds are the refunds recorded on the order, for all its issues
	// (those of the issue at hand are taken from the issue instead).
	Refunds []Refund
}

// Deadlines are the buyer country's consumer rules for answering and
// settling an issue (its policy's consumer section).
type Deadlines struct {
	RespondWithin int `json:"respond_within"` // hours
	ResolveWithin int `json:"resolve_within"` // days
}

// Check reports deadlines that cannot be applied.
func (d Deadlines) Check() error {
	if d.RespondWithin <= 0 || d.ResolveWithin <= 0 {
		return fmt.Errorf("%w: respond_within %d hours, resolve_within %d days: both must be positive",
			ErrBadDeadlines, d.RespondWithin, d.ResolveWithin)
	}
	if time.Duration(d.RespondWithin)*time.Hour > time.Duration(d.ResolveWithin)*24*time.Hour {
		return fmt.Errorf("%w: respond_within (%d hours) is longer than resolve_within (%d days)",
			ErrBadDeadlines, d.RespondWithin, d.ResolveWithin)
	}
	return nil
}

// Errors.
var (
	ErrIllegalTransition = errors.New("illegal transition")
	ErrForbidden         = errors.New("not this actor's move")
	ErrNotEligible       = errors.New("order not eligible for an issue")
	ErrTooEarly          = errors.New("deadline not passed")
	ErrRefundCap         = errors.New("refunds would exceed what was paid")
	ErrBadDeadlines      = errors.New("bad deadlines")
	ErrBadIssue          = errors.New("malformed issue")
)

// TransitionError is an illegal transition, with the current state and
// either the state asked for or the action that leads nowhere from it.
type TransitionError struct {
	From, To Status
	Action   Action
}

func (e *TransitionError) Error() string {
	if e.To == "" {
		return fmt.Sprintf("illegal transition: %s does not apply to an issue that is %s", e.Action, e.From)
	}
	return fmt.Sprintf("illegal transition from %s to %s", e.From, e.To)
}

// Unwrap makes errors.Is(err, ErrIllegalTransition) work.
func (e *TransitionError) Unwrap() error { return ErrIllegalTransition }

// idPrefix starts every issue ID.
const idPrefix = "iss_"

// NewID is a fresh issue ID made at now: "iss_" + ULID, so IDs sort by
// creation time like listings and orders.
func NewID(now time.Time) string {
	return idPrefix + ulid.MustNew(ulid.Timestamp(now), ulid.DefaultEntropy()).String()
}

// ValidID reports whether s is an issue ID ("iss_" + a ULID in upper case).
func ValidID(s string) bool {
	rest, ok := strings.CutPrefix(s, idPrefix)
	if !ok || len(rest) != ulid.EncodedSize || strings.ToUpper(rest) != rest {
		return false
	}
	_, err := ulid.ParseStrict(rest)
	return err == nil
}
