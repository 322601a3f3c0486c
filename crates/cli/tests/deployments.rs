//! End-to-end tests of deployments: rolling updates, the circuit breaker with automatic
//! rollback, manual rollback, `berth deploy --wait` exit codes and the deployment history.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

fn stack(count: u32, min: u32, max: u32) -> String {
    format!(
        r#"
name: t
services:
  web:
    desiredCount: {count}
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
          stopTimeout: 2
"#
    )
}

fn versions(c: &Cluster) -> Vec<String> {
    c.running_tasks("web", true)
        .iter()
        .map(|t| {
            t["taskDefinitionArn"]
                .as_str()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn rolling_update_100_200_reaches_the_new_revision_and_exits_0() {
    let c = Cluster::start(false);
    let s = c.write_stack("berth.yaml", &stack(4, 100, 200));
    assert!(c.cli(&["apply", s.to_str().unwrap()]).status.success());
    c.wait_running("web", 4, true);
    let out = c.cli(&[
        "deploy",
        "web",
        "--env",
        "DEMO_VERSION=v2",
        "--wait",
        "--timeout",
        "60",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "deploy --wait: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("stable"));
    let v = versions(&c);
    assert_eq!(v, vec!["2"; 4], "every running task runs revision 2");
    let svc = c
        .ecs("DescribeServices", json!({"services": ["web"]}))
        .unwrap();
    let deps = svc["services"][0]["deployments"].as_array().unwrap();
    assert_eq!(deps.len(), 1);
    assert_eq!(deps[0]["rolloutState"], "COMPLETED");
    let h = c.cli_json(&["deployments", "web"]);
    let h = h["deployments"].as_array().unwrap();
    assert_eq!(h[0]["status"], "SUCCESSFUL");
    assert_eq!(h[0]["trigger"], "taskDefinition");
    // Who: the authenticated user, whatever the client claims.
    assert_eq!(h[0]["startedBy"], "user:admin");
}

#[test]
fn rolling_update_50_100_never_exceeds_desired() {
    let c = Cluster::start(false);
    let s = c.write_stack("berth.yaml", &stack(4, 50, 100));
    assert!(c.cli(&["apply", s.to_str().unwrap()]).status.success());
    c.wait_running("web", 4, true);
    let child = c
        .cli_command(&[
            "deploy",
            "web",
            "--env",
            "DEMO_VERSION=v2",
            "--wait",
            "--timeout",
            "60",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // While it rolls, never more than maximumPercent (4) tasks are active.
    let mut max_seen = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut child = child;
    loop {
        let r = c.ecs("ListTasks", json!({"serviceName": "web"})).unwrap();
        let arns = r["taskArns"].as_array().unwrap().clone();
        if !arns.is_empty() {
            let d = c.ecs("DescribeTasks", json!({"tasks": arns})).unwrap();
            let active = d["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["desiredStatus"] == "RUNNING")
                .count();
            max_seen = max_seen.max(active);
        }
        if child.try_wait().unwrap().is_some() || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = child.wait().unwrap();
    assert!(status.success());
    assert!(
        max_seen <= 4,
        "{max_seen} tasks active at once with maximumPercent 100"
    );
    assert_eq!(versions(&c), vec!["2"; 4]);
}

#[test]
fn crashing_revision_trips_the_circuit_breaker_and_rolls_back() {
    let c = Cluster::start(false);
    let s = c.write_stack("berth.yaml", &stack(2, 100, 200));
    assert!(c.cli(&["apply", s.to_str().unwrap()]).status.success());
    let before: Vec<String> = c
        .wait_running("web", 2, true)
        .iter()
        .map(|t| short(&t["taskArn"]))
        .collect();
    // A revision whose process exits at once.
    let out = c.cli(&[
        "deploy",
        "web",
        "--image",
        "process:///bin/false",
        "--wait",
        "--timeout",
        "90",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "deploy --wait must fail: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rolled back"), "{err}");
    eventually("rollback finished", Duration::from_secs(30), || {
        let svc = c
            .ecs("DescribeServices", json!({"services": ["web"]}))
            .unwrap();
        let s = &svc["services"][0];
        (s["deployments"].as_array().unwrap().len() == 1
            && s["runningCount"] == 2
            && s["taskDefinition"].as_str().unwrap().ends_with(":1"))
        .then_some(())
    });
    // The old tasks never left service.
    let now: Vec<String> = c
        .running_tasks("web", true)
        .iter()
        .map(|t| short(&t["taskArn"]))
        .collect();
    for id in &before {
        assert!(
            now.contains(id),
            "old task {id} was stopped during a failed deployment"
        );
    }
    let events = c.cli_json(&["events", "web", "--limit", "100"]);
    let msgs: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("deployment failed") && m.contains("circuit breaker")),
        "{msgs:?}"
    );
    assert!(msgs
        .iter()
        .any(|m| m.contains("rolling back to deployment")));
    let h = c.cli_json(&["deployments", "web"]);
    let h = h["deployments"].as_array().unwrap();
    assert_eq!(h[0]["trigger"], "circuit breaker");
    assert_eq!(h[1]["status"], "ROLLBACK_SUCCESSFUL");
}

#[test]
fn revision_failing_health_checks_rolls_back_too() {
    let c = Cluster::start(false);
    let s = c.write_stack("berth.yaml", &stack(2, 100, 200));
    assert!(c.cli(&["apply", s.to_str().unwrap()]).status.success());
    c.wait_running("web", 2, true);
    // The app runs, but /health is asked on a port nothing listens on.
    let td = c
        .ecs("DescribeTaskDefinition", json!({"taskDefinition": "t-web"}))
        .unwrap()["taskDefinition"]
        .clone();
    let mut td = td;
    td["containerDefinitions"][0]["healthCheck"]["command"] =
        json!(["CMD-SHELL", "berth probe http://127.0.0.1:1/health"]);
    for f in [
        "taskDefinitionArn",
        "revision",
        "status",
        "registeredAt",
        "compatibilities",
    ] {
        td.as_object_mut().unwrap().remove(f);
    }
    c.ecs("RegisterTaskDefinition", td).unwrap();
    let out = c.cli(&[
        "deploy",
        "web",
        "--revision",
        "2",
        "--wait",
        "--timeout",
        "90",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("back on revision 1", Duration::from_secs(30), || {
        let svc = c
            .ecs("DescribeServices", json!({"services": ["web"]}))
            .unwrap();
        let s = &svc["services"][0];
        (s["deployments"].as_array().unwrap().len() == 1
            && s["taskDefinition"].as_str().unwrap().ends_with(":1")
            && s["runningCount"] == 2)
            .then_some(())
    });
}

#[test]
fn manual_rollback_goes_to_the_previous_revision() {
    let c = Cluster::start(false);
    let s = c.write_stack("berth.yaml", &stack(1, 100, 200));
    assert!(c.cli(&["apply", s.to_str().unwrap()]).status.success());
    c.wait_running("web", 1, true);
    assert_eq!(
        c.cli(&["deploy", "web", "--env", "DEMO_VERSION=v2", "--wait"])
            .status
            .code(),
        Some(0)
    );
    let out = c.cli(&["rollback", "web", "--wait"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svc = c
        .ecs("DescribeServices", json!({"services": ["web"]}))
        .unwrap();
    assert!(svc["services"][0]["taskDefinition"]
        .as_str()
        .unwrap()
        .ends_with(":1"));
    let h = c.cli_json(&["deployments", "web"]);
    assert_eq!(h["deployments"][0]["trigger"], "rollback");
    // --to an explicit revision.
    let out = c.cli(&["rollback", "web", "--to", "2", "--wait"]);
    assert_eq!(out.status.code(), Some(0));
    let svc = c
        .ecs("DescribeServices", json!({"services": ["web"]}))
        .unwrap();
    assert!(svc["services"][0]["taskDefinition"]
        .as_str()
        .unwrap()
        .ends_with(":2"));
    // Nothing to deploy is an error, not a silent success.
    assert_eq!(c.cli(&["deploy", "web"]).status.code(), Some(1));
}
