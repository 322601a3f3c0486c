//! The control plane's side of the load balancer: ELBv2 state changes, the proxy's config snapshot,
//! and folding the proxy's health reports back in.

use crate::error::ApiError;
use crate::state::{ControlPlane, State};
use berth_elb::ElbState;
use berth_model::protocol::proxy::{ProxyConfig, Report};
use berth_model::Arns;

/// A proxy seen by the control plane.
#[derive(Debug, Clone, Default)]
pub struct ProxyRecord {
    pub last_seen: f64,
    pub config_version: u64,
}

impl ControlPlane {
    /// Runs `f` on the ELBv2 state; when it says it changed something the change is committed.
    pub fn with_elb<R>(
        &self,
        f: impl FnOnce(&mut ElbState, &Arns) -> (R, bool),
    ) -> Result<R, ApiError> {
        self.mutate(|st, cp| {
            let (r, changed) = f(&mut st.elb, cp.arns());
            if changed {
                st.elb_dirty = true;
            }
            Ok(r)
        })
    }

    /// The routing snapshot for proxies.
    pub fn proxy_config(&self) -> ProxyConfig {
        let version = self.version();
        let host = self.config().listen_host.clone();
        self.read(|st| st.elb.proxy_config(version, &host))
    }

    /// Folds a proxy's target health into the state; wakes the controllers when health changed.
    pub fn apply_proxy_report(&self, report: Report) -> Result<(), ApiError> {
        let changed = self.read_mut_runtime(|st| {
            let p = st.proxies.entry(report.proxy_id.clone()).or_default();
            p.last_seen = berth_model::now();
            p.config_version = report.config_version;
            st.traffic.record(&report.metrics);
            st.elb.apply_health_report(&report.target_health)
        });
        self.record_proxy_metrics(&report.metrics);
        if changed {
            self.bump();
        }
        Ok(())
    }
}

impl State {
    /// Proxies and listeners for the status endpoint.
    pub fn proxies_view(
        &self,
        listen_host: &str,
    ) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
        let t = berth_model::now();
        let proxies = self
            .proxies
            .iter()
            .map(|(id, p)| {
                serde_json::json!({"id": id, "configVersion": p.config_version, "lastSeenSecondsAgo": t - p.last_seen, "healthy": t - p.last_seen < 15.0})
            })
            .collect();
        let listeners = self
            .elb
            .proxy_config(0, listen_host)
            .listeners
            .iter()
            .map(|l| serde_json::json!({"arn": l.arn, "bind": l.bind, "protocol": l.protocol}))
            .collect();
        (proxies, listeners)
    }
}
