#!/usr/bin/env bash
# Time from `berth apply` to 10 tasks RUNNING and HEALTHY (process driver, 200 ms container
# health-check interval), over several runs; then the server's resident memory when idle.
source "$(dirname "$0")/common.sh"
RUNS="${RUNS:-5}"
"$BERTH_BIN" up -d >/dev/null
stack() {
cat <<YAML
name: bench$1
services:
  s$1:
    desiredCount: 10
    taskDefinition:
      containerDefinitions:
        - name: app
          image: process://berth
          command: ["demo-app"]
          portMappings: [{containerPort: 8080}]
          healthCheck: {command: ["CMD-SHELL", "berth probe http://127.0.0.1:\$PORT/health"], interval: 0.2, timeout: 1, retries: 2}
          stopTimeout: 2
YAML
}
times=()
for i in $(seq 1 "$RUNS"); do
  stack "$i" > "$BENCH_DIR/s$i.yaml"
  ms=$(python3 - "$BERTH_BIN" "$BENCH_DIR/s$i.yaml" "s$i" <<'PY'
import json, os, subprocess, sys, time, urllib.request
berth, stack, svc = sys.argv[1:4]
api = "http://" + os.environ["BERTH_API_ADDR"] + "/"
def call(op, body):
    req = urllib.request.Request(api, data=json.dumps(body).encode(), headers={"x-amz-target": "AmazonEC2ContainerServiceV20141113." + op})
    return json.load(urllib.request.urlopen(req))
t0 = time.monotonic()
subprocess.run([berth, "apply", stack], check=True, stdout=subprocess.DEVNULL)
while True:
    arns = call("ListTasks", {"serviceName": svc})["taskArns"]
    if len(arns) >= 10:
        tasks = call("DescribeTasks", {"tasks": arns})["tasks"]
        if sum(1 for t in tasks if t["lastStatus"] == "RUNNING" and t.get("healthStatus") == "HEALTHY") >= 10:
            break
    time.sleep(0.01)
print(int((time.monotonic() - t0) * 1000))
PY
)
  times+=("$ms")
  echo "run $i: apply -> 10 healthy in $ms ms"
  # Free the machine for the next run.
  printf 'name: bench%s\nservices: {}\n' "$i" > "$BENCH_DIR/e$i.yaml"
  "$BERTH_BIN" apply "$BENCH_DIR/e$i.yaml" >/dev/null
  sleep 3
done
sleep 5
pid=$(cat "$BERTH_STATE_DIR/run/server.pid")
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
echo "apply-to-10-healthy-ms: $(printf '%s\n' "${times[@]}" | stats)"
echo "server-idle-rss-mib: $((rss_kb / 1024))"
