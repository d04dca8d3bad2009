package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/auditor"
	"github.com/imtgt/imtgt-node/federation"
	"github.com/imtgt/imtgt-node/node"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Residency reports, evidence bundles and their offline verification",
		Long: `The node keeps an audit log: a hash-chained entry for every crossing of
data (catalog records, order handoffs and status messages, receipts), every
refusal and every admin act, with signed checkpoints its peers countersign.
Entries name records by ID and fields by name, never their values.

  report  the residency report of a period, as HTML for people or JSON
  export  the evidence bundle of a period, for an auditor
  verify  check a bundle with no network and no private keys

report and export work on a stopped node's store or, while the node runs,
through its API. Periods are --from (included) to --to (excluded), each an
RFC 3339 time or a date (YYYY-MM-DD, midnight UTC): --from 2026-01-01
--to 2026-02-01 is January.`,
		Example: `  imtgt-node audit report --dir /var/lib/imtgt/th --from 2026-01-01 --to 2026-02-01 --out residency-2026-01.html
  imtgt-node audit export --dir /var/lib/imtgt/th --from 2026-01-01 --to 2026-02-01 --out th-2026-01.jsonl
  imtgt-node audit verify --node 12D3KooW... th-2026-01.jsonl`,
	}
	cmd.AddCommand(newAuditReportCmd(), newAuditExportCmd(), newAuditVerifyCmd())
	return cmd
}

// periodFlags are --from and --to.
type periodFlags struct{ from, to string }

func (p *periodFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.from, "from", "", "start of the period, included: RFC 3339 or YYYY-MM-DD (UTC midnight); default: the first entry")
	cmd.Flags().StringVar(&p.to, "to", "", "end of the period, excluded: RFC 3339 or YYYY-MM-DD (UTC midnight); default: now")
}

// parse returns the period; a malformed or empty one is a usage error.
func (p *periodFlags) parse() (from, to time.Time, err error) {
	if from, err = parsePeriodTime("from", p.from); err != nil {
		return
	}
	if to, err = parsePeriodTime("to", p.to); err != nil {
		return
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return time.Time{}, time.Time{}, usageError{fmt.Errorf("--to %s is not after --from %s (the period is --from included to --to excluded)", p.to, p.from)}
	}
	return from, to, nil
}

// parsePeriodTime reads an RFC 3339 time or a date (midnight UTC).
func parsePeriodTime(flag, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, usageError{fmt.Errorf("--%s %q is neither an RFC 3339 time (2026-01-01T00:00:00Z) nor a date (2026-01-01)", flag, v)}
}

func newAuditReportCmd() *cobra.Command {
	var dir, format, out string
	var period periodFlags
	cmd := &cobra.Command{
		Use:   "report --dir DIR [--format html|json] [--out FILE] [--from T] [--to T]",
		Short: "Write the residency report of a period (HTML for people, or JSON)",
		Long: `report computes the residency report of the node in DIR for the period:
what left the country, to where, on what legal basis and under which policy
rule; what arrived; what is kept at rest; what was refused; and every
crossing the policy in force at the time did not allow. Each crossing is
judged by the policy version in force when it happened.

--format html (the default) is one self-contained page for people (no
scripts, nothing fetched: it can be mailed, archived and printed); json is
the report as GET /v1/audit/residency returns it, indented. The file is
written atomically: a failure leaves no half-written report. Without --out,
or with --out -, the report goes to standard output.`,
		Example: `  imtgt-node audit report --dir /var/lib/imtgt/th --from 2026-01-01 --to 2026-04-01 --out residency-2026-Q1.html
  imtgt-node audit report --dir /var/lib/imtgt/th --format json --from 2026-01-01 > residency.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("dir", dir); err != nil {
				return err
			}
			if format != "html" && format != "json" {
				return usageError{fmt.Errorf("--format %q: use html or json", format)}
			}
			from, to, err := period.parse()
			if err != nil {
				return err
			}
			rep, err := node.AuditReportDir(cmd.Context(), dir, from, to)
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if format == "html" {
				err = auditor.RenderHTML(&buf, rep)
			} else {
				enc := json.NewEncoder(&buf)
				enc.SetEscapeHTML(false)
				enc.SetIndent("", "  ")
				err = enc.Encode(rep)
			}
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err = buf.WriteTo(cmd.OutOrStdout())
				return err
			}
			if _, err := writeFileAtomic(out, buf.WriteTo); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Wrote the %s residency report (%s) to %s: %d entries, %d violation(s)\n",
				rep.Node, periodLabel(from, to), out, rep.Entries, len(rep.Violations))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "node directory (required)")
	f.StringVar(&format, "format", "html", "html or json")
	f.StringVar(&out, "out", "", `file to write; "-" or none: standard output`)
	period.add(cmd)
	return cmd
}

func newAuditExportCmd() *cobra.Command {
	var dir, out string
	var period periodFlags
	cmd := &cobra.Command{
		Use:   "export --dir DIR --out FILE [--from T] [--to T]",
		Short: "Write the evidence bundle of a period for an auditor",
		Long: `export writes the evidence bundle of the node in DIR (JSON Lines, format
imtgt-audit-bundle/2): the node's public key, every manifest version and
every policy version it installed; the entries whose times fall in the period; the signed
checkpoints over them, countersigned by the peers, and one the node signs
now for the last exported entry; and the peers' signed receipts of the
exported order messages. An auditor checks it with "imtgt-node audit verify",
offline. The bundle holds no personal data: entries name fields, not values.

It works on a stopped node's store, or through the running node's API. The
file is written atomically (--out - writes to standard output); a one-line
summary goes to standard error.`,
		Example: `  imtgt-node audit export --dir /var/lib/imtgt/th --from 2026-01-01 --to 2026-02-01 --out th-2026-01.jsonl
  imtgt-node audit export --dir /var/lib/imtgt/th --out - | imtgt-node audit verify -`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlag("dir", dir); err != nil {
				return err
			}
			if err := requireFlag("out", out); err != nil {
				return err
			}
			from, to, err := period.parse()
			if err != nil {
				return err
			}
			var entries int
			export := func(w io.Writer) (int64, error) {
				cw := &entryCounter{w: w, atStart: true}
				err := node.ExportAuditDir(cmd.Context(), dir, cw, from, to)
				entries = cw.entries
				return cw.n, err
			}
			where := out
			var n int64
			if out == "-" {
				where = "standard output"
				bw := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
				if n, err = export(bw); err == nil {
					err = bw.Flush()
				}
			} else {
				n, err = writeFileAtomic(out, export)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Exported %d entries (%s) to %s: %d bytes\n", entries, periodLabel(from, to), where, n)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "node directory (required)")
	f.StringVar(&out, "out", "", `bundle file to write, "-" for standard output (required)`)
	period.add(cmd)
	return cmd
}

func newAuditVerifyCmd() *cobra.Command {
	var (
		peerID           string
		allowUnwitnessed bool
		maxUnwitnessed   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "verify [--node PEERID] FILE",
		Short: "Check an evidence bundle offline: chain, signatures, receipts and residency",
		Long: `verify checks an evidence bundle with no network and no private keys: that
its manifest is signed by the federation's quorum and names the node; that
the policies are signed by the country's agency; that the entries form an
unbroken hash chain; that the node signed checkpoints covering them,
countersigned only by other members; that every receipt was signed by the
member it names and matches what the entry says was sent; and that every
crossing was allowed by the policy in force when it happened.
Countersignatures and receipts are checked against the manifest in force
when they were made (the chain's manifest installs say when each version
came in): a member removed later keeps its earlier ones, and any it made
after its removal are refused. A format 1 bundle (from an older node) is
checked against its one manifest.

It prints a summary. It exits 1, naming the first bad entry (with its line),
when anything fails, and also when crossings broke the policy (the summary
lists them). --node pins the node the bundle must come from (its peer ID, as
in the federation manifest): without it a bundle is only as trustworthy as
the manifest it carries. FILE "-" reads standard input.

The node's operator holds the node key and could re-sign a rewritten
history; what it cannot forge is its peers' countersignatures. So verify
also fails when the bundle records crossings with peers but no peer
countersigned any checkpoint, or when entries older than --max-unwitnessed
(before the bundle was made) are countersigned by no peer.
--allow-unwitnessed accepts such a bundle (a federation whose other members
were all offline); the summary still says how much the node alone vouches for.`,
		Example: `  imtgt-node audit verify th-2026-01.jsonl
  imtgt-node audit verify --node 12D3KooWRq9cX3F5... th-2026-01.jsonl`,
		Args: oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			var r io.Reader
			name := args[0]
			if name == "-" {
				r = cmd.InOrStdin()
				name = "standard input"
			} else {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			b, err := audit.ReadBundle(r)
			if err != nil {
				return untrustedError{fmt.Errorf("%s: %w", name, err)}
			}
			sum, err := auditor.Verify(b, auditor.VerifyOptions{OpenReceipt: federation.OpenReceipt, Node: peerID,
				AllowUnwitnessed: allowUnwitnessed, MaxUnwitnessed: maxUnwitnessed})
			if sum != nil {
				fmt.Fprint(cmd.OutOrStdout(), escapeUntrusted(sum.String(), true))
			}
			if err != nil {
				return untrustedError{fmt.Errorf("%s: %w", name, err)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&peerID, "node", "", "peer ID the bundle must be from (from the federation manifest)")
	cmd.Flags().BoolVar(&allowUnwitnessed, "allow-unwitnessed", false, "accept a history no peer countersigned")
	cmd.Flags().DurationVar(&maxUnwitnessed, "max-unwitnessed", auditor.DefaultMaxUnwitnessed, "how old entries no peer countersigned may be, before the bundle was made")
	return cmd
}

func periodLabel(from, to time.Time) string {
	f, t := "the start", "now"
	if !from.IsZero() {
		f = from.UTC().Format(time.RFC3339)
	}
	if !to.IsZero() {
		t = to.UTC().Format(time.RFC3339)
	}
	return f + " to " + t
}

// writeFileAtomic writes path through a temporary file beside it, synced
// and renamed into place, so that a failure leaves no half-written file
// (and an existing file stays as it was). A new file is 0644; an existing
// one keeps its mode.
func writeFileAtomic(path string, write func(io.Writer) (int64, error)) (int64, error) {
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		if !fi.Mode().IsRegular() {
			return 0, fmt.Errorf("%s is not a regular file", path)
		}
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	bw := bufio.NewWriterSize(tmp, 64<<10)
	n, err := write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), mode)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}

// entryCounter passes a bundle through, counting its bytes and its entry
// lines (those that start with {"entry":, as BundleWriter writes them).
type entryCounter struct {
	w       io.Writer
	n       int64
	entries int
	atStart bool // the next byte starts a line
	prefix  int  // bytes of entryPrefix matched at the start of this line; -1: no match
}

const entryPrefix = `{"entry":`

func (c *entryCounter) Write(b []byte) (int, error) {
	for _, ch := range b {
		if c.atStart {
			c.atStart, c.prefix = false, 0
		}
		switch {
		case ch == '\n':
			c.atStart = true
		case c.prefix >= 0 && c.prefix < len(entryPrefix):
			if ch != entryPrefix[c.prefix] {
				c.prefix = -1
				break
			}
			c.prefix++
			if c.prefix == len(entryPrefix) {
				c.entries++
			}
		}
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// untrustedError is an error whose text quotes a bundle: untrusted input,
// whose control characters must not reach the auditor's terminal.
type untrustedError struct{ err error }

func (e untrustedError) Error() string { return escapeUntrusted(e.err.Error(), false) }
func (e untrustedError) Unwrap() error { return e.err }

// escapeUntrusted escapes, as strconv.Quote would, every character of s
// that is not printable (control characters, escape sequences, invalid
// UTF-8), keeping newlines when keepNewlines is set.
func escapeUntrusted(s string, keepNewlines bool) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !(unicode.IsPrint(r) || (keepNewlines && r == '\n')) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsPrint(r) || (keepNewlines && r == '\n'):
			b.WriteString(s[i : i+size])
		default:
			q := strconv.QuoteRune(r) // '\x1b', '\u2028'
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}
