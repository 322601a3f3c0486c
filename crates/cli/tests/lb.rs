//! End-to-end load balancer behaviour with real tasks: target health visible through the real
//! `aws elbv2` CLI, zero client errors when a task's process is killed under load, draining of a
//! slow in-flight request, and the proxy serving on while the control plane is killed and restarted.

mod common;

use common::*;
use std::time::Duration;

fn stack(port: u16, count: u32) -> String {
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
    healthCheck: {{path: /health, intervalSeconds: 0.2, timeoutSeconds: 0.15, healthyThreshold: 2, unhealthyThreshold: 2}}
    attributes: {{deregistration_delay.timeout_seconds: "20"}}
services:
  web:
    desiredCount: {count}
    loadBalancers: [{{targetGroup: web, containerName: app, containerPort: 8080}}]
    taskDefinition:
      containerDefinitions:
        - name: app
          image: process://berth
          command: ["demo-app"]
          portMappings: [{{containerPort: 8080}}]
          healthCheck:
            command: ["CMD-SHELL", "berth probe http://127.0.0.1:$PORT/health"]
            interval: 0.2
            timeout: 2
            retries: 2
          stopTimeout: 10
"#
    )
}

fn setup(count: u32) -> (Cluster, String) {
    let c = Cluster::start(true);
    let port = free_port();
    let s = c.write_stack("berth.yaml", &stack(port, count));
    let out = c.cli(&["apply", s.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.wait_running("web", count as usize, true);
    let addr = format!("127.0.0.1:{port}");
    eventually("the listener serves", Duration::from_secs(30), || {
        (0..10)
            .all(|_| http_get(&addr, "/").map(|(s, _)| s == 200).unwrap_or(false))
            .then_some(())
    });
    (c, addr)
}

#[test]
fn aws_cli_describes_the_tasks_target_health() {
    let (c, _) = setup(2);
    let tg = c.aws_ok(&["elbv2", "describe-target-groups", "--names", "web"]);
    let arn = tg["TargetGroups"][0]["TargetGroupArn"]
        .as_str()
        .unwrap()
        .to_string();
    let health = eventually("two healthy targets", Duration::from_secs(20), || {
        let h = c.aws_ok(&[
            "elbv2",
            "describe-target-health",
            "--target-group-arn",
            &arn,
        ]);
        let d = h["TargetHealthDescriptions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        (d.len() == 2 && d.iter().all(|t| t["TargetHealth"]["State"] == "healthy")).then_some(d)
    });
    // The targets are the tasks' host ports.
    let tasks = c.running_tasks("web", true);
    let mut ports: Vec<u64> = tasks
        .iter()
        .map(|t| {
            t["containers"][0]["networkBindings"][0]["hostPort"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let mut target_ports: Vec<u64> = health
        .iter()
        .map(|t| t["Target"]["Port"].as_u64().unwrap())
        .collect();
    ports.sort();
    target_ports.sort();
    assert_eq!(ports, target_ports);
}

#[test]
fn killing_a_task_under_load_gives_no_client_errors() {
    let (c, addr) = setup(3);
    let load = Load::start(&addr, "/", 4, 20_000, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    let victim = short(&c.running_tasks("web", true)[0]["taskArn"]);
    let pid = c.task_pid(&victim, "app").unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // Keep the load on while the service replaces the task.
    eventually("replacement healthy", Duration::from_secs(30), || {
        let t = c.running_tasks("web", true);
        (t.len() == 3 && t.iter().all(|t| short(&t["taskArn"]) != victim)).then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    let r = load.finish();
    assert!(r.ok > 50);
    assert!(
        r.failures.is_empty(),
        "{} failures: {:?}",
        r.failures.len(),
        &r.failures[..r.failures.len().min(5)]
    );
}

#[test]
fn a_stopped_task_finishes_its_slow_request_while_new_ones_go_elsewhere() {
    let (c, addr) = setup(3);
    // Slow requests (3 s) in flight on the tasks (round robin spreads them).
    let slow: Vec<_> = (0..3)
        .map(|_| {
            let a = addr.clone();
            let h = std::thread::spawn(move || http_get(&a, "/?sleep_ms=3000"));
            std::thread::sleep(Duration::from_millis(50));
            h
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // Stop two of the three tasks: with a 20 s deregistration delay they drain, and stop as soon
    // as they are idle.
    let tasks = c.running_tasks("web", true);
    let (a, b) = (short(&tasks[0]["taskArn"]), short(&tasks[1]["taskArn"]));
    assert!(c.cli(&["stop-task", &a]).status.success());
    assert!(c.cli(&["stop-task", &b]).status.success());
    // New requests keep succeeding on the remaining task and the replacements.
    for _ in 0..40 {
        let (s, body) = http_get(&addr, "/").unwrap();
        assert_eq!(s, 200, "{body}");
        std::thread::sleep(Duration::from_millis(50));
    }
    for h in slow {
        let (status, body) = h.join().unwrap().unwrap();
        assert_eq!(status, 200, "an in-flight request finished: {body}");
    }
    // Draining ends when the task has no requests left, long before the 20 s delay.
    let stopped = eventually("drained tasks stopped", Duration::from_secs(15), || {
        let r = c
            .ecs("DescribeTasks", serde_json::json!({"tasks": [a, b]}))
            .unwrap();
        r["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["lastStatus"] == "STOPPED")
            .then_some(r)
    });
    assert_eq!(stopped["tasks"][0]["stopCode"], "UserInitiated");
}

#[test]
fn the_proxy_keeps_serving_while_the_server_is_killed_and_restarted() {
    let (mut c, addr) = setup(2);
    let load = Load::start(&addr, "/", 2, 20_000, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(300));
    c.kill_server();
    std::thread::sleep(Duration::from_secs(2));
    c.start_server();
    std::thread::sleep(Duration::from_secs(2));
    let r = load.finish();
    assert!(r.ok > 50);
    assert!(
        r.failures.is_empty(),
        "{} failures: {:?}",
        r.failures.len(),
        &r.failures[..r.failures.len().min(5)]
    );
    // And the restarted server still drives the proxy: scaling up adds targets.
    assert!(c.cli(&["scale", "web", "3"]).status.success());
    c.wait_running("web", 3, true);
}

#[test]
fn a_service_without_container_health_checks_completes_on_target_health() {
    let c = Cluster::start(true);
    let port = free_port();
    let text = stack(port, 2);
    let start = text.find("          healthCheck:").unwrap();
    let end = text.find("          stopTimeout").unwrap();
    let text = format!("{}{}", &text[..start], &text[end..]);
    let s = c.write_stack("berth.yaml", &text);
    assert!(c.cli(&["apply", s.to_str().unwrap()]).status.success());
    eventually("rollout COMPLETED", Duration::from_secs(30), || {
        let svc = c
            .ecs("DescribeServices", serde_json::json!({"services": ["web"]}))
            .unwrap();
        (svc["services"][0]["deployments"][0]["rolloutState"] == "COMPLETED").then_some(())
    });
}
