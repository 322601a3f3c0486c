//! In-process proxy tests of target lifecycle and configuration: health checks, draining, task
//! death under load, snapshot swaps on open connections, and a control plane that goes away.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use berth_model::protocol::proxy::{ProxyConfig, Report};
use berth_proxy::{Proxy, ProxyOptions, Tuning};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

fn state_of(p: &Proxy, port: u16) -> (String, u64) {
    let r = p.report();
    let t = r.target_health.iter().find(|t| t.port == port).unwrap();
    (t.state.clone(), t.in_flight)
}

#[tokio::test]
async fn failing_health_check_leaves_rotation_and_comes_back() {
    let (a, b) = (backend("a").await, backend("b").await);
    let cfg = config(
        1,
        "127.0.0.1:0",
        vec![],
        forward(&[("web", 1)]),
        vec![group("web", &[&a, &b])],
    );
    let (proxy, addr, _dir) = start(&cfg, Tuning::default()).await;
    let cl = client();
    eventually("both healthy", Duration::from_secs(5), async || {
        state_of(&proxy, a.port()).0 == "healthy" && state_of(&proxy, b.port()).0 == "healthy"
    })
    .await;
    a.healthy.store(false, SeqCst);
    // interval 0.1 s × unhealthy threshold 2 = 0.2 s; allow generous slack for a busy machine.
    let t0 = Instant::now();
    eventually("a unhealthy", Duration::from_secs(5), async || {
        state_of(&proxy, a.port()).0 == "unhealthy"
    })
    .await;
    let took = t0.elapsed();
    let r = proxy.report();
    let ta = r.target_health.iter().find(|t| t.port == a.port()).unwrap();
    assert_eq!(ta.reason.as_deref(), Some("Target.ResponseCodeMismatch"));
    for _ in 0..10 {
        assert_eq!(
            get(&cl, addr, "/", &[]).await.1,
            "b",
            "unhealthy target out of rotation (left after {took:?})"
        );
    }
    a.healthy.store(true, SeqCst);
    eventually("a healthy again", Duration::from_secs(5), async || {
        state_of(&proxy, a.port()).0 == "healthy"
    })
    .await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..4 {
        seen.insert(get(&cl, addr, "/", &[]).await.1);
    }
    assert_eq!(seen.len(), 2, "a is back in rotation");
    proxy.shutdown().await;
}

#[tokio::test]
async fn draining_target_finishes_in_flight_request_while_new_ones_go_elsewhere() {
    let (a, b) = (backend("a").await, backend("b").await);
    let mut cfg = config(
        1,
        "127.0.0.1:0",
        vec![],
        forward(&[("web", 1)]),
        vec![group("web", &[&a, &b])],
    );
    cfg.target_groups[0].algorithm = "least_outstanding_requests".into();
    let (proxy, addr, _dir) = start(&cfg, Tuning::default()).await;
    eventually("both healthy", Duration::from_secs(5), async || {
        state_of(&proxy, a.port()).0 == "healthy" && state_of(&proxy, b.port()).0 == "healthy"
    })
    .await;
    // A slow request lands on some target; drain that one.
    let slow = tokio::spawn(async move { get(&client(), addr, "/slow?ms=1500", &[]).await });
    let mut busy_port = 0;
    eventually(
        "slow request in flight",
        Duration::from_secs(5),
        async || {
            let r = proxy.report();
            match r.target_health.iter().find(|t| t.in_flight == 1) {
                Some(t) => {
                    busy_port = t.port;
                    true
                }
                None => false,
            }
        },
    )
    .await;
    let (busy, other) = if busy_port == a.port() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let mut next = cfg.clone();
    next.version = 2;
    next.target_groups[0]
        .targets
        .iter_mut()
        .find(|t| t.port == busy.port())
        .unwrap()
        .draining = true;
    proxy.apply(next).unwrap();
    assert_eq!(state_of(&proxy, busy.port()), ("draining".to_string(), 1));
    let cl = client();
    for _ in 0..10 {
        assert_eq!(
            get(&cl, addr, "/", &[]).await.1,
            other.name,
            "new requests avoid the draining target"
        );
    }
    let (status, backend_name, _, _) = slow.await.unwrap();
    assert_eq!(
        (status, backend_name.as_str()),
        (200, busy.name),
        "in-flight request finished on the draining target"
    );
    assert_eq!(state_of(&proxy, busy.port()), ("draining".to_string(), 0));
    proxy.shutdown().await;
}

#[tokio::test]
async fn killing_a_target_under_load_gives_zero_client_errors() {
    let (a, b) = (backend("a").await, backend("b").await);
    let mut cfg = config(
        1,
        "127.0.0.1:0",
        vec![],
        forward(&[("web", 1)]),
        vec![group("web", &[&a, &b])],
    );
    // Slow active checks: the passive check must do the work.
    cfg.target_groups[0].health_check.interval_seconds = 30.0;
    let (proxy, addr, _dir) = start(&cfg, Tuning::default()).await;
    let done = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (done, errors) = (done.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let cl = client();
            for _ in 0..400 {
                let req = Request::get(format!("http://{addr}/"))
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                match cl.request(req).await {
                    Ok(resp) if resp.status() == StatusCode::OK => {
                        let _ = resp.into_body().collect().await;
                    }
                    Ok(resp) => errors
                        .lock()
                        .unwrap()
                        .push(format!("status {}", resp.status())),
                    Err(e) => errors.lock().unwrap().push(format!("error {e}")),
                }
                done.fetch_add(1, SeqCst);
            }
        }));
    }
    eventually("load running", Duration::from_secs(10), async || {
        done.load(SeqCst) >= 300
    })
    .await;
    a.kill();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(done.load(SeqCst), 1600);
    assert_eq!(*errors.lock().unwrap(), Vec::<String>::new());
    assert_eq!(
        state_of(&proxy, a.port()).0,
        "unhealthy",
        "passive check took the dead target out"
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn new_snapshot_applies_without_dropping_a_keep_alive_connection() {
    let (a, b) = (backend("a").await, backend("b").await);
    let cfg = config(
        1,
        "127.0.0.1:0",
        vec![],
        forward(&[("one", 1)]),
        vec![group("one", &[&a]), group("two", &[&b])],
    );
    let (proxy, addr, _dir) = start(&cfg, Tuning::default()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (status, body) = read_response(&mut s).await;
    assert!(status.contains("200") && body == "a", "{status} {body}");
    let mut next = cfg.clone();
    next.version = 2;
    next.listeners[0].default_actions = vec![forward(&[("two", 1)])];
    // Same bind address ("127.0.0.1:0"): the socket is kept.
    proxy.apply(next).unwrap();
    assert_eq!(proxy.listener_addr(LISTENER), Some(addr));
    assert_eq!(proxy.applied_version(), 2);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (status, body) = read_response(&mut s).await;
    assert!(
        status.contains("200") && body == "b",
        "same connection, new routing: {status} {body}"
    );

    // An invalid snapshot changes nothing.
    let mut bad = cfg.clone();
    bad.version = 3;
    bad.listeners[0].default_actions = vec![forward(&[("missing", 1)])];
    assert!(proxy.apply(bad).is_err());
    assert_eq!(proxy.applied_version(), 2);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut s).await.1, "b");
    proxy.shutdown().await;
}

/// A fake control plane: serves `config` by long poll and records reports.
struct FakeControlPlane {
    addr: std::net::SocketAddr,
    config: watch::Sender<ProxyConfig>,
    reports: Arc<Mutex<Vec<Report>>>,
    stop: watch::Sender<bool>,
}

async fn fake_control_plane(
    cfg: ProxyConfig,
    addr: Option<std::net::SocketAddr>,
) -> FakeControlPlane {
    let listener = TcpListener::bind(addr.unwrap_or(([127, 0, 0, 1], 0).into()))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (config, config_rx) = watch::channel(cfg);
    let (stop, stop_rx) = watch::channel(false);
    let reports = Arc::new(Mutex::new(Vec::new()));
    let reports2 = reports.clone();
    tokio::spawn(async move {
        let mut stop_accept = stop_rx.clone();
        loop {
            let (stream, _) = tokio::select! {
                _ = stop_accept.changed() => return,
                r = listener.accept() => r.unwrap(),
            };
            let (config_rx, reports, mut stop_conn) =
                (config_rx.clone(), reports2.clone(), stop_rx.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (mut config_rx, reports) = (config_rx.clone(), reports.clone());
                    async move {
                        if req.uri().path() == "/proxy/v1/report" {
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            reports
                                .lock()
                                .unwrap()
                                .push(serde_json::from_slice(&body).unwrap());
                            return Ok::<_, std::convert::Infallible>(Response::new(Full::new(
                                Bytes::new(),
                            )));
                        }
                        let after: u64 = req
                            .uri()
                            .query()
                            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("after=")))
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        let wait = tokio::time::sleep(Duration::from_secs(2));
                        tokio::pin!(wait);
                        loop {
                            if config_rx.borrow().version > after {
                                let body = serde_json::to_vec(&*config_rx.borrow()).unwrap();
                                return Ok(Response::new(Full::new(Bytes::from(body))));
                            }
                            tokio::select! {
                                _ = &mut wait => {
                                    let mut r = Response::new(Full::new(Bytes::new()));
                                    *r.status_mut() = StatusCode::NO_CONTENT;
                                    return Ok(r);
                                }
                                _ = config_rx.changed() => {}
                            }
                        }
                    }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc);
                tokio::select! {
                    _ = conn => {}
                    _ = stop_conn.changed() => {}
                }
            });
        }
    });
    FakeControlPlane {
        addr,
        config,
        reports,
        stop,
    }
}

#[tokio::test]
async fn keeps_serving_while_the_control_plane_is_away_and_after_a_restart() {
    let (a, b) = (backend("a").await, backend("b").await);
    let free_port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = format!("127.0.0.1:{free_port}");
    let cfg = config(
        1,
        &bind,
        vec![],
        forward(&[("one", 1)]),
        vec![group("one", &[&a]), group("two", &[&b])],
    );
    let cp = fake_control_plane(cfg.clone(), None).await;
    let state_dir = tempfile::tempdir().unwrap();
    let opts = ProxyOptions {
        control_plane: Some(format!("http://{}", cp.addr)),
        proxy_id: "p1".into(),
        state_dir: Some(state_dir.path().to_path_buf()),
        ..Default::default()
    };
    let tuning = Tuning {
        report_interval: Duration::from_millis(100),
        ..Tuning::default()
    };
    let proxy = Proxy::start(opts.clone(), tuning.clone()).await.unwrap();
    eventually("config v1 applied", Duration::from_secs(5), async || {
        proxy.applied_version() == 1
    })
    .await;
    let addr = proxy.listener_addr(LISTENER).unwrap();
    let cl = client();
    assert_eq!(get(&cl, addr, "/", &[]).await.1, "a");
    eventually("a report arrives", Duration::from_secs(5), async || {
        cp.reports
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.proxy_id == "p1" && r.config_version == 1 && !r.target_health.is_empty())
    })
    .await;

    // A new snapshot arrives by long poll.
    let mut v2 = cfg.clone();
    v2.version = 2;
    v2.listeners[0].default_actions = vec![forward(&[("two", 1)])];
    cp.config.send(v2).unwrap();
    eventually("config v2 applied", Duration::from_secs(5), async || {
        proxy.applied_version() == 2
    })
    .await;
    assert_eq!(get(&cl, addr, "/", &[]).await.1, "b");

    // The control plane goes away: the proxy keeps serving.
    let _ = cp.stop.send(true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..5 {
        assert_eq!(get(&cl, addr, "/", &[]).await.1, "b");
    }
    // The proxy restarts while the control plane is still down: the cached snapshot serves.
    proxy.shutdown().await;
    drop(proxy);
    let restarted = Proxy::start(opts, tuning).await.unwrap();
    assert_eq!(restarted.applied_version(), 2);
    let addr = restarted.listener_addr(LISTENER).unwrap();
    eventually("restarted proxy serves", Duration::from_secs(5), async || {
        let req = Request::get(format!("http://{addr}/")).body(Full::new(Bytes::new())).unwrap();
        matches!(client().request(req).await, Ok(r) if r.headers().get("x-backend").is_some_and(|v| v == "b"))
    })
    .await;
    restarted.shutdown().await;
}

#[tokio::test]
async fn requests_with_bodies_move_on_when_a_target_refuses_and_connections_are_reused() {
    let (a, b) = (backend("a").await, backend("b").await);
    let mut cfg = config(
        1,
        "127.0.0.1:0",
        vec![],
        forward(&[("web", 1)]),
        vec![group("web", &[&a, &b])],
    );
    cfg.target_groups[0].health_check.interval_seconds = 30.0;
    let (proxy, addr, _dir) = start(&cfg, Tuning::default()).await;
    let cl = client();
    for i in 0..20 {
        let (status, _, body, _) = post_echo(&cl, addr, &format!("body-{i}")).await;
        assert_eq!((status, body), (200, format!("body-{i}")));
    }
    let served_before = b.hits.load(SeqCst);
    a.kill();
    // Let the proxy see its idle connections to `a` close (a POST on a connection closing under
    // it is not retried: it is not idempotent).
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Nothing was sent when the connection is refused, so even a POST with a body moves on.
    for i in 0..10 {
        let (status, backend, body, _) = post_echo(&cl, addr, &format!("after-{i}")).await;
        assert_eq!((status, body), (200, format!("after-{i}")), "request {i}");
        assert_eq!(backend, "b");
    }
    assert!(b.hits.load(SeqCst) >= served_before + 10);
    assert_eq!(state_of(&proxy, a.port()).0, "unhealthy");
    proxy.shutdown().await;
}

async fn post_echo(
    cl: &TestClient,
    addr: std::net::SocketAddr,
    body: &str,
) -> (u16, String, String, http::HeaderMap) {
    let req = Request::post(format!("http://{addr}/echo"))
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = cl.request(req).await.unwrap();
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
