package store

import (
	"strconv"
	"testing"
)

// FuzzParseNotice: a change-feed notice's payload comes from whoever can
// NOTIFY the channel. Any payload parses to a positive seq or an error,
// never a panic; a seq's decimal form always parses back to it.
func FuzzParseNotice(f *testing.F) {
	for _, s := range []string{"1", "42", "18446744073709551615", "18446744073709551616", "0", "-1", "+1", "", " 1", "1e3", "0x10", "007"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		seq, err := parseNotice(payload)
		if err != nil {
			if seq != 0 {
				t.Fatalf("%q: error %v with seq %d", payload, err, seq)
			}
			return
		}
		if seq == 0 {
			t.Fatalf("%q: seq 0 accepted", payload)
		}
		back, err := parseNotice(strconv.FormatUint(seq, 10))
		if err != nil || back != seq {
			t.Fatalf("%d: round trip gave %d, %v", seq, back, err)
		}
	})
}
