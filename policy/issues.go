package policy

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/imtgt/imtgt-node/aftersale"
	"github.com/imtgt/imtgt-node/federation/pb"
)

// KindIssue is an after-sale issue about an order; PurposeIssue its
// crossing between the buyer's and the seller's nodes.
const (
	KindIssue            = "issue"
	PurposeIssue Purpose = "issue"
)

// optionalKinds are record kinds a policy may leave out of field_classes
// altogether: a policy written before the kind existed still loads, and
// none of its records may cross (no rule can name a kind the policy does
// not classify). A policy that names the kind must classify every field.
var optionalKinds = map[string]bool{KindIssue: true}

// IssueEvent is one change of an issue as a node holds it, before the
// policy projects it for the other side. The buyer's node sends the issue
// as it is after the change (Issue); the seller's node the response it made
// (Input).
type IssueEvent struct {
	OrderID string
	IssueID string // the issue's ID (taken from Issue when that is set)
	Seq     uint64
	Event   string
	Actor   string
	At      time.Time
	BasedOn uint64
	Issue   *aftersale.Issue
	Input   *aftersale.ResponseInput
	// Consent is the buyer's recorded consent to the order's cross-border
	// transfer: a rule on the basis of consent needs it.
	Consent bool
}

// projectIssue keeps the issue's fields the rules allow. The issue and
// order IDs and the event always travel (they name the record and what
// happened to it); the issue's other fields, and the response, only as a
// rule allows them.
func (p *Policy) projectIssue(e *IssueEvent, destination string) (*pb.IssueMessage, *Transfer, error) {
	ct, err := p.allowed(KindIssue, destination, PurposeIssue)
	if err != nil {
		return nil, nil, err
	}
	if ct.basis == BasisConsent && !e.Consent {
		return nil, nil, fmt.Errorf("%w (rule %s of the %s policy)", ErrNoConsent, ct.rules[0].ID, p.Country)
	}
	f := ct.fields
	out := &pb.IssueMessage{OrderId: e.OrderID, IssueId: e.IssueID, Seq: e.Seq, Event: e.Event, Actor: e.Actor, AtUnixMs: e.At.UnixMilli(), BasedOn: e.BasedOn}
	sent := map[string]bool{}
	if e.Issue != nil {
		out.IssueId = e.Issue.ID
		c := projectIssueFields(e.Issue, f, sent)
		if out.Issue, err = json.Marshal(c); err != nil {
			return nil, nil, fmt.Errorf("policy: issue %s: %w", e.Issue.ID, err)
		}
	}
	if e.Input != nil {
		if !f["responses"] {
			return nil, nil, fmt.Errorf("%w: the response to issue of order %s: field responses to %s for %s under %s policy version %d",
				ErrNoRule, e.OrderID, destination, PurposeIssue, p.Country, p.Version)
		}
		if out.Input, err = json.Marshal(e.Input); err != nil {
			return nil, nil, fmt.Errorf("policy: a response to an issue of order %s: %w", e.OrderID, err)
		}
		sent["responses"] = true
	}
	t := p.transfer(ct, KindIssue, destination, PurposeIssue)
	// The evidence names what crossed, not all the rule allows: an empty
	// description or no refunds yet did not cross.
	t.Fields = nil
	for _, name := range slices.Sorted(maps.Keys(sent)) {
		t.Fields = append(t.Fields, KindIssue+"."+name)
	}
	return out, t, nil
}

// projectIssueFields copies is with the fields f does not allow left
// empty, noting in sent the allowed fields that hold something.
func projectIssueFields(is *aftersale.Issue, f map[string]bool, sent map[string]bool) *aftersale.Issue {
	c := &aftersale.Issue{ID: is.ID, OrderID: is.OrderID}
	keep := func(name string, set bool, copyIt func()) {
		if f[name] {
			copyIt()
			if set {
				sent[name] = true
			}
		}
	}
	keep("id", true, func() {})
	keep("order_id", true, func() {})
	keep("marketplace_id", is.MarketplaceID != "", func() { c.MarketplaceID = is.MarketplaceID })
	keep("parties", true, func() { c.BuyerCountry, c.SellerCountry, c.SellerID = is.BuyerCountry, is.SellerCountry, is.SellerID })
	keep("category", is.Category != "", func() { c.Category = is.Category })
	keep("description", is.Description != "", func() { c.Description = is.Description })
	keep("items", len(is.Items) > 0, func() { c.Items = is.Items })
	keep("remedy_requested", is.RemedyRequested != "", func() { c.RemedyRequested = is.RemedyRequested })
	keep("attachments", len(is.Attachments) > 0, func() { c.Attachments = is.Attachments })
	keep("status", is.Status != "", func() { c.Status = is.Status })
	keep("deadlines", true, func() { c.RespondBy, c.ResolveBy = is.RespondBy, is.ResolveBy })
	keep("remedy", is.Remedy != nil, func() { c.Remedy = is.Remedy })
	keep("responses", len(is.Responses) > 0, func() { c.Responses = is.Responses })
	keep("refunds", len(is.Refunds) > 0, func() { c.Refunds = is.Refunds })
	keep("decision", is.Decision != nil, func() { c.Decision = is.Decision })
	keep("history", len(is.History) > 0, func() { c.History = is.History })
	keep("created_at", true, func() { c.CreatedAt, c.UpdatedAt = is.CreatedAt, is.UpdatedAt })
	return c
}
