package httpapi

import (
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/imtgt/imtgt-node/access"
	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/money"
	"github.com/imtgt/imtgt-node/policy"
	"github.com/imtgt/imtgt-node/sellers"
)

// listingView is a listing on the wire.
type listingView struct {
	ID          string                `json:"id"`
	Origin      string                `json:"origin"`
	Seller      catalog.SellerProfile `json:"seller"`
	Title       string                `json:"title"`
	Description string                `json:"description"`
	HSCode      string                `json:"hs_code"`
	Price       money.Wire            `json:"price"`
	Quantity    int64                 `json:"quantity"`
	ShipFrom    string                `json:"ship_from"`
	Images      []string              `json:"images"`
	Attributes  map[string]string     `json:"attributes"`
	CreatedAt   time.Time             `json:"created_at"`
	UpdatedAt   time.Time             `json:"updated_at"`
	Version     uint64                `json:"version"`
	// Import: may this node's buyers order it (every listing, from the
	// installed policy at the time of the request).
	Import *importView `json:"import,omitempty"`
	// Export: is this node's own listing published to the federation.
	Export *exportView `json:"export,omitempty"`
}

// view is viewListing with this node's import decision and, for its own
// listings, the export status.
func (s *Server) view(l *catalog.Listing, now time.Time) listingView {
	v := viewListing(l)
	v.Import = s.decide(l, now)
	if l.Origin == s.cfg.Node.Country {
		v.Export = &exportView{Published: len(l.Held) == 0, Reasons: l.Held}
		if v.Export.Reasons == nil {
			v.Export.Reasons = []catalog.Hold{}
		}
	}
	return v
}

func (s *Server) views(ls []*catalog.Listing) []listingView {
	now := time.Now()
	out := make([]listingView, 0, len(ls))
	for _, l := range ls {
		out = append(out, s.view(l, now))
	}
	return out
}

func viewListing(l *catalog.Listing) listingView {
	v := listingView{
		ID: l.ID, Origin: l.Origin, Seller: l.Seller, Title: l.Title, Description: l.Description,
		HSCode: l.HSCode, Price: l.Price.ToWire(), Quantity: l.Quantity, ShipFrom: l.ShipFrom,
		Images: l.Images, Attributes: l.Attributes, CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt, Version: l.Version,
	}
	if v.Images == nil {
		v.Images = []string{}
	}
	if v.Attributes == nil {
		v.Attributes = map[string]string{}
	}
	return v
}

// activeSeller returns the calling seller's public profile if it may publish.
func (s *Server) activeSeller(r *http.Request, p *access.Principal) (catalog.SellerProfile, error) {
	sel, err := s.cfg.Sellers.Public(r.Context(), p.Subject)
	if err != nil {
		return catalog.SellerProfile{}, err
	}
	if sel.Status != sellers.StatusActive {
		return catalog.SellerProfile{}, errorf(http.StatusForbidden, "seller_inactive",
			"seller %s is %s: only active sellers can publish (the operator approves sellers)", sel.ID, sel.Status)
	}
	return catalog.SellerProfile{ID: sel.ID, LegalName: sel.LegalName, BusinessID: sel.BusinessID, Region: sel.Region}, nil
}

func (s *Server) createListing(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	var in catalog.Input
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	prof, err := s.activeSeller(r, p)
	if err != nil {
		return err
	}
	key, err := listingKey(r)
	if err != nil {
		return err
	}
	l, replayed, err := s.cfg.Catalog.CreateOnce(r.Context(), prof, in, key)
	if err != nil {
		return err
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.Header().Set("Location", "/v1/listings/"+l.ID)
	writeJSON(w, http.StatusCreated, s.view(l, time.Now()))
	return nil
}

func (s *Server) listListings(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	limit, cursor, err := pageParams(r)
	if err != nil {
		return err
	}
	sellerID := p.Subject
	if p.Role == access.Operator {
		sellerID = r.URL.Query().Get("seller_id")
	}
	page, err := s.cfg.Catalog.Search(catalog.Query{SellerID: sellerID, Origin: s.cfg.Node.Country, Limit: limit, Cursor: cursor})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": s.views(page.Items), "next_cursor": page.NextCursor})
	return nil
}

// ownListing finds a local listing the caller may see: its seller, or the operator.
func (s *Server) ownListing(r *http.Request, p *access.Principal) (*catalog.Listing, error) {
	id := r.PathValue("id")
	l, ok := s.cfg.Catalog.Get(id)
	if !ok || l.Origin != s.cfg.Node.Country {
		return nil, errorf(http.StatusNotFound, "not_found", "listing %s not found", id)
	}
	if p.Role == access.Seller && l.SellerID != p.Subject {
		return nil, errorf(http.StatusForbidden, "not_owner", "listing %s belongs to another seller", id)
	}
	return l, nil
}

func (s *Server) getListing(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	l, err := s.ownListing(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.view(l, time.Now()))
	return nil
}

func (s *Server) updateListing(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	var patch catalog.Patch
	if err := decodeJSON(r, &patch); err != nil {
		return err
	}
	if _, err := s.ownListing(r, p); err != nil {
		return err
	}
	prof, err := s.activeSeller(r, p)
	if err != nil {
		return err
	}
	l, err := s.cfg.Catalog.Update(r.Context(), prof, r.PathValue("id"), patch)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.view(l, time.Now()))
	return nil
}

func (s *Server) deleteListing(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	// A suspended seller may still withdraw its listings: deleting only
	// ever reduces what is published.
	if err := s.cfg.Catalog.Delete(r.Context(), p.Subject, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func importFormat(r *http.Request) string {
	if f := r.URL.Query().Get("format"); f != "" {
		return strings.ToLower(f)
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "text/csv":
		return catalog.FormatCSV
	case "application/x-ndjson", "application/ndjson", "application/jsonl":
		return catalog.FormatNDJSON
	}
	return ""
}

func (s *Server) importListings(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	format := importFormat(r)
	if format != catalog.FormatCSV && format != catalog.FormatNDJSON {
		he := errorf(http.StatusUnsupportedMediaType, "unsupported_format",
			"send Content-Type text/csv or application/x-ndjson (or ?format=csv|ndjson)")
		he.Field = "format"
		return he
	}
	prof, err := s.activeSeller(r, p)
	if err != nil {
		return err
	}
	key, err := listingKey(r)
	if err != nil {
		return err
	}
	rows, refused, err := catalog.ParseImport(r.Body, format, s.cfg.Node.Currency)
	if err != nil {
		return err
	}
	rep, replayed, err := s.cfg.Catalog.ImportOnce(r.Context(), prof, rows, refused, key)
	if err != nil {
		return err
	}
	if replayed {
		s.log.Info("listings import replayed", "seller", prof.ID, "imported", rep.Imported, "failed", rep.Failed)
		w.Header().Set("Idempotent-Replayed", "true")
	} else {
		s.log.Info("listings imported", "seller", prof.ID, "imported", rep.Imported, "failed", rep.Failed)
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (s *Server) search(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	qs := r.URL.Query()
	limit, cursor, err := pageParams(r)
	if err != nil {
		return err
	}
	q := catalog.Query{
		Text: qs.Get("q"), HS: qs.Get("hs"), Origin: strings.ToUpper(qs.Get("origin")),
		Region: strings.ToUpper(qs.Get("region")), Limit: limit, Cursor: cursor,
	}
	for _, f := range []struct {
		name string
		dst  **money.Amount
	}{{"min_price", &q.MinPrice}, {"max_price", &q.MaxPrice}} {
		v := qs.Get(f.name)
		if v == "" {
			continue
		}
		a, err := money.Parse(v, s.cfg.Node.Currency)
		if err != nil {
			he := errorf(http.StatusBadRequest, "bad_price", "%s must be a decimal amount in %s: %v", f.name, s.cfg.Node.Currency, err)
			he.Field = f.name
			return he
		}
		*f.dst = &a
	}
	if s.cfg.Policies != nil {
		p, _ := s.cfg.Policies.Policy()
		q.Convert = func(a money.Amount, _ string) (money.Amount, bool) { return p.ConvertAmount(a) }
		switch v := qs.Get("orderable"); v {
		case "":
		case "true", "false":
			want, now := v == "true", time.Now()
			q.Filter = func(l *catalog.Listing) bool {
				return policy.Orderable(p, tradeListing(l), now) == want
			}
		default:
			he := errorf(http.StatusBadRequest, "bad_orderable", "orderable must be true or false")
			he.Field = "orderable"
			return he
		}
	}
	if q.HS != "" && (len(q.HS) > 6 || strings.Trim(q.HS, "0123456789") != "") {
		he := errorf(http.StatusBadRequest, "bad_hs", "hs must be an HS code prefix of up to 6 digits")
		he.Field = "hs"
		return he
	}
	page, err := s.cfg.Catalog.Search(q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": s.views(page.Items), "next_cursor": page.NextCursor})
	return nil
}

func (s *Server) catalogListing(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	id := r.PathValue("id")
	l, ok := s.cfg.Catalog.Get(id)
	if !ok {
		return errorf(http.StatusNotFound, "not_found", "listing %s not found", id)
	}
	writeJSON(w, http.StatusOK, s.view(l, time.Now()))
	return nil
}

// listingKey reads the optional Idempotency-Key of a listing create or
// import: "" when the header is absent; sent, it must be 1 to 200
// characters, as for orders.
func listingKey(r *http.Request) (string, error) {
	if len(r.Header.Values("Idempotency-Key")) == 0 {
		return "", nil
	}
	key := strings.TrimSpace(r.Header.Get("Idempotency-Key"))
	if key == "" || len(key) > catalog.MaxKeyLength {
		he := errorf(http.StatusBadRequest, "idempotency_key", "the Idempotency-Key header, when sent, must be 1 to %d characters: retrying with the same key never stores the listings twice", catalog.MaxKeyLength)
		he.Field = "Idempotency-Key"
		return "", he
	}
	return key, nil
}
