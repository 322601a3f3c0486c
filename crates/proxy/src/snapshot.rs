//! Compiles a `ProxyConfig` snapshot into routing tables, reusing the run-time state (health,
//! in-flight counts, metrics, round-robin positions) of targets and groups that carry over.

use crate::health::{Health, Matcher, Thresholds};
use crate::metrics::{lb_dimension, tg_dimension, GroupMetrics, LbMetrics};
use crate::routing::{compile_actions, compile_condition, Routes, Rule};
use crate::targets::{fnv1a, set_cookie, Algorithm, Group, HealthCheck, Target};
use crate::Tuning;
use berth_model::protocol::proxy as wire;
use http::HeaderValue;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A load balancer as listeners see it.
#[derive(Debug)]
pub struct LoadBalancer {
    pub arn: String,
    /// CloudWatch LoadBalancer dimension (`app/<name>/<id>`).
    pub dimension: String,
    pub metrics: Arc<LbMetrics>,
}

/// A compiled listener.
#[derive(Debug)]
pub struct Listener {
    pub arn: String,
    pub bind: String,
    pub port: u16,
    /// `http` or `https`.
    pub protocol: &'static str,
    pub forwarded_proto: HeaderValue,
    pub forwarded_port: HeaderValue,
    pub lb: Arc<LoadBalancer>,
    pub routes: Routes,
    pub idle_timeout: Duration,
    /// HTTPS listeners: the TLS settings and certificates connections are accepted with.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// A compiled snapshot.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub version: u64,
    pub listeners: Vec<Arc<Listener>>,
    pub groups: Vec<Arc<Group>>,
    /// LoadBalancer dimension per group ARN (first listener that forwards there).
    pub group_lb: HashMap<String, Arc<LoadBalancer>>,
    pub lbs: Vec<Arc<LoadBalancer>>,
}

/// A group's metrics, round-robin position and health check, carried across snapshots.
type GroupState = (Arc<GroupMetrics>, Arc<AtomicUsize>, Arc<HealthCheck>);

/// Run-time state carried from one snapshot to the next.
#[derive(Debug, Default)]
pub struct Carry {
    targets: HashMap<(String, String, u16), Arc<Target>>,
    group_state: HashMap<String, GroupState>,
    lbs: HashMap<String, Arc<LbMetrics>>,
}

fn secs(v: f64) -> Duration {
    if v.is_finite() && v > 0.0 {
        Duration::from_secs_f64(v.min(1e9))
    } else {
        Duration::ZERO
    }
}

fn compile_health_check(
    hc: &wire::HealthCheck,
    path: &str,
    errors: &mut Vec<String>,
) -> HealthCheck {
    let matcher = Matcher::parse(&hc.matcher).unwrap_or_else(|e| {
        errors.push(format!("{path}.matcher: {e}"));
        Matcher::ok()
    });
    let port = if hc.port == "traffic-port" || hc.port.is_empty() {
        None
    } else {
        match hc.port.parse::<u16>() {
            Ok(p) if p > 0 => Some(p),
            _ => {
                errors.push(format!(
                    "{path}.port: expected traffic-port or 1-65535, found {:?}",
                    hc.port
                ));
                None
            }
        }
    };
    if hc.enabled && !hc.path.starts_with('/') {
        errors.push(format!(
            "{path}.path: expected a path starting with /, found {:?}",
            hc.path
        ));
    }
    if hc.enabled && hc.interval_seconds.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        errors.push(format!(
            "{path}.interval_seconds: expected > 0, found {}",
            hc.interval_seconds
        ));
    }
    HealthCheck {
        enabled: hc.enabled,
        path: hc.path.clone(),
        port,
        interval: secs(hc.interval_seconds).max(Duration::from_millis(10)),
        timeout: secs(hc.timeout_seconds).max(Duration::from_millis(10)),
        thresholds: Thresholds {
            healthy: hc.healthy_threshold.max(1),
            unhealthy: hc.unhealthy_threshold.max(1),
        },
        matcher,
    }
}

/// Compiles `cfg`; on success returns the snapshot and the state to carry into the next one.
/// Every problem is collected as `path: what was expected, what was found`.
/// `bound_ports` maps bind addresses to the port actually bound (for `:0`).
pub fn compile(
    cfg: &wire::ProxyConfig,
    prev: &Carry,
    tuning: &Tuning,
    epoch: Instant,
    bound_ports: &HashMap<String, u16>,
) -> Result<(Snapshot, Carry), Vec<String>> {
    let mut errors = Vec::new();
    let mut carry = Carry::default();

    // Which groups are used by some listener (the others' targets are `unused`).
    let mut used: HashSet<&str> = HashSet::new();
    for l in &cfg.listeners {
        for actions in std::iter::once(&l.default_actions).chain(l.rules.iter().map(|r| &r.actions))
        {
            for a in actions {
                if let wire::Action::Forward { target_groups, .. } = a {
                    used.extend(target_groups.iter().map(|t| t.arn.as_str()));
                }
            }
        }
    }

    let mut groups: HashMap<String, Arc<Group>> = HashMap::new();
    let mut group_list = Vec::new();
    for (gi, tg) in cfg.target_groups.iter().enumerate() {
        let path = format!("target_groups[{gi}]");
        if groups.contains_key(&tg.arn) {
            errors.push(format!(
                "{path}.arn: expected a unique ARN, found {:?} twice",
                tg.arn
            ));
            continue;
        }
        let hc = Arc::new(compile_health_check(
            &tg.health_check,
            &format!("{path}.health_check"),
            &mut errors,
        ));
        let algorithm = match tg.algorithm.as_str() {
            "" | "round_robin" => Algorithm::RoundRobin,
            "least_outstanding_requests" => Algorithm::LeastOutstandingRequests,
            other => {
                errors.push(format!(
                    "{path}.algorithm: expected round_robin or least_outstanding_requests, found {other:?}"
                ));
                Algorithm::RoundRobin
            }
        };
        let (metrics, rr, prev_hc) = match prev.group_state.get(&tg.arn) {
            Some((m, rr, hc)) => (m.clone(), rr.clone(), Some(hc.clone())),
            None => (Arc::default(), Arc::new(AtomicUsize::new(0)), None),
        };
        let checks_changed = prev_hc.as_ref().is_some_and(|p| p.enabled != hc.enabled);
        let mut targets = Vec::new();
        let mut seen = HashSet::new();
        for (ti, t) in tg.targets.iter().enumerate() {
            let key = (tg.arn.clone(), t.id.clone(), t.port);
            if !seen.insert(key.clone()) {
                errors.push(format!(
                    "{path}.targets[{ti}]: expected a unique id and port, found {}:{} twice",
                    t.id, t.port
                ));
                continue;
            }
            let target = match prev.targets.get(&key) {
                Some(existing) => {
                    if checks_changed {
                        existing.set_health(if hc.enabled {
                            Health::REGISTERED
                        } else {
                            Health::DISABLED
                        });
                    }
                    existing.clone()
                }
                None => match Target::new(&tg.arn, &t.id, t.port, hc.enabled, epoch) {
                    Ok(nt) => Arc::new(nt),
                    Err(e) => {
                        errors.push(format!("{path}.targets[{ti}].id: {e}"));
                        continue;
                    }
                },
            };
            target.draining.store(t.draining, Relaxed);
            carry.targets.insert(key, target.clone());
            targets.push(target);
        }
        let stickiness = tg
            .stickiness_seconds
            .filter(|s| *s > 0)
            .map(Duration::from_secs);
        let sticky_cookies = match stickiness {
            Some(d) => targets
                .iter()
                .map(|t| set_cookie(crate::routing::TARGET_COOKIE, t.sticky_key, d))
                .collect(),
            None => Vec::new(),
        };
        carry
            .group_state
            .insert(tg.arn.clone(), (metrics.clone(), rr.clone(), hc.clone()));
        let group = Arc::new(Group {
            arn: tg.arn.clone(),
            name: tg.name.clone(),
            dimension: tg_dimension(&tg.arn),
            algorithm,
            slow_start: secs(tg.slow_start_seconds),
            stickiness,
            health_check: hc,
            targets,
            sticky_cookies,
            rr,
            metrics,
            group_key: fnv1a(&[tg.arn.as_bytes()]),
            response_timeout: tuning.target_timeout,
            in_use: used.contains(tg.arn.as_str()),
            epoch,
        });
        groups.insert(tg.arn.clone(), group.clone());
        group_list.push(group);
    }

    let mut lbs: HashMap<String, Arc<LoadBalancer>> = HashMap::new();
    let mut listeners = Vec::new();
    let mut group_lb = HashMap::new();
    let mut binds = HashSet::new();
    for (li, l) in cfg.listeners.iter().enumerate() {
        let path = format!("listeners[{li}]");
        let port = match l.bind.parse::<std::net::SocketAddr>() {
            Ok(a) => bound_ports.get(&l.bind).copied().unwrap_or(a.port()),
            Err(_) => {
                errors.push(format!(
                    "{path}.bind: expected an address like 127.0.0.1:8080, found {:?}",
                    l.bind
                ));
                continue;
            }
        };
        if !binds.insert(l.bind.clone()) {
            errors.push(format!(
                "{path}.bind: expected a unique address, found {:?} twice",
                l.bind
            ));
        }
        let protocol = match l.protocol.as_str() {
            "" | "HTTP" => "http",
            "HTTPS" => "https",
            other => {
                errors.push(format!(
                    "{path}.protocol: expected HTTP or HTTPS, found {other:?}"
                ));
                "http"
            }
        };
        let tls = if protocol == "https" {
            crate::tls::server_config(&l.certificates, &path, &mut errors)
        } else {
            None
        };
        let lb = lbs
            .entry(l.load_balancer_arn.clone())
            .or_insert_with(|| {
                let metrics = prev
                    .lbs
                    .get(&l.load_balancer_arn)
                    .cloned()
                    .unwrap_or_default();
                Arc::new(LoadBalancer {
                    arn: l.load_balancer_arn.clone(),
                    dimension: lb_dimension(&l.load_balancer_arn),
                    metrics,
                })
            })
            .clone();
        let mut rules = Vec::new();
        let mut priorities = HashSet::new();
        for (ri, r) in l.rules.iter().enumerate() {
            let rpath = format!("{path}.rules[{ri}]");
            if !priorities.insert(r.priority) {
                errors.push(format!(
                    "{rpath}.priority: expected a unique priority, found {} twice",
                    r.priority
                ));
            }
            let conditions: Vec<_> = r
                .conditions
                .iter()
                .enumerate()
                .filter_map(|(ci, c)| {
                    compile_condition(c, &format!("{rpath}.conditions[{ci}]"), &mut errors)
                })
                .collect();
            if let Some(action) = compile_actions(
                &r.actions,
                &format!("{rpath}.actions"),
                &groups,
                &mut errors,
            ) {
                rules.push(Rule {
                    priority: r.priority,
                    conditions,
                    action,
                });
            }
        }
        rules.sort_by_key(|r| r.priority);
        let Some(default_action) = compile_actions(
            &l.default_actions,
            &format!("{path}.default_actions"),
            &groups,
            &mut errors,
        ) else {
            continue;
        };
        for a in std::iter::once(&default_action).chain(rules.iter().map(|r| &r.action)) {
            if let crate::routing::Action::Forward(f) = a {
                for (g, _) in &f.groups {
                    group_lb.entry(g.arn.clone()).or_insert_with(|| lb.clone());
                }
            }
        }
        listeners.push(Arc::new(Listener {
            arn: l.arn.clone(),
            bind: l.bind.clone(),
            port,
            protocol,
            forwarded_proto: HeaderValue::from_static(if protocol == "https" {
                "https"
            } else {
                "http"
            }),
            forwarded_port: HeaderValue::from(port),
            lb,
            routes: Routes {
                rules,
                default_action,
            },
            idle_timeout: Duration::from_secs(l.idle_timeout_seconds.max(1)),
            tls,
        }));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    carry.lbs = lbs
        .iter()
        .map(|(k, v)| (k.clone(), v.metrics.clone()))
        .collect();
    let snapshot = Snapshot {
        version: cfg.version,
        listeners,
        groups: group_list,
        group_lb,
        lbs: lbs.into_values().collect(),
    };
    Ok((snapshot, carry))
}
