// Command benchtable reads the output of go test -bench (from
// scripts/bench.sh) and prints the median of every figure, then the table
// of figures against the floors measured in the same run, with their
// ratio: the numbers docs/BENCHMARKS.md quotes.
//
//	go run ./scripts/benchtable bench.txt
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// pair is one row of the ratio table: a figure and the floor it is
// measured against, each a benchmark ("package/BenchmarkName/sub") and a
// unit.
type pair struct {
	what          string
	figure, floor metric
	note          string
}

type metric struct{ bench, unit string }

// pairs are the figures with a floor. A floor is a true lower bound of the
// same work, measured in the same run.
var pairs = []pair{
	{"full sync of 100k records to a fresh peer", metric{"federation/BenchmarkFullSync100k", "listings/s"},
		metric{"federation/BenchmarkSyncVerifyFloor100k", "listings/s"}, "floor: the same signatures batch-verified on every core, nothing else"},
	{"batch verification against one by one", metric{"federation/BenchmarkSyncVerifyFloor100k", "listings/s"},
		metric{"federation/BenchmarkVerifyOneByOne100k", "listings/s"}, "crypto/ed25519 through go-libp2p, every core"},
	{"order handoff p50, concurrency 1 (bbolt)", metric{"node/BenchmarkHandoffFloor/bbolt", "handoff-p50-ms"},
		metric{"node/BenchmarkHandoffFloor/bbolt", "floor-ms"}, "floor: a loopback request/reply + one fsync'd commit on each node"},
	{"order handoff p50, concurrency 1 (postgres)", metric{"node/BenchmarkHandoffFloor/postgres", "handoff-p50-ms"},
		metric{"node/BenchmarkHandoffFloor/postgres", "floor-ms"}, "floor: a loopback request/reply + one commit on each node's database"},
	{"durable import (bbolt)", metric{"catalog/BenchmarkImportDurable/bbolt", "listings/s"},
		metric{"catalog/BenchmarkImportFloor/bbolt", "listings/s"}, "floor: the same bytes put raw, one fsync'd transaction per 1,000"},
	{"durable import (postgres)", metric{"catalog/BenchmarkImportDurable/postgres", "listings/s"},
		metric{"catalog/BenchmarkImportFloor/postgres", "listings/s"}, "floor: the same rows inserted raw"},
	{"audit bundle read and verify", metric{"auditor/BenchmarkVerify/read+verify", "entries/s"},
		metric{"auditor/BenchmarkVerify/read", "entries/s"}, "floor: reading and decoding the bundle alone"},
	{"search through the HTTP API, p50", metric{"node/BenchmarkSearchHTTP", "http-p50-µs"},
		metric{"node/BenchmarkSearchHTTP", "floor-µs"}, "floor: the search in-process + a loopback GET /healthz"},
	{"restore and reconcile", metric{"node/BenchmarkRestoreReconcile", "reconcile_s"},
		metric{"node/BenchmarkRestoreReconcile", "floor_pull_s"}, "floor: pulling the same records"},
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+(.*)$`)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtable BENCH_OUTPUT")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	defer f.Close()
	vals, order, err := parse(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintf(w, "%-64s %-18s %14s %5s\n", "benchmark", "unit", "median", "runs")
	for _, m := range order {
		v := vals[m]
		fmt.Fprintf(w, "%-64s %-18s %14s %5d\n", m.bench, m.unit, format(median(v)), len(v))
	}
	fmt.Fprintf(w, "\n%-46s %14s %14s %8s  %s\n", "figure against its floor (medians)", "figure", "floor", "ratio", "unit; floor")
	for _, p := range pairs {
		fv, gv := vals[p.figure], vals[p.floor]
		if len(fv) == 0 || len(gv) == 0 {
			fmt.Fprintf(w, "%-46s %14s %14s %8s  (not run)\n", p.what, "-", "-", "-")
			continue
		}
		a, b := median(fv), median(gv)
		fmt.Fprintf(w, "%-46s %14s %14s %8.2f  %s; %s\n", p.what, format(a), format(b), a/b, p.figure.unit, p.note)
	}
}

// parse reads go test -bench output: "pkg: <import path>" lines name the
// package of the benchmark lines after them.
func parse(r io.Reader) (map[metric][]float64, []metric, error) {
	vals := map[metric][]float64{}
	var order []metric
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = p[strings.LastIndex(p, "/")+1:]
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		fields := strings.Fields(m[3])
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, nil, fmt.Errorf("%q: %v", line, err)
			}
			if fields[i+1] == "ns/op" && v == 0 {
				continue // a benchmark that reports its own figures
			}
			k := metric{pkg + "/" + m[1], fields[i+1]}
			if _, seen := vals[k]; !seen {
				order = append(order, k)
			}
			vals[k] = append(vals[k], v)
		}
	}
	return vals, order, sc.Err()
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func format(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
