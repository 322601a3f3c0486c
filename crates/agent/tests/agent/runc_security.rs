//! Integration tests of the runc containers' hardening: secrets never written under the state
//! directory, the seccomp profile, capability add/drop, the process limit, a read-only root with
//! tmpfs mounts, an invisible state directory and network namespaces. Same requirements (root,
//! runc, busybox-static) and skipping as `runc.rs`.

use super::runc::{busybox_registry, container, running, skipped, wait_log};
use super::{task, Harness};
use berth_model::seconds::Seconds;
use serde_json::json;
use sha2::Digest;
use std::path::Path;

/// Files under `dir` (not following symlinks) whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                if let Ok(bytes) = std::fs::read(e.path()) {
                    if bytes.windows(needle.len()).any(|w| w == needle) {
                        found.push(e.path().display().to_string());
                    }
                }
            }
        }
    }
    found
}

fn hardened(
    name: &str,
    image: &str,
    script: &str,
    extra: serde_json::Value,
) -> berth_model::ecs::ContainerDefinition {
    let mut c = container(name, image, script);
    c.stop_timeout = Some(Seconds(0.5));
    if let serde_json::Value::Object(m) = extra {
        c.extra.extend(m);
    }
    c
}

pub(crate) async fn secrets_reach_the_container_but_no_file() {
    if skipped("secrets_reach_the_container_but_no_file") {
        return;
    }
    let mut h = Harness::new().await;
    let image = busybox_registry(h.state.path()).await;
    h.start_agent();
    let secret = format!(
        "plaintext-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let digest = hex(&sha2::Sha256::digest(secret.as_bytes()));
    let app = hardened(
        "app",
        &image,
        "echo -n \"$DB_PASSWORD\" | sha256sum; exec sleep 30",
        json!({}),
    );
    let mut t = task("t-runc-secret", vec![app]);
    t.secrets = vec![("app".into(), "DB_PASSWORD".into(), secret.clone())];
    let arn = t.task_arn.clone();
    h.set_tasks(vec![t]);
    running(&h, &arn).await;
    // The container saw the value (its digest), …
    wait_log(&h, &format!("{digest}  -")).await;
    // … and no file under the state directory holds it, nor is the bundle left on the tmpfs.
    let leaks = files_containing(h.state.path(), secret.as_bytes());
    assert!(leaks.is_empty(), "the secret is written in {leaks:?}");
    // runc's own state (`/run/runc/<id>`, on disk where /run is no tmpfs) has no copy either.
    let leaks = files_containing(
        Path::new("/run/runc/berth-t-runc-secret-app"),
        secret.as_bytes(),
    );
    assert!(leaks.is_empty(), "the secret is written in {leaks:?}");
    let bundle =
        Path::new(berth_agent::driver::runc::RUN_DIR).join("bundles/berth-t-runc-secret-app");
    assert!(
        !bundle.exists(),
        "{} is removed once runc has read it",
        bundle.display()
    );
    assert!(
        berth_agent::driver::runc::is_tmpfs(Path::new(berth_agent::driver::runc::RUN_DIR)),
        "bundles live on a tmpfs"
    );
    h.stop_all(&[&arn]).await;
    let leaks = files_containing(h.state.path(), secret.as_bytes());
    assert!(leaks.is_empty(), "the secret is written in {leaks:?}");
    h.stop_agent().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Seccomp, capabilities, the process limit, tmpfs mounts on a read-only root, the state
/// directory and the network namespace, each seen from inside a container.
pub(crate) async fn containers_are_confined() {
    if skipped("containers_are_confined") {
        return;
    }
    let mut h = Harness::new().await;
    let image = busybox_registry(h.state.path()).await;
    h.start_agent();
    let state = h.state.path().display().to_string();
    let seccomp = hardened(
        "seccomp",
        &image,
        "echo $(grep Seccomp: /proc/self/status); \
         mount -t tmpfs x /tmp 2>/dev/null && echo mount-allowed || echo mount-denied; \
         unshare -n true 2>/dev/null && echo unshare-allowed || echo unshare-denied; \
         exec sleep 30",
        json!({"linuxParameters": {"capabilities": {"add": ["SYS_ADMIN"]}}}),
    );
    let nochown = hardened(
        "nochown",
        &image,
        "touch /tmp/f; chown 1000 /tmp/f 2>/dev/null && echo nochown:allowed || echo nochown:denied; exec sleep 30",
        json!({"linuxParameters": {"capabilities": {"drop": ["CHOWN"]}}}),
    );
    let chown = hardened(
        "chown",
        &image,
        "touch /tmp/f; chown 1000 /tmp/f 2>/dev/null && echo chown:allowed || echo chown:denied; \
         read max < /sys/fs/cgroup/pids/pids.max; echo default-pids-max=$max; exec sleep 30",
        json!({}),
    );
    // A fork bomb: the subshell dies when fork fails; the shell then reports with builtins only.
    let bomb = hardened(
        "bomb",
        &image,
        "( while :; do sleep 20 & done ) 2>/dev/null; \
         read cur < /sys/fs/cgroup/pids/pids.current; read max < /sys/fs/cgroup/pids/pids.max; \
         echo bomb-stopped max=$max; [ $cur -le $max ] && echo bomb-bounded; exec sleep 30",
        json!({"dockerLabels": {"berth.pids-limit": "24"}}),
    );
    let mut ro = hardened(
        "ro",
        &image,
        "touch /x 2>/dev/null && echo ro:root-writable || echo ro:root-readonly; \
         touch /etc/x 2>/dev/null && echo ro:etc-writable || echo ro:etc-readonly; \
         echo a > /cache/a && echo ro:cache-writable; \
         head -c 2097152 /dev/zero > /cache/big 2>/dev/null && echo ro:cache-unbounded || echo ro:cache-full; \
         ls \"$STATE_DIR\" >/dev/null 2>&1 && echo ro:state-visible || echo ro:state-invisible; \
         echo ro:ifaces $(ls /sys/class/net); exec sleep 30",
        json!({"linuxParameters": {"tmpfs": [{"containerPath": "/cache", "size": 1}]}}),
    );
    ro.readonly_root_filesystem = Some(true);
    ro.environment = vec![berth_model::ecs::KeyValuePair {
        name: "STATE_DIR".into(),
        value: state.clone(),
    }];
    let t = task("t-runc-confined", vec![seccomp, nochown, chown, bomb, ro]);
    let arn = t.task_arn.clone();
    h.set_tasks(vec![t]);
    running(&h, &arn).await;
    for line in [
        "Seccomp: 2",
        "mount-denied",
        "unshare-denied",
        "nochown:denied",
        "chown:allowed",
        "default-pids-max=1024",
        "bomb-stopped max=24",
        "bomb-bounded",
        "ro:root-readonly",
        "ro:etc-readonly",
        "ro:cache-writable",
        "ro:cache-full",
        "ro:state-invisible",
        "ro:ifaces eth0 lo",
    ] {
        wait_log(&h, line).await;
    }
    h.stop_all(&[&arn]).await;
    h.stop_agent().await;
}

/// `networkMode: none` gets a namespace with only loopback.
pub(crate) async fn none_network_mode_has_only_loopback() {
    if skipped("none_network_mode_has_only_loopback") {
        return;
    }
    let mut h = Harness::new().await;
    let image = busybox_registry(h.state.path()).await;
    h.start_agent();
    let app = hardened(
        "app",
        &image,
        "echo none:ifaces $(ls /sys/class/net); exec sleep 30",
        json!({}),
    );
    let mut t = task("t-runc-none", vec![app]);
    t.task_definition.network_mode = Some("none".into());
    let arn = t.task_arn.clone();
    h.set_tasks(vec![t]);
    running(&h, &arn).await;
    wait_log(&h, "none:ifaces lo").await;
    assert!(!h.task_dir("t-runc-none").join("network.json").exists());
    h.stop_all(&[&arn]).await;
    h.stop_agent().await;
}
