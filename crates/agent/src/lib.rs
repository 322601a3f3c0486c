//! berth-agent: the node agent. It pulls its work from the control plane (`/agent/v1`), runs tasks
//! on this machine, watches them, runs their container health checks, ships their logs and
//! reports their state. Tasks keep running while the control plane is away or the agent restarts.
//!
//! # The process driver contract
//! - **Image**: `process://<exe>` runs a local executable. `<exe>` is an absolute path, a path
//!   relative to `workingDirectory`, or a name looked up on `PATH`; the name `berth` is the berth
//!   binary itself ([`AgentConfig::shim_exe`], by default the running executable). `process://`
//!   without an exe takes it from `command[0]`. Any other image (`host:port/repo:tag` or
//!   `host:port/repo@sha256:…` in a berth registry) runs under the runc driver (see below); an
//!   agent without runc (or not root) stops such tasks with `CannotPullContainerError` saying why.
//! - **argv**: `entryPoint ++ command` when `entryPoint` is set (`entryPoint[0]` replaces the
//!   image's exe), else `[exe] ++ command`.
//! - **Environment**: only `PATH` (the berth binary's directory first, then the agent's `PATH`),
//!   `HOME`/`LANG`/`TMPDIR`/`TZ` from the agent, then the container's `environment`, the
//!   assignment's `environment_overrides`, `PORT` (host port of the first port mapping),
//!   `PORT_<containerPort>` per mapping, `BERTH_TASK_ID`, `BERTH_TASK_ARN`, `BERTH_CONTAINER_NAME`.
//! - **Ports**: there is no NAT: the process must listen on `$PORT` (or `$PORT_<containerPort>`).
//!   A mapping's `hostPort` is used as given when non-zero, otherwise a free port is allocated.
//! - **Lifecycle**: each process runs under a shim (`berth shim ...`) in its own session and
//!   process group; stop is SIGTERM to the group, SIGKILL after `stopTimeout` (default 30 s).
//!   stdout/stderr lines are shipped to the task's log group (not at all when it has none) as
//!   stream `ecs/<container>/<task-id>`.
//!
//! # The runc driver contract
//! - **Image**: pulled over the OCI distribution API (plain http), digests verified, into
//!   `<state_dir>/images/blobs`; layers unpacked once into `<state_dir>/images/layers/<diff id>`;
//!   each container gets an overlay (or copied) rootfs in its directory.
//! - **argv/env/user/cwd**: Docker's merge of the image config and the definition (see
//!   `driver::runc::spec`); env = image Env, then the same variables as a process container.
//! - **Limits**: `cpu` → shares and a CFS quota (units/1024 cores), `memory` → hard limit,
//!   `memoryReservation` → soft limit, `ulimits` → rlimits; task-level values when the container
//!   sets none. Docker's default capabilities without NET_RAW, no new privileges.
//! - **Network**: awsvpc-like unless `networkMode` is `host`: a namespace per task on the `berth0`
//!   bridge with an address from 10.88.0.0/16; bindings report `<task ip>:<containerPort>`.
//! - **Lifecycle**: the shim runs `runc run --detach` and reaps init; OOM kills are reported as
//!   `OutOfMemoryError: Container killed due to memory usage`.
//!
//! # Files
//! `<state_dir>/tasks/<task_id>/task.json` (the assignment), `status.json` (last report) and
//! `<container>/` with `shim.json`, `child.pid`, `log.jsonl`, `log.offset`, `exit.json`.

pub mod client;
pub mod dirwatch;
pub mod driver;
pub mod firewall;
pub mod health;
pub mod image;
pub mod logs;
pub mod netlink;
pub mod network;
pub mod ports;
pub mod report;
pub mod shim;
mod shim_runc;
pub mod state;
pub mod stats;
pub mod task;

pub use shim::{shim_main, ShimArgs};

use berth_model::protocol::agent::Assignments;
use client::{Backoff, ControlPlane};
use logs::{LogSource, LogSources};
use report::ReportBoard;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use task::{Desired, Shared, TaskRun};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long the agent waits in one assignments long-poll.
const POLL_WAIT: Duration = Duration::from_secs(20);
/// A stopped, unlisted task's directory is removed once its logs are shipped, or after this long.
const LOG_GRACE: Duration = Duration::from_secs(120);

/// How to run one agent.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// This node's id, as the control plane knows it.
    pub node_id: String,
    /// The control plane, e.g. `http://127.0.0.1:7878`.
    pub server_url: String,
    /// The agent's own directory, e.g. `<state>/agent`.
    pub state_dir: PathBuf,
    /// Address tasks are reached at, e.g. `127.0.0.1`.
    pub host_ip: String,
    /// The executable started as `<shim_exe> shim ...` for every container; also what the image
    /// name `berth` runs. By default the running executable (the `berth` binary).
    pub shim_exe: PathBuf,
    /// A file holding the node credential (a bearer token) for the control plane and the
    /// image registry; read at each request, so a token written later is picked up.
    pub node_token_file: Option<PathBuf>,
    /// A CA certificate (PEM) trusted besides the system's roots, for an `https://` control plane
    /// (and its image registry) whose certificate a local CA signed.
    pub ca_cert_pem: Option<Vec<u8>>,
}

impl AgentConfig {
    /// A config with `host_ip` 127.0.0.1 and the running executable as shim.
    pub fn new(
        node_id: impl Into<String>,
        server_url: impl Into<String>,
        state_dir: impl Into<PathBuf>,
    ) -> Self {
        AgentConfig {
            node_id: node_id.into(),
            server_url: server_url.into(),
            state_dir: state_dir.into(),
            host_ip: "127.0.0.1".into(),
            shim_exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("berth")),
            node_token_file: None,
            ca_cert_pem: None,
        }
    }
}

/// Errors of the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot use the state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
    #[error("the CA certificate: {0}")]
    Tls(String),
    #[error("request to {url} failed: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("the control plane answered HTTP {status} to {url}")]
    Status { url: String, status: u16 },
}

/// A task this agent knows.
struct Managed {
    task_arn: String,
    dir: PathBuf,
    desired: watch::Sender<Desired>,
    join: JoinHandle<()>,
    /// When the control plane was first seen not listing the task any more.
    unlisted_since: Option<Instant>,
}

/// Runs the agent until `shutdown` completes. Task processes keep running after it returns.
pub async fn run(
    config: AgentConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let tasks_dir = config.state_dir.join("tasks");
    std::fs::create_dir_all(&tasks_dir).map_err(|source| AgentError::StateDir {
        path: tasks_dir.clone(),
        source,
    })?;
    let client = ControlPlane::new(
        &config.server_url,
        &config.node_id,
        config.ca_cert_pem.as_deref(),
    )?
    .with_token_file(config.node_token_file.clone());
    // The registry is served by the API: over HTTPS when the API is.
    if let Some(host) = config.server_url.strip_prefix("https://") {
        berth_registry::use_https(host.trim_end_matches('/'), config.ca_cert_pem.clone())
            .map_err(|e| AgentError::Tls(e.to_string()))?;
    }
    if let Some(file) = &config.node_token_file {
        berth_registry::set_credential(berth_registry::Credential::TokenFile(file.clone()));
    }
    let runc_driver =
        driver::runc::RuncDriver::detect(&config.shim_exe, &config.state_dir).map(Arc::new);
    if let Err(reason) = &runc_driver {
        tracing::info!(%reason, "no runc driver: only process:// images can run");
    }
    let shared = Arc::new(Shared {
        process_driver: Arc::new(driver::ProcessDriver {
            shim_exe: config.shim_exe.clone(),
        }),
        runc_driver,
        addresses: Arc::new(network::IpAllocator::load(
            config.state_dir.join("network/ips.json"),
        )),
        ports: Arc::new(ports::PortAllocator::default()),
        host_ip: config.host_ip.clone(),
        board: Arc::new(ReportBoard::default()),
        firewall: Arc::new(firewall::Firewall::new(&config.state_dir)),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let sources: LogSources = Arc::default();
    let mut tasks: BTreeMap<String, Managed> = BTreeMap::new();

    // Adopt what a previous agent left running.
    let entries = std::fs::read_dir(&tasks_dir).map_err(|source| AgentError::StateDir {
        path: tasks_dir.clone(),
        source,
    })?;
    for entry in entries.flatten() {
        let dir = entry.path();
        let task_id = entry.file_name().to_string_lossy().into_owned();
        if !dir.is_dir() || !task::valid_task_id(&task_id) {
            continue;
        }
        match TaskRun::load(&dir, &shared) {
            Ok(run) => {
                tracing::info!(task = %task_id, "adopting task");
                let m = spawn_task(run, &task_id, dir, &shared, &sources, &stop_rx);
                tasks.insert(task_id, m);
            }
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "cannot adopt task directory")
            }
        }
    }

    // Replaces (or removes) what an earlier agent left, now that adopted tasks are known.
    if shared.runc_driver.is_ok() {
        let firewall = shared.firewall.clone();
        let _ = tokio::task::spawn_blocking(move || firewall.sync()).await;
    }

    let (assign_tx, mut assign_rx) = watch::channel::<Option<Assignments>>(None);
    let mut background = vec![
        tokio::spawn(poll_loop(client.clone(), assign_tx, stop_rx.clone())),
        tokio::spawn(report::report_loop(
            client.clone(),
            shared.board.clone(),
            config.node_id.clone(),
            config.host_ip.clone(),
            stop_rx.clone(),
        )),
        tokio::spawn(logs::ship_loop(
            client,
            config.node_id.clone(),
            sources.clone(),
            stop_rx.clone(),
        )),
    ];

    tokio::pin!(shutdown);
    let mut cleanup = tokio::time::interval(Duration::from_millis(500));
    let mut listed: Option<BTreeMap<String, Desired>> = None;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            changed = assign_rx.changed() => {
                if changed.is_err() {
                    break;
                }
                let latest = assign_rx.borrow_and_update().clone();
                if let Some(assignments) = latest {
                    listed = Some(reconcile(assignments, &mut tasks, &tasks_dir, &shared, &sources, &stop_rx));
                }
            }
            _ = cleanup.tick() => {
                if let Some(listed) = &listed {
                    remove_finished(&mut tasks, listed, &shared, &sources);
                }
            }
        }
    }

    tracing::info!(node = %config.node_id, "agent stopping; tasks keep running");
    let _ = stop_tx.send(true);
    for m in tasks.into_values() {
        background.push(m.join);
    }
    for j in background {
        let _ = j.await;
    }
    // With no task left the table goes with the agent; running tasks keep theirs.
    if shared.runc_driver.is_ok() {
        let firewall = shared.firewall.clone();
        let _ = tokio::task::spawn_blocking(move || firewall.delete()).await;
    }
    Ok(())
}

fn spawn_task(
    run: TaskRun,
    task_id: &str,
    dir: PathBuf,
    shared: &Arc<Shared>,
    sources: &LogSources,
    stop_rx: &watch::Receiver<bool>,
) -> Managed {
    let task_arn = run.task_arn().to_string();
    let source = LogSource {
        task_id: task_id.to_string(),
        log_group: run_log_group(&dir),
        containers: run_containers(&dir),
        dir: dir.clone(),
    };
    sources
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(task_id.to_string(), source);
    let (desired, desired_rx) = watch::channel(Desired::Running);
    let join = tokio::spawn(task::supervise(
        run,
        shared.clone(),
        desired_rx,
        stop_rx.clone(),
    ));
    Managed {
        task_arn,
        dir,
        desired,
        join,
        unlisted_since: None,
    }
}

fn read_assignment(dir: &std::path::Path) -> Option<berth_model::protocol::agent::TaskAssignment> {
    state::read_json(&dir.join("task.json")).ok().flatten()
}

fn run_log_group(dir: &std::path::Path) -> String {
    read_assignment(dir)
        .map(|a| a.log_group)
        .unwrap_or_default()
}

fn run_containers(dir: &std::path::Path) -> Vec<String> {
    read_assignment(dir)
        .map(|a| {
            a.task_definition
                .container_definitions
                .into_iter()
                .map(|c| c.name)
                .collect()
        })
        .unwrap_or_default()
}

/// Applies new assignments: starts new tasks, passes desired states on; returns what is listed.
fn reconcile(
    assignments: Assignments,
    tasks: &mut BTreeMap<String, Managed>,
    tasks_dir: &std::path::Path,
    shared: &Arc<Shared>,
    sources: &LogSources,
    stop_rx: &watch::Receiver<bool>,
) -> BTreeMap<String, Desired> {
    let mut listed = BTreeMap::new();
    for a in assignments.tasks {
        let desired = if a.desired_status == "RUNNING" {
            Desired::Running
        } else {
            Desired::Stopped
        };
        if !task::valid_task_id(&a.task_id) {
            tracing::warn!(task = %a.task_id, "ignoring a task with an unusable id");
            continue;
        }
        listed.insert(a.task_id.clone(), desired);
        if tasks.contains_key(&a.task_id) {
            // An UpdateService may have changed the rules of running tasks.
            shared
                .firewall
                .update(&a.task_id, a.service_name.as_deref(), &a.ingress);
        }
        if desired == Desired::Running && !tasks.contains_key(&a.task_id) {
            let dir = tasks_dir.join(&a.task_id);
            let task_id = a.task_id.clone();
            match TaskRun::create(a, dir.clone()) {
                Ok(run) => {
                    tracing::info!(task = %task_id, "starting task");
                    let m = spawn_task(run, &task_id, dir, shared, sources, stop_rx);
                    tasks.insert(task_id, m);
                }
                Err(error) => {
                    tracing::warn!(task = %task_id, %error, "cannot create the task directory")
                }
            }
        }
    }
    for (task_id, m) in tasks.iter_mut() {
        let desired = listed.get(task_id).copied().unwrap_or(Desired::Stopped);
        m.desired
            .send_if_modified(|d| std::mem::replace(d, desired) != desired);
        if listed.contains_key(task_id) {
            m.unlisted_since = None;
        } else {
            m.unlisted_since.get_or_insert_with(Instant::now);
        }
    }
    listed
}

/// Removes tasks that are stopped, no longer listed and whose logs are shipped.
fn remove_finished(
    tasks: &mut BTreeMap<String, Managed>,
    listed: &BTreeMap<String, Desired>,
    shared: &Shared,
    sources: &LogSources,
) {
    let mut done = BTreeSet::new();
    for (task_id, m) in tasks.iter() {
        let Some(since) = m.unlisted_since else {
            continue;
        };
        if listed.contains_key(task_id) || !m.join.is_finished() {
            continue;
        }
        let source = sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(task_id)
            .cloned();
        let shipped = source.as_ref().map(logs::fully_shipped).unwrap_or(true);
        // The last (STOPPED) report must reach the control plane before the task is forgotten.
        let reported = shared.board.settled(&m.task_arn);
        if (shipped && reported) || since.elapsed() > LOG_GRACE {
            done.insert(task_id.clone());
        }
    }
    for task_id in done {
        if let Some(m) = tasks.remove(&task_id) {
            sources
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&task_id);
            shared.board.remove(&m.task_arn);
            // A container rootfs still mounted would be emptied through the mount.
            for name in run_containers(&m.dir) {
                image::release_rootfs(&m.dir.join(name));
            }
            if let Err(error) = std::fs::remove_dir_all(&m.dir) {
                tracing::warn!(task = %task_id, %error, "cannot remove the task directory");
            }
            tracing::info!(task = %task_id, "task removed");
        }
    }
}

/// Frees what stopped tasks left on this host while no agent ran (e.g. after `berth down` stopped
/// the agent and then the shims): each task network whose containers' shims are all gone is torn
/// down (namespace, veth) and its address released, and container root filesystems still mounted
/// are unmounted. `state_dir` is the agent's (`<state>/agent`). Returns the networks removed.
pub fn release_leftovers(state_dir: &std::path::Path) -> usize {
    let Ok(tasks) = std::fs::read_dir(state_dir.join("tasks")) else {
        return 0;
    };
    let addresses = network::IpAllocator::load(state_dir.join("network/ips.json"));
    let mut removed = 0;
    for task in tasks.flatten() {
        let dir = task.path();
        let containers = run_containers(&dir);
        let running = containers.iter().any(|name| {
            state::read_json::<driver::RuntimeHandle>(&dir.join(name).join("shim.json"))
                .ok()
                .flatten()
                .is_some_and(|h| state::process_matches(h.shim_pid, h.shim_start_time))
        });
        if running {
            continue;
        }
        for name in &containers {
            image::release_rootfs(&dir.join(name));
        }
        let record = dir.join("network.json");
        if let Ok(Some(net)) = state::read_json::<network::TaskNetwork>(&record) {
            network::teardown_task(&net);
            addresses.release(&task.file_name().to_string_lossy());
            let _ = std::fs::remove_file(&record);
            removed += 1;
        }
    }
    removed
}

/// Long-polls assignments; keeps the last ones while the control plane is unreachable.
async fn poll_loop(
    client: ControlPlane,
    tx: watch::Sender<Option<Assignments>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut after = 0;
    let mut backoff = Backoff::default();
    loop {
        let result = tokio::select! {
            r = client.assignments(after, POLL_WAIT) => r,
            _ = shutdown.changed() => return,
        };
        let delay = match result {
            Ok(a) => {
                backoff.reset();
                after = a.version;
                tx.send_replace(Some(a));
                continue;
            }
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "cannot fetch assignments");
                delay
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return,
        }
    }
}
