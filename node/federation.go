package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/imtgt/imtgt-node/federation"
	"github.com/imtgt/imtgt-node/keys"
	"github.com/imtgt/imtgt-node/membership"
	"github.com/imtgt/imtgt-node/store"
)

// PSKFile is the federation key inside the keys directory.
const PSKFile = "swarm.key"

// ErrInstall is wrapped by every refused manifest install.
var ErrInstall = errors.New("manifest not installed")

// MemberDescriptor returns this node's member descriptor: what an agency
// sends the others so they can name it in a manifest. It reads only the
// config and keys, so it works while the node runs.
func MemberDescriptor(dir string) (membership.Member, error) {
	cfg, err := LoadConfig(filepath.Join(dir, ConfigFile))
	if err != nil {
		return membership.Member{}, err
	}
	ks, err := keys.Load(filepath.Join(dir, KeysDir))
	if err != nil {
		return membership.Member{}, err
	}
	_, id, err := federation.Identity(ks.Node)
	if err != nil {
		return membership.Member{}, err
	}
	return membership.Member{
		Country:       cfg.Node.Country,
		Agency:        cfg.Node.Name,
		PeerID:        id.String(),
		Addrs:         slices.Clone(cfg.P2P.Addrs()),
		GovernanceKey: base64.StdEncoding.EncodeToString(ks.Governance.Public().(ed25519.PublicKey)),
	}, nil
}

// checkManifestFor checks that next may be installed on the node with
// these keys and country, replacing current (nil if none).
func checkManifestFor(current []byte, next []byte, ks *keys.Set, country string, now time.Time) (*membership.Manifest, error) {
	m, err := membership.Parse(next)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInstall, err)
	}
	var cur *membership.Manifest
	if current != nil {
		if cur, err = membership.Parse(current); err != nil {
			return nil, fmt.Errorf("installed manifest: %w", err)
		}
	}
	if err := membership.CheckInstall(cur, m, now); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInstall, err)
	}
	_, id, err := federation.Identity(ks.Node)
	if err != nil {
		return nil, err
	}
	me, ok := m.Member(country)
	if !ok || me.PeerID != id.String() {
		return nil, fmt.Errorf("%w: this node (%s, %s) is not a member of the manifest", ErrInstall, country, id)
	}
	return m, nil
}

// readPSK returns the installed federation key file, or nil.
func readPSK(dir string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, KeysDir, PSKFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// pskAAD binds the sealed federation key in a shared store to its use.
var pskAAD = []byte("federation key")

// loadPSK returns the federation key: the file in dir, or, on a store
// replicas share, the one another replica installed (sealed with the data
// key every replica holds), which it then writes to dir for the next start.
func loadPSK(dir string, db *store.DB, data *keys.DataKey) ([]byte, error) {
	b, err := readPSK(dir)
	if err != nil || !db.Shared() {
		return b, err
	}
	sealed, err := db.FederationKey()
	if err != nil {
		return nil, err
	}
	if b != nil {
		if sealed == nil {
			// Installed before the store kept it (or moved here by
			// store migrate): share it now for the other replicas.
			err = sharePSK(db, data, b)
		}
		return b, err
	}
	if sealed == nil {
		return nil, nil
	}
	b, err = data.Open(sealed, pskAAD)
	if err != nil {
		return nil, fmt.Errorf("the federation key in the store does not open with %s: %w", filepath.Join(dir, KeysDir, keys.DataKeyFile), err)
	}
	if err := writePSK(dir, b); err != nil {
		return nil, err
	}
	return b, nil
}

// sharePSK puts the federation key into a shared store, sealed, before the
// manifest that needs it: a replica that sees the manifest finds the key.
func sharePSK(db *store.DB, data *keys.DataKey, psk []byte) error {
	if !db.Shared() {
		return nil
	}
	return db.SaveFederationKey(data.Seal(psk, pskAAD))
}

// writePSK writes the federation key atomically with mode 0600.
func writePSK(dir string, psk []byte) error {
	path := filepath.Join(dir, KeysDir, PSKFile)
	tmp := path + ".tmp"
	os.Remove(tmp)
	if err := keys.WriteFileExclusive(tmp, psk); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// InstallManifest is the running node's half of "federation install": it
// checks, persists and applies a manifest without a restart.
func (n *Node) InstallManifest(ctx context.Context, raw, psk []byte) (*membership.Manifest, error) {
	n.installMu.Lock()
	defer n.installMu.Unlock()
	key, err := federation.ParsePSK(psk)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInstall, err)
	}
	current, err := n.Store.Manifest()
	if err != nil {
		return nil, err
	}
	m, err := checkManifestFor(current, raw, n.Keys, n.Config.Node.Country, time.Now())
	if err != nil {
		return nil, err
	}
	old, err := readPSK(n.Dir)
	if err != nil {
		return nil, err
	}
	if old != nil && !bytes.Equal(bytes.TrimSpace(old), bytes.TrimSpace(psk)) && n.Fed.Host() != nil {
		return nil, fmt.Errorf("%w: the federation key differs from the one this running node uses; stop the node, install, then start it", ErrInstall)
	}
	if err := writePSK(n.Dir, psk); err != nil {
		return nil, err
	}
	if err := sharePSK(n.Store, n.Keys.Data, psk); err != nil {
		return nil, err
	}
	if err := n.Store.SaveManifest(raw, manifestInstalled(m, raw, "operator (API)")); err != nil {
		return nil, err
	}
	n.log.Info("manifest installed", "version", m.Version, "members", len(m.Members))
	if err := n.Fed.Install(m, raw, key); err != nil {
		return nil, err
	}
	return m, nil
}

// saveReceivedManifest persists a manifest a peer spread to us. Two
// members may offer the same version at once, and the federation checks
// each offer against the manifest it applied before either was saved: so
// the offer is checked again here, against the stored manifest, under the
// install lock. A version already installed is refused (and not applied),
// rather than recorded twice in the audit chain and the history.
func (n *Node) saveReceivedManifest(raw []byte, m *membership.Manifest) error {
	n.installMu.Lock()
	defer n.installMu.Unlock()
	current, err := n.Store.Manifest()
	if err != nil {
		return err
	}
	if current != nil {
		cur, err := membership.Parse(current)
		if err != nil {
			return fmt.Errorf("installed manifest: %w", err)
		}
		if m.Version <= cur.Version {
			return fmt.Errorf("%w: version %d is not newer than the installed version %d", membership.ErrVersion, m.Version, cur.Version)
		}
	}
	return n.Store.SaveManifest(raw, manifestInstalled(m, raw, "a peer's offer, approved by the federation's quorum"))
}

// InstallResult says how a manifest was installed.
type InstallResult struct {
	Manifest *membership.Manifest
	Running  bool // applied by the running node, without a restart
}

// InstallManifest is "imtgt-node federation install": if the node in dir
// runs, the manifest goes through its API and is applied at once;
// otherwise it is checked and written into the stopped node's store.
func InstallManifest(ctx context.Context, dir string, raw, psk []byte) (*InstallResult, error) {
	if _, err := federation.ParsePSK(psk); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInstall, err)
	}
	res := &InstallResult{}
	err := onNode(dir, func(cfg Config) (err error) {
		res.Manifest, err = installViaAPI(ctx, dir, cfg, raw, psk)
		res.Running = true
		return err
	}, func(cfg Config, db *store.DB) error {
		ks, err := keys.Load(filepath.Join(dir, KeysDir))
		if err != nil {
			return err
		}
		current, err := db.Manifest()
		if err != nil {
			return err
		}
		m, err := checkManifestFor(current, raw, ks, cfg.Node.Country, time.Now())
		if err != nil {
			return err
		}
		if err := writePSK(dir, psk); err != nil {
			return err
		}
		if err := sharePSK(db, ks.Data, psk); err != nil {
			return err
		}
		res.Manifest = m
		return db.SaveManifest(raw, manifestInstalled(m, raw, "operator (CLI, node stopped)"))
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func installViaAPI(ctx context.Context, dir string, cfg Config, raw, psk []byte) (*membership.Manifest, error) {
	body := map[string]string{"manifest": string(raw), "psk": string(psk)}
	if err := callAPI(ctx, dir, cfg, http.MethodPost, "/v1/federation/manifest", body, nil, ErrInstall); err != nil {
		return nil, err
	}
	return membership.Parse(raw)
}

// callAPI calls the running node's HTTP API with the operator token from
// dir: the path every --dir command takes while the node holds its store.
// An error reply is returned wrapping refused, with the node's message.
func callAPI(ctx context.Context, dir string, cfg Config, method, path string, body, out any, refused error) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	resp, err := doAPI(ctx, dir, cfg, method, path, rd, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("%w: %s", refused, e.Error.Message)
		}
		return fmt.Errorf("%w: %s: %s", refused, resp.Status, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// doAPI sends a request to the running node's HTTP API with the operator
// token from dir (and contentType, unless empty). The caller closes the
// response body.
func doAPI(ctx context.Context, dir string, cfg Config, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	token, err := ReadOperatorToken(dir)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+cfg.HTTP.Addr+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the node's store is in use but its API at %s does not answer: %w", cfg.HTTP.Addr, err)
	}
	return resp, nil
}

// onNode runs a --dir command against the node in dir: offline with the
// stopped node's store (or a PostgreSQL store, shared with running
// replicas), or online through the running node's HTTP API when the node
// holds the store file's lock. Every --dir command that touches the
// store goes through here, so they all work with the node up or down.
func onNode(dir string, online func(Config) error, offline func(Config, *store.DB) error) error {
	cfg, err := LoadConfig(filepath.Join(dir, ConfigFile))
	if err != nil {
		return err
	}
	// A PostgreSQL store has no file lock and is shared by the running
	// replicas: the command writes to it directly and the replicas take
	// the change from the database's change feed.
	db, err := openStore(context.Background(), dir, cfg, store.Options{LockTimeout: 200 * time.Millisecond})
	if errors.Is(err, store.ErrLocked) {
		return online(cfg)
	}
	if err != nil {
		return err
	}
	defer db.Close()
	return offline(cfg, db)
}

// manifestOf returns the manifest installed on the node in dir (nil if
// none), from its store, or from its API while it runs.
func manifestOf(dir string) ([]byte, error) {
	var raw []byte
	err := onNode(dir, func(cfg Config) error {
		var out struct {
			Manifest string `json:"manifest"`
		}
		if err := callAPI(context.Background(), dir, cfg, http.MethodGet, "/v1/federation/manifest", nil, &out, ErrInstall); err != nil {
			if strings.Contains(err.Error(), "no manifest installed") {
				return nil
			}
			return err
		}
		raw = []byte(out.Manifest)
		return nil
	}, func(_ Config, db *store.DB) (err error) {
		raw, err = db.Manifest()
		return err
	})
	return raw, err
}
