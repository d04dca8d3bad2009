package catalog

import (
	"slices"
	"strings"
	"unicode"
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
	var (
		toks   []string
		seg    []rune // current segment, lower-cased
		inThai bool   // seg is a Thai run
	)
	flush := func() {
		switch {
		case len(seg) == 0:
		case inThai && len(seg) == 1:
			toks = append(toks, string(seg))
		case inThai:
			for i := 0; i+1 < len(seg); i++ {
				toks = append(toks, string(seg[i:i+2]))
			}
		case len(seg) == 1 && unicode.Is(unicode.Latin, seg[0]):
			// dropped: one Latin letter
		default:
			if len(seg) > maxTokenRunes {
				seg = seg[:maxTokenRunes]
			}
			toks = append(toks, string(seg))
		}
		seg = seg[:0]
	}
	for _, r := range text {
		if !isWordRune(r) {
			flush()
			continue
		}
		r = unicode.ToLower(r)
		thai := isThai(r)
		// A script-neutral combining mark (U+0300...) belongs to whatever
		// precedes it; only a change of script starts a new segment.
		if len(seg) > 0 && thai != inThai && !unicode.Is(unicode.Inherited, r) {
			flush()
		}
		if len(seg) == 0 {
			inThai = thai
		}
		seg = append(seg, r)
	}
	flush()
	slices.Sort(toks)
	return slices.Compact(toks)
}

// isWordRune reports whether r is part of a word: a letter, number or mark.
// Invalid UTF-8 decodes to U+FFFD, a symbol, so it separates words.
func isWordRune(r rune) bool {
	if r < 0x80 { // fast path for ASCII, most of the text in practice
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
	}
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r)
}

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
