package aftersale

import (
	"fmt"
	"time"

	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/validation"
)

// RefundInput is a refund the marketplace reports having paid the buyer.
type RefundInput struct {
	Amount           string `json:"amount"`
	Currency         string `json:"currency"`
	Reason           string `json:"reason,omitempty"`
	PaymentReference string `json:"payment_reference"`
}

// refundable is what the order has left to refund: what was paid less the
// refunds of its other issues (from the order) and of this one (from the
// issue, which may be ahead of the order's copy).
func (is *Issue) refundable(order OrderView) (money.Amount, error) {
	left := order.Paid
	sub := func(r Refund) error {
		a, err := r.Money()
		if err != nil {
			return fmt.Errorf("aftersale: refund of issue %s: %w", r.IssueID, err)
		}
		if a.Currency != left.Currency {
			return fmt.Errorf("aftersale: refund of issue %s is in %s; the order was paid in %s", r.IssueID, a.Currency, left.Currency)
		}
		left.Minor -= a.Minor
		return nil
	}
	for _, r := range order.Refunds {
		if r.IssueID == is.ID {
			continue
		}
		if err := sub(r); err != nil {
			return money.Amount{}, err
		}
	}
	for _, r := range is.Refunds {
		if err := sub(r); err != nil {
			return money.Amount{}, err
		}
	}
	if left.Minor < 0 {
		left.Minor = 0
	}
	return left, nil
}

// AddRefund records a refund the marketplace paid for is: on an accepted
// refund, a received return, or a decision's refund. It never lets the
// refunds of one order, across its issues, add up to more than was paid
// (ErrRefundCap, as a validation error on amount). Once the issue's refunds
// reach the remedy agreed, the issue is refunded; until then it stays
// where it is, with the partial refund recorded.
func (is *Issue) AddRefund(order OrderView, by Actor, in RefundInput, now time.Time) error {
	if err := checkMove(is.Status, StatusRefunded, by); err != nil {
		return err
	}
	if is.Remedy == nil || !is.Remedy.Kind.refunds() || is.Remedy.Amount == nil {
		return &TransitionError{From: is.Status, To: StatusRefunded}
	}
	w := money.Wire{Amount: in.Amount, Currency: in.Currency}
	if len(is.Refunds) >= MaxRefunds {
		return validation.Field("amount", "too_many_refunds", "issue %s has %d refunds, the most one issue may have: report the rest as one", is.ID, len(is.Refunds))
	}
	if in.Amount == "" {
		return validation.Field("amount", "required", "amount is required")
	}
	if in.Currency == "" {
		return validation.Field("currency", "required", "currency is required: the order's, %s", order.Paid.Currency)
	}
	if err := is.checkAmount("amount", &w, order); err != nil {
		if ve, ok := validation.As(err); ok && ve.Field == "amount.currency" {
			ve.Field = "currency"
		}
		return err
	}
	if in.PaymentReference == "" {
		return validation.Field("payment_reference", "required", "payment_reference is required: the reference the refund was paid with")
	}
	if err := checkText("payment_reference", in.PaymentReference, validation.Line, MaxReference); err != nil {
		return err
	}
	if err := checkText("reason", in.Reason, validation.Multiline, MaxReason); err != nil {
		return err
	}
	a, _ := money.FromWire(w) // checked by checkAmount
	agreed, err := money.FromWire(*is.Remedy.Amount)
	if err != nil {
		return fmt.Errorf("aftersale: issue %s: the agreed remedy: %w", is.ID, err)
	}
	now = now.UTC()
	return is.apply(func(c *Issue) error {
		paid := a.Minor
		for _, r := range c.Refunds {
			m, err := r.Money()
			if err != nil {
				return fmt.Errorf("aftersale: issue %s: a refund: %w", c.ID, err)
			}
			paid += m.Minor
		}
		c.Refunds = append(c.Refunds, Refund{Amount: a.Decimal(), Currency: a.Currency, Reason: in.Reason,
			IssueID: c.ID, At: now, PaymentReference: in.PaymentReference})
		c.UpdatedAt = now
		if paid < agreed.Minor {
			return nil
		}
		return c.move(StatusRefunded, by, in.Reason, now)
	})
}

// Restock is what a return gives back to the seller's stock: the issue's
// items once the seller received them back, nothing otherwise. The
// caller applies it once, in the transaction that records return_received.
func Restock(is *Issue) []ItemQty {
	if is.Remedy == nil || is.Remedy.Kind != RemedyReturnAndRefund {
		return nil
	}
	for _, e := range is.History {
		if e.Status == StatusReturnReceived {
			return append([]ItemQty(nil), is.Items...)
		}
	}
	return nil
}
