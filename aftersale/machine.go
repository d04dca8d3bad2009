package aftersale

import (
	"fmt"
	"slices"
	"time"

	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/validation"
)

// Move is one legal transition and the actors who may make it.
type Move struct {
	From, To Status
	By       []Actor
}

var (
	marketplace       = []Actor{ByMarketplace}
	seller            = []Actor{BySeller}
	system            = []Actor{BySystem}
	marketplaceSystem = []Actor{ByMarketplace, BySystem}
)

// Moves lists every legal transition. Some have a further condition the
// function making them checks (a remedy of the right kind, a deadline
// passed); none happens that is not listed here.
var Moves = []Move{
	{StatusOpen, StatusAccepted, seller},
	{StatusOpen, StatusProposed, seller},
	{StatusOpen, StatusRejected, seller},
	{StatusOpen, StatusEscalated, marketplaceSystem}, // respond_by or resolve_by passed
	{StatusProposed, StatusAccepted, marketplace},
	{StatusProposed, StatusDeclined, marketplace},
	{StatusProposed, StatusEscalated, system}, // resolve_by passed; the marketplace declines instead
	{StatusDeclined, StatusEscalated, marketplaceSystem},
	{StatusRejected, StatusClosed, marketplace},
	{StatusRejected, StatusEscalated, marketplaceSystem},
	{StatusAccepted, StatusReturnRequested, system}, // follows accepting return_and_refund
	{StatusAccepted, StatusRefunded, marketplace},   // remedy refund
	{StatusAccepted, StatusResolved, seller},        // remedy replacement, shipped
	{StatusAccepted, StatusEscalated, marketplaceSystem},
	{StatusReturnRequested, StatusReturnShipped, marketplace},
	{StatusReturnRequested, StatusEscalated, marketplaceSystem},
	{StatusReturnShipped, StatusReturnReceived, seller},
	{StatusReturnShipped, StatusEscalated, marketplaceSystem},
	{StatusReturnReceived, StatusRefunded, marketplace},
	{StatusReturnReceived, StatusEscalated, marketplaceSystem},
	{StatusRefunded, StatusResolved, marketplaceSystem},
	{StatusEscalated, StatusDecided, []Actor{ByOperator}},
	{StatusDecided, StatusRefunded, marketplace}, // the decision's refund
	{StatusDecided, StatusResolved, system},      // follows a decision without a refund
}

// CanMove reports whether by may move an issue from one state to another
// (the table only: a function may add a condition).
func CanMove(from, to Status, by Actor) bool {
	m, ok := findMove(from, to)
	return ok && slices.Contains(m.By, by)
}

// Final reports whether no transition leaves s.
func Final(s Status) bool {
	for _, m := range Moves {
		if m.From == s {
			return false
		}
	}
	return true
}

func findMove(from, to Status) (Move, bool) {
	for _, m := range Moves {
		if m.From == from && m.To == to {
			return m, true
		}
	}
	return Move{}, false
}

// checkMove is the table's answer as an error: ErrIllegalTransition if
// nobody may make the move, ErrForbidden if someone else may.
func checkMove(from, to Status, by Actor) error {
	m, ok := findMove(from, to)
	if !ok {
		return &TransitionError{From: from, To: to}
	}
	if !slices.Contains(m.By, by) {
		return fmt.Errorf("%w: the %s may not move an issue from %s to %s (only the %v)", ErrForbidden, by, from, to, m.By)
	}
	return nil
}

// move records a checked transition.
func (is *Issue) move(to Status, by Actor, reason string, now time.Time) error {
	if err := checkMove(is.Status, to, by); err != nil {
		return err
	}
	is.Status, is.UpdatedAt = to, now
	is.History = append(is.History, Event{Status: to, At: now, By: by, Reason: reason})
	return nil
}

// apply runs f on a copy of is and keeps the result only if f succeeds,
// so a refused step leaves nothing half-written. f only appends to the
// issue's slices and replaces its pointers, so a shallow copy is enough.
func (is *Issue) apply(f func(c *Issue) error) error {
	c := *is
	if err := f(&c); err != nil {
		return err
	}
	*is = c
	return nil
}

// Action is what a response does.
type Action string

// Actions of POST /v1/issues/{id}/responses.
const (
	ActionAccept             Action = "accept"              // seller: the remedy requested; marketplace: a proposal or a rejection
	ActionPropose            Action = "propose"             // seller: another remedy
	ActionReject             Action = "reject"              // seller, with a reason
	ActionDecline            Action = "decline"             // marketplace: a proposal (escalates)
	ActionReturnShipped      Action = "return_shipped"      // marketplace: the buyer sent the goods back
	ActionReturnReceived     Action = "return_received"     // seller: the goods came back
	ActionReplacementShipped Action = "replacement_shipped" // seller: the replacement is on its way
	ActionResolve            Action = "resolve"             // marketplace: the buyer got the refund
)

// Actions lists every action.
var Actions = []Action{ActionAccept, ActionPropose, ActionReject, ActionDecline, ActionReturnShipped,
	ActionReturnReceived, ActionReplacementShipped, ActionResolve}

// ResponseInput is a response as an actor sends it: the body of
// POST /v1/issues/{id}/responses.
type ResponseInput struct {
	Action   Action  `json:"action"`
	Remedy   *Remedy `json:"remedy,omitempty"`
	Reason   string  `json:"reason,omitempty"`
	Tracking string  `json:"tracking,omitempty"`
}

// DecodeResponse reads a ResponseInput from outside JSON (see
// DecodeOpenInput) and checks its shape (CheckResponse).
func DecodeResponse(b []byte) (ResponseInput, error) {
	var in ResponseInput
	if err := decodeStrict(b, &in); err != nil {
		return in, err
	}
	return in, CheckResponse(in)
}

// CheckResponse checks the rules of a response that depend on nothing
// else: a known action, the fields that action takes, the text.
func CheckResponse(in ResponseInput) error {
	if in.Action == "" {
		return validation.Field("action", "required", "action is required: one of %v", Actions)
	}
	if !slices.Contains(Actions, in.Action) {
		return validation.Field("action", "invalid_action", "action %q is not one of %v", in.Action, Actions)
	}
	switch in.Action {
	case ActionPropose:
		if in.Remedy == nil {
			return validation.Field("remedy", "required", "remedy is required to propose")
		}
	case ActionAccept:
	default:
		if in.Remedy != nil {
			return validation.Field("remedy", "not_allowed", "remedy goes with accept or propose, not %s", in.Action)
		}
	}
	if in.Remedy != nil {
		if err := checkRemedyShape(in.Remedy); err != nil {
			return err
		}
	}
	if in.Action == ActionReject && in.Reason == "" {
		return validation.Field("reason", "required", "reason is required to reject")
	}
	if err := checkText("reason", in.Reason, validation.Multiline, MaxReason); err != nil {
		return err
	}
	if in.Tracking != "" && in.Action != ActionReturnShipped && in.Action != ActionReplacementShipped {
		return validation.Field("tracking", "not_allowed", "tracking goes with return_shipped or replacement_shipped, not %s", in.Action)
	}
	return checkText("tracking", in.Tracking, validation.Line, MaxTracking)
}

// checkRemedyShape: a known kind, an amount exactly when it refunds.
func checkRemedyShape(r *Remedy) error {
	if r.Kind == "" {
		return validation.Field("remedy.kind", "required", "remedy.kind is required: one of %v", RemedyKinds)
	}
	if !slices.Contains(RemedyKinds, r.Kind) {
		return validation.Field("remedy.kind", "invalid_remedy", "remedy.kind %q is not one of %v", r.Kind, RemedyKinds)
	}
	if !r.Kind.refunds() {
		if r.Amount != nil {
			return validation.Field("remedy.amount", "not_allowed", "remedy.amount goes with a refund, not %s", r.Kind)
		}
		return nil
	}
	if r.Amount == nil {
		return validation.Field("remedy.amount", "required", "remedy.amount is required for %s", r.Kind)
	}
	if _, err := money.FromWire(*r.Amount); err != nil {
		return validation.Wrap("remedy.amount", "invalid_amount", err)
	}
	return nil
}

// target is the state an action leads to from s, or "" if it leads nowhere.
func target(s Status, a Action) Status {
	switch {
	case a == ActionAccept && (s == StatusOpen || s == StatusProposed):
		return StatusAccepted
	case a == ActionAccept && s == StatusRejected:
		return StatusClosed
	case a == ActionPropose && s == StatusOpen:
		return StatusProposed
	case a == ActionReject && s == StatusOpen:
		return StatusRejected
	case a == ActionDecline && s == StatusProposed:
		return StatusDeclined
	case a == ActionReturnShipped && s == StatusReturnRequested:
		return StatusReturnShipped
	case a == ActionReturnReceived && s == StatusReturnShipped:
		return StatusReturnReceived
	case a == ActionReplacementShipped && s == StatusAccepted:
		return StatusResolved
	case a == ActionResolve && s == StatusRefunded:
		return StatusResolved
	}
	return ""
}

// Respond applies a response by by at now. The state decides what an
// action does: accept on an open issue is the seller taking the remedy
// requested, on a proposal the marketplace taking it, on a rejection the
// marketplace closing the issue. Accepting return_and_refund goes on to
// return_requested; declining a proposal escalates.
func (is *Issue) Respond(order OrderView, by Actor, in ResponseInput, now time.Time) error {
	if err := CheckResponse(in); err != nil {
		return err
	}
	to := target(is.Status, in.Action)
	if to == "" {
		return &TransitionError{From: is.Status, Action: in.Action}
	}
	if err := checkMove(is.Status, to, by); err != nil {
		return err
	}
	now = now.UTC()
	return is.apply(func(c *Issue) error {
		switch {
		case in.Action == ActionAccept && c.Status == StatusOpen:
			if in.Remedy == nil {
				return validation.Field("remedy", "required", "remedy is required to accept: the %s requested", c.RemedyRequested)
			}
			if in.Remedy.Kind != c.RemedyRequested {
				return validation.Field("remedy.kind", "not_requested",
					"remedy.kind %s is not the remedy requested (%s): propose it instead", in.Remedy.Kind, c.RemedyRequested)
			}
			if err := c.checkAmount("remedy.amount", in.Remedy.Amount, order); err != nil {
				return err
			}
			c.Remedy = in.Remedy
		case in.Action == ActionAccept && c.Status == StatusProposed:
			p := c.proposal()
			if in.Remedy != nil && !sameRemedy(in.Remedy, p) {
				return validation.Field("remedy", "not_proposed", "remedy differs from the proposal; accept it as proposed or decline it")
			}
			c.Remedy = p
		case in.Action == ActionAccept: // a rejection, closing the issue
			if in.Remedy != nil {
				return validation.Field("remedy", "not_allowed", "accepting a rejection takes no remedy")
			}
		case in.Action == ActionPropose:
			if err := c.checkAmount("remedy.amount", in.Remedy.Amount, order); err != nil {
				return err
			}
		case in.Action == ActionReplacementShipped:
			if c.Remedy == nil || c.Remedy.Kind != RemedyReplacement {
				return &TransitionError{From: c.Status, Action: in.Action}
			}
		}
		c.Responses = append(c.Responses, Response{ResponseInput: in, By: by, At: now})
		if err := c.move(to, by, in.Reason, now); err != nil {
			return err
		}
		switch {
		case to == StatusAccepted && c.Remedy.Kind == RemedyReturnAndRefund:
			return c.move(StatusReturnRequested, BySystem, "the refund follows the return", now)
		case to == StatusDeclined:
			return c.move(StatusEscalated, BySystem, "the buyer declined the proposal", now)
		}
		return nil
	})
}

// proposal is the remedy of the last proposal.
func (is *Issue) proposal() *Remedy {
	for i := len(is.Responses) - 1; i >= 0; i-- {
		if r := is.Responses[i]; r.Action == ActionPropose {
			return r.Remedy
		}
	}
	return nil
}

func sameRemedy(a, b *Remedy) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Kind != b.Kind || (a.Amount == nil) != (b.Amount == nil) {
		return false
	}
	if a.Amount == nil {
		return true
	}
	x, err1 := money.FromWire(*a.Amount)
	y, err2 := money.FromWire(*b.Amount)
	return err1 == nil && err2 == nil && x == y
}

// checkAmount checks a refund amount an actor commits to: in the paid
// currency, positive, and within what the order has left to refund.
// A nil amount (a replacement) passes.
func (is *Issue) checkAmount(field string, w *money.Wire, order OrderView) error {
	if w == nil {
		return nil
	}
	a, err := money.FromWire(*w)
	if err != nil {
		return validation.Wrap(field, "invalid_amount", err)
	}
	if a.Currency != order.Paid.Currency {
		return validation.Field(field+".currency", "wrong_currency", "%s.currency is %s; the order was paid in %s", field, a.Currency, order.Paid.Currency)
	}
	if a.Minor <= 0 {
		return validation.Field(field, "invalid_amount", "%s must be more than zero", field)
	}
	left, err := is.refundable(order)
	if err != nil {
		return err
	}
	if a.Minor > left.Minor {
		return &validation.Error{Field: field, Code: "exceeds_paid", Err: ErrRefundCap,
			Message: fmt.Sprintf("%s %s is more than the %s the order has left to refund (paid %s)", field, a, left, order.Paid)}
	}
	return nil
}

// Due reports whether the system should escalate is at now, and why: the
// seller did not respond by respond_by, the issue is not resolved by
// resolve_by, or the buyer declined the final response.
func Due(is *Issue, now time.Time) (escalate bool, why string) {
	switch {
	case is.Status == StatusDeclined:
		return true, "the buyer declined the final response"
	case is.Status == StatusOpen && now.After(is.RespondBy):
		return true, fmt.Sprintf("no response by respond_by (%s)", is.RespondBy.Format(time.RFC3339))
	case unresolved(is.Status) && now.After(is.ResolveBy):
		return true, fmt.Sprintf("not resolved by resolve_by (%s)", is.ResolveBy.Format(time.RFC3339))
	}
	return false, ""
}

// unresolved are the states in which the parties still owe each other a
// step, so resolve_by still runs. Once escalated the body's own timetable
// applies; once refunded the money is back.
func unresolved(s Status) bool {
	switch s {
	case StatusOpen, StatusProposed, StatusRejected, StatusDeclined, StatusAccepted,
		StatusReturnRequested, StatusReturnShipped, StatusReturnReceived:
		return true
	}
	return false
}

// Escalate hands is to the buyer country's escalation body. The system
// escalates only when Due says so; the marketplace may escalate a
// rejection or a declined proposal at once (a proposal it declines), an
// open issue once respond_by passed, and an accepted one once resolve_by
// passed. Too early is ErrTooEarly.
func (is *Issue) Escalate(by Actor, now time.Time) error {
	if err := checkMove(is.Status, StatusEscalated, by); err != nil {
		return err
	}
	now = now.UTC()
	why := "escalated by the marketplace"
	switch {
	case by == BySystem:
		due, reason := Due(is, now)
		if !due {
			return fmt.Errorf("%w: the issue is %s, respond_by %s, resolve_by %s", ErrTooEarly, is.Status,
				is.RespondBy.Format(time.RFC3339), is.ResolveBy.Format(time.RFC3339))
		}
		why = reason
	case is.Status == StatusOpen && !now.After(is.RespondBy):
		return fmt.Errorf("%w: the seller has until respond_by (%s) to respond", ErrTooEarly, is.RespondBy.Format(time.RFC3339))
	case is.Status != StatusOpen && is.Status != StatusRejected && is.Status != StatusDeclined && !now.After(is.ResolveBy):
		return fmt.Errorf("%w: the issue is %s and has until resolve_by (%s)", ErrTooEarly, is.Status, is.ResolveBy.Format(time.RFC3339))
	}
	return is.move(StatusEscalated, by, why, now)
}

// DecisionInput is an operator's decision as sent: the body of
// POST /v1/issues/{id}/decisions.
type DecisionInput struct {
	Outcome Outcome     `json:"outcome"`
	Refund  *money.Wire `json:"refund,omitempty"`
	Reason  string      `json:"reason"`
}

// Decide records the escalation body's decision on an escalated issue.
// A decision with a refund waits for it (AddRefund); one without is
// resolved.
func (is *Issue) Decide(order OrderView, by Actor, in DecisionInput, now time.Time) error {
	if err := checkMove(is.Status, StatusDecided, by); err != nil {
		return err
	}
	switch {
	case in.Outcome == "":
		return validation.Field("outcome", "required", "outcome is required: one of %v", Outcomes)
	case !slices.Contains(Outcomes, in.Outcome):
		return validation.Field("outcome", "invalid_outcome", "outcome %q is not one of %v", in.Outcome, Outcomes)
	case in.Outcome == Dismissed && in.Refund != nil:
		return validation.Field("refund", "not_allowed", "a dismissed issue gets no refund")
	case in.Reason == "":
		return validation.Field("reason", "required", "reason is required: what the body decided and why")
	}
	if err := checkText("reason", in.Reason, validation.Multiline, MaxReason); err != nil {
		return err
	}
	if err := is.checkAmount("refund", in.Refund, order); err != nil {
		return err
	}
	now = now.UTC()
	return is.apply(func(c *Issue) error {
		c.Decision = &Decision{Outcome: in.Outcome, Refund: in.Refund, Reason: in.Reason, By: by, At: now}
		if err := c.move(StatusDecided, by, in.Reason, now); err != nil {
			return err
		}
		if in.Refund == nil {
			return c.move(StatusResolved, BySystem, "decided without a refund", now)
		}
		c.Remedy = &Remedy{Kind: RemedyRefund, Amount: in.Refund}
		return nil
	})
}
