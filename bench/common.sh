# Shared helpers of berth's benchmark scripts (sourced). They start a private single-node cluster
# on loopback with its own state directory and stop it (and every task) on exit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BERTH_BIN="${BERTH_BIN:-}"
if [ -z "$BERTH_BIN" ]; then
  (cd "$ROOT" && cargo build --quiet --release -p berth-cli)
  BERTH_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/berth"
fi
BENCH_DIR="$(mktemp -d /tmp/berth-bench.XXXXXX)"
export BERTH_STATE_DIR="$BENCH_DIR/state"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export BERTH_API_ADDR="127.0.0.1:$PORT"
# `berth up` on the fresh state directory makes this the admin's token; every command sends it.
BERTH_TOKEN="berth_bench_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export BERTH_TOKEN BERTH_CONFIG_DIR="$BENCH_DIR/client"
cleanup() { "$BERTH_BIN" down >/dev/null 2>&1 || true; rm -rf "$BENCH_DIR"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }
ecs() { curl -s -X POST "http://$BERTH_API_ADDR/" -H "authorization: Bearer $BERTH_TOKEN" -H "x-amz-target: AmazonEC2ContainerServiceV20141113.$1" -d "$2"; }
# median and p99 of numbers on stdin (one per line)
stats() { sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; p=a[int(NR*0.99+0.999)]; if(p=="")p=a[NR]; printf "median %s p99 %s (n=%d)\n", m, p, NR}'; }
