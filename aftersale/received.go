package aftersale

import (
	"fmt"
	"slices"

	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/validation"
)

// Limits on an issue received from the other side's node, beyond those of
// its parts: an issue that grew past them was not made by these rules.
const (
	MaxResponses = 100
	MaxHistory   = 300
)

// DecodeIssue reads an issue as the other side's node sent it (outside
// input: strict, see DecodeOpenInput) and checks it against the order it
// is about (CheckIssue).
func DecodeIssue(b []byte, order OrderView) (*Issue, error) {
	var is Issue
	if err := decodeStrict(b, &is); err != nil {
		return nil, err
	}
	if err := CheckIssue(order, &is); err != nil {
		return nil, err
	}
	return &is, nil
}

// CheckIssue checks an issue another node made against the order this node
// holds: the rules Open and the steps apply, as far as the issue shows
// them. Fields the sender's policy kept back arrive empty and pass; the
// ones that name the issue and where it is must be there.
func CheckIssue(order OrderView, is *Issue) error {
	switch {
	case !ValidID(is.ID):
		return fmt.Errorf("%w: id %q is not an issue ID", ErrBadIssue, is.ID)
	case is.OrderID != order.ID:
		return fmt.Errorf("%w: issue %s is about order %q, not %s", ErrBadIssue, is.ID, is.OrderID, order.ID)
	case !ValidStatus(is.Status):
		return fmt.Errorf("%w: issue %s: status %q", ErrBadIssue, is.ID, is.Status)
	case is.Category != "" && !slices.Contains(Categories, is.Category):
		return fmt.Errorf("%w: issue %s: category %q", ErrBadIssue, is.ID, is.Category)
	case is.RemedyRequested != "" && !slices.Contains(RemedyKinds, is.RemedyRequested):
		return fmt.Errorf("%w: issue %s: remedy_requested %q", ErrBadIssue, is.ID, is.RemedyRequested)
	case len(is.Responses) > MaxResponses || len(is.History) > MaxHistory:
		return fmt.Errorf("%w: issue %s has %d responses and %d history events (at most %d and %d)",
			ErrBadIssue, is.ID, len(is.Responses), len(is.History), MaxResponses, MaxHistory)
	case is.ResolveBy.Before(is.RespondBy):
		return fmt.Errorf("%w: issue %s: resolve_by is before respond_by", ErrBadIssue, is.ID)
	}
	if err := checkText("description", is.Description, validation.Multiline, MaxDescription); err != nil {
		return fmt.Errorf("%w: issue %s: %w", ErrBadIssue, is.ID, err)
	}
	if len(is.Items) > 0 {
		if err := checkItems(order, is.Items); err != nil {
			return fmt.Errorf("%w: issue %s: %w", ErrBadIssue, is.ID, err)
		}
	}
	if err := checkAttachments(is.Attachments); err != nil {
		return fmt.Errorf("%w: issue %s: %w", ErrBadIssue, is.ID, err)
	}
	if is.Remedy != nil {
		if err := checkRemedyShape(is.Remedy); err != nil {
			return fmt.Errorf("%w: issue %s: remedy: %w", ErrBadIssue, is.ID, err)
		}
	}
	for _, r := range is.Responses {
		if err := CheckResponse(r.ResponseInput); err != nil {
			return fmt.Errorf("%w: issue %s: a response: %w", ErrBadIssue, is.ID, err)
		}
	}
	for _, e := range is.History {
		if !ValidStatus(e.Status) {
			return fmt.Errorf("%w: issue %s: history status %q", ErrBadIssue, is.ID, e.Status)
		}
	}
	// The refunds, with the order's others, stay within what was paid.
	var sum int64
	for _, r := range is.Refunds {
		a, err := r.Money()
		if err != nil {
			return fmt.Errorf("%w: issue %s: a refund: %w", ErrBadIssue, is.ID, err)
		}
		if a.Currency != order.Paid.Currency || a.Minor <= 0 {
			return fmt.Errorf("%w: issue %s: a refund of %s on an order paid in %s", ErrBadIssue, is.ID, a, order.Paid.Currency)
		}
		sum += a.Minor
	}
	for _, r := range order.Refunds {
		if r.IssueID == is.ID {
			continue
		}
		if a, err := r.Money(); err == nil && a.Currency == order.Paid.Currency {
			sum += a.Minor
		}
	}
	if sum > order.Paid.Minor {
		return fmt.Errorf("%w: issue %s: refunds of %s for the order, which paid %s", ErrRefundCap, is.ID,
			money.Amount{Minor: sum, Currency: order.Paid.Currency}, order.Paid)
	}
	return nil
}

// Version counts the changes an issue has been through: its history
// events and its refunds (a partial refund changes no state). Both nodes
// count the same, so a node acting on version v tells the other which
// state it acted on.
func (is *Issue) Version() uint64 { return uint64(len(is.History) + len(is.Refunds)) }

// Erase removes what people wrote in an issue (the buyer's description,
// the reasons and tracking of responses, refunds, the decision and the
// history), for the end of the buyer data's retention. What an auditor or
// an accountant needs stays: the category, items, remedies, amounts,
// payment references, states and times.
func (is *Issue) Erase() {
	is.Description = ""
	for i := range is.Responses {
		is.Responses[i].Reason, is.Responses[i].Tracking = "", ""
	}
	for i := range is.Refunds {
		is.Refunds[i].Reason = ""
	}
	if is.Decision != nil {
		d := *is.Decision
		d.Reason = ""
		is.Decision = &d
	}
	for i := range is.History {
		is.History[i].Reason = ""
	}
}
