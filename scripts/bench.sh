#!/usr/bin/env bash
# Runs the benchmarks behind docs/BENCHMARKS.md, COUNT times each (default
# 5), and prints benchstat's medians. The machine is shared and noisy: read
# medians and the ratios to the floors measured in the same run.
#
#   scripts/bench.sh            # everything (about 15 minutes on 2 cores)
#   COUNT=3 scripts/bench.sh    # quicker
#
# The PostgreSQL sub-benchmarks (/postgres) run on the server
# IMTGT_TEST_POSTGRES names; when it is unset, a throwaway server is started
# with scripts/pg-test-server.sh (fsync on) and stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-5}
out=$(mktemp -d)
if [ -z "${IMTGT_TEST_POSTGRES:-}" ]; then
  pgdir=$out/pg
  eval "$(scripts/pg-test-server.sh start "$pgdir")"
  trap 'scripts/pg-test-server.sh stop "$pgdir"' EXIT
fi
run() { # package, regexp, benchtime
  echo "== $1 $2" >&2
  go test -run '^$' -bench "$2" -benchtime "$3" -count "$COUNT" -timeout 60m "$1" | tee -a "$out/bench.txt" >&2
}
run ./catalog  'Search|IndexUpsert|Restore100k' 2000x
run ./catalog  'Import' 20x          # durable import and its floors, bbolt and postgres
run ./policy   '.' 300x            # Evaluate on one listing and on a mixed catalog, Orderable, quotes, parse
run ./federation 'Propagation' 200x
run ./federation 'FullSync|SyncVerifyFloor' 1x   # audited, unaudited, and the verify floor
run ./federation 'VerifyOneByOne' 1x              # what batch verification replaced
run ./node     'HandoffLatency|HandoffFloor' 300x   # bbolt and postgres
run ./node     'HandoffThroughput' 3000x             # postgres: MY as two replicas
run ./node     'FollowerSearch' 2000x                # issue 12: search p99 on a follower
run ./node     'HandoffAuditCost' 5000x
run ./node     'RestoreReconcile' 1x
run ./store    'OpenVerify100k' 1x
run ./auditor  'Verify' 3x
# Failover time (issue 12): the built binary, TH's leader SIGKILLed 5 times a run.
for _ in $(seq "$COUNT"); do
  echo "== ./cmd/imtgt-node TestFailoverTime" >&2
  IMTGT_BENCH_FAILOVER=5 go test -count 1 -run '^TestFailoverTime$' -v ./cmd/imtgt-node | grep -E 'kill|failover over' >&2
done
go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da "$out/bench.txt"
echo "raw results: $out/bench.txt" >&2
