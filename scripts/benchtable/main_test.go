package main

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	in := `goos: linux
pkg: github.com/imtgt/imtgt-node/federation
BenchmarkFullSync100k-2   	       1	3634330430 ns/op	     27515 listings/s
BenchmarkFullSync100k-2   	       1	3403543392 ns/op	     29381 listings/s
BenchmarkFullSync100k-2   	       1	3461864952 ns/op	     28886 listings/s
pkg: github.com/imtgt/imtgt-node/node
BenchmarkHandoffFloor/bbolt-2   	      50	         1.513 floor-ms	         4.037 handoff-p50-ms	0 ns/op
--- FAIL: BenchmarkSomething
PASS
`
	vals, order, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		m    metric
		want float64
		runs int
	}{
		{metric{"federation/BenchmarkFullSync100k", "listings/s"}, 28886, 3},
		{metric{"federation/BenchmarkFullSync100k", "ns/op"}, 3461864952, 3},
		{metric{"node/BenchmarkHandoffFloor/bbolt", "floor-ms"}, 1.513, 1},
		{metric{"node/BenchmarkHandoffFloor/bbolt", "handoff-p50-ms"}, 4.037, 1},
	} {
		if got := vals[tc.m]; len(got) != tc.runs || median(got) != tc.want {
			t.Errorf("%v: %v, want median %v of %d runs", tc.m, got, tc.want, tc.runs)
		}
	}
	if _, ok := vals[metric{"node/BenchmarkHandoffFloor/bbolt", "ns/op"}]; ok {
		t.Error("a zero ns/op (a benchmark reporting its own figures) is kept")
	}
	if len(order) != 4 || order[0].unit != "ns/op" {
		t.Errorf("order %v", order)
	}
	if _, _, err := parse(strings.NewReader("BenchmarkX-2  1  abc ns/op\n")); err == nil {
		t.Error("a value that is not a number is accepted")
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{{[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.xs); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
}

// FuzzParse: any text is parsed or refused with an error, never a panic.
func FuzzParse(f *testing.F) {
	f.Add("pkg: a/b\nBenchmarkX-2  3  1.5 ns/op  2 x/s\n")
	f.Add("BenchmarkY 1 2 3\n")
	f.Fuzz(func(t *testing.T, s string) {
		vals, order, err := parse(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, m := range order {
			if len(vals[m]) == 0 {
				t.Fatalf("%v listed with no values", m)
			}
			_ = median(vals[m])
		}
	})
}
