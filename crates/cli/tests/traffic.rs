//! End-to-end deployments under a steady load through the proxy: every test counts failed
//! requests (non-2xx or connection errors) and most require zero. Rolling updates, a crashing
//! revision rolled back by the circuit breaker, blue/green with a rollback during the bake time,
//! a linear shift, and a canary that the automated analysis stops.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

fn stack(port: u16, count: u32, min: u32, max: u32) -> String {
    format!(
        r#"
name: t
loadBalancers:
  web:
    listeners:
      - port: {port}
        defaultAction: {{forward: blue}}
targetGroups:
  blue:
    port: 8080
    healthCheck: {{path: /health, intervalSeconds: 0.2, timeoutSeconds: 0.15, healthyThreshold: 2, unhealthyThreshold: 2}}
    attributes: {{deregistration_delay.timeout_seconds: "1"}}
  green:
    port: 8080
    healthCheck: {{path: /health, intervalSeconds: 0.2, timeoutSeconds: 0.15, healthyThreshold: 2, unhealthyThreshold: 2}}
    attributes: {{deregistration_delay.timeout_seconds: "1"}}
services:
  web:
    desiredCount: {count}
    loadBalancers: [{{targetGroup: blue, containerName: app, containerPort: 8080}}]
    deploymentConfiguration:
      minimumHealthyPercent: {min}
      maximumPercent: {max}
      deploymentCircuitBreaker: {{enable: true, rollback: true}}
    taskDefinition:
      containerDefinitions:
        - name: app
          image: process://berth
          command: ["demo-app"]
          environment: [{{name: DEMO_VERSION, value: v1}}]
          portMappings: [{{containerPort: 8080}}]
          healthCheck:
            command: ["CMD-SHELL", "berth probe http://127.0.0.1:$PORT/health"]
            interval: 0.2
            timeout: 2
            retries: 2
          stopTimeout: 3
"#
    )
}

/// A cluster with the stack applied, 4 (or `count`) healthy tasks, and traffic flowing.
fn setup(count: u32, min: u32, max: u32) -> (Cluster, String) {
    let c = Cluster::start(true);
    let port = free_port();
    let s = c.write_stack("berth.yaml", &stack(port, count, min, max));
    let out = c.cli(&["apply", s.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.wait_running("web", count as usize, true);
    let addr = format!("127.0.0.1:{port}");
    eventually("the listener serves v1", Duration::from_secs(30), || {
        (0..10)
            .all(|_| {
                http_get(&addr, "/")
                    .map(|(s, b)| s == 200 && b.contains("\"v1\""))
                    .unwrap_or(false)
            })
            .then_some(())
    });
    (c, addr)
}

fn assert_no_failures(r: &LoadResult) {
    assert!(r.ok > 50, "the load must actually run: {} requests", r.ok);
    assert!(
        r.failures.is_empty(),
        "{} failed requests out of {}: {:?}",
        r.failures.len(),
        r.ok + r.failures.len() as u64,
        &r.failures[..r.failures.len().min(5)]
    );
}

#[test]
fn rolling_update_100_200_under_load_fails_no_request() {
    let (c, addr) = setup(4, 100, 200);
    let load = Load::start(&addr, "/", 4, 20_000, Duration::from_secs(90));
    let out = c.cli(&[
        "deploy",
        "web",
        "--env",
        "DEMO_VERSION=v2",
        "--wait",
        "--timeout",
        "60",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    let r = load.finish();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_failures(&r);
    assert_eq!(r.versions.last().map(String::as_str), Some("v2"));
    assert!(r.versions.contains(&"v1".to_string()));
}

#[test]
fn rolling_update_50_100_under_load_fails_no_request() {
    let (c, addr) = setup(4, 50, 100);
    let load = Load::start(&addr, "/", 4, 20_000, Duration::from_secs(90));
    let out = c.cli(&[
        "deploy",
        "web",
        "--env",
        "DEMO_VERSION=v2",
        "--wait",
        "--timeout",
        "60",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    let r = load.finish();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_failures(&r);
    assert_eq!(r.versions.last().map(String::as_str), Some("v2"));
}

#[test]
fn crashing_revision_rolls_back_under_load_without_failures() {
    let (c, addr) = setup(2, 100, 200);
    let load = Load::start(&addr, "/", 4, 20_000, Duration::from_secs(90));
    let out = c.cli(&[
        "deploy",
        "web",
        "--image",
        "process:///bin/false",
        "--wait",
        "--timeout",
        "60",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    let r = load.finish();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_failures(&r);
    assert_eq!(
        r.versions,
        vec!["v1".to_string()],
        "only the old version ever served"
    );
}

/// Turns the service into a traffic-shifting one (ECS's native blue/green model): the listener's
/// default rule is the production rule, `green` the alternate target group.
fn make_shifting(c: &Cluster, strategy: Value) {
    let lbs = c.aws_ok(&["elbv2", "describe-load-balancers", "--names", "web"]);
    let lb_arn = lbs["LoadBalancers"][0]["LoadBalancerArn"]
        .as_str()
        .unwrap()
        .to_string();
    let listeners = c.aws_ok(&[
        "elbv2",
        "describe-listeners",
        "--load-balancer-arn",
        &lb_arn,
    ]);
    let listener = listeners["Listeners"][0]["ListenerArn"]
        .as_str()
        .unwrap()
        .to_string();
    let tgs = c.aws_ok(&[
        "elbv2",
        "describe-target-groups",
        "--names",
        "blue",
        "green",
    ]);
    let arn_of = |n: &str| {
        tgs["TargetGroups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["TargetGroupName"] == n)
            .unwrap()["TargetGroupArn"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let mut dc = json!({"minimumHealthyPercent": 100, "maximumPercent": 200});
    for (k, v) in strategy.as_object().unwrap() {
        dc[k] = v.clone();
    }
    c.ecs(
        "UpdateService",
        json!({
            "service": "web",
            "deploymentConfiguration": dc,
            "loadBalancers": [{
                "targetGroupArn": arn_of("blue"), "containerName": "app", "containerPort": 8080,
                "advancedConfiguration": {"alternateTargetGroupArn": arn_of("green"), "productionListenerRule": listener}
            }]
        }),
    )
    .unwrap();
}

#[test]
fn blue_green_all_at_once_then_rollback_during_bake_time() {
    let (c, addr) = setup(2, 100, 200);
    make_shifting(
        &c,
        json!({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1}),
    );
    let load = Load::start(&addr, "/", 4, 40_000, Duration::from_secs(120));
    let out = c.cli(&["deploy", "web", "--env", "DEMO_VERSION=v2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("all traffic on v2", Duration::from_secs(60), || {
        (0..20)
            .all(|_| {
                http_get(&addr, "/")
                    .map(|(_, b)| b.contains("\"v2\""))
                    .unwrap_or(false)
            })
            .then_some(())
    });
    // During the bake time the old set is still there: rolling back switches traffic at once.
    let svc = c
        .ecs("DescribeServices", json!({"services": ["web"]}))
        .unwrap();
    assert_eq!(
        svc["services"][0]["deployments"].as_array().unwrap().len(),
        2,
        "blue is kept during the bake time"
    );
    let out = c.cli(&["rollback", "web"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("all traffic back on v1", Duration::from_secs(10), || {
        (0..20)
            .all(|_| {
                http_get(&addr, "/")
                    .map(|(_, b)| b.contains("\"v1\""))
                    .unwrap_or(false)
            })
            .then_some(())
    });
    let r = load.finish();
    assert_no_failures(&r);
    eventually("green stopped", Duration::from_secs(30), || {
        let svc = c
            .ecs("DescribeServices", json!({"services": ["web"]}))
            .unwrap();
        (svc["services"][0]["deployments"].as_array().unwrap().len() == 1).then_some(())
    });
    let h = c.cli_json(&["deployments", "web"]);
    assert_eq!(h["deployments"][0]["status"], "ROLLBACK_SUCCESSFUL");
}

#[test]
fn linear_shift_completes_without_failures() {
    let (c, addr) = setup(2, 100, 200);
    make_shifting(
        &c,
        json!({"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 50, "stepBakeTimeInMinutes": 0.05}, "bakeTimeInMinutes": 0.02}),
    );
    let load = Load::start(&addr, "/", 4, 40_000, Duration::from_secs(120));
    let out = c.cli(&[
        "deploy",
        "web",
        "--env",
        "DEMO_VERSION=v2",
        "--wait",
        "--timeout",
        "90",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    let r = load.finish();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_failures(&r);
    assert_eq!(r.versions.last().map(String::as_str), Some("v2"));
    let events = c.cli_json(&["events", "web", "--limit", "100"]);
    let msgs: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("shifted 50% of production traffic")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("shifted 100% of production traffic")),
        "{msgs:?}"
    );
}

#[test]
fn canary_with_errors_is_stopped_by_the_analysis() {
    let (c, addr) = setup(2, 100, 200);
    make_shifting(
        &c,
        json!({"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 20, "canaryBakeTimeInMinutes": 1}, "bakeTimeInMinutes": 0.05}),
    );
    let load = Load::start(&addr, "/", 4, 40_000, Duration::from_secs(120));
    let out = c.cli(&[
        "deploy",
        "web",
        "--env",
        "DEMO_VERSION=v2",
        "--env",
        "DEMO_ERROR_RATE=0.05",
        "--wait",
        "--timeout",
        "90",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    let r = load.finish();
    assert_eq!(
        out.status.code(),
        Some(1),
        "the deployment must fail: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("canary analysis") && err.contains("5xx rate"),
        "the reason carries the figures: {err}"
    );
    // The only failures are the canary's own injected errors; the old version never left service.
    assert!(
        r.failures
            .iter()
            .all(|(s, b)| *s == 500 && b.contains("\"v2\"")),
        "{:?}",
        &r.failures[..r.failures.len().min(5)]
    );
    assert!(r.ok > 50);
    eventually(
        "back to one deployment on v1",
        Duration::from_secs(30),
        || {
            let svc = c
                .ecs("DescribeServices", json!({"services": ["web"]}))
                .unwrap();
            let s = &svc["services"][0];
            (s["deployments"].as_array().unwrap().len() == 1
                && s["taskDefinition"].as_str().unwrap().ends_with(":1"))
            .then_some(())
        },
    );
    for _ in 0..20 {
        let (status, body) = http_get(&addr, "/").unwrap();
        assert_eq!(status, 200);
        assert!(body.contains("\"v1\""));
    }
}
