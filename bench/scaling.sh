#!/usr/bin/env bash
# scaling.sh -- how fast berth's Application Auto Scaling reacts: a single-node cluster (server,
# agent, proxy on loopback), a demo-app service of 2 tasks behind a listener, and an
# ALBRequestCountPerTarget target tracking policy (target 600 requests per target per minute,
# min 2, max 4) registered with the real `aws application-autoscaling` CLI. A paced load of RATE
# requests/s (default 40 = 1200 per target per minute on 2 tasks) runs for LOAD_SECONDS (default 45).
# Prints figures; asserts nothing.
#
#   bench/scaling.sh
#   RATE=60 LOAD_SECONDS=60 SCALE_IN_COOLDOWN=30 bench/scaling.sh
#   BERTH_BIN=target/debug/berth bench/scaling.sh     # use this binary instead of building one
#
# Last lines:
#   scale-out: N s   start of the sustained load -> first response served by a new task via the proxy
#   scale-in: N s    end of the load -> service back at its minimum (desired and running = 2),
#                    with the stated scale-in cooldown
# Needs python3 and the aws CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-40}
LOAD_SECONDS=${LOAD_SECONDS:-45}
SCALE_IN_COOLDOWN=${SCALE_IN_COOLDOWN:-30}
SCALE_OUT_COOLDOWN=${SCALE_OUT_COOLDOWN:-10}
export SCALE_IN_COOLDOWN
command -v aws >/dev/null || { echo "scaling.sh: the aws CLI is not installed" >&2; exit 1; }
if [[ -n ${BERTH_BIN:-} ]]; then
    berth=$(realpath "$BERTH_BIN")
else
    cargo build --quiet -p berth-cli
    berth=$(realpath "${CARGO_TARGET_DIR:-target}/debug/berth")
fi

dir=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api_port=$(free_port)
lb_port=$(free_port)
export BERTH_STATE_DIR=$dir BERTH_API_ADDR=127.0.0.1:$api_port BERTH_LOG=warn
# The server creates its admin user with this token; the CLI sends it.
BERTH_TOKEN="berth_bench_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export BERTH_TOKEN BERTH_BOOTSTRAP_TOKEN=$BERTH_TOKEN BERTH_CONFIG_DIR=$dir/client
export AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
pids=()
cleanup() {
    {
        for p in "${pids[@]}"; do kill "$p" || true; done
        wait || true
        # Stops every task the agent started (their shims), as the test harness does.
        "$berth" down || true
    } >/dev/null 2>&1
    rm -rf "$dir"
}
trap cleanup EXIT
for c in server agent proxy; do
    "$berth" "$c" >"$dir/$c.log" 2>&1 &
    pids+=($!)
    [[ $c == server ]] && for _ in $(seq 100); do "$berth" probe "http://$BERTH_API_ADDR/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
done
awsb() { aws --endpoint-url "http://$BERTH_API_ADDR" --output json "$@"; }
# An admin access key for the AWS CLI.
key=$("$berth" auth create-key admin --output json)
AWS_ACCESS_KEY_ID=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["accessKeyId"])' <<<"$key")
AWS_SECRET_ACCESS_KEY=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["secretAccessKey"])' <<<"$key")
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY

cat >"$dir/berth.yaml" <<YAML
name: bench
loadBalancers:
  web:
    listeners:
      - port: $lb_port
        defaultAction: {forward: web}
targetGroups:
  web:
    port: 8080
    healthCheck: {path: /health, intervalSeconds: 0.5, timeoutSeconds: 0.4, healthyThreshold: 2, unhealthyThreshold: 2}
    attributes: {deregistration_delay.timeout_seconds: "1"}
services:
  web:
    desiredCount: 2
    loadBalancers: [{targetGroup: web, containerName: app, containerPort: 8080}]
    taskDefinition:
      containerDefinitions:
        - name: app
          image: process://berth
          command: ["demo-app"]
          portMappings: [{containerPort: 8080}]
          stopTimeout: 3
YAML
"$berth" apply "$dir/berth.yaml" >/dev/null
for _ in $(seq 300); do
    [[ $(python3 -c "import urllib.request as u; print(u.urlopen('http://127.0.0.1:$lb_port/', timeout=2).status)" 2>/dev/null) == 200 ]] && break
    sleep 0.1
done

lb_arn=$(awsb elbv2 describe-load-balancers --query 'LoadBalancers[0].LoadBalancerArn' --output text)
tg_arn=$(awsb elbv2 describe-target-groups --query 'TargetGroups[0].TargetGroupArn' --output text)
label="${lb_arn#*:loadbalancer/}/${tg_arn##*:}"
awsb application-autoscaling register-scalable-target --service-namespace ecs --resource-id service/default/web \
    --scalable-dimension ecs:service:DesiredCount --min-capacity 2 --max-capacity 4 >/dev/null
awsb application-autoscaling put-scaling-policy --policy-name rps --service-namespace ecs --resource-id service/default/web \
    --scalable-dimension ecs:service:DesiredCount --policy-type TargetTrackingScaling \
    --target-tracking-scaling-policy-configuration "{\"TargetValue\": 600, \"PredefinedMetricSpecification\": {\"PredefinedMetricType\": \"ALBRequestCountPerTarget\", \"ResourceLabel\": \"$label\"}, \"ScaleOutCooldown\": $SCALE_OUT_COOLDOWN, \"ScaleInCooldown\": $SCALE_IN_COOLDOWN}" >/dev/null
# Let the policy see some on-target (idle) datapoints first.
sleep 3

python3 - "$lb_port" "$RATE" "$LOAD_SECONDS" "$BERTH_API_ADDR" <<'PY'
import json, os, sys, time, http.client, urllib.request
port, rate, seconds, api = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]

def get():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/")
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body

def service():
    req = urllib.request.Request(f"http://{api}/", data=json.dumps({"services": ["web"]}).encode(),
        headers={"X-Amz-Target": "AmazonEC2ContainerServiceV20141113.DescribeServices", "Content-Type": "application/x-amz-json-1.1"})
    s = json.load(urllib.request.urlopen(req, timeout=5))["services"][0]
    return s["desiredCount"], s["runningCount"]

seen = set()
for _ in range(20):
    st, body = get()
    if st == 200:
        seen.add(json.loads(body)["task"])
start = time.monotonic()
first_new = None
sent = 0
while time.monotonic() - start < seconds:
    try:
        st, body = get()
        if st == 200:
            task = json.loads(body)["task"]
            if task not in seen and first_new is None:
                first_new = time.monotonic() - start
    except Exception:
        pass
    sent += 1
    wait = start + sent / rate - time.monotonic()
    if wait > 0:
        time.sleep(wait)
end = time.monotonic()
peak = service()
back = None
while time.monotonic() - end < 300:
    d, r = service()
    if d == 2 and r == 2:
        back = time.monotonic() - end
        break
    time.sleep(0.25)
print(f"load: {sent} requests at {rate}/s for {seconds:.0f} s; desired/running at the end of the load: {peak[0]}/{peak[1]}")
print("AWS for comparison: 1-minute datapoints, AlarmHigh 3 of 3 -> typically 1-3 minutes to scale out; AlarmLow 15 of 15 -> at least 15 minutes to scale in")

print(f"scale-out: {first_new:.1f} s" if first_new is not None else "scale-out: none within the load")
print(f"scale-in: {back:.1f} s (scale-in cooldown {os.environ.get('SCALE_IN_COOLDOWN', '30')} s)" if back is not None else "scale-in: not back at 2 within 300 s")
PY
