#!/usr/bin/env bash
# Runs the benchmarks behind docs/BENCHMARKS.md, COUNT times each (default
# 5), and prints benchstat's medians. The machine is shared and noisy: read
# medians and the ratios to the floors measured in the same run.
#
#   scripts/bench.sh            # everything (about 15 minutes on 2 cores)
#   COUNT=3 scripts/bench.sh    # quicker
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-5}
out=$(mktemp -d)
run() { # package, regexp, benchtime
  echo "== $1 $2" >&2
  go test -run '^$' -bench "$2" -benchtime "$3" -count "$COUNT" -timeout 60m "$1" | tee -a "$out/bench.txt" >&2
}
run ./catalog  'Search|IndexUpsert|Restore100k' 2000x
run ./catalog  'Import' 20x
run ./policy   '.' 2000x
run ./federation 'Propagation' 200x
run ./federation 'FullSync' 1x      # audited, unaudited, no network
run ./node     'HandoffLatency|HandoffFloor' 300x
run ./node     'HandoffThroughput' 3000x
run ./node     'HandoffAuditCost' 5000x
run ./node     'RestoreReconcile' 1x
run ./store    'OpenVerify100k' 1x
run ./auditor  'Verify' 3x
go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da "$out/bench.txt"
echo "raw results: $out/bench.txt" >&2
