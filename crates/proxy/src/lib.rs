//! berth-proxy: the data plane. An HTTP load balancer with the AWS Application Load Balancer's
//! model (listeners, prioritized rules, weighted forwards, target groups with health checks,
//! stickiness, slow start, draining), fed by versioned snapshots from the control plane.

mod access_log;
mod body;
mod buffers;
mod checker;
mod control;
pub mod fields;
mod forward;
mod h1;
pub mod health;
pub mod metrics;
mod pool;
mod rand;
pub mod routing;
mod server;
pub mod snapshot;
pub mod targets;
mod tls;
mod upstream;
pub mod wildcard;

use berth_model::protocol::proxy::{ProxyConfig, Report, TargetHealth};
use metrics::SampleSink;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How `berth proxy` runs.
#[derive(Debug, Clone, Default)]
pub struct ProxyOptions {
    /// e.g. `http://127.0.0.1:7878`: pull config from it and report to it.
    pub control_plane: Option<String>,
    /// Standalone: a static `ProxyConfig` JSON file.
    pub config_file: Option<PathBuf>,
    pub proxy_id: String,
    /// File the access log lines are appended to.
    pub access_log: Option<PathBuf>,
    /// Where the last good config snapshot is cached.
    pub state_dir: Option<PathBuf>,
    /// A file holding the node credential (a bearer token) sent to the control plane.
    pub node_token_file: Option<PathBuf>,
    /// A CA certificate (PEM) trusted besides the system's roots, for an `https://` control
    /// plane whose certificate a local CA signed.
    pub ca_cert_pem: Option<Vec<u8>>,
}

/// Data-path settings that ALB fixes or keeps as attributes (tests shorten them).
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Target response timeout → 504.
    pub target_timeout: Duration,
    pub connect_timeout: Duration,
    /// Request header limits → 431.
    pub max_header_bytes: usize,
    pub max_headers: usize,
    /// Idle keep-alive connections kept per target.
    pub max_idle_per_target: usize,
    pub report_interval: Duration,
    /// How long shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            target_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            max_idle_per_target: 4096,
            report_interval: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Why the proxy could not start or a snapshot was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("no configuration source: give a control plane URL or a config file")]
    NoConfigSource,
    #[error("control plane {0:?}: expected an http:// or https:// URL")]
    ControlPlaneUrl(String),
    #[error("the control plane's client: {0}")]
    ControlPlaneClient(String),
    #[error("reading config file {path}: {source}")]
    ReadConfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: expected a ProxyConfig JSON document: {source}")]
    ParseConfig {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("proxy config version {version} refused: {}", .errors.join("; "))]
    InvalidConfig { version: u64, errors: Vec<String> },
    #[error("listeners not bound: {}", .0.join("; "))]
    Bind(Vec<String>),
    #[error("opening access log {path}: {source}")]
    AccessLog {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Tokio worker threads for the proxy: `BERTH_PROXY_WORKERS`, else the number of cores.
pub fn worker_threads() -> usize {
    std::env::var("BERTH_PROXY_WORKERS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

/// The runtime the proxy is fastest on: a current-thread runtime for one worker (like one nginx
/// worker), else a multi-thread runtime with `worker_threads()` workers.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    match worker_threads() {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    }
}

/// Closes idle target connections past the pool's idle timeout, every few seconds, until the
/// proxy stops. (Checkouts also skip stale ones; this frees those of targets nobody asks for.)
async fn pool_sweep_loop(proxy: Proxy, mut stop: watch::Receiver<bool>) {
    let period = server::POOL_IDLE_TIMEOUT / 8;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.changed() => return,
        }
        let snap = proxy.inner.snapshot.load_full();
        for t in snap.groups.iter().flat_map(|g| g.targets.iter()) {
            t.pool.evict(server::POOL_IDLE_TIMEOUT);
        }
    }
}

/// Runs the proxy until `shutdown` completes, then closes listeners and lets in-flight requests
/// finish (bounded).
pub async fn run(
    opts: ProxyOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ProxyError> {
    let proxy = Proxy::start(opts, Tuning::default()).await?;
    shutdown.await;
    proxy.shutdown().await;
    Ok(())
}

/// A running proxy (cheap to clone). Builds the routing state from a config and serves it;
/// in-process tests drive it directly.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

struct Inner {
    opts: ProxyOptions,
    tuning: Tuning,
    shared: Arc<server::Shared>,
    epoch: Instant,
    snapshot: arc_swap::ArcSwap<snapshot::Snapshot>,
    state: Mutex<ApplyState>,
    check_client: checker::CheckClient,
    stop: watch::Sender<bool>,
    /// Highest version seen from the control plane (applied or refused).
    seen_version: AtomicU64,
}

#[derive(Default)]
struct ApplyState {
    carry: snapshot::Carry,
    slots: HashMap<String, server::Slot>,
    checkers: HashMap<(String, String, u16), checker::Checker>,
}

impl Proxy {
    /// Loads the initial config (file, or the cached snapshot), binds its listeners and starts the
    /// control-plane loops. Must run inside a tokio runtime.
    pub async fn start(opts: ProxyOptions, tuning: Tuning) -> Result<Proxy, ProxyError> {
        if opts.control_plane.is_none() && opts.config_file.is_none() {
            return Err(ProxyError::NoConfigSource);
        }
        if let Some(cp) = &opts.control_plane {
            if !cp.starts_with("http://") && !cp.starts_with("https://") {
                return Err(ProxyError::ControlPlaneUrl(cp.clone()));
            }
        }
        let access_log =
            match &opts.access_log {
                Some(path) => Some(access_log::AccessLog::open(path).map_err(|source| {
                    ProxyError::AccessLog {
                        path: path.clone(),
                        source,
                    }
                })?),
                None => None,
            };
        let (stop, _) = watch::channel(false);
        let proxy = Proxy {
            inner: Arc::new(Inner {
                shared: Arc::new(server::Shared::new(&tuning, access_log)),
                opts: opts.clone(),
                tuning,
                epoch: Instant::now(),
                snapshot: arc_swap::ArcSwap::from_pointee(snapshot::Snapshot::default()),
                state: Mutex::new(ApplyState::default()),
                check_client: checker::client(),
                stop,
                seen_version: AtomicU64::new(0),
            }),
        };
        if let Some(path) = &opts.config_file {
            let text = std::fs::read(path).map_err(|source| ProxyError::ReadConfig {
                path: path.clone(),
                source,
            })?;
            let cfg: ProxyConfig =
                serde_json::from_slice(&text).map_err(|source| ProxyError::ParseConfig {
                    path: path.clone(),
                    source,
                })?;
            proxy.apply(cfg)?;
        } else if let Some(cfg) = opts.state_dir.as_deref().and_then(control::load_cache) {
            let version = cfg.version;
            match proxy.apply(cfg) {
                Ok(()) => tracing::info!(
                    version,
                    "serving cached proxy config until the control plane answers"
                ),
                Err(e) => {
                    tracing::warn!(version, error = %e, "cached proxy config not (fully) applied")
                }
            }
        }
        tokio::spawn(pool_sweep_loop(proxy.clone(), proxy.inner.stop.subscribe()));
        if let Some(cp) = &opts.control_plane {
            let base = cp.trim_end_matches('/').to_string();
            let client = control::cp_client(opts.ca_cert_pem.as_deref())
                .map_err(ProxyError::ControlPlaneClient)?;
            tokio::spawn(control::config_loop(
                proxy.clone(),
                client.clone(),
                base.clone(),
                proxy.inner.stop.subscribe(),
            ));
            tokio::spawn(control::report_loop(
                proxy.clone(),
                client,
                base,
                proxy.inner.tuning.report_interval,
                proxy.inner.stop.subscribe(),
            ));
        }
        Ok(proxy)
    }

    /// The options it was started with.
    pub fn options(&self) -> &ProxyOptions {
        &self.inner.opts
    }

    fn state(&self) -> MutexGuard<'_, ApplyState> {
        // A panic while applying leaves consistent-enough state; keep serving.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies a snapshot: routing swaps atomically, listeners whose bind address is unchanged
    /// keep their socket and connections, new ones are bound, removed ones stop accepting and
    /// close after their in-flight requests. An invalid snapshot changes nothing.
    pub fn apply(&self, cfg: ProxyConfig) -> Result<(), ProxyError> {
        let version = cfg.version;
        self.inner.seen_version.fetch_max(version, Relaxed);
        let mut state = self.state();
        // Bind new addresses first so listeners on port 0 know their real port.
        let mut bind_errors = Vec::new();
        let mut new_sockets = HashMap::new();
        let mut ports: HashMap<String, u16> = state
            .slots
            .iter()
            .map(|(bind, slot)| (bind.clone(), slot.local_addr.port()))
            .collect();
        for l in &cfg.listeners {
            if state.slots.contains_key(&l.bind)
                || new_sockets.contains_key(&l.bind)
                || l.bind.parse::<SocketAddr>().is_err()
            {
                continue;
            }
            match server::bind_socket(&l.bind) {
                Ok(tcp) => {
                    if let Ok(local) = tcp.local_addr() {
                        ports.insert(l.bind.clone(), local.port());
                    }
                    new_sockets.insert(l.bind.clone(), tcp);
                }
                Err(e) => bind_errors.push(format!("{} ({}): {e}", l.bind, l.arn)),
            }
        }
        let (snap, carry) = snapshot::compile(
            &cfg,
            &state.carry,
            &self.inner.tuning,
            self.inner.epoch,
            &ports,
        )
        .map_err(|errors| ProxyError::InvalidConfig { version, errors })?;

        let mut slots = HashMap::new();
        for l in &snap.listeners {
            if let Some(mut slot) = state.slots.remove(&l.bind) {
                slot.routes.store(l.clone());
                slot.arn = l.arn.clone();
                slots.insert(l.bind.clone(), slot);
            } else if let Some(tcp) = new_sockets.remove(&l.bind) {
                match server::start(&self.inner.shared, tcp, l.clone()) {
                    Ok(slot) => {
                        slots.insert(l.bind.clone(), slot);
                    }
                    Err(e) => bind_errors.push(format!("{} ({}): {e}", l.bind, l.arn)),
                }
            }
        }
        for (_, removed) in state.slots.drain() {
            let _ = removed.stop.send(true);
        }
        state.slots = slots;

        let mut checkers = HashMap::new();
        let mut old = std::mem::take(&mut state.checkers);
        for g in &snap.groups {
            if !g.in_use || !g.health_check.enabled {
                continue;
            }
            for t in &g.targets {
                let key = (g.arn.clone(), t.id.clone(), t.port);
                let checker = match old.remove(&key) {
                    Some(c) if Arc::ptr_eq(&c.target, t) && *c.health_check == *g.health_check => c,
                    _ => checker::spawn(
                        self.inner.check_client.clone(),
                        t.clone(),
                        g.health_check.clone(),
                    ),
                };
                checkers.insert(key, checker);
            }
        }
        drop(old); // aborts checkers of targets that left
        state.checkers = checkers;
        state.carry = carry;
        self.inner.snapshot.store(Arc::new(snap));
        drop(state);
        if bind_errors.is_empty() {
            Ok(())
        } else {
            Err(ProxyError::Bind(bind_errors))
        }
    }

    /// Version of the snapshot being served (0 = none).
    pub fn applied_version(&self) -> u64 {
        self.inner.snapshot.load().version
    }

    /// Highest snapshot version seen, applied or refused.
    pub fn seen_version(&self) -> u64 {
        self.inner.seen_version.load(Relaxed)
    }

    /// The address a listener is bound to (useful with `127.0.0.1:0`).
    pub fn listener_addr(&self, listener_arn: &str) -> Option<SocketAddr> {
        self.state()
            .slots
            .values()
            .find(|s| s.arn == listener_arn)
            .map(|s| s.local_addr)
    }

    /// Target health and the metrics of the last interval (counters reset).
    pub fn report(&self) -> Report {
        let snap = self.inner.snapshot.load_full();
        let mut target_health = Vec::new();
        for g in &snap.groups {
            for t in &g.targets {
                let h = t.health();
                let (state, reason, description) = if !g.in_use {
                    ("unused", Some("Target.NotInUse"), Some("Target group is not configured to receive traffic from the load balancer"))
                } else if t.draining.load(Relaxed) {
                    (
                        "draining",
                        Some("Target.DeregistrationInProgress"),
                        Some("Target deregistration is in progress"),
                    )
                } else {
                    (h.state.as_str(), h.reason.code(), h.reason.description())
                };
                target_health.push(TargetHealth {
                    target_group_arn: g.arn.clone(),
                    id: t.id.clone(),
                    port: t.port,
                    state: state.into(),
                    reason: reason.map(str::to_string),
                    description: description.map(str::to_string),
                    in_flight: t.in_flight.load(Relaxed),
                });
            }
        }
        let mut metrics = Vec::new();
        let timestamp = berth_model::now().floor();
        let mut sink = SampleSink {
            out: &mut metrics,
            timestamp,
        };
        for lb in &snap.lbs {
            let dims = [("LoadBalancer", lb.dimension.as_str())];
            let m = &lb.metrics;
            sink.count("RequestCount", &dims, m.requests.take());
            sink.seconds("TargetResponseTime", &dims, &m.response_time);
            sink.codes(&dims, &m.codes);
            sink.count("HTTPCode_ELB_4XX_Count", &dims, m.elb_4xx.take());
            sink.count("HTTPCode_ELB_5XX_Count", &dims, m.elb_5xx.take());
            sink.count("HTTPCode_ELB_502_Count", &dims, m.elb_502.take());
            sink.count("HTTPCode_ELB_503_Count", &dims, m.elb_503.take());
            sink.count("HTTPCode_ELB_504_Count", &dims, m.elb_504.take());
            sink.count("NewConnectionCount", &dims, m.new_connections.take());
            sink.gauge(
                "ActiveConnectionCount",
                &dims,
                m.active_connections.load(Relaxed).max(0) as f64,
            );
        }
        for g in &snap.groups {
            let lb_dim = snap.group_lb.get(&g.arn).map(|lb| lb.dimension.as_str());
            let mut dims = vec![("TargetGroup", g.dimension.as_str())];
            if let Some(lb) = lb_dim {
                dims.push(("LoadBalancer", lb));
            }
            let m = &g.metrics;
            sink.count("RequestCount", &dims, m.requests.take());
            sink.seconds("TargetResponseTime", &dims, &m.response_time);
            sink.codes(&dims, &m.codes);
            if g.in_use {
                let (healthy, unhealthy) = g.host_counts();
                sink.gauge("HealthyHostCount", &dims, healthy as f64);
                sink.gauge("UnHealthyHostCount", &dims, unhealthy as f64);
            }
        }
        Report {
            proxy_id: self.inner.opts.proxy_id.clone(),
            config_version: snap.version,
            target_health,
            metrics,
        }
    }

    /// Stops the control-plane loops and health checks, closes listeners, and waits (bounded by
    /// `Tuning::drain_timeout`) for open connections to finish their requests.
    pub async fn shutdown(&self) {
        let _ = self.inner.stop.send(true);
        {
            let mut state = self.state();
            for (_, slot) in state.slots.drain() {
                let _ = slot.stop.send(true);
            }
            state.checkers.clear();
        }
        let deadline = Instant::now() + self.inner.tuning.drain_timeout;
        while self.inner.shared.open_connections.load(Relaxed) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let snap = self.inner.snapshot.load_full();
        for t in snap.groups.iter().flat_map(|g| g.targets.iter()) {
            t.pool.evict(Duration::ZERO);
        }
    }
}
