package node_test

// After-sale issues across two real nodes on loopback (issue 13): MY's
// marketplace opens an issue on an order from a TH seller, both nodes
// carry every change through the federation, and both end with the same
// issue.

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/imtgt/imtgt-node/aftersale"
	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/federation"
	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/internal/testnet"
	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/orders"
)

// shipped places an order of qty on MY and moves it to shipped on TH,
// waiting until MY shows it; it returns the order and MY's marketplace ID.
func (on *orderNet) shipped(t *testing.T, key string, qty int) (oid, mkt string) {
	t.Helper()
	oid = on.received(t, key, qty, on.thStock(t))
	for _, to := range []string{"accepted", "packed", "shipped"} {
		on.transition(t, oid, to, http.StatusOK)
	}
	testnet.Eventually(t, 10*time.Second, func() bool {
		return on.my.Do("GET", "/v1/orders/"+oid, on.shop, nil).JSON["status"] == "shipped"
	}, "MY does not see the order shipped")
	o, err := on.my.Orders.Get(context.Background(), oid)
	require.NoError(t, err)
	return oid, o.MarketplaceID
}

// issueOn waits until node n holds issue id in status st and returns it.
func issueOn(t *testing.T, n *testnet.Node, a orders.Actor, id string, st aftersale.Status) *aftersale.Issue {
	t.Helper()
	var is *aftersale.Issue
	testnet.Eventually(t, 10*time.Second, func() bool {
		_, got, err := n.Orders.Issue(context.Background(), a, id)
		is = got
		return err == nil && got.Status == st
	}, n.Country+" never held the issue as "+string(st))
	return is
}

func myr(amount string) *money.Wire { return &money.Wire{Amount: amount, Currency: "MYR"} }

// The whole refund path: open, the seller accepts a refund, the marketplace
// reports paying it and resolves; every step shows on both nodes, the order
// carries the refund on both sides, and both audit logs hold the crossings.
func TestIssueRefundFlow(t *testing.T) {
	on := newOrderNet(t, 50)
	ctx := context.Background()
	oid, mkt := on.shipped(t, "issue-refund", 2)
	shop := orders.Actor{Role: aftersale.ByMarketplace, ID: mkt}
	seller := orders.Actor{Role: aftersale.BySeller, ID: on.sellerID}

	in := aftersale.OpenInput{Category: aftersale.Damaged, Description: "The bag arrived torn; half the rice spilled.",
		Items: []aftersale.ItemQty{{ListingID: on.listing, Quantity: 1}}, RemedyRequested: aftersale.RemedyRefund,
		Attachments: []aftersale.Attachment{{SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Size: 123456, ContentType: "image/jpeg"}}}
	is, replayed, err := on.my.Orders.OpenIssue(ctx, mkt, oid, "open-1", in)
	require.NoError(t, err)
	require.False(t, replayed)
	require.Equal(t, aftersale.StatusOpen, is.Status)
	again, replayed, err := on.my.Orders.OpenIssue(ctx, mkt, oid, "open-1", in)
	require.NoError(t, err)
	require.True(t, replayed, "the same Idempotency-Key and body get the issue made the first time")
	require.Equal(t, is.ID, again.ID)
	other := in
	other.Description = "something else"
	_, _, err = on.my.Orders.OpenIssue(ctx, mkt, oid, "open-1", other)
	require.ErrorIs(t, err, orders.ErrIdempotency)
	_, _, err = on.my.Orders.OpenIssue(ctx, "mkt_someone_else", oid, "open-2", in)
	require.ErrorIs(t, err, orders.ErrNotFound, "another marketplace's order")

	got := issueOn(t, on.th, seller, is.ID, aftersale.StatusOpen)
	require.Equal(t, in.Description, got.Description, "the buyer country's policy lets the description cross")
	require.Equal(t, is.RespondBy.Unix(), got.RespondBy.Unix())
	require.Len(t, got.Attachments, 1, "the photo's reference crossed, not the photo")
	_, _, err = on.th.Orders.Issue(ctx, orders.Actor{Role: aftersale.BySeller, ID: "sel_other"}, is.ID)
	require.ErrorIs(t, err, orders.ErrIssueNotFound, "another seller does not see it")

	// The marketplace cannot accept its own issue; the seller can.
	_, err = on.my.Orders.RespondIssue(ctx, shop, is.ID, aftersale.ResponseInput{Action: aftersale.ActionAccept,
		Remedy: &aftersale.Remedy{Kind: aftersale.RemedyRefund, Amount: myr("10.00")}})
	require.ErrorIs(t, err, aftersale.ErrForbidden)
	o, err := on.th.Orders.Get(ctx, oid)
	require.NoError(t, err)
	paid := o.Quote.LandedTotal
	refund := money.Amount{Minor: paid.Minor / 2, Currency: paid.Currency}
	_, err = on.th.Orders.RespondIssue(ctx, seller, is.ID, aftersale.ResponseInput{Action: aftersale.ActionAccept,
		Remedy: &aftersale.Remedy{Kind: aftersale.RemedyRefund, Amount: &money.Wire{Amount: paid.Decimal() + "0", Currency: paid.Currency}}})
	require.Error(t, err, "more than was paid")
	_, err = on.th.Orders.RespondIssue(ctx, seller, is.ID, aftersale.ResponseInput{Action: aftersale.ActionAccept,
		Remedy: &aftersale.Remedy{Kind: aftersale.RemedyRefund, Amount: &money.Wire{Amount: refund.Decimal(), Currency: refund.Currency}}})
	require.NoError(t, err)
	issueOn(t, on.my, shop, is.ID, aftersale.StatusAccepted)

	_, err = on.my.Orders.RefundIssue(ctx, mkt, is.ID, aftersale.RefundInput{Amount: refund.Decimal(), Currency: refund.Currency,
		Reason: "refund for the spilled rice", PaymentReference: "PAYNET-2026-000123"})
	require.NoError(t, err)
	issueOn(t, on.th, seller, is.ID, aftersale.StatusRefunded)
	for _, n := range []*testnet.Node{on.th, on.my} {
		o, err := n.Orders.Get(ctx, oid)
		require.NoError(t, err)
		require.Len(t, o.Refunds, 1, "%s shows the refund on the order", n.Country)
		require.Equal(t, "PAYNET-2026-000123", o.Refunds[0].PaymentReference)
		require.Equal(t, is.ID, o.Refunds[0].IssueID)
	}
	_, err = on.my.Orders.RespondIssue(ctx, shop, is.ID, aftersale.ResponseInput{Action: aftersale.ActionResolve})
	require.NoError(t, err)
	final := issueOn(t, on.th, seller, is.ID, aftersale.StatusResolved)
	mine := issueOn(t, on.my, shop, is.ID, aftersale.StatusResolved)
	require.Equal(t, mine.Version(), final.Version(), "both nodes hold the same issue")
	require.Equal(t, len(mine.History), len(final.History))

	// Evidence on both sides: the crossings with their receipts, and the steps.
	kinds := func(n *testnet.Node) map[audit.Kind]int {
		out := map[audit.Kind]int{}
		require.NoError(t, n.Store.AuditScan(ctx, 1, func(e *audit.Entry) error { out[e.Kind]++; return nil }))
		return out
	}
	// A node records a crossing when it holds the receipt, which may be just
	// after the other side shows the change: wait for the last ones.
	testnet.Eventually(t, 10*time.Second, func() bool { return kinds(on.my)[audit.IssueEgress] >= 3 && kinds(on.th)[audit.IssueEgress] >= 1 }, "the last issue crossings were not recorded")
	my, th := kinds(on.my), kinds(on.th)
	require.Equal(t, 3, my[audit.IssueEgress], "MY sent the opening, the refund and the resolution")
	require.GreaterOrEqual(t, th[audit.IssueIngress], 3)
	require.GreaterOrEqual(t, th[audit.IssueEgress], 1, "TH sent its acceptance")
	require.GreaterOrEqual(t, my[audit.IssueStep], 4)

	// The residency report of each side counts the issue: MY's buyers
	// complained about a TH seller, who answered in time; MY's steps
	// hold every deadline.
	report := func(n *testnet.Node, peer, side string) map[string]any {
		t.Helper()
		aud := n.Do("POST", "/v1/auditors", n.OperatorToken, map[string]string{"name": "consumer body"})
		require.Equal(t, http.StatusCreated, aud.Status, string(aud.Body))
		r := n.Do("GET", "/v1/audit/residency", aud.JSON["token"].(string), nil)
		require.Equal(t, http.StatusOK, r.Status, string(r.Body))
		for _, it := range r.JSON["issues"].([]any) {
			if row := it.(map[string]any); row["country"] == peer && row["side"] == side {
				return row
			}
		}
		t.Fatalf("%s's report has no %s row for %s: %s", n.Country, side, peer, r.Body)
		return nil
	}
	row := report(on.my, "TH", "buyer")
	require.EqualValues(t, 1, row["issues"])
	require.EqualValues(t, 1, row["opened"])
	require.Equal(t, map[string]any{"damaged": 1.0}, row["by_category"])
	require.Equal(t, map[string]any{"resolved": 1.0}, row["by_status"])
	require.Equal(t, map[string]any{"met": 1.0, "missed": 0.0}, row["respond"])
	require.Equal(t, map[string]any{"met": 1.0, "missed": 0.0}, row["resolve"])
	row = report(on.th, "MY", "seller")
	require.Equal(t, map[string]any{"met": 1.0, "missed": 0.0}, row["respond"], "TH's seller answered in time")
}

// A return: the seller accepts return_and_refund, the buyer sends the goods
// back, the seller receives them and the stock comes back once; then the
// refund.
func TestIssueReturnRestocks(t *testing.T) {
	on := newOrderNet(t, 20)
	ctx := context.Background()
	oid, mkt := on.shipped(t, "issue-return", 3)
	shop := orders.Actor{Role: aftersale.ByMarketplace, ID: mkt}
	seller := orders.Actor{Role: aftersale.BySeller, ID: on.sellerID}
	stock := on.thStock(t)
	is, _, err := on.my.Orders.OpenIssue(ctx, mkt, oid, "", aftersale.OpenInput{Category: aftersale.WrongItem,
		Description: "Brown rice came instead of jasmine rice.", Items: []aftersale.ItemQty{{ListingID: on.listing, Quantity: 2}},
		RemedyRequested: aftersale.RemedyReturnAndRefund})
	require.NoError(t, err)
	issueOn(t, on.th, seller, is.ID, aftersale.StatusOpen)
	o, err := on.th.Orders.Get(ctx, oid)
	require.NoError(t, err)
	amount := &money.Wire{Amount: money.Amount{Minor: o.Quote.LandedTotal.Minor / 3 * 2, Currency: o.Quote.LandedTotal.Currency}.Decimal(), Currency: o.Quote.LandedTotal.Currency}
	_, err = on.th.Orders.RespondIssue(ctx, seller, is.ID, aftersale.ResponseInput{Action: aftersale.ActionAccept,
		Remedy: &aftersale.Remedy{Kind: aftersale.RemedyReturnAndRefund, Amount: amount}})
	require.NoError(t, err)
	issueOn(t, on.my, shop, is.ID, aftersale.StatusReturnRequested)
	// The seller cannot receive what was not sent back.
	_, err = on.th.Orders.RespondIssue(ctx, seller, is.ID, aftersale.ResponseInput{Action: aftersale.ActionReturnReceived})
	require.ErrorIs(t, err, aftersale.ErrIllegalTransition)
	require.Equal(t, stock, on.thStock(t))

	_, err = on.my.Orders.RespondIssue(ctx, shop, is.ID, aftersale.ResponseInput{Action: aftersale.ActionReturnShipped, Tracking: "MYPOST-EE123456789MY"})
	require.NoError(t, err)
	issueOn(t, on.th, seller, is.ID, aftersale.StatusReturnShipped)
	_, err = on.th.Orders.RespondIssue(ctx, seller, is.ID, aftersale.ResponseInput{Action: aftersale.ActionReturnReceived})
	require.NoError(t, err)
	on.waitStock(t, stock+2, "the returned goods are back in stock")
	issueOn(t, on.my, shop, is.ID, aftersale.StatusReturnReceived)
	_, err = on.th.Orders.RespondIssue(ctx, seller, is.ID, aftersale.ResponseInput{Action: aftersale.ActionReturnReceived})
	require.ErrorIs(t, err, aftersale.ErrIllegalTransition, "received once")
	_, err = on.my.Orders.RefundIssue(ctx, mkt, is.ID, aftersale.RefundInput{Amount: amount.Amount, Currency: amount.Currency, PaymentReference: "FPX-998877"})
	require.NoError(t, err)
	issueOn(t, on.th, seller, is.ID, aftersale.StatusRefunded)
	require.Never(t, func() bool { return on.thStock(t) != stock+2 }, 300*time.Millisecond, 30*time.Millisecond, "restocked once")
}

// issueMsg is an issue message as TH's node would send it to MY, straight
// into MY's service: what a seller's node that acted at the same time as
// the buyer's, or a faulty one, sends.
func issueMsg(t *testing.T, on *orderNet, oid, issueID string, basedOn uint64, in aftersale.ResponseInput) *pb.IssueMessage {
	t.Helper()
	o, err := on.my.Orders.Get(context.Background(), oid)
	require.NoError(t, err)
	b, err := json.Marshal(in)
	require.NoError(t, err)
	return &pb.IssueMessage{OrderId: oid, Seq: o.InSeq + 1, IssueId: issueID, Event: orders.EventRespond, Actor: "seller",
		AtUnixMs: time.Now().UnixMilli(), BasedOn: basedOn, Input: b}
}

// The buyer's node is the authority. A response made on another version
// than the one it holds is applied if the rules allow it, and a response
// the rules refuse is refused; either way the buyer's node sends its issue
// back and the seller's node adopts it.
func TestIssueConflictConverges(t *testing.T) {
	on := newOrderNet(t, 20)
	ctx := context.Background()
	oid, mkt := on.shipped(t, "issue-conflict", 1)
	shop := orders.Actor{Role: aftersale.ByMarketplace, ID: mkt}
	seller := orders.Actor{Role: aftersale.BySeller, ID: on.sellerID}
	is, _, err := on.my.Orders.OpenIssue(ctx, mkt, oid, "", aftersale.OpenInput{Category: aftersale.NotReceived,
		Description: "Tracking says delivered; nothing came.", Items: []aftersale.ItemQty{{ListingID: on.listing, Quantity: 1}},
		RemedyRequested: aftersale.RemedyReplacement})
	require.NoError(t, err)
	issueOn(t, on.th, seller, is.ID, aftersale.StatusOpen)

	// Refused: return_received on an open issue. MY answers refused and
	// sends its issue; TH (which never made that response) keeps MY's.
	rec, err := on.my.Orders.HandleIssue(ctx, "TH", issueMsg(t, on, oid, is.ID, 1, aftersale.ResponseInput{Action: aftersale.ActionReturnReceived}))
	require.NoError(t, err)
	rc, _, err := federation.OpenReceipt(rec)
	require.NoError(t, err)
	require.Equal(t, orders.ResultRefused, rc.Result)
	require.Equal(t, orders.KindIssue, rc.Kind)
	require.Equal(t, string(aftersale.StatusOpen), rc.Status)
	held := issueOn(t, on.my, shop, is.ID, aftersale.StatusOpen)
	require.Empty(t, held.Responses)

	// Applied although made on a stale version: MY sends its issue back.
	rec2, err := on.my.Orders.HandleIssue(ctx, "TH", issueMsg(t, on, oid, is.ID, 0, aftersale.ResponseInput{Action: aftersale.ActionAccept,
		Remedy: &aftersale.Remedy{Kind: aftersale.RemedyReplacement}}))
	require.NoError(t, err)
	require.NotEqual(t, rec, rec2)
	issueOn(t, on.my, shop, is.ID, aftersale.StatusAccepted)
	got := issueOn(t, on.th, seller, is.ID, aftersale.StatusAccepted)
	require.Len(t, got.Responses, 1, "TH adopted MY's issue, with the response MY applied")
	o, err := on.my.Orders.Get(ctx, oid)
	require.NoError(t, err)
	testnet.Eventually(t, 10*time.Second, func() bool {
		b, _ := on.my.Orders.Backlog(ctx)
		return len(b) == 0
	}, "MY's sync messages were not delivered")
	mine := o.Issues[0]
	require.Equal(t, mine.Version(), got.Version())
}

// After a restore the node that lost an issue's changes gets them back from
// the other side (RecoveredOrder.issues) and the order's message sequence
// continues where the other side expects: TH (the seller's node) loses the
// issue and its own acceptance, recovers both, and its next response
// reaches MY; then MY loses the issue and takes TH's copy back.
func TestIssueRecoveryAfterRestore(t *testing.T) {
	on := newOrderNet(t, 20)
	ctx := context.Background()
	oid, mkt := on.shipped(t, "issue-restore", 1)
	shop := orders.Actor{Role: aftersale.ByMarketplace, ID: mkt}
	seller := orders.Actor{Role: aftersale.BySeller, ID: on.sellerID}
	before, err := on.th.Orders.Get(ctx, oid)
	require.NoError(t, err)
	is, _, err := on.my.Orders.OpenIssue(ctx, mkt, oid, "", aftersale.OpenInput{Category: aftersale.MissingParts,
		Description: "The grinder came without its lid.", Items: []aftersale.ItemQty{{ListingID: on.listing, Quantity: 1}},
		RemedyRequested: aftersale.RemedyReplacement})
	require.NoError(t, err)
	issueOn(t, on.th, seller, is.ID, aftersale.StatusOpen)
	_, err = on.th.Orders.RespondIssue(ctx, seller, is.ID, aftersale.ResponseInput{Action: aftersale.ActionAccept, Remedy: &aftersale.Remedy{Kind: aftersale.RemedyReplacement}})
	require.NoError(t, err)
	issueOn(t, on.my, shop, is.ID, aftersale.StatusAccepted)

	// TH's copy rewound to before the issue, as a restore would leave it.
	_, err = on.th.Store.UpdateOrder(ctx, oid, func(o *orders.Order) ([]orders.OutboxRow, error) {
		o.Issues, o.InSeq, o.OutSeq = nil, before.InSeq, before.OutSeq
		return nil, nil
	})
	require.NoError(t, err)
	_, _, err = on.th.Orders.Issue(ctx, seller, is.ID)
	require.ErrorIs(t, err, orders.ErrIssueNotFound)
	recs, entries, _, err := on.my.Orders.Recoverable(ctx, "TH", time.Time{}, "", 10)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Len(t, recs[0].Issues, 1, "MY sends its issue again")
	require.True(t, containsKind(entries, audit.IssueEgress), "sending it again is a recorded crossing")
	res, err := on.th.Orders.Recover(ctx, "MY", recs)
	require.NoError(t, err)
	require.Equal(t, 1, res.FastForwards)
	got := issueOn(t, on.th, seller, is.ID, aftersale.StatusAccepted)
	require.Len(t, got.Responses, 1, "TH has its lost acceptance back")
	// TH's next message continues the sequence: MY applies it.
	_, err = on.th.Orders.RespondIssue(ctx, seller, is.ID, aftersale.ResponseInput{Action: aftersale.ActionReplacementShipped, Tracking: "TH-EMS-123"})
	require.NoError(t, err)
	issueOn(t, on.my, shop, is.ID, aftersale.StatusResolved)
	issueOn(t, on.th, seller, is.ID, aftersale.StatusResolved)

	// Now MY loses the issue: TH's copy comes back to it.
	_, err = on.my.Store.UpdateOrder(ctx, oid, func(o *orders.Order) ([]orders.OutboxRow, error) {
		o.Issues = nil
		return nil, nil
	})
	require.NoError(t, err)
	back, _, _, err := on.th.Orders.Recoverable(ctx, "MY", time.Time{}, "", 10)
	require.NoError(t, err)
	require.Len(t, back, 1)
	require.True(t, back[0].PlacedByYou)
	_, err = on.my.Orders.Recover(ctx, "TH", back)
	require.NoError(t, err)
	mine := issueOn(t, on.my, shop, is.ID, aftersale.StatusResolved)
	require.Equal(t, got.ID, mine.ID)

	// A forged issue in a recovery is refused naming what is wrong.
	bad := proto.Clone(back[0]).(*pb.RecoveredOrder)
	bad.Issues = [][]byte{[]byte(`{"id":"iss_nope"}`)}
	_, err = on.my.Orders.Recover(ctx, "TH", []*pb.RecoveredOrder{bad})
	require.ErrorIs(t, err, orders.ErrBadRecovery)
}

func containsKind(es []*audit.Entry, k audit.Kind) bool {
	for _, e := range es {
		if e.Kind == k {
			return true
		}
	}
	return false
}
