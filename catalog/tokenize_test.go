package catalog_test

import (
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/catalog"
)

func TestTokens(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{"empty", "", nil},
		{"only punctuation", "!!! ... --- ¿? «»", nil},
		{"english", "Premium Jasmine Rice 5kg", []string{"5kg", "jasmine", "premium", "rice"}},
		{"one-letter latin dropped", "A cup of tea, kid's size", []string{"cup", "kid", "of", "size", "tea"}},
		{"digits kept whole", "Air mineral 500ml x 24", []string{"24", "500ml", "air", "mineral"}},
		{"single digits kept", "1.5kg pack of 6", []string{"1", "5kg", "6", "of", "pack"}},
		{"malay", "Kopi Luwak Asli", []string{"asli", "kopi", "luwak"}},
		{"indonesian", "Keripik Singkong Pedas (250 gr) — asli Bandung!", []string{"250", "asli", "bandung", "gr", "keripik", "pedas", "singkong"}},
		{"deduplicated", "Rice RICE rice, rice.", []string{"rice"}},
		{"unicode lower case", "ÉCLAIR Über ĞIDA", []string{"éclair", "über", "ğida"}},
		{"thai bigrams", "ข้าวหอมมะลิ", []string{"ข้", "มม", "มะ", "ลิ", "วห", "หอ", "อม", "ะล", "าว", "้า"}},
		{"thai one rune", "ก", []string{"ก"}},
		{"thai runs split by space", "กาแฟ ดี", []string{"กา", "ดี", "าแ", "แฟ"}},
		{"mixed scripts in one word", "ข้าว100g Rice", []string{"100g", "rice", "ข้", "าว", "้า"}},
		{"mixed scripts thai after latin", "teaชา", []string{"tea", "ชา"}},
		{"other script single char kept", "茶 tea", []string{"tea", "茶"}},
		{"invalid utf-8 separates", "kopi\xffluwak", []string{"kopi", "luwak"}},
		{"long word capped", strings.Repeat("x", 40), []string{strings.Repeat("x", 32)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := catalog.Tokens(tt.text)
			if len(tt.want) == 0 {
				require.Empty(t, got)
				return
			}
			require.Equal(t, tt.want, got)
		})
	}
}

// TestTokensThaiSubstrings checks the promise that makes Thai searchable
// without a dictionary: every substring of two or more runes of a Thai run
// has only tokens that the run has.
func TestTokensThaiSubstrings(t *testing.T) {
	for _, title := range []string{"ข้าวหอมมะลิ", "ทุเรียนหมอนทอง", "ผ้าไหมไทยแท้", "กาแฟดอยช้าง"} {
		all := catalog.Tokens(title)
		rs := []rune(title)
		for i := range rs {
			for j := i + 2; j <= len(rs); j++ {
				q := string(rs[i:j])
				for _, tok := range catalog.Tokens(q) {
					require.Contains(t, all, tok, "query %q of %q", q, title)
				}
			}
		}
	}
	require.Subset(t, catalog.Tokens("ข้าวหอมมะลิ"), catalog.Tokens("หอมมะลิ"))
}

func FuzzTokens(f *testing.F) {
	for _, s := range []string{
		"", "Kopi Luwak Asli", "ข้าวหอมมะลิ 5 กก.", "ÉCLAIR ǅemal İstanbul", "a\u0301b", "\u0e49\u0e49x", "\xff\xfe",
		"ทุเรียนหมอนทอง Durian", "茶 ½ ²", "ᾼ ﬃ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		toks := catalog.Tokens(s)
		require.True(t, slices.IsSorted(toks), "sorted")
		require.Equal(t, len(toks), len(slices.Compact(slices.Clone(toks))), "deduplicated")
		for _, tok := range toks {
			require.NotEmpty(t, tok)
			require.True(t, utf8.ValidString(tok), "valid UTF-8: %q", tok)
			require.Equal(t, strings.ToLower(tok), tok, "lower case")
			require.LessOrEqual(t, utf8.RuneCountInString(tok), 32)
			for _, r := range tok {
				require.True(t, unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r), "word rune %U in %q", r, tok)
			}
		}
	})
}

// referenceTokens is the first, straightforward implementation of Tokens
// (one string per token, a rune loop for every byte). The tokenizer the
// index uses was rewritten for speed; it must say exactly the same.
func referenceTokens(text string) []string {
	var (
		toks   []string
		seg    []rune
		inThai bool
	)
	isThai := func(r rune) bool { return r >= 0x0E00 && r <= 0x0E7F && unicode.Is(unicode.Thai, r) }
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
		default:
			if len(seg) > 32 {
				seg = seg[:32]
			}
			toks = append(toks, string(seg))
		}
		seg = seg[:0]
	}
	for _, r := range text {
		if !(unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r)) {
			flush()
			continue
		}
		r = unicode.ToLower(r)
		thai := isThai(r)
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

var tokenizerSeeds = []string{
	"", "Kopi Luwak Asli", "ข้าวหอมมะลิ 5 กก.", "ÉCLAIR ǅemal İstanbul", "a\u0301b", "\u0e49\u0e49x", "\xff\xfe",
	"ทุเรียนหมอนทอง Durian", "茶 ½ ²", "ᾼ ﬃ", "Teh100g", "ข้าว100g Rice", "teaชา", "kopi\xffluwak",
	"A cup of tea, kid's size", "x\u0301\u0e49ก", "ก\u0301a", strings.Repeat("Ab", 40), strings.Repeat("ก", 40),
	"KOPI-luwak_asli/500ML", "İIıi", "Σίσυφος ΣΊΣΥΦΟΣ", "\u0e01\u0e31\u0e4d\u0e48",
}

func TestTokensMatchReference(t *testing.T) {
	for _, s := range tokenizerSeeds {
		want := referenceTokens(s)
		got := catalog.Tokens(s)
		if len(want) == 0 {
			require.Empty(t, got, "%q", s)
			continue
		}
		require.Equal(t, want, got, "%q", s)
	}
}

func FuzzTokensMatchReference(f *testing.F) {
	for _, s := range tokenizerSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, got := referenceTokens(s), catalog.Tokens(s)
		if len(want) == 0 {
			require.Empty(t, got)
			return
		}
		require.Equal(t, want, got)
	})
}
