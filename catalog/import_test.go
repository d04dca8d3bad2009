package catalog_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/catalog"
)

func TestParseImportCSV(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		rows     int
		bad      []int // lines refused by the parser
		fileErr  string
		firstRow func(t *testing.T, in catalog.Input)
	}{
		{
			name: "good rows with attributes and images",
			in: "title,hs_code,price,quantity,ship_from,images,attr:weight\n" +
				"ข้าวหอมมะลิ,100630,265.00,10,TH-84,https://x.test/a.jpg|https://x.test/b.jpg,5 kg\n" +
				"Coffee,090111,350,5,TH-84,,\n",
			rows: 2,
			firstRow: func(t *testing.T, in catalog.Input) {
				require.Equal(t, "ข้าวหอมมะลิ", in.Title)
				require.Equal(t, "THB", in.Price.Currency)
				require.Equal(t, []string{"https://x.test/a.jpg", "https://x.test/b.jpg"}, in.Images)
				require.Equal(t, map[string]string{"weight": "5 kg"}, in.Attributes)
			},
		},
		{name: "BOM in header", in: "\ufefftitle,hs_code,price,quantity,ship_from\nA,0901,1,1,TH-90\n", rows: 1},
		{name: "bad quantity reported by line", in: "title,hs_code,price,quantity,ship_from\nA,0901,1,1,TH-90\nB,0901,1,lots,TH-90\n", rows: 1, bad: []int{3}},
		{name: "wrong field count", in: "title,hs_code,price,quantity,ship_from\nA,0901,1,1\nB,0901,1,1,TH-90\n", rows: 1, bad: []int{2}},
		{name: "multi-line quoted field keeps line numbers", in: "title,hs_code,price,quantity,ship_from,description\nA,0901,1,1,TH-90,\"two\nlines\"\nB,0901,1,x,TH-90,\n", rows: 1, bad: []int{4}},
		{name: "empty file", in: "", fileErr: "empty"},
		{name: "unknown column", in: "title,hs_code,price,quantity,ship_from,colour\n", fileErr: `unknown column "colour"`},
		{name: "missing column", in: "title,hs_code,price,quantity\n", fileErr: `missing column "ship_from"`},
		{name: "duplicate column", in: "title,title,hs_code,price,quantity,ship_from\n", fileErr: "appears twice"},
		{name: "broken quote", in: "title,hs_code,price,quantity,ship_from\n\"A,0901,1,1,TH-90\n", fileErr: "line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, bad, err := catalog.ParseImport(strings.NewReader(tt.in), catalog.FormatCSV, "THB")
			if tt.fileErr != "" {
				require.ErrorIs(t, err, catalog.ErrImportFile)
				require.ErrorContains(t, err, tt.fileErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, rows, tt.rows)
			var lines []int
			for _, b := range bad {
				lines = append(lines, b.Line)
				require.NotEmpty(t, b.Message)
			}
			require.Equal(t, tt.bad, lines)
			if tt.firstRow != nil {
				tt.firstRow(t, rows[0].Input)
			}
		})
	}
}

func TestParseImportNDJSON(t *testing.T) {
	in := `{"title":"A","hs_code":"0901","price":{"amount":"1.00","currency":"THB"},"quantity":1,"ship_from":"TH-90"}

{"title":"B","colour":"red"}
{not json}
{"title":"C"} {"title":"D"}
{"title":"E","hs_code":"0901","price":{"amount":"2.00","currency":"THB"},"quantity":1,"ship_from":"TH-90"}
`
	rows, bad, err := catalog.ParseImport(strings.NewReader(in), catalog.FormatNDJSON, "THB")
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.Equal(t, 1, rows[0].Line)
	require.Equal(t, 6, rows[1].Line)
	require.Len(t, bad, 3)
	require.Equal(t, 3, bad[0].Line)
	require.Contains(t, bad[0].Message, "colour")
	require.Equal(t, 4, bad[1].Line)
	require.Equal(t, 5, bad[2].Line)

	_, _, err = catalog.ParseImport(strings.NewReader(in), "xlsx", "THB")
	require.ErrorIs(t, err, catalog.ErrImportFile)
}

func FuzzParseImport(f *testing.F) {
	f.Add("title,hs_code,price,quantity,ship_from\nA,0901,1,1,TH-90\n", true)
	f.Add("title,hs_code,price,quantity,ship_from,attr:x\n\"a\nb\",1,1,1,1,1\n", true)
	f.Add(`{"title":"A","price":{"amount":"1","currency":"THB"}}`+"\n{", false)
	f.Fuzz(func(t *testing.T, data string, csv bool) {
		format := catalog.FormatNDJSON
		if csv {
			format = catalog.FormatCSV
		}
		rows, bad, err := catalog.ParseImport(strings.NewReader(data), format, "THB")
		if err != nil {
			require.ErrorIs(t, err, catalog.ErrImportFile)
			require.Empty(t, rows)
			return
		}
		for _, r := range rows {
			require.Positive(t, r.Line)
		}
		for _, b := range bad {
			require.Positive(t, b.Line)
			require.NotEmpty(t, b.Code)
		}
	})
}
