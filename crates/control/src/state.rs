//! The control plane's state: every resource in memory, written through to the store as one atomic
//! batch per change before the change is acknowledged. A failed write reloads the state from the
//! store, so memory never holds what the disk does not.

use crate::error::ApiError;
use crate::logs::LogStore;
use berth_elb::ElbState;
use berth_model::ecs::{Cluster, Service, Task, TaskDefinition};
use berth_model::Arns;
use berth_store::{Op, RedbStore, Store};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

pub(crate) const CLUSTERS: &str = "clusters";
pub(crate) const TASK_DEFINITIONS: &str = "task_definitions";
pub(crate) const SERVICES: &str = "services";
pub(crate) const TASKS: &str = "tasks";
pub(crate) const ELB: &str = "elb";
pub(crate) const META: &str = "meta";

/// Settings of a control plane.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// Root of everything the server keeps (`state.redb`, `logs/`).
    pub state_dir: PathBuf,
    pub arns: Arns,
    /// Host the proxy binds listeners on (`127.0.0.1` by default).
    pub listen_host: String,
}

/// Service plus the scheduler's bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub cluster: String,
    pub service: Service,
    #[serde(default)]
    pub tags: Vec<serde_json::Value>,
    #[serde(default)]
    pub backoff_failures: u32,
    #[serde(default)]
    pub backoff_until: f64,
    /// Whether the last decision found the service steady (for the steady-state event).
    #[serde(default)]
    pub steady: bool,
    /// Whether a "throttled" event was emitted for the current throttle.
    #[serde(default)]
    pub throttle_reported: bool,
    #[serde(default)]
    pub next_event: u64,
    /// Every deployment of the service, newest first (berth keeps the history ECS only summarises).
    #[serde(default)]
    pub history: Vec<DeploymentHistory>,
    /// Task definition of the last deployment that completed: where a rollback goes.
    #[serde(default)]
    pub last_completed_task_definition: Option<String>,
    /// The traffic-shifting (blue/green, linear, canary) deployment in progress.
    #[serde(default)]
    pub shift: Option<TrafficShift>,
    /// Target group each deployment's tasks register in (traffic-shifting services).
    #[serde(default)]
    pub deployment_target_groups: BTreeMap<String, String>,
}

/// State of a traffic-shifting deployment: green is the new task set, blue the old one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TrafficShift {
    pub green: String,
    pub blue: String,
    pub green_tg: String,
    pub blue_tg: String,
    pub blue_task_definition: String,
    pub production_rule: String,
    pub test_rule: Option<String>,
    /// ECS lifecycle stage: SCALE_UP, TEST_TRAFFIC_SHIFT (with a test listener rule),
    /// PRODUCTION_TRAFFIC_SHIFT, BAKE_TIME, CLEAN_UP.
    pub stage: String,
    pub stage_started_at: f64,
    /// (percent to green, seconds to hold) per step; the last is 100%.
    pub steps: Vec<(u32, f64)>,
    pub step: usize,
    pub step_started_at: f64,
    pub bake_seconds: f64,
    /// How long the test listener's traffic goes to green alone before production moves.
    #[serde(default)]
    pub test_seconds: f64,
    /// Blue's figures just before traffic started to move (the canary baseline).
    pub baseline_requests: f64,
    pub baseline_errors: f64,
    pub baseline_p99: Option<f64>,
}

/// One deployment in a service's history (ListServiceDeployments' model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DeploymentHistory {
    pub id: String,
    pub task_definition: String,
    /// PENDING, IN_PROGRESS, SUCCESSFUL, STOPPED, ROLLBACK_IN_PROGRESS, ROLLBACK_SUCCESSFUL, ROLLBACK_FAILED.
    pub status: String,
    pub status_reason: Option<String>,
    pub created_at: f64,
    pub finished_at: Option<f64>,
    /// Who asked for it (access key id or the CLI's user), or `berth` for automatic rollbacks.
    pub started_by: String,
    /// What started it: `taskDefinition`, `forceNewDeployment`, `rollback`, `circuit breaker`, `create`.
    pub trigger: String,
    /// For a rollback: the deployment it rolls back.
    pub rollback_of: Option<String>,
}

/// Keep this many deployments in a service's history.
pub const MAX_HISTORY: usize = 100;

/// Task plus what the control plane needs to drive it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    pub id: String,
    pub cluster: String,
    pub task: Task,
    /// Node the task is placed on.
    pub node: String,
    pub service: Option<String>,
    pub deployment_id: Option<String>,
    pub log_group: String,
    /// What the agent is told: RUNNING until draining is over, then STOPPED.
    pub agent_desired: String,
    /// Set when the task was deregistered from its target groups.
    #[serde(default)]
    pub draining_since: Option<f64>,
    /// Target registrations (target group ARN, ip, port).
    #[serde(default)]
    pub targets: Vec<(String, String, u16)>,
    /// Whether the failure of this task was already counted for backoff.
    #[serde(default)]
    pub failure_counted: bool,
    /// Whether this task already reset the restart throttle by staying healthy.
    #[serde(default)]
    pub success_counted: bool,
    /// Whether the agent acknowledged the STOPPED state (the task can leave the assignments).
    #[serde(default)]
    pub reported_stopped: bool,
    #[serde(default)]
    pub environment_overrides: Vec<(String, String, String)>,
}

/// A node agent seen by the control plane (not persisted: agents report again after a restart).
#[derive(Debug, Clone, Default)]
pub struct NodeRecord {
    pub host_ip: String,
    pub last_seen: f64,
}

/// Everything the control plane knows.
#[derive(Debug, Default)]
pub struct State {
    pub clusters: BTreeMap<String, Cluster>,
    /// Keyed by `family:revision` with the revision zero-padded, so a family sorts in order.
    pub task_definitions: BTreeMap<String, TaskDefinition>,
    /// Keyed by `cluster/service`.
    pub services: BTreeMap<String, ServiceRecord>,
    /// Keyed by task id.
    pub tasks: BTreeMap<String, TaskRecord>,
    pub elb: ElbState,
    pub nodes: BTreeMap<String, NodeRecord>,
    /// Proxies seen (runtime only).
    pub proxies: BTreeMap<String, crate::lb::ProxyRecord>,
    /// Per-target-group request figures from the proxies (runtime only).
    pub traffic: crate::traffic::TrafficStats,
    /// Latest resource usage per task id (runtime only).
    pub usage: BTreeMap<String, crate::telemetry::TaskUsage>,
    pub(crate) dirty: BTreeSet<(&'static str, String)>,
    pub(crate) elb_dirty: bool,
}

/// Key of a task definition revision in `State::task_definitions`.
pub fn td_key(family: &str, revision: u32) -> String {
    format!("{family}:{revision:010}")
}

/// Key of a service in `State::services`.
pub fn service_key(cluster: &str, name: &str) -> String {
    format!("{cluster}/{name}")
}

impl State {
    pub(crate) fn touch(&mut self, table: &'static str, key: &str) {
        self.dirty.insert((table, key.to_string()));
    }

    fn load(store: &dyn Store) -> Result<State, ApiError> {
        fn table<T: serde::de::DeserializeOwned>(
            store: &dyn Store,
            name: &'static str,
        ) -> Result<BTreeMap<String, T>, ApiError> {
            let mut out = BTreeMap::new();
            for (k, v) in store.load(name)? {
                let value = serde_json::from_slice(&v)
                    .map_err(|e| ApiError::server(format!("corrupt record {name}/{k}: {e}")))?;
                out.insert(k, value);
            }
            Ok(out)
        }
        let elb = match store.load(ELB)?.into_iter().next() {
            Some((_, v)) => serde_json::from_slice(&v)
                .map_err(|e| ApiError::server(format!("corrupt load balancer state: {e}")))?,
            None => ElbState::default(),
        };
        Ok(State {
            clusters: table(store, CLUSTERS)?,
            task_definitions: table(store, TASK_DEFINITIONS)?,
            services: table(store, SERVICES)?,
            tasks: table(store, TASKS)?,
            elb,
            ..State::default()
        })
    }

    fn ops(&mut self) -> Result<Vec<Op>, ApiError> {
        fn put<T: Serialize>(table: &'static str, key: &str, v: &T) -> Result<Op, ApiError> {
            let value = serde_json::to_vec(v).map_err(|e| ApiError::server(e.to_string()))?;
            Ok(Op::Put {
                table,
                key: key.to_string(),
                value,
            })
        }
        let mut ops = Vec::new();
        for (table, key) in std::mem::take(&mut self.dirty) {
            let op = match table {
                CLUSTERS => self.clusters.get(&key).map(|v| put(table, &key, v)),
                TASK_DEFINITIONS => self.task_definitions.get(&key).map(|v| put(table, &key, v)),
                SERVICES => self.services.get(&key).map(|v| put(table, &key, v)),
                TASKS => self.tasks.get(&key).map(|v| put(table, &key, v)),
                META => Some(put(table, &key, &true)),
                _ => None,
            };
            ops.push(match op {
                Some(op) => op?,
                None => Op::Delete { table, key },
            });
        }
        if std::mem::take(&mut self.elb_dirty) {
            ops.push(put(ELB, "state", &self.elb)?);
        }
        Ok(ops)
    }
}

pub(crate) struct Inner {
    pub(crate) config: ControlConfig,
    store: Box<dyn Store>,
    state: Mutex<State>,
    /// Bumped after every committed change; agents and proxies long-poll on it.
    pub(crate) version: watch::Sender<u64>,
    pub(crate) logs: LogStore,
    /// Wakes the reconcile loop early.
    pub(crate) kick: tokio::sync::Notify,
    /// Where metrics go, once attached.
    pub(crate) metrics: std::sync::OnceLock<berth_metrics::MetricStore>,
    /// The secret resolver and the values resolved per task (memory only).
    pub(crate) secrets: crate::secrets_hook::SecretHook,
    /// Alarms deployments watch, once attached.
    pub(crate) alarms: std::sync::OnceLock<berth_metrics::AlarmManager>,
}

/// The control plane; cheap to clone.
#[derive(Clone)]
pub struct ControlPlane {
    pub(crate) inner: Arc<Inner>,
}

impl ControlPlane {
    /// Opens the state under `config.state_dir` (creating it) and loads everything.
    pub fn open(config: ControlConfig) -> Result<ControlPlane, ApiError> {
        std::fs::create_dir_all(&config.state_dir).map_err(|e| {
            ApiError::server(format!("cannot create {}: {e}", config.state_dir.display()))
        })?;
        let store = RedbStore::open(&config.state_dir.join("state.redb"))?;
        Self::with_store(config, Box::new(store))
    }

    /// A control plane over any store (tests use `MemoryStore`).
    pub fn with_store(
        config: ControlConfig,
        store: Box<dyn Store>,
    ) -> Result<ControlPlane, ApiError> {
        let state = State::load(store.as_ref())?;
        let initialized = store.load(META)?.iter().any(|(k, _)| k == "initialized");
        let logs = LogStore::open(config.state_dir.join("logs"))
            .map_err(|e| ApiError::server(format!("cannot open the log store: {e}")))?;
        let cp = ControlPlane {
            inner: Arc::new(Inner {
                config,
                store,
                state: Mutex::new(state),
                version: watch::channel(1).0,
                logs,
                kick: tokio::sync::Notify::new(),
                metrics: std::sync::OnceLock::new(),
                alarms: std::sync::OnceLock::new(),
                secrets: Default::default(),
            }),
        };
        // A fresh cluster store gets the `default` cluster, as the ECS console makes one.
        if !initialized {
            cp.mutate(|st, cp| {
                crate::ecs::insert_cluster(st, cp, "default");
                st.touch(META, "initialized");
                Ok(())
            })?;
        }
        Ok(cp)
    }

    pub fn arns(&self) -> &Arns {
        &self.inner.config.arns
    }

    pub fn config(&self) -> &ControlConfig {
        &self.inner.config
    }

    pub fn logs(&self) -> &LogStore {
        &self.inner.logs
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves State as it was before the failed change at worst
        // (commit reloads on error), so a poisoned lock is still usable.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a change under the lock and commits what it touched as one batch. On error nothing is
    /// kept: touched state is reloaded from the store.
    pub fn mutate<R>(
        &self,
        f: impl FnOnce(&mut State, &ControlPlane) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let mut st = self.lock();
        let result = f(&mut st, self);
        let changed = !st.dirty.is_empty() || st.elb_dirty;
        let committed = match result {
            Ok(v) if changed => match st.ops().and_then(|ops| Ok(self.inner.store.commit(&ops)?)) {
                Ok(()) => Ok(v),
                Err(e) => Err(e),
            },
            other => other,
        };
        if committed.is_err() && changed {
            let nodes = std::mem::take(&mut st.nodes);
            let proxies = std::mem::take(&mut st.proxies);
            match State::load(self.inner.store.as_ref()) {
                Ok(fresh) => {
                    *st = State {
                        nodes,
                        proxies,
                        ..fresh
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "reloading state after a failed change failed")
                }
            }
        }
        drop(st);
        if changed && committed.is_ok() {
            self.inner.version.send_modify(|v| *v += 1);
            self.inner.kick.notify_one();
        }
        committed
    }

    /// Changes runtime-only state (not persisted, no version bump) under the lock.
    pub(crate) fn read_mut_runtime<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.lock())
    }

    /// Reads the state under the lock.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.lock())
    }

    /// Current change version.
    pub fn version(&self) -> u64 {
        *self.inner.version.borrow()
    }

    /// Waits until the version is newer than `after` or `wait` passes; returns the version.
    pub async fn wait_newer(&self, after: u64, wait: std::time::Duration) -> u64 {
        let mut rx = self.inner.version.subscribe();
        let _ = tokio::time::timeout(wait, rx.wait_for(|v| *v > after)).await;
        let v = *rx.borrow();
        v
    }

    /// Wakes the controllers (after an out-of-band change such as a report).
    pub fn kick(&self) {
        self.inner.kick.notify_one();
    }

    /// Bumps the version without a store write (e.g. health reported by the proxy changed).
    pub(crate) fn bump(&self) {
        self.inner.version.send_modify(|v| *v += 1);
        self.inner.kick.notify_one();
    }
}
