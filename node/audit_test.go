package node_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/auditor"
	"github.com/imtgt/imtgt-node/federation"
	"github.com/imtgt/imtgt-node/internal/testnet"
	"github.com/imtgt/imtgt-node/policy"
	"github.com/imtgt/imtgt-node/store"
)

// auditScenario runs listings and orders across three nodes: a TH seller
// lists rice (synced to MY and ID); a MY marketplace orders it, the TH
// seller accepts, packs and ships; an ID order without consent is refused.
func auditScenario(t *testing.T) (fed *testnet.Net, orderID string) {
	t.Helper()
	fed = testnet.Federate(t, "TH", "MY", "ID")
	th, my, id := fed.Nodes["TH"], fed.Nodes["MY"], fed.Nodes["ID"]
	_, seller := th.ActiveSeller(testnet.THSeller("Surat Thani Rice & Coffee Co., Ltd.", 3))
	r := th.Do("POST", "/v1/listings", seller, testnet.Listing("ข้าวหอมมะลิ 5 กก. jasmine rice", "100630", "265.00"))
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	rice := r.JSON["id"].(string)
	for _, n := range []*testnet.Node{my, id} {
		testnet.Eventually(t, 10*time.Second, func() bool { _, ok := n.Catalog.Get(rice); return ok }, "listing did not sync")
	}
	shop := marketplace(t, my, "Shopee-like MY")
	r = doKey(t, my, shop, "audit-1", orderBody("MY", "MY-07", rice, 2, false))
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	orderID = r.JSON["id"].(string)
	testnet.Eventually(t, 10*time.Second, func() bool {
		return my.Do("GET", "/v1/orders/"+orderID, shop, nil).JSON["handoff_receipt"] == true
	}, "the buyer's node did not get the receipt")
	for _, to := range []string{"accepted", "packed", "shipped"} {
		r = th.Do("POST", "/v1/orders/"+orderID+"/transitions", seller, map[string]string{"to": to})
		require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	}
	testnet.Eventually(t, 10*time.Second, func() bool {
		return my.Do("GET", "/v1/orders/"+orderID, shop, nil).JSON["status"] == "shipped"
	}, "the MY node did not show the seller's progress")
	r = th.Do("POST", "/v1/listings", seller, testnet.Listing("หมอนยางพาราแท้ natural latex pillow", "940490", "4000.00"))
	require.Equal(t, http.StatusCreated, r.Status)
	pillow := r.JSON["id"].(string)
	testnet.Eventually(t, 10*time.Second, func() bool { _, ok := id.Catalog.Get(pillow); return ok }, "listing did not sync to ID")
	idShop := marketplace(t, id, "Tokopedia-like ID")
	r = doKey(t, id, idShop, "no-consent", orderBody("ID", "ID-SU", pillow, 1, false))
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Body))
	require.Contains(t, string(r.Body), "ID-TR-ORDER-BUYER")
	for _, n := range []*testnet.Node{th, my} {
		testnet.Eventually(t, 10*time.Second, func() bool {
			return len(n.Do("GET", "/v1/outbox", n.OperatorToken, nil).JSON["items"].([]any)) == 0
		}, "an outbox did not drain")
	}
	return fed, orderID
}

func transfersTo(r *auditor.Report, dest, purpose string) []auditor.Transfer {
	var out []auditor.Transfer
	for _, t := range r.Transfers {
		if t.Destination == dest && t.Purpose == purpose {
			out = append(out, t)
		}
	}
	return out
}

// TestAuditDoneWhen is the audit issue's "done when": after listings and
// orders across three nodes, TH's residency report shows catalog transfers
// to MY and ID with public fields only and no violations; MY's shows order
// handoffs to TH without the buyer's e-mail; an exported bundle verifies
// offline and an edited or dropped entry is caught.
func TestAuditDoneWhen(t *testing.T) {
	fed, orderID := auditScenario(t)
	th, my, id := fed.Nodes["TH"], fed.Nodes["MY"], fed.Nodes["ID"]
	ctx := context.Background()

	thp, _ := th.Policy()
	rep, err := th.AuditReport(ctx, time.Time{}, time.Time{})
	require.NoError(t, err)
	require.Empty(t, rep.Violations)
	require.Equal(t, "TH", rep.Node)
	for _, dest := range []string{"MY", "ID"} {
		ts := transfersTo(rep, dest, "catalog")
		require.NotEmpty(t, ts, "no catalog transfer to %s in %+v", dest, rep.Transfers)
		for _, tr := range ts {
			require.NotEmpty(t, tr.Fields)
			require.Positive(t, tr.Count)
			require.NotEmpty(t, tr.Rule)
			for _, f := range tr.Fields {
				name, ok := strings.CutPrefix(f, "listing.")
				require.True(t, ok, "field %s is not a listing field", f)
				require.Equal(t, policy.Public, thp.FieldClasses[policy.KindListing][name], "field %s to %s is not public", f, dest)
			}
		}
	}
	require.Equal(t, 2, rep.AtRest.Listings)
	require.Equal(t, 1, rep.AtRest.Sellers)

	myRep, err := my.AuditReport(ctx, time.Time{}, time.Time{})
	require.NoError(t, err)
	require.Empty(t, myRep.Violations)
	handoffs := transfersTo(myRep, "TH", "order_handoff")
	require.NotEmpty(t, handoffs, "%+v", myRep.Transfers)
	var handoffFields []string
	for _, tr := range handoffs {
		handoffFields = append(handoffFields, tr.Fields...)
	}
	require.Contains(t, handoffFields, "buyer.name")
	require.Contains(t, handoffFields, "buyer.address.line1")
	require.NotContains(t, handoffFields, "buyer.email")
	// MY answered TH's three status messages with receipts.
	statusReceipts := 0
	for _, tr := range transfersTo(myRep, "TH", auditor.ReceiptPurpose) {
		require.Equal(t, string(audit.ReceiptEgress), tr.Kind)
		statusReceipts += tr.Count
	}
	require.Equal(t, 3, statusReceipts)

	// The refused ID order is on ID's record, citing the rule.
	idEntries, _, err := id.AuditEntries(ctx, audit.Query{Kind: "rejection"})
	require.NoError(t, err)
	require.True(t, slices.ContainsFunc(idEntries, func(e audit.Entry) bool {
		return e.Peer == "TH" && strings.Contains(e.Reason, "ID-TR-ORDER-BUYER")
	}), "%+v", idEntries)

	// The seller's side recorded what arrived, never the e-mail.
	thIn, _, err := th.AuditEntries(ctx, audit.Query{Kind: string(audit.HandoffIngress)})
	require.NoError(t, err)
	require.Len(t, thIn, 1)
	require.Equal(t, []string{orderID}, thIn[0].Records)
	require.NotContains(t, thIn[0].Fields, "buyer.email")

	// Peers countersign checkpoints (the nodes do it every 5 s; here at
	// once, before the export).
	cp, err := my.Checkpoint(ctx)
	require.NoError(t, err)
	require.Len(t, cp.Witnesses, 2, "TH and ID countersign MY's checkpoint")
	myCP := cp
	cp, err = th.Checkpoint(ctx)
	require.NoError(t, err)
	require.Len(t, cp.Witnesses, 2, "MY and ID countersign TH's checkpoint")
	// TH tells MY's auditor what it countersigned of MY's chain.
	aud := th.Do("POST", "/v1/auditors", th.OperatorToken, map[string]string{"name": "PDPC"})
	require.Equal(t, http.StatusCreated, aud.Status, string(aud.Body))
	r := th.Do("GET", "/v1/audit/witnessed", aud.JSON["token"].(string), nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	var seen []map[string]any
	for _, it := range r.JSON["items"].([]any) {
		seen = append(seen, it.(map[string]any))
	}
	require.True(t, slices.ContainsFunc(seen, func(c map[string]any) bool {
		return c["node"] == "MY" && c["seq"] == float64(myCP.Seq) && c["head"] == myCP.Head
	}), "%v", seen)

	// Each node's bundle verifies offline, with the receipts of what it
	// sent: MY the handoff's, TH its three status messages'.
	var bundle bytes.Buffer
	var myBundle *audit.Bundle
	for _, c := range []struct {
		n        *testnet.Node
		receipts int
	}{{th, 3}, {my, 1}} {
		var buf bytes.Buffer
		require.NoError(t, c.n.AuditExport(ctx, &buf, time.Time{}, time.Time{}))
		b, err := audit.ReadBundle(bytes.NewReader(buf.Bytes()))
		require.NoError(t, err)
		sum, err := auditor.Verify(b, auditor.VerifyOptions{OpenReceipt: federation.OpenReceipt, Node: c.n.Fed.Host().ID().String()})
		require.NoError(t, err, c.n.Country)
		require.True(t, sum.ReceiptsChecked)
		require.Equal(t, 0, sum.ReceiptsMissing, c.n.Country)
		require.Equal(t, c.receipts, sum.Receipts, c.n.Country)
		require.Empty(t, sum.Violations)
		if c.n == my {
			require.GreaterOrEqual(t, sum.Witnessed, 1)
			bundle, myBundle = buf, b
		}
	}

	lines := strings.SplitAfter(bundle.String(), "\n")
	// Edit one field of one entry: caught, naming the entry and its line.
	edited := slices.Clone(lines)
	i := slices.IndexFunc(edited, func(l string) bool { return strings.Contains(l, `"kind":"order.handoff.egress"`) })
	require.Positive(t, i)
	edited[i] = strings.Replace(edited[i], `"peer":"TH"`, `"peer":"ID"`, 1)
	seq := myBundle.Entries[i-1].Seq
	requireVerifyFails(t, strings.Join(edited, ""), fmt.Sprintf("entry %d (line %d): audit chain broken: entry %d was altered", seq, i+1, seq))
	// Drop one entry in the middle.
	dropped := append(slices.Clone(lines[:i]), lines[i+1:]...)
	requireVerifyFails(t, strings.Join(dropped, ""), fmt.Sprintf("entry %d follows entry %d", seq+1, seq-1))
}

func requireVerifyFails(t *testing.T, bundle, want string) {
	t.Helper()
	b, err := audit.ReadBundle(strings.NewReader(bundle))
	if err == nil {
		_, err = auditor.Verify(b, auditor.VerifyOptions{OpenReceipt: federation.OpenReceipt})
	}
	require.Error(t, err)
	require.Contains(t, err.Error(), want)
}

// A node refuses to countersign a checkpoint that rewrites what it
// witnessed, and records the refusal.
func TestAuditWitnessRefusesARewrite(t *testing.T) {
	fed := testnet.Federate(t, "TH", "MY")
	th, my := fed.Nodes["TH"], fed.Nodes["MY"]
	ctx := context.Background()
	_, seller := th.ActiveSeller(testnet.THSeller("Surat Thani Rice & Coffee Co., Ltd.", 3))
	r := th.Do("POST", "/v1/listings", seller, testnet.Listing("Kopi robusta Chumphon coffee", "090111", "120.00"))
	require.Equal(t, http.StatusCreated, r.Status)
	cp, err := th.Checkpoint(ctx)
	require.NoError(t, err)
	require.Len(t, cp.Witnesses, 1)

	key, _, err := federation.Identity(th.Keys.Node)
	require.NoError(t, err)
	forged := &audit.Checkpoint{Node: "TH", PeerID: cp.PeerID, Seq: cp.Seq, Head: strings.Repeat("0", 64), Time: time.Now().UTC()}
	require.NoError(t, audit.SignCheckpoint(key, forged))
	_, err = th.Fed.Witness(ctx, "MY", forged)
	require.ErrorContains(t, err, "two heads for seq")
	older := &audit.Checkpoint{Node: "TH", PeerID: cp.PeerID, Seq: cp.Seq - 1, Head: strings.Repeat("1", 64), Time: time.Now().UTC()}
	require.NoError(t, audit.SignCheckpoint(key, older))
	_, err = th.Fed.Witness(ctx, "MY", older)
	require.ErrorContains(t, err, fmt.Sprintf("after seq %d", cp.Seq))

	testnet.Eventually(t, 5*time.Second, func() bool {
		es, _, err := my.AuditEntries(ctx, audit.Query{Kind: "rejection", Peer: "TH"})
		require.NoError(t, err)
		return slices.ContainsFunc(es, func(e audit.Entry) bool { return strings.HasPrefix(e.Reason, "equivocation: ") })
	}, "MY did not record the refused checkpoint")
	require.ErrorIs(t, my.Store.WitnessPeer(ctx, "TH", forged), store.ErrEquivocation)
}
