#!/usr/bin/env bash
# Log store benchmark: ingest rate of batched appends, and a Logs Insights query
# (`filter @message like /ERROR/ | stats count(*) by bin(1m)`) over the same lines beside
# `grep -c ERROR` over them as a text file, measured in the same run. Prints figures only.
# Usage: bench/logs.sh [LINES] [STREAMS] [BATCH]
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-1000000}
STREAMS=${2:-4}
BATCH=${3:-10000}
cargo build --release -q -p berth-control --example logs_bench
BIN=${CARGO_TARGET_DIR:-target}/release/examples/logs_bench
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
"$BIN" "$DIR" "$LINES" "$STREAMS" "$BATCH" | tee "$DIR/out.txt"
get() { sed -n "s/^$1=//p" "$DIR/out.txt"; }
best=""
for _ in 1 2 3; do
  t0=$(date +%s%N)
  count=$(grep -c ERROR "$DIR/lines.txt")
  t1=$(date +%s%N)
  ns=$((t1 - t0))
  if [ -z "$best" ] || [ "$ns" -lt "$best" ]; then best=$ns; fi
done
grep_s=$(awk -v ns="$best" 'BEGIN { printf "%.4f", ns / 1e9 }')
echo "grep_count=$count"
echo "grep_seconds=$grep_s"
awk -v q="$(get query_seconds)" -v g="$grep_s" 'BEGIN { printf "query_to_grep_ratio=%.2f\n", q / g }'
if [ "$count" != "$(get query_matched)" ]; then
  echo "MISMATCH: grep counted $count, the query matched $(get query_matched)"
fi
