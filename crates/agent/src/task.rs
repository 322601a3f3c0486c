//! One task on this node: starts its containers in dependency order, watches them, runs their
//! health checks, stops them, and publishes the task's state. Its files live in the task directory.

use crate::driver::runc::{RuncDriver, OOM_REASON};
use crate::driver::{
    ContainerState, Driver, RuntimeHandle, StartError, StartRequest, START_TIMEOUT,
};
use crate::health::{task_health, CheckCommand, HealthStatus, HealthTracker};
use crate::image::PreparedImage;
use crate::network::{IpAllocator, TaskNetwork};
use crate::ports::PortAllocator;
use crate::report::ReportBoard;
use crate::state;
use berth_model::ecs::{stop_code, task_status, ContainerDefinition, NetworkBinding};
use berth_model::protocol::agent::{ContainerReport, TaskAssignment, TaskReport};
use berth_model::Timestamp;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

/// How often a task looks at its containers when nothing wakes it: container starts and exits
/// wake it at once (inotify on the container directories, see `dirwatch`), so this only bounds
/// how late a shim that died without a record is noticed.
const FALLBACK_POLL: Duration = Duration::from_millis(500);
/// The poll period when inotify is unavailable.
const POLL: Duration = Duration::from_millis(50);

/// What the control plane wants for a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desired {
    Running,
    Stopped,
}

/// How often container resource usage is sampled. Every sample is reported, so the control plane's
/// CPUUtilization follows a change in load within about two samples.
const STATS_EVERY: Duration = Duration::from_millis(500);

/// What every task of one agent shares.
pub struct Shared {
    pub process_driver: Arc<dyn Driver>,
    /// The runc driver, or why this agent has none.
    pub runc_driver: Result<Arc<RuncDriver>, String>,
    /// Task addresses (10.88.0.0/16).
    pub addresses: Arc<IpAllocator>,
    pub ports: Arc<PortAllocator>,
    pub host_ip: String,
    pub board: Arc<ReportBoard>,
    /// Filtering between awsvpc tasks (their services' ingress rules).
    pub firewall: Arc<crate::firewall::Firewall>,
}

impl Shared {
    fn driver_for(&self, image: &str) -> Result<&dyn Driver, StartError> {
        if image.starts_with(crate::driver::PROCESS_SCHEME) {
            return Ok(self.process_driver.as_ref());
        }
        match &self.runc_driver {
            Ok(d) => Ok(d.as_ref()),
            Err(why) => Err(StartError::CannotPull(format!(
                "image {image} needs the container driver (runc), which this agent does not have: {why}"
            ))),
        }
    }
}

/// Whether an image runs under the runc driver.
fn is_container_image(image: &str) -> bool {
    !image.starts_with(crate::driver::PROCESS_SCHEME)
}

/// What the prepare step yields: pulled images by reference, and the task's network if made.
type Prepared = (HashMap<String, Arc<PreparedImage>>, Option<TaskNetwork>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Pending,
    Running,
    Stopping,
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CState {
    Pending,
    Starting { since: Instant },
    Running,
    Stopped,
}

struct HealthRun {
    tracker: HealthTracker,
    command: CheckCommand,
    interval: Duration,
    started: Instant,
    next_at: Instant,
    in_flight: Option<JoinHandle<()>>,
}

impl HealthRun {
    /// The first check runs one interval after `now`.
    fn new(
        check: &berth_model::ecs::HealthCheck,
        command: CheckCommand,
        now: Instant,
    ) -> HealthRun {
        HealthRun {
            tracker: HealthTracker::new(check),
            command,
            interval: check.interval().duration().max(Duration::from_millis(10)),
            started: now,
            next_at: now + check.interval().duration(),
            in_flight: None,
        }
    }
}

struct ContainerRun {
    def: ContainerDefinition,
    dir: PathBuf,
    state: CState,
    handle: Option<RuntimeHandle>,
    pid: Option<i32>,
    ever_started: bool,
    exit_code: Option<i32>,
    reason: Option<String>,
    bindings: Vec<NetworkBinding>,
    health: Option<HealthRun>,
    stop_sent: bool,
    stats: Option<crate::stats::Sample>,
}

impl ContainerRun {
    fn health_status(&self) -> HealthStatus {
        self.health
            .as_ref()
            .map(|h| h.tracker.status())
            .unwrap_or(HealthStatus::Unknown)
    }
}

/// A task's runtime state.
pub struct TaskRun {
    assignment: TaskAssignment,
    dir: PathBuf,
    phase: Phase,
    desired: Desired,
    stop_code: Option<String>,
    stopped_reason: Option<String>,
    pull_started_at: Option<Timestamp>,
    pull_stopped_at: Option<Timestamp>,
    started_at: Option<Timestamp>,
    execution_stopped_at: Option<Timestamp>,
    containers: Vec<ContainerRun>,
    ports_ready: bool,
    last_report: Option<TaskReport>,
    last_persisted: Option<TaskReport>,
    /// Images pulled and network made (runc tasks); the job doing it while not.
    prepared: bool,
    prepare: Option<JoinHandle<Result<Prepared, String>>>,
    images: HashMap<String, Arc<PreparedImage>>,
    /// The task's own network (awsvpc-like), recorded as `network.json`.
    network: Option<TaskNetwork>,
    /// Wakes the task's loop: the prepare job finished, or a container directory changed.
    wake: Arc<Notify>,
    /// Watches the container directories for the shim's `child.pid` and `exit.json`.
    dir_watch: Option<crate::dirwatch::DirWatch>,
    /// When the containers' usage was last sampled.
    usage_sampled_at: Option<Timestamp>,
}

/// Task ids become directory names, so only plain names are accepted.
pub fn valid_task_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl TaskRun {
    /// A new task, not started yet; writes `task.json`.
    pub fn create(assignment: TaskAssignment, dir: PathBuf) -> std::io::Result<TaskRun> {
        std::fs::create_dir_all(&dir)?;
        state::write_json_unsynced(&dir.join("task.json"), &persisted(&assignment))?;
        Ok(Self::fresh(assignment, dir))
    }

    fn fresh(assignment: TaskAssignment, dir: PathBuf) -> TaskRun {
        let containers = assignment
            .task_definition
            .container_definitions
            .iter()
            .map(|def| ContainerRun {
                def: def.clone(),
                dir: dir.join(&def.name),
                state: CState::Pending,
                handle: None,
                pid: None,
                ever_started: false,
                exit_code: None,
                reason: None,
                bindings: Vec::new(),
                health: None,
                stop_sent: false,
                stats: None,
            })
            .collect();
        TaskRun {
            assignment,
            dir,
            phase: Phase::Pending,
            desired: Desired::Running,
            stop_code: None,
            stopped_reason: None,
            pull_started_at: None,
            pull_stopped_at: None,
            started_at: None,
            execution_stopped_at: None,
            containers,
            ports_ready: false,
            last_report: None,
            last_persisted: None,
            prepared: false,
            prepare: None,
            images: HashMap::new(),
            network: None,
            wake: Arc::new(Notify::new()),
            dir_watch: None,
            usage_sampled_at: None,
        }
    }

    /// Wakes the task when files appear in `dir` (made here if missing). Without a tokio runtime
    /// or inotify the task falls back to polling.
    fn watch_container_dir(&mut self, dir: &Path) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        if self.dir_watch.is_none() {
            match crate::dirwatch::DirWatch::new(self.wake.clone()) {
                Ok(w) => self.dir_watch = Some(w),
                Err(error) => {
                    tracing::warn!(task = %self.assignment.task_id, %error, "no inotify; polling containers");
                    return;
                }
            }
        }
        let _ = std::fs::create_dir_all(dir);
        if let Some(w) = &self.dir_watch {
            if let Err(error) = w.add(dir) {
                tracing::warn!(dir = %dir.display(), %error, "cannot watch a container directory");
            }
        }
    }

    /// When the next health check is due, if one is.
    fn next_check_at(&self) -> Option<Instant> {
        self.containers
            .iter()
            .filter(|c| c.state == CState::Running)
            .filter_map(|c| c.health.as_ref())
            .filter(|h| h.in_flight.is_none())
            .map(|h| h.next_at)
            .min()
    }

    /// Re-creates a task from its directory after an agent restart: running containers are adopted
    /// (same processes), containers whose shim is gone are seen as exited on the first step.
    pub fn load(dir: &Path, shared: &Shared) -> std::io::Result<TaskRun> {
        let assignment: TaskAssignment =
            state::read_json(&dir.join("task.json"))?.ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "task.json missing")
            })?;
        let mut run = Self::fresh(assignment, dir.to_path_buf());
        run.network = state::read_json::<TaskNetwork>(&dir.join("network.json"))
            .ok()
            .flatten();
        let Some(report) = state::read_json::<TaskReport>(&dir.join("status.json"))? else {
            return Ok(run);
        };
        run.phase = match report.last_status.as_str() {
            task_status::RUNNING => Phase::Running,
            task_status::STOPPING => Phase::Stopping,
            task_status::STOPPED => Phase::Stopped,
            _ => Phase::Pending,
        };
        run.stop_code = report.stop_code.clone();
        run.stopped_reason = report.stopped_reason.clone();
        run.pull_started_at = report.pull_started_at;
        run.pull_stopped_at = report.pull_stopped_at;
        run.started_at = report.started_at;
        run.execution_stopped_at = report.execution_stopped_at;
        run.ports_ready = true;
        let now = Instant::now();
        let mut adopted = Vec::new();
        for c in &mut run.containers {
            let Some(rep) = report.containers.iter().find(|r| r.name == c.def.name) else {
                continue;
            };
            c.exit_code = rep.exit_code;
            c.reason = rep.reason.clone();
            c.bindings = rep.network_bindings.clone();
            c.pid = rep.runtime_id.as_deref().and_then(|p| p.parse().ok());
            c.ever_started = rep.last_status != task_status::PENDING;
            if run.network.is_none() {
                shared
                    .ports
                    .reserve(&c.bindings.iter().map(|b| b.host_port).collect::<Vec<_>>());
            }
            if rep.last_status == task_status::STOPPED {
                c.state = CState::Stopped;
                continue;
            }
            let driver = match shared.driver_for(&c.def.image) {
                Ok(d) => d,
                Err(_) => continue,
            };
            let Some(handle) = driver.adopt(&c.dir) else {
                if c.ever_started {
                    c.state = CState::Stopped;
                    c.reason
                        .get_or_insert_with(|| "the container's shim record is missing".into());
                }
                continue;
            };
            {
                c.handle = Some(handle);
                adopted.push(c.dir.clone());
                c.state = if c.ever_started {
                    CState::Running
                } else {
                    CState::Starting { since: now }
                };
                if c.ever_started {
                    c.health = new_health(
                        &c.def,
                        container_env(&run.assignment, &c.def, &c.bindings),
                        exec_target(shared, &c.def, c.pid),
                        now,
                    );
                }
            }
        }
        for dir in adopted {
            run.watch_container_dir(&dir);
        }
        if run.phase == Phase::Stopped {
            release_ports(&run, shared);
            release_network(&run, shared);
        } else if let Some(net) = &run.network {
            shared.firewall.admit(
                &run.assignment.task_id,
                crate::firewall::Member {
                    veth: net.veth.clone(),
                    service: run.assignment.service_name.clone(),
                    ingress: run.assignment.ingress.clone(),
                },
            );
        }
        Ok(run)
    }

    /// The task's ARN.
    pub fn task_arn(&self) -> &str {
        &self.assignment.task_arn
    }

    /// True once the task reached STOPPED.
    pub fn is_stopped(&self) -> bool {
        self.phase == Phase::Stopped
    }

    fn step(&mut self, shared: &Shared, health_tx: &mpsc::UnboundedSender<(usize, bool)>) {
        let now = Instant::now();
        self.observe(shared, now);
        if matches!(self.phase, Phase::Pending | Phase::Running) {
            self.advance(shared, now);
        }
        if self.phase == Phase::Stopping {
            self.drive_stop(shared);
        }
        if matches!(self.phase, Phase::Pending | Phase::Running) {
            self.launch_checks(now, health_tx);
        }
    }

    fn observe(&mut self, shared: &Shared, now: Instant) {
        for c in &mut self.containers {
            let (Some(handle), CState::Starting { .. } | CState::Running) = (&c.handle, c.state)
            else {
                continue;
            };
            let Ok(driver) = shared.driver_for(&c.def.image) else {
                continue;
            };
            match driver.inspect(handle) {
                ContainerState::Starting => {
                    if let CState::Starting { since } = c.state {
                        if now.duration_since(since) > START_TIMEOUT && c.reason.is_none() {
                            c.reason = Some(format!(
                                "CannotStartContainerError: the process did not start within {}s",
                                START_TIMEOUT.as_secs()
                            ));
                            driver.stop(handle);
                            c.stop_sent = true;
                        }
                    }
                }
                ContainerState::Running { pid } => {
                    if c.state != CState::Running {
                        c.state = CState::Running;
                        c.ever_started = true;
                        c.pid = Some(pid);
                        c.health = new_health(
                            &c.def,
                            container_env(&self.assignment, &c.def, &c.bindings),
                            exec_target(shared, &c.def, c.pid),
                            now,
                        );
                        tracing::info!(task = %self.assignment.task_id, container = %c.def.name, pid, "container running");
                    }
                }
                ContainerState::Exited(rec) => {
                    c.state = CState::Stopped;
                    if let Some(err) = rec.start_error {
                        c.reason = Some(format!("CannotStartContainerError: {err}"));
                    } else {
                        c.ever_started = true;
                        c.exit_code = rec.exit_code;
                        if rec.oom_killed {
                            c.reason = Some(OOM_REASON.to_string());
                        }
                    }
                    c.stats = None;
                    abort_check(c);
                    tracing::info!(task = %self.assignment.task_id, container = %c.def.name, exit_code = ?c.exit_code, reason = ?c.reason, "container stopped");
                }
                ContainerState::Lost => {
                    c.state = CState::Stopped;
                    c.reason.get_or_insert_with(|| {
                        "the container's shim exited without recording an exit status".into()
                    });
                    abort_check(c);
                    tracing::warn!(task = %self.assignment.task_id, container = %c.def.name, "container lost");
                }
            }
        }
    }

    fn begin_stop(&mut self, code: Option<&str>, reason: Option<String>) {
        if self.stop_code.is_none() && self.stopped_reason.is_none() {
            self.stop_code = code.map(str::to_string);
            self.stopped_reason = reason;
        }
        self.phase = Phase::Stopping;
        tracing::info!(task = %self.assignment.task_id, stop_code = ?self.stop_code, reason = ?self.stopped_reason, "stopping task");
    }

    fn advance(&mut self, shared: &Shared, now: Instant) {
        if let Some(reason) = self.start_failure() {
            return self.begin_stop(Some(stop_code::TASK_FAILED_TO_START), Some(reason));
        }
        if let Some(c) = self
            .containers
            .iter()
            .find(|c| c.def.is_essential() && c.state == CState::Stopped)
        {
            let reason = match c.reason.as_deref() {
                Some(OOM_REASON) => OOM_REASON,
                _ => "Essential container in task exited",
            };
            return self.begin_stop(
                Some(stop_code::ESSENTIAL_CONTAINER_EXITED),
                Some(reason.into()),
            );
        }
        if self.desired == Desired::Stopped {
            return self.begin_stop(None, None);
        }
        if !self.prepared {
            match self.poll_prepare(shared) {
                None => return,
                Some(Err(reason)) => {
                    return self.begin_stop(Some(stop_code::TASK_FAILED_TO_START), Some(reason))
                }
                Some(Ok(())) => {}
            }
        }
        if !self.ports_ready {
            if let Err(reason) = self.allocate_ports(shared) {
                return self.begin_stop(Some(stop_code::TASK_FAILED_TO_START), Some(reason));
            }
            self.ports_ready = true;
            self.persist();
        }
        for i in 0..self.containers.len() {
            if self.containers[i].state != CState::Pending {
                continue;
            }
            match self.dependencies(i) {
                Deps::Wait => {}
                Deps::Never(why) => {
                    let reason = format!("CannotStartContainerError: {why}");
                    self.containers[i].reason = Some(reason.clone());
                    return self.begin_stop(Some(stop_code::TASK_FAILED_TO_START), Some(reason));
                }
                Deps::Ready => {
                    if let Err(e) = self.start_container(i, shared, now) {
                        let reason = e.to_string();
                        let c = &mut self.containers[i];
                        c.state = CState::Stopped;
                        c.reason = Some(reason.clone());
                        tracing::warn!(task = %self.assignment.task_id, container = %c.def.name, %reason, "container cannot start");
                        return self
                            .begin_stop(Some(stop_code::TASK_FAILED_TO_START), Some(reason));
                    }
                }
            }
        }
        if self.phase == Phase::Pending
            && self
                .containers
                .iter()
                .filter(|c| c.def.is_essential())
                .all(|c| c.ever_started)
        {
            self.phase = Phase::Running;
            self.started_at = Some(berth_model::now());
            tracing::info!(task = %self.assignment.task_id, "task running");
        }
    }

    fn start_failure(&self) -> Option<String> {
        self.containers
            .iter()
            .filter_map(|c| c.reason.as_ref())
            .find(|r| {
                r.starts_with("CannotStartContainerError")
                    || r.starts_with("CannotPullContainerError")
            })
            .cloned()
    }

    /// Whether the task runs containers (runc) in a network of its own (not `networkMode: host`
    /// or `none`).
    fn wants_own_network(&self) -> bool {
        !matches!(
            self.assignment.task_definition.network_mode.as_deref(),
            Some("host" | "none")
        ) && self
            .containers
            .iter()
            .any(|c| is_container_image(&c.def.image))
    }

    /// Pulls the task's images and makes its network in the background; `None` while that runs.
    fn poll_prepare(&mut self, shared: &Shared) -> Option<Result<(), String>> {
        let Ok(runc) = &shared.runc_driver else {
            // Containers that need runc fail with a clear reason when they start.
            self.prepared = true;
            return Some(Ok(()));
        };
        let Some(job) = &self.prepare else {
            let mut refs: Vec<String> = self
                .containers
                .iter()
                .filter(|c| c.state == CState::Pending && is_container_image(&c.def.image))
                .map(|c| c.def.image.clone())
                .collect();
            refs.dedup();
            let need_network = self.wants_own_network() && self.network.is_none();
            if refs.is_empty() && !need_network {
                self.prepared = true;
                return Some(Ok(()));
            }
            self.pull_started_at.get_or_insert_with(berth_model::now);
            let images = runc.images.clone();
            let addresses = shared.addresses.clone();
            let task_id = self.assignment.task_id.clone();
            let firewall = shared.firewall.clone();
            let (service, ingress) = (
                self.assignment.service_name.clone(),
                self.assignment.ingress.clone(),
            );
            let wake = self.wake.clone();
            let job = async move {
                let began = Instant::now();
                let (release_addresses, release_task_id, release_firewall) =
                    (addresses.clone(), task_id.clone(), firewall.clone());
                // The network is made while the images are pulled.
                let network = need_network.then(|| {
                    tokio::task::spawn_blocking(move || {
                        let t0 = Instant::now();
                        let ip = addresses.allocate(&task_id)?;
                        let net = crate::network::task_names(&task_id, ip);
                        let t1 = Instant::now();
                        crate::network::setup_task(&net)?;
                        let t2 = Instant::now();
                        // Filtered before any container of the task runs.
                        firewall.admit(
                            &task_id,
                            crate::firewall::Member {
                                veth: net.veth.clone(),
                                service,
                                ingress,
                            },
                        );
                        tracing::debug!(
                            address_ms = (t1 - t0).as_secs_f64() * 1e3,
                            netns_ms = (t2 - t1).as_secs_f64() * 1e3,
                            firewall_ms = t2.elapsed().as_secs_f64() * 1e3,
                            "task network made"
                        );
                        Ok::<_, crate::network::NetworkError>(net)
                    })
                });
                let mut pulled = HashMap::new();
                let mut pull_error = None;
                for r in refs {
                    if pulled.contains_key(&r) {
                        continue;
                    }
                    match images.ensure(&r).await {
                        Ok(image) => {
                            pulled.insert(r, image);
                        }
                        Err(e) => {
                            pull_error = Some(format!("CannotPullContainerError: image {r}: {e}"));
                            break;
                        }
                    }
                }
                let pull_ms = began.elapsed().as_secs_f64() * 1e3;
                let network = match network {
                    Some(job) => Some(
                        job.await
                            .map_err(|e| format!("ResourceInitializationError: {e}"))?
                            .map_err(|e| format!("ResourceInitializationError: {e}")),
                    ),
                    None => None,
                };
                tracing::debug!(
                    pull_ms,
                    total_ms = began.elapsed().as_secs_f64() * 1e3,
                    "task prepared"
                );
                if let Some(error) = pull_error {
                    // Undo a network made meanwhile: the task never records it.
                    if let Some(Ok(net)) = network {
                        tokio::task::spawn_blocking(move || {
                            release_firewall.remove(&release_task_id);
                            crate::network::teardown_task(&net);
                            release_addresses.release(&release_task_id);
                        });
                    }
                    return Err(error);
                }
                Ok((pulled, network.transpose()?))
            };
            self.prepare = Some(tokio::spawn(async move {
                let result = job.await;
                wake.notify_one();
                result
            }));
            return None;
        };
        if !job.is_finished() {
            return None;
        }
        let job = self.prepare.take()?;
        let result = futures_now(job);
        if matches!(&result, Err(e) if e == PREPARE_UNFINISHED) {
            // The runtime's cooperative budget said "not now": look again on the next step.
            self.prepare = None;
            self.prepared = false;
            return None;
        }
        self.pull_stopped_at = Some(berth_model::now());
        self.prepared = true;
        match result {
            Ok((images, network)) => {
                self.images = images;
                if let Some(net) = network {
                    if let Err(error) =
                        state::write_json_unsynced(&self.dir.join("network.json"), &net)
                    {
                        tracing::warn!(task = %self.assignment.task_id, %error, "cannot record the task network");
                    }
                    tracing::info!(task = %self.assignment.task_id, ip = %net.ip, netns = %net.netns, "task network ready");
                    self.network = Some(net);
                }
                Some(Ok(()))
            }
            Err(reason) => {
                if reason.starts_with("CannotPullContainerError") {
                    for c in &mut self.containers {
                        if c.state == CState::Pending
                            && is_container_image(&c.def.image)
                            && reason.contains(&format!("image {}:", c.def.image))
                        {
                            c.reason = Some(reason.clone());
                        }
                    }
                }
                tracing::warn!(task = %self.assignment.task_id, %reason, "task cannot be prepared");
                Some(Err(reason))
            }
        }
    }

    fn allocate_ports(&mut self, shared: &Shared) -> Result<(), String> {
        if let Some(net) = &self.network {
            // The task has its own address: a port is reached there, at the container port.
            for c in &mut self.containers {
                for pm in &c.def.port_mappings {
                    if let Some(cp) = pm.container_port {
                        c.bindings.push(NetworkBinding {
                            bind_ip: net.ip.to_string(),
                            container_port: cp,
                            host_port: cp,
                            protocol: pm.protocol.clone().unwrap_or_else(|| "tcp".into()),
                        });
                    }
                }
            }
            return Ok(());
        }
        let wanted: Vec<(usize, u16, u16)> = self
            .containers
            .iter()
            .enumerate()
            .flat_map(|(i, c)| {
                c.def.port_mappings.iter().filter_map(move |pm| {
                    pm.container_port
                        .map(|cp| (i, cp, pm.host_port.unwrap_or(0)))
                })
            })
            .collect();
        let hosts = shared
            .ports
            .allocate(&wanted.iter().map(|w| w.2).collect::<Vec<_>>())
            .map_err(|e| format!("CannotStartContainerError: {e}"))?;
        for ((i, cp, _), host) in wanted.into_iter().zip(hosts) {
            self.containers[i].bindings.push(NetworkBinding {
                bind_ip: shared.host_ip.clone(),
                container_port: cp,
                host_port: host,
                protocol: "tcp".into(),
            });
        }
        Ok(())
    }

    fn dependencies(&self, i: usize) -> Deps {
        for dep in &self.containers[i].def.depends_on {
            let Some(d) = self
                .containers
                .iter()
                .find(|c| c.def.name == dep.container_name)
            else {
                return Deps::Never(format!(
                    "dependsOn names unknown container {:?}",
                    dep.container_name
                ));
            };
            let stopped = d.state == CState::Stopped;
            let never = |what: &str| {
                Deps::Never(format!(
                    "container {} needs {} to {what}, which can no longer happen",
                    self.containers[i].def.name, d.def.name
                ))
            };
            match dep.condition.as_str() {
                "START" if d.ever_started => {}
                "START" if stopped => return never("start"),
                "COMPLETE" if stopped && d.ever_started => {}
                "COMPLETE" if stopped => return never("complete"),
                "SUCCESS" if stopped && d.exit_code == Some(0) => {}
                "SUCCESS" if stopped => return never("exit with code 0"),
                "HEALTHY" if d.health_status() == HealthStatus::Healthy => {}
                "HEALTHY" if stopped || d.def.health_check.is_none() => {
                    return never("become healthy")
                }
                "START" | "COMPLETE" | "SUCCESS" | "HEALTHY" => return Deps::Wait,
                other => return Deps::Never(format!("unknown dependsOn condition {other:?}")),
            }
        }
        Deps::Ready
    }

    fn start_container(
        &mut self,
        i: usize,
        shared: &Shared,
        now: Instant,
    ) -> Result<(), StartError> {
        let c = &self.containers[i];
        let driver = shared.driver_for(&c.def.image)?;
        if self.pull_started_at.is_none() {
            self.pull_started_at = Some(berth_model::now());
            self.pull_stopped_at = self.pull_started_at;
        }
        let container = is_container_image(&c.def.image);
        let dir = c.dir.clone();
        self.watch_container_dir(&dir);
        let c = &self.containers[i];
        let request = StartRequest {
            definition: c.def.clone(),
            dir: c.dir.clone(),
            env: container_env(&self.assignment, &c.def, &c.bindings),
            task_id: self.assignment.task_id.clone(),
            task_cpu: self.assignment.task_definition.cpu_units(),
            task_memory: self.assignment.task_definition.memory_mib(),
            network: self.network.clone().filter(|_| container),
            host_network: self.assignment.task_definition.network_mode.as_deref() == Some("host"),
            no_network: self.assignment.task_definition.network_mode.as_deref() == Some("none"),
            image: self.images.get(&c.def.image).cloned(),
        };
        let handle = driver.start(&request)?;
        tracing::info!(task = %self.assignment.task_id, container = %c.def.name, shim_pid = handle.shim_pid, "container starting");
        let c = &mut self.containers[i];
        c.handle = Some(handle);
        c.state = CState::Starting { since: now };
        Ok(())
    }

    fn drive_stop(&mut self, shared: &Shared) {
        for c in &mut self.containers {
            match c.state {
                CState::Pending => c.state = CState::Stopped,
                CState::Starting { .. } | CState::Running if !c.stop_sent => {
                    if let (Some(handle), Ok(driver)) = (&c.handle, shared.driver_for(&c.def.image))
                    {
                        driver.stop(handle);
                    }
                    c.stop_sent = true;
                }
                _ => {}
            }
        }
        if self.containers.iter().all(|c| c.state == CState::Stopped) {
            self.phase = Phase::Stopped;
            self.execution_stopped_at = Some(berth_model::now());
            for c in &mut self.containers {
                abort_check(c);
            }
            release_ports(self, shared);
            release_network(self, shared);
            tracing::info!(task = %self.assignment.task_id, "task stopped");
        }
    }

    fn launch_checks(&mut self, now: Instant, health_tx: &mpsc::UnboundedSender<(usize, bool)>) {
        for (i, c) in self.containers.iter_mut().enumerate() {
            if c.state != CState::Running {
                continue;
            }
            let Some(h) = &mut c.health else { continue };
            if h.in_flight.is_some() || now < h.next_at {
                continue;
            }
            let command = h.command.clone();
            let tx = health_tx.clone();
            h.in_flight = Some(tokio::spawn(async move {
                let ok = command.run().await;
                let _ = tx.send((i, ok));
            }));
        }
    }

    fn health_result(&mut self, i: usize, ok: bool) {
        let Some(c) = self.containers.get_mut(i) else {
            return;
        };
        let Some(h) = &mut c.health else { return };
        let now = Instant::now();
        h.in_flight = None;
        h.next_at = now + h.interval;
        let before = h.tracker.status();
        let after = h.tracker.record(ok, now.duration_since(h.started));
        if before != after {
            tracing::info!(task = %self.assignment.task_id, container = %c.def.name, health = after.as_str(), "container health changed");
        }
    }

    fn abort_checks(&mut self) {
        for c in &mut self.containers {
            abort_check(c);
        }
    }

    /// The task as the control plane sees it.
    pub fn report(&self) -> TaskReport {
        let containers = self
            .containers
            .iter()
            .map(|c| ContainerReport {
                name: c.def.name.clone(),
                last_status: match c.state {
                    CState::Pending | CState::Starting { .. } => task_status::PENDING,
                    CState::Running => task_status::RUNNING,
                    CState::Stopped => task_status::STOPPED,
                }
                .to_string(),
                exit_code: c.exit_code,
                reason: c.reason.clone(),
                health_status: Some(c.health_status().as_str().to_string()),
                network_bindings: c.bindings.clone(),
                runtime_id: c.pid.map(|p| p.to_string()),
                cpu_seconds_total: c.stats.map(|s| s.cpu_seconds_total),
                memory_bytes: c.stats.map(|s| s.memory_bytes),
                cpu_limit_units: Some(c.def.cpu)
                    .filter(|u| *u > 0)
                    .or(self.assignment.task_definition.cpu_units()),
                memory_limit_mib: c
                    .def
                    .memory
                    .or(self.assignment.task_definition.memory_mib()),
            })
            .collect();
        let health: Vec<(bool, bool, HealthStatus)> = self
            .containers
            .iter()
            .map(|c| {
                (
                    c.def.is_essential(),
                    c.def.health_check.is_some(),
                    c.health_status(),
                )
            })
            .collect();
        TaskReport {
            task_arn: self.assignment.task_arn.clone(),
            last_status: match self.phase {
                Phase::Pending => task_status::PENDING,
                Phase::Running => task_status::RUNNING,
                Phase::Stopping => task_status::STOPPING,
                Phase::Stopped => task_status::STOPPED,
            }
            .to_string(),
            health_status: Some(task_health(&health).as_str().to_string()),
            containers,
            stopped_reason: self.stopped_reason.clone(),
            stop_code: self.stop_code.clone(),
            pull_started_at: self.pull_started_at,
            pull_stopped_at: self.pull_stopped_at,
            started_at: self.started_at,
            execution_stopped_at: self.execution_stopped_at,
            usage_sampled_at: self
                .containers
                .iter()
                .any(|c| c.stats.is_some())
                .then_some(self.usage_sampled_at)
                .flatten(),
        }
    }

    fn persist(&mut self) {
        let report = self.report();
        if let Err(error) = state::write_json_unsynced(&self.dir.join("status.json"), &report) {
            tracing::warn!(task = %self.assignment.task_id, %error, "cannot record task status");
        }
    }

    /// Samples the resource usage of running containers.
    fn sample_stats(&mut self, shared: &Shared) {
        for c in &mut self.containers {
            c.stats = match (&c.handle, c.state) {
                (Some(handle), CState::Running) => shared
                    .driver_for(&c.def.image)
                    .ok()
                    .and_then(|d| d.stats(handle)),
                _ => None,
            };
        }
        self.usage_sampled_at = Some(berth_model::now());
    }

    /// Publishes the report when it changed, and records it on disk when more than the usage
    /// figures changed.
    fn publish(&mut self, shared: &Shared) {
        let report = self.report();
        if self.last_report.as_ref() == Some(&report) {
            return;
        }
        let mut durable = report.clone();
        durable.usage_sampled_at = None;
        for c in &mut durable.containers {
            c.cpu_seconds_total = None;
            c.memory_bytes = None;
        }
        if self.last_persisted.as_ref() != Some(&durable) {
            if let Err(error) = state::write_json_unsynced(&self.dir.join("status.json"), &report) {
                tracing::warn!(task = %self.assignment.task_id, %error, "cannot record task status");
            }
            self.last_persisted = Some(durable);
        }
        shared.board.publish(report.clone());
        self.last_report = Some(report);
    }
}

enum Deps {
    Ready,
    Wait,
    Never(String),
}

fn abort_check(c: &mut ContainerRun) {
    if let Some(h) = &mut c.health {
        if let Some(j) = h.in_flight.take() {
            j.abort();
        }
    }
}

/// Removes the task's network namespace and frees its address (in the background).
fn release_network(run: &TaskRun, shared: &Shared) {
    let Some(net) = run.network.clone() else {
        return;
    };
    let addresses = shared.addresses.clone();
    let firewall = shared.firewall.clone();
    let task_id = run.assignment.task_id.clone();
    let record = run.dir.join("network.json");
    let work = move || {
        firewall.remove(&task_id);
        crate::network::teardown_task(&net);
        addresses.release(&task_id);
        let _ = std::fs::remove_file(record);
    };
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn_blocking(work);
        }
        Err(_) => work(),
    }
}

const PREPARE_UNFINISHED: &str = "the prepare job did not finish";

/// The output of a finished join handle, without waiting.
fn futures_now<T>(job: JoinHandle<Result<T, String>>) -> Result<T, String> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut job = std::pin::pin!(job);
    match std::future::Future::poll(job.as_mut(), &mut cx) {
        std::task::Poll::Ready(Ok(r)) => r,
        std::task::Poll::Ready(Err(e)) => Err(format!("the prepare job failed: {e}")),
        std::task::Poll::Pending => Err(PREPARE_UNFINISHED.into()),
    }
}

fn release_ports(run: &TaskRun, shared: &Shared) {
    if run.network.is_some() {
        // Bindings at the task's own address take no host ports.
        return;
    }
    let ports: Vec<u16> = run
        .containers
        .iter()
        .flat_map(|c| c.bindings.iter().map(|b| b.host_port))
        .collect();
    shared.ports.release(&ports);
}

/// For a runc container that runs as `pid`: where its health checks run (`nsenter` into it).
fn exec_target(
    shared: &Shared,
    def: &ContainerDefinition,
    pid: Option<i32>,
) -> Option<(PathBuf, i32)> {
    match (&shared.runc_driver, pid) {
        (Ok(_), Some(pid)) if is_container_image(&def.image) => Some((
            crate::driver::runc::find_on_path("nsenter").unwrap_or_else(|| "nsenter".into()),
            pid,
        )),
        _ => None,
    }
}

/// The container's health check, if it has one. A process container's check runs on the host
/// with the container's environment; a runc container's runs inside the container, as ECS runs it
/// with `docker exec`: `nsenter` into all of its namespaces (its root filesystem, network and
/// processes), with the container's variables from memory (secrets never go to disk for it).
fn new_health(
    def: &ContainerDefinition,
    env: Vec<(String, String)>,
    in_container: Option<(PathBuf, i32)>,
    now: Instant,
) -> Option<HealthRun> {
    let check = def.health_check.as_ref()?;
    if let Some((nsenter, pid)) = in_container {
        let inner = CheckCommand::from_ecs(check, Vec::new(), None)?;
        let mut args: Vec<String> = [
            "--target",
            &pid.to_string(),
            "--all",
            "--root",
            "--wd",
            "--",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.push(inner.program);
        args.extend(inner.args);
        let mut env = env;
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.push((
                "PATH".into(),
                crate::driver::runc::spec::DEFAULT_PATH.into(),
            ));
        }
        let command = CheckCommand {
            program: nsenter.display().to_string(),
            args,
            env,
            cwd: None,
            timeout: inner.timeout,
        };
        return Some(HealthRun::new(check, command, now));
    }
    let mut env = env;
    if !env.iter().any(|(k, _)| k == "PATH") {
        // The same PATH the container gets: berth's own directory first, so checks can run
        // `berth probe ...`.
        let agent_path = std::env::var("PATH").unwrap_or_default();
        let berth = std::env::current_exe().unwrap_or_default();
        env.insert(
            0,
            (
                "PATH".into(),
                crate::driver::container_path(&berth, &agent_path),
            ),
        );
    }
    let command = CheckCommand::from_ecs(
        check,
        env,
        def.working_directory.as_ref().map(PathBuf::from),
    )?;
    Some(HealthRun::new(check, command, now))
}

/// What `task.json` keeps of an assignment: everything but the secret values, which live only in
/// memory.
pub fn persisted(assignment: &TaskAssignment) -> TaskAssignment {
    TaskAssignment {
        secrets: Vec::new(),
        ..assignment.clone()
    }
}

/// A container's environment: its definition's `environment`, the assignment's overrides, the
/// resolved `secrets`, `PORT`
/// (first mapping's host port), `PORT_<containerPort>` per mapping, and the `BERTH_*` variables.
/// The driver adds PATH.
pub fn container_env(
    assignment: &TaskAssignment,
    def: &ContainerDefinition,
    bindings: &[NetworkBinding],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: String| {
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v));
    };
    for kv in &def.environment {
        set(&kv.name, kv.value.clone());
    }
    for (container, k, v) in &assignment.environment_overrides {
        if container == &def.name {
            set(k, v.clone());
        }
    }
    for (container, k, v) in &assignment.secrets {
        if container == &def.name {
            set(k, v.clone());
        }
    }
    if let Some(first) = bindings.first() {
        set("PORT", first.host_port.to_string());
    }
    for b in bindings {
        set(
            &format!("PORT_{}", b.container_port),
            b.host_port.to_string(),
        );
    }
    set("BERTH_TASK_ID", assignment.task_id.clone());
    set("BERTH_TASK_ARN", assignment.task_arn.clone());
    set("BERTH_CONTAINER_NAME", def.name.clone());
    env
}

/// Runs one task until it is STOPPED (or the agent shuts down, which leaves its processes running).
pub async fn supervise(
    mut run: TaskRun,
    shared: Arc<Shared>,
    mut desired: watch::Receiver<Desired>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (health_tx, mut health_rx) = mpsc::unbounded_channel();
    let mut stats_tick = tokio::time::interval(STATS_EVERY);
    stats_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut desired_open = true;
    loop {
        run.desired = *desired.borrow_and_update();
        run.step(&shared, &health_tx);
        run.publish(&shared);
        if run.phase == Phase::Stopped {
            break;
        }
        let poll = if run.dir_watch.is_some() {
            FALLBACK_POLL
        } else {
            POLL
        };
        let mut wake_at = Instant::now() + poll;
        if let Some(check_at) = run.next_check_at() {
            wake_at = wake_at.min(check_at);
        }
        let wake = run.wake.clone();
        tokio::select! {
            _ = tokio::time::sleep_until(wake_at.into()) => {}
            _ = wake.notified() => {}
            _ = stats_tick.tick() => run.sample_stats(&shared),
            Some((i, ok)) = health_rx.recv() => run.health_result(i, ok),
            r = desired.changed(), if desired_open => desired_open = r.is_ok(),
            _ = shutdown.changed() => break,
        }
    }
    run.abort_checks();
    if let Some(job) = run.prepare.take() {
        job.abort();
    }
}

#[cfg(test)]
mod tests;
