//! End-to-end tests of the foundation: the real `berth` binary (server, agent as separate
//! processes) on loopback, driven through the CLI, the ECS wire protocol and the real AWS CLI.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

const STACK: &str = r#"
name: t
services:
  web:
    desiredCount: 3
    taskDefinition:
      containerDefinitions:
        - name: app
          image: process://berth
          command: ["demo-app"]
          environment: [{name: DEMO_NAME, value: web}]
          portMappings: [{containerPort: 8080}]
          healthCheck:
            command: ["CMD-SHELL", "berth probe http://127.0.0.1:$PORT/health"]
            interval: 0.2
            timeout: 2
            retries: 2
          stopTimeout: 2
"#;

#[test]
fn apply_runs_tasks_and_reapply_changes_nothing() {
    let c = Cluster::start(false);
    let stack = c.write_stack("berth.yaml", STACK);
    let out = c.cli(&["apply", stack.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("+ service web"));
    let tasks = c.wait_running("web", 3, true);
    // Every task got its own host port and answers on it.
    let mut ports: Vec<u64> = tasks
        .iter()
        .map(|t| {
            t["containers"][0]["networkBindings"][0]["hostPort"]
                .as_u64()
                .unwrap()
        })
        .collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 3);
    for p in &ports {
        let out = c.cli(&["probe", &format!("http://127.0.0.1:{p}/")]);
        assert!(out.status.success());
    }
    let again = c.cli_json(&["apply", stack.to_str().unwrap()]);
    assert_eq!(
        again["changes"],
        json!([]),
        "re-applying an unchanged stack must change nothing"
    );
    assert_eq!(again["applied"], false);
    // Steady state shows in the events.
    eventually("steady-state event", Duration::from_secs(10), || {
        let ev = c.cli_json(&["events", "web"]);
        ev["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| {
                e["message"]
                    .as_str()
                    .unwrap()
                    .contains("has reached a steady state")
            })
            .then_some(())
    });
}

#[test]
fn invalid_stack_lists_every_error_and_applies_nothing() {
    let c = Cluster::start(false);
    let stack = c.write_stack(
        "bad.yaml",
        r#"
name: t
services:
  web:
    desiredCount: two
    taskDefinition:
      containerDefinitions:
        - name: app
          image: ""
          portMappings: [{containerPort: 0}]
  api:
    desiredCount: 1
    taskDefinition:
      containerDefinitions:
        - name: app
          image: process://berth
          healthCheck: {command: ["true"]}
"#,
    );
    let out = c.cli(&["apply", stack.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for path in [
        "services.web.desiredCount",
        "services.web.taskDefinition.containerDefinitions[0].image",
        "services.web.taskDefinition.containerDefinitions[0].portMappings[0].containerPort",
        "services.api.taskDefinition.containerDefinitions[0].healthCheck.command",
    ] {
        assert!(err.contains(path), "missing {path} in:\n{err}");
    }
    let services = c.cli_json(&["services"]);
    assert_eq!(services["services"], json!([]), "nothing may be applied");
    let tds = c.ecs("ListTaskDefinitions", json!({})).unwrap();
    assert_eq!(tds["taskDefinitionArns"], json!([]));
}

#[test]
fn killed_task_process_is_replaced() {
    let c = Cluster::start(false);
    let stack = c.write_stack(
        "berth.yaml",
        &STACK.replace("desiredCount: 3", "desiredCount: 2"),
    );
    assert!(c.cli(&["apply", stack.to_str().unwrap()]).status.success());
    let tasks = c.wait_running("web", 2, true);
    let victim = short(&tasks[0]["taskArn"]);
    let pid = c
        .task_pid(&victim, "app")
        .expect("pid of the task's process");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let replaced = eventually("a replacement task", Duration::from_secs(30), || {
        let t = c.running_tasks("web", true);
        (t.len() == 2 && t.iter().all(|t| short(&t["taskArn"]) != victim)).then_some(t)
    });
    assert_eq!(replaced.len(), 2);
    let stopped = c.ecs("DescribeTasks", json!({"tasks": [victim]})).unwrap();
    let t = &stopped["tasks"][0];
    assert_eq!(t["lastStatus"], "STOPPED");
    assert_eq!(t["stopCode"], "EssentialContainerExited");
    assert_eq!(t["containers"][0]["exitCode"], 137);
}

#[test]
fn failing_task_backs_off_instead_of_looping() {
    let c = Cluster::start(false);
    let stack = c.write_stack(
        "berth.yaml",
        r#"
name: t
services:
  broken:
    desiredCount: 1
    taskDefinition:
      containerDefinitions:
        - name: app
          image: process:///bin/sh
          command: ["-c", "exit 3"]
"#,
    );
    assert!(c.cli(&["apply", stack.to_str().unwrap()]).status.success());
    let ev = eventually("a backoff event", Duration::from_secs(30), || {
        let ev = c.cli_json(&["events", "broken", "--limit", "100"]);
        let msgs: Vec<String> = ev["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_string())
            .collect();
        msgs.iter()
            .any(|m| m.contains("unable to consistently start tasks"))
            .then_some(msgs)
    });
    assert!(ev.iter().any(|m| m.contains("Retrying in")));
    // Over the next 3 s the number of started tasks grows slowly, not in a tight loop.
    let count = || {
        c.ecs(
            "ListTasks",
            json!({"serviceName": "broken", "desiredStatus": "STOPPED"}),
        )
        .unwrap()["taskArns"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = count();
    std::thread::sleep(Duration::from_secs(3));
    let after = count();
    assert!(
        after - before <= 3,
        "{} tasks started in 3 s: a tight restart loop",
        after - before
    );
    let t = c.ecs("DescribeTasks", json!({"tasks": [c.ecs("ListTasks", json!({"serviceName": "broken", "desiredStatus": "STOPPED"})).unwrap()["taskArns"][0]]})).unwrap();
    assert_eq!(t["tasks"][0]["containers"][0]["exitCode"], 3);
}

#[test]
fn server_kill_9_keeps_tasks_running_and_adopts_them() {
    let mut c = Cluster::start(false);
    let stack = c.write_stack(
        "berth.yaml",
        &STACK.replace("desiredCount: 3", "desiredCount: 2"),
    );
    assert!(c.cli(&["apply", stack.to_str().unwrap()]).status.success());
    let tasks = c.wait_running("web", 2, true);
    let ids: Vec<String> = tasks.iter().map(|t| short(&t["taskArn"])).collect();
    let pids: Vec<i32> = ids
        .iter()
        .map(|id| c.task_pid(id, "app").unwrap())
        .collect();
    let port = tasks[0]["containers"][0]["networkBindings"][0]["hostPort"]
        .as_u64()
        .unwrap();
    c.kill_server();
    // Tasks keep serving while the control plane is gone.
    for _ in 0..5 {
        assert!(c
            .cli(&["probe", &format!("http://127.0.0.1:{port}/")])
            .status
            .success());
        std::thread::sleep(Duration::from_millis(200));
    }
    c.start_server();
    let after = c.wait_running("web", 2, true);
    let mut after_ids: Vec<String> = after.iter().map(|t| short(&t["taskArn"])).collect();
    let mut before_ids = ids.clone();
    after_ids.sort();
    before_ids.sort();
    assert_eq!(after_ids, before_ids, "the same tasks, adopted");
    for (id, pid) in ids.iter().zip(pids) {
        assert_eq!(c.task_pid(id, "app"), Some(pid), "task {id} was restarted");
        assert!(alive(pid));
    }
}

#[test]
fn deleting_a_service_leaves_no_processes() {
    let c = Cluster::start(false);
    let stack = c.write_stack(
        "berth.yaml",
        &STACK.replace("desiredCount: 3", "desiredCount: 2"),
    );
    assert!(c.cli(&["apply", stack.to_str().unwrap()]).status.success());
    let tasks = c.wait_running("web", 2, true);
    let ids: Vec<String> = tasks.iter().map(|t| short(&t["taskArn"])).collect();
    for id in &ids {
        assert!(
            !processes_of_task(id).is_empty(),
            "task {id} has processes while running"
        );
    }
    let empty = c.write_stack("empty.yaml", "name: t\nservices: {}\n");
    let out = c.cli(&["apply", empty.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("- service web"));
    eventually(
        "all processes of the service gone",
        Duration::from_secs(20),
        || {
            ids.iter()
                .all(|id| processes_of_task(id).is_empty())
                .then_some(())
        },
    );
    eventually("service INACTIVE", Duration::from_secs(10), || {
        let r = c
            .ecs("DescribeServices", json!({"services": ["web"]}))
            .unwrap();
        (r["services"][0]["status"] == "INACTIVE").then_some(())
    });
}

#[test]
fn real_aws_cli_sees_what_berth_created() {
    let c = Cluster::start(false);
    let stack = c.write_stack(
        "berth.yaml",
        &STACK.replace("desiredCount: 3", "desiredCount: 1"),
    );
    assert!(c.cli(&["apply", stack.to_str().unwrap()]).status.success());
    c.wait_running("web", 1, false);
    let aws = |args: &[&str]| -> serde_json::Value {
        let out = std::process::Command::new("aws")
            .args(args)
            .args([
                "--endpoint-url",
                &format!("http://{}", c.addr),
                "--region",
                "us-east-1",
                "--output",
                "json",
            ])
            .envs(c.aws_env())
            .output()
            .expect("the AWS CLI (`aws`) must be installed: scripts/test.sh installs it");
        assert!(
            out.status.success(),
            "aws {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let clusters = aws(&["ecs", "list-clusters"]);
    assert!(clusters["clusterArns"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a.as_str().unwrap().ends_with(":cluster/default")));
    let services = aws(&["ecs", "list-services"]);
    assert_eq!(services["serviceArns"].as_array().unwrap().len(), 1);
    let described = aws(&["ecs", "describe-services", "--services", "web"]);
    assert_eq!(described["services"][0]["serviceName"], "web");
    assert_eq!(described["services"][0]["desiredCount"], 1);
    let tasks = aws(&["ecs", "list-tasks", "--service-name", "web"]);
    let arn = tasks["taskArns"][0].as_str().unwrap().to_string();
    let dt = aws(&["ecs", "describe-tasks", "--tasks", &arn]);
    assert_eq!(dt["tasks"][0]["lastStatus"], "RUNNING");
    assert_eq!(
        dt["tasks"][0]["containers"][0]["networkBindings"][0]["containerPort"],
        8080
    );
    let td = aws(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        "t-web",
    ]);
    assert_eq!(td["taskDefinition"]["revision"], 1);
    // And a change made with the AWS CLI shows in berth's CLI.
    aws(&[
        "ecs",
        "update-service",
        "--service",
        "web",
        "--desired-count",
        "2",
    ]);
    c.wait_running("web", 2, false);
    // Bad input gets an ECS error naming the field.
    let out = std::process::Command::new("aws")
        .args([
            "ecs",
            "describe-services",
            "--cluster",
            "nope",
            "--services",
            "web",
            "--endpoint-url",
            &format!("http://{}", c.addr),
            "--region",
            "us-east-1",
        ])
        .envs(c.aws_env())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ClusterNotFoundException"));
}

#[test]
fn task_logs_are_captured_and_readable_after_stop() {
    let c = Cluster::start(false);
    let stack = c.write_stack(
        "berth.yaml",
        r#"
name: t
services:
  talker:
    desiredCount: 1
    taskDefinition:
      containerDefinitions:
        - name: app
          image: process:///bin/sh
          command: ["-c", "echo hello-from-task; echo oops >&2; exec sleep 60"]
          stopTimeout: 1
"#,
    );
    assert!(c.cli(&["apply", stack.to_str().unwrap()]).status.success());
    let tasks = c.wait_running("talker", 1, false);
    let id = short(&tasks[0]["taskArn"]);
    let lines = eventually("log lines", Duration::from_secs(10), || {
        let out = c.cli(&["logs", "talker"]);
        let s = String::from_utf8_lossy(&out.stdout).to_string();
        (s.contains("hello-from-task") && s.contains("oops")).then_some(s)
    });
    assert!(
        lines.contains(&format!("app/{}", &id[..8])),
        "lines carry the task prefix: {lines}"
    );
    let out = c.cli(&["stop-task", &id]);
    assert!(out.status.success());
    eventually("task stopped", Duration::from_secs(15), || {
        let r = c.ecs("DescribeTasks", json!({"tasks": [id]})).unwrap();
        (r["tasks"][0]["lastStatus"] == "STOPPED").then_some(())
    });
    let r = c.ecs("DescribeTasks", json!({"tasks": [id]})).unwrap();
    assert_eq!(r["tasks"][0]["stopCode"], "UserInitiated");
    let out = c.cli(&["logs", "talker"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("hello-from-task"),
        "logs stay readable after the task stopped"
    );
}

#[test]
fn down_stops_every_task_process() {
    let c = Cluster::start(false);
    let stack = c.write_stack(
        "berth.yaml",
        &STACK.replace("desiredCount: 3", "desiredCount: 2"),
    );
    assert!(c.cli(&["apply", stack.to_str().unwrap()]).status.success());
    let tasks = c.wait_running("web", 2, true);
    let ids: Vec<String> = tasks.iter().map(|t| short(&t["taskArn"])).collect();
    let out = c.cli(&["down"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stopped 2 task containers"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for id in &ids {
        assert!(
            processes_of_task(id).is_empty(),
            "task {id} still has processes after `berth down`"
        );
    }
}
