package refdata_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/refdata"
)

func TestHS(t *testing.T) {
	tests := []struct {
		code   string
		ok     bool
		level  int
		parent string
	}{
		{code: "85", ok: true, level: 2, parent: ""},
		{code: "8543", ok: true, level: 4, parent: "85"},
		{code: "854340", ok: true, level: 6, parent: "8543"},
		{code: "0101", ok: true, level: 4, parent: "01"},
		{code: "010121", ok: true, level: 6, parent: "0101"},
		{code: "240412", ok: true, level: 6, parent: "2404"},
		// UN Comtrade aggregates in the source file, not HS codes.
		{code: "99"},
		{code: "9999"},
		{code: "999999"},
		{code: "TOTAL"},
		{code: "77"}, // chapter reserved by the WCO for future use
		{code: ""},
		{code: "8"},
		{code: "85434"},
		{code: "8543400"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			e, ok := refdata.HS(tt.code)
			require.Equal(t, tt.ok, ok)
			if !tt.ok {
				return
			}
			require.Equal(t, tt.code, e.Code)
			require.Equal(t, tt.level, e.Level)
			require.Equal(t, tt.parent, e.Parent)
			require.NotEmpty(t, e.Description)
		})
	}
}

func TestHSDescription(t *testing.T) {
	e, ok := refdata.HS("854340")
	require.True(t, ok)
	require.Contains(t, e.Description, "electronic cigarettes")
}

func TestValidListingHS(t *testing.T) {
	tests := []struct {
		code string
		want error // nil, ErrUnknownHS or ErrMalformedHS
	}{
		{code: "854340"},
		{code: "0101"},
		{code: "010121"},
		{code: "9504"},
		{code: "9999", want: refdata.ErrUnknownHS},
		{code: "999999", want: refdata.ErrUnknownHS},
		{code: "0100", want: refdata.ErrUnknownHS},
		{code: "854399", want: refdata.ErrUnknownHS},
		{code: "85434", want: refdata.ErrMalformedHS},
		{code: "85434a", want: refdata.ErrMalformedHS},
		{code: "85", want: refdata.ErrMalformedHS}, // a chapter is too coarse for a listing
		{code: "85434000", want: refdata.ErrMalformedHS},
		{code: "", want: refdata.ErrMalformedHS},
		{code: " 0101", want: refdata.ErrMalformedHS},
		{code: "8543.40", want: refdata.ErrMalformedHS},
		{code: "๘๕๔๓", want: refdata.ErrMalformedHS}, // Thai digits are not normalised
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			err := refdata.ValidListingHS(tt.code)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
			require.Contains(t, err.Error(), tt.code)
			other := refdata.ErrUnknownHS
			if errors.Is(tt.want, refdata.ErrUnknownHS) {
				other = refdata.ErrMalformedHS
			}
			require.NotErrorIs(t, err, other)
		})
	}
}

func TestHSPrefixExists(t *testing.T) {
	tests := []struct {
		prefix string
		want   bool
	}{
		{"85", true},
		{"8543", true},
		{"854340", true},
		{"24", true},
		{"2404", true},
		{"01", true},
		{"99", false},
		{"9999", false},
		{"00", false},
		{"8", false},
		{"854", false},
		{"85434", false},
		{"", false},
		{"TOTAL", false},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			require.Equal(t, tt.want, refdata.HSPrefixExists(tt.prefix))
		})
	}
}

func BenchmarkValidListingHS(b *testing.B) {
	refdata.ValidListingHS("0101") // parse the table outside the timed loops
	for _, bc := range []struct {
		name  string
		codes []string
	}{
		// The hot path: listings that pass must not allocate.
		{"valid", []string{"854340", "0101"}},
		{"invalid", []string{"9999", "85434a"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				_ = refdata.ValidListingHS(bc.codes[i%len(bc.codes)])
			}
		})
	}
}
