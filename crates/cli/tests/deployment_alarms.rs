//! End-to-end deployment alarms (`deploymentConfiguration.alarms {alarmNames, enable, rollback}`)
//! under a steady load through the proxy: an alarm that goes into ALARM during a rolling update
//! (SetAlarmState) fails it and rolls the service back to the previous task definition; an
//! alarm on an application metric (PutMetricData) stops a canary and switches traffic back. Not
//! one request fails either way.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

/// A service behind the stack's load balancer. New targets need ten passing checks half a second
/// apart, so a deployment takes long enough to be interrupted; `deployment` is its deployment
/// settings (YAML lines under the service, indented by four).
fn stack(port: u16, deployment: &str) -> String {
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
    healthCheck: {{path: /health, intervalSeconds: 0.5, timeoutSeconds: 0.4, healthyThreshold: 10, unhealthyThreshold: 2}}
    attributes: {{deregistration_delay.timeout_seconds: "1"}}
  green:
    port: 8080
    healthCheck: {{path: /health, intervalSeconds: 0.5, timeoutSeconds: 0.4, healthyThreshold: 10, unhealthyThreshold: 2}}
    attributes: {{deregistration_delay.timeout_seconds: "1"}}
services:
  web:
    desiredCount: 2
    loadBalancers: [{{targetGroup: blue, containerName: app, containerPort: 8080}}]
{deployment}
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

/// A cluster with the stack applied (`PORT` in `deployment` is the listener's port), the alarm
/// `alarm` created (OK while its metric has no data), two healthy tasks and v1 served:
/// (cluster, listener address).
fn setup(deployment: &str, alarm: &str) -> (Cluster, String) {
    let c = Cluster::start(true);
    let port = free_port();
    let deployment = deployment.replace("PORT", &port.to_string());
    let s = c.write_stack("berth.yaml", &stack(port, &deployment));
    let out = c.cli(&["apply", s.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.aws_ok(&[
        "cloudwatch",
        "put-metric-alarm",
        "--alarm-name",
        alarm,
        "--namespace",
        "Shop",
        "--metric-name",
        "CheckoutErrors",
        "--statistic",
        "Sum",
        "--period",
        "10",
        "--evaluation-periods",
        "1",
        "--threshold",
        "0",
        "--comparison-operator",
        "GreaterThanThreshold",
        "--treat-missing-data",
        "notBreaching",
    ]);
    c.wait_running("web", 2, true);
    let addr = format!("127.0.0.1:{port}");
    eventually("the listener serves v1", Duration::from_secs(60), || {
        serves_only(&addr, "v1", 10).then_some(())
    });
    // A rollback goes back to the last completed deployment: the first one must have completed
    // (its targets healthy, not just served while every target is still being checked).
    eventually(
        "the first deployment completed",
        Duration::from_secs(60),
        || {
            let svc = c
                .ecs("DescribeServices", json!({"services": ["web"]}))
                .unwrap();
            (svc["services"][0]["deployments"][0]["rolloutState"] == "COMPLETED").then_some(())
        },
    );
    (c, addr)
}

fn spawn_deploy(c: &Cluster) -> std::process::Child {
    c.cli_command(&[
        "deploy",
        "web",
        "--env",
        "DEMO_VERSION=v2",
        "--wait",
        "--timeout",
        "120",
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap()
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

/// One deployment left, on revision 1, completed, with both tasks running.
fn wait_back_on_revision_1(c: &Cluster) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let svc = c
            .ecs("DescribeServices", json!({"services": ["web"]}))
            .unwrap();
        let s = &svc["services"][0];
        let deps = s["deployments"].as_array().unwrap();
        if deps.len() == 1
            && deps[0]["rolloutState"] == "COMPLETED"
            && s["taskDefinition"].as_str().unwrap().ends_with(":1")
            && s["runningCount"] == 2
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not back on revision 1 after 60s: deployments {}, taskDefinition {}, runningCount {}",
            s["deployments"],
            s["taskDefinition"],
            s["runningCount"]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_alarm_during_a_rolling_update_fails_it_and_rolls_back() {
    let deployment = r#"    deploymentConfiguration:
      minimumHealthyPercent: 100
      maximumPercent: 150
      alarms: {alarmNames: [checkout-errors], enable: true, rollback: true}"#;
    let (c, addr) = setup(deployment, "checkout-errors");
    let load = Load::start(&addr, "/", 4, 40_000, Duration::from_secs(120));
    let deploy = spawn_deploy(&c);
    eventually("the new deployment", Duration::from_secs(20), || {
        let svc = c
            .ecs("DescribeServices", json!({"services": ["web"]}))
            .unwrap();
        let deps = svc["services"][0]["deployments"]
            .as_array()
            .unwrap()
            .clone();
        (deps.len() == 2 && deps[0]["rolloutState"] == "IN_PROGRESS").then_some(())
    });
    c.aws_ok(&[
        "cloudwatch",
        "set-alarm-state",
        "--alarm-name",
        "checkout-errors",
        "--state-value",
        "ALARM",
        "--state-reason",
        "checkout errors after the release",
    ]);
    let out = deploy.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the deployment must fail: {err}"
    );
    assert!(
        err.contains("rolled back") && err.contains("checkout-errors"),
        "the reason names the alarm: {err}"
    );
    wait_back_on_revision_1(&c);
    std::thread::sleep(Duration::from_millis(500));
    let r = load.finish();
    assert_no_failures(&r);
    assert_eq!(r.versions.last().map(String::as_str), Some("v1"));
    assert!(serves_only(&addr, "v1", 20));

    let h = c.cli_json(&["deployments", "web"]);
    let h = h["deployments"].as_array().unwrap();
    assert_eq!(h[0]["trigger"], "deployment alarm", "{h:?}");
    assert_eq!(
        h[0]["status"], "SUCCESSFUL",
        "the rollback is not failed by the alarm that caused it: {h:?}"
    );
    assert_eq!(h[1]["status"], "ROLLBACK_SUCCESSFUL", "{h:?}");
    let reason = h[1]["statusReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("deployment alarm checkout-errors went into ALARM")
            && reason.contains("checkout errors after the release"),
        "{reason}"
    );
    let msgs = event_messages(&c, "web");
    assert!(
        msgs.iter()
            .any(|m| m.contains("deployment failed") && m.contains("checkout-errors")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("rolling back to deployment")),
        "{msgs:?}"
    );
}

#[test]
fn an_alarm_on_an_application_metric_stops_a_canary() {
    let deployment = r#"    deploymentConfiguration: {minimumHealthyPercent: 100, maximumPercent: 200}
    deployment:
      trafficShift: Canary20Percent1Minutes
      bakeTimeMinutes: 0.05
      alternateTargetGroup: green
      productionListener: web:PORT
      alarms: [checkout-errors]"#;
    let (c, addr) = setup(deployment, "checkout-errors");
    let load = Load::start(&addr, "/", 4, 40_000, Duration::from_secs(120));
    let deploy = spawn_deploy(&c);
    eventually("the canary takes 20%", Duration::from_secs(60), || {
        event_messages(&c, "web")
            .iter()
            .any(|m| m.contains("shifted 20% of production traffic"))
            .then_some(())
    });
    // The application reports failed checkouts for the last completed period.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    c.aws_ok(&[
        "cloudwatch",
        "put-metric-data",
        "--namespace",
        "Shop",
        "--metric-name",
        "CheckoutErrors",
        "--value",
        "3",
        "--timestamp",
        &(now - 10).to_string(),
    ]);
    let out = deploy.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the deployment must fail: {err}"
    );
    assert!(
        err.contains("deployment alarm checkout-errors went into ALARM"),
        "the reason names the alarm: {err}"
    );
    let alarm = c.aws_ok(&[
        "cloudwatch",
        "describe-alarms",
        "--alarm-names",
        "checkout-errors",
    ]);
    assert_eq!(alarm["MetricAlarms"][0]["StateValue"], "ALARM", "{alarm}");
    // Traffic is back on the old set at once.
    assert!(serves_only(&addr, "v1", 20));
    wait_back_on_revision_1(&c);
    std::thread::sleep(Duration::from_millis(500));
    let r = load.finish();
    assert_no_failures(&r);
    assert!(
        r.versions.contains(&"v2".to_string()),
        "the canary served some traffic before the alarm: {:?}",
        r.versions
    );
    assert_eq!(r.versions.last().map(String::as_str), Some("v1"));
    let h = c.cli_json(&["deployments", "web"]);
    let h = h["deployments"].as_array().unwrap();
    assert_eq!(h[0]["status"], "ROLLBACK_SUCCESSFUL", "{h:?}");
    assert!(
        h[0]["statusReason"]
            .as_str()
            .unwrap_or_default()
            .contains("checkout-errors"),
        "{h:?}"
    );
}
