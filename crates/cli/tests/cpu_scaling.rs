//! End-to-end CPU target tracking: a service of 2 demo-app tasks (each reserving 128 CPU units, an
//! eighth of a core) behind the proxy, an ECSServiceAverageCPUUtilization policy (target 50%, 1 s
//! datapoints through berth's `EvaluationPeriodSeconds`), and a bounded load through the listener
//! where every request burns 10 ms of CPU: 25 requests/s are a quarter of a core, 100% for 2
//! tasks, so the policy wants 4 tasks and MaxCapacity 3 caps it; with 3 tasks the CPU drops toward
//! the target. After the load ends and the cooldowns pass it scales back in to 2, without a failed
//! request from the light load that keeps running through the scale-in.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns panic on purpose

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const MAX_CAPACITY: u64 = 3;
const TARGET: f64 = 50.0;
const COOLDOWN_SECONDS: u64 = 5;
/// Requests per second of the load, and the CPU time each burns.
const RATE: f64 = 25.0;
const BURN_MS: u64 = 10;

fn stack(port: u16) -> String {
    format!(
        r#"
name: t
loadBalancers:
  web:
    listeners:
      - port: {port}
        defaultAction: {{forward: web}}
targetGroups:
  web:
    port: 8080
    healthCheck: {{path: /health, intervalSeconds: 0.5, timeoutSeconds: 0.4, healthyThreshold: 2, unhealthyThreshold: 2}}
    attributes: {{deregistration_delay.timeout_seconds: "1"}}
services:
  web:
    desiredCount: 2
    loadBalancers: [{{targetGroup: web, containerName: app, containerPort: 8080}}]
    taskDefinition:
      containerDefinitions:
        - name: app
          image: process://berth
          command: ["demo-app"]
          cpu: 128
          portMappings: [{{containerPort: 8080}}]
          stopTimeout: 3
"#
    )
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn autoscaling(c: &Cluster, op: &str, body: Value) -> Value {
    c.api_client()
        .post(&c.addr, &format!("AnyScaleFrontendService.{op}"), body)
        .unwrap_or_else(|e| panic!("{op}: {e}"))
}

fn desired(c: &Cluster) -> u64 {
    let v = c
        .ecs("DescribeServices", json!({"services": ["web"]}))
        .unwrap();
    v["services"][0]["desiredCount"].as_u64().unwrap()
}

/// The service's 1-second CPUUtilization Averages in [from, to) (unix seconds).
fn cpu_seconds(c: &Cluster, from: f64, to: f64) -> Vec<f64> {
    let out = c
        .api_client()
        .post(
            &c.addr,
            "GraniteServiceVersion20100801.GetMetricData",
            json!({
                "StartTime": from.floor(), "EndTime": to.floor(),
                "MetricDataQueries": [{"Id": "cpu", "MetricStat": {
                    "Metric": {"Namespace": "AWS/ECS", "MetricName": "CPUUtilization",
                               "Dimensions": [{"Name": "ClusterName", "Value": "default"},
                                              {"Name": "ServiceName", "Value": "web"}]},
                    "Period": 1, "Stat": "Average"}}]}),
        )
        .unwrap();
    out["MetricDataResults"][0]["Values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn cpu_load_scales_out_to_the_cap_and_back_in_after_the_cooldown() {
    let test_start = Instant::now();
    let c = Cluster::start(true);
    let port = free_port();
    let s = c.write_stack("berth.yaml", &stack(port));
    let out = c.cli(&["apply", s.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.wait_running("web", 2, false);
    let addr = format!("127.0.0.1:{port}");
    eventually("the listener serves", Duration::from_secs(30), || {
        http_get(&addr, "/").ok().filter(|(s, _)| *s == 200)
    });

    let resource = json!({"ServiceNamespace": "ecs", "ResourceId": "service/default/web",
                          "ScalableDimension": "ecs:service:DesiredCount"});
    let mut target = resource.clone();
    target["MinCapacity"] = json!(2);
    target["MaxCapacity"] = json!(MAX_CAPACITY);
    autoscaling(&c, "RegisterScalableTarget", target);
    let mut policy = resource.clone();
    policy["PolicyName"] = json!("cpu");
    policy["PolicyType"] = json!("TargetTrackingScaling");
    policy["TargetTrackingScalingPolicyConfiguration"] = json!({
        "TargetValue": TARGET,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
        "ScaleOutCooldown": COOLDOWN_SECONDS, "ScaleInCooldown": COOLDOWN_SECONDS,
        "EvaluationPeriodSeconds": 1
    });
    let out = autoscaling(&c, "PutScalingPolicy", policy);
    assert_eq!(out["Alarms"].as_array().map(Vec::len), Some(2), "{out}");
    let described = autoscaling(&c, "DescribeScalingPolicies", resource.clone());
    assert_eq!(
        described["ScalingPolicies"][0]["TargetTrackingScalingPolicyConfiguration"]
            ["EvaluationPeriodSeconds"],
        1,
        "{described}"
    );

    // Idle first: the policy's alarms see low datapoints before the load, so the scale-out comes
    // from the load's own seconds.
    eventually(
        "3 seconds of low CPU before the load",
        Duration::from_secs(20),
        || {
            let idle = cpu_seconds(&c, unix_now() - 5.0, unix_now());
            (idle.len() >= 3 && idle.iter().all(|v| *v < 10.0)).then_some(())
        },
    );
    // The load: a quarter of a core through the proxy, bounded to 30 s.
    let load_start = unix_now();
    let load = PacedLoad::start(
        &addr,
        &format!("/?burn_ms={BURN_MS}"),
        RATE,
        5,
        Duration::from_secs(30),
    );
    let mut max_desired = 2;
    let scaled_out_at = eventually(
        "a scale-out under the CPU load",
        Duration::from_secs(15),
        || {
            max_desired = max_desired.max(desired(&c));
            (max_desired > 2).then(unix_now)
        },
    );
    eventually(
        &format!("{MAX_CAPACITY} running tasks"),
        Duration::from_secs(15),
        || {
            max_desired = max_desired.max(desired(&c));
            (c.running_tasks("web", false).len() as u64 == MAX_CAPACITY).then_some(())
        },
    );
    // Give the new target time to pass its health checks and take its share, then measure.
    let three_from = unix_now() + 2.5;
    while unix_now() < three_from + 5.0 {
        max_desired = max_desired.max(desired(&c));
        std::thread::sleep(Duration::from_millis(200));
    }
    let load_end = unix_now();
    let heavy = load.finish();
    assert!(
        heavy.failures.is_empty(),
        "failed requests under load: {:?}",
        heavy.failures
    );
    assert!(
        heavy.ok as f64 >= RATE * (load_end - load_start) * 0.8,
        "the load fell behind: {} requests in {:.1} s",
        heavy.ok,
        load_end - load_start
    );
    assert_eq!(
        max_desired, MAX_CAPACITY,
        "the policy wants 4 tasks; MaxCapacity caps it"
    );
    let two = cpu_seconds(&c, load_start + 1.0, scaled_out_at.max(load_start + 2.0));
    let three = cpu_seconds(&c, three_from, load_end);
    println!(
        "CPUUtilization with 2 tasks {two:.0?} (mean {:.1}), with 3 {three:.0?} (mean {:.1})",
        mean(&two),
        mean(&three)
    );
    assert!(!two.is_empty() && !three.is_empty());
    assert!(
        mean(&two) > TARGET,
        "the scale-out came from CPU over the target: {two:?}"
    );
    assert!(
        mean(&three) < mean(&two) * 0.9,
        "more tasks brought the CPU down toward the target: {two:?} then {three:?}"
    );

    // A light load (no burn) runs through the scale-in; not one request may fail.
    let light = PacedLoad::start(&addr, "/", 10.0, 2, Duration::from_secs(45));
    let scaled_in_at = eventually(
        "the scale-in to 2 after the load",
        Duration::from_secs(40),
        || {
            let d = desired(&c);
            assert!(d <= MAX_CAPACITY, "desired {d} over MaxCapacity");
            (d == 2).then(unix_now)
        },
    );
    c.wait_running("web", 2, false);
    // Past the stopped task's draining (deregistration delay 1 s) and stop.
    std::thread::sleep(Duration::from_secs(3));
    let light = light.finish();
    assert!(light.ok > 50, "{light:?}");
    assert!(
        light.failures.is_empty(),
        "failed requests during the scale-in: {:?}",
        light.failures
    );
    assert!(
        scaled_in_at - load_end >= COOLDOWN_SECONDS as f64,
        "scale-in {:.1} s after the load",
        scaled_in_at - load_end
    );

    let acts = autoscaling(&c, "DescribeScalingActivities", resource);
    let acts = acts["ScalingActivities"].as_array().unwrap().clone();
    let causes: Vec<&str> = acts.iter().map(|a| a["Cause"].as_str().unwrap()).collect();
    assert_eq!(acts.len(), 2, "one scale-out, one scale-in: {causes:#?}");
    assert!(
        causes[1].contains("-AlarmHigh-")
            && causes[1].contains(&format!(
                "triggered policy cpu changing the desired capacity from 2 to {MAX_CAPACITY}."
            )),
        "{causes:?}"
    );
    assert!(
        causes[0].contains("-AlarmLow-")
            && causes[0].ends_with(&format!("from {MAX_CAPACITY} to 2.")),
        "{causes:?}"
    );
    assert!(
        acts.iter().all(|a| a["StatusCode"] == "Successful"),
        "{acts:#?}"
    );
    let gap = acts[0]["StartTime"].as_f64().unwrap() - acts[1]["StartTime"].as_f64().unwrap();
    assert!(
        gap >= COOLDOWN_SECONDS as f64,
        "scale-in {gap} s after the scale-out, inside its cooldown"
    );
    println!(
        "scaled out {:.1} s after the load started, in {:.1} s after it ended; test took {:.0} s",
        scaled_out_at - load_start,
        scaled_in_at - load_end,
        test_start.elapsed().as_secs_f64()
    );
}
