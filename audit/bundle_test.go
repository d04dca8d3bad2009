package audit_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/internal/audittest"
)

func TestBundleRoundTrip(t *testing.T) {
	f := audittest.NewFixture(t, 0)
	data := f.Encode()
	require.True(t, bytes.HasPrefix(data, []byte(`{"header":{"format":"imtgt-audit-bundle/2","node":"TH",`)), "%.80s", data)
	assert.Equal(t, 1+10+2+2, bytes.Count(data, []byte("\n")), "one line per record")

	// Read through a reader that returns one byte at a time: the reader
	// must not depend on how its input arrives.
	b, err := audit.ReadBundle(iotest.OneByteReader(bytes.NewReader(data)))
	require.NoError(t, err)
	want := f.Bundle.Header
	want.Format = audit.BundleFormat
	assert.Equal(t, want, b.Header)
	assert.Equal(t, f.Bundle.Entries, b.Entries)
	assert.Equal(t, f.Bundle.Checkpoints, b.Checkpoints)
	assert.Equal(t, f.Bundle.Receipts, b.Receipts)
	assert.Equal(t, []int{2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, b.EntryLines)
	assert.Equal(t, []int{12, 13}, b.CheckpointLines)
	assert.Equal(t, []int{14, 15}, b.ReceiptLines)
}

// TestReadBundleLongHeader: the header holds the manifest and every policy;
// it may be far longer than the read buffer.
func TestReadBundleLongHeader(t *testing.T) {
	f := audittest.NewFixture(t, 0)
	for v := uint64(3); v <= 60; v++ {
		f.Bundle.Header.Policies = append(f.Bundle.Header.Policies, audit.PolicyDoc{Version: v, Document: f.Policies[1]})
	}
	data := f.Encode()
	require.Greater(t, bytes.IndexByte(data, '\n'), 256<<10, "longer than the reader's buffer")
	b, err := audit.ReadBundle(bytes.NewReader(data))
	require.NoError(t, err)
	assert.Len(t, b.Header.Policies, 60)
	assert.Equal(t, 2, b.EntryLines[0])
}

func TestReadBundleRefuses(t *testing.T) {
	const hdr = `{"header":{"format":"imtgt-audit-bundle/1","node":"TH"}}`
	const entry = `{"entry":{"seq":1,"time":"2026-03-01T08:00:00Z","kind":"admin.seller","prev":"","hash":"x"}}`
	const ckpt = `{"checkpoint":{"node":"TH","peer_id":"p","seq":1,"head":"x","time":"2026-03-01T08:00:00Z","signature":"AA=="}}`
	const rcpt = `{"receipt":{"from":"MY","order_id":"O","kind":"handoff","seq":1,"envelope":"AA=="}}`
	tests := []struct {
		name string
		data string
		want string
	}{
		{"an empty file", "", "bad evidence bundle: the bundle is empty"},
		{"no header", entry + "\n", "line 1: bad evidence bundle: the first line must be the header, not an entry"},
		{"the header not first", hdr + "\n" + entry + "\n" + hdr + "\n", "line 3: bad evidence bundle: a second header"},
		{"an unknown format", `{"header":{"format":"imtgt-audit-bundle/3"}}` + "\n",
			`line 1: bad evidence bundle: format "imtgt-audit-bundle/3", want "imtgt-audit-bundle/2" (or "imtgt-audit-bundle/1")`},
		{"a format 1 header with a manifest history", `{"header":{"format":"imtgt-audit-bundle/1","manifests":[{"version":1,"document":"x"}]}}` + "\n",
			`line 1: bad evidence bundle: a format "imtgt-audit-bundle/1" header has no manifests or manifest_at_start`},
		{"a line of no kind", hdr + "\n" + `{"note":{}}` + "\n", `line 2: bad evidence bundle: json: unknown field "note"`},
		{"an empty object", hdr + "\n{}\n", "line 2: bad evidence bundle: the line is none of header, entry, checkpoint or receipt"},
		{"a null record", hdr + "\n" + `{"entry":null}` + "\n", "line 2: bad evidence bundle: the line is none of header, entry, checkpoint or receipt"},
		{"two kinds on a line", hdr + "\n" + strings.TrimSuffix(entry, "}") + `,"receipt":{}}` + "\n",
			"line 2: bad evidence bundle: the line holds more than one of header, entry, checkpoint and receipt"},
		{"an unknown field of an entry", hdr + "\n" + strings.Replace(entry, `"seq":1`, `"seq":1,"secret":"x"`, 1) + "\n",
			`line 2: bad evidence bundle: json: unknown field "secret"`},
		{"a wrong type", hdr + "\n" + strings.Replace(entry, `"seq":1`, `"seq":"1"`, 1) + "\n",
			"line 2: bad evidence bundle: json: cannot unmarshal string into Go struct field Entry.entry.seq of type uint64"},
		{"an entry after a checkpoint", hdr + "\n" + entry + "\n" + ckpt + "\n" + entry + "\n",
			"line 4: bad evidence bundle: an entry after the checkpoints (the order is header, entries, checkpoints, receipts)"},
		{"a checkpoint after a receipt", hdr + "\n" + entry + "\n" + rcpt + "\n" + ckpt + "\n",
			"line 4: bad evidence bundle: a checkpoint after the receipts"},
		{"an entry after a receipt", hdr + "\n" + rcpt + "\n" + entry + "\n", "line 3: bad evidence bundle: an entry after the receipts"},
		{"trailing garbage on a line", hdr + "\n" + entry + " x\n", "line 2: bad evidence bundle: unexpected data after the JSON object"},
		{"two objects on a line", hdr + "\n" + entry + entry + "\n", "line 2: bad evidence bundle: unexpected data after the JSON object"},
		{"trailing garbage lines", hdr + "\n" + entry + "\n" + "garbage\n",
			"line 3: bad evidence bundle: invalid character 'g' looking for beginning of value"},
		{"a blank line", hdr + "\n\n" + entry + "\n", "line 2: bad evidence bundle: empty line"},
		{"no final newline", hdr + "\n" + entry, "line 2 is cut off: the bundle is truncated"},
		{"a header cut off", hdr[:30], "line 1 is cut off: the bundle is truncated"},
		{"a line of JSON cut off", hdr + "\n" + entry[:40] + "\n", "line 2: bad evidence bundle: unexpected EOF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := audit.ReadBundle(strings.NewReader(tc.data))
			assert.Nil(t, b)
			require.ErrorIs(t, err, audit.ErrBundle)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestReadBundleLineTooLong(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 64 MiB")
	}
	long := io.MultiReader(strings.NewReader(`{"header":{"format":"`),
		io.LimitReader(btRepeat('a'), audit.MaxBundleLine+1), strings.NewReader(`"}}`+"\n"))
	_, err := audit.ReadBundle(long)
	require.ErrorIs(t, err, audit.ErrBundle)
	assert.EqualError(t, err, "line 1: bad evidence bundle: longer than 67108864 bytes")
}

// btRepeat reads as an endless run of c.
type btRepeat byte

func (r btRepeat) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func TestReadBundleReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	_, err := audit.ReadBundle(iotest.ErrReader(boom))
	require.ErrorIs(t, err, boom)
	assert.EqualError(t, err, "line 1: bad evidence bundle: disk on fire")
}

func TestBundleWriterOrder(t *testing.T) {
	var buf bytes.Buffer
	w, err := audit.NewBundleWriter(&buf, audit.Header{Format: "ignored", Node: "TH"})
	require.NoError(t, err)
	require.NoError(t, w.Entry(&audit.Entry{Seq: 1}))
	require.NoError(t, w.Receipt(&audit.Receipt{From: "MY"}))
	err = w.Checkpoint(&audit.Checkpoint{Seq: 1})
	require.ErrorIs(t, err, audit.ErrBundle)
	assert.EqualError(t, err, "bad evidence bundle: a checkpoint cannot follow a receipt")
	assert.EqualError(t, w.Entry(&audit.Entry{Seq: 2}), "bad evidence bundle: an entry cannot follow a receipt")
	assert.Zero(t, buf.Len(), "buffered until Close")
	require.NoError(t, w.Close())
	require.NoError(t, w.Close(), "Close is idempotent")
	assert.Error(t, w.Entry(&audit.Entry{Seq: 3}), "no writes after Close")

	b, err := audit.ReadBundle(&buf)
	require.NoError(t, err)
	assert.Equal(t, audit.BundleFormat, b.Header.Format, "the writer sets the format")
	assert.Len(t, b.Entries, 1)
	assert.Len(t, b.Receipts, 1)
}

// TestBundleWriterError: a failing writer's error is returned, by Close at
// the latest.
func TestBundleWriterError(t *testing.T) {
	boom := errors.New("disk full")
	w, err := audit.NewBundleWriter(btFailingWriter{boom}, audit.Header{Node: "TH"})
	require.NoError(t, err, "the header is buffered")
	for i := range 2000 {
		if err = w.Entry(&audit.Entry{Seq: uint64(i + 1), Reason: strings.Repeat("x", 100)}); err != nil {
			break
		}
	}
	require.ErrorIs(t, err, boom)
	require.ErrorIs(t, w.Close(), boom)
}

type btFailingWriter struct{ err error }

func (w btFailingWriter) Write([]byte) (int, error) { return 0, w.err }
