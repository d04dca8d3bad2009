package httpapi

import (
	"net/http"
	"time"

	"github.com/imtgt/imtgt-node/access"
	"github.com/imtgt/imtgt-node/sellers"
)

// sellerPublic is what anyone with a token sees of a seller.
type sellerPublic struct {
	ID         string          `json:"id"`
	LegalName  string          `json:"legal_name"`
	BusinessID string          `json:"business_id"`
	Region     string          `json:"region"`
	Status     sellers.Status  `json:"status"`
	Contact    sellers.Contact `json:"contact"`
}

// sellerFull is what the seller itself and the operator see.
type sellerFull struct {
	sellerPublic
	Owner       sellers.Owner       `json:"owner"`
	BankAccount sellers.BankAccount `json:"bank_account"`
	CreatedAt   time.Time           `json:"created_at"`
	UpdatedAt   time.Time           `json:"updated_at"`
}

func publicSeller(s *sellers.Seller) sellerPublic {
	return sellerPublic{ID: s.ID, LegalName: s.LegalName, BusinessID: s.BusinessID, Region: s.Region, Status: s.Status, Contact: s.Contact}
}

func fullSeller(s *sellers.Seller) sellerFull {
	return sellerFull{sellerPublic: publicSeller(s), Owner: s.Personal.Owner, BankAccount: s.Personal.BankAccount, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

func (s *Server) registerSeller(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	var reg sellers.Registration
	if err := decodeJSON(r, &reg); err != nil {
		return err
	}
	sel, token, err := s.cfg.Sellers.Register(r.Context(), reg)
	if err != nil {
		return err
	}
	s.log.Info("seller registered", "seller", sel.ID)
	// Registration needs no token: the registrant is the new seller.
	who := actor(p, "seller "+sel.ID+" (self-registration)")
	s.record(r, sellerEntry(sel.ID, "registered, "+string(sel.Status), who), tokenEntry(access.Seller, sel.ID, who))
	writeJSON(w, http.StatusCreated, map[string]any{"id": sel.ID, "status": sel.Status, "token": token})
	return nil
}

func (s *Server) getSeller(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	sel, err := s.cfg.Sellers.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if p.Role == access.Operator || (p.Role == access.Seller && p.Subject == sel.ID) {
		writeJSON(w, http.StatusOK, fullSeller(sel))
		return nil
	}
	writeJSON(w, http.StatusOK, publicSeller(sel))
	return nil
}

func (s *Server) listSellers(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	limit, cursor, err := pageParams(r)
	if err != nil {
		return err
	}
	status := sellers.Status(r.URL.Query().Get("status"))
	if status != "" && !sellers.ValidStatus(status) {
		he := errorf(http.StatusBadRequest, "bad_status", "status must be pending, active or suspended")
		he.Field = "status"
		return he
	}
	list, next, err := s.cfg.Sellers.List(r.Context(), status, cursor, limit)
	if err != nil {
		return err
	}
	items := make([]sellerFull, 0, len(list))
	for _, sel := range list {
		items = append(items, fullSeller(sel))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "next_cursor": next})
	return nil
}

func (s *Server) approveSeller(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	sel, err := s.cfg.Sellers.Approve(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	s.log.Info("seller approved", "seller", sel.ID)
	s.record(r, sellerEntry(sel.ID, "approved", actor(p, "")))
	writeJSON(w, http.StatusOK, fullSeller(sel))
	return nil
}

func (s *Server) suspendSeller(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	sel, err := s.cfg.Sellers.Suspend(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	s.log.Info("seller suspended", "seller", sel.ID)
	s.record(r, sellerEntry(sel.ID, "suspended", actor(p, "")))
	writeJSON(w, http.StatusOK, fullSeller(sel))
	return nil
}
