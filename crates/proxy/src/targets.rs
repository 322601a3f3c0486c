//! Target groups at run time: targets with their atomic health and in-flight counts, and target
//! selection (round robin with slow start, least outstanding requests, lb_cookie stickiness,
//! fail-open when no target is healthy).

use crate::health::{Health, Matcher, Thresholds};
use crate::metrics::GroupMetrics;
use crate::pool::Pool;
use http::uri::Authority;
use http::HeaderValue;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One registered target (kept across snapshots while it stays registered, so its health survives).
#[derive(Debug)]
pub struct Target {
    pub id: String,
    pub port: u16,
    /// `id:port`, the URI authority requests are sent to.
    pub authority: Authority,
    /// The socket address when `id` is an IP address (else it is resolved per connection).
    pub addr: Option<SocketAddr>,
    /// `id:port` as a `Host` header, for requests that arrive without one.
    pub host_header: HeaderValue,
    /// Idle keep-alive connections to the target.
    pub pool: Pool,
    /// Packed [`Health`].
    health: AtomicU64,
    /// Deregistered: no new requests.
    pub draining: AtomicBool,
    /// Requests sent and not yet finished.
    pub in_flight: AtomicU64,
    /// When the target last became healthy, in ms since `epoch` (slow start).
    healthy_since_ms: AtomicU64,
    /// Key in the `AWSALB` cookie.
    pub sticky_key: u64,
    epoch: Instant,
}

impl Target {
    /// A new target in state `initial` (or `unavailable` when health checks are off).
    pub fn new(
        group_arn: &str,
        id: &str,
        port: u16,
        checks_enabled: bool,
        epoch: Instant,
    ) -> Result<Target, String> {
        let authority: Authority = if id.contains(':') && !id.starts_with('[') {
            format!("[{id}]:{port}")
        } else {
            format!("{id}:{port}")
        }
        .parse()
        .map_err(|_| format!("expected an IP address or host name, found {id:?}"))?;
        let addr = authority.as_str().parse().ok();
        let host_header = HeaderValue::from_str(authority.as_str())
            .map_err(|_| format!("expected an IP address or host name, found {id:?}"))?;
        let health = if checks_enabled {
            Health::REGISTERED
        } else {
            Health::DISABLED
        };
        Ok(Target {
            id: id.to_string(),
            port,
            authority,
            addr,
            host_header,
            pool: Pool::default(),
            health: AtomicU64::new(health.pack()),
            draining: AtomicBool::new(false),
            in_flight: AtomicU64::new(0),
            healthy_since_ms: AtomicU64::new(0),
            sticky_key: fnv1a(&[
                group_arn.as_bytes(),
                b"\0",
                id.as_bytes(),
                b"\0",
                &port.to_be_bytes(),
            ]),
            epoch,
        })
    }

    /// Current health.
    #[inline]
    pub fn health(&self) -> Health {
        Health::unpack(self.health.load(Relaxed))
    }

    /// Replaces the health with `f(current)` atomically; returns the new value.
    pub fn update_health(&self, f: impl Fn(Health) -> Health) -> Health {
        let mut cur = self.health.load(Relaxed);
        loop {
            let old = Health::unpack(cur);
            let new = f(old);
            match self
                .health
                .compare_exchange_weak(cur, new.pack(), Relaxed, Relaxed)
            {
                Ok(_) => {
                    if new.in_rotation() && !old.in_rotation() {
                        self.healthy_since_ms
                            .store(self.epoch.elapsed().as_millis() as u64, Relaxed);
                    }
                    return new;
                }
                Err(actual) => cur = actual,
            }
        }
    }

    /// Sets the health unconditionally (config changes).
    pub fn set_health(&self, h: Health) {
        self.update_health(|_| h);
    }

    /// Whether new requests may go here.
    #[inline]
    pub fn in_rotation(&self) -> bool {
        !self.draining.load(Relaxed) && self.health().in_rotation()
    }

    /// `ip:port` as text.
    pub fn label(&self) -> &str {
        self.authority.as_str()
    }

    /// Share of traffic during slow start (1.0 once ramped up).
    fn slow_start_share(&self, slow_start: Duration, now_ms: u64) -> f64 {
        let since = self.healthy_since_ms.load(Relaxed);
        let window = slow_start.as_millis() as u64;
        let age = now_ms.saturating_sub(since);
        if window == 0 || age >= window {
            1.0
        } else {
            (age as f64 / window as f64).max(0.01)
        }
    }
}

/// Keeps a request counted in its target's `in_flight` until dropped.
#[derive(Debug)]
pub struct InFlight(Arc<Target>);

impl InFlight {
    /// Counts a request to `t`.
    #[inline]
    pub fn new(t: Arc<Target>) -> InFlight {
        t.in_flight.fetch_add(1, Relaxed);
        InFlight(t)
    }
    /// The target.
    pub fn target(&self) -> &Arc<Target> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

/// Routing algorithm of a target group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    RoundRobin,
    LeastOutstandingRequests,
}

/// A target group's compiled health check.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    pub enabled: bool,
    pub path: String,
    /// None = traffic port.
    pub port: Option<u16>,
    pub interval: Duration,
    pub timeout: Duration,
    pub thresholds: Thresholds,
    pub matcher: Matcher,
}

/// A target group in one snapshot.
#[derive(Debug)]
pub struct Group {
    pub arn: String,
    pub name: String,
    /// CloudWatch TargetGroup dimension.
    pub dimension: String,
    pub algorithm: Algorithm,
    pub slow_start: Duration,
    /// lb_cookie stickiness duration.
    pub stickiness: Option<Duration>,
    pub health_check: Arc<HealthCheck>,
    pub targets: Vec<Arc<Target>>,
    /// `Set-Cookie: AWSALB=...` per target (same order), when sticky.
    pub sticky_cookies: Vec<HeaderValue>,
    /// Round-robin position (shared across snapshots).
    pub rr: Arc<AtomicUsize>,
    pub metrics: Arc<GroupMetrics>,
    /// Key in the `AWSALBTG` cookie.
    pub group_key: u64,
    /// Response timeout for requests to this group's targets.
    pub response_timeout: Duration,
    /// Whether any listener rule forwards here (otherwise targets are `unused`).
    pub in_use: bool,
    pub epoch: Instant,
}

impl Group {
    /// Chooses a target for a new request: the sticky one if it is in rotation, else by the
    /// algorithm among targets in rotation; when none is, fails open to every non-draining
    /// target; `None` when there is no such target (the caller answers 503). `exclude` skips a
    /// target that just failed.
    pub fn pick(
        &self,
        sticky: Option<u64>,
        exclude: Option<&Target>,
    ) -> Option<(usize, &Arc<Target>)> {
        let n = self.targets.len();
        if n == 0 {
            return None;
        }
        let excluded = |t: &Target| exclude.is_some_and(|e| std::ptr::eq(e, t));
        if let Some(key) = sticky {
            if let Some((i, t)) = self
                .targets
                .iter()
                .enumerate()
                .find(|(_, t)| t.sticky_key == key)
            {
                // Pinned while in rotation; while the group fails open, while not draining.
                let usable = t.in_rotation()
                    || (!t.draining.load(Relaxed) && !self.targets.iter().any(|o| o.in_rotation()));
                if usable && !excluded(t) {
                    return Some((i, t));
                }
            }
        }
        let start = self.rr.fetch_add(1, Relaxed);
        let found = match self.algorithm {
            Algorithm::RoundRobin => self.pick_round_robin(start, &excluded),
            Algorithm::LeastOutstandingRequests => self.pick_least_outstanding(start, &excluded),
        };
        if found.is_some() {
            return found;
        }
        // Fail open: nobody is healthy, so every registered, non-draining target gets traffic.
        (0..n)
            .map(|k| (start + k) % n)
            .map(|i| (i, &self.targets[i]))
            .find(|(_, t)| !t.draining.load(Relaxed) && !excluded(t))
    }

    fn pick_round_robin(
        &self,
        start: usize,
        excluded: &dyn Fn(&Target) -> bool,
    ) -> Option<(usize, &Arc<Target>)> {
        let n = self.targets.len();
        let mut first: Option<(usize, &Arc<Target>)> = None;
        let now_ms = if self.slow_start.is_zero() {
            0
        } else {
            self.epoch.elapsed().as_millis() as u64
        };
        for k in 0..n {
            let i = (start + k) % n;
            let t = &self.targets[i];
            if !t.in_rotation() || excluded(t) {
                continue;
            }
            if self.slow_start.is_zero() {
                return Some((i, t));
            }
            first.get_or_insert((i, t));
            let share = t.slow_start_share(self.slow_start, now_ms);
            if share >= 1.0 || crate::rand::unit() < share {
                return Some((i, t));
            }
        }
        // Every candidate was skipped by slow start (e.g. all started together): take the first.
        first
    }

    fn pick_least_outstanding(
        &self,
        start: usize,
        excluded: &dyn Fn(&Target) -> bool,
    ) -> Option<(usize, &Arc<Target>)> {
        let n = self.targets.len();
        let mut best: Option<(usize, &Arc<Target>, u64)> = None;
        for k in 0..n {
            let i = (start + k) % n;
            let t = &self.targets[i];
            if !t.in_rotation() || excluded(t) {
                continue;
            }
            let load = t.in_flight.load(Relaxed);
            if best.is_none_or(|(_, _, b)| load < b) {
                best = Some((i, t, load));
            }
        }
        best.map(|(i, t, _)| (i, t))
    }

    /// Number of healthy and unhealthy targets (CloudWatch HealthyHostCount / UnHealthyHostCount).
    pub fn host_counts(&self) -> (usize, usize) {
        let mut healthy = 0;
        let mut unhealthy = 0;
        for t in &self.targets {
            if t.draining.load(Relaxed) {
                continue;
            }
            if t.health().in_rotation() {
                healthy += 1;
            } else {
                unhealthy += 1;
            }
        }
        (healthy, unhealthy)
    }
}

/// FNV-1a over several byte strings (cookie keys).
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in *p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The value of cookie `name` in the request's Cookie headers, if any.
pub fn cookie<'a>(headers: &'a crate::fields::Fields, name: &str) -> Option<&'a str> {
    for v in headers.get_all("cookie") {
        let Some(s) = crate::fields::visible_ascii(v) else {
            continue;
        };
        for pair in s.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=') {
                if k == name {
                    return Some(v);
                }
            }
        }
    }
    None
}

/// Parses a 16-hex-digit cookie key.
pub fn parse_key(v: &str) -> Option<u64> {
    u64::from_str_radix(v.get(..16)?, 16).ok()
}

/// `Set-Cookie` value for a sticky cookie.
pub fn set_cookie(name: &str, key: u64, max_age: Duration) -> HeaderValue {
    let s = format!("{name}={key:016x}; Max-Age={}; Path=/", max_age.as_secs());
    // Infallible: only ASCII letters, digits, '=', ';', ' ' and '/'.
    HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests;
