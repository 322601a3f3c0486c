//! Active health checks: one task per target of a used target group, sending `GET path` every
//! interval and feeding the outcome to the health state machine.

use crate::health::{step, Outcome};
use crate::targets::{HealthCheck, Target};
use bytes::Bytes;
use http::{header, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use tokio::task::AbortHandle;

/// Client for health checks (a new connection per check, like ALB).
pub(crate) type CheckClient = Client<HttpConnector, Empty<Bytes>>;

/// Builds the health-check client.
pub(crate) fn client() -> CheckClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector)
}

/// A running checker.
pub(crate) struct Checker {
    pub target: Arc<Target>,
    pub health_check: Arc<HealthCheck>,
    pub task: AbortHandle,
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts checking `target`.
pub(crate) fn spawn(
    client: CheckClient,
    target: Arc<Target>,
    health_check: Arc<HealthCheck>,
) -> Checker {
    let task = tokio::spawn(run(client, target.clone(), health_check.clone())).abort_handle();
    Checker {
        target,
        health_check,
        task,
    }
}

async fn run(client: CheckClient, target: Arc<Target>, hc: Arc<HealthCheck>) {
    // Spread the first checks of many targets a little.
    let jitter = hc.interval.mul_f64(crate::rand::unit() * 0.1);
    tokio::time::sleep(jitter).await;
    loop {
        let outcome = check_once(&client, &target, &hc).await;
        let before = target.health();
        let after = target.update_health(|h| step(h, outcome, hc.thresholds));
        if before.state != after.state {
            tracing::info!(target = target.label(), from = before.state.as_str(), to = after.state.as_str(), reason = ?after.reason.code(), "target health changed");
        }
        tokio::time::sleep(hc.interval).await;
    }
}

/// Sends one health check and classifies the answer.
pub(crate) async fn check_once(client: &CheckClient, target: &Target, hc: &HealthCheck) -> Outcome {
    let port = hc.port.unwrap_or(target.port);
    let uri = format!("http://{}:{}{}", target.authority.host(), port, hc.path);
    let Ok(req) = Request::get(uri)
        .header(header::USER_AGENT, "ELB-HealthChecker/2.0")
        .body(Empty::new())
    else {
        return Outcome::Failed;
    };
    let attempt = async {
        let resp = client.request(req).await.map_err(|_| Outcome::Failed)?;
        let status = resp.status().as_u16();
        // Read (and discard) the body so the answer is complete.
        resp.into_body()
            .collect()
            .await
            .map_err(|_| Outcome::Failed)?;
        Ok::<u16, Outcome>(status)
    };
    match tokio::time::timeout(hc.timeout, attempt).await {
        Err(_) => Outcome::Timeout,
        Ok(Err(o)) => o,
        Ok(Ok(status)) if hc.matcher.matches(status) => Outcome::Success,
        Ok(Ok(_)) => Outcome::CodeMismatch,
    }
}
