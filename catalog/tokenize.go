package catalog

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxTokenRunes caps the length of a word token. Product words are short;
// the cap keeps a pasted serial number or base64 blob in a description from
// making huge index keys. Queries are capped the same way, so a long word
// still finds itself.
const maxTokenRunes = 32

// Tokens splits text into the lower-cased, deduplicated search tokens used
// both to index listings and to query them, sorted in byte order.
//
// Text is split on every rune that is not a letter, number or mark. Within
// a run of such runes, Thai script is separated from other scripts (a title
// may say "ข้าวหอมมะลิ5กก" or "Teh100g"):
//   - Thai has no spaces between words, so a Thai run becomes its
//     overlapping two-rune bigrams (combining vowels and tone marks count as
//     runes), or the rune itself if the run is one rune long. A query is
//     tokenized the same way, so every substring of two or more runes of a
//     Thai title finds it.
//   - Any other run is one word token, digits included ("500ml"). One-letter
//     Latin words ("a", the "s" of "kid's") are dropped as noise; single
//     digits and single letters of other scripts are kept.
//
// Text is not Unicode-normalised (that needs golang.org/x/text): a word
// typed with a combining accent does not match its precomposed form.
func Tokens(text string) []string {
	var t tokenizer
	t.add(text)
	toks := t.strings()
	slices.Sort(toks)
	return slices.Compact(toks)
}

// tokenizer is the implementation of Tokens, built for indexing many
// listings: it appends the tokens of every text it is given, in order and
// not deduplicated, to one byte buffer, and its buffers are reused from one
// listing to the next. The index turns a listing's tokens into posting list
// numbers and sorts and deduplicates those, so the strings are garbage at
// once: one allocation for all of them, instead of one per token (some
// thirty a listing), keeps that garbage small.
type tokenizer struct {
	buf  []byte // the tokens' bytes, one after the other
	ends []int  // ends[i] is where token i ends in buf
	seg  []rune // the current segment, lower-cased
	thai bool   // seg is a Thai run
}

// reset forgets the tokens collected so far, keeping the buffers.
func (t *tokenizer) reset() { t.buf, t.ends = t.buf[:0], t.ends[:0] }

// strings returns the tokens collected so far, in order, as substrings of
// one new string (one allocation for all of them).
func (t *tokenizer) strings() []string {
	if len(t.ends) == 0 {
		return nil
	}
	all := string(t.buf)
	toks := make([]string, len(t.ends))
	start := 0
	for i, end := range t.ends {
		toks[i] = all[start:end]
		start = end
	}
	return toks
}

// add appends the tokens of text. Separate calls never join words: the end
// of text ends the current segment.
func (t *tokenizer) add(text string) {
	for i := 0; i < len(text); {
		r := rune(text[i])
		if r < utf8.RuneSelf {
			i++
			// ASCII, most of the text in practice: inline the tests.
			switch {
			case 'a' <= r && r <= 'z' || '0' <= r && r <= '9':
			case 'A' <= r && r <= 'Z':
				r += 'a' - 'A'
			default:
				t.flush()
				continue
			}
			if len(t.seg) > 0 && t.thai {
				t.flush()
			}
			if len(t.seg) == 0 {
				t.thai = false
			}
			t.seg = append(t.seg, r)
			continue
		}
		r, n := utf8.DecodeRuneInString(text[i:])
		i += n
		if r >= thaiFirst && r <= thaiLast {
			// The Thai block, a third of the catalog's text: a table says
			// which runes are word runes, which are all Thai script,
			// without case, and never Inherited.
			if !thaiWord[r-thaiFirst] {
				t.flush()
				continue
			}
			if len(t.seg) > 0 && !t.thai {
				t.flush()
			}
			if len(t.seg) == 0 {
				t.thai = true
			}
			t.seg = append(t.seg, r)
			continue
		}
		if !isWordRune(r) {
			t.flush()
			continue
		}
		r = unicode.ToLower(r)
		thai := isThai(r)
		// A script-neutral combining mark (U+0300...) belongs to whatever
		// precedes it; only a change of script starts a new segment.
		if len(t.seg) > 0 && thai != t.thai && !unicode.Is(unicode.Inherited, r) {
			t.flush()
		}
		if len(t.seg) == 0 {
			t.thai = thai
		}
		t.seg = append(t.seg, r)
	}
	t.flush()
}

// flush turns the current segment into tokens.
func (t *tokenizer) flush() {
	seg := t.seg
	switch {
	case len(seg) == 0:
	case t.thai && len(seg) == 1:
		t.emit(seg)
	case t.thai:
		for i := 0; i+1 < len(seg); i++ {
			t.emit(seg[i : i+2])
		}
	case len(seg) == 1 && unicode.Is(unicode.Latin, seg[0]):
		// dropped: one Latin letter
	default:
		t.emit(seg[:min(len(seg), maxTokenRunes)])
	}
	t.seg = seg[:0]
}

func (t *tokenizer) emit(rs []rune) {
	for _, r := range rs {
		t.buf = utf8.AppendRune(t.buf, r)
	}
	t.ends = append(t.ends, len(t.buf))
}

// isWordRune reports whether r is part of a word: a letter, number or mark.
// Invalid UTF-8 decodes to U+FFFD, a symbol, so it separates words.
func isWordRune(r rune) bool {
	if r < 0x80 { // fast path for ASCII, most of the text in practice
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
	}
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r)
}

// The Thai Unicode block, and which of its runes are word runes. Every
// word rune of the block is of the Thai script.
const thaiFirst, thaiLast = 0x0E00, 0x0E7F

var thaiWord = func() (t [thaiLast - thaiFirst + 1]bool) {
	for r := rune(thaiFirst); r <= thaiLast; r++ {
		t[r-thaiFirst] = isWordRune(r) && isThai(r) && unicode.ToLower(r) == r && !unicode.Is(unicode.Inherited, r)
		if isWordRune(r) && !t[r-thaiFirst] {
			panic("catalog: a word rune of the Thai block that is not plain Thai")
		}
	}
	return t
}()

func isThai(r rune) bool {
	return r >= 0x0E00 && r <= 0x0E7F && unicode.Is(unicode.Thai, r)
}

// thaiRuns returns the Thai runs of a query that are longer than two runes,
// as Tokens segments them. Bigrams alone only prove that each pair of
// adjacent runes occurs somewhere in a listing; Search checks that the run
// itself occurs, so "หอมมะลิ" does not match a listing that merely has
// "หอม" and "มะลิ" in different places.
func thaiRuns(text string) []string {
	var (
		runs   []string
		seg    strings.Builder
		n      int
		inThai bool
	)
	flush := func() {
		if inThai && n > 2 {
			runs = append(runs, seg.String())
		}
		seg.Reset()
		n = 0
	}
	for _, r := range text {
		if !isWordRune(r) {
			flush()
			continue
		}
		r = unicode.ToLower(r)
		thai := isThai(r)
		if n > 0 && thai != inThai && !unicode.Is(unicode.Inherited, r) {
			flush()
		}
		if n == 0 {
			inThai = thai
		}
		seg.WriteRune(r)
		n++
	}
	flush()
	return runs
}
