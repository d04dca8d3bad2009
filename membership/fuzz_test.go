package membership_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/membership"
)

func FuzzParse(f *testing.F) {
	for _, m := range []*membership.Manifest{
		sign(f, manifest(f, 1, 2, "TH", "MY", "ID"), "TH", "MY"),
		manifest(f, 9, 1, "BN"),
	} {
		data, err := m.Marshal()
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte("federation: imtgt\nversion: 1\nexpires: 2027-01-01T00:00:00Z\nthreshold: 1\nmembers: []\n"))
	f.Add([]byte("federation: &a imtgt\nversion: 1\nexpires: *a\n---\n"))
	f.Add([]byte("members:\n  - &m {country: TH}\n  - *m\n"))
	f.Add([]byte("version: !!binary AAAA\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := membership.Parse(data)
		if err != nil {
			require.ErrorIs(t, err, membership.ErrMalformed)
			return
		}
		require.NoError(t, m.Validate())
		out, err := m.Marshal()
		require.NoError(t, err)
		again, err := membership.Parse(out)
		require.NoError(t, err, "%s", out)
		require.Equal(t, m, again)
		require.Equal(t, m.SigningBytes(), again.SigningBytes())
		require.Equal(t, m.CheckSignatures(), again.CheckSignatures())
	})
}

func FuzzParseMember(f *testing.F) {
	for _, c := range []string{"TH", "MY", "ID"} {
		data, err := json.Marshal(member(c))
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte(`{"country":"TH","Country":"MY"}`))
	f.Add([]byte(`{"country":"TH"} []`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		mem, err := membership.ParseMember(data)
		if err != nil {
			require.ErrorIs(t, err, membership.ErrMalformed)
			return
		}
		out, err := json.Marshal(mem)
		require.NoError(t, err)
		again, err := membership.ParseMember(out)
		require.NoError(t, err, "%s", out)
		require.Equal(t, mem, again)
	})
}
