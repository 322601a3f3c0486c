#!/usr/bin/env bash
# proxy-cost.sh -- CPU instructions per proxied request, counted by callgrind: repeatable on a
# busy machine (counts do not depend on load), unlike req/s. Starts an nginx backend on two
# ports and `berth proxy --config` (one worker) under callgrind, warms up, then counts the
# instructions of REQUESTS keep-alive GETs sent over CONNS connections (each round sends one
# request on every connection, then reads every response, as wrk's connections would).
# Prints figures; asserts nothing.
#
#   cargo build --release -p berth-cli && bench/proxy-cost.sh
#   REQUESTS=20000 CONNS=64 KEEP=1 bench/proxy-cost.sh    # KEEP=1 keeps the callgrind file
#   callgrind_annotate --inclusive=yes /tmp/berth-proxy-cost.*/callgrind.out
#   PROXY=nginx bench/proxy-cost.sh                        # the same count for nginx (one worker,
#                                                          # proxy-compare.sh's proxy config)
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
export PATH="$PATH:/usr/sbin:/sbin"

BERTH_BIN=${BERTH_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/berth}
REQUESTS=${REQUESTS:-10000}
WARMUP_REQUESTS=${WARMUP_REQUESTS:-2000}
CONNS=${CONNS:-64}
BACKEND_PORT1=${BACKEND_PORT1:-18281}
BACKEND_PORT2=${BACKEND_PORT2:-18282}
PROXY_PORT=${PROXY_PORT:-18290}
for tool in valgrind callgrind_control nginx python3; do
    command -v "$tool" >/dev/null || { echo "proxy-cost.sh: $tool not found" >&2; exit 1; }
done
PROXY=${PROXY:-berth}
[[ $PROXY == nginx || -x $BERTH_BIN ]] || { echo "proxy-cost.sh: $BERTH_BIN not found; cargo build --release -p berth-cli" >&2; exit 1; }

tmp=$(mktemp -d /tmp/berth-proxy-cost.XXXXXX)
backend_pid="" proxy_pid=""
cleanup() {
    [[ -n $proxy_pid ]] && kill "$proxy_pid" 2>/dev/null
    [[ -n $backend_pid ]] && kill "$backend_pid" 2>/dev/null
    wait 2>/dev/null
    [[ ${KEEP:-0} == 1 ]] && echo "kept: $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/backend"
cat >"$tmp/backend/nginx.conf" <<EOF
worker_processes 1;
pid $tmp/backend/nginx.pid;
error_log $tmp/backend/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
    access_log off;
    server_tokens off;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    client_body_temp_path $tmp/backend/client_body;
    proxy_temp_path $tmp/backend/proxy;
    fastcgi_temp_path $tmp/backend/fastcgi;
    uwsgi_temp_path $tmp/backend/uwsgi;
    scgi_temp_path $tmp/backend/scgi;
    default_type text/plain;
    server { listen 127.0.0.1:$BACKEND_PORT1; location / { add_header X-Backend 1; return 200 "ok\n"; } }
    server { listen 127.0.0.1:$BACKEND_PORT2; location / { add_header X-Backend 2; return 200 "ok\n"; } }
}
EOF
nginx -p "$tmp/backend" -e "$tmp/backend/error.log" -c "$tmp/backend/nginx.conf" &
backend_pid=$!

# The same static config as bench/proxy.sh, on this script's ports.
cat >"$tmp/proxy.json" <<JSON
{
  "version": 1,
  "listeners": [{
    "arn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener/app/bench/0000000000000001/0000000000000001",
    "load_balancer_arn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/bench/0000000000000001",
    "bind": "127.0.0.1:$PROXY_PORT",
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
    "targets": [{"id": "127.0.0.1", "port": $BACKEND_PORT1, "draining": false},
                {"id": "127.0.0.1", "port": $BACKEND_PORT2, "draining": false}]
  }]
}
JSON
if [[ $PROXY == nginx ]]; then
    mkdir -p "$tmp/nginx"
    cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
master_process off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
    access_log off;
    server_tokens off;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    client_body_temp_path $tmp/nginx/client_body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    upstream backends {
        server 127.0.0.1:$BACKEND_PORT1;
        server 127.0.0.1:$BACKEND_PORT2;
        keepalive 1024;
        keepalive_requests 100000000;
        keepalive_timeout 120s;
    }
    server {
        listen 127.0.0.1:$PROXY_PORT backlog=4096;
        location / {
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
    valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$tmp/callgrind.out" \
        nginx -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" >"$tmp/proxy.log" 2>&1 &
else
    BERTH_PROXY_WORKERS=1 valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$tmp/callgrind.out" \
        "$BERTH_BIN" proxy --config "$tmp/proxy.json" >"$tmp/proxy.log" 2>&1 &
fi
proxy_pid=$!

python3 - "$PROXY_PORT" "$CONNS" "$WARMUP_REQUESTS" "$REQUESTS" "$proxy_pid" "$tmp" <<'PY'
import socket, subprocess, sys, time, glob, os, re
port, conns, warm, n, pid, tmp = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
deadline = time.time() + 120
while True:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("proxy did not start")
        time.sleep(0.2)
# Wait for the targets to pass their health checks (2 x 5 s), so every request is forwarded.
time.sleep(11)
socks = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(conns)]
REQ = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: proxy-cost\r\nAccept: */*\r\n\r\n"
bufs = {s: b"" for s in socks}

def read_response(s):
    buf = bufs[s]
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v.strip())
            if len(buf) >= end + 4 + length:
                bufs[s] = buf[end + 4 + length:]
                return head.split("\r\n")[0]
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("proxy closed a connection")
        buf += chunk

def run(total):
    done, bad = 0, 0
    while done < total:
        k = min(conns, total - done)
        for s in socks[:k]:
            s.sendall(REQ)
        for s in socks[:k]:
            if not read_response(s).startswith("HTTP/1.1 200"):
                bad += 1
        done += k
    return bad

run(warm)
subprocess.run(["callgrind_control", "-z", pid], check=True, stdout=subprocess.DEVNULL)
t0 = time.time()
bad = run(n)
t1 = time.time()
subprocess.run(["callgrind_control", "-d", "measured", pid], check=True, stdout=subprocess.DEVNULL)
for s in socks:
    s.close()
total = 0
for f in glob.glob(os.path.join(tmp, "callgrind.out*")):
    with open(f) as fh:
        text = fh.read()
    if not re.search(r"^desc: Trigger: .*measured", text, re.M):
        continue
    for line in text.splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            total = max(total, int(line.split()[1]))
print(f"requests: {n} over {conns} connections, non-200: {bad}, {t1 - t0:.1f} s under callgrind")
print(f"instructions-per-request: {total / n:.0f}")
PY
