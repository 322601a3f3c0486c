#!/usr/bin/env bash
# proxy.sh -- berth's proxy against nginx and haproxy on loopback, then its memory with 10,000
# idle keep-alive connections. Prints figures; asserts nothing.
#
#   cargo build --release -p berth-cli && bench/proxy.sh      # runs `berth proxy --config FILE`
#   BERTH_BIN=/path/to/berth bench/proxy.sh                   # default: $CARGO_TARGET_DIR (or
#                                                             # target)/release/berth
#
# Environment: BERTH_BIN, CONNS_LIST (default "64 256"), PROXY_WORKERS (default 1),
# ROUNDS (default 5) / DURATION / ... are passed through to proxy-compare.sh; IDLE_CONNS (default 10000);
# SKIP_COMPARE=1 or SKIP_IDLE=1 to run one part only.
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
compare="$here/../../shared/bench/proxy-compare.sh"
[[ -x $compare || -f $compare ]] || { echo "proxy.sh: $compare not found" >&2; exit 1; }

BERTH_BIN=${BERTH_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/berth}
if ! { [[ -x $BERTH_BIN ]] && "$BERTH_BIN" proxy --help >/dev/null 2>&1; }; then
    echo "proxy.sh: $BERTH_BIN with a 'proxy' command not found; cargo build --release -p berth-cli" >&2
    exit 1
fi
PROXY_CMD="$BERTH_BIN proxy --config"
export PROXY_CMD
PROXY_WORKERS=${PROXY_WORKERS:-1}
export PROXY_WORKERS
# Five rounds: single runs on a 2-core VM swing by 10-50 % for every proxy, and the ratio line is
# the median of the per-round ratios (proxy-compare.sh suggests 5-7 rounds for small effects).
ROUNDS=${ROUNDS:-5}
export ROUNDS

# The candidate: a static ProxyConfig -- one listener on :18100 forwarding to a target group
# with both backends, health checks on /.
write_config() {
    cat >"$1" <<'JSON'
{
  "version": 1,
  "listeners": [{
    "arn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener/app/bench/0000000000000001/0000000000000001",
    "load_balancer_arn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/bench/0000000000000001",
    "bind": "127.0.0.1:18100",
    "protocol": "HTTP",
    "rules": [],
    "default_actions": [{"type": "forward", "target_groups": [{"arn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/bench/0000000000000001", "weight": 1}]}],
    "idle_timeout_seconds": 60
  }],
  "target_groups": [{
    "arn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/bench/0000000000000001",
    "name": "bench",
    "health_check": {"enabled": true, "path": "/", "port": "traffic-port", "interval_seconds": 5,
                     "timeout_seconds": 2, "healthy_threshold": 2, "unhealthy_threshold": 2, "matcher": "200"},
    "deregistration_delay_seconds": 0,
    "stickiness_seconds": null,
    "algorithm": "round_robin",
    "slow_start_seconds": 0,
    "targets": [{"id": "127.0.0.1", "port": 18081, "draining": false},
                {"id": "127.0.0.1", "port": 18082, "draining": false}]
  }]
}
JSON
}
export -f write_config

if [[ ${SKIP_COMPARE:-0} != 1 ]]; then
    for conns in ${CONNS_LIST:-64 256}; do
        echo "== CONNS=$conns PROXY_WORKERS=$PROXY_WORKERS"
        CONNS=$conns CANDIDATE_NAME=berth \
            CANDIDATE_CMD='write_config "$BENCH_TMP/proxy.json" && BERTH_PROXY_WORKERS=$PROXY_WORKERS exec $PROXY_CMD "$BENCH_TMP/proxy.json"' \
            bash "$compare"
    done
fi

if [[ ${SKIP_IDLE:-0} != 1 ]]; then
    n=${IDLE_CONNS:-10000}
    ulimit -n $((n + 1000)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    tmp=$(mktemp -d /tmp/berth-proxy-idle.XXXXXX)
    pid=""
    cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
    trap cleanup EXIT
    write_config "$tmp/proxy.json"
    sed -i 's/18100/18110/' "$tmp/proxy.json"
    BERTH_PROXY_WORKERS=$PROXY_WORKERS $PROXY_CMD "$tmp/proxy.json" >"$tmp/proxy.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/18110) 2>/dev/null && break; sleep 0.1; done
    rss0=$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status")
    # Open n connections, send one request on each (keep-alive), keep them open idle, measure.
    python3 - "$n" "$pid" <<'PY'
import socket, sys, time
n, pid = int(sys.argv[1]), sys.argv[2]
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", 18110), timeout=10)
    socks.append(s)
ok = 0
for s in socks:
    s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
for s in socks:
    try:
        data = s.recv(4096)
        ok += data.startswith(b"HTTP/1.1 ")
    except OSError:
        pass
time.sleep(2)
rss = 0
with open(f"/proc/{pid}/status") as f:
    for line in f:
        if line.startswith("VmRSS"):
            rss = int(line.split()[1])
print(f"idle-conns-open: {len(socks)} answered: {ok}")
print(f"idle-10k-rss-mib: {rss / 1024:.1f}")
for s in socks:
    s.close()
PY
    echo "rss-before-connections-mib: $(awk -v k="$rss0" 'BEGIN { printf "%.1f", k / 1024 }')"
fi
