//! End-to-end: the stack file declares how a service deploys and scales. A blue/green service
//! with `trafficShift: Linear50PercentEvery0.05Minutes` is applied from the stack (no ARNs in
//! the file), re-applying it changes nothing, and `berth deploy` then shifts traffic to v2 under
//! load without a failed request (its `requests` scaling policy names the target group by
//! ResourceLabel). A second test applies `scaling` and checks Application Auto Scaling's view of
//! it, then changes and removes it through the stack. Two more tests use a test listener: it
//! reaches the new task set first while production stays on the old one, and a revision that
//! fails on test traffic is rolled back before production ever sees it.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

fn stack(port: u16) -> String {
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
    desiredCount: 2
    loadBalancers: [{{targetGroup: blue, containerName: app, containerPort: 8080}}]
    deploymentConfiguration: {{minimumHealthyPercent: 100, maximumPercent: 200}}
    deployment:
      trafficShift: Linear50PercentEvery0.05Minutes
      bakeTimeMinutes: 0.02
      alternateTargetGroup: green
      productionListener: web:{port}
    scaling:
      minCapacity: 2
      maxCapacity: 2
      targetTracking: [{{name: rps, metric: requests, target: 100000}}]
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

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn assert_ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn blue_green_from_the_stack_deploys_under_load_without_failures() {
    let c = Cluster::start(true);
    let port = free_port();
    let s = c.write_stack("berth.yaml", &stack(port));
    let out = c.cli(&["apply", s.to_str().unwrap()]);
    assert_ok(&out);
    assert!(stdout(&out).contains("production web:"), "{}", stdout(&out));

    // The service carries ECS's own blue/green model, with the ARNs filled in.
    let svc = c
        .ecs("DescribeServices", json!({"services": ["web"]}))
        .unwrap();
    let svc = &svc["services"][0];
    assert_eq!(svc["deploymentConfiguration"]["strategy"], "LINEAR");
    assert_eq!(
        svc["deploymentConfiguration"]["linearConfiguration"]["stepPercent"],
        50.0
    );
    assert_eq!(svc["deploymentConfiguration"]["bakeTimeInMinutes"], 0.02);
    let adv = &svc["loadBalancers"][0]["advancedConfiguration"];
    assert!(
        adv["alternateTargetGroupArn"]
            .as_str()
            .unwrap()
            .contains(":targetgroup/green/"),
        "{adv}"
    );
    assert!(
        adv["productionListenerRule"]
            .as_str()
            .unwrap()
            .contains(":listener/app/web/"),
        "{adv}"
    );

    // The requests policy tracks the service's target group behind the stack's load balancer.
    let p = c
        .api_client()
        .post(
            &c.addr,
            "AnyScaleFrontendService.DescribeScalingPolicies",
            json!({"ServiceNamespace": "ecs"}),
        )
        .unwrap();
    let label = p["ScalingPolicies"][0]["TargetTrackingScalingPolicyConfiguration"]
        ["PredefinedMetricSpecification"]["ResourceLabel"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        label.starts_with("app/web/") && label.contains("/targetgroup/blue/"),
        "{p}"
    );

    // Applying the unchanged stack does nothing.
    let out = c.cli(&["apply", s.to_str().unwrap()]);
    assert_ok(&out);
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));

    c.wait_running("web", 2, true);
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
    assert!(r.ok > 50, "the load must actually run: {} requests", r.ok);
    assert!(
        r.failures.is_empty(),
        "{} failed requests out of {}: {:?}",
        r.failures.len(),
        r.ok + r.failures.len() as u64,
        &r.failures[..r.failures.len().min(5)]
    );
    assert_eq!(r.versions.last().map(String::as_str), Some("v2"));
    for _ in 0..10 {
        let (status, body) = http_get(&addr, "/").unwrap();
        assert_eq!(status, 200);
        assert!(body.contains("\"v2\""), "{body}");
    }
    let events = c.cli_json(&["events", "web", "--limit", "100"]);
    let msgs: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("shifted 50% of production traffic")),
        "{msgs:?}"
    );

    // After the deployment the stack's task definition differs from the running revision, so
    // the plan goes back to it; the listener, whose weights the deployment moved, is left alone.
    let out = c.cli(&["diff", s.to_str().unwrap()]);
    assert_ok(&out);
    let plan = stdout(&out);
    assert!(!plan.contains("listener"), "{plan}");
}

const SCALED: &str = r#"
name: s
services:
  api:
    desiredCount: 2
    scaling:
      minCapacity: 1
      maxCapacity: 4
      targetTracking:
        - {name: cpu, metric: cpu, target: 50, scaleOutCooldown: 5, scaleInCooldown: 30}
      scheduled:
        - {name: night, schedule: "cron(0 22 * * ? *)", timezone: Europe/Berlin, minCapacity: 0, maxCapacity: 0}
    taskDefinition:
      containerDefinitions:
        - {name: app, image: process://berth, command: ["demo-app"], portMappings: [{containerPort: 8080}], stopTimeout: 3}
"#;

fn autoscaling(c: &Cluster, op: &str, body: Value) -> Value {
    c.api_client()
        .post(&c.addr, &format!("AnyScaleFrontendService.{op}"), body)
        .unwrap_or_else(|e| panic!("{op}: {e}"))
}

#[test]
fn scaling_from_the_stack_is_registered_changed_and_removed() {
    let c = Cluster::start(false);
    let s = c.write_stack("berth.yaml", SCALED);
    let out = c.cli(&["apply", s.to_str().unwrap()]);
    assert_ok(&out);
    assert!(stdout(&out).contains("+ scaling api"), "{}", stdout(&out));
    let ns = json!({"ServiceNamespace": "ecs", "ResourceIds": ["service/default/api"]});
    let t = autoscaling(&c, "DescribeScalableTargets", ns.clone());
    assert_eq!(t["ScalableTargets"][0]["MinCapacity"], 1, "{t}");
    assert_eq!(t["ScalableTargets"][0]["MaxCapacity"], 4, "{t}");
    let p = autoscaling(
        &c,
        "DescribeScalingPolicies",
        json!({"ServiceNamespace": "ecs", "ResourceId": "service/default/api"}),
    );
    let cfg = &p["ScalingPolicies"][0]["TargetTrackingScalingPolicyConfiguration"];
    assert_eq!(
        cfg["PredefinedMetricSpecification"]["PredefinedMetricType"],
        "ECSServiceAverageCPUUtilization",
        "{p}"
    );
    assert_eq!(cfg["ScaleInCooldown"], 30, "{p}");
    let a = autoscaling(
        &c,
        "DescribeScheduledActions",
        json!({"ServiceNamespace": "ecs", "ResourceId": "service/default/api"}),
    );
    assert_eq!(a["ScheduledActions"][0]["Timezone"], "Europe/Berlin", "{a}");

    let out = c.cli(&["apply", s.to_str().unwrap()]);
    assert_ok(&out);
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));

    let changed = SCALED
        .replace("maxCapacity: 4", "maxCapacity: 5")
        .replace("target: 50", "target: 60");
    let s = c.write_stack("berth.yaml", &changed);
    let out = c.cli(&["apply", s.to_str().unwrap()]);
    assert_ok(&out);
    let plan = stdout(&out);
    assert!(
        plan.contains("~ scaling api")
            && plan.contains("capacity: 1-4 -> 1-5")
            && plan.contains("policy cpu.TargetValue: 50.0 -> 60.0"),
        "{plan}"
    );
    let t = autoscaling(&c, "DescribeScalableTargets", ns.clone());
    assert_eq!(t["ScalableTargets"][0]["MaxCapacity"], 5, "{t}");

    let removed = changed.replace(
        &changed
            [changed.find("    scaling:").unwrap()..changed.find("    taskDefinition:").unwrap()],
        "",
    );
    let s = c.write_stack("berth.yaml", &removed);
    let out = c.cli(&["apply", s.to_str().unwrap()]);
    assert_ok(&out);
    assert!(stdout(&out).contains("- scaling api"), "{}", stdout(&out));
    let t = autoscaling(&c, "DescribeScalableTargets", ns);
    assert_eq!(
        t["ScalableTargets"].as_array().map(Vec::len),
        Some(0),
        "{t}"
    );
}

/// A blue/green service whose listener on `test_port` is the test listener: during a deployment
/// it reaches the new task set for `test_minutes` while production stays on the old one.
fn test_listener_stack(port: u16, test_port: u16, test_minutes: f64) -> String {
    format!(
        r#"
name: t
loadBalancers:
  web:
    listeners:
      - port: {port}
        defaultAction: {{forward: blue}}
      - port: {test_port}
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
    desiredCount: 2
    loadBalancers: [{{targetGroup: blue, containerName: app, containerPort: 8080}}]
    deploymentConfiguration: {{minimumHealthyPercent: 100, maximumPercent: 200}}
    deployment:
      strategy: blue-green
      bakeTimeMinutes: 0.02
      alternateTargetGroup: green
      productionListener: web:{port}
      testListener: web:{test_port}
      testTrafficMinutes: {test_minutes}
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

/// Applies the test listener stack and waits until both listeners serve v1: (cluster,
/// production address, test address).
fn test_listener_setup(test_minutes: f64) -> (Cluster, String, String) {
    let c = Cluster::start(true);
    let (port, test_port) = (free_port(), free_port());
    let s = c.write_stack(
        "berth.yaml",
        &test_listener_stack(port, test_port, test_minutes),
    );
    let out = c.cli(&["apply", s.to_str().unwrap()]);
    assert_ok(&out);
    let svc = c
        .ecs("DescribeServices", json!({"services": ["web"]}))
        .unwrap();
    let svc = &svc["services"][0];
    assert_eq!(
        svc["deploymentConfiguration"]["testTrafficTimeInMinutes"],
        test_minutes
    );
    let test_rule = svc["loadBalancers"][0]["advancedConfiguration"]["testListenerRule"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(test_rule.contains(":listener/app/web/"), "{svc}");
    c.wait_running("web", 2, true);
    let (addr, test_addr) = (
        format!("127.0.0.1:{port}"),
        format!("127.0.0.1:{test_port}"),
    );
    eventually("both listeners serve v1", Duration::from_secs(30), || {
        (serves_only(&addr, "v1", 10) && serves_only(&test_addr, "v1", 10)).then_some(())
    });
    (c, addr, test_addr)
}

/// The lifecycle stage of the service's newest deployment.
fn lifecycle_stage(c: &Cluster) -> Option<String> {
    let d = c
        .api_client()
        .post(
            &c.addr,
            "AmazonEC2ContainerServiceV20141113.ListServiceDeployments",
            json!({"service": "web"}),
        )
        .unwrap();
    d["serviceDeployments"][0]["lifecycleStage"]
        .as_str()
        .map(str::to_string)
}

fn spawn_deploy(c: &Cluster, env: &[&str]) -> std::process::Child {
    let mut args = vec!["deploy", "web"];
    for e in env {
        args.extend(["--env", e]);
    }
    args.extend(["--wait", "--timeout", "120"]);
    c.cli_command(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn test_listener_reaches_the_new_set_while_production_stays_on_the_old_one() {
    let (c, addr, test_addr) = test_listener_setup(0.25);
    let load = Load::start(&addr, "/", 4, 40_000, Duration::from_secs(120));
    let deploy = spawn_deploy(&c, &["DEMO_VERSION=v2"]);

    // Test traffic reaches v2 while every production request still gets v1.
    eventually(
        "the test listener serves v2",
        Duration::from_secs(60),
        || serves_only(&test_addr, "v2", 20).then_some(()),
    );
    assert!(
        serves_only(&addr, "v1", 20),
        "production must stay on the old set while test traffic reaches the new one"
    );
    assert_eq!(lifecycle_stage(&c).as_deref(), Some("TEST_TRAFFIC_SHIFT"));
    let msgs = event_messages(&c, "web");
    assert!(
        msgs.iter()
            .any(|m| m.contains("test traffic goes to the new task set")),
        "{msgs:?}"
    );
    assert!(
        !msgs.iter().any(|m| m.contains("of production traffic")),
        "production traffic moved during the test traffic stage: {msgs:?}"
    );

    // Then production moves, and the deployment completes.
    let out = deploy.wait_with_output().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let r = load.finish();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(r.ok > 50, "the load must actually run: {} requests", r.ok);
    assert!(
        r.failures.is_empty(),
        "{} failed requests out of {}: {:?}",
        r.failures.len(),
        r.ok + r.failures.len() as u64,
        &r.failures[..r.failures.len().min(5)]
    );
    assert_eq!(r.versions.last().map(String::as_str), Some("v2"));
    assert!(serves_only(&addr, "v2", 20), "production reaches v2");
    assert!(serves_only(&test_addr, "v2", 20), "test reaches v2");
    let msgs = event_messages(&c, "web");
    assert!(
        msgs.iter()
            .any(|m| m.contains("shifted 100% of production traffic")),
        "{msgs:?}"
    );
}

#[test]
fn a_revision_failing_on_test_traffic_never_reaches_production() {
    let (c, addr, test_addr) = test_listener_setup(1.0);
    let load = Load::start(&addr, "/", 3, 40_000, Duration::from_secs(120));
    let test_load = Load::start(&test_addr, "/", 2, 40_000, Duration::from_secs(120));
    let deploy = spawn_deploy(&c, &["DEMO_VERSION=v2", "DEMO_ERROR_RATE=0.3"]);
    let out = deploy.wait_with_output().unwrap();
    let tested = test_load.finish();
    std::thread::sleep(Duration::from_millis(500));
    let r = load.finish();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the deployment must fail: {err}"
    );
    assert!(
        err.contains("canary analysis") && err.contains("5xx rate") && err.contains("test traffic"),
        "the reason names the analysis of the test traffic: {err}"
    );
    // The new set's errors were seen on the test listener only.
    assert!(
        tested
            .failures
            .iter()
            .any(|(s, b)| *s == 500 && b.contains("\"v2\"")),
        "test traffic reached the failing set: {tested:?}"
    );
    assert!(r.ok > 50, "the load must actually run: {} requests", r.ok);
    assert!(
        r.failures.is_empty(),
        "{} failed production requests: {:?}",
        r.failures.len(),
        &r.failures[..r.failures.len().min(5)]
    );
    assert_eq!(r.versions, vec!["v1".to_string()], "production only saw v1");
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
    assert!(
        serves_only(&test_addr, "v1", 20),
        "test traffic is back on v1"
    );
}
