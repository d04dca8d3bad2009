package aftersale_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/aftersale"
)

// opened is a fresh issue on order(), as the buyer's node sends it.
func opened(t *testing.T) *aftersale.Issue {
	t.Helper()
	is, err := aftersale.Open(order(), input(aftersale.RemedyRefund), deadlines, t0)
	require.NoError(t, err)
	return is
}

// An issue from the other side's node is checked against the order this
// node holds; fields the sender's policy kept back may be empty.
func TestDecodeIssue(t *testing.T) {
	cases := []struct {
		name string
		edit func(is *aftersale.Issue)
		want error
		msg  string
	}{
		{"as opened", func(*aftersale.Issue) {}, nil, ""},
		{"description kept back", func(is *aftersale.Issue) { is.Description, is.History = "", nil }, nil, ""},
		{"not an issue ID", func(is *aftersale.Issue) { is.ID = "ord_1" }, aftersale.ErrBadIssue, "not an issue ID"},
		{"another order", func(is *aftersale.Issue) { is.OrderID = "ord_02" }, aftersale.ErrBadIssue, "not ord_01"},
		{"unknown status", func(is *aftersale.Issue) { is.Status = "won" }, aftersale.ErrBadIssue, `status "won"`},
		{"unknown category", func(is *aftersale.Issue) { is.Category = "spam" }, aftersale.ErrBadIssue, "category"},
		{"item not ordered", func(is *aftersale.Issue) { is.Items[0].ListingID = "lst_Z" }, aftersale.ErrBadIssue, "not an item of order"},
		{"more than ordered", func(is *aftersale.Issue) { is.Items[0].Quantity = 3 }, aftersale.ErrBadIssue, "were ordered"},
		{"bad attachment", func(is *aftersale.Issue) { is.Attachments[0].SHA256 = "xyz" }, aftersale.ErrBadIssue, "sha256"},
		{"deadlines reversed", func(is *aftersale.Issue) { is.ResolveBy = is.RespondBy.Add(-1) }, aftersale.ErrBadIssue, "resolve_by"},
		{"refunds over the price", func(is *aftersale.Issue) {
			is.Refunds = []aftersale.Refund{{Amount: "600.00", Currency: "THB", IssueID: is.ID}, {Amount: "400.01", Currency: "THB", IssueID: is.ID}}
		}, aftersale.ErrRefundCap, "paid"},
		{"refund in another currency", func(is *aftersale.Issue) {
			is.Refunds = []aftersale.Refund{{Amount: "1.00", Currency: "MYR", IssueID: is.ID}}
		}, aftersale.ErrBadIssue, "paid in THB"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			is := opened(t)
			c.edit(is)
			b, err := json.Marshal(is)
			require.NoError(t, err)
			got, err := aftersale.DecodeIssue(b, order())
			if c.want == nil {
				require.NoError(t, err)
				require.Equal(t, is.ID, got.ID)
				return
			}
			require.ErrorIs(t, err, c.want)
			require.ErrorContains(t, err, c.msg)
		})
	}
	_, err := aftersale.DecodeIssue([]byte(`{"id":"x","extra":1}`), order())
	require.ErrorContains(t, err, "extra", "unknown fields are refused")
}

func TestIssueVersion(t *testing.T) {
	is := opened(t)
	require.EqualValues(t, 1, is.Version())
	is.Refunds = append(is.Refunds, aftersale.Refund{Amount: "1.00", Currency: "THB"})
	require.EqualValues(t, 2, is.Version(), "a partial refund is a change")
}

// FuzzDecodeIssue: whatever a peer sends, DecodeIssue returns an issue that
// passes CheckIssue, or an error; it never panics.
func FuzzDecodeIssue(f *testing.F) {
	is, _ := aftersale.Open(order(), input(aftersale.RemedyRefund), deadlines, t0)
	b, _ := json.Marshal(is)
	f.Add(b)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"id":"iss_01KBMR0000000000000000000A","order_id":"ord_01","status":"open","items":[{"listing_id":"lst_A","quantity":-1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := aftersale.DecodeIssue(b, order())
		if err != nil {
			return
		}
		require.NoError(t, aftersale.CheckIssue(order(), got))
	})
}

// orders bounds an order's messages by the number of states (a path of
// the state machine visits each once); keep it in step.
func TestStatusCount(t *testing.T) { require.Len(t, aftersale.Statuses, 13) }

func TestErase(t *testing.T) {
	is := opened(t)
	is.Responses = append(is.Responses, aftersale.Response{ResponseInput: aftersale.ResponseInput{Action: aftersale.ActionReject, Reason: "call me on 012-345"}})
	is.Refunds = append(is.Refunds, aftersale.Refund{Amount: "1.00", Currency: "THB", Reason: "for Mr. X", PaymentReference: "REF-1"})
	is.Decision = &aftersale.Decision{Outcome: aftersale.Upheld, Reason: "the buyer, Ms. Y, is right"}
	is.History[0].Reason = "personal"
	is.Erase()
	require.Empty(t, is.Description)
	require.Empty(t, is.Responses[0].Reason)
	require.Empty(t, is.Refunds[0].Reason)
	require.Equal(t, "REF-1", is.Refunds[0].PaymentReference, "the accounting reference stays")
	require.Empty(t, is.Decision.Reason)
	require.Equal(t, aftersale.Upheld, is.Decision.Outcome)
	require.Empty(t, is.History[0].Reason)
	require.Equal(t, aftersale.Damaged, is.Category)
}
