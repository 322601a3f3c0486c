//! Benchmark driver for bench/container-start.sh: an in-process agent against a minimal fake
//! control plane and an in-process registry holding a busybox image. Times N starts of a cached
//! busybox task (assignment → RUNNING for `sleep`, assignment → STOPPED for `true`) and N bare
//! `runc run` of an equivalent bundle running `true`, and prints medians, p99s and the overhead.
//! Needs root and runc. Run as `<binary> shim ...` it is the shim.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_model::ecs::{ContainerDefinition, TaskDefinition};
use berth_model::protocol::agent::{Assignments, Report, TaskAssignment, TaskReport};
use berth_model::seconds::Seconds;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

struct Fake {
    assignments: watch::Sender<Assignments>,
    latest: Mutex<HashMap<String, (Instant, TaskReport)>>,
}

async fn assignments(
    State(fake): State<Arc<Fake>>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Assignments> {
    let after: u64 = q.get("after").and_then(|v| v.parse().ok()).unwrap_or(0);
    let wait = Duration::from_millis(q.get("wait_ms").and_then(|v| v.parse().ok()).unwrap_or(0));
    let mut rx = fake.assignments.subscribe();
    let _ = tokio::time::timeout(wait, rx.wait_for(|a| a.version > after)).await;
    let current = rx.borrow().clone();
    Json(current)
}

async fn report(State(fake): State<Arc<Fake>>, Json(r): Json<Report>) {
    let now = Instant::now();
    let mut latest = fake.latest.lock().unwrap();
    for t in r.tasks {
        latest.insert(t.task_arn.clone(), (now, t));
    }
}

fn task(id: &str, image: &str, args: &[&str]) -> TaskAssignment {
    TaskAssignment {
        task_arn: format!("arn:aws:ecs:local:000000000000:task/bench/{id}"),
        task_id: id.into(),
        cluster: "bench".into(),
        task_definition: TaskDefinition {
            family: "bench".into(),
            revision: 1,
            container_definitions: vec![ContainerDefinition {
                name: "app".into(),
                image: image.into(),
                entry_point: args.iter().map(|s| s.to_string()).collect(),
                stop_timeout: Some(Seconds(0.5)),
                ..Default::default()
            }],
            ..Default::default()
        },
        desired_status: "RUNNING".into(),
        environment_overrides: vec![],
        log_group: String::new(),
        secrets: Vec::new(),
        service_name: None,
        ingress: Vec::new(),
    }
}

async fn wait_for(fake: &Fake, arn: &str, status: &str) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((at, r)) = fake.latest.lock().unwrap().get(arn) {
            if r.last_status == status {
                return *at;
            }
            if r.last_status == "STOPPED" && status != "STOPPED" {
                panic!("task stopped: {r:?}");
            }
        }
        if Instant::now() >= deadline {
            let _ = std::process::Command::new("sh")
                .arg("-c")
                .arg("for f in $(find / -xdev -path '*/agent/tasks/*' \\( -name shim.log -o -name exit.json -o -name child.pid -o -name runc.log \\) 2>/dev/null); do echo \"== $f\"; cat $f; done; runc list; ps -ef | grep -E 'shim|sleep' | grep -v grep")
                .status();
            panic!("{arn} never reached {status}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn make_rootfs(root: &Path) {
    for d in ["bin", "etc", "tmp", "proc", "dev", "sys"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for applet in ["sh", "true", "sleep"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
}

fn summary(name: &str, mut ms: Vec<f64>) -> f64 {
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = ms[ms.len() / 2];
    let p99 = ms[((ms.len() as f64 * 0.99).ceil() as usize).saturating_sub(1)];
    println!(
        "{name:<44} n={:<3} median {median:7.1} ms   p99 {p99:7.1} ms",
        ms.len()
    );
    median
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("shim") {
        std::process::exit(berth_agent::shim_main(args[1..].to_vec()));
    }
    if std::env::var_os("RUST_LOG").is_some() {
        // Timestamped agent logs on stderr, to see where a start spends its time.
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(bench(n));
}

async fn bench(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    // Registry with the image.
    let registry = berth_registry::Registry::open(
        dir.path().join("registry"),
        berth_model::arn::Arns::default(),
        "127.0.0.1".into(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let reg_addr = listener.local_addr().unwrap();
    let app = berth_registry::router(registry);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let rootfs = dir.path().join("rootfs");
    make_rootfs(&rootfs);
    let image = format!("{reg_addr}/busybox:bench");
    let (r, push) = (rootfs.clone(), image.clone());
    tokio::task::spawn_blocking(move || {
        berth_registry::build_image(berth_registry::BuildOptions {
            base: berth_registry::Base::Dir(r),
            add: vec![],
            config: Default::default(),
            push: Some(push),
            layout: None,
        })
        .unwrap()
    })
    .await
    .unwrap();

    // Fake control plane and agent.
    let (tx, _) = watch::channel(Assignments::default());
    let fake = Arc::new(Fake {
        assignments: tx,
        latest: Mutex::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let routes = Router::new()
        .route("/agent/v1/assignments", get(assignments))
        .route("/agent/v1/report", post(report))
        .route("/agent/v1/logs", post(|| async {}))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, routes).await.unwrap() });
    let mut config = berth_agent::AgentConfig::new("node-1", &url, dir.path().join("agent"));
    config.shim_exe = std::env::current_exe().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(berth_agent::run(config, async move {
        let _ = stop_rx.await;
    }));

    let set = |tasks: Vec<TaskAssignment>| {
        fake.assignments.send_modify(|a| {
            a.version += 1;
            a.tasks = tasks;
        })
    };
    // Warm the cache (pull and unpack once).
    let warm = task("warm", &image, &["true"]);
    set(vec![warm.clone()]);
    wait_for(&fake, &warm.task_arn, "STOPPED").await;

    let mut sleep_ms = Vec::new();
    let mut true_ms = Vec::new();
    for i in 0..n {
        let t = task(&format!("sleep-{i}"), &image, &["sleep", "1000"]);
        let start = Instant::now();
        set(vec![t.clone()]);
        let at = wait_for(&fake, &t.task_arn, "RUNNING").await;
        sleep_ms.push(at.duration_since(start).as_secs_f64() * 1e3);
        set(vec![]);
        wait_for(&fake, &t.task_arn, "STOPPED").await;

        let t = task(&format!("true-{i}"), &image, &["true"]);
        let start = Instant::now();
        set(vec![t.clone()]);
        let at = wait_for(&fake, &t.task_arn, "STOPPED").await;
        true_ms.push(at.duration_since(start).as_secs_f64() * 1e3);
        set(vec![]);
    }
    let _ = stop_tx.send(());
    let _ = agent.await;

    // The bare runtime: the same rootfs and an equivalent config, `runc run` in the foreground.
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let def = task("bare", &image, &["true"])
        .task_definition
        .container_definitions[0]
        .clone();
    let img_config = serde_json::json!({"config": {}});
    let spec =
        berth_agent::driver::runc::spec::build_spec(&berth_agent::driver::runc::spec::SpecInput {
            definition: &def,
            image_config: &img_config,
            env: &[],
            user: Default::default(),
            home: "/root".into(),
            hostname: "bare".into(),
            task_cpu: None,
            task_memory: None,
            // A fresh network namespace per run, as the agent's tasks have (without the veth).
            network: berth_agent::driver::runc::spec::NetworkNamespace::Empty,
            rootfs: rootfs.clone(),
            cgroups_path: "berth-bench/bare".into(),
            etc_files: vec![],
            swap_accounting: false,
            default_nofile: nix::sys::resource::getrlimit(
                nix::sys::resource::Resource::RLIMIT_NOFILE,
            )
            .unwrap(),
        })
        .unwrap();
    let mut spec = serde_json::to_value(spec).unwrap();
    spec["root"] = serde_json::json!({"path": rootfs.display().to_string(), "readonly": true});
    std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
    let mut bare_ms = Vec::new();
    for i in 0..n {
        let start = Instant::now();
        let status = std::process::Command::new("runc")
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg(format!("berth-bench-{}-{i}", std::process::id()))
            .stdin(std::process::Stdio::null())
            .status()
            .unwrap();
        bare_ms.push(start.elapsed().as_secs_f64() * 1e3);
        assert!(status.success(), "runc run failed: {status}");
    }
    println!("container start, cached busybox image, {n} runs each:");
    let a = summary("agent: desired -> RUNNING (sleep task)", sleep_ms);
    let b = summary("agent: desired -> STOPPED (true task)", true_ms);
    let c = summary("bare: runc run of `true` (create..delete)", bare_ms);
    println!("overhead of the agent over bare runc, true task: {:+.1} ms (median); RUNNING of a sleep task is {:+.1} ms from bare", b - c, a - c);
}
