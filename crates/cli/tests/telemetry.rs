//! End-to-end task telemetry: the real `berth` binary runs two demo-app services reserving
//! cpu 256 (a quarter of a core); one is made busy with `/busy` (a quarter of a core), and within
//! 2 s CloudWatch's GetMetricData (awsJson, as the AWS SDKs speak it) shows its AWS/ECS
//! CPUUtilization near 100% (ECS's definition: usage over the reservation) while the idle service
//! stays low; MemoryUtilization is reported, per service and per task, and the real `aws
//! cloudwatch get-metric-statistics` reads the same figures.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns panic on purpose

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

const STACK: &str = r#"
name: t
services:
  busy:
    desiredCount: 1
    taskDefinition: &td
      cpu: "256"
      memory: "512"
      containerDefinitions:
        - name: app
          image: process://berth
          command: ["demo-app"]
          portMappings: [{containerPort: 8080}]
          stopTimeout: 2
  idle:
    desiredCount: 1
    taskDefinition: *td
"#;

/// The expected CPUUtilization of the busy service (a quarter core over cpu 256), and how far a
/// figure may be from it: a starved burner or measuring jitter, not a wrong definition (a whole
/// core would show 400%, a figure relative to the machine 12.5%).
const EXPECTED_BUSY: f64 = 100.0;
const TOLERANCE: f64 = 40.0;
/// The idle service stays under this.
const IDLE_MAX: f64 = 15.0;

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The newest 1-second Average of AWS/ECS `name` for `service` (and one task) over the last 10 s,
/// with its timestamp.
fn latest(c: &Cluster, name: &str, service: &str, task_id: Option<&str>) -> Option<(i64, f64)> {
    let mut dims = vec![
        json!({"Name": "ClusterName", "Value": "default"}),
        json!({"Name": "ServiceName", "Value": service}),
    ];
    if let Some(id) = task_id {
        dims.push(json!({"Name": "TaskId", "Value": id}));
    }
    let now = unix_now().floor();
    let out = c
        .api_client()
        .post(
            &c.addr,
            "GraniteServiceVersion20100801.GetMetricData",
            json!({
                "StartTime": now - 10.0, "EndTime": now + 1.0,
                "MetricDataQueries": [{"Id": "m", "MetricStat": {
                    "Metric": {"Namespace": "AWS/ECS", "MetricName": name, "Dimensions": dims},
                    "Period": 1, "Stat": "Average"}}]}),
        )
        .unwrap_or_else(|e| panic!("GetMetricData: {e}"));
    let r = &out["MetricDataResults"][0];
    let stamps = r["Timestamps"].as_array().unwrap();
    let values = r["Values"].as_array().unwrap();
    stamps
        .iter()
        .zip(values)
        .map(|(t, v)| (t.as_f64().unwrap() as i64, v.as_f64().unwrap()))
        .max_by_key(|(t, _)| *t)
}

#[test]
fn a_busy_task_shows_its_cpu_utilization_within_two_seconds() {
    let c = Cluster::start(false);
    let stack = c.write_stack("berth.yaml", STACK);
    let out = c.cli(&["apply", stack.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let busy = c.wait_running("busy", 1, false).remove(0);
    c.wait_running("idle", 1, false);
    let busy_id = short(&busy["taskArn"]);
    let port = busy["containers"][0]["networkBindings"][0]["hostPort"]
        .as_u64()
        .unwrap();
    let app = format!("127.0.0.1:{port}");
    eventually("the busy task answers", Duration::from_secs(20), || {
        matches!(http_get(&app, "/health"), Ok((200, _))).then_some(())
    });
    // Both services report low CPU before the load (so the later figure is the load's).
    for service in ["busy", "idle"] {
        eventually(
            &format!("a low CPUUtilization of {service} before the load"),
            Duration::from_secs(20),
            || latest(&c, "CPUUtilization", service, None).filter(|(_, v)| *v < IDLE_MAX),
        );
    }

    let load_start = Instant::now();
    let load_start_unix = unix_now();
    let (status, body) = http_get(&app, "/busy?millicores=250&duration_ms=8000").unwrap();
    assert_eq!(status, 202, "{body}");
    let mut seen = Vec::new();
    let busy_figure = loop {
        let now = latest(&c, "CPUUtilization", "busy", None);
        if let Some((t, v)) = now {
            if t >= load_start_unix.floor() as i64 && (v - EXPECTED_BUSY).abs() <= TOLERANCE {
                break v;
            }
        }
        seen.push((load_start.elapsed().as_millis(), now));
        assert!(
            load_start.elapsed() < Duration::from_secs(2),
            "CPUUtilization of the busy service did not reach {EXPECTED_BUSY} ± {TOLERANCE}% \
             within 2 s of the load starting; (ms after start, (second, figure)): {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let reached_after = load_start.elapsed();
    let (_, idle_figure) = latest(&c, "CPUUtilization", "idle", None).unwrap();
    assert!(
        idle_figure < IDLE_MAX,
        "the idle service shows {idle_figure}% while the other one is busy"
    );
    // Per task too, with the task id as a dimension.
    let (_, task_figure) = latest(&c, "CPUUtilization", "busy", Some(&busy_id)).unwrap();
    assert!(
        (task_figure - EXPECTED_BUSY).abs() <= TOLERANCE,
        "task figure {task_figure}"
    );
    for task in [None, Some(busy_id.as_str())] {
        let (_, mem) = latest(&c, "MemoryUtilization", "busy", task).unwrap();
        assert!(
            mem > 0.0 && mem < 100.0,
            "MemoryUtilization of a demo app in 512 MiB: {mem}"
        );
    }
    println!(
        "busy CPUUtilization {busy_figure:.1}% after {} ms; idle {idle_figure:.1}%",
        reached_after.as_millis()
    );

    // The real AWS CLI reads the same metric (the load is still on).
    std::thread::sleep(Duration::from_secs(1));
    let end = unix_now().floor();
    let start = (load_start_unix.floor() + 1.0).min(end - 1.0);
    let stats = c.aws_ok(&[
        "cloudwatch",
        "get-metric-statistics",
        "--namespace",
        "AWS/ECS",
        "--metric-name",
        "CPUUtilization",
        "--dimensions",
        "Name=ClusterName,Value=default",
        "Name=ServiceName,Value=busy",
        "--start-time",
        &format!("{start}"),
        "--end-time",
        &format!("{end}"),
        "--period",
        "1",
        "--statistics",
        "Average",
    ]);
    let points = stats["Datapoints"].as_array().unwrap();
    assert!(!points.is_empty(), "{stats}");
    assert!(points.iter().all(|p| p["Unit"] == "Percent"), "{stats}");
    let mean = points
        .iter()
        .map(|p| p["Average"].as_f64().unwrap())
        .sum::<f64>()
        / points.len() as f64;
    assert!(
        (mean - EXPECTED_BUSY).abs() <= TOLERANCE,
        "the load's seconds average {mean}%, not near {EXPECTED_BUSY}%: {stats}"
    );
}
