package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/configs"
	"github.com/imtgt/imtgt-node/httpapi"
	"github.com/imtgt/imtgt-node/keys"
	"github.com/imtgt/imtgt-node/membership"
	"github.com/imtgt/imtgt-node/policy"
	"github.com/imtgt/imtgt-node/store"
)

// ErrPolicy is wrapped by every refused policy install.
var ErrPolicy = errors.New("policy not installed")

// policyState is the installed policy and its exact bytes.
type policyState struct {
	p   *policy.Policy
	raw []byte
}

// agencyKey is the key a policy of this node's country must be signed by:
// the country's governance key in the installed manifest, or, before the
// node joins a federation, the agency's own.
func agencyKey(manifestRaw []byte, ks *keys.Set, country string) (ed25519.PublicKey, error) {
	if manifestRaw != nil {
		m, err := membership.Parse(manifestRaw)
		if err != nil {
			return nil, err
		}
		if k, ok := m.GovernancePublicKey(country); ok {
			return k, nil
		}
	}
	return ks.Governance.Public().(ed25519.PublicKey), nil
}

// checkPolicy parses and verifies a policy file for this node, and that
// it may replace current (nil if none).
func checkPolicy(name string, raw []byte, current *policy.Policy, key ed25519.PublicKey, country string) (*policy.Policy, error) {
	p, err := policy.Parse(name, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	if p.Country != country {
		return nil, fmt.Errorf("%w: the policy is %s's; this node is %s's", ErrPolicy, p.Country, country)
	}
	if err := policy.Verify(raw, p, key); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	if current != nil && p.Version <= current.Version {
		return nil, fmt.Errorf("%w: version %d is not newer than the installed version %d", ErrPolicy, p.Version, current.Version)
	}
	return p, nil
}

// signedDefaultPolicy returns the country's default policy signed with the
// agency's governance key (what init installs).
func signedDefaultPolicy(country string, gov ed25519.PrivateKey) ([]byte, error) {
	raw, err := configs.DefaultPolicy(country)
	if err != nil {
		return nil, err
	}
	return policy.Sign(raw, country, gov)
}

// Policy returns the installed policy (httpapi) and its exact bytes.
func (n *Node) Policy() (*policy.Policy, []byte) {
	st := n.policy.Load()
	return st.p, st.raw
}

// InstallPolicy checks, persists and applies a signed policy without a
// restart: quotes and import decisions use it at once, and local listings
// whose export status changed are withdrawn or published.
func (n *Node) InstallPolicy(ctx context.Context, raw []byte) (*policy.Policy, error) {
	n.installMu.Lock()
	defer n.installMu.Unlock()
	_, mraw := n.Fed.Manifest()
	key, err := agencyKey(mraw, n.Keys, n.Config.Node.Country)
	if err != nil {
		return nil, err
	}
	cur, _ := n.Policy()
	p, err := checkPolicy("policy", raw, cur, key, n.Config.Node.Country)
	if err != nil {
		return nil, err
	}
	if err := n.Store.SavePolicy(raw, p.Version, policyInstalled(p, raw, "operator (API)")); err != nil {
		return nil, err
	}
	n.policy.Store(&policyState{p: p, raw: raw})
	n.Fed.PolicyChanged() // the members are offered it
	if n.Catalog.Reconciling() {
		// Publishing waits for the reconciliation after a restore, which
		// applies the export rules in force when it ends (finishReconcile).
		n.log.Info("policy installed; its export rules apply when the reconciliation ends", "version", p.Version)
		return p, nil
	}
	changed, err := n.Catalog.Reexport(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy installed, but re-applying export rules failed: %w", err)
	}
	n.log.Info("policy installed", "version", p.Version, "listings_export_changed", changed)
	return p, nil
}

// exportHolds applies the installed export rules to a local listing.
func (n *Node) exportHolds(l *catalog.Listing) []catalog.Hold {
	p, _ := n.Policy()
	d := policy.ExportDecision(p, l.HSCode, time.Now())
	if d.Orderable {
		return nil
	}
	var out []catalog.Hold
	for _, r := range d.Reasons {
		out = append(out, catalog.Hold{Rule: r.Rule, Source: r.Source, Message: r.Message})
	}
	return out
}

// PolicyInstallResult says how a policy was installed.
type PolicyInstallResult struct {
	Policy  *policy.Policy
	Running bool
}

// InstallPolicyFile is "imtgt-node policy install": through the running
// node's API if it runs, else straight into the stopped node's store.
func InstallPolicyFile(ctx context.Context, dir, name string, raw []byte) (*PolicyInstallResult, error) {
	res := &PolicyInstallResult{}
	err := onNode(dir, func(cfg Config) error {
		var out struct{ Version uint64 }
		if err := callAPI(ctx, dir, cfg, "POST", "/v1/policy", map[string]string{"policy": string(raw)}, &out, ErrPolicy); err != nil {
			return err
		}
		p, err := policy.Parse(name, raw)
		res.Policy, res.Running = p, true
		return err
	}, func(cfg Config, db *store.DB) error {
		ks, err := keys.Load(filepath.Join(dir, KeysDir))
		if err != nil {
			return err
		}
		mraw, err := db.Manifest()
		if err != nil {
			return err
		}
		key, err := agencyKey(mraw, ks, cfg.Node.Country)
		if err != nil {
			return err
		}
		var cur *policy.Policy
		if craw, err := db.Policy(); err != nil {
			return err
		} else if craw != nil {
			if cur, err = policy.Parse("installed policy", craw); err != nil {
				return err
			}
		}
		p, err := checkPolicy(name, raw, cur, key, cfg.Node.Country)
		if err != nil {
			return err
		}
		res.Policy = p
		return db.SavePolicy(raw, p.Version, policyInstalled(p, raw, "operator (CLI, node stopped)"))
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// VerifyPolicyFile is "imtgt-node policy verify": the file parses and is
// signed by the agency key this node would check it against.
func VerifyPolicyFile(dir, name string, raw []byte) (*policy.Policy, error) {
	cfg, ks, err := loadDir(dir)
	if err != nil {
		return nil, err
	}
	mraw, err := manifestOf(dir)
	if err != nil {
		return nil, err
	}
	key, err := agencyKey(mraw, ks, cfg.Node.Country)
	if err != nil {
		return nil, err
	}
	p, err := policy.Parse(name, raw)
	if err != nil {
		return nil, err
	}
	if err := policy.Verify(raw, p, key); err != nil {
		return p, err
	}
	return p, nil
}

// ShowPolicy returns the signed policy installed on the node in dir.
func ShowPolicy(ctx context.Context, dir string) ([]byte, error) {
	var raw []byte
	err := onNode(dir, func(cfg Config) error {
		var out struct {
			Policy string `json:"policy"`
		}
		if err := callAPI(ctx, dir, cfg, "GET", "/v1/policy", nil, &out, ErrPolicy); err != nil {
			return err
		}
		raw = []byte(out.Policy)
		return nil
	}, func(_ Config, db *store.DB) (err error) {
		raw, err = db.Policy()
		return err
	})
	return raw, err
}

// ErrNoListing is returned by ExplainListing for an unknown listing.
var ErrNoListing = errors.New("no such listing in the catalog")

// ExplainListing is "imtgt-node policy explain": the import decision and
// quote of a listing for this node's buyers, from the running node's API,
// or computed beside a stopped node from its store.
func ExplainListing(ctx context.Context, dir, id string, quantity int64, region string) (*httpapi.QuoteView, error) {
	var q *httpapi.QuoteView
	err := onNode(dir, func(cfg Config) error {
		q = &httpapi.QuoteView{}
		path := fmt.Sprintf("/v1/catalog/listings/%s/quote?quantity=%d&region=%s", url.PathEscape(id), quantity, url.QueryEscape(region))
		return callAPI(ctx, dir, cfg, "GET", path, nil, q, ErrNoListing)
	}, func(_ Config, db *store.DB) error {
		raw, err := db.Policy()
		if err != nil {
			return err
		}
		p, err := policy.Parse("installed policy", raw)
		if err != nil {
			return err
		}
		l, ok, err := db.Listing(context.Background(), id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: %s", ErrNoListing, id)
		}
		q, err = httpapi.Quote(p, l, quantity, region, time.Now())
		return err
	})
	if err != nil {
		return nil, err
	}
	return q, nil
}
