//! End-to-end Application Auto Scaling: the real `aws application-autoscaling` CLI registers a
//! service and an ALBRequestCountPerTarget target tracking policy; a bounded, paced request load
//! through the proxy's listener scales the service out to its maximum, and after the load ends it
//! scales back in to the minimum. (`cpu_scaling.rs` drives scaling with CPUUtilization.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns panic on purpose

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
          portMappings: [{{containerPort: 8080}}]
          healthCheck:
            command: ["CMD-SHELL", "berth probe http://127.0.0.1:$PORT/health"]
            interval: 0.5
            timeout: 2
            retries: 2
          stopTimeout: 3
"#
    )
}

fn desired(c: &Cluster) -> u64 {
    let v = c
        .ecs("DescribeServices", serde_json::json!({"services": ["web"]}))
        .unwrap();
    v["services"][0]["desiredCount"].as_u64().unwrap()
}

/// `rate` requests per second to `addr` from one thread until stopped or `max` passes.
fn paced_load(
    addr: String,
    rate: u32,
    max: Duration,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let start = Instant::now();
        let gap = Duration::from_secs_f64(1.0 / f64::from(rate));
        let mut sent = 0u64;
        while !stop.load(Ordering::Relaxed) && start.elapsed() < max {
            let _ = http_get(&addr, "/");
            sent += 1;
            let due = gap * sent as u32;
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        sent
    })
}

#[test]
fn request_load_scales_the_service_out_and_back_in() {
    let c = Cluster::start(true);
    let port = free_port();
    let s = c.write_stack("berth.yaml", &stack(port));
    let out = c.cli(&["apply", s.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.wait_running("web", 2, true);
    let addr = format!("127.0.0.1:{port}");
    eventually("the listener serves", Duration::from_secs(30), || {
        http_get(&addr, "/").ok().filter(|(s, _)| *s == 200)
    });

    let lb = c.aws_ok(&["elbv2", "describe-load-balancers"]);
    let lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
        .as_str()
        .unwrap()
        .to_string();
    let tg = c.aws_ok(&["elbv2", "describe-target-groups"]);
    let tg_arn = tg["TargetGroups"][0]["TargetGroupArn"]
        .as_str()
        .unwrap()
        .to_string();
    let label = format!(
        "{}/{}",
        lb_arn.split(":loadbalancer/").nth(1).unwrap(),
        tg_arn.rsplit(':').next().unwrap()
    );

    c.aws_ok(&[
        "application-autoscaling",
        "register-scalable-target",
        "--service-namespace",
        "ecs",
        "--resource-id",
        "service/default/web",
        "--scalable-dimension",
        "ecs:service:DesiredCount",
        "--min-capacity",
        "2",
        "--max-capacity",
        "4",
    ]);
    let cfg = serde_json::json!({
        "TargetValue": 600.0,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "ALBRequestCountPerTarget", "ResourceLabel": label},
        "ScaleOutCooldown": 10, "ScaleInCooldown": 5
    });
    let policy = c.aws_ok(&[
        "application-autoscaling",
        "put-scaling-policy",
        "--policy-name",
        "rps",
        "--service-namespace",
        "ecs",
        "--resource-id",
        "service/default/web",
        "--scalable-dimension",
        "ecs:service:DesiredCount",
        "--policy-type",
        "TargetTrackingScaling",
        "--target-tracking-scaling-policy-configuration",
        &cfg.to_string(),
    ]);
    assert_eq!(
        policy["Alarms"].as_array().map(Vec::len),
        Some(2),
        "{policy}"
    );
    let alarms = c.aws_ok(&[
        "cloudwatch",
        "describe-alarms",
        "--alarm-name-prefix",
        "TargetTracking-service/default/web-",
    ]);
    assert_eq!(
        alarms["MetricAlarms"].as_array().map(Vec::len),
        Some(2),
        "{alarms}"
    );

    // 40 requests/s on 2 targets = 1200 per target per minute against 600: ceil(2 × 1200 / 600) = 4.
    let stop = Arc::new(AtomicBool::new(false));
    let load = paced_load(addr.clone(), 40, Duration::from_secs(90), stop.clone());
    eventually("scale-out to 4", Duration::from_secs(60), || {
        (desired(&c) == 4).then_some(())
    });
    c.wait_running("web", 4, true);
    stop.store(true, Ordering::Relaxed);
    assert!(load.join().unwrap() > 100);
    assert_eq!(desired(&c), 4, "MaxCapacity caps the scale-out");

    eventually(
        "scale-in to 2 after the load",
        Duration::from_secs(90),
        || (desired(&c) == 2).then_some(()),
    );
    let acts = c.aws_ok(&[
        "application-autoscaling",
        "describe-scaling-activities",
        "--service-namespace",
        "ecs",
        "--resource-id",
        "service/default/web",
    ]);
    let acts = acts["ScalingActivities"].as_array().unwrap().clone();
    assert!(acts.len() >= 2, "{acts:#?}");
    let causes: Vec<&str> = acts.iter().map(|a| a["Cause"].as_str().unwrap()).collect();
    assert!(
        causes.last().unwrap().contains("-AlarmHigh-")
            && causes
                .last()
                .unwrap()
                .contains("triggered policy rps changing the desired capacity from 2 to"),
        "{causes:?}"
    );
    assert!(
        causes[0].contains("-AlarmLow-") && causes[0].ends_with("to 2."),
        "{causes:?}"
    );
    assert!(
        acts.iter().all(|a| a["StatusCode"] == "Successful"),
        "{acts:#?}"
    );
    let svc = c
        .ecs("DescribeServices", serde_json::json!({"services": ["web"]}))
        .unwrap();
    let events = svc["services"][0]["events"].to_string();
    assert!(
        events.contains("Application Auto Scaling set the desired count"),
        "{events}"
    );
}
