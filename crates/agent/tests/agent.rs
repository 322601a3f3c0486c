//! Integration tests: a real agent (real shims, real processes) against an in-process fake control
//! plane on 127.0.0.1. This binary has no libtest harness: run as `<binary> shim ...` it is the
//! shim (as `berth shim ...` is in production), otherwise it runs the tests below in order.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_agent::{run, shim_main, AgentConfig};
use berth_model::ecs::{ContainerDefinition, HealthCheck, PortMapping, TaskDefinition};
use berth_model::protocol::agent::{Assignments, LogShipment, Report, TaskAssignment, TaskReport};
use berth_model::seconds::Seconds;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

#[path = "agent/runc.rs"]
mod runc;
#[path = "agent/runc_security.rs"]
mod runc_security;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("shim") {
        std::process::exit(shim_main(args[1..].to_vec()));
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    type Test = fn() -> Pin<Box<dyn Future<Output = ()>>>;
    let tests: Vec<(&str, Test)> = vec![
        ("task_runs_ships_logs_and_stops_without_leftovers", || {
            Box::pin(task_runs_ships_logs_and_stops_without_leftovers())
        }),
        ("essential_exit_stops_the_task_with_its_exit_code", || {
            Box::pin(essential_exit_stops_the_task_with_its_exit_code())
        }),
        ("missing_executable_fails_to_start", || {
            Box::pin(missing_executable_fails_to_start())
        }),
        ("health_checks_mark_tasks_unhealthy_and_healthy", || {
            Box::pin(health_checks_mark_tasks_unhealthy_and_healthy())
        }),
        ("restarted_agent_adopts_running_task", || {
            Box::pin(restarted_agent_adopts_running_task())
        }),
        ("killed_child_is_an_essential_container_exit", || {
            Box::pin(killed_child_is_an_essential_container_exit())
        }),
        ("tasks_keep_running_while_the_control_plane_is_away", || {
            Box::pin(tasks_keep_running_while_the_control_plane_is_away())
        }),
        ("stop_escalates_to_sigkill_after_stop_timeout", || {
            Box::pin(stop_escalates_to_sigkill_after_stop_timeout())
        }),
        ("exit_while_agent_is_down_is_reported_after_restart", || {
            Box::pin(exit_while_agent_is_down_is_reported_after_restart())
        }),
        ("process_tasks_report_usage", || {
            Box::pin(process_tasks_report_usage())
        }),
        ("runc_task_logs_has_its_own_address_and_cleans_up", || {
            Box::pin(runc::task_logs_has_its_own_address_and_cleans_up())
        }),
        ("runc_memory_limit_oom_kills_with_the_ecs_reason", || {
            Box::pin(runc::memory_limit_oom_kills_with_the_ecs_reason())
        }),
        ("runc_cpu_limit_caps_a_busy_loop", || {
            Box::pin(runc::cpu_limit_caps_a_busy_loop())
        }),
        ("runc_stop_sends_sigterm_then_sigkill", || {
            Box::pin(runc::stop_sends_sigterm_then_sigkill())
        }),
        ("runc_restarted_agent_adopts_the_container", || {
            Box::pin(runc::restarted_agent_adopts_the_container())
        }),
        ("runc_readonly_root_tmp_and_user", || {
            Box::pin(runc::readonly_root_tmp_and_user())
        }),
        ("runc_host_network_mode_uses_host_ports", || {
            Box::pin(runc::host_network_mode_uses_host_ports())
        }),
        ("runc_secrets_reach_the_container_but_no_file", || {
            Box::pin(runc_security::secrets_reach_the_container_but_no_file())
        }),
        ("runc_containers_are_confined", || {
            Box::pin(runc_security::containers_are_confined())
        }),
        ("runc_none_network_mode_has_only_loopback", || {
            Box::pin(runc_security::none_network_mode_has_only_loopback())
        }),
    ];
    let mut failed = Vec::new();
    let mut n_run = 0;
    for (name, test) in tests {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        n_run += 1;
        let started = Instant::now();
        let result = std::panic::catch_unwind(|| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(30), test())
                    .await
                    .expect("test timed out");
            });
        });
        let ok = result.is_ok();
        println!(
            "test {name} ... {} ({:.1}s)",
            if ok { "ok" } else { "FAILED" },
            started.elapsed().as_secs_f64()
        );
        if !ok {
            failed.push(name);
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        n_run - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        std::process::exit(1);
    }
}

// ---- fake control plane ----

#[derive(Default)]
pub(crate) struct Recorded {
    reports: Vec<Report>,
    pub(crate) latest: BTreeMap<String, TaskReport>,
    pub(crate) logs: Vec<LogShipment>,
}

pub(crate) struct Fake {
    assignments: watch::Sender<Assignments>,
    pub(crate) recorded: Mutex<Recorded>,
}

async fn assignments(
    State(fake): State<Arc<Fake>>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Assignments> {
    let after: u64 = q.get("after").and_then(|v| v.parse().ok()).unwrap_or(0);
    let wait = Duration::from_millis(q.get("wait_ms").and_then(|v| v.parse().ok()).unwrap_or(0));
    assert_eq!(q.get("node").map(String::as_str), Some("node-1"));
    let mut rx = fake.assignments.subscribe();
    let _ = tokio::time::timeout(wait, rx.wait_for(|a| a.version > after)).await;
    let current = rx.borrow().clone();
    Json(current)
}

async fn report(State(fake): State<Arc<Fake>>, Json(r): Json<Report>) {
    let mut rec = fake.recorded.lock().unwrap();
    for t in &r.tasks {
        rec.latest.insert(t.task_arn.clone(), t.clone());
    }
    rec.reports.push(r);
}

async fn logs(State(fake): State<Arc<Fake>>, Json(s): Json<LogShipment>) {
    fake.recorded.lock().unwrap().logs.push(s);
}

pub(crate) struct Harness {
    pub(crate) fake: Arc<Fake>,
    url: String,
    server: Option<tokio::task::JoinHandle<()>>,
    pub(crate) state: tempfile::TempDir,
    agent: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
}

impl Harness {
    pub(crate) async fn new() -> Harness {
        let (tx, _) = watch::channel(Assignments::default());
        let fake = Arc::new(Fake {
            assignments: tx,
            recorded: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = serve(listener, fake.clone());
        Harness {
            fake,
            url,
            server: Some(server),
            state: tempfile::tempdir().unwrap(),
            agent: None,
        }
    }

    pub(crate) fn start_agent(&mut self) {
        let mut config = AgentConfig::new("node-1", &self.url, self.state.path().join("agent"));
        config.shim_exe = std::env::current_exe().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let join = tokio::spawn(async move {
            run(config, async move {
                let _ = rx.await;
            })
            .await
            .expect("agent failed");
        });
        self.agent = Some((tx, join));
    }

    pub(crate) async fn stop_agent(&mut self) {
        let (tx, join) = self.agent.take().expect("agent running");
        tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), join)
            .await
            .expect("agent stops promptly")
            .unwrap();
    }

    pub(crate) fn set_tasks(&self, tasks: Vec<TaskAssignment>) {
        self.fake.assignments.send_modify(|a| {
            a.version += 1;
            a.tasks = tasks;
        });
    }

    pub(crate) fn task_dir(&self, task_id: &str) -> PathBuf {
        self.state.path().join("agent/tasks").join(task_id)
    }

    pub(crate) async fn wait_task(
        &self,
        arn: &str,
        what: &str,
        pred: impl Fn(&TaskReport) -> bool,
    ) -> TaskReport {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let latest = self.fake.recorded.lock().unwrap().latest.get(arn).cloned();
            if let Some(t) = &latest {
                if pred(t) {
                    return t.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last report: {latest:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Removes every task and waits until they are STOPPED, so no test leaves processes behind.
    pub(crate) async fn stop_all(&self, arns: &[&str]) {
        self.set_tasks(vec![]);
        for arn in arns {
            self.wait_task(arn, "STOPPED after removal", |t| t.last_status == "STOPPED")
                .await;
        }
    }
}

fn serve(listener: tokio::net::TcpListener, fake: Arc<Fake>) -> tokio::task::JoinHandle<()> {
    let app = Router::new()
        .route("/agent/v1/assignments", get(assignments))
        .route("/agent/v1/report", post(report))
        .route("/agent/v1/logs", post(logs))
        .with_state(fake);
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    })
}

pub(crate) fn task(id: &str, containers: Vec<ContainerDefinition>) -> TaskAssignment {
    TaskAssignment {
        task_arn: format!("arn:aws:ecs:local:000000000000:task/default/{id}"),
        task_id: id.into(),
        cluster: "default".into(),
        task_definition: TaskDefinition {
            family: "t".into(),
            revision: 1,
            container_definitions: containers,
            ..Default::default()
        },
        desired_status: "RUNNING".into(),
        environment_overrides: vec![],
        log_group: "/ecs/t".into(),
        secrets: Vec::new(),
        service_name: None,
        ingress: Vec::new(),
    }
}

pub(crate) fn sh(name: &str, script: &str) -> ContainerDefinition {
    ContainerDefinition {
        name: name.into(),
        image: "process:///bin/sh".into(),
        command: vec!["-c".into(), script.into()],
        stop_timeout: Some(Seconds(2.0)),
        ..Default::default()
    }
}

pub(crate) fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// Pids of live processes whose process group is `pgid`.
fn group_members(pgid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let rest: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        // rest[0] = state, rest[2] = pgrp.
        if rest.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(pgid) && rest[0] != "Z" {
            out.push(pid);
        }
    }
    out
}

pub(crate) fn child_pid(report: &TaskReport) -> i32 {
    report.containers[0]
        .runtime_id
        .as_deref()
        .expect("runtime id")
        .parse()
        .expect("pid")
}

async fn wait_gone(pid: i32) {
    for _ in 0..250 {
        if !alive(pid) && group_members(pid).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "process {pid} or its group is still alive: {:?}",
        group_members(pid)
    );
}

// ---- tests ----

async fn task_runs_ships_logs_and_stops_without_leftovers() {
    let mut h = Harness::new().await;
    h.start_agent();
    let mut app = sh(
        "app",
        "echo hello; echo oops >&2; (sleep 30 &); exec sleep 30",
    );
    app.port_mappings = vec![PortMapping {
        container_port: Some(8080),
        ..Default::default()
    }];
    let t = task("t-hello", vec![app]);
    let arn = t.task_arn.clone();
    h.set_tasks(vec![t]);
    let running = h
        .wait_task(&arn, "RUNNING", |t| t.last_status == "RUNNING")
        .await;
    assert!(running.started_at.is_some());
    let pid = child_pid(&running);
    assert!(alive(pid), "the reported pid {pid} runs");
    let binding = &running.containers[0].network_bindings[0];
    assert_eq!(
        (
            binding.bind_ip.as_str(),
            binding.container_port,
            binding.protocol.as_str()
        ),
        ("127.0.0.1", 8080, "tcp")
    );
    assert_ne!(binding.host_port, 0);

    // The lines arrive through /agent/v1/logs, in the task's log group and ECS stream name.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let events: Vec<(String, String, String)> = h
            .fake
            .recorded
            .lock()
            .unwrap()
            .logs
            .iter()
            .flat_map(|s| {
                s.batches.iter().flat_map(|b| {
                    b.events
                        .iter()
                        .map(|e| (b.log_group.clone(), b.log_stream.clone(), e.message.clone()))
                })
            })
            .collect();
        if events.iter().any(|e| e.2 == "hello") && events.iter().any(|e| e.2 == "oops") {
            assert!(
                events
                    .iter()
                    .all(|e| e.0 == "/ecs/t" && e.1 == "ecs/app/t-hello"),
                "{events:?}"
            );
            assert_eq!(
                events.iter().filter(|e| e.2 == "hello").count(),
                1,
                "shipped once"
            );
            break;
        }
        assert!(Instant::now() < deadline, "hello never shipped: {events:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Unlisting the task stops it; nothing of its process group remains.
    assert!(
        group_members(pid).len() >= 2,
        "sleep and its background sibling run"
    );
    h.set_tasks(vec![]);
    let stopped = h
        .wait_task(&arn, "STOPPED", |t| t.last_status == "STOPPED")
        .await;
    assert!(stopped.execution_stopped_at.is_some());
    assert_eq!(stopped.stop_code, None);
    assert_eq!(
        stopped.containers[0].exit_code,
        Some(128 + 15),
        "sleep died of SIGTERM"
    );
    wait_gone(pid).await;
    // Once stopped, unlisted and shipped, the task's directory is removed.
    for _ in 0..200 {
        if !h.task_dir("t-hello").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!h.task_dir("t-hello").exists(), "task directory removed");
    h.stop_agent().await;
}

async fn essential_exit_stops_the_task_with_its_exit_code() {
    let mut h = Harness::new().await;
    h.start_agent();
    let mut side = sh("side", "exec sleep 30");
    side.essential = Some(false);
    let mut early = sh("early", "exit 0");
    early.essential = Some(false);
    let mut main = sh("main", "sleep 0.5; exit 3");
    main.depends_on = vec![berth_model::ecs::ContainerDependency {
        container_name: "early".into(),
        condition: "SUCCESS".into(),
    }];
    let t = task("t-exit", vec![side, early, main]);
    let arn = t.task_arn.clone();
    h.set_tasks(vec![t]);
    // A non-essential container exiting does not stop the task.
    h.wait_task(&arn, "RUNNING", |t| t.last_status == "RUNNING")
        .await;
    let stopped = h
        .wait_task(&arn, "STOPPED", |t| t.last_status == "STOPPED")
        .await;
    assert_eq!(
        stopped.stop_code.as_deref(),
        Some("EssentialContainerExited")
    );
    assert_eq!(
        stopped.stopped_reason.as_deref(),
        Some("Essential container in task exited")
    );
    let by_name: BTreeMap<_, _> = stopped
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c))
        .collect();
    assert_eq!(by_name["main"].exit_code, Some(3));
    assert_eq!(by_name["early"].exit_code, Some(0));
    assert_eq!(
        by_name["side"].exit_code,
        Some(128 + 15),
        "the other container was stopped"
    );
    assert!(stopped
        .containers
        .iter()
        .all(|c| c.last_status == "STOPPED"));
    h.stop_agent().await;
}

async fn missing_executable_fails_to_start() {
    let mut h = Harness::new().await;
    h.start_agent();
    let mut c = sh("app", "");
    c.image = "process:///nonexistent/berth-test-app".into();
    c.command = vec![];
    let mut other = sh("other", "");
    other.image = "nginx:latest".into();
    let t1 = task("t-missing", vec![c]);
    let t2 = task("t-registry", vec![other]);
    let (arn1, arn2) = (t1.task_arn.clone(), t2.task_arn.clone());
    h.set_tasks(vec![t1, t2]);
    let stopped = h
        .wait_task(&arn1, "STOPPED", |t| t.last_status == "STOPPED")
        .await;
    assert_eq!(stopped.stop_code.as_deref(), Some("TaskFailedToStart"));
    let reason = stopped.stopped_reason.unwrap_or_default();
    assert!(
        reason.starts_with("CannotStartContainerError: "),
        "{reason}"
    );
    assert!(reason.contains("No such file or directory"), "{reason}");
    assert_eq!(
        stopped.containers[0].reason.as_deref(),
        Some(reason.as_str())
    );
    let stopped = h
        .wait_task(&arn2, "STOPPED", |t| t.last_status == "STOPPED")
        .await;
    assert_eq!(stopped.stop_code.as_deref(), Some("TaskFailedToStart"));
    assert!(stopped
        .stopped_reason
        .unwrap_or_default()
        .starts_with("CannotPullContainerError: image nginx:latest"));
    h.stop_agent().await;
}

async fn health_checks_mark_tasks_unhealthy_and_healthy() {
    let mut h = Harness::new().await;
    h.start_agent();
    let check = |script: &str| HealthCheck {
        command: vec!["CMD-SHELL".into(), script.into()],
        interval: Some(Seconds(0.1)),
        timeout: Some(Seconds(1.0)),
        retries: Some(2),
        start_period: Some(Seconds(0.0)),
    };
    let mut bad = sh("app", "exec sleep 30");
    bad.health_check = Some(check("exit 1"));
    let mut good = sh("app", "exec sleep 30");
    good.port_mappings = vec![PortMapping {
        container_port: Some(80),
        ..Default::default()
    }];
    // The check sees the container's environment, PORT included.
    good.health_check = Some(check("test -n \"$PORT\" && test \"$PORT\" = \"$PORT_80\" && test \"$BERTH_CONTAINER_NAME\" = app"));
    let t1 = task("t-unhealthy", vec![bad]);
    let t2 = task("t-healthy", vec![good]);
    let (arn1, arn2) = (t1.task_arn.clone(), t2.task_arn.clone());
    h.set_tasks(vec![t1, t2]);
    let r = h
        .wait_task(&arn1, "UNHEALTHY", |t| {
            t.health_status.as_deref() == Some("UNHEALTHY")
        })
        .await;
    assert_eq!(r.containers[0].health_status.as_deref(), Some("UNHEALTHY"));
    assert_eq!(
        r.last_status, "RUNNING",
        "ECS does not stop an unhealthy task by itself"
    );
    let r = h
        .wait_task(&arn2, "HEALTHY", |t| {
            t.health_status.as_deref() == Some("HEALTHY")
        })
        .await;
    assert_eq!(r.containers[0].health_status.as_deref(), Some("HEALTHY"));
    h.stop_all(&[&arn1, &arn2]).await;
    h.stop_agent().await;
}

async fn restarted_agent_adopts_running_task() {
    let mut h = Harness::new().await;
    h.start_agent();
    let t = task("t-adopt", vec![sh("app", "exec sleep 30")]);
    let arn = t.task_arn.clone();
    h.set_tasks(vec![t]);
    let before = h
        .wait_task(&arn, "RUNNING", |t| t.last_status == "RUNNING")
        .await;
    let pid = child_pid(&before);
    h.stop_agent().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(alive(pid), "the task outlives the agent");

    h.fake.recorded.lock().unwrap().latest.clear();
    h.start_agent();
    let after = h
        .wait_task(&arn, "RUNNING after restart", |t| {
            t.last_status == "RUNNING"
        })
        .await;
    assert_eq!(child_pid(&after), pid, "the same process, not a restart");
    assert_eq!(after.started_at, before.started_at);
    h.stop_all(&[&arn]).await;
    wait_gone(pid).await;
    h.stop_agent().await;
}

async fn killed_child_is_an_essential_container_exit() {
    let mut h = Harness::new().await;
    h.start_agent();
    let t = task("t-kill", vec![sh("app", "exec sleep 30")]);
    let arn = t.task_arn.clone();
    h.set_tasks(vec![t]);
    let running = h
        .wait_task(&arn, "RUNNING", |t| t.last_status == "RUNNING")
        .await;
    let pid = child_pid(&running);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let stopped = h
        .wait_task(&arn, "STOPPED", |t| t.last_status == "STOPPED")
        .await;
    assert_eq!(
        stopped.stop_code.as_deref(),
        Some("EssentialContainerExited")
    );
    assert_eq!(stopped.containers[0].exit_code, Some(137));
    h.stop_agent().await;
}

async fn tasks_keep_running_while_the_control_plane_is_away() {
    let mut h = Harness::new().await;
    h.start_agent();
    let t = task("t-away", vec![sh("app", "exec sleep 30")]);
    let arn = t.task_arn.clone();
    h.set_tasks(vec![t]);
    let running = h
        .wait_task(&arn, "RUNNING", |t| t.last_status == "RUNNING")
        .await;
    let pid = child_pid(&running);
    // The control plane goes away: the task keeps running.
    h.server.take().unwrap().abort();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(alive(pid));
    // It comes back on the same address; the agent reconnects and still reports the task.
    let addr = h.url.trim_start_matches("http://").to_string();
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    h.fake.recorded.lock().unwrap().latest.clear();
    h.server = Some(serve(listener, h.fake.clone()));
    let again = h
        .wait_task(&arn, "RUNNING after reconnect", |t| {
            t.last_status == "RUNNING"
        })
        .await;
    assert_eq!(child_pid(&again), pid);
    h.stop_all(&[&arn]).await;
    h.stop_agent().await;
}

async fn stop_escalates_to_sigkill_after_stop_timeout() {
    let mut h = Harness::new().await;
    h.start_agent();
    // The ignored SIGTERM survives exec, so only SIGKILL ends this process.
    let mut app = sh("app", "trap '' TERM; exec sleep 30");
    app.stop_timeout = Some(Seconds(0.3));
    let t = task("t-stubborn", vec![app]);
    let arn = t.task_arn.clone();
    h.set_tasks(vec![t]);
    let running = h
        .wait_task(&arn, "RUNNING", |t| t.last_status == "RUNNING")
        .await;
    let pid = child_pid(&running);
    h.set_tasks(vec![]);
    let stopped = h
        .wait_task(&arn, "STOPPED", |t| t.last_status == "STOPPED")
        .await;
    assert_eq!(stopped.containers[0].exit_code, Some(137));
    wait_gone(pid).await;
    h.stop_agent().await;
}

async fn exit_while_agent_is_down_is_reported_after_restart() {
    let mut h = Harness::new().await;
    h.start_agent();
    let t = task("t-down", vec![sh("app", "exec sleep 30")]);
    let arn = t.task_arn.clone();
    h.set_tasks(vec![t]);
    let running = h
        .wait_task(&arn, "RUNNING", |t| t.last_status == "RUNNING")
        .await;
    let pid = child_pid(&running);
    h.stop_agent().await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_gone(pid).await;
    h.fake.recorded.lock().unwrap().latest.clear();
    h.start_agent();
    let stopped = h
        .wait_task(&arn, "STOPPED after restart", |t| {
            t.last_status == "STOPPED"
        })
        .await;
    assert_eq!(
        stopped.stop_code.as_deref(),
        Some("EssentialContainerExited")
    );
    assert_eq!(
        stopped.containers[0].exit_code,
        Some(137),
        "the exit the shim recorded"
    );
    h.stop_agent().await;
}

async fn process_tasks_report_usage() {
    let mut h = Harness::new().await;
    h.start_agent();
    let mut app = sh(
        "app",
        "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exec sleep 30",
    );
    app.cpu = 128;
    app.memory = Some(64);
    let t = task("t-usage", vec![app]);
    let arn = t.task_arn.clone();
    h.set_tasks(vec![t]);
    let r = h
        .wait_task(&arn, "usage figures", |t| {
            t.containers[0].memory_bytes.is_some_and(|m| m > 0)
                && t.containers[0].cpu_seconds_total.is_some_and(|c| c > 0.0)
        })
        .await;
    assert_eq!(r.containers[0].cpu_limit_units, Some(128));
    assert_eq!(r.containers[0].memory_limit_mib, Some(64));
    h.stop_all(&[&arn]).await;
    h.stop_agent().await;
}
