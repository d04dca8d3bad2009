#!/usr/bin/env bash
# Runs every benchmark behind docs/BENCHMARKS.md, COUNT times each (default
# 5), and prints the median of each figure and the table of figures against
# the floors measured in the same run (scripts/benchtable). The machine is
# shared and noisy: quote medians and ratios, not one run. Every figure in
# docs/BENCHMARKS.md comes from this script.
#
#   scripts/bench.sh            # everything, under 20 minutes on 2 cores
#   COUNT=3 scripts/bench.sh    # quicker
#   scripts/bench-scale.sh      # the catalog at 1,000,000 listings
#
# The PostgreSQL sub-benchmarks (/postgres) run on the server
# IMTGT_TEST_POSTGRES names; when it is unset, a throwaway server is started
# with scripts/pg-test-server.sh (fsync on) and stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-5}
out=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
: > "$out/bench.txt"
if [ -z "${IMTGT_TEST_POSTGRES:-}" ]; then
  pgdir=$out/pg
  eval "$(scripts/pg-test-server.sh start "$pgdir")"
  trap 'scripts/pg-test-server.sh stop "$pgdir"' EXIT
fi
start=$(date +%s)
failed=""
run() { # package, regexp, benchtime; a failing step is reported at the end, the others still run
  echo "== $1 $2 ($(( $(date +%s) - start )) s)" >&2
  go test -run '^$' -bench "$2" -benchtime "$3" -count "$COUNT" -timeout 60m "$1" | tee -a "$out/bench.txt" >&2 || failed="$failed $1:$2"
}
run ./catalog  'Search|IndexUpsert$|IndexDelete' 2000x  # search latency, index writes one at a time
run ./catalog  'IndexUpsertBulk' 20x                    # index writes 1,000 at a time
run ./catalog  'Restore$|Load$' 3x                      # index rebuild; a node's cold start
run ./catalog  'Import' 10x                             # durable import and its floors, bbolt and postgres; into a full node
run ./policy   '.' 300x                                 # Evaluate on one listing and on a mixed catalog, Orderable, quotes, parse
run ./federation 'Propagation' 100x
run ./federation 'FullSync|SyncVerifyFloor|VerifyOneByOne' 1x   # sync to a fresh peer, audited and not; its verify floor
run ./node     'HandoffLatency|HandoffFloor' 300x       # bbolt and postgres
run ./node     'HandoffThroughput' 3000x                # postgres: MY as two replicas
run ./node     'FollowerSearch' 1000x                   # search p99 on a follower
run ./node     'SearchHTTP' 2000x                       # a search through the HTTP API, against in-process and /healthz
run ./node     'HandoffAuditCost' 3000x
run ./node     'RestoreReconcile' 1x
run ./store    'OpenVerify100k' 1x
run ./auditor  'Verify' 3x
# Failover time (issue 12): the built binary, TH's leader SIGKILLed 3 times a run.
for _ in $(seq "$COUNT"); do
  echo "== ./cmd/imtgt-node TestFailoverTime ($(( $(date +%s) - start )) s)" >&2
  IMTGT_BENCH_FAILOVER=3 go test -count 1 -run '^TestFailoverTime$' -v ./cmd/imtgt-node | grep -E 'kill|failover over' | tee -a "$out/failover.txt" >&2
done
echo "== done in $(( $(date +%s) - start )) s" >&2
go run ./scripts/benchtable "$out/bench.txt"
echo "raw results: $out/bench.txt, $out/failover.txt" >&2
if [ -n "$failed" ]; then
  echo "FAILED:$failed" >&2
  exit 1
fi
