package node_test

// Deadlines of after-sale issues (issue 13) on a clock the test moves: the
// buyer's node escalates on its own when respond_by passes with no answer,
// or when the buyer declines the seller's final proposal, and the
// escalation reaches the seller's node like any other change.

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/aftersale"
	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/internal/testnet"
	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/orders"
)

// movableClock is a clock that runs with the wall clock from an offset the
// test adds to: deadlines pass without waiting, and the federation's own
// timers (which use the wall clock) are undisturbed.
type movableClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *movableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *movableClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

func TestIssueDeadlinesEscalate(t *testing.T) {
	clock := &movableClock{}
	on := newOrderNetWith(t, 20, testnet.FedOptions{Clocks: map[string]func() time.Time{"MY": clock.Now}})
	ctx := context.Background()
	shop := func(mkt string) orders.Actor { return orders.Actor{Role: aftersale.ByMarketplace, ID: mkt} }
	seller := orders.Actor{Role: aftersale.BySeller, ID: on.sellerID}
	// open ships an order of one bag and opens an issue on it, which the
	// seller's node then holds.
	open := func(key string, cat aftersale.Category, desc string, remedy aftersale.RemedyKind) (*aftersale.Issue, string) {
		t.Helper()
		oid, mkt := on.shipped(t, key, 1)
		is, _, err := on.my.Orders.OpenIssue(ctx, mkt, oid, key, aftersale.OpenInput{Category: cat, Description: desc,
			Items: []aftersale.ItemQty{{ListingID: on.listing, Quantity: 1}}, RemedyRequested: remedy})
		require.NoError(t, err)
		issueOn(t, on.th, seller, is.ID, aftersale.StatusOpen)
		return is, mkt
	}

	// Silence: nobody answers an issue; before respond_by the sweep leaves
	// it, after it the issue escalates with respond=missed, on both nodes.
	is, mkt := open("sweep-silence", aftersale.Damaged, "The bag arrived torn.", aftersale.RemedyRefund)
	n, err := on.my.SweepIssues(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "nothing is due before respond_by")
	_, err = on.my.Orders.EscalateIssue(ctx, mkt, is.ID)
	require.ErrorIs(t, err, aftersale.ErrTooEarly)

	clock.Advance(time.Until(is.RespondBy) + time.Minute)
	n, err = on.my.SweepIssues(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	n, err = on.my.SweepIssues(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "an escalated issue is not escalated again")
	got := issueOn(t, on.my, shop(mkt), is.ID, aftersale.StatusEscalated)
	require.Equal(t, aftersale.BySystem, got.History[len(got.History)-1].By, "the node escalated, not the marketplace")
	issueOn(t, on.th, seller, is.ID, aftersale.StatusEscalated)
	step := issueSteps(t, on.my, is.ID)[len(issueSteps(t, on.my, is.ID))-1]
	require.Contains(t, step.Reason, "event=escalate")
	require.Contains(t, step.Reason, "respond=missed")
	require.Contains(t, step.Reason, "resolve=missed")
	require.Equal(t, "TH", step.Peer)

	// The seller's answer now comes too late: the buyer country's operator
	// decides, and the decision binds the seller's side.
	_, err = on.th.Orders.RespondIssue(ctx, seller, is.ID, aftersale.ResponseInput{Action: aftersale.ActionReject, Reason: "late"})
	require.Error(t, err)
	refund := money.Wire{Amount: "10.00", Currency: "MYR"}
	_, err = on.my.Orders.DecideIssue(ctx, is.ID, aftersale.DecisionInput{Outcome: aftersale.PartiallyUpheld, Refund: &refund, Reason: "Torn on arrival: part of the price back."})
	require.NoError(t, err)
	d := issueOn(t, on.th, seller, is.ID, aftersale.StatusDecided)
	require.Equal(t, aftersale.PartiallyUpheld, d.Decision.Outcome)

	// A declined proposal escalates at once, as the buyer's own act.
	is2, _ := open("sweep-declined", aftersale.WrongItem, "Sticky rice instead of jasmine rice.", aftersale.RemedyReplacement)
	_, err = on.th.Orders.RespondIssue(ctx, seller, is2.ID, aftersale.ResponseInput{Action: aftersale.ActionPropose,
		Remedy: &aftersale.Remedy{Kind: aftersale.RemedyRefund, Amount: &money.Wire{Amount: "2.00", Currency: "MYR"}}})
	require.NoError(t, err)
	issueOn(t, on.my, shop(mkt), is2.ID, aftersale.StatusProposed)
	declined, err := on.my.Orders.RespondIssue(ctx, shop(mkt), is2.ID, aftersale.ResponseInput{Action: aftersale.ActionDecline, Reason: "Too little."})
	require.NoError(t, err)
	require.Equal(t, aftersale.StatusEscalated, declined.Status)
	issueOn(t, on.th, seller, is2.ID, aftersale.StatusEscalated)

	// An agreed remedy that never comes: the seller accepts a replacement
	// in time and never ships it; once resolve_by passes the sweep
	// escalates, recording respond_by met and resolve_by missed.
	is3, _ := open("sweep-unresolved", aftersale.MissingParts, "The second bag is missing.", aftersale.RemedyReplacement)
	_, err = on.th.Orders.RespondIssue(ctx, seller, is3.ID, aftersale.ResponseInput{Action: aftersale.ActionAccept, Remedy: &aftersale.Remedy{Kind: aftersale.RemedyReplacement}})
	require.NoError(t, err)
	issueOn(t, on.my, shop(mkt), is3.ID, aftersale.StatusAccepted)
	clock.Advance(time.Until(is3.RespondBy) + time.Hour)
	n, err = on.my.SweepIssues(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "past respond_by, but the seller answered")
	clock.Advance(time.Until(is3.ResolveBy) + time.Hour)
	n, err = on.my.SweepIssues(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	issueOn(t, on.th, seller, is3.ID, aftersale.StatusEscalated)
	steps := issueSteps(t, on.my, is3.ID)
	last := steps[len(steps)-1]
	require.Contains(t, last.Reason, "event=escalate")
	require.Contains(t, last.Reason, "resolve=missed")
	require.NotContains(t, last.Reason, "respond=", "respond_by was settled by the acceptance")
	met := false
	for _, e := range append(steps, issueSteps(t, on.th, is3.ID)...) {
		met = met || strings.Contains(e.Reason, "respond=met")
	}
	require.True(t, met, "the seller's acceptance met respond_by")
}

// issueSteps are node n's issue.step audit entries of issue id, in order.
func issueSteps(t *testing.T, n *testnet.Node, id string) []*audit.Entry {
	t.Helper()
	var out []*audit.Entry
	require.NoError(t, n.Store.AuditScan(context.Background(), 1, func(e *audit.Entry) error {
		if e.Kind == audit.IssueStep && len(e.Records) > 0 && e.Records[0] == id {
			out = append(out, e)
		}
		return nil
	}))
	require.NotEmpty(t, out, "no issue.step entry of %s on %s", id, n.Country)
	return out
}
