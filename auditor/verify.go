package auditor

import (
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/libp2p/go-libp2p/core/crypto"
	cryptopb "github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/membership"
	"github.com/imtgt/imtgt-node/policy"
)

// VerifyOptions are what an auditor brings to Verify besides the bundle.
type VerifyOptions struct {
	// OpenReceipt verifies a receipt envelope and returns it with its
	// signer (the CLI passes federation.OpenReceipt, which this package
	// cannot import). Nil: receipts are counted, not checked.
	OpenReceipt func([]byte) (*pb.Receipt, peer.ID, error)
	// Node, when set, is the peer ID the auditor expects the bundle to be
	// from. Without it a bundle is only as trustworthy as the manifest it
	// carries: pinning the node (or comparing the summary's federation and
	// manifest version with the installed one) ties it to the real
	// federation.
	Node string
	// AllowUnwitnessed accepts a bundle whose crossings no peer
	// countersigned (a federation whose other members were all offline).
	AllowUnwitnessed bool
	// MaxUnwitnessed is how old, before the bundle was made, the entries
	// after the last countersigned checkpoint may be (0:
	// DefaultMaxUnwitnessed). Nodes checkpoint every 5 s while their chain
	// grows, so a longer node-only tail means missing countersignatures.
	MaxUnwitnessed time.Duration
}

// DefaultMaxUnwitnessed: see VerifyOptions.MaxUnwitnessed.
const DefaultMaxUnwitnessed = 10 * time.Minute

// ErrUnwitnessed means part of the history is vouched for by the node
// alone, which its operator could have rewritten with the node key.
var ErrUnwitnessed = errors.New("history not countersigned by any peer")

// Summary is what a verified bundle shows.
type Summary struct {
	Node            string // the node's country
	PeerID          string
	Federation      string // the manifest's federation and version, the bundle's root of trust
	ManifestVersion uint64
	// ManifestVersions are the manifest versions the header carries,
	// ascending (a format 1 bundle: the installed one only).
	ManifestVersions []uint64

	Entries           int
	FirstSeq, LastSeq uint64
	From, To          time.Time // times of the first and last entry

	Checkpoints int
	Witnessed   int    // checkpoints with at least one valid peer countersignature
	Witnesses   int    // valid countersignatures in all
	Unwitnessed uint64 // entries after the last witnessed checkpoint

	Receipts        int
	ReceiptsChecked bool // envelopes were verified (VerifyOptions.OpenReceipt was set)
	// ReceiptsUnmatched counts receipts that match no exported entry, and
	// ReceiptsMissing exported order messages whose receipt the bundle
	// does not hold. The exporter writes exactly the receipts of the
	// exported entries, so either one fails Verify.
	ReceiptsUnmatched int
	ReceiptsMissing   int

	Egress, Ingress, Rejections, Admin int
	PolicyVersions                     []uint64 // the versions in the header, ascending

	// Violations are residency violations, each naming the entry's seq and
	// line and the reason. Verify returns an error when there are any.
	Violations []string
	// Notes are observations that are not failures.
	Notes []string
}

// Verify checks a bundle with no network and no private keys: that the
// header's node is the one its manifest names and its policies are signed
// by that country's governance key; that the entries form an intact chain
// from the header's Prev; that the node signed checkpoints of that chain,
// the last of them covering the last entry, countersigned only by other
// members; that each receipt was signed by the member it names and
// acknowledges what the matching entry says was sent; and that every
// crossing was allowed by the policy in force when it was written.
//
// The first failure is returned naming its place ("entry 17 (line 18):
// ...", "checkpoint at seq 40 (line 103): ..."), wrapping ErrBundle,
// ErrChain or ErrBadCheckpoint, with a nil Summary. Residency violations
// do not stop the check: when everything else holds, Verify returns the
// full Summary, whose Violations list them, together with an error
// wrapping ErrViolation, so that an auditor's verify fails on them.
//
// The header's manifest is the one installed when the bundle was made: the
// node's peer ID and the policies' governance key are checked against it.
// A format 2 bundle also carries every manifest version the node
// installed; the chain's admin.manifest entries (by their payload hash)
// say when each came into force, each install must have been approved by
// the quorum of the manifest it replaced, and each countersignature and
// receipt is checked against the manifest in force when it was made (see
// witnessMember and receiptManifest). A member a later manifest removed
// keeps its earlier countersignatures; one it made after its removal is
// refused. A format 1 bundle is checked against its one manifest.
func Verify(b *audit.Bundle, opt VerifyOptions) (*Summary, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: no bundle", audit.ErrBundle)
	}
	v := &verifier{b: b, opt: opt, s: &Summary{}}
	for _, step := range []func() error{v.header, v.entries, v.checkpoints, v.receipts, v.evidence} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	v.notes()
	if n := len(v.s.Violations); n > 0 {
		return v.s, fmt.Errorf("%w: %d violation(s), the first: %s", ErrViolation, n, v.s.Violations[0])
	}
	return v.s, nil
}

// verifier carries what one Verify learns from step to step.
type verifier struct {
	b        *audit.Bundle
	opt      VerifyOptions
	s        *Summary
	manifest *membership.Manifest // the installed one, the header's
	// manifests are the header's manifest versions by the hash of their
	// document (nil for a format 1 bundle); spans, what the chain says was
	// in force from where, in chain order.
	manifests map[string]manifestDoc
	spans     []manifestSpan
	policies  map[uint64]*policy.Policy
	// receiptOf maps an order message's ReceiptHash to its entry index;
	// receipted marks the entries a receipt of the bundle matched.
	receiptOf map[string]int
	receipted []bool
	// crossings memoises CheckCrossing's verdict (the reason, "" if
	// allowed) by everything it reads. A chain repeats the same few
	// crossings (the same fields to the same peer for the same purpose),
	// and looking a transfer rule up costs more than the rest of an
	// entry's check.
	crossings map[crossingKey]string
}

// manifestDoc is a manifest of the header, parsed.
type manifestDoc struct {
	m    *membership.Manifest
	hash string // hex SHA-256 of the document, as admin.manifest entries name it
}

// manifestSpan is a manifest in force from an entry on: the entry that
// installed it, or (index -1) from before the first exported entry. m is
// nil while no manifest is in force.
type manifestSpan struct {
	m     *membership.Manifest
	index int
	seq   uint64
	time  time.Time
}

// crossingKey is what CheckCrossing's verdict depends on: the policy, and
// the entry's kind, peer, purpose and fields (not its seq, which only
// appears in the message and is stripped from the cached reason).
type crossingKey struct {
	version             uint64
	kind, peer, purpose string
	fields              string // the fields, each length-prefixed (no two lists alike)
}

// line returns the line of record i, 0 if the bundle did not say.
func recordLine(lines []int, i int) int {
	if i < len(lines) {
		return lines[i]
	}
	return 0
}

func verifyPlace(what string, n int) string {
	if n == 0 {
		return what
	}
	return what + " (line " + strconv.Itoa(n) + ")"
}

func (v *verifier) entryAt(i int) string {
	return verifyPlace("entry "+strconv.FormatUint(v.b.Entries[i].Seq, 10), recordLine(v.b.EntryLines, i))
}

func (v *verifier) headerErr(format string, args ...any) error {
	return fmt.Errorf("header (line 1): %w: %s", audit.ErrBundle, fmt.Sprintf(format, args...))
}

// header checks who the bundle is from and what it was judged by.
func (v *verifier) header() error {
	h := &v.b.Header
	if h.Format != audit.BundleFormat && h.Format != audit.BundleFormatV1 {
		return v.headerErr("format %q, want %q (or %q)", h.Format, audit.BundleFormat, audit.BundleFormatV1)
	}
	pub, err := crypto.UnmarshalPublicKey(h.PublicKey)
	if err != nil {
		return v.headerErr("public_key: %v", err)
	}
	if pub.Type() != cryptopb.KeyType_Ed25519 {
		return v.headerErr("public_key is a %s key; node keys are Ed25519", pub.Type())
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		return v.headerErr("public_key: %v", err)
	}
	if h.PeerID != id.String() {
		return v.headerErr("peer_id %s is not public_key's peer ID %s", printable(h.PeerID), id)
	}
	if v.opt.Node != "" {
		want, err := peer.Decode(v.opt.Node)
		if err != nil {
			return fmt.Errorf("%w: the expected node %q is not a peer ID: %v", audit.ErrBundle, v.opt.Node, err)
		}
		if want != id {
			return v.headerErr("the bundle is from %s, not from the expected node %s", id, want)
		}
	}

	m, err := membership.Parse([]byte(h.Manifest))
	if err != nil {
		return v.headerErr("manifest: %v", err)
	}
	if valid := m.ValidSigners(); len(valid) < m.Threshold {
		return v.headerErr("manifest %s version %d has %d valid signature(s) of the %d it requires", m.Federation, m.Version, len(valid), m.Threshold)
	}
	mem, ok := m.Member(h.Node)
	if !ok {
		return v.headerErr("node %s is not a member of federation %s (manifest version %d)", printable(h.Node), m.Federation, m.Version)
	}
	if mem.PeerID != h.PeerID {
		return v.headerErr("the manifest names %s's node %s, but the bundle is signed by %s", h.Node, mem.PeerID, h.PeerID)
	}
	v.manifest = m
	if err := v.manifestHistory(); err != nil {
		return err
	}
	gov, ok := m.GovernancePublicKey(h.Node)
	if !ok {
		return v.headerErr("the manifest has no governance key for %s", h.Node)
	}

	v.policies = make(map[uint64]*policy.Policy, len(h.Policies))
	for i, d := range h.Policies {
		name := fmt.Sprintf("policies[%d] (version %d)", i, d.Version)
		p, err := policy.Parse(name, []byte(d.Document))
		if err != nil {
			return v.headerErr("%v", err)
		}
		switch {
		case p.Version != d.Version:
			return v.headerErr("%s: the document is version %d", name, p.Version)
		case p.Country != h.Node:
			return v.headerErr("%s: the policy is %s's, the node %s's", name, p.Country, h.Node)
		case v.policies[p.Version] != nil:
			return v.headerErr("%s: version %d appears twice", name, p.Version)
		}
		if err := policy.Verify([]byte(d.Document), p, gov); err != nil {
			return v.headerErr("%s: %v", name, err)
		}
		v.policies[p.Version] = p
		v.s.PolicyVersions = append(v.s.PolicyVersions, p.Version)
	}
	slices.Sort(v.s.PolicyVersions)
	if h.PolicyAtStart != 0 && v.policies[h.PolicyAtStart] == nil {
		return v.headerErr("policy_at_start %d is none of the policies", h.PolicyAtStart)
	}
	switch {
	case h.FirstSeq == 0:
		return v.headerErr("first_seq is 0; entries are numbered from 1")
	case h.FirstSeq == 1 && h.Prev != "":
		return v.headerErr("first_seq is 1 but prev is set")
	case h.FirstSeq > 1 && h.Prev == "":
		return v.headerErr("first_seq is %d but prev is empty", h.FirstSeq)
	}
	v.s.Node, v.s.PeerID = h.Node, h.PeerID
	v.s.Federation, v.s.ManifestVersion = m.Federation, m.Version
	return nil
}

// manifestHistory checks the header's manifest versions: each signed by
// its own threshold, of the installed manifest's federation, none twice,
// the installed one the newest. A format 1 bundle has the installed one
// only, in force throughout.
func (v *verifier) manifestHistory() error {
	h := &v.b.Header
	if h.Format == audit.BundleFormatV1 {
		if len(h.Manifests) > 0 || h.ManifestAtStart != 0 {
			return v.headerErr("a format %q header has no manifests or manifest_at_start", audit.BundleFormatV1)
		}
		v.spans = []manifestSpan{{m: v.manifest, index: -1}}
		v.s.ManifestVersions = []uint64{v.manifest.Version}
		return nil
	}
	if len(h.Manifests) == 0 {
		return v.headerErr("manifests is empty: a format %q bundle carries every manifest version the node installed", h.Format)
	}
	v.manifests = make(map[string]manifestDoc, len(h.Manifests))
	byVersion := map[uint64]*membership.Manifest{}
	var newest *membership.Manifest
	var newestDoc string
	for i, d := range h.Manifests {
		name := fmt.Sprintf("manifests[%d] (version %d)", i, d.Version)
		m, err := membership.Parse([]byte(d.Document))
		if err != nil {
			return v.headerErr("%s: %v", name, err)
		}
		switch valid := m.ValidSigners(); {
		case m.Version != d.Version:
			return v.headerErr("%s: the document is version %d", name, m.Version)
		case m.Federation != v.manifest.Federation:
			return v.headerErr("%s: the manifest is federation %s's, the installed one %s's", name, printable(m.Federation), v.manifest.Federation)
		case byVersion[m.Version] != nil:
			return v.headerErr("%s: version %d appears twice", name, m.Version)
		case len(valid) < m.Threshold:
			return v.headerErr("%s: %d valid signature(s) of the %d it requires", name, len(valid), m.Threshold)
		}
		byVersion[m.Version] = m
		v.manifests[audit.HashHex([]byte(d.Document))] = manifestDoc{m: m, hash: audit.HashHex([]byte(d.Document))}
		v.s.ManifestVersions = append(v.s.ManifestVersions, m.Version)
		if newest == nil || m.Version > newest.Version {
			newest, newestDoc = m, d.Document
		}
	}
	slices.Sort(v.s.ManifestVersions)
	if newestDoc != h.Manifest {
		return v.headerErr("manifest is not manifests' newest version %d: the installed manifest must be the last one installed", newest.Version)
	}
	start := manifestSpan{index: -1}
	if h.ManifestAtStart != 0 {
		if start.m = byVersion[h.ManifestAtStart]; start.m == nil {
			return v.headerErr("manifest_at_start %d is none of the manifests", h.ManifestAtStart)
		}
	}
	v.spans = []manifestSpan{start}
	return nil
}

// installManifest records that entry i, an admin.manifest, brought the
// manifest its payload hash names into force, installed under the rule
// every node applies (membership.CheckInstall at the entry's time): the
// quorum of the manifest it replaced approved it.
func (v *verifier) installManifest(i int) error {
	if v.manifests == nil {
		return nil // format 1: one manifest throughout
	}
	e := &v.b.Entries[i]
	d, ok := v.manifests[e.PayloadHash]
	if !ok {
		return fmt.Errorf("%s: %w: installs a manifest (payload hash %.12s…) that the header's manifests do not hold: "+
			"the bundle lacks a manifest version in force during its period", v.entryAt(i), audit.ErrBundle, printable(e.PayloadHash))
	}
	prev := v.spans[len(v.spans)-1].m
	if prev == d.m {
		return nil // the version in force recorded again (two peers' offers at once, before nodes refused that): no change
	}
	if err := membership.CheckInstall(prev, d.m, e.Time); err != nil {
		return fmt.Errorf("%s: %w: installs manifest version %d, which no node could install then: %v", v.entryAt(i), audit.ErrBundle, d.m.Version, err)
	}
	v.spans = append(v.spans, manifestSpan{m: d.m, index: i, seq: e.Seq, time: e.Time})
	return nil
}

// spanAt returns the position in spans of the manifest in force at entry
// index i.
func (v *verifier) spanAt(i int) int {
	return sort.Search(len(v.spans), func(k int) bool { return v.spans[k].index > i }) - 1
}

// spanAtTime returns the position in spans of the manifest in force at t,
// by the times of the entries that installed them (entries are in time
// order). Before the first exported entry, the one in force at the start.
func (v *verifier) spanAtTime(t time.Time) int {
	return sort.Search(len(v.spans), func(k int) bool { return v.spans[k].index >= 0 && v.spans[k].time.After(t) }) - 1
}

// removal returns the span, at or before position upto, whose manifest
// last removed what has reports present, if any: for a message naming
// when a member was removed.
func (v *verifier) removal(upto int, has func(*membership.Manifest) bool) (manifestSpan, bool) {
	for k := upto; k > 0; k-- {
		if !has(v.spans[k].m) && has(v.spans[k-1].m) {
			return v.spans[k], true
		}
	}
	return manifestSpan{}, false
}

// manifestName names span k's manifest in messages.
func (v *verifier) manifestName(k int) string {
	sp := v.spans[k]
	if sp.index < 0 {
		return fmt.Sprintf("version %d, in force at the bundle's start", sp.m.Version)
	}
	return fmt.Sprintf("version %d, installed by %s", sp.m.Version, v.entryAt(sp.index))
}

// witnessMember checks that witness w was a member when it countersigned
// the checkpoint at entry index i: of the manifest in force at that entry
// (a countersignature cannot predate the head it signs, so this holds
// whatever time the witness claims), and of the manifest in force at the
// time it gives, if later (a removed member's countersignature dated after
// its removal). It returns the member, or why not.
func (v *verifier) witnessMember(i int, w *audit.Witness) (membership.Member, error) {
	atHead := v.spanAt(i)
	at := v.b.Entries[i].Seq
	sp := v.spans[atHead]
	if sp.m == nil {
		return membership.Member{}, fmt.Errorf("witness %s (%s): no manifest was in force at entry %d (the header names no manifest_at_start and no earlier entry installs one)",
			printable(w.PeerID), printable(w.Node), at)
	}
	has := func(m *membership.Manifest) bool {
		if m == nil {
			return false
		}
		_, ok := m.MemberByPeerID(w.PeerID)
		return ok
	}
	mem, ok := sp.m.MemberByPeerID(w.PeerID)
	if !ok {
		if rm, removed := v.removal(atHead, has); removed {
			return membership.Member{}, fmt.Errorf("witness %s (%s) was removed from federation %s by manifest version %d (%s, %s), before entry %d: a countersignature after its removal",
				printable(w.PeerID), printable(w.Node), sp.m.Federation, rm.m.Version, v.entryAt(rm.index), rm.time.UTC().Format(time.RFC3339), at)
		}
		return membership.Member{}, fmt.Errorf("witness %s (%s) is not a member of federation %s (manifest %s)",
			printable(w.PeerID), printable(w.Node), sp.m.Federation, v.manifestName(atHead))
	}
	if dated := v.spanAtTime(w.Time); dated > atHead && !has(v.spans[dated].m) {
		rm, _ := v.removal(dated, has)
		return membership.Member{}, fmt.Errorf("witness %s (%s) countersigned at %s, after manifest version %d (%s, %s) removed it from federation %s: a countersignature after its removal",
			printable(w.PeerID), printable(w.Node), w.Time.UTC().Format(time.RFC3339), rm.m.Version, v.entryAt(rm.index), rm.time.UTC().Format(time.RFC3339), sp.m.Federation)
	}
	return mem, nil
}

// receiptManifest returns the position in spans of the manifest in force
// when a receipt was made, and that time: the time it says it was
// received, or the time of entry idx that recorded it if that is earlier
// (the node kept the receipt before writing the entry, so a later time is
// a clock ahead). A receipt that matches no entry and gives no time is
// judged by the last manifest (Verify refuses it anyway).
func (v *verifier) receiptManifest(made time.Time, idx int, linked bool) (int, time.Time) {
	switch {
	case linked && (made.IsZero() || made.After(v.b.Entries[idx].Time)):
		made = v.b.Entries[idx].Time
	case made.IsZero():
		return len(v.spans) - 1, made
	}
	return v.spanAtTime(made), made
}

// entries checks the chain and, in the same pass, residency and counts.
// The chain check is Entry.Follows: one Canonical encoding and SHA-256
// per entry, never a JSON re-encoding.
func (v *verifier) entries() error {
	h, es := &v.b.Header, v.b.Entries
	if len(es) == 0 {
		return fmt.Errorf("%w: the bundle holds no entries", audit.ErrBundle)
	}
	v.receiptOf = map[string]int{}
	prevSeq, prevHash := h.FirstSeq-1, h.Prev
	version := h.PolicyAtStart
	for i := range es {
		e := &es[i]
		if err := e.Follows(prevSeq, prevHash); err != nil {
			return fmt.Errorf("%s: %w", v.entryAt(i), err)
		}
		prevSeq, prevHash = e.Seq, e.Hash
		switch {
		case e.Kind.Egress():
			v.s.Egress++
		case e.Kind.Ingress():
			v.s.Ingress++
		case e.Kind == audit.Rejection:
			v.s.Rejections++
		case e.Kind.Matches("admin"):
			v.s.Admin++
		}
		if e.Kind == audit.AdminManifest {
			if err := v.installManifest(i); err != nil {
				return err
			}
		}
		if e.Kind == audit.AdminPolicy {
			if v.policies[e.PolicyVersion] == nil {
				return fmt.Errorf("%s: %w: installs policy version %d, which the header does not hold", v.entryAt(i), audit.ErrBundle, e.PolicyVersion)
			}
			version = e.PolicyVersion
		}
		if e.Kind.Egress() {
			v.residency(i, version)
		}
		if (e.Kind == audit.HandoffEgress || e.Kind == audit.StatusEgress || e.Kind == audit.IssueEgress) && e.ReceiptHash != "" {
			if _, dup := v.receiptOf[e.ReceiptHash]; !dup {
				v.receiptOf[e.ReceiptHash] = i
			}
		}
	}
	v.receipted = make([]bool, len(es))
	v.s.Entries = len(es)
	v.s.FirstSeq, v.s.LastSeq = es[0].Seq, es[len(es)-1].Seq
	v.s.From, v.s.To = es[0].Time, es[len(es)-1].Time
	return nil
}

// residency records why egress entry i was not allowed by the policy in
// force, if it was not (egressViolation, the rule the residency report
// applies).
func (v *verifier) residency(i int, inForce uint64) {
	if reason := egressViolation(inForce, &v.b.Entries[i], v.crossing); reason != "" {
		v.violation(i, reason)
	}
}

// fieldsKey encodes fields unambiguously: joined with a separator, a
// field holding the separator could pass for two fields and reuse their
// verdict.
func fieldsKey(fields []string) string {
	var b []byte
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return string(b)
}

// crossing returns why the policy version in force does not allow e's
// crossing, "" if it does.
func (v *verifier) crossing(version uint64, e *audit.Entry) string {
	k := crossingKey{version: version, kind: string(e.Kind), peer: e.Peer, purpose: e.Purpose, fields: fieldsKey(e.Fields)}
	if reason, ok := v.crossings[k]; ok {
		return reason
	}
	var reason string
	if err := CheckCrossing(v.policies[version], e); err != nil {
		reason = crossingReason(err, e.Seq)
	}
	if v.crossings == nil {
		v.crossings = map[crossingKey]string{}
	}
	v.crossings[k] = reason
	return reason
}

func (v *verifier) violation(i int, reason string) {
	v.s.Violations = append(v.s.Violations, v.entryAt(i)+": "+reason)
}

// checkpoints checks that the node signed the exported chain and that its
// peers' countersignatures are real members'.
func (v *verifier) checkpoints() error {
	h, es := &v.b.Header, v.b.Entries
	first, last := h.FirstSeq, es[len(es)-1].Seq
	var covered uint64             // highest seq a checkpoint covers
	witnessed := first - 1         // highest seq a witnessed checkpoint covers
	coveredAt, coveredLine := 0, 0 // which checkpoint covers `covered`
	for i := range v.b.Checkpoints {
		c := &v.b.Checkpoints[i]
		n := recordLine(v.b.CheckpointLines, i)
		at := verifyPlace("checkpoint at seq "+strconv.FormatUint(c.Seq, 10), n)
		fail := func(format string, args ...any) error {
			return fmt.Errorf("%s: %w: %s", at, audit.ErrBadCheckpoint, fmt.Sprintf(format, args...))
		}
		switch {
		case c.PeerID != h.PeerID:
			return fail("signed by %s, not by the node %s", printable(c.PeerID), h.PeerID)
		case c.Node != h.Node:
			return fail("names node %s, not %s", printable(c.Node), h.Node)
		}
		if err := c.Verify(); err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
		if c.Seq < first || c.Seq > last {
			return fail("seq %d is outside the exported entries %d to %d", c.Seq, first, last)
		}
		if e := &es[c.Seq-first]; c.Head != e.Hash {
			return fail("head %.12s… is not the hash of entry %d (%.12s…): the checkpoint is forged or the chain was rewritten", c.Head, e.Seq, e.Hash)
		}
		seen := make(map[string]bool, len(c.Witnesses))
		for j := range c.Witnesses {
			w := &c.Witnesses[j]
			if w.PeerID == h.PeerID {
				return fail("the node witnesses its own checkpoint")
			}
			mem, err := v.witnessMember(int(c.Seq-first), w)
			if err != nil {
				return fail("%v", err)
			}
			switch {
			case mem.Country == h.Node:
				return fail("the node witnesses its own checkpoint")
			case mem.Country != w.Node:
				return fail("witness %s is %s's node, not %s's", w.PeerID, mem.Country, printable(w.Node))
			case seen[w.PeerID]:
				return fail("%s witnesses it twice", w.Node)
			}
			seen[w.PeerID] = true
			if err := w.Verify(c); err != nil {
				return fmt.Errorf("%s: %w", at, err)
			}
		}
		if len(c.Witnesses) > 0 {
			v.s.Witnessed++
			v.s.Witnesses += len(c.Witnesses)
			witnessed = max(witnessed, c.Seq)
		}
		if c.Seq > covered {
			covered, coveredAt, coveredLine = c.Seq, i+1, n
		}
	}
	v.s.Checkpoints = len(v.b.Checkpoints)
	if covered < last {
		at := v.entryAt(len(es) - 1)
		if coveredAt == 0 {
			return fmt.Errorf("%s: %w: no checkpoint signs the chain: the bundle was truncated or its checkpoints removed", at, audit.ErrChain)
		}
		return fmt.Errorf("%s: %w: the last checkpoint covers entry %d only (%s): the bundle was truncated, or entries were appended after its final checkpoint",
			at, audit.ErrChain, covered, verifyPlace("checkpoint "+strconv.Itoa(coveredAt), coveredLine))
	}
	v.s.Unwitnessed = last - witnessed
	return nil
}

// receiptKind returns the entry kind of the message a receipt of kind
// acknowledges.
func receiptKind(kind string) (audit.Kind, bool) {
	switch kind {
	case "handoff":
		return audit.HandoffEgress, true
	case "status":
		return audit.StatusEgress, true
	case "issue":
		return audit.IssueEgress, true
	}
	return "", false
}

// receipts checks each receipt against its signer and the entry of the
// message it acknowledges, found by the envelope's hash.
func (v *verifier) receipts() error {
	v.s.Receipts = len(v.b.Receipts)
	v.s.ReceiptsChecked = v.opt.OpenReceipt != nil
	for i := range v.b.Receipts {
		r := &v.b.Receipts[i]
		at := verifyPlace(fmt.Sprintf("receipt of %s for order %s", printable(r.Kind), printable(r.OrderID)), recordLine(v.b.ReceiptLines, i))
		fail := func(format string, args ...any) error {
			return fmt.Errorf("%s: %w: %s", at, audit.ErrBundle, fmt.Sprintf(format, args...))
		}
		idx, linked := v.receiptOf[audit.HashHex(r.Envelope)]
		if v.opt.OpenReceipt == nil {
			if linked {
				v.receipted[idx] = true
			} else {
				v.s.ReceiptsUnmatched++
			}
			continue
		}
		kind, ok := receiptKind(r.Kind)
		if !ok {
			return fail("kind %s is neither handoff nor status", printable(r.Kind))
		}
		rec, signer, err := v.opt.OpenReceipt(r.Envelope)
		if err != nil {
			return fail("the envelope does not verify: %v", err)
		}
		made := time.Time{}
		if ms := rec.GetReceivedUnixMs(); ms != 0 {
			made = time.UnixMilli(ms).UTC()
		}
		k, made := v.receiptManifest(made, idx, linked)
		sp := v.spans[k]
		if sp.m == nil {
			return fail("no manifest was in force when it was made (%s)", made.Format(time.RFC3339))
		}
		mem, ok := sp.m.Member(r.From)
		if !ok {
			has := func(m *membership.Manifest) bool {
				if m == nil {
					return false
				}
				_, ok := m.Member(r.From)
				return ok
			}
			if rm, removed := v.removal(k, has); removed {
				return fail("%s was removed from federation %s by manifest version %d (%s, %s), before the receipt was made (%s): a receipt after its removal",
					printable(r.From), sp.m.Federation, rm.m.Version, v.entryAt(rm.index), rm.time.UTC().Format(time.RFC3339), made.Format(time.RFC3339))
			}
			return fail("%s is not a member of federation %s (manifest %s)", printable(r.From), sp.m.Federation, v.manifestName(k))
		}
		if want, err := peer.Decode(mem.PeerID); err != nil || signer != want {
			return fail("signed by %s, not by %s's node %s", signer, r.From, mem.PeerID)
		}
		switch {
		case rec.GetOrderId() != r.OrderID || rec.GetKind() != r.Kind || rec.GetSeq() != r.Seq:
			return fail("the envelope acknowledges %s %d of order %s, the line says %s %d of order %s",
				printable(rec.GetKind()), rec.GetSeq(), printable(rec.GetOrderId()), printable(r.Kind), r.Seq, printable(r.OrderID))
		case rec.GetReceiver() != r.From:
			return fail("the envelope names receiver %s, the line %s", printable(rec.GetReceiver()), r.From)
		}
		if !linked {
			v.s.ReceiptsUnmatched++
			continue
		}
		e := &v.b.Entries[idx]
		switch {
		case e.Kind != kind:
			return fail("its envelope is the one %s records, a %s", v.entryAt(idx), e.Kind)
		case e.Peer != r.From:
			return fail("%s records the message as sent to %s, not %s", v.entryAt(idx), printable(e.Peer), r.From)
		case !slices.Contains(e.Records, r.OrderID):
			return fail("%s records no order %s", v.entryAt(idx), r.OrderID)
		case e.PayloadHash != hex.EncodeToString(rec.GetPayloadHash()):
			return fail("it acknowledges payload %.12s…, but %s sent %.12s…", hex.EncodeToString(rec.GetPayloadHash()), v.entryAt(idx), printable(e.PayloadHash))
		}
		v.receipted[idx] = true
	}
	for _, idx := range v.receiptOf {
		if !v.receipted[idx] {
			v.s.ReceiptsMissing++
		}
	}
	return nil
}

// evidence refuses what only the node vouches for where its peers or its
// receipts should vouch too. The node's operator holds the node key: a
// chain re-linked and checkpoints re-signed by it pass every check above,
// so what a rewrite cannot fake is the peers' countersignatures and the
// peers' receipts. The exporter writes every checkpoint and every receipt
// of the exported entries, so a bundle without them was cut.
func (v *verifier) evidence() error {
	s, h, es := v.s, v.b.Header, v.b.Entries
	if s.ReceiptsMissing > 0 || s.ReceiptsUnmatched > 0 {
		return fmt.Errorf("%w: %d order message(s) lack the receipt they record and %d receipt(s) match no entry: receipts or entries were removed",
			audit.ErrBundle, s.ReceiptsMissing, s.ReceiptsUnmatched)
	}
	if v.opt.AllowUnwitnessed || s.Unwitnessed == 0 {
		return nil
	}
	first := es[len(es)-int(min(s.Unwitnessed, uint64(len(es))))]
	crossings := slices.ContainsFunc(es, func(e audit.Entry) bool { return e.Peer != "" && (e.Kind.Egress() || e.Kind.Ingress()) })
	if s.Witnessed == 0 && crossings {
		return fmt.Errorf("%w: no checkpoint is countersigned by a peer, though the bundle records crossings with peers: "+
			"the node alone vouches for all of it (use --allow-unwitnessed only if no other member was online)", ErrUnwitnessed)
	}
	window := cmp.Or(v.opt.MaxUnwitnessed, DefaultMaxUnwitnessed)
	if h.To.IsZero() && first.Time.Before(h.GeneratedAt.Add(-window)) {
		return fmt.Errorf("%s: %w: entries %d to %d were written more than %s before the bundle was made, yet no peer countersigned them: "+
			"countersignatures were removed or the history after entry %d rewritten", v.entryAt(len(es)-int(s.Unwitnessed)), ErrUnwitnessed,
			first.Seq, s.LastSeq, window, first.Seq-1)
	}
	return nil
}

// notes records what an auditor should know that is not a failure.
func (v *verifier) notes() {
	s := v.s
	if s.Receipts > 0 && !s.ReceiptsChecked {
		s.Notes = append(s.Notes, fmt.Sprintf("%d receipt(s) counted, not verified (no receipt verifier)", s.Receipts))
	}
	if v.b.Header.Format == audit.BundleFormatV1 {
		s.Notes = append(s.Notes, fmt.Sprintf("a format %s bundle carries one manifest: every countersignature and receipt was checked against it", audit.BundleFormatV1))
	}
	if s.Unwitnessed > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("%d entries after the last witnessed checkpoint are signed by the node alone", s.Unwitnessed))
	}
}

// printable returns s, or s quoted if it holds anything but printable
// characters. Bundles are untrusted input, and what a message quotes from
// one must not be able to drive the auditor's terminal.
func printable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	return strconv.Quote(s)
}

// maxListedViolations bounds the violations String lists one by one.
const maxListedViolations = 20

// String renders the summary for the CLI.
func (s *Summary) String() string {
	var b strings.Builder
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	fmt.Fprintf(&b, "Node:         %s (%s), federation %s, manifest version %d\n", s.Node, s.PeerID, s.Federation, s.ManifestVersion)
	fmt.Fprintf(&b, "Entries:      %d, seq %d to %d, %s to %s\n", s.Entries, s.FirstSeq, s.LastSeq, ts(s.From), ts(s.To))
	fmt.Fprintf(&b, "              egress %d, ingress %d, rejections %d, admin %d\n", s.Egress, s.Ingress, s.Rejections, s.Admin)
	fmt.Fprintf(&b, "Checkpoints:  %d, %d witnessed (%d countersignatures), %d entries after the last witnessed one\n",
		s.Checkpoints, s.Witnessed, s.Witnesses, s.Unwitnessed)
	how := "verified"
	if !s.ReceiptsChecked {
		how = "not verified"
	}
	fmt.Fprintf(&b, "Receipts:     %d (%s)\n", s.Receipts, how)
	vs := make([]string, len(s.PolicyVersions))
	for i, pv := range s.PolicyVersions {
		vs[i] = strconv.FormatUint(pv, 10)
	}
	if len(vs) == 0 {
		vs = []string{"none"}
	}
	fmt.Fprintf(&b, "Policies:     version %s\n", strings.Join(vs, ", "))
	if len(s.ManifestVersions) > 0 {
		ms := make([]string, len(s.ManifestVersions))
		for i, mv := range s.ManifestVersions {
			ms[i] = strconv.FormatUint(mv, 10)
		}
		fmt.Fprintf(&b, "Manifests:    version %s\n", strings.Join(ms, ", "))
	}
	if len(s.Violations) == 0 {
		b.WriteString("Residency:    no violations\n")
	} else {
		fmt.Fprintf(&b, "Residency:    %d VIOLATION(S)\n", len(s.Violations))
		for i, v := range s.Violations {
			if i == maxListedViolations {
				fmt.Fprintf(&b, "  … and %d more\n", len(s.Violations)-maxListedViolations)
				break
			}
			fmt.Fprintf(&b, "  %s\n", printable(v))
		}
	}
	for _, n := range s.Notes {
		fmt.Fprintf(&b, "Note:         %s\n", n)
	}
	return b.String()
}
