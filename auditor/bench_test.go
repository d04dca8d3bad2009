package auditor_test

import (
	"bytes"
	"testing"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/auditor"
	"github.com/imtgt/imtgt-node/internal/audittest"
)

// btBenchEntries is the size of the benchmark's bundle.
const btBenchEntries = 100_000

// BenchmarkVerify measures `audit verify FILE` on a bundle of 100,000
// entries (a witnessed checkpoint every 1000), and its parts.
func BenchmarkVerify(b *testing.B) {
	f := audittest.NewFixture(b, btBenchEntries-10)
	data := f.Encode()
	parsed, err := audit.ReadBundle(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	n := len(parsed.Entries)
	b.Logf("bundle: %d entries, %d checkpoints, %d bytes", n, len(parsed.Checkpoints), len(data))
	report := func(b *testing.B) {
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	}

	// What the CLI does: read the file, then verify it.
	b.Run("read+verify", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			bb, err := audit.ReadBundle(bytes.NewReader(data))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := auditor.Verify(bb, btVerifyOpts); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("read", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := audit.ReadBundle(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	// Verify of a bundle already read: header, chain, residency,
	// checkpoints and receipts.
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			if _, err := auditor.Verify(parsed, btVerifyOpts); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	// The chain check alone: Follows over every entry.
	b.Run("chain", func(b *testing.B) {
		for b.Loop() {
			seq, prev := uint64(0), ""
			for i := range parsed.Entries {
				e := &parsed.Entries[i]
				if err := e.Follows(seq, prev); err != nil {
					b.Fatal(err)
				}
				seq, prev = e.Seq, e.Hash
			}
		}
		report(b)
	})
}
