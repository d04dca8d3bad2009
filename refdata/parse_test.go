package refdata

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEmbeddedData parses the embedded files directly, so a corrupted
// regeneration fails here with the parser's message instead of as a panic
// in whichever test happens to touch the tables first.
func TestEmbeddedData(t *testing.T) {
	hs, err := parseHS(hsCSV)
	require.NoError(t, err)
	levels := map[int]int{}
	for _, e := range hs {
		levels[e.Level]++
	}
	// The source's 97/1,229/5,613 less the UN Comtrade aggregates 99, 9999
	// and 999999.
	require.Equal(t, map[int]int{2: 96, 4: 1228, 6: 5612}, levels)

	subs, err := parseSubdivisions(subdivisionsCSV)
	require.NoError(t, err)
	require.Len(t, subs.byCode, 128)
	imtgt := 0
	for _, s := range subs.byCode {
		if s.IMTGT {
			imtgt++
		}
	}
	require.Equal(t, 32, imtgt)
}

func TestParseHSRejectsCorruption(t *testing.T) {
	const header = "section,hscode,description,parent,level\n"
	tests := []struct {
		name, data, wantErr string
	}{
		{"bad header", "section,code,description,parent,level\n", "header"},
		{"empty", "", "header"},
		{"short row", header + "I,01,Animals,TOTAL\n", "wrong number of fields"},
		{"bad level", header + "I,01,Animals,TOTAL,3\n", "level"},
		{"level mismatch", header + "I,0101,Horses,01,2\n", "not 2 digits"},
		{"non-digit", header + "I,0a,Animals,TOTAL,2\n", "not 2 digits"},
		{"no description", header + "I,01,,TOTAL,2\n", "no description"},
		{"chapter parent", header + "I,01,Animals,00,2\n", "want TOTAL"},
		{"wrong parent", header + "I,01,Animals,TOTAL,2\nI,0201,Meat,01,4\n", `want "02"`},
		{"missing parent", header + "I,0101,Horses,01,4\n", "parent 01 is missing"},
		{"duplicate", header + "I,01,Animals,TOTAL,2\nI,01,Animals,TOTAL,2\n", "duplicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseHS(tt.data)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestParseHSStripsBOM(t *testing.T) {
	hs, err := parseHS("\uFEFFsection,hscode,description,parent,level\r\nI,01,Animals; live,TOTAL,2\r\n")
	require.NoError(t, err)
	require.Equal(t, HSEntry{Code: "01", Description: "Animals; live", Level: 2}, hs["01"])
}

func TestParseSubdivisionsRejectsCorruption(t *testing.T) {
	const header = "country,code,name,type,imtgt\n"
	tests := []struct {
		name, data, wantErr string
	}{
		{"short header", "country,code,name,type\n", "wrong number of fields"},
		{"bad header", "country,code,name,kind,imtgt\n", "header"},
		{"unknown country", header + "SG,SG-01,Central,District,0\n", "not a member"},
		{"wrong prefix", header + "TH,MY-01,Johor,State,0\n", "not a TH subdivision"},
		{"bare prefix", header + "TH,TH-,X,Province,0\n", "not a TH subdivision"},
		{"no name", header + "TH,TH-90,,Province,1\n", "no name"},
		{"bad flag", header + "TH,TH-90,Songkhla,Province,yes\n", "imtgt"},
		{"duplicate", header + "TH,TH-90,Songkhla,Province,1\nTH,TH-90,Songkhla,Province,1\n", "duplicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseSubdivisions(tt.data)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestParseSubdivisionsStripsBOM(t *testing.T) {
	idx, err := parseSubdivisions("\uFEFF" + strings.Join([]string{
		"country,code,name,type,imtgt",
		"TH,TH-91,Satun,Province,1",
		"TH,TH-90,Songkhla,Province,1",
	}, "\n"))
	require.NoError(t, err)
	require.Equal(t, []string{"TH-90", "TH-91"}, []string{idx.byCountry["TH"][0].Code, idx.byCountry["TH"][1].Code})
}
