//! The proxy's side of `/proxy/v1`: long-polls the control plane for config snapshots (capped
//! backoff while it is away), caches the last good one in the state dir, and posts a `Report`
//! every second.

use crate::Proxy;
use berth_model::protocol::proxy::{ProxyConfig, PREFIX};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

const LONG_POLL_MS: u64 = 20_000;
const MAX_CONFIG_BYTES: usize = 64 << 20;

/// The client for the control plane (`http://`, or `https://` trusting `ca_pem` besides the
/// system's roots).
pub(crate) fn cp_client(ca_pem: Option<&[u8]>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .tcp_nodelay(true)
        .pool_max_idle_per_host(2);
    if let Some(pem) = ca_pem {
        let cert =
            reqwest::Certificate::from_pem(pem).map_err(|e| format!("the CA certificate: {e}"))?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build().map_err(|e| e.to_string())
}

/// `Authorization: Bearer <node token>` when the proxy has a token file (read at each request,
/// so a token written after the proxy started is picked up).
fn authorize(
    builder: reqwest::RequestBuilder,
    token_file: Option<&Path>,
) -> reqwest::RequestBuilder {
    match token_file.and_then(|p| std::fs::read_to_string(p).ok()) {
        Some(token) => builder.bearer_auth(token.trim()),
        None => builder,
    }
}

/// File the last good snapshot is cached in.
pub(crate) fn cache_path(state_dir: &Path) -> PathBuf {
    state_dir.join("proxy-config.json")
}

/// Reads the cached snapshot, if any.
pub(crate) fn load_cache(state_dir: &Path) -> Option<ProxyConfig> {
    let text = std::fs::read(cache_path(state_dir)).ok()?;
    match serde_json::from_slice(&text) {
        Ok(cfg) => Some(cfg),
        Err(e) => {
            tracing::warn!(error = %e, "ignoring unreadable cached proxy config");
            None
        }
    }
}

async fn store_cache(state_dir: &Path, cfg: &ProxyConfig) -> std::io::Result<()> {
    tokio::fs::create_dir_all(state_dir).await?;
    let tmp = state_dir.join("proxy-config.json.tmp");
    let text = serde_json::to_vec(cfg).map_err(std::io::Error::other)?;
    tokio::fs::write(&tmp, text).await?;
    tokio::fs::rename(&tmp, cache_path(state_dir)).await
}

enum Poll {
    New(ProxyConfig),
    Unchanged,
}

async fn poll_once(
    client: &reqwest::Client,
    base: &str,
    proxy_id: &str,
    after: u64,
    token_file: Option<&Path>,
) -> Result<Poll, String> {
    let uri =
        format!("{base}{PREFIX}/config?after={after}&wait_ms={LONG_POLL_MS}&proxy_id={proxy_id}");
    let mut resp = authorize(client.get(uri), token_file)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    match resp.status() {
        reqwest::StatusCode::OK => {
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
                if body.len() + chunk.len() > MAX_CONFIG_BYTES {
                    return Err(format!("snapshot larger than {MAX_CONFIG_BYTES} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            let cfg: ProxyConfig =
                serde_json::from_slice(&body).map_err(|e| format!("bad snapshot: {e}"))?;
            Ok(Poll::New(cfg))
        }
        reqwest::StatusCode::NO_CONTENT | reqwest::StatusCode::NOT_MODIFIED => Ok(Poll::Unchanged),
        other => Err(format!("control plane answered {other}")),
    }
}

/// Long-polls for snapshots until `stop` turns true.
pub(crate) async fn config_loop(
    proxy: Proxy,
    client: reqwest::Client,
    base: String,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    let max_backoff = Duration::from_secs(5);
    let opts = proxy.options().clone();
    loop {
        let after = proxy.seen_version();
        let attempt = tokio::time::timeout(
            Duration::from_millis(LONG_POLL_MS + 10_000),
            poll_once(
                &client,
                &base,
                &opts.proxy_id,
                after,
                opts.node_token_file.as_deref(),
            ),
        );
        let result = tokio::select! {
            _ = stop.changed() => return,
            r = attempt => r.unwrap_or_else(|_| Err("long poll timed out".into())),
        };
        match result {
            Ok(Poll::New(cfg)) => {
                backoff = Duration::from_millis(200);
                if cfg.version <= after && after != 0 {
                    continue;
                }
                let version = cfg.version;
                match proxy.apply(cfg.clone()) {
                    Ok(()) => tracing::info!(version, "applied proxy config"),
                    Err(e) => {
                        tracing::warn!(version, error = %e, "proxy config not (fully) applied")
                    }
                }
                if proxy.applied_version() == version {
                    if let Some(dir) = &opts.state_dir {
                        if let Err(e) = store_cache(dir, &cfg).await {
                            tracing::warn!(error = %e, "could not cache proxy config");
                        }
                    }
                }
            }
            Ok(Poll::Unchanged) => backoff = Duration::from_millis(200),
            Err(e) => {
                tracing::debug!(error = %e, retry_in_ms = backoff.as_millis() as u64, "control plane unreachable; serving last good config");
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(max_backoff);
            }
        }
    }
}

/// Posts a report every `interval` until `stop` turns true.
pub(crate) async fn report_loop(
    proxy: Proxy,
    client: reqwest::Client,
    base: String,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let token_file = proxy.options().node_token_file.clone();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = ticker.tick() => {}
        }
        let report = proxy.report();
        let Ok(body) = serde_json::to_vec(&report) else {
            continue;
        };
        let request = authorize(
            client.post(format!("{base}{PREFIX}/report")),
            token_file.as_deref(),
        )
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .timeout(Duration::from_secs(2));
        match request.send().await {
            Ok(resp) => {
                let _ = resp.bytes().await;
            }
            Err(e) => tracing::debug!(error = %e, "report not delivered"),
        }
    }
}
