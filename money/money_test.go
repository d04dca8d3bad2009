package money_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/money"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in, cur string
		want    int64
		err     error
	}{
		{"1250.00", "THB", 125000, nil},
		{"1250", "THB", 125000, nil},
		{"1250.5", "MYR", 125050, nil},
		{"0.01", "IDR", 1, nil},
		{"0", "THB", 0, nil},
		{"", "THB", 0, money.ErrInvalidAmount},
		{"1.234", "THB", 0, money.ErrInvalidAmount},
		{"-1.00", "THB", 0, money.ErrInvalidAmount},
		{"+1.00", "THB", 0, money.ErrInvalidAmount},
		{"1e3", "THB", 0, money.ErrInvalidAmount},
		{"1,000.00", "THB", 0, money.ErrInvalidAmount},
		{" 1.00", "THB", 0, money.ErrInvalidAmount},
		{".50", "THB", 0, money.ErrInvalidAmount},
		{"1.", "THB", 0, money.ErrInvalidAmount},
		{"99999999999999999999", "THB", 0, money.ErrInvalidAmount},
		{"1.00", "EUR", 0, money.ErrUnknownCurrency},
	}
	for _, tt := range tests {
		t.Run(tt.in+"_"+tt.cur, func(t *testing.T) {
			got, err := money.Parse(tt.in, tt.cur)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got.Minor)
			require.Equal(t, tt.cur, got.Currency)
		})
	}
}

func TestDecimal(t *testing.T) {
	tests := []struct {
		minor int64
		want  string
	}{{125000, "1250.00"}, {1, "0.01"}, {0, "0.00"}, {-5, "-0.05"}, {-125050, "-1250.50"}}
	for _, tt := range tests {
		require.Equal(t, tt.want, money.Amount{Minor: tt.minor, Currency: "THB"}.Decimal())
	}
	require.Equal(t, "1250.00 THB", money.Amount{Minor: 125000, Currency: "THB"}.String())
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"1250.00", "0", "1.", ".5", "-1", "99999999999999999999", "1.234", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := money.Parse(s, "THB")
		if err != nil {
			if !errors.Is(err, money.ErrInvalidAmount) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if a.Minor < 0 {
			t.Fatalf("negative amount from %q", s)
		}
		// Round trip: what we print we parse back to the same amount.
		b, err := money.Parse(a.Decimal(), "THB")
		if err != nil || b != a {
			t.Fatalf("round trip of %q: %v %v", s, b, err)
		}
	})
}
