package aftersale_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/aftersale"
	"github.com/imtgt/imtgt-node/validation"
)

// TestDue walks a controllable clock across respond_by and resolve_by.
func TestDue(t *testing.T) {
	respondBy, resolveBy := t0.Add(48*time.Hour), t0.AddDate(0, 0, 14)
	for _, tc := range []struct {
		from string
		at   time.Time
		due  bool
		why  string
	}{
		{"open", t0, false, ""},
		{"open", respondBy, false, ""}, // at the deadline it has not passed
		{"open", respondBy.Add(time.Nanosecond), true, "no response by respond_by (2026-03-04T09:00:00Z)"},
		{"proposed", respondBy.Add(time.Hour), false, ""}, // a response came
		{"proposed", resolveBy, false, ""},
		{"proposed", resolveBy.Add(time.Nanosecond), true, "not resolved by resolve_by (2026-03-16T09:00:00Z)"},
		{"rejected", resolveBy.Add(time.Hour), true, "not resolved by resolve_by"},
		{"accepted/refund", resolveBy.Add(time.Hour), true, "not resolved by resolve_by"},
		{"return_shipped", resolveBy.Add(time.Hour), true, "not resolved by resolve_by"},
		{"refunded", resolveBy.Add(time.Hour), false, ""},
		{"escalated", resolveBy.Add(time.Hour), false, ""},
		{"decided", resolveBy.Add(time.Hour), false, ""},
		{"resolved", resolveBy.Add(time.Hour), false, ""},
		{"closed", resolveBy.Add(time.Hour), false, ""},
	} {
		t.Run(tc.from+"/"+tc.at.Format(time.RFC3339Nano), func(t *testing.T) {
			is := state(t, tc.from)
			was := is.Status
			due, why := aftersale.Due(is, tc.at)
			require.Equal(t, tc.due, due)
			require.Contains(t, why, tc.why)
			err := is.Escalate(aftersale.BySystem, tc.at)
			if tc.due {
				require.NoError(t, err)
				require.Equal(t, aftersale.StatusEscalated, is.Status)
				last := is.History[len(is.History)-1]
				require.Equal(t, aftersale.BySystem, last.By)
				require.Equal(t, why, last.Reason)
				return
			}
			require.Error(t, err)
			require.Equal(t, was, is.Status)
		})
	}
	// A declined proposal is due whatever the clock says.
	is := state(t, "proposed")
	is.Status = aftersale.StatusDeclined
	due, why := aftersale.Due(is, t0)
	require.True(t, due)
	require.Equal(t, "the buyer declined the final response", why)
}

// TestRefundCap: the refunds of one order, across its issues, never exceed
// what was paid; each refund names its issue and payment reference.
func TestRefundCap(t *testing.T) {
	other := aftersale.Refund{Amount: "600.00", Currency: "THB", IssueID: "iss_OTHER", At: t0, PaymentReference: "PAY-0"}
	withOther := order()
	withOther.Refunds = []aftersale.Refund{other}
	mkt := aftersale.ByMarketplace

	is, err := aftersale.Open(withOther, input(aftersale.RemedyRefund), deadlines, t0)
	require.NoError(t, err)
	err = is.Respond(withOther, aftersale.BySeller, respond(aftersale.ActionAccept, refundOf("400.01"), ""), t0.Add(time.Hour))
	require.ErrorIs(t, err, aftersale.ErrRefundCap)
	require.ErrorContains(t, err, "remedy.amount 400.01 THB is more than the 400.00 THB the order has left to refund (paid 1000.00 THB)")
	require.NoError(t, is.Respond(withOther, aftersale.BySeller, respond(aftersale.ActionAccept, refundOf("400"), ""), t0.Add(time.Hour)))

	// A partial refund is recorded and the issue waits for the rest.
	require.NoError(t, is.AddRefund(withOther, mkt, aftersale.RefundInput{Amount: "150.5", Currency: "THB", Reason: "first part", PaymentReference: "PAY-1"}, t0.Add(2*time.Hour)))
	require.Equal(t, aftersale.StatusAccepted, is.Status)
	require.Equal(t, []aftersale.Refund{{Amount: "150.50", Currency: "THB", Reason: "first part", IssueID: is.ID, At: t0.Add(2 * time.Hour), PaymentReference: "PAY-1"}}, is.Refunds)

	// The order's copy of this issue's refund is not counted twice.
	withBoth := withOther
	withBoth.Refunds = append([]aftersale.Refund{}, other, is.Refunds[0])
	for _, tc := range []struct {
		name        string
		in          aftersale.RefundInput
		field, code string
	}{
		{"over what is left", aftersale.RefundInput{Amount: "249.51", Currency: "THB", PaymentReference: "PAY-2"}, "amount", "exceeds_paid"},
		{"no amount", aftersale.RefundInput{Currency: "THB", PaymentReference: "PAY-2"}, "amount", "required"},
		{"bad amount", aftersale.RefundInput{Amount: "1,00", Currency: "THB", PaymentReference: "PAY-2"}, "amount", "invalid_amount"},
		{"zero", aftersale.RefundInput{Amount: "0", Currency: "THB", PaymentReference: "PAY-2"}, "amount", "invalid_amount"},
		{"no currency", aftersale.RefundInput{Amount: "1", PaymentReference: "PAY-2"}, "currency", "required"},
		{"other currency", aftersale.RefundInput{Amount: "1", Currency: "MYR", PaymentReference: "PAY-2"}, "currency", "wrong_currency"},
		{"no payment reference", aftersale.RefundInput{Amount: "1", Currency: "THB"}, "payment_reference", "required"},
		{"payment reference on two lines", aftersale.RefundInput{Amount: "1", Currency: "THB", PaymentReference: "PAY\n2"}, "payment_reference", validation.CodeControl},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := is.AddRefund(withBoth, mkt, tc.in, t0.Add(3*time.Hour))
			ve, ok := validation.As(err)
			require.True(t, ok, "%v", err)
			require.Equal(t, tc.field, ve.Field, err.Error())
			require.Equal(t, tc.code, ve.Code, err.Error())
			require.Len(t, is.Refunds, 1, "nothing recorded")
		})
	}
	err = is.AddRefund(withBoth, mkt, aftersale.RefundInput{Amount: "249.51", Currency: "THB", PaymentReference: "PAY-2"}, t0.Add(3*time.Hour))
	require.ErrorIs(t, err, aftersale.ErrRefundCap)

	// The rest, exactly: refunded, and the order is refunded in full.
	require.NoError(t, is.AddRefund(withBoth, mkt, aftersale.RefundInput{Amount: "249.50", Currency: "THB", PaymentReference: "PAY-2"}, t0.Add(3*time.Hour)))
	require.Equal(t, aftersale.StatusRefunded, is.Status)
	require.Len(t, is.Refunds, 2)

	// A second issue on the same, now fully refunded, order cannot agree any refund.
	full := order()
	full.Refunds = append([]aftersale.Refund{other}, is.Refunds...)
	second, err := aftersale.Open(full, input(aftersale.RemedyRefund), deadlines, t0)
	require.NoError(t, err)
	err = second.Respond(full, aftersale.BySeller, respond(aftersale.ActionAccept, refundOf("0.01"), ""), t0.Add(time.Hour))
	require.ErrorIs(t, err, aftersale.ErrRefundCap)
}

func TestRestock(t *testing.T) {
	for _, s := range []string{"return_requested", "return_shipped"} {
		require.Nil(t, aftersale.Restock(state(t, s)), s)
	}
	is := state(t, "return_received")
	require.Equal(t, []aftersale.ItemQty{{ListingID: "lst_A", Quantity: 1}}, aftersale.Restock(is))
	require.NoError(t, is.AddRefund(order(), aftersale.ByMarketplace, aftersale.RefundInput{Amount: "400", Currency: "THB", PaymentReference: "PAY-3"}, t0.Add(5*time.Hour)))
	require.Equal(t, aftersale.StatusRefunded, is.Status)
	require.Equal(t, []aftersale.ItemQty{{ListingID: "lst_A", Quantity: 1}}, aftersale.Restock(is), "what came back stays counted")
	for _, s := range []string{"refunded", "resolved", "accepted/replacement"} {
		require.Nil(t, aftersale.Restock(state(t, s)), "no return, no restock: %s", s)
	}
}
