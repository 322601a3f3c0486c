//! The agent's HTTP client for the control plane's `/agent/v1` interface, and a capped backoff.

use crate::AgentError;
use berth_model::protocol::agent::{Assignments, LogShipment, Report, PREFIX};
use std::time::Duration;

/// Talks to one control plane.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    http: reqwest::Client,
    base: String,
    node_id: String,
    token_file: Option<std::path::PathBuf>,
}

impl ControlPlane {
    /// A client for `server_url` (e.g. `http://127.0.0.1:7878`, or `https://…` with `ca_pem`, a
    /// PEM CA certificate trusted besides the system's roots).
    pub fn new(
        server_url: &str,
        node_id: &str,
        ca_pem: Option<&[u8]>,
    ) -> Result<ControlPlane, AgentError> {
        let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(2));
        if let Some(pem) = ca_pem {
            let cert =
                reqwest::Certificate::from_pem(pem).map_err(|e| AgentError::Tls(e.to_string()))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(AgentError::Client)?;
        Ok(ControlPlane {
            http,
            base: format!("{}{PREFIX}", server_url.trim_end_matches('/')),
            node_id: node_id.to_string(),
            token_file: None,
        })
    }

    /// Sends `Authorization: Bearer <the file's token>` with every request.
    pub fn with_token_file(mut self, file: Option<std::path::PathBuf>) -> ControlPlane {
        self.token_file = file;
        self
    }

    fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self
            .token_file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
        {
            Some(token) => request.bearer_auth(token.trim()),
            None => request,
        }
    }

    /// Long-polls for assignments newer than `after`.
    pub async fn assignments(&self, after: u64, wait: Duration) -> Result<Assignments, AgentError> {
        let url = format!("{}/assignments", self.base);
        let wait_ms = wait.as_millis().to_string();
        let after = after.to_string();
        let request = self
            .authorize(self.http.get(&url))
            .query(&[
                ("node", self.node_id.as_str()),
                ("after", &after),
                ("wait_ms", &wait_ms),
            ])
            .timeout(wait + Duration::from_secs(10));
        let response = request.send().await.map_err(|source| AgentError::Http {
            url: url.clone(),
            source,
        })?;
        let response = check(response, &url)?;
        response
            .json()
            .await
            .map_err(|source| AgentError::Http { url, source })
    }

    /// Sends a state report.
    pub async fn report(&self, report: &Report) -> Result<(), AgentError> {
        self.post("report", report).await
    }

    /// Ships a batch of log lines.
    pub async fn ship_logs(&self, shipment: &LogShipment) -> Result<(), AgentError> {
        self.post("logs", shipment).await
    }

    async fn post<T: serde::Serialize>(&self, path: &str, body: &T) -> Result<(), AgentError> {
        let url = format!("{}/{path}", self.base);
        let response = self
            .authorize(self.http.post(&url))
            .json(body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|source| AgentError::Http {
                url: url.clone(),
                source,
            })?;
        check(response, &url).map(|_| ())
    }
}

fn check(response: reqwest::Response, url: &str) -> Result<reqwest::Response, AgentError> {
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(AgentError::Status {
            url: url.to_string(),
            status: response.status().as_u16(),
        })
    }
}

/// Exponential backoff from 100 ms, doubling, capped at 2 s.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: Self::MIN }
    }
}

impl Backoff {
    const MIN: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(2);

    /// The delay to wait now; the following one doubles, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        d
    }

    /// Back to the shortest delay after a success.
    pub fn reset(&mut self) {
        self.next = Self::MIN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut b = Backoff::default();
        let got: Vec<u64> = (0..7).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1600, 2000, 2000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[tokio::test]
    async fn unreachable_server_is_an_error_not_a_panic() {
        // Port 1 on localhost is not listening.
        let cp = ControlPlane::new("http://127.0.0.1:1/", "n1", None).unwrap();
        let err = cp
            .assignments(0, Duration::from_millis(10))
            .await
            .unwrap_err();
        assert!(matches!(err, AgentError::Http { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("http://127.0.0.1:1/agent/v1/assignments"),
            "{err}"
        );
    }
}
