//! End-to-end test of a stack's load balancer side: `berth apply` creates a load balancer, a
//! listener with a path rule and two target groups through ELBv2, two demo-app services register
//! with them, the proxy routes `/api/*` and everything else to the right service, and applying
//! the same file again changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use std::io::{Read, Write};
use std::time::Duration;

fn stack(port: u16) -> String {
    let service = |name: &str| {
        format!(
            r#"
  {name}:
    desiredCount: 1
    loadBalancers: [{{targetGroup: {name}, containerName: app, containerPort: 8080}}]
    taskDefinition:
      containerDefinitions:
        - name: app
          image: process://berth
          command: ["demo-app"]
          environment: [{{name: DEMO_NAME, value: {name}}}]
          portMappings: [{{containerPort: 8080}}]
          stopTimeout: 2
"#
        )
    };
    format!(
        r#"
name: lbt
loadBalancers:
  lbt:
    listeners:
      - port: {port}
        defaultAction: {{forward: frontend}}
        rules:
          - priority: 10
            conditions: {{pathPattern: ["/api/*"]}}
            action: {{forward: api}}
targetGroups:
  frontend:
    port: 8080
    healthCheck: {{path: /health, intervalSeconds: 0.5, timeoutSeconds: 0.4, healthyThreshold: 2, unhealthyThreshold: 2}}
    attributes: {{deregistration_delay.timeout_seconds: "1"}}
  api:
    port: 8080
    healthCheck: {{path: /health, intervalSeconds: 0.5, timeoutSeconds: 0.4, healthyThreshold: 2, unhealthyThreshold: 2}}
    attributes: {{deregistration_delay.timeout_seconds: 1}}
services:{}{}"#,
        service("frontend"),
        service("api")
    )
}

/// GET `path` from 127.0.0.1:`port`; the status code and the body (None when not reachable).
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// The demo app's `name` from a 200 answer (`"name":"api"` in its JSON).
fn served_by(port: u16, path: &str) -> Option<String> {
    let (status, body) = get(port, path)?;
    if status != 200 {
        return None;
    }
    ["frontend", "api"]
        .into_iter()
        .find(|n| body.contains(&format!("\"name\":\"{n}\"")))
        .map(str::to_string)
}

#[test]
fn apply_creates_the_load_balancer_and_routes_by_path_then_plans_nothing() {
    let c = Cluster::start(true);
    let port = free_port();
    let path = c.write_stack("berth.yaml", &stack(port));
    let path = path.to_str().unwrap();

    let diff = c.cli_json(&["diff", path]);
    let resources: Vec<String> = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ch| {
            format!(
                "{} {} {}",
                ch["action"],
                ch["resource"].as_str().unwrap(),
                ch["name"].as_str().unwrap()
            )
        })
        .collect();
    for expected in [
        "\"create\" target-group api",
        "\"create\" target-group frontend",
        "\"create\" load-balancer lbt",
        &format!("\"create\" listener lbt:{port}"),
        &format!("\"create\" rule lbt:{port}/10"),
        "\"create\" service api",
        "\"create\" service frontend",
    ] {
        assert!(
            resources.iter().any(|r| r == expected),
            "diff lacks {expected}: {resources:?}"
        );
    }
    assert_eq!(diff["applied"], false);

    let out = c.cli(&["apply", path]);
    assert!(
        out.status.success(),
        "apply failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    c.wait_running("frontend", 1, false);
    c.wait_running("api", 1, false);
    let services = c
        .ecs("DescribeServices", json!({"services": ["api", "frontend"]}))
        .unwrap();
    for svc in services["services"].as_array().unwrap() {
        let name = svc["serviceName"].as_str().unwrap();
        let arn = svc["loadBalancers"][0]["targetGroupArn"]
            .as_str()
            .unwrap_or_default();
        assert!(
            arn.contains(&format!(":targetgroup/{name}/")),
            "service {name} uses its target group by ARN, found {arn:?}"
        );
    }

    let api = eventually(
        "/api/x answered by the api service",
        Duration::from_secs(30),
        || served_by(port, "/api/x").filter(|n| n == "api"),
    );
    assert_eq!(api, "api");
    let front = eventually(
        "/ answered by the frontend service",
        Duration::from_secs(30),
        || served_by(port, "/").filter(|n| n == "frontend"),
    );
    assert_eq!(front, "frontend");
    for _ in 0..5 {
        assert_eq!(served_by(port, "/api/y").as_deref(), Some("api"));
        assert_eq!(served_by(port, "/other").as_deref(), Some("frontend"));
    }

    let again = c.cli(&["apply", path]);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        again.status.success(),
        "re-apply failed: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(
        stdout.contains("No changes."),
        "re-apply planned changes:\n{stdout}"
    );

    // Dropping the rule is planned as exactly that, and applied: /api/x goes to the frontend.
    let without_rule = stack(port).replace(
        "        rules:\n          - priority: 10\n            conditions: {pathPattern: [\"/api/*\"]}\n            action: {forward: api}\n",
        "",
    );
    assert_ne!(without_rule, stack(port));
    let path2 = c.write_stack("berth2.yaml", &without_rule);
    let path2 = path2.to_str().unwrap();
    let out = c.cli(&["apply", path2]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "apply without the rule failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("- rule lbt:{port}/10")),
        "plan:\n{stdout}"
    );
    eventually(
        "/api/x answered by the frontend",
        Duration::from_secs(30),
        || served_by(port, "/api/x").filter(|n| n == "frontend"),
    );
}
