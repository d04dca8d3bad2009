package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"
)

// BundleFormat names the evidence bundle format in its header. Format 2
// adds the manifest history (Header.Manifests, ManifestAtStart); a format 1
// bundle, from a node before it, carries one manifest and is still read.
const (
	BundleFormat   = "imtgt-audit-bundle/2"
	BundleFormatV1 = "imtgt-audit-bundle/1"
)

// MaxBundleLine bounds one line of a bundle. The header is the long line:
// it carries the manifest and every policy version the node installed (a
// policy file is at most 1 MiB, a manifest too).
const MaxBundleLine = 64 << 20

// ErrBundle means an evidence bundle is malformed or inconsistent.
var ErrBundle = errors.New("bad evidence bundle")

// PolicyDoc is one policy version as the node installed it.
type PolicyDoc struct {
	Version  uint64 `json:"version"`
	Document string `json:"document"` // the exact signed policy YAML: its signature covers these bytes
}

// ManifestDoc is one membership manifest version as the node installed
// it. The chain's admin.manifest entries name it by the hash of Document
// (their payload_hash), which is how the verifier knows when it came into
// force.
type ManifestDoc struct {
	Version  uint64 `json:"version"`
	Document string `json:"document"` // the exact signed manifest YAML
}

// Header opens a bundle. It carries everything the verifier needs besides
// the entries, so that a bundle is checked with no network and no access
// to the node: the node's public key, the manifest naming it, and the
// policies its crossings were allowed by.
type Header struct {
	Format        string      `json:"format"`
	Node          string      `json:"node"` // the node's country
	PeerID        string      `json:"peer_id"`
	PublicKey     []byte      `json:"public_key"`      // crypto.MarshalPublicKey of the node key
	Manifest      string      `json:"manifest"`        // the installed federation manifest YAML (signed)
	Policies      []PolicyDoc `json:"policies"`        // every policy version the node ever installed
	PolicyAtStart uint64      `json:"policy_at_start"` // version in force before the first exported entry (0 = none)
	FirstSeq      uint64      `json:"first_seq"`       // seq of the first exported entry
	Prev          string      `json:"prev"`            // hash of the entry before it ("" when FirstSeq is 1)
	From          time.Time   `json:"from,omitzero"`   // the export's requested range, if any
	To            time.Time   `json:"to,omitzero"`
	GeneratedAt   time.Time   `json:"generated_at"`

	// Manifests (format 2) are every manifest version the node installed
	// and kept, ascending, the installed one (Manifest) last: each
	// countersignature and receipt is checked against the one in force
	// when it was made. Format 1 has none and checks all against Manifest.
	Manifests       []ManifestDoc `json:"manifests,omitempty"`
	ManifestAtStart uint64        `json:"manifest_at_start,omitempty"` // version in force before the first exported entry (0 = none)
}

// Receipt is a peer's signed receipt for an order message this node sent.
type Receipt struct {
	From     string `json:"from"` // country of the node that signed it
	OrderID  string `json:"order_id"`
	Kind     string `json:"kind"` // "handoff" | "status"
	Seq      uint64 `json:"seq"`
	Envelope []byte `json:"envelope"` // the signed receipt envelope, exact bytes
}

// bundleLine is one line of a bundle: exactly one of its fields is set.
type bundleLine struct {
	Header     *Header     `json:"header,omitempty"`
	Entry      *Entry      `json:"entry,omitempty"`
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
	Receipt    *Receipt    `json:"receipt,omitempty"`
}

// section is a part of a bundle; sections come in this order.
type section int

const (
	sectionHeader section = iota
	sectionEntries
	sectionCheckpoints
	sectionReceipts
)

// one names a record of the section in messages ("an entry").
func (s section) one() string {
	return [...]string{"a header", "an entry", "a checkpoint", "a receipt"}[s]
}

// all names the section itself ("the entries").
func (s section) all() string {
	return [...]string{"the header", "the entries", "the checkpoints", "the receipts"}[s]
}

// BundleWriter writes an evidence bundle: a JSON Lines file whose first
// line is the header, then the entries in seq order, the checkpoints and
// the receipts. One record per line keeps a bundle streamable and lets a
// verifier name the line of anything wrong.
type BundleWriter struct {
	w       *bufio.Writer
	enc     *json.Encoder
	section section
	err     error // sticky: the first write error, or errClosed
}

var errClosed = errors.New("bundle writer is closed")

// NewBundleWriter starts a bundle on w with header h (its Format is set).
// Output is buffered: call Close to flush it.
func NewBundleWriter(w io.Writer, h Header) (*BundleWriter, error) {
	h.Format = BundleFormat
	bw := bufio.NewWriterSize(w, 64<<10)
	b := &BundleWriter{w: bw, enc: json.NewEncoder(bw)}
	b.enc.SetEscapeHTML(false)
	if err := b.write(sectionHeader, bundleLine{Header: &h}); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *BundleWriter) write(section section, l bundleLine) error {
	if b.err != nil {
		return b.err
	}
	if section < b.section {
		return fmt.Errorf("%w: %s cannot follow %s", ErrBundle, section.one(), b.section.one())
	}
	b.section = section
	if err := b.enc.Encode(l); err != nil {
		b.err = err
		return err
	}
	return nil
}

// Entry writes the next entry. Entries come before every checkpoint and
// receipt.
func (b *BundleWriter) Entry(e *Entry) error { return b.write(sectionEntries, bundleLine{Entry: e}) }

// Checkpoint writes a checkpoint, after the entries.
func (b *BundleWriter) Checkpoint(c *Checkpoint) error {
	return b.write(sectionCheckpoints, bundleLine{Checkpoint: c})
}

// Receipt writes a receipt, after the checkpoints.
func (b *BundleWriter) Receipt(r *Receipt) error {
	return b.write(sectionReceipts, bundleLine{Receipt: r})
}

// Close flushes the bundle. It does not close the underlying writer.
func (b *BundleWriter) Close() error {
	if b.err != nil {
		if b.err == errClosed {
			return nil
		}
		return b.err
	}
	if err := b.w.Flush(); err != nil {
		b.err = err
		return err
	}
	b.err = errClosed
	return nil
}

// Bundle is a bundle as read: the header and every record, with the line
// each record was on so that verification errors can name it.
type Bundle struct {
	Header          Header
	Entries         []Entry
	Checkpoints     []Checkpoint
	Receipts        []Receipt
	EntryLines      []int // line number of each entry (the header is line 1)
	CheckpointLines []int // line number of each checkpoint
	ReceiptLines    []int // line number of each receipt
}

// ReadBundle reads a bundle line by line. It checks the form only: the
// header comes first and has the known format, each line is exactly one
// header, entry, checkpoint or receipt in strict JSON (unknown fields are
// refused), sections come in order, and the file ends with a newline (a
// file cut off mid-line is refused as truncated). Whether the content is
// true is for Verify. Errors wrap ErrBundle and name the line.
//
// Note that encoding/json matches field names case-insensitively and lets
// a repeated key overwrite an earlier one; neither can change what Verify
// accepts, since every value it trusts is hashed or signed.
func ReadBundle(r io.Reader) (*Bundle, error) {
	// Decoding the JSON is most of the cost of reading (a bundle of 100,000
	// entries is about 50 MB): one goroutine reads lines into chunks,
	// GOMAXPROCS workers decode the chunks, and this one takes them in
	// order, applies the section rules and stops at the first error, so
	// errors are those, and name the lines, of a line-by-line read.
	p := newBundlePipeline(r)
	defer p.stop()
	b := &Bundle{}
	cur := sectionHeader
	for c := range p.ordered {
		<-c.done
		for i := range c.lines {
			n := c.first + i
			if err := c.errs[i]; err != nil {
				return nil, fmt.Errorf("line %d: %w: %w", n, ErrBundle, err)
			}
			l := &c.out[i]
			kind, err := l.kind()
			if err != nil {
				return nil, fmt.Errorf("line %d: %w: %w", n, ErrBundle, err)
			}
			switch {
			case n == 1 && kind != sectionHeader:
				return nil, fmt.Errorf("line 1: %w: the first line must be the header, not %s", ErrBundle, kind.one())
			case n > 1 && kind == sectionHeader:
				return nil, fmt.Errorf("line %d: %w: a second header", n, ErrBundle)
			case kind < cur:
				return nil, fmt.Errorf("line %d: %w: %s after %s (the order is header, entries, checkpoints, receipts)",
					n, ErrBundle, kind.one(), cur.all())
			}
			cur = kind
			switch kind {
			case sectionHeader:
				switch l.Header.Format {
				case BundleFormat:
				case BundleFormatV1:
					if len(l.Header.Manifests) > 0 || l.Header.ManifestAtStart != 0 {
						return nil, fmt.Errorf("line 1: %w: a format %q header has no manifests or manifest_at_start", ErrBundle, BundleFormatV1)
					}
				default:
					return nil, fmt.Errorf("line 1: %w: format %q, want %q (or %q)", ErrBundle, l.Header.Format, BundleFormat, BundleFormatV1)
				}
				b.Header = *l.Header
			case sectionEntries:
				b.Entries = append(b.Entries, *l.Entry)
				b.EntryLines = append(b.EntryLines, n)
			case sectionCheckpoints:
				b.Checkpoints = append(b.Checkpoints, *l.Checkpoint)
				b.CheckpointLines = append(b.CheckpointLines, n)
			case sectionReceipts:
				b.Receipts = append(b.Receipts, *l.Receipt)
				b.ReceiptLines = append(b.ReceiptLines, n)
			}
		}
		if c.readErr != nil {
			return nil, c.readErr
		}
	}
	if p.lines == 0 {
		return nil, fmt.Errorf("%w: the bundle is empty", ErrBundle)
	}
	return b, nil
}

// bundleChunk is a run of consecutive lines of a bundle and, once done is
// closed, their decoding. readErr is the read error that ended the
// bundle right after these lines.
type bundleChunk struct {
	first   int // line number of lines[0]
	lines   [][]byte
	out     []bundleLine
	errs    []error
	readErr error
	done    chan struct{}
}

// Chunks of at most this many lines or bytes: big enough that handing
// one over costs little against decoding it, small enough that the
// workers share a bundle of a few thousand entries.
const (
	chunkLines = 256
	chunkBytes = 1 << 20
)

// bundlePipeline reads and decodes a bundle's lines ahead of ReadBundle.
type bundlePipeline struct {
	ordered chan *bundleChunk // every chunk, in line order
	quit    chan struct{}
	wg      sync.WaitGroup
	lines   int // lines read; set before ordered is closed
}

func newBundlePipeline(r io.Reader) *bundlePipeline {
	workers := max(1, runtime.GOMAXPROCS(0))
	p := &bundlePipeline{ordered: make(chan *bundleChunk, 4*workers), quit: make(chan struct{})}
	work := make(chan *bundleChunk, 2*workers)
	p.wg.Add(1 + workers)
	go func() {
		defer p.wg.Done()
		defer close(p.ordered)
		defer close(work)
		p.read(r, work)
	}()
	for range workers {
		go func() {
			defer p.wg.Done()
			dec := newLineDecoder()
			for c := range work {
				for i, raw := range c.lines {
					if c.errs[i] = dec.decode(raw, &c.out[i]); c.errs[i] != nil {
						// A decoder is not used after an error; the line
						// after it gets a fresh one (ReadBundle stops at
						// the first error anyway).
						dec = newLineDecoder()
					}
				}
				close(c.done)
			}
		}()
	}
	return p
}

// read splits r into chunks and hands each to the workers and, in order,
// to ReadBundle, until the end, a read error or quit.
func (p *bundlePipeline) read(r io.Reader, work chan<- *bundleChunk) {
	lr := lineReader{r: bufio.NewReaderSize(r, 256<<10)}
	defer func() { p.lines = lr.line }()
	for {
		c := &bundleChunk{first: lr.line + 1, done: make(chan struct{})}
		size := 0
		for len(c.lines) < chunkLines && size < chunkBytes {
			raw, err := lr.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				var cut truncatedError
				if errors.As(err, &cut) {
					c.readErr = err
				} else {
					c.readErr = fmt.Errorf("line %d: %w: %w", lr.line, ErrBundle, err)
				}
				break
			}
			// lr's buffer is reused by the next read.
			c.lines = append(c.lines, bytes.Clone(raw))
			size += len(raw)
		}
		if len(c.lines) == 0 && c.readErr == nil {
			return
		}
		c.out = make([]bundleLine, len(c.lines))
		c.errs = make([]error, len(c.lines))
		select {
		case work <- c:
		case <-p.quit:
			return
		}
		select {
		case p.ordered <- c:
		case <-p.quit:
			return
		}
		if c.readErr != nil || len(c.lines) < chunkLines && size < chunkBytes {
			return
		}
	}
}

// stop ends the pipeline and waits for its goroutines.
func (p *bundlePipeline) stop() {
	close(p.quit)
	for range p.ordered {
		// Let the reader finish a send it is in.
	}
	p.wg.Wait()
}

// kind returns the one section l holds.
func (l *bundleLine) kind() (section, error) {
	var kind section
	count := 0
	for i, set := range [...]bool{l.Header != nil, l.Entry != nil, l.Checkpoint != nil, l.Receipt != nil} {
		if set {
			kind = section(i)
			count++
		}
	}
	switch count {
	case 0:
		return 0, errors.New("the line is none of header, entry, checkpoint or receipt")
	case 1:
		return kind, nil
	}
	return 0, errors.New("the line holds more than one of header, entry, checkpoint and receipt")
}

// lineDecoder decodes lines strictly, one JSON object per line. It keeps
// one json.Decoder for the whole file and feeds it one line at a time:
// a decoder per line costs more than the decoding (its buffers, and the
// copy of the line into them), and one over the whole stream could not
// tell where a line ends. A JSON object ends at its closing brace, so the
// decoder never asks for the next line before the object is decoded.
type lineDecoder struct {
	src lineSource
	dec *json.Decoder
	fed int64 // bytes fed to dec before the current line
}

// lineSource is the decoder's input: the current line, then io.EOF.
type lineSource struct{ b []byte }

func (s *lineSource) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

func newLineDecoder() *lineDecoder {
	d := &lineDecoder{}
	d.dec = json.NewDecoder(&d.src)
	d.dec.DisallowUnknownFields()
	return d
}

// decode decodes raw, one line without its newline, into l. After an
// error the decoder is not to be used again (ReadBundle stops there).
func (d *lineDecoder) decode(raw []byte, l *bundleLine) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return errors.New("empty line")
	}
	start := d.fed
	d.src.b = raw
	d.fed += int64(len(raw))
	err := d.dec.Decode(l)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	// What follows the object on this line: what the decoder holds
	// unread, then what it has not read yet.
	used := d.dec.InputOffset() - start
	if used < 0 || used > int64(len(raw)) || len(bytes.TrimSpace(raw[used:])) > 0 {
		return errors.New("unexpected data after the JSON object")
	}
	return nil
}

// truncatedError reports a last line with no newline. It wraps ErrBundle
// without repeating its text, for a message that reads as one sentence.
type truncatedError int

func (e truncatedError) Error() string {
	return fmt.Sprintf("line %d is cut off: the bundle is truncated", int(e))
}

func (truncatedError) Unwrap() error { return ErrBundle }

// lineReader returns a file's lines without their newline, counting them,
// and refuses a last line with no newline: a bundle is written whole, so
// one that ends mid-line was cut off.
type lineReader struct {
	r    *bufio.Reader
	line int    // number of the line last returned
	long []byte // reused for lines longer than the buffer
}

func (lr *lineReader) next() ([]byte, error) {
	b, err := lr.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		lr.long = append(lr.long[:0], b...)
		for err == bufio.ErrBufferFull {
			if len(lr.long) > MaxBundleLine {
				lr.line++
				return nil, fmt.Errorf("longer than %d bytes", MaxBundleLine)
			}
			b, err = lr.r.ReadSlice('\n')
			lr.long = append(lr.long, b...)
		}
		b = lr.long
	}
	switch {
	case err == io.EOF && len(b) == 0:
		return nil, io.EOF
	case err == io.EOF:
		lr.line++
		return nil, truncatedError(lr.line)
	case err != nil:
		lr.line++
		return nil, err
	}
	lr.line++
	if len(b) > MaxBundleLine+1 {
		return nil, fmt.Errorf("longer than %d bytes", MaxBundleLine)
	}
	return b[:len(b)-1], nil
}
