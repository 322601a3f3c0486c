#!/usr/bin/env bash
# Deployment wall times on this machine (process driver, 200 ms health-check interval, 1 s
# deregistration delay): a rolling update of 4 tasks from `berth deploy` to stable, and a
# blue/green AllAtOnce switch and its rollback, measured as the time until 100% of requests
# through the proxy reach the other task set.
source "$(dirname "$0")/common.sh"
"$BERTH_BIN" up -d >/dev/null
LPORT=$(free_port)
cat > "$BENCH_DIR/berth.yaml" <<YAML
name: bench
loadBalancers:
  web:
    listeners:
      - port: $LPORT
        defaultAction: {forward: blue}
targetGroups:
  blue:
    port: 8080
    healthCheck: {path: /health, intervalSeconds: 0.2, timeoutSeconds: 0.15, healthyThreshold: 2, unhealthyThreshold: 2}
    attributes: {deregistration_delay.timeout_seconds: "1"}
  green:
    port: 8080
    healthCheck: {path: /health, intervalSeconds: 0.2, timeoutSeconds: 0.15, healthyThreshold: 2, unhealthyThreshold: 2}
    attributes: {deregistration_delay.timeout_seconds: "1"}
services:
  web:
    desiredCount: 4
    loadBalancers: [{targetGroup: blue, containerName: app, containerPort: 8080}]
    deploymentConfiguration: {minimumHealthyPercent: 100, maximumPercent: 200}
    taskDefinition:
      containerDefinitions:
        - name: app
          image: process://berth
          command: ["demo-app"]
          environment: [{name: DEMO_VERSION, value: v1}]
          portMappings: [{containerPort: 8080}]
          healthCheck: {command: ["CMD-SHELL", "berth probe http://127.0.0.1:\$PORT/health"], interval: 0.2, timeout: 1, retries: 2}
          stopTimeout: 2
YAML
"$BERTH_BIN" apply "$BENCH_DIR/berth.yaml" >/dev/null
python3 - "$BERTH_BIN" "$LPORT" <<'PY'
import json, os, re, subprocess, sys, time, urllib.parse, urllib.request
berth, lport = sys.argv[1], int(sys.argv[2])
api = "http://" + os.environ["BERTH_API_ADDR"] + "/"
def ecs(op, body):
    req = urllib.request.Request(api, data=json.dumps(body).encode(), headers={"x-amz-target": "AmazonEC2ContainerServiceV20141113." + op})
    return json.load(urllib.request.urlopen(req))
def elb(params):
    params = dict(params, Version="2015-12-01")
    return urllib.request.urlopen(urllib.request.Request(api, data=urllib.parse.urlencode(params).encode())).read().decode()
def version():
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{lport}/", timeout=2) as r:
            return json.load(r)["version"]
    except Exception as e:
        return "error"
def wait_all(v, window=20, limit=60):
    """Seconds until `window` consecutive requests all answer version v."""
    t0 = time.monotonic(); streak = 0
    while time.monotonic() - t0 < limit:
        streak = streak + 1 if version() == v else 0
        if streak >= window:
            return time.monotonic() - t0
    raise SystemExit(f"timed out waiting for {v}")
def stable():
    while True:
        s = ecs("DescribeServices", {"services": ["web"]})["services"][0]
        if len(s["deployments"]) == 1 and s["runningCount"] == s["desiredCount"] and s["deployments"][0].get("rolloutState") == "COMPLETED":
            return
        time.sleep(0.05)
stable(); wait_all("v1")
# Rolling update of 4 tasks, deploy -> stable.
t0 = time.monotonic()
subprocess.run([berth, "deploy", "web", "--env", "DEMO_VERSION=v2", "--wait"], check=True, stderr=subprocess.DEVNULL)
rolling = time.monotonic() - t0
print(f"rolling-update-4-tasks: {rolling:.2f} s (deploy -> stable)")
# Blue/green AllAtOnce.
lb = re.search(r"<LoadBalancerArn>([^<]+)", elb({"Action": "DescribeLoadBalancers", "Names.member.1": "web"})).group(1)
listener = re.search(r"<ListenerArn>([^<]+)", elb({"Action": "DescribeListeners", "LoadBalancerArn": lb})).group(1)
tg = lambda n: re.search(r"<TargetGroupArn>([^<]+)", elb({"Action": "DescribeTargetGroups", "Names.member.1": n})).group(1)
ecs("UpdateService", {"service": "web", "deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 2, "minimumHealthyPercent": 100, "maximumPercent": 200},
    "loadBalancers": [{"targetGroupArn": tg("blue"), "containerName": "app", "containerPort": 8080,
                       "advancedConfiguration": {"alternateTargetGroupArn": tg("green"), "productionListenerRule": listener}}]})
wait_all("v2")
t0 = time.monotonic()
subprocess.run([berth, "deploy", "web", "--env", "DEMO_VERSION=v3"], check=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
# The switch itself: from the first v3 answer until every answer is v3.
while version() != "v3":
    pass
flip = wait_all("v3")
total = time.monotonic() - t0
print(f"blue-green-deploy-to-all-new: {total:.2f} s (includes starting the new tasks)")
print(f"blue-green-switch: {flip:.3f} s (first new answer -> 20 consecutive new answers)")
t0 = time.monotonic()
subprocess.run([berth, "rollback", "web"], check=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
wait_all("v2")
print(f"blue-green-rollback: {time.monotonic() - t0:.3f} s (berth rollback -> 20 consecutive old answers)")
PY
