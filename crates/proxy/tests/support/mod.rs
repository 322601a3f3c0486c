//! Test support: tiny hyper backends on 127.0.0.1:0, config builders, and clients.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use berth_model::protocol::proxy::{self as w, ProxyConfig};
use berth_proxy::{Proxy, ProxyOptions, Tuning};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

pub const LB: &str =
    "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/test/0123456789abcdef";
pub const LISTENER: &str =
    "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener/app/test/0123456789abcdef/1";

pub fn tg_arn(name: &str) -> String {
    format!(
        "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/{name}/0000000000000001"
    )
}

/// A backend answering with its name; `/slow?ms=N` waits, `/stream` sends a chunk and waits for
/// `release`, `/ws` upgrades and echoes, `/echo` streams the request body back, `/health` is 200
/// while `healthy`.
pub struct Backend {
    pub name: &'static str,
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    pub healthy: Arc<AtomicBool>,
    pub release: Arc<Notify>,
    stop: watch::Sender<bool>,
}

impl Backend {
    /// Closes the listener and every connection at once (the task "dies").
    pub fn kill(&self) {
        let _ = self.stop.send(true);
    }
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

type Body = BoxBody<Bytes, hyper::Error>;

fn full(s: impl Into<Bytes>) -> Body {
    Full::new(s.into()).map_err(|never| match never {}).boxed()
}

pub async fn backend(name: &'static str) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let b = Backend {
        name,
        addr,
        hits: Arc::default(),
        healthy: Arc::new(AtomicBool::new(true)),
        release: Arc::new(Notify::new()),
        stop,
    };
    let (hits, healthy, release) = (b.hits.clone(), b.healthy.clone(), b.release.clone());
    tokio::spawn(async move {
        let mut stop_accept = stop_rx.clone();
        loop {
            let (stream, _) = tokio::select! {
                _ = stop_accept.changed() => return,
                r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
            };
            let (hits, healthy, release) = (hits.clone(), healthy.clone(), release.clone());
            let mut stop_conn = stop_rx.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    serve(name, req, hits.clone(), healthy.clone(), release.clone())
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades();
                tokio::select! {
                    _ = conn => {}
                    _ = stop_conn.changed() => {}
                }
            });
        }
    });
    b
}

async fn serve(
    name: &'static str,
    mut req: Request<Incoming>,
    hits: Arc<AtomicUsize>,
    healthy: Arc<AtomicBool>,
    release: Arc<Notify>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    if path == "/health" {
        let status = if healthy.load(SeqCst) {
            StatusCode::OK
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        return Ok(Response::builder()
            .status(status)
            .body(full("health"))
            .unwrap());
    }
    hits.fetch_add(1, SeqCst);
    let resp = Response::builder().header("x-backend", name);
    match path.as_str() {
        "/slow" => {
            let ms: u64 = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("ms="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(500);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(resp.body(full(name)).unwrap())
        }
        "/stream" => {
            let (tx, body) = ChannelBody::new();
            tokio::spawn(async move {
                let _ = tx.send(Bytes::from_static(b"first-chunk")).await;
                release.notified().await;
                let _ = tx.send(Bytes::from_static(b"second-chunk")).await;
            });
            Ok(resp.body(body.boxed()).unwrap())
        }
        "/echo" => {
            let body = req.into_body();
            Ok(resp.body(body.boxed()).unwrap())
        }
        "/ws" => {
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(up) = upgrade.await {
                    let mut io = TokioIo::new(up);
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = io.read(&mut buf).await {
                        if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            });
            Ok(Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("upgrade", "websocket")
                .header("connection", "Upgrade")
                .body(full(""))
                .unwrap())
        }
        "/headers" => {
            let mut text = String::new();
            for (k, v) in req.headers() {
                text.push_str(&format!("{}: {}\n", k, v.to_str().unwrap_or("?")));
            }
            Ok(resp.body(full(text)).unwrap())
        }
        _ => {
            let _ = req.into_body().collect().await;
            Ok(resp.body(full(name)).unwrap())
        }
    }
}

pub fn health_check(interval: f64) -> w::HealthCheck {
    w::HealthCheck {
        enabled: true,
        path: "/health".into(),
        port: "traffic-port".into(),
        interval_seconds: interval,
        timeout_seconds: 1.0,
        healthy_threshold: 2,
        unhealthy_threshold: 2,
        matcher: "200".into(),
    }
}

pub fn group(name: &str, backends: &[&Backend]) -> w::TargetGroup {
    w::TargetGroup {
        arn: tg_arn(name),
        name: name.into(),
        health_check: health_check(0.1),
        deregistration_delay_seconds: 0.0,
        stickiness_seconds: None,
        algorithm: "round_robin".into(),
        slow_start_seconds: 0.0,
        targets: backends
            .iter()
            .map(|b| w::Target {
                id: "127.0.0.1".into(),
                port: b.port(),
                draining: false,
            })
            .collect(),
    }
}

pub fn forward(names: &[(&str, u32)]) -> w::Action {
    w::Action::Forward {
        target_groups: names
            .iter()
            .map(|(n, wt)| w::WeightedTargetGroup {
                arn: tg_arn(n),
                weight: *wt,
            })
            .collect(),
        stickiness_seconds: None,
    }
}

pub fn config(
    version: u64,
    bind: &str,
    rules: Vec<w::Rule>,
    default: w::Action,
    groups: Vec<w::TargetGroup>,
) -> ProxyConfig {
    ProxyConfig {
        version,
        listeners: vec![w::Listener {
            arn: LISTENER.into(),
            load_balancer_arn: LB.into(),
            bind: bind.into(),
            protocol: "HTTP".into(),
            rules,
            default_actions: vec![default],
            idle_timeout_seconds: 60,
            certificates: Vec::new(),
        }],
        target_groups: groups,
    }
}

/// Starts a proxy in-process from a static config file.
pub async fn start(cfg: &ProxyConfig, tuning: Tuning) -> (Proxy, SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.json");
    std::fs::write(&path, serde_json::to_vec(cfg).unwrap()).unwrap();
    let opts = ProxyOptions {
        config_file: Some(path),
        proxy_id: "test".into(),
        access_log: Some(dir.path().join("access.log")),
        ..Default::default()
    };
    let proxy = Proxy::start(opts, tuning).await.unwrap();
    let addr = proxy.listener_addr(LISTENER).unwrap();
    (proxy, addr, dir)
}

pub type TestClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// GET through the proxy; returns status, x-backend and body.
pub async fn get(
    c: &TestClient,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String, http::HeaderMap) {
    let mut b = Request::get(format!("http://{addr}{path}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = c
        .request(b.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let backend = headers
        .get("x-backend")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        backend,
        String::from_utf8_lossy(&body).into_owned(),
        headers,
    )
}

/// Waits (bounded) until `f` is true.
pub async fn eventually(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Sends raw bytes on a new connection and reads the answer's status line (bounded).
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// Reads one HTTP/1.1 response with Content-Length from a raw stream; returns (status line, body).
pub async fn read_response(s: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
                    .await
                    .unwrap()
                    .unwrap();
                assert!(n > 0, "connection closed mid-body");
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
            return (head.lines().next().unwrap_or("").to_string(), body);
        }
    }
}

/// A streaming body fed through a channel (data frames until the sender is dropped).
pub struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl ChannelBody {
    pub fn new() -> (tokio::sync::mpsc::Sender<Bytes>, ChannelBody) {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        (tx, ChannelBody(rx))
    }
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = hyper::Error;
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}
