//! The demo app's settings and how they are read from the environment.

use std::net::{Ipv4Addr, SocketAddr};

/// What the demo app listens on and how it misbehaves.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoOptions {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Version string reported in every answer (`DEMO_VERSION`).
    pub version: String,
    /// CPU time burnt per request, in milliseconds (`DEMO_CPU_BURN_MS`).
    pub cpu_burn_ms: u64,
    /// Delay added to every request, in milliseconds (`DEMO_LATENCY_MS`).
    pub latency_ms: u64,
    /// Fraction of requests answered with 500, 0.0 to 1.0 (`DEMO_ERROR_RATE`).
    pub error_rate: f64,
    /// Name reported in every answer (`DEMO_NAME`).
    pub name: String,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
            version: "v1".to_string(),
            cpu_burn_ms: 0,
            latency_ms: 0,
            error_rate: 0.0,
            name: "demo".to_string(),
        }
    }
}

/// Port used when `PORT` is not set.
pub const DEFAULT_PORT: u16 = 8080;

/// Longest sleep or burn the demo app does for one request, whatever it is asked.
pub(crate) const MAX_KNOB_MS: u64 = 60_000;

impl DemoOptions {
    /// Reads `PORT`, `DEMO_LISTEN`, `DEMO_VERSION`, `DEMO_CPU_BURN_MS`, `DEMO_LATENCY_MS`,
    /// `DEMO_ERROR_RATE`, `DEMO_NAME` and `BERTH_CONTAINER_NAME`; a malformed value is reported on
    /// stderr and replaced by its default.
    pub fn from_env() -> DemoOptions {
        let (opts, warnings) = DemoOptions::from_lookup(|key| std::env::var(key).ok());
        for w in warnings {
            eprintln!("demo-app warning: {w}");
        }
        opts
    }

    /// Like [`DemoOptions::from_env`] over any variable lookup; returns the warnings instead of
    /// printing them.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> (DemoOptions, Vec<String>) {
        let mut opts = DemoOptions::default();
        let mut warnings = Vec::new();
        let get = |key: &str| {
            lookup(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };

        let mut port = DEFAULT_PORT;
        if let Some(v) = get("PORT") {
            match v.parse::<u16>() {
                Ok(p) => port = p,
                Err(_) => {
                    warnings.push(format!("PORT: expected a port number 0-65535, found {v:?}"))
                }
            }
        }
        opts.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        if let Some(v) = get("DEMO_LISTEN") {
            match v.parse::<SocketAddr>() {
                Ok(addr) => opts.listen = addr,
                Err(_) => warnings.push(format!(
                    "DEMO_LISTEN: expected an address like 0.0.0.0:8080, found {v:?}"
                )),
            }
        }
        if let Some(v) = get("DEMO_VERSION") {
            opts.version = v;
        }
        for (key, slot) in [
            ("DEMO_CPU_BURN_MS", &mut opts.cpu_burn_ms),
            ("DEMO_LATENCY_MS", &mut opts.latency_ms),
        ] {
            if let Some(v) = get(key) {
                match v.parse::<u64>() {
                    Ok(ms) if ms <= MAX_KNOB_MS => *slot = ms,
                    _ => warnings.push(format!(
                        "{key}: expected milliseconds from 0 to {MAX_KNOB_MS}, found {v:?}"
                    )),
                }
            }
        }
        if let Some(v) = get("DEMO_ERROR_RATE") {
            match v.parse::<f64>() {
                Ok(rate) if (0.0..=1.0).contains(&rate) => opts.error_rate = rate,
                _ => warnings.push(format!(
                    "DEMO_ERROR_RATE: expected a number from 0.0 to 1.0, found {v:?}"
                )),
            }
        }
        if let Some(v) = get("DEMO_NAME").or_else(|| get("BERTH_CONTAINER_NAME")) {
            opts.name = v;
        }
        (opts, warnings)
    }
}
