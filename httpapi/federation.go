package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/imtgt/imtgt-node/access"
	"github.com/imtgt/imtgt-node/federation"
	"github.com/imtgt/imtgt-node/membership"
)

// Federation is the node's federation side, as the API needs it.
type Federation interface {
	Peers(ctx context.Context) []federation.PeerStatus
	// InstallManifest checks, persists and applies a manifest.
	InstallManifest(ctx context.Context, raw, psk []byte) (*membership.Manifest, error)
	// Manifest returns the installed manifest and its exact bytes.
	Manifest() (*membership.Manifest, []byte)
	// PeerPolicies lists the policy of every member this node holds, its
	// own included, by country.
	PeerPolicies() []PeerPolicyView
}

// PeerPolicyView is one member's policy as GET /v1/federation/policies
// shows it: what the seller side of an order prices that country's
// buyers with.
type PeerPolicyView struct {
	Country   string `json:"country"`
	Version   uint64 `json:"version"`
	Effective string `json:"effective"`
	Expires   string `json:"expires,omitempty"`
	// SHA256 is the hex SHA-256 of the signed file's exact bytes: compare
	// it with the member's own (imtgt-node policy show | sha256sum).
	SHA256 string `json:"sha256"`
	// Own marks this node's own policy.
	Own bool `json:"own"`
}

func (s *Server) peerPolicies(w http.ResponseWriter, _ *http.Request, _ *access.Principal) error {
	writeJSON(w, http.StatusOK, map[string]any{"items": s.cfg.Federation.PeerPolicies()})
	return nil
}

type installRequest struct {
	Manifest string `json:"manifest"`
	PSK      string `json:"psk"`
}

type manifestSummary struct {
	Federation string   `json:"federation"`
	Version    uint64   `json:"version"`
	Expires    string   `json:"expires"`
	Threshold  int      `json:"threshold"`
	Members    []string `json:"members"`
	Signers    []string `json:"signers"`
}

func summarize(m *membership.Manifest) manifestSummary {
	s := manifestSummary{Federation: m.Federation, Version: m.Version, Expires: m.Expires.UTC().Format(time.RFC3339),
		Threshold: m.Threshold, Members: []string{}, Signers: m.ValidSigners()}
	for _, mem := range m.Members {
		s.Members = append(s.Members, mem.Country)
	}
	if s.Signers == nil {
		s.Signers = []string{}
	}
	return s
}

func (s *Server) peers(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	writeJSON(w, http.StatusOK, map[string]any{"items": s.cfg.Federation.Peers(r.Context())})
	return nil
}

func (s *Server) installManifest(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	var req installRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Manifest == "" || req.PSK == "" {
		he := errorf(http.StatusBadRequest, "required", "manifest and psk are required")
		he.Field = "manifest"
		return he
	}
	m, err := s.cfg.Federation.InstallManifest(r.Context(), []byte(req.Manifest), []byte(req.PSK))
	if err != nil {
		if errors.Is(err, s.cfg.InstallRefused) {
			return errorf(http.StatusUnprocessableEntity, "manifest_refused", "%s", err.Error())
		}
		return err
	}
	writeJSON(w, http.StatusOK, summarize(m))
	return nil
}

func (s *Server) getManifest(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	m, raw := s.cfg.Federation.Manifest()
	if m == nil {
		return errorf(http.StatusNotFound, "not_found", "no manifest installed")
	}
	writeJSON(w, http.StatusOK, map[string]any{"summary": summarize(m), "manifest": string(raw)})
	return nil
}
