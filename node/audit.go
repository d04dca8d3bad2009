package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/auditor"
	"github.com/imtgt/imtgt-node/federation"
	"github.com/imtgt/imtgt-node/keys"
	"github.com/imtgt/imtgt-node/membership"
	"github.com/imtgt/imtgt-node/orders"
	"github.com/imtgt/imtgt-node/policy"
	"github.com/imtgt/imtgt-node/store"
)

// Audit parameters.
const (
	// DefaultCheckpointInterval is how often, while the chain grows, the
	// node signs a checkpoint and asks its peers to countersign it.
	DefaultCheckpointInterval = 5 * time.Second
	// rejectQueue bounds the refusals waiting to be written: a flood of
	// bad messages must not block the handlers or grow memory; what does
	// not fit is counted (imtgt_audit_rejections_dropped_total).
	rejectQueue = 4096
)

func policyInstalled(p *policy.Policy, raw []byte, actor string) *audit.Entry {
	return &audit.Entry{Kind: audit.AdminPolicy, PolicyVersion: p.Version, PayloadHash: audit.HashHex(raw), Actor: actor,
		Reason: fmt.Sprintf("installed %s policy version %d", p.Country, p.Version)}
}

func manifestInstalled(m *membership.Manifest, raw []byte, actor string) *audit.Entry {
	members := make([]string, 0, len(m.Members))
	for _, mb := range m.Members {
		members = append(members, mb.Country)
	}
	return &audit.Entry{Kind: audit.AdminManifest, Records: members, Count: len(members), PayloadHash: audit.HashHex(raw), Actor: actor,
		Reason: fmt.Sprintf("installed manifest %s version %d", m.Federation, m.Version)}
}

// ErrNoAuditEntries means a period holds no audit entries.
var ErrNoAuditEntries = errors.New("no audit entries")

// Audit appends entries to the node's audit chain, durably.
func (n *Node) Audit(ctx context.Context, es ...*audit.Entry) error {
	return n.Store.AppendAudit(ctx, es...)
}

// auditRejected queues a refusal for the audit writer without blocking.
// It gets its time when written, so the log stays in time order.
func (n *Node) auditRejected(e *audit.Entry) {
	select {
	case n.rejects <- e:
	default:
		n.rejectsDropped.Add(1)
	}
}

// auditWriter writes queued refusals in groups until ctx ends, then
// writes what is left.
func (n *Node) auditWriter(ctx context.Context) {
	write := func(first *audit.Entry) {
		batch := []*audit.Entry{first}
		for len(batch) < 256 {
			select {
			case e := <-n.rejects:
				batch = append(batch, e)
				continue
			default:
			}
			break
		}
		if err := n.Store.AppendAudit(context.Background(), batch...); err != nil {
			n.log.Error("audit: write refusals", "entries", len(batch), "err", err)
		}
	}
	for {
		select {
		case e := <-n.rejects:
			write(e)
		case <-ctx.Done():
			for {
				select {
				case e := <-n.rejects:
					write(e)
				default:
					return
				}
			}
		}
	}
}

// auditGenesis starts the chain of a node whose chain is empty with the
// policy in force, so every later crossing has a policy to be checked
// against (init records its install; a store from before the audit log
// gets this entry on its first start).
func (n *Node) auditGenesis(ctx context.Context) error {
	seq, _, err := n.Store.AuditHead(ctx)
	if err != nil || seq > 0 {
		return err
	}
	p, raw := n.Policy()
	e := policyInstalled(p, raw, "node")
	e.Reason = fmt.Sprintf("%s policy version %d in force when the audit log began", p.Country, p.Version)
	return n.Store.AppendAudit(ctx, e)
}

// checkpointLoop signs a checkpoint whenever the chain grew since the
// last one and has the members countersign it.
func (n *Node) checkpointLoop(ctx context.Context, every time.Duration) {
	tick(ctx, every, func() {
		if _, err := n.Checkpoint(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("audit checkpoint", "err", err)
		}
	})
}

// tick calls fn every d until ctx ends (first after d, not at once).
func tick(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn()
	}
}

// Checkpoint signs a checkpoint of the chain's head if it moved since the
// last one, stores it, and asks every other member to countersign it
// (members that do not answer now countersign a later one). It returns
// the latest checkpoint, with the witnesses it got.
func (n *Node) Checkpoint(ctx context.Context) (*audit.Checkpoint, error) {
	n.checkpointMu.Lock()
	defer n.checkpointMu.Unlock()
	seq, head, err := n.Store.AuditHead(ctx)
	if err != nil || seq == 0 {
		return nil, err
	}
	last, err := n.termStore().LastCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	cp := last
	if last == nil || last.Seq < seq {
		cp, err = signedCheckpoint(n.p2pKey, n.Config.Node.Country, seq, head)
		if err != nil {
			return nil, err
		}
		if cp, err = n.termStore().PutCheckpoint(ctx, cp); err != nil {
			return nil, err
		}
	}
	m, _ := n.Fed.Manifest()
	if m == nil || n.Fed.Host() == nil {
		return cp, nil
	}
	for _, mb := range m.Members {
		if mb.Country == n.Config.Node.Country || slices.ContainsFunc(cp.Witnesses, func(w audit.Witness) bool { return w.Node == mb.Country }) {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		w, err := n.Fed.Witness(wctx, mb.Country, cp)
		cancel()
		if err != nil {
			n.log.Debug("audit checkpoint not countersigned", "peer", mb.Country, "seq", cp.Seq, "err", err)
			continue
		}
		if ok, err := n.keepWitness(ctx, cp.Seq, w); err != nil {
			return nil, err
		} else if !ok {
			n.log.Info("audit checkpoint: countersignature dropped, the peer is no longer a member", "peer", mb.Country, "seq", cp.Seq)
			continue
		}
		cp.Witnesses = append(cp.Witnesses, w)
	}
	return cp, nil
}

// keepWitness stores w unless a manifest installed while it was being
// asked for removed its signer: a countersignature dated after its
// signer's removal does not verify (auditor.Verify), so it must not enter
// the evidence. Installs hold installMu while they save, so under it the
// stored manifest is the one in force now.
func (n *Node) keepWitness(ctx context.Context, seq uint64, w audit.Witness) (bool, error) {
	n.installMu.Lock()
	defer n.installMu.Unlock()
	raw, err := n.Store.Manifest()
	if err != nil {
		return false, err
	}
	m, err := membership.Parse(raw)
	if err != nil {
		return false, fmt.Errorf("installed manifest: %w", err)
	}
	if mb, ok := m.MemberByPeerID(w.PeerID); !ok || mb.Country != w.Node {
		return false, nil
	}
	return true, n.termStore().AddWitness(ctx, seq, w)
}

func signedCheckpoint(key crypto.PrivKey, country string, seq uint64, head string) (*audit.Checkpoint, error) {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	cp := &audit.Checkpoint{Node: country, PeerID: id.String(), Seq: seq, Head: head, Time: time.Now().UTC()}
	if err := audit.SignCheckpoint(key, cp); err != nil {
		return nil, err
	}
	return cp, nil
}

// witnessPeer is federation.Config.WitnessPeer: a member's checkpoint
// is accepted unless it contradicts one this node witnessed, which is
// recorded as a refusal.
func (n *Node) witnessPeer(ctx context.Context, country string, cp *audit.Checkpoint) error {
	err := n.termStore().WitnessPeer(ctx, country, cp)
	if errors.Is(err, store.ErrRewind) || errors.Is(err, store.ErrEquivocation) {
		n.log.Error("audit: a peer's checkpoint contradicts what this node witnessed", "peer", country, "err", err)
		n.auditRejected(&audit.Entry{Kind: audit.Rejection, Peer: country, PeerID: cp.PeerID, Reason: "equivocation: " + err.Error()})
	}
	return err
}

// --- evidence for auditors ---

// auditSource is what exports and reports read: a running node's store or
// a stopped node's, opened by the CLI.
type auditSource struct {
	country string
	key     crypto.PrivKey
	db      *store.DB
	now     func() time.Time
}

func (n *Node) auditSource() *auditSource {
	return &auditSource{country: n.Config.Node.Country, key: n.p2pKey, db: n.Store, now: time.Now}
}

// AuditEntries returns the entries a query selects, in order, and the
// cursor of the next page (0 when there is none).
func (n *Node) AuditEntries(ctx context.Context, q audit.Query) ([]audit.Entry, uint64, error) {
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 100
	}
	var out []audit.Entry
	var next uint64
	err := n.Store.AuditScan(ctx, q.After+1, func(e *audit.Entry) error {
		switch {
		case !q.To.IsZero() && !e.Time.Before(q.To):
			return store.ErrStop // entries are in time order
		case !q.From.IsZero() && e.Time.Before(q.From):
			return nil
		case !e.Kind.Matches(q.Kind):
			return nil
		case q.Peer != "" && e.Peer != q.Peer && e.PeerID != q.Peer:
			return nil
		}
		if len(out) == q.Limit {
			next = out[len(out)-1].Seq
			return store.ErrStop
		}
		out = append(out, *e)
		return nil
	})
	return out, next, err
}

// AuditWitnessed returns the last checkpoint this node countersigned of
// each peer's chain, by country.
func (n *Node) AuditWitnessed(ctx context.Context) ([]audit.Checkpoint, error) {
	m, err := n.Store.PeerCheckpoints(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]audit.Checkpoint, 0, len(m))
	for _, c := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[c])
	}
	return out, nil
}

// AuditExport writes the evidence bundle of entries in [from, to) to w.
func (n *Node) AuditExport(ctx context.Context, w io.Writer, from, to time.Time) error {
	return n.auditSource().export(ctx, w, from, to)
}

// AuditReport computes the residency report of [from, to).
func (n *Node) AuditReport(ctx context.Context, from, to time.Time) (*auditor.Report, error) {
	return n.auditSource().report(ctx, from, to)
}

// policies returns every installed policy, parsed, and the bundle's
// documents of them.
func (a *auditSource) policies() (map[uint64]*policy.Policy, []audit.PolicyDoc, error) {
	raws, err := a.db.PolicyVersions()
	if err != nil {
		return nil, nil, err
	}
	parsed := map[uint64]*policy.Policy{}
	var docs []audit.PolicyDoc
	for v, raw := range raws {
		p, err := policy.Parse(fmt.Sprintf("policy version %d", v), raw)
		if err != nil {
			return nil, nil, err
		}
		parsed[v] = p
		docs = append(docs, audit.PolicyDoc{Version: v, Document: string(raw)})
	}
	slices.SortFunc(docs, func(a, b audit.PolicyDoc) int { return int(a.Version) - int(b.Version) })
	return parsed, docs, nil
}

// manifests returns every manifest version the store holds, for the
// bundle, and their versions by the hash admin.manifest entries name them
// by.
func (a *auditSource) manifests() ([]audit.ManifestDoc, map[string]uint64, error) {
	vs, err := a.db.ManifestVersions()
	if err != nil {
		return nil, nil, err
	}
	docs := make([]audit.ManifestDoc, 0, len(vs))
	versionOf := make(map[string]uint64, len(vs))
	for _, mv := range vs {
		docs = append(docs, audit.ManifestDoc{Version: mv.Version, Document: string(mv.Raw)})
		versionOf[audit.HashHex(mv.Raw)] = mv.Version
	}
	return docs, versionOf, nil
}

// export writes a bundle: a header, the contiguous run of entries whose
// times fall in [from, to), the checkpoints over them plus a final one
// signed now for the last exported entry, and the peers' receipts of the
// exported order messages.
func (a *auditSource) export(ctx context.Context, w io.Writer, from, to time.Time) error {
	_, docs, err := a.policies()
	if err != nil {
		return err
	}
	manifest, err := a.db.Manifest()
	if err != nil {
		return err
	}
	manifests, versionOf, err := a.manifests()
	if err != nil {
		return err
	}
	pub, err := crypto.MarshalPublicKey(a.key.GetPublic())
	if err != nil {
		return err
	}
	id, err := peer.IDFromPrivateKey(a.key)
	if err != nil {
		return err
	}
	// One pass: the entries before the range give the policy in force and
	// the previous hash; the header is written at the range's first entry
	// (nothing is written when the range is empty).
	var bw *audit.BundleWriter
	var first, last, atStart, manifestAtStart uint64
	var prev, lastHash string
	receiptHashes := map[string]bool{}
	err = a.db.AuditScan(ctx, 1, func(e *audit.Entry) error {
		switch {
		case !to.IsZero() && !e.Time.Before(to):
			return store.ErrStop
		case !from.IsZero() && e.Time.Before(from):
			switch e.Kind {
			case audit.AdminPolicy:
				atStart = e.PolicyVersion
			case audit.AdminManifest:
				// 0 when the store no longer holds it (installed before
				// the history was kept): verify then says so.
				manifestAtStart = versionOf[e.PayloadHash]
			}
			prev = e.Hash
			return nil
		}
		if bw == nil {
			first = e.Seq
			var err error
			bw, err = audit.NewBundleWriter(w, audit.Header{
				Node: a.country, PeerID: id.String(), PublicKey: pub, Manifest: string(manifest), Policies: docs,
				PolicyAtStart: atStart, Manifests: manifests, ManifestAtStart: manifestAtStart, FirstSeq: first, Prev: prev, From: from, To: to, GeneratedAt: a.now().UTC(),
			})
			if err != nil {
				return err
			}
		}
		if e.Kind.Egress() && e.ReceiptHash != "" {
			receiptHashes[e.ReceiptHash] = true
		}
		last, lastHash = e.Seq, e.Hash
		return bw.Entry(e)
	})
	if err != nil {
		return err
	}
	if bw == nil {
		return fmt.Errorf("%w between %s and %s", ErrNoAuditEntries, fmtTime(from), fmtTime(to))
	}
	cps, err := a.db.AuditCheckpoints(ctx, first, last)
	if err != nil {
		return err
	}
	for i := range cps {
		if err := bw.Checkpoint(&cps[i]); err != nil {
			return err
		}
	}
	if len(cps) == 0 || cps[len(cps)-1].Seq != last {
		// The node vouches for the exported tail now; peers countersign
		// only the periodic checkpoints.
		cp, err := signedCheckpoint(a.key, a.country, last, lastHash)
		if err != nil {
			return err
		}
		if err := bw.Checkpoint(cp); err != nil {
			return err
		}
	}
	err = a.db.Receipts(ctx, func(r orders.KeptReceipt) error {
		if !receiptHashes[audit.HashHex(r.Envelope)] {
			return nil
		}
		return bw.Receipt(&audit.Receipt{From: r.From, OrderID: r.OrderID, Kind: r.Kind, Seq: r.Seq, Envelope: r.Envelope})
	})
	if err != nil {
		return err
	}
	return bw.Close()
}

// report computes the residency report of [from, to) from the whole chain
// (entries before from set the policy in force).
func (a *auditSource) report(ctx context.Context, from, to time.Time) (*auditor.Report, error) {
	parsed, _, err := a.policies()
	if err != nil {
		return nil, err
	}
	var entries []audit.Entry
	err = a.db.AuditScan(ctx, 1, func(e *audit.Entry) error {
		if !to.IsZero() && !e.Time.Before(to) {
			return store.ErrStop
		}
		entries = append(entries, *e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sellers, own, replicas, ords, err := a.db.AtRest(a.country)
	if err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(a.key)
	if err != nil {
		return nil, err
	}
	return auditor.Residency(auditor.ReportInput{
		Node: a.country, PeerID: id.String(), GeneratedAt: a.now().UTC(), From: from, To: to,
		Entries: entries, Policies: parsed,
		AtRest: auditor.AtRest{Country: a.country, Store: "bbolt, one file on the node in " + a.country, Sellers: sellers, Listings: own, Replicas: replicas,
			Orders: ords, PersonalEncrypted: true},
	}), nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "the start"
	}
	return t.UTC().Format(time.RFC3339)
}

// auditSourceOf opens the audit source of a stopped node's store.
func auditSourceOf(dir string, cfg Config, db *store.DB) (*auditSource, error) {
	ks, err := keys.Load(filepath.Join(dir, KeysDir))
	if err != nil {
		return nil, err
	}
	key, _, err := federation.Identity(ks.Node)
	if err != nil {
		return nil, err
	}
	return &auditSource{country: cfg.Node.Country, key: key, db: db, now: time.Now}, nil
}

// ExportAuditDir is "imtgt-node audit export": the bundle of the node in
// dir, from its running API or its stopped store.
func ExportAuditDir(ctx context.Context, dir string, w io.Writer, from, to time.Time) error {
	return onNode(dir, func(cfg Config) error {
		return streamAPI(ctx, dir, cfg, "/v1/audit/export"+periodQuery(from, to), w)
	}, func(cfg Config, db *store.DB) error {
		src, err := auditSourceOf(dir, cfg, db)
		if err != nil {
			return err
		}
		return src.export(ctx, w, from, to)
	})
}

// AuditReportDir is "imtgt-node audit report": the residency report of
// the node in dir.
func AuditReportDir(ctx context.Context, dir string, from, to time.Time) (*auditor.Report, error) {
	var r *auditor.Report
	err := onNode(dir, func(cfg Config) error {
		r = &auditor.Report{}
		return callAPI(ctx, dir, cfg, "GET", "/v1/audit/residency"+periodQuery(from, to), nil, r, nil)
	}, func(cfg Config, db *store.DB) error {
		src, err := auditSourceOf(dir, cfg, db)
		if err != nil {
			return err
		}
		r, err = src.report(ctx, from, to)
		return err
	})
	return r, err
}

func periodQuery(from, to time.Time) string {
	var q []string
	if !from.IsZero() {
		q = append(q, "from="+from.UTC().Format(time.RFC3339))
	}
	if !to.IsZero() {
		q = append(q, "to="+to.UTC().Format(time.RFC3339))
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + strings.Join(q, "&")
}

// streamAPI copies the body of GET path on the running node in dir to w.
func streamAPI(ctx context.Context, dir string, cfg Config, path string, w io.Writer) error {
	resp, err := doAPI(ctx, dir, cfg, http.MethodGet, path, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(msg)))
	}
	_, err = io.Copy(w, resp.Body)
	return err
}
