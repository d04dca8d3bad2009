package auditor_test

import (
	"bytes"
	"testing"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/auditor"
	"github.com/imtgt/imtgt-node/internal/audittest"
)

// FuzzReadBundle: reading any bytes never panics, and neither does
// verifying (and summarising) whatever reads.
func FuzzReadBundle(f *testing.F) {
	fx := audittest.NewFixture(f, 0)
	good := fx.Encode()
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte("\n"))
	f.Add(good[:len(good)-1])
	f.Add(good[:bytes.IndexByte(good, '\n')+1])
	// The broken bundles of the verify tests, each from a fixture of its
	// own (they edit it).
	for _, tc := range btBrokenBundles {
		f.Add(tc.brk(f, audittest.NewFixture(f, 0)))
	}
	// A bundle across a membership change (format 2, two manifests), and
	// the ways it is refused.
	f.Add(audittest.NewMembershipFixture(f).Encode())
	for _, tc := range btMembershipBreaks {
		mf := audittest.NewMembershipFixture(f)
		tc.brk(f, mf)
		f.Add(mf.Encode())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := audit.ReadBundle(bytes.NewReader(data))
		if err != nil {
			return
		}
		// With a receipt verifier, or without one and with the node
		// pinned: the two paths through receipts and the header.
		opt := btVerifyOpts
		if len(data)%2 == 1 {
			opt = auditor.VerifyOptions{Node: fx.Peers[audittest.Node]}
		}
		if s, _ := auditor.Verify(b, opt); s != nil {
			_ = s.String()
		}
	})
}
