//! Integration tests of the runc driver: a busybox image (Debian's busybox-static and a symlink per
//! applet) is built with `berth_registry::build_image` and pushed to an in-process registry on
//! 127.0.0.1; the agent pulls it and runs real runc containers in their own network namespaces.
//! They need root and `runc`; without them they are skipped with a loud message.

use super::{child_pid, sh, task, Harness};
use berth_model::ecs::{ContainerDefinition, PortMapping};
use berth_model::protocol::agent::TaskReport;
use berth_model::seconds::Seconds;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Why these tests cannot run here, if they cannot.
fn unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".into());
    }
    if berth_agent::driver::runc::find_on_path("runc").is_none() {
        return Some("runc is not installed".into());
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("/bin/busybox (busybox-static) is not installed".into());
    }
    None
}

pub(crate) fn skipped(test: &str) -> bool {
    match unavailable() {
        Some(why) => {
            eprintln!("\n!!!!!!!! SKIPPED {test}: {why} !!!!!!!!\n");
            true
        }
        None => false,
    }
}

/// A registry on 127.0.0.1 holding `busybox:test`; returns its image reference.
pub(crate) async fn busybox_registry(dir: &Path) -> String {
    let registry = berth_registry::Registry::open(
        dir.join("registry"),
        berth_model::arn::Arns::default(),
        "127.0.0.1".into(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = berth_registry::router(registry);
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let rootfs = dir.join("busybox-rootfs");
    let reference = format!("{addr}/busybox:test");
    let push = reference.clone();
    tokio::task::spawn_blocking(move || {
        make_busybox_rootfs(&rootfs);
        berth_registry::build_image(berth_registry::BuildOptions {
            base: berth_registry::Base::Dir(rootfs),
            add: vec![],
            config: berth_registry::ImageConfig {
                cmd: Some(vec!["sh".into()]),
                ..Default::default()
            },
            push: Some(push),
            layout: None,
        })
        .unwrap();
    })
    .await
    .unwrap();
    reference
}

/// `/bin/busybox`, a symlink per applet, /etc/passwd with root and `app` (1000), /tmp.
pub(crate) fn make_busybox_rootfs(root: &Path) {
    for d in ["bin", "etc", "tmp", "root"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = root.join("bin").join(applet);
        if applet != "busybox" && !link.exists() {
            std::os::unix::fs::symlink("busybox", link).unwrap();
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/tmp:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\napp:x:1000:\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
}

pub(crate) fn container(name: &str, image: &str, script: &str) -> ContainerDefinition {
    ContainerDefinition {
        image: image.into(),
        entry_point: vec!["sh".into(), "-c".into()],
        command: vec![script.into()],
        ..sh(name, script)
    }
}

pub(crate) fn messages(h: &Harness) -> Vec<(String, String)> {
    h.fake
        .recorded
        .lock()
        .unwrap()
        .logs
        .iter()
        .flat_map(|s| {
            s.batches.iter().flat_map(|b| {
                b.events
                    .iter()
                    .map(|e| (b.log_stream.clone(), e.message.clone()))
            })
        })
        .collect()
}

pub(crate) async fn wait_log(h: &Harness, what: &str) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = messages(h);
        if logs.iter().any(|(_, m)| m == what) {
            return logs;
        }
        assert!(
            Instant::now() < deadline,
            "log line {what:?} never shipped: {logs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn http_get(addr: &str) -> std::io::Result<String> {
    let mut s =
        std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

async fn wait_http(addr: &str, body: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = addr.to_string();
        let got = tokio::task::spawn_blocking(move || http_get(&a))
            .await
            .unwrap();
        if let Ok(text) = &got {
            if text.contains(body) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{addr} never answered {body:?}: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn netns_exists(name: &str) -> bool {
    Path::new("/var/run/netns").join(name).exists()
}

fn runc_status(id: &str) -> Option<String> {
    let out = std::process::Command::new("runc")
        .args(["state", id])
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v.get("status").and_then(|s| s.as_str()).map(str::to_string)
}

pub(crate) async fn running(h: &Harness, arn: &str) -> TaskReport {
    h.wait_task(arn, "RUNNING", |t| t.last_status == "RUNNING")
        .await
}

const HTTPD: &str = "mkdir -p /tmp/www && echo hello-from-runc > /tmp/www/index.html && echo hi && exec httpd -f -p 8080 -h /tmp/www";

pub(crate) async fn task_logs_has_its_own_address_and_cleans_up() {
    if skipped("task_logs_has_its_own_address_and_cleans_up") {
        return;
    }
    let mut h = Harness::new().await;
    let image = busybox_registry(h.state.path()).await;
    h.start_agent();
    let mut app = container("app", &image, HTTPD);
    app.stop_timeout = Some(Seconds(1.0));
    app.port_mappings = vec![PortMapping {
        container_port: Some(8080),
        ..Default::default()
    }];
    // The check runs inside the container: its file and its loopback, not the host's.
    assert!(!Path::new("/tmp/www/index.html").exists());
    app.health_check = Some(berth_model::ecs::HealthCheck {
        command: vec![
            "CMD-SHELL".into(),
            "test -f /tmp/www/index.html && wget -q -O /dev/null http://127.0.0.1:8080/index.html"
                .into(),
        ],
        interval: Some(Seconds(0.2)),
        timeout: Some(Seconds(2.0)),
        retries: Some(2),
        start_period: Some(Seconds(5.0)),
    });
    let t = task("t-runc-web", vec![app]);
    let arn = t.task_arn.clone();
    h.set_tasks(vec![t]);
    let r = running(&h, &arn).await;
    assert!(r.pull_started_at.is_some() && r.pull_stopped_at.is_some());
    let b = &r.containers[0].network_bindings[0];
    assert!(
        b.bind_ip.starts_with("10.88."),
        "the task's own address: {b:?}"
    );
    assert_eq!((b.container_port, b.host_port), (8080, 8080));
    let logs = wait_log(&h, "hi").await;
    assert!(
        logs.iter().all(|(s, _)| s == "ecs/app/t-runc-web"),
        "{logs:?}"
    );
    wait_http(&format!("{}:8080", b.bind_ip), "hello-from-runc").await;
    h.wait_task(&arn, "HEALTHY", |t| {
        t.containers[0].health_status.as_deref() == Some("HEALTHY")
    })
    .await;
    // Usage figures come from the container's cgroups.
    let r = h
        .wait_task(&arn, "usage", |t| {
            t.containers[0].memory_bytes.is_some_and(|m| m > 0)
        })
        .await;
    assert!(r.containers[0].cpu_seconds_total.is_some());
    let netns = format!("berth-{}", berth_agent::network::short_id("t-runc-web"));
    assert!(netns_exists(&netns));
    let rootfs = h.task_dir("t-runc-web").join("app/rootfs");
    h.stop_all(&[&arn]).await;
    assert_eq!(
        runc_status("berth-t-runc-web-app"),
        None,
        "runc deleted the container"
    );
    assert!(
        !berth_agent::image::is_mount_point(&rootfs),
        "the rootfs is unmounted"
    );
    for _ in 0..100 {
        if !netns_exists(&netns) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!netns_exists(&netns), "the namespace is removed");
    let veth = format!("vb-{}", berth_agent::network::short_id("t-runc-web"));
    assert!(
        !Path::new("/sys/class/net").join(&veth).exists(),
        "the host end of the veth pair {veth} is removed"
    );
    // A second task uses the cached layers: no new layer directories.
    let layers = h.state.path().join("agent/images/layers");
    let n_layers = std::fs::read_dir(&layers).unwrap().count();
    let t = task(
        "t-runc-again",
        vec![container("app", &image, "echo again; exec sleep 30")],
    );
    let arn = t.task_arn.clone();
    h.set_tasks(vec![t]);
    running(&h, &arn).await;
    wait_log(&h, "again").await;
    assert_eq!(std::fs::read_dir(&layers).unwrap().count(), n_layers);
    h.stop_all(&[&arn]).await;
    h.stop_agent().await;
}

pub(crate) async fn memory_limit_oom_kills_with_the_ecs_reason() {
    if skipped("memory_limit_oom_kills_with_the_ecs_reason") {
        return;
    }
    let mut h = Harness::new().await;
    let image = busybox_registry(h.state.path()).await;
    h.start_agent();
    let mut app = container("app", &image, "echo filling; head -c 64m /dev/zero | tail");
    app.memory = Some(16);
    let t = task("t-runc-oom", vec![app]);
    let arn = t.task_arn.clone();
    h.set_tasks(vec![t]);
    let stopped = h
        .wait_task(&arn, "STOPPED", |t| t.last_status == "STOPPED")
        .await;
    const OOM: &str = "OutOfMemoryError: Container killed due to memory usage";
    assert_eq!(
        stopped.stop_code.as_deref(),
        Some("EssentialContainerExited")
    );
    assert_eq!(stopped.stopped_reason.as_deref(), Some(OOM), "{stopped:#?}");
    assert_eq!(stopped.containers[0].reason.as_deref(), Some(OOM));
    assert_eq!(stopped.containers[0].memory_limit_mib, Some(16));
    h.stop_agent().await;
}

pub(crate) async fn cpu_limit_caps_a_busy_loop() {
    if skipped("cpu_limit_caps_a_busy_loop") {
        return;
    }
    let mut h = Harness::new().await;
    let image = busybox_registry(h.state.path()).await;
    h.start_agent();
    let mut app = container("app", &image, "while :; do :; done");
    app.cpu = 256;
    app.stop_timeout = Some(Seconds(0.5));
    let t = task("t-runc-cpu", vec![app]);
    let arn = t.task_arn.clone();
    h.set_tasks(vec![t]);
    let r = running(&h, &arn).await;
    assert_eq!(r.containers[0].cpu_limit_units, Some(256));
    let pid = child_pid(&r);
    let before = berth_agent::stats::cgroup_sample(pid).expect("cgroup stats");
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = berth_agent::stats::cgroup_sample(pid).expect("cgroup stats");
    let cores = (after.cpu_seconds_total - before.cpu_seconds_total) / t0.elapsed().as_secs_f64();
    eprintln!("busy loop with cpu=256 used {cores:.3} cores");
    assert!(
        cores < 0.45,
        "256 units hold the loop near 0.25 core, it used {cores:.3}"
    );
    assert!(cores > 0.05, "the loop runs: {cores:.3}");
    h.stop_all(&[&arn]).await;
    h.stop_agent().await;
}

pub(crate) async fn stop_sends_sigterm_then_sigkill() {
    if skipped("stop_sends_sigterm_then_sigkill") {
        return;
    }
    let mut h = Harness::new().await;
    let image = busybox_registry(h.state.path()).await;
    h.start_agent();
    let mut polite = container(
        "polite",
        &image,
        "trap 'echo got-term; exit 0' TERM; echo polite-up; while :; do sleep 0.1; done",
    );
    polite.stop_timeout = Some(Seconds(10.0));
    let mut stubborn = container(
        "stubborn",
        &image,
        "trap '' TERM; echo stubborn-up; while :; do sleep 0.1; done",
    );
    stubborn.stop_timeout = Some(Seconds(1.0));
    let t = task("t-runc-stop", vec![polite, stubborn]);
    let arn = t.task_arn.clone();
    h.set_tasks(vec![t]);
    running(&h, &arn).await;
    wait_log(&h, "polite-up").await;
    wait_log(&h, "stubborn-up").await;
    let asked = Instant::now();
    h.set_tasks(vec![]);
    let stopped = h
        .wait_task(&arn, "STOPPED", |t| t.last_status == "STOPPED")
        .await;
    let by_name = |n: &str| {
        stopped
            .containers
            .iter()
            .find(|c| c.name == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("polite").exit_code, Some(0), "the TERM handler ran");
    assert_eq!(
        by_name("stubborn").exit_code,
        Some(137),
        "SIGKILL after stopTimeout"
    );
    assert!(
        asked.elapsed() >= Duration::from_millis(900),
        "the kill waited for stopTimeout"
    );
    wait_log(&h, "got-term").await;
    h.stop_agent().await;
}

pub(crate) async fn restarted_agent_adopts_the_container() {
    if skipped("restarted_agent_adopts_the_container") {
        return;
    }
    let mut h = Harness::new().await;
    let image = busybox_registry(h.state.path()).await;
    h.start_agent();
    let mut app = container("app", &image, HTTPD);
    app.stop_timeout = Some(Seconds(0.5));
    app.port_mappings = vec![PortMapping {
        container_port: Some(8080),
        ..Default::default()
    }];
    let t = task("t-runc-adopt", vec![app]);
    let arn = t.task_arn.clone();
    h.set_tasks(vec![t]);
    let before = running(&h, &arn).await;
    let pid = child_pid(&before);
    h.stop_agent().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        runc_status("berth-t-runc-adopt-app").as_deref(),
        Some("running")
    );
    assert!(super::alive(pid), "the container outlives the agent");
    h.fake.recorded.lock().unwrap().latest.clear();
    h.start_agent();
    let after = running(&h, &arn).await;
    assert_eq!(child_pid(&after), pid, "the same container, not a restart");
    assert_eq!(after.started_at, before.started_at);
    assert_eq!(
        after.containers[0].network_bindings,
        before.containers[0].network_bindings
    );
    let ip = &after.containers[0].network_bindings[0].bind_ip;
    wait_http(&format!("{ip}:8080"), "hello-from-runc").await;
    h.stop_all(&[&arn]).await;
    h.stop_agent().await;
}

pub(crate) async fn readonly_root_tmp_and_user() {
    if skipped("readonly_root_tmp_and_user") {
        return;
    }
    let mut h = Harness::new().await;
    let image = busybox_registry(h.state.path()).await;
    h.start_agent();
    let mut ro = container(
        "ro",
        &image,
        "touch /x 2>/dev/null && echo root-writable || echo root-readonly; touch /tmp/y && echo tmp-writable; exec sleep 30",
    );
    ro.readonly_root_filesystem = Some(true);
    ro.stop_timeout = Some(Seconds(0.5));
    let mut user = container(
        "user",
        &image,
        "echo uid=$(id -u) gid=$(id -g); exec sleep 30",
    );
    user.user = Some("app".into());
    user.stop_timeout = Some(Seconds(0.5));
    let mut numeric = container(
        "numeric",
        &image,
        "echo numeric=$(id -u):$(id -g); exec sleep 30",
    );
    numeric.user = Some("4242:4343".into());
    numeric.stop_timeout = Some(Seconds(0.5));
    let t = task("t-runc-sec", vec![ro, user, numeric]);
    let arn = t.task_arn.clone();
    h.set_tasks(vec![t]);
    running(&h, &arn).await;
    wait_log(&h, "root-readonly").await;
    wait_log(&h, "tmp-writable").await;
    wait_log(&h, "uid=1000 gid=1000").await;
    wait_log(&h, "numeric=4242:4343").await;
    h.stop_all(&[&arn]).await;
    h.stop_agent().await;
}

pub(crate) async fn host_network_mode_uses_host_ports() {
    if skipped("host_network_mode_uses_host_ports") {
        return;
    }
    let mut h = Harness::new().await;
    let image = busybox_registry(h.state.path()).await;
    h.start_agent();
    let mut app = container(
        "app",
        &image,
        "mkdir -p /tmp/www && echo host-net > /tmp/www/index.html && exec httpd -f -p 127.0.0.1:$PORT -h /tmp/www",
    );
    app.stop_timeout = Some(Seconds(0.5));
    app.port_mappings = vec![PortMapping {
        container_port: Some(80),
        ..Default::default()
    }];
    let mut t = task("t-runc-host", vec![app]);
    t.task_definition.network_mode = Some("host".into());
    let arn = t.task_arn.clone();
    h.set_tasks(vec![t]);
    let r = running(&h, &arn).await;
    let b = &r.containers[0].network_bindings[0];
    assert_eq!(b.bind_ip, "127.0.0.1");
    assert_ne!(b.host_port, 80);
    wait_http(&format!("127.0.0.1:{}", b.host_port), "host-net").await;
    assert!(!h.task_dir("t-runc-host").join("network.json").exists());
    h.stop_all(&[&arn]).await;
    h.stop_agent().await;
}
