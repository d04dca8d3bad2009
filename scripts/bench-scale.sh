#!/usr/bin/env bash
# The catalog at national scale: the benchmark corpus (generated, a third of
# it Thai titles) at LISTINGS listings (default 1,000,000): search latency
# of every query shape, index writes, the index rebuild, a node's cold start
# (store open, decode, index) with its heap per listing, and an import into
# a node that full. Not part of go test ./... (it takes minutes and GBs).
#
#   scripts/bench-scale.sh
#   LISTINGS=300000 COUNT=1 scripts/bench-scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-3}
export IMTGT_BENCH_LISTINGS=${LISTINGS:-1000000}
out=$(mktemp -d)
go test -run '^$' -bench 'Search|IndexUpsert$|IndexDelete' -benchtime 2000x -count "$COUNT" -timeout 120m ./catalog | tee "$out/bench.txt" >&2
go test -run '^$' -bench 'Restore$|Load$|ImportIntoFull' -benchtime 2x -count "$COUNT" -timeout 120m ./catalog | tee -a "$out/bench.txt" >&2
go run ./scripts/benchtable "$out/bench.txt"
echo "raw results: $out/bench.txt" >&2
