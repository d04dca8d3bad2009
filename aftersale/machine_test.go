package aftersale_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/aftersale"
	"github.com/imtgt/imtgt-node/validation"
)

var actors = []aftersale.Actor{aftersale.ByMarketplace, aftersale.BySeller, aftersale.ByOperator, aftersale.BySystem}

func respond(action aftersale.Action, remedy *aftersale.Remedy, reason string) aftersale.ResponseInput {
	return aftersale.ResponseInput{Action: action, Remedy: remedy, Reason: reason}
}

func refundOf(s string) *aftersale.Remedy {
	return &aftersale.Remedy{Kind: aftersale.RemedyRefund, Amount: wire(s)}
}

// state builds an issue in a state by the real moves, one hour apart,
// so the tests of a state start from what the rules make.
func state(t *testing.T, s string) *aftersale.Issue {
	t.Helper()
	remedy := aftersale.RemedyRefund
	switch s {
	case "accepted/replacement":
		remedy = aftersale.RemedyReplacement
	case "return_requested", "return_shipped", "return_received":
		remedy = aftersale.RemedyReturnAndRefund
	}
	is, err := aftersale.Open(order(), input(remedy), deadlines, t0)
	require.NoError(t, err)
	now := t0
	do := func(by aftersale.Actor, in aftersale.ResponseInput) {
		now = now.Add(time.Hour)
		require.NoError(t, is.Respond(order(), by, in, now))
	}
	seller, mkt := aftersale.BySeller, aftersale.ByMarketplace
	switch s {
	case "open":
	case "proposed":
		do(seller, respond(aftersale.ActionPropose, refundOf("300"), "a partial refund"))
	case "rejected", "closed", "escalated", "decided":
		do(seller, respond(aftersale.ActionReject, nil, "the photo shows another jar"))
		switch s {
		case "closed":
			do(mkt, respond(aftersale.ActionAccept, nil, ""))
		case "escalated", "decided":
			require.NoError(t, is.Escalate(mkt, now))
		}
		if s == "decided" {
			require.NoError(t, is.Decide(order(), aftersale.ByOperator,
				aftersale.DecisionInput{Outcome: aftersale.PartiallyUpheld, Refund: wire("500"), Reason: "half the goods were broken"}, now))
		}
	case "accepted/refund", "refunded", "resolved":
		do(seller, respond(aftersale.ActionAccept, refundOf("1000"), ""))
		if s != "accepted/refund" {
			require.NoError(t, is.AddRefund(order(), mkt, aftersale.RefundInput{Amount: "1000", Currency: "THB", PaymentReference: "PAY-1"}, now))
		}
		if s == "resolved" {
			do(mkt, respond(aftersale.ActionResolve, nil, ""))
		}
	case "accepted/replacement":
		do(seller, respond(aftersale.ActionAccept, &aftersale.Remedy{Kind: aftersale.RemedyReplacement}, ""))
	case "return_requested", "return_shipped", "return_received":
		do(seller, respond(aftersale.ActionAccept, &aftersale.Remedy{Kind: aftersale.RemedyReturnAndRefund, Amount: wire("400")}, ""))
		if s != "return_requested" {
			do(mkt, aftersale.ResponseInput{Action: aftersale.ActionReturnShipped, Tracking: "TH123"})
		}
		if s == "return_received" {
			do(seller, respond(aftersale.ActionReturnReceived, nil, ""))
		}
	default:
		t.Fatalf("no state %q", s)
	}
	want := aftersale.Status(strings.Split(s, "/")[0])
	require.Equal(t, want, is.Status)
	return is
}

type op func(is *aftersale.Issue, by aftersale.Actor, now time.Time) error

func act(in aftersale.ResponseInput) op {
	return func(is *aftersale.Issue, by aftersale.Actor, now time.Time) error {
		return is.Respond(order(), by, in, now)
	}
}

func escalate(is *aftersale.Issue, by aftersale.Actor, now time.Time) error {
	return is.Escalate(by, now)
}

func decide(in aftersale.DecisionInput) op {
	return func(is *aftersale.Issue, by aftersale.Actor, now time.Time) error {
		return is.Decide(order(), by, in, now)
	}
}

func refund(amount string) op {
	return func(is *aftersale.Issue, by aftersale.Actor, now time.Time) error {
		return is.AddRefund(order(), by, aftersale.RefundInput{Amount: amount, Currency: "THB", PaymentReference: "PAY-2"}, now)
	}
}

// TestTransitions drives every transition, allowed and refused, per actor.
// A refused move leaves the issue exactly as it was.
func TestTransitions(t *testing.T) {
	soon := t0.Add(24 * time.Hour)                        // before respond_by
	afterRespond := t0.Add(49 * time.Hour)                // respond_by passed
	afterResolve := t0.AddDate(0, 0, 14).Add(time.Minute) // resolve_by passed
	var (
		mkt, seller, operator, system = aftersale.ByMarketplace, aftersale.BySeller, aftersale.ByOperator, aftersale.BySystem
		accept                        = act(respond(aftersale.ActionAccept, nil, ""))
		acceptRefund                  = act(respond(aftersale.ActionAccept, refundOf("1000"), ""))
		propose                       = act(respond(aftersale.ActionPropose, refundOf("300"), "half"))
		reject                        = act(respond(aftersale.ActionReject, nil, "not our item"))
		decline                       = act(respond(aftersale.ActionDecline, nil, "the buyer wants all of it"))
		returnShipped                 = act(respond(aftersale.ActionReturnShipped, nil, ""))
		returnReceived                = act(respond(aftersale.ActionReturnReceived, nil, ""))
		replacementShipped            = act(aftersale.ResponseInput{Action: aftersale.ActionReplacementShipped, Tracking: "TH9"})
		resolve                       = act(respond(aftersale.ActionResolve, nil, ""))
		dismiss                       = decide(aftersale.DecisionInput{Outcome: aftersale.Dismissed, Reason: "no evidence"})
		uphold                        = decide(aftersale.DecisionInput{Outcome: aftersale.Upheld, Refund: wire("1000"), Reason: "broken on arrival"})
	)
	const (
		illegal   = "illegal"
		forbidden = "forbidden"
		early     = "early"
	)
	for _, tc := range []struct {
		from string
		name string
		by   aftersale.Actor
		op   op
		at   time.Time
		want string // a status, or illegal, forbidden, early
	}{
		{"open", "seller accepts the refund", seller, acceptRefund, soon, "accepted"},
		{"open", "marketplace accepts", mkt, acceptRefund, soon, forbidden},
		{"open", "operator accepts", operator, acceptRefund, soon, forbidden},
		{"open", "system accepts", system, acceptRefund, soon, forbidden},
		{"open", "seller proposes", seller, propose, soon, "proposed"},
		{"open", "marketplace proposes", mkt, propose, soon, forbidden},
		{"open", "seller rejects", seller, reject, soon, "rejected"},
		{"open", "marketplace rejects", mkt, reject, soon, forbidden},
		{"open", "seller declines", seller, decline, soon, illegal},
		{"open", "marketplace declines", mkt, decline, soon, illegal},
		{"open", "return shipped", mkt, returnShipped, soon, illegal},
		{"open", "resolve", mkt, resolve, soon, illegal},
		{"open", "marketplace escalates before respond_by", mkt, escalate, soon, early},
		{"open", "marketplace escalates after respond_by", mkt, escalate, afterRespond, "escalated"},
		{"open", "system escalates before respond_by", system, escalate, soon, early},
		{"open", "system escalates after respond_by", system, escalate, afterRespond, "escalated"},
		{"open", "seller escalates", seller, escalate, afterRespond, forbidden},
		{"open", "operator escalates", operator, escalate, afterRespond, forbidden},
		{"open", "operator decides", operator, dismiss, soon, illegal},
		{"open", "marketplace refunds", mkt, refund("10"), soon, illegal},

		{"proposed", "marketplace accepts the proposal", mkt, accept, soon, "accepted"},
		{"proposed", "seller accepts its own proposal", seller, accept, soon, forbidden},
		{"proposed", "marketplace declines: escalated", mkt, decline, soon, "escalated"},
		{"proposed", "seller declines", seller, decline, soon, forbidden},
		{"proposed", "seller proposes again", seller, propose, soon, illegal},
		{"proposed", "marketplace escalates (declines instead)", mkt, escalate, afterResolve, forbidden},
		{"proposed", "system escalates before resolve_by", system, escalate, afterRespond, early},
		{"proposed", "system escalates after resolve_by", system, escalate, afterResolve, "escalated"},

		{"rejected", "marketplace accepts the rejection", mkt, accept, soon, "closed"},
		{"rejected", "seller accepts", seller, accept, soon, forbidden},
		{"rejected", "marketplace escalates at once", mkt, escalate, soon, "escalated"},
		{"rejected", "system escalates before resolve_by", system, escalate, soon, early},
		{"rejected", "system escalates after resolve_by", system, escalate, afterResolve, "escalated"},
		{"rejected", "seller escalates", seller, escalate, soon, forbidden},

		{"closed", "marketplace accepts", mkt, accept, soon, illegal},
		{"closed", "marketplace escalates", mkt, escalate, afterResolve, illegal},
		{"closed", "system escalates", system, escalate, afterResolve, illegal},

		{"accepted/refund", "marketplace refunds in full", mkt, refund("1000"), soon, "refunded"},
		{"accepted/refund", "seller refunds", seller, refund("1000"), soon, forbidden},
		{"accepted/refund", "operator refunds", operator, refund("1000"), soon, forbidden},
		{"accepted/refund", "replacement shipped", seller, replacementShipped, soon, illegal},
		{"accepted/refund", "seller accepts again", seller, acceptRefund, soon, illegal},
		{"accepted/refund", "marketplace escalates before resolve_by", mkt, escalate, afterRespond, early},
		{"accepted/refund", "marketplace escalates after resolve_by", mkt, escalate, afterResolve, "escalated"},
		{"accepted/refund", "system escalates after resolve_by", system, escalate, afterResolve, "escalated"},

		{"accepted/replacement", "seller ships the replacement", seller, replacementShipped, soon, "resolved"},
		{"accepted/replacement", "marketplace reports it shipped", mkt, replacementShipped, soon, forbidden},
		{"accepted/replacement", "marketplace refunds", mkt, refund("10"), soon, illegal},

		{"return_requested", "marketplace ships the return", mkt, returnShipped, soon, "return_shipped"},
		{"return_requested", "seller ships the return", seller, returnShipped, soon, forbidden},
		{"return_requested", "marketplace refunds before the return", mkt, refund("400"), soon, illegal},
		{"return_requested", "seller receives before it is shipped", seller, returnReceived, soon, illegal},
		{"return_shipped", "seller receives the return", seller, returnReceived, soon, "return_received"},
		{"return_shipped", "marketplace receives the return", mkt, returnReceived, soon, forbidden},
		{"return_shipped", "system escalates after resolve_by", system, escalate, afterResolve, "escalated"},
		{"return_received", "marketplace refunds", mkt, refund("400"), soon, "refunded"},
		{"return_received", "seller refunds", seller, refund("400"), soon, forbidden},

		{"refunded", "marketplace resolves", mkt, resolve, soon, "resolved"},
		{"refunded", "seller resolves", seller, resolve, soon, forbidden},
		{"refunded", "marketplace escalates", mkt, escalate, afterResolve, illegal},
		{"refunded", "system escalates", system, escalate, afterResolve, illegal},
		{"refunded", "marketplace refunds again", mkt, refund("1"), soon, illegal},

		{"escalated", "operator dismisses: resolved", operator, dismiss, soon, "resolved"},
		{"escalated", "operator upholds with a refund", operator, uphold, soon, "decided"},
		{"escalated", "marketplace decides", mkt, uphold, soon, forbidden},
		{"escalated", "seller decides", seller, uphold, soon, forbidden},
		{"escalated", "seller accepts", seller, acceptRefund, soon, illegal},
		{"escalated", "escalated again", system, escalate, afterResolve, illegal},
		{"escalated", "marketplace refunds before a decision", mkt, refund("10"), soon, illegal},

		{"decided", "marketplace pays the decision's refund", mkt, refund("500"), soon, "refunded"},
		{"decided", "operator decides again", operator, dismiss, soon, illegal},
		{"decided", "seller responds", seller, reject, soon, illegal},

		{"resolved", "marketplace resolves again", mkt, resolve, soon, illegal},
		{"resolved", "seller rejects", seller, reject, soon, illegal},
		{"resolved", "system escalates", system, escalate, afterResolve, illegal},
	} {
		t.Run(tc.from+"/"+tc.name, func(t *testing.T) {
			is := state(t, tc.from)
			before, err := json.Marshal(is)
			require.NoError(t, err)
			err = tc.op(is, tc.by, tc.at)
			switch tc.want {
			case illegal, forbidden, early:
				switch tc.want {
				case illegal:
					require.ErrorIs(t, err, aftersale.ErrIllegalTransition)
				case forbidden:
					require.ErrorIs(t, err, aftersale.ErrForbidden)
				case early:
					require.ErrorIs(t, err, aftersale.ErrTooEarly)
				}
				after, _ := json.Marshal(is)
				require.JSONEq(t, string(before), string(after), "a refused move changed the issue")
			default:
				require.NoError(t, err)
				require.Equal(t, aftersale.Status(tc.want), is.Status)
				last := is.History[len(is.History)-1]
				require.Equal(t, is.Status, last.Status)
				require.Equal(t, tc.at, is.UpdatedAt)
				for _, e := range is.History[1:] {
					require.True(t, slices.ContainsFunc(aftersale.Moves, func(m aftersale.Move) bool { return m.To == e.Status }))
				}
			}
		})
	}
}

// TestMovesTable: CanMove answers from the table, per actor; the final
// states have no way out.
func TestMovesTable(t *testing.T) {
	for _, from := range aftersale.Statuses {
		for _, to := range aftersale.Statuses {
			for _, by := range actors {
				want := slices.ContainsFunc(aftersale.Moves, func(m aftersale.Move) bool {
					return m.From == from && m.To == to && slices.Contains(m.By, by)
				})
				require.Equal(t, want, aftersale.CanMove(from, to, by), "%s→%s by %s", from, to, by)
			}
		}
	}
	for _, m := range aftersale.Moves {
		require.True(t, aftersale.ValidStatus(m.From) && aftersale.ValidStatus(m.To), "%+v", m)
		require.NotEmpty(t, m.By)
	}
	require.True(t, aftersale.Final(aftersale.StatusResolved))
	require.True(t, aftersale.Final(aftersale.StatusClosed))
	require.False(t, aftersale.Final(aftersale.StatusOpen))
	require.False(t, aftersale.ValidStatus("lost"))
	require.False(t, aftersale.CanMove(aftersale.StatusOpen, aftersale.StatusAccepted, "buyer"))
}

// TestFollowOnSteps: accepting a return goes on to return_requested, a
// declined proposal escalates, a decision without a refund resolves; each
// step is in the history, with the system as actor.
func TestFollowOnSteps(t *testing.T) {
	statuses := func(is *aftersale.Issue) (out []aftersale.Status) {
		for _, e := range is.History {
			out = append(out, e.Status)
		}
		return out
	}
	is := state(t, "return_requested")
	require.Equal(t, []aftersale.Status{"open", "accepted", "return_requested"}, statuses(is))
	require.Equal(t, aftersale.BySystem, is.History[2].By)
	require.Equal(t, aftersale.RemedyReturnAndRefund, is.Remedy.Kind)

	is = state(t, "proposed")
	require.NoError(t, is.Respond(order(), aftersale.ByMarketplace, respond(aftersale.ActionDecline, nil, ""), t0.Add(2*time.Hour)))
	require.Equal(t, []aftersale.Status{"open", "proposed", "declined", "escalated"}, statuses(is))
	require.Equal(t, "the buyer declined the proposal", is.History[3].Reason)
	require.Len(t, is.Responses, 2)
	require.Equal(t, aftersale.ByMarketplace, is.Responses[1].By)

	is = state(t, "proposed")
	require.NoError(t, is.Respond(order(), aftersale.ByMarketplace, respond(aftersale.ActionAccept, nil, ""), t0.Add(2*time.Hour)))
	require.Equal(t, refundOf("300"), is.Remedy, "accepting a proposal agrees its remedy")

	is = state(t, "escalated")
	require.NoError(t, is.Decide(order(), aftersale.ByOperator, aftersale.DecisionInput{Outcome: aftersale.Dismissed, Reason: "no evidence"}, t0.Add(3*time.Hour)))
	require.Equal(t, aftersale.StatusResolved, is.Status)
	require.Equal(t, aftersale.Dismissed, is.Decision.Outcome)
	require.Equal(t, aftersale.ByOperator, is.Decision.By)
}

func TestResponseRefuses(t *testing.T) {
	for _, tc := range []struct {
		name        string
		from        string
		by          aftersale.Actor
		in          aftersale.ResponseInput
		field, code string
	}{
		{"no action", "open", aftersale.BySeller, aftersale.ResponseInput{}, "action", "required"},
		{"unknown action", "open", aftersale.BySeller, respond("refund", nil, ""), "action", "invalid_action"},
		{"accept without a remedy", "open", aftersale.BySeller, respond(aftersale.ActionAccept, nil, ""), "remedy", "required"},
		{"accept another remedy", "open", aftersale.BySeller, respond(aftersale.ActionAccept, &aftersale.Remedy{Kind: aftersale.RemedyReplacement}, ""), "remedy.kind", "not_requested"},
		{"propose without a remedy", "open", aftersale.BySeller, respond(aftersale.ActionPropose, nil, ""), "remedy", "required"},
		{"unknown remedy kind", "open", aftersale.BySeller, respond(aftersale.ActionPropose, &aftersale.Remedy{Kind: "voucher"}, ""), "remedy.kind", "invalid_remedy"},
		{"refund without an amount", "open", aftersale.BySeller, respond(aftersale.ActionAccept, &aftersale.Remedy{Kind: aftersale.RemedyRefund}, ""), "remedy.amount", "required"},
		{"replacement with an amount", "open", aftersale.BySeller, respond(aftersale.ActionPropose, &aftersale.Remedy{Kind: aftersale.RemedyReplacement, Amount: wire("1")}, ""), "remedy.amount", "not_allowed"},
		{"bad amount", "open", aftersale.BySeller, respond(aftersale.ActionAccept, refundOf("1.234"), ""), "remedy.amount", "invalid_amount"},
		{"zero amount", "open", aftersale.BySeller, respond(aftersale.ActionAccept, refundOf("0"), ""), "remedy.amount", "invalid_amount"},
		{"wrong currency", "open", aftersale.BySeller, respond(aftersale.ActionAccept, &aftersale.Remedy{Kind: aftersale.RemedyRefund, Amount: &myr10}, ""), "remedy.amount.currency", "wrong_currency"},
		{"more than paid", "open", aftersale.BySeller, respond(aftersale.ActionAccept, refundOf("1000.01"), ""), "remedy.amount", "exceeds_paid"},
		{"reject without a reason", "open", aftersale.BySeller, respond(aftersale.ActionReject, nil, ""), "reason", "required"},
		{"reason with a control", "open", aftersale.BySeller, respond(aftersale.ActionReject, nil, "no\x1b[2J"), "reason", validation.CodeControl},
		{"remedy on a reject", "open", aftersale.BySeller, respond(aftersale.ActionReject, refundOf("1"), "no"), "remedy", "not_allowed"},
		{"tracking on an accept", "open", aftersale.BySeller, aftersale.ResponseInput{Action: aftersale.ActionAccept, Remedy: refundOf("1"), Tracking: "X"}, "tracking", "not_allowed"},
		{"tracking on two lines", "return_requested", aftersale.ByMarketplace, aftersale.ResponseInput{Action: aftersale.ActionReturnShipped, Tracking: "X\nY"}, "tracking", validation.CodeControl},
		{"accepting a proposal with another remedy", "proposed", aftersale.ByMarketplace, respond(aftersale.ActionAccept, refundOf("1000"), ""), "remedy", "not_proposed"},
		{"accepting a rejection with a remedy", "rejected", aftersale.ByMarketplace, respond(aftersale.ActionAccept, refundOf("1"), ""), "remedy", "not_allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := state(t, tc.from)
			before, _ := json.Marshal(is)
			err := is.Respond(order(), tc.by, tc.in, t0.Add(2*time.Hour))
			require.ErrorIs(t, err, validation.ErrInvalid)
			ve, _ := validation.As(err)
			require.Equal(t, tc.field, ve.Field, err.Error())
			require.Equal(t, tc.code, ve.Code, err.Error())
			require.True(t, strings.HasPrefix(err.Error(), tc.field+": "), err.Error())
			after, _ := json.Marshal(is)
			require.JSONEq(t, string(before), string(after))
		})
	}
}

func TestDecisionRefuses(t *testing.T) {
	for _, tc := range []struct {
		name        string
		in          aftersale.DecisionInput
		field, code string
	}{
		{"no outcome", aftersale.DecisionInput{Reason: "x"}, "outcome", "required"},
		{"unknown outcome", aftersale.DecisionInput{Outcome: "won", Reason: "x"}, "outcome", "invalid_outcome"},
		{"dismissed with a refund", aftersale.DecisionInput{Outcome: aftersale.Dismissed, Refund: wire("1"), Reason: "x"}, "refund", "not_allowed"},
		{"no reason", aftersale.DecisionInput{Outcome: aftersale.Upheld}, "reason", "required"},
		{"refund over what was paid", aftersale.DecisionInput{Outcome: aftersale.Upheld, Refund: wire("1000.01"), Reason: "x"}, "refund", "exceeds_paid"},
		{"refund in another currency", aftersale.DecisionInput{Outcome: aftersale.Upheld, Refund: &myr10, Reason: "x"}, "refund.currency", "wrong_currency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := state(t, "escalated")
			err := is.Decide(order(), aftersale.ByOperator, tc.in, t0.Add(3*time.Hour))
			ve, ok := validation.As(err)
			require.True(t, ok, "%v", err)
			require.Equal(t, tc.field, ve.Field)
			require.Equal(t, tc.code, ve.Code)
			require.Equal(t, aftersale.StatusEscalated, is.Status)
			require.Nil(t, is.Decision)
		})
	}
}

func TestDecodeResponse(t *testing.T) {
	in, err := aftersale.DecodeResponse([]byte(`{"action":"accept","remedy":{"kind":"refund","amount":{"amount":"250.00","currency":"THB"}}}`))
	require.NoError(t, err)
	require.Equal(t, respond(aftersale.ActionAccept, refundOf("250.00"), ""), in)
	for _, tc := range []struct{ body, field string }{
		{`{"action":"reject"}`, "reason"},
		{`{"action":"accept","by":"operator"}`, ""}, // who acts is the caller's, never the body's
		{`{"action":"accept","remedy":{"kind":"refund","amount":{"amount":"-1","currency":"THB"}}}`, "remedy.amount"},
		{`{"action":"propose","remedy":{"kind":"refund","amount":"250"}}`, "remedy.amount"},
		{`{"action":"reject","reason":"\ud800"}`, "reason"},
	} {
		_, err := aftersale.DecodeResponse([]byte(tc.body))
		ve, ok := validation.As(err)
		require.True(t, ok, "%s: %v", tc.body, err)
		require.Equal(t, tc.field, ve.Field, tc.body)
	}
}

// FuzzDecodeResponse: decoding a response never panics; what decodes
// passes CheckResponse, encodes back to itself, and applying it to an open
// issue either moves it by the table or leaves it as it was.
func FuzzDecodeResponse(f *testing.F) {
	for _, s := range []string{
		`{"action":"accept","remedy":{"kind":"refund","amount":{"amount":"250.00","currency":"THB"}}}`,
		`{"action":"propose","remedy":{"kind":"replacement"},"reason":"we send a new one"}`,
		`{"action":"reject","reason":"not ours"}`,
		`{"action":"return_shipped","tracking":"TH1"}`,
		`{"action":"accept","remedy":{"kind":"refund","amount":{"amount":"99999999999999999999","currency":"THB"}}}`,
	} {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, who uint8) {
		in, err := aftersale.DecodeResponse(b)
		if err != nil {
			return
		}
		require.NoError(t, aftersale.CheckResponse(in))
		out, err := json.Marshal(in)
		require.NoError(t, err)
		again, err := aftersale.DecodeResponse(out)
		require.NoError(t, err)
		require.Equal(t, in, again)
		is, err := aftersale.Open(order(), input(aftersale.RemedyRefund), deadlines, t0)
		require.NoError(t, err)
		before, _ := json.Marshal(is)
		by := actors[int(who)%len(actors)]
		if err := is.Respond(order(), by, in, t0.Add(time.Hour)); err != nil {
			after, _ := json.Marshal(is)
			require.JSONEq(t, string(before), string(after))
			return
		}
		require.True(t, aftersale.CanMove(aftersale.StatusOpen, is.History[1].Status, by))
	})
}
