package refdata_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/refdata"
)

func TestSubdivisionByCode(t *testing.T) {
	tests := []struct {
		code    string
		ok      bool
		country string
		name    string
		imtgt   bool
	}{
		{code: "TH-90", ok: true, country: "TH", name: "Songkhla", imtgt: true},
		{code: "TH-10", ok: true, country: "TH", name: "Krung Thep Maha Nakhon"},
		{code: "TH-83", ok: true, country: "TH", name: "Phuket", imtgt: true},
		{code: "MY-01", ok: true, country: "MY", name: "Johor"},
		{code: "MY-07", ok: true, country: "MY", name: "Pulau Pinang", imtgt: true},
		{code: "ID-AC", ok: true, country: "ID", name: "Aceh", imtgt: true},
		{code: "ID-JK", ok: true, country: "ID", name: "Jakarta Raya"},
		{code: "ID-SM"}, // Sumatera is a "Geographical unit", not a subdivision
		{code: "XX-01"},
		{code: "th-90"},
		{code: "TH90"},
		{code: ""},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			s, ok := refdata.SubdivisionByCode(tt.code)
			require.Equal(t, tt.ok, ok)
			if !tt.ok {
				return
			}
			require.Equal(t, tt.code, s.Code)
			require.Equal(t, tt.country, s.Country)
			require.Equal(t, tt.name, s.Name)
			require.Equal(t, tt.imtgt, s.IMTGT)
			require.NotEmpty(t, s.Type)
		})
	}
}

func TestValidRegion(t *testing.T) {
	tests := []struct {
		country, code string
		ok            bool
		unknownCtry   bool
	}{
		{country: "TH", code: "TH-90", ok: true},
		{country: "TH", code: "TH-10", ok: true},
		{country: "MY", code: "MY-01", ok: true},
		{country: "ID", code: "ID-AC", ok: true},
		{country: "MY", code: "TH-90"},
		{country: "ID", code: "MY-01"},
		{country: "TH", code: "TH-99"},
		{country: "TH", code: "XX-01"},
		{country: "TH", code: ""},
		{country: "XX", code: "XX-01", unknownCtry: true},
		{country: "th", code: "TH-90", unknownCtry: true},
		{country: "", code: "TH-90", unknownCtry: true},
	}
	for _, tt := range tests {
		t.Run(tt.country+"/"+tt.code, func(t *testing.T) {
			err := refdata.ValidRegion(tt.country, tt.code)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, refdata.ErrUnknownRegion)
			require.Contains(t, err.Error(), `"`+tt.code+`"`)
			require.Contains(t, err.Error(), tt.country)
			if tt.unknownCtry {
				require.ErrorIs(t, err, refdata.ErrUnknownCountry)
			} else {
				require.NotErrorIs(t, err, refdata.ErrUnknownCountry)
			}
		})
	}
}

func TestSubdivisions(t *testing.T) {
	tests := []struct {
		country string
		total   int
		imtgt   int
	}{
		{country: "TH", total: 78, imtgt: 14},
		{country: "MY", total: 16, imtgt: 8},
		{country: "ID", total: 34, imtgt: 10},
		{country: "XX"},
		{country: ""},
	}
	allIMTGT := 0
	for _, tt := range tests {
		t.Run(tt.country, func(t *testing.T) {
			subs := refdata.Subdivisions(tt.country)
			if tt.total == 0 {
				require.Nil(t, subs)
				return
			}
			require.Len(t, subs, tt.total)
			require.True(t, slices.IsSortedFunc(subs, func(a, b refdata.Subdivision) int {
				return strings.Compare(a.Code, b.Code)
			}))
			n := 0
			for _, s := range subs {
				require.Equal(t, tt.country, s.Country)
				require.True(t, strings.HasPrefix(s.Code, tt.country+"-"), s.Code)
				got, ok := refdata.SubdivisionByCode(s.Code)
				require.True(t, ok)
				require.Equal(t, s, got)
				if s.IMTGT {
					n++
				}
			}
			require.Equal(t, tt.imtgt, n)
			allIMTGT += n
		})
	}
	require.Equal(t, 32, allIMTGT)
}

func TestSubdivisionsReturnsCopy(t *testing.T) {
	subs := refdata.Subdivisions("TH")
	subs[0].Name = "changed"
	require.NotEqual(t, "changed", refdata.Subdivisions("TH")[0].Name)
}

func TestCountries(t *testing.T) {
	want := []refdata.Country{
		{Code: "TH", Name: "Thailand", Currency: "THB"},
		{Code: "MY", Name: "Malaysia", Currency: "MYR"},
		{Code: "ID", Name: "Indonesia", Currency: "IDR"},
	}
	require.Equal(t, want, refdata.Countries())
	for _, c := range want {
		got, ok := refdata.CountryByCode(c.Code)
		require.True(t, ok)
		require.Equal(t, c, got)
	}
	for _, code := range []string{"", "XX", "th", "SG", "THA"} {
		_, ok := refdata.CountryByCode(code)
		require.False(t, ok, code)
	}
}
