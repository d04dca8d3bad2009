package httpapi

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/imtgt/imtgt-node/access"
	"github.com/imtgt/imtgt-node/aftersale"
	"github.com/imtgt/imtgt-node/orders"
)

// After-sale issues (docs/OPERATIONS.md, "After-sale issues"). A
// marketplace opens an issue on its buyer's order at its own node; the
// issue crosses to the seller's node, where the seller answers it. Who may
// act where follows the order: a marketplace sees the issues of its own
// orders on the buyer's node, a seller those of its orders on the seller's
// node, the operator every issue its node holds. An issue the caller may
// not see is not found (404), never forbidden, so IDs leak nothing.

// issueView is the JSON of an issue: the issue itself (the same on both
// nodes, as the buyer country's policy lets it cross) and where the
// caller's node stands.
type issueView struct {
	*aftersale.Issue
	// Side is this node's part in the order: buyer or seller.
	Side orders.Side `json:"side"`
	// OrderStatus is the order's status on this node.
	OrderStatus orders.Status `json:"order_status"`
	// Escalation is the buyer country's escalation body, on the buyer's
	// node, once the issue is escalated or decided.
	Escalation *escalationView `json:"escalation,omitempty"`
}

type escalationView struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

// issueActor is who p acts as on issues.
func issueActor(p *access.Principal) orders.Actor {
	switch p.Role {
	case access.Marketplace:
		return orders.Actor{Role: aftersale.ByMarketplace, ID: p.Subject}
	case access.Seller:
		return orders.Actor{Role: aftersale.BySeller, ID: p.Subject}
	}
	return orders.Actor{Role: aftersale.ByOperator}
}

func (s *Server) viewIssue(o *orders.Order, is *aftersale.Issue) issueView {
	v := issueView{Issue: is, Side: o.Side, OrderStatus: o.Status}
	if o.Side == orders.SideBuyer && (is.Status == aftersale.StatusEscalated || is.Decision != nil) && s.cfg.Policies != nil {
		if p, _ := s.cfg.Policies.Policy(); p != nil {
			if c, _ := p.Consumer(); c.Escalation.ID != "" {
				v.Escalation = &escalationView{ID: c.Escalation.ID, Name: c.Escalation.Name, URL: c.Escalation.URL, Source: c.Escalation.Source}
			}
		}
	}
	return v
}

// openIssueReply is the reply to POST /v1/orders/{id}/issues: the fields
// the issue's contract names at the top, the whole issue beside them.
type openIssueReply struct {
	ID        string           `json:"id"`
	Status    aftersale.Status `json:"status"`
	RespondBy time.Time        `json:"respond_by"`
	ResolveBy time.Time        `json:"resolve_by"`
	Issue     issueView        `json:"issue"`
}

func (s *Server) openIssue(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	key := strings.TrimSpace(r.Header.Get("Idempotency-Key"))
	if key == "" || len(key) > 200 {
		he := errorf(http.StatusBadRequest, "idempotency_key", "the Idempotency-Key header is required (at most 200 characters): retrying with the same key never opens a second issue")
		he.Field = "Idempotency-Key"
		return he
	}
	var in aftersale.OpenInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	orderID := r.PathValue("id")
	is, replayed, err := s.cfg.Orders.OpenIssue(r.Context(), p.Subject, orderID, key, in)
	if err != nil {
		return err
	}
	o, is, err := s.cfg.Orders.Issue(r.Context(), issueActor(p), is.ID)
	if err != nil {
		return err
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	} else {
		s.log.Info("issue opened", "issue", is.ID, "order", orderID, "marketplace", p.Subject, "category", is.Category)
	}
	writeJSON(w, http.StatusCreated, openIssueReply{ID: is.ID, Status: is.Status, RespondBy: is.RespondBy, ResolveBy: is.ResolveBy,
		Issue: s.viewIssue(o, is)})
	return nil
}

func (s *Server) listIssues(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	limit, cursor, err := pageParams(r)
	if err != nil {
		return err
	}
	if cursor != "" && !aftersale.ValidID(cursor) {
		he := errorf(http.StatusBadRequest, "bad_cursor", "cursor %q is not an issue ID: pass the next_cursor of the previous page", cursor)
		he.Field = "cursor"
		return he
	}
	var keep func(*aftersale.Issue) bool
	if st := aftersale.Status(r.URL.Query().Get("status")); st != "" {
		if !aftersale.ValidStatus(st) {
			he := errorf(http.StatusBadRequest, "bad_status", "status %q is not one of %v", st, aftersale.Statuses)
			he.Field = "status"
			return he
		}
		keep = func(is *aftersale.Issue) bool { return is.Status == st }
	}
	refs, next, err := s.cfg.Orders.Issues(r.Context(), issueActor(p), keep, cursor, limit)
	if err != nil {
		return err
	}
	items := make([]issueView, 0, len(refs))
	for _, ref := range refs {
		items = append(items, s.viewIssue(ref.Order, ref.Issue))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "next_cursor": next})
	return nil
}

func (s *Server) getIssue(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	o, is, err := s.cfg.Orders.Issue(r.Context(), issueActor(p), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.viewIssue(o, is))
	return nil
}

// writeIssue answers a change with the issue as it now is.
func (s *Server) writeIssue(w http.ResponseWriter, r *http.Request, p *access.Principal, status int, id string) error {
	o, is, err := s.cfg.Orders.Issue(r.Context(), issueActor(p), id)
	if err != nil {
		return err
	}
	writeJSON(w, status, s.viewIssue(o, is))
	return nil
}

func (s *Server) respondIssue(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	var in aftersale.ResponseInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if err := aftersale.CheckResponse(in); err != nil {
		return err
	}
	id := r.PathValue("id")
	if _, err := s.cfg.Orders.RespondIssue(r.Context(), issueActor(p), id, in); err != nil {
		return err
	}
	s.log.Info("issue response", "issue", id, string(p.Role), p.Subject, "action", in.Action)
	return s.writeIssue(w, r, p, http.StatusOK, id)
}

func (s *Server) escalateIssue(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	if r.ContentLength != 0 {
		var req struct{}
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
	}
	id := r.PathValue("id")
	if _, err := s.cfg.Orders.EscalateIssue(r.Context(), p.Subject, id); err != nil {
		return err
	}
	s.log.Info("issue escalated", "issue", id, "marketplace", p.Subject)
	return s.writeIssue(w, r, p, http.StatusOK, id)
}

func (s *Server) decideIssue(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	var in aftersale.DecisionInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	id := r.PathValue("id")
	if _, err := s.cfg.Orders.DecideIssue(r.Context(), id, in); err != nil {
		return err
	}
	s.log.Info("issue decided", "issue", id, "outcome", in.Outcome)
	return s.writeIssue(w, r, p, http.StatusOK, id)
}

func (s *Server) refundIssue(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	var in aftersale.RefundInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	id := r.PathValue("id")
	if _, err := s.cfg.Orders.RefundIssue(r.Context(), p.Subject, id, in); err != nil {
		return err
	}
	s.log.Info("issue refund reported", "issue", id, "marketplace", p.Subject, "amount", in.Amount, "currency", in.Currency)
	return s.writeIssue(w, r, p, http.StatusCreated, id)
}

// issueError maps the after-sale errors to their status and code.
func issueError(err error) *httpError {
	var te *aftersale.TransitionError
	switch {
	case errors.As(err, &te):
		return errorf(http.StatusConflict, "illegal_transition", "%s", err.Error())
	case errors.Is(err, aftersale.ErrIllegalTransition):
		return errorf(http.StatusConflict, "illegal_transition", "%s", err.Error())
	case errors.Is(err, aftersale.ErrNotEligible):
		return errorf(http.StatusConflict, "not_eligible", "%s", err.Error())
	case errors.Is(err, aftersale.ErrTooEarly):
		return errorf(http.StatusConflict, "too_early", "%s", err.Error())
	case errors.Is(err, orders.ErrTooManyIssues):
		return errorf(http.StatusConflict, "too_many_issues", "%s", err.Error())
	case errors.Is(err, aftersale.ErrForbidden):
		return errorf(http.StatusForbidden, "forbidden", "%s", err.Error())
	case errors.Is(err, orders.ErrIssueNotFound):
		return errorf(http.StatusNotFound, "not_found", "%s", err.Error())
	}
	return nil
}
