//! In-process proxy tests: routing, weighted forwards, stickiness, error answers, limits,
//! redirects, streaming, WebSocket upgrades, metrics and the access log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use berth_model::protocol::proxy as w;
use berth_proxy::Tuning;
use bytes::Bytes;
use http_body_util::BodyExt;
use std::time::Duration;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn rules_route_by_path_and_host_and_add_forwarded_headers() {
    let (a, b, c) = (backend("a").await, backend("b").await, backend("c").await);
    let rules = vec![
        w::Rule {
            arn: "r1".into(),
            priority: 10,
            conditions: vec![w::Condition::PathPattern {
                values: vec!["/api/*".into(), "/headers".into()],
            }],
            actions: vec![forward(&[("api", 1)])],
        },
        w::Rule {
            arn: "r2".into(),
            priority: 5,
            conditions: vec![w::Condition::HostHeader {
                values: vec!["*.img.example.com".into()],
            }],
            actions: vec![forward(&[("img", 1)])],
        },
    ];
    let cfg = config(
        1,
        "127.0.0.1:0",
        rules,
        forward(&[("web", 1)]),
        vec![
            group("web", &[&a]),
            group("api", &[&b]),
            group("img", &[&c]),
        ],
    );
    let (proxy, addr, dir) = start(&cfg, Tuning::default()).await;
    let cl = client();
    assert_eq!(get(&cl, addr, "/", &[]).await.1, "a");
    assert_eq!(get(&cl, addr, "/api/v1/x?q=1", &[]).await.1, "b");
    assert_eq!(
        get(&cl, addr, "/api/v1/x", &[("host", "CDN.IMG.example.com")])
            .await
            .1,
        "c",
        "priority 5 wins"
    );
    assert_eq!(
        get(&cl, addr, "/API/v1", &[]).await.1,
        "a",
        "paths are case-sensitive"
    );

    let (_, _, headers, _) = get(
        &cl,
        addr,
        "/headers",
        &[
            ("x-forwarded-for", "10.1.1.1"),
            ("connection", "keep-alive, x-drop"),
            ("x-drop", "1"),
        ],
    )
    .await;
    assert!(
        headers.contains("x-forwarded-for: 10.1.1.1, 127.0.0.1\n"),
        "{headers}"
    );
    assert!(headers.contains("x-forwarded-proto: http\n"), "{headers}");
    assert!(
        headers.contains(&format!("x-forwarded-port: {}\n", addr.port())),
        "{headers}"
    );
    assert!(headers.contains("x-amzn-trace-id: Root=1-"), "{headers}");
    assert!(
        !headers.contains("x-drop"),
        "hop-by-hop header named in Connection is stripped: {headers}"
    );
    let (_, _, headers, _) = get(
        &cl,
        addr,
        "/headers",
        &[(
            "x-amzn-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793",
        )],
    )
    .await;
    assert!(
        headers.contains("x-amzn-trace-id: Root=1-5759e988-bd862e3fe1be46a994272793\n"),
        "existing trace id kept: {headers}"
    );

    // Metrics and the access log.
    let report = proxy.report();
    let lb_requests: f64 = report
        .metrics
        .iter()
        .filter(|m| {
            m.name == "RequestCount"
                && m.dimensions
                    == vec![(
                        "LoadBalancer".to_string(),
                        "app/test/0123456789abcdef".to_string(),
                    )]
        })
        .map(|m| m.values[0])
        .sum();
    assert_eq!(lb_requests, 6.0, "{:?}", report.metrics);
    assert!(report.metrics.iter().any(|m| m.name == "TargetResponseTime"
        && m.namespace == "AWS/ApplicationELB"
        && m.dimensions
            .iter()
            .any(|(k, v)| k == "TargetGroup" && v == "targetgroup/api/0000000000000001")));
    assert!(report.metrics.iter().any(|m| m.name == "HealthyHostCount"));
    assert_eq!(report.target_health.len(), 3);
    let log_path = dir.path().join("access.log");
    eventually("access log lines", Duration::from_secs(5), async || {
        std::fs::read_to_string(&log_path)
            .map(|s| s.lines().count() >= 6)
            .unwrap_or(false)
    })
    .await;
    let log = std::fs::read_to_string(&log_path).unwrap();
    let line = log.lines().find(|l| l.contains("/api/v1/x?q=1")).unwrap();
    assert!(line.starts_with("http 20"), "{line}");
    assert!(
        line.contains(" app/test/0123456789abcdef 127.0.0.1:"),
        "{line}"
    );
    assert!(
        line.contains(&format!(" 127.0.0.1:{} ", b.port())),
        "{line}"
    );
    assert!(line.contains(" 200 200 "), "{line}");
    assert!(line.contains("\"forward\""), "{line}");
    proxy.shutdown().await;
}

#[tokio::test]
async fn weighted_forward_splits_90_10() {
    let (a, b) = (backend("a").await, backend("b").await);
    let cfg = config(
        1,
        "127.0.0.1:0",
        vec![],
        forward(&[("ninety", 90), ("ten", 10)]),
        vec![group("ninety", &[&a]), group("ten", &[&b])],
    );
    let (proxy, addr, _dir) = start(&cfg, Tuning::default()).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let cl = client();
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            for _ in 0..1250 {
                if get(&cl, addr, "/", &[]).await.1 == "a" {
                    n += 1;
                }
            }
            n
        }));
    }
    let mut to_a = 0;
    for t in tasks {
        to_a += t.await.unwrap();
    }
    assert!(
        (8_700..=9_300).contains(&to_a),
        "90/10 split gave {to_a} of 10000 to the 90 group"
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn lb_cookie_stickiness_holds() {
    let (a, b, c) = (backend("a").await, backend("b").await, backend("c").await);
    let mut tg = group("web", &[&a, &b, &c]);
    tg.stickiness_seconds = Some(300);
    let cfg = config(1, "127.0.0.1:0", vec![], forward(&[("web", 1)]), vec![tg]);
    let (proxy, addr, _dir) = start(&cfg, Tuning::default()).await;
    let cl = client();
    let (_, first, _, headers) = get(&cl, addr, "/", &[]).await;
    let set_cookie = headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        set_cookie.starts_with("AWSALB=") && set_cookie.contains("Max-Age=300"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    for _ in 0..20 {
        assert_eq!(get(&cl, addr, "/", &[("cookie", &cookie)]).await.1, first);
    }
    // Without the cookie, round robin spreads.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..6 {
        seen.insert(get(&cl, addr, "/", &[]).await.1);
    }
    assert_eq!(seen.len(), 3);
    proxy.shutdown().await;
}

#[tokio::test]
async fn no_target_gives_503_and_all_unhealthy_fails_open() {
    let (a, s) = (backend("a").await, backend("s").await);
    s.healthy.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut draining = group("draining", &[&a]);
    draining.targets[0].draining = true;
    let empty = group("empty", &[]);
    let sick = group("sick", &[&s]);
    let rules = vec![
        w::Rule {
            arn: "r1".into(),
            priority: 1,
            conditions: vec![w::Condition::PathPattern {
                values: vec!["/draining".into()],
            }],
            actions: vec![forward(&[("draining", 1)])],
        },
        w::Rule {
            arn: "r2".into(),
            priority: 2,
            conditions: vec![w::Condition::PathPattern {
                values: vec!["/sick".into()],
            }],
            actions: vec![forward(&[("sick", 1)])],
        },
        w::Rule {
            arn: "r3".into(),
            priority: 3,
            conditions: vec![w::Condition::PathPattern {
                values: vec!["/fixed".into()],
            }],
            actions: vec![w::Action::FixedResponse {
                status_code: 418,
                content_type: Some("text/plain".into()),
                message_body: Some("teapot".into()),
            }],
        },
        w::Rule {
            arn: "r4".into(),
            priority: 4,
            conditions: vec![w::Condition::PathPattern {
                values: vec!["/old/*".into()],
            }],
            actions: vec![w::Action::Redirect {
                protocol: Some("HTTPS".into()),
                host: None,
                port: Some("443".into()),
                path: Some("/new/#{path}".into()),
                query: None,
                status_code: "HTTP_301".into(),
            }],
        },
    ];
    let cfg = config(
        1,
        "127.0.0.1:0",
        rules,
        forward(&[("empty", 1)]),
        vec![draining, empty, sick],
    );
    let (proxy, addr, _dir) = start(&cfg, Tuning::default()).await;
    let cl = client();
    eventually(
        "sick target unhealthy",
        Duration::from_secs(5),
        async || {
            proxy.report().target_health.iter().any(|t| {
                t.target_group_arn == tg_arn("sick")
                    && t.state == "unhealthy"
                    && t.reason.as_deref() == Some("Target.ResponseCodeMismatch")
            })
        },
    )
    .await;
    assert_eq!(
        get(&cl, addr, "/sick", &[]).await.0,
        200,
        "all unhealthy: fail open"
    );
    // After the polling above: report() resets the counters.
    assert_eq!(
        get(&cl, addr, "/", &[]).await.0,
        503,
        "no registered target"
    );
    assert_eq!(
        get(&cl, addr, "/draining", &[]).await.0,
        503,
        "only draining targets"
    );
    let (status, _, body, _) = get(&cl, addr, "/fixed", &[]).await;
    assert_eq!((status, body.as_str()), (418, "teapot"));
    let (status, _, _, headers) = get(&cl, addr, "/old/a/b?x=1", &[("host", "example.com")]).await;
    assert_eq!(status, 301);
    assert_eq!(
        headers.get("location").unwrap(),
        "https://example.com/new/old/a/b?x=1"
    );
    let report = proxy.report();
    assert!(
        report
            .metrics
            .iter()
            .any(|m| m.name == "HTTPCode_ELB_503_Count" && m.values == vec![2.0]),
        "{:?}",
        report.metrics
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn malformed_and_oversized_requests_get_4xx_and_the_proxy_keeps_serving() {
    let a = backend("a").await;
    let cfg = config(
        1,
        "127.0.0.1:0",
        vec![],
        forward(&[("web", 1)]),
        vec![group("web", &[&a])],
    );
    let (proxy, addr, _dir) = start(&cfg, Tuning::default()).await;
    assert!(raw(addr, b"GARBAGE\r\n\r\n")
        .await
        .starts_with("HTTP/1.1 400"));
    assert!(raw(
        addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"
    )
    .await
    .starts_with("HTTP/1.1 400"));
    let mut many = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..150 {
        many.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let answer = raw(addr, &many).await;
    assert!(
        answer.starts_with("HTTP/1.1 431") || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    let mut big = b"GET / HTTP/1.1\r\nHost: x\r\nx-big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 100 * 1024));
    big.extend_from_slice(b"\r\n\r\n");
    let answer = raw(addr, &big).await;
    assert!(
        answer.starts_with("HTTP/1.1 431") || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    // A client that connects and goes away, and a half-sent request.
    drop(TcpStream::connect(addr).await.unwrap());
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
    drop(half);
    assert_eq!(get(&client(), addr, "/", &[]).await.0, 200);
    proxy.shutdown().await;
}

#[tokio::test]
async fn target_timeout_gives_504_and_dead_target_gives_502() {
    let (proxy, addr, a, _dir) = one_backend_proxy_with(Tuning {
        target_timeout: Duration::from_millis(200),
        ..Tuning::default()
    })
    .await;
    let cl = client();
    assert_eq!(get(&cl, addr, "/slow?ms=2000", &[]).await.0, 504);
    assert_eq!(get(&cl, addr, "/", &[]).await.0, 200);
    a.kill();
    // The only target is gone: the retry has nowhere to go.
    assert_eq!(get(&cl, addr, "/", &[]).await.0, 502);
    proxy.shutdown().await;
}

/// A keep-alive connection's requests share one response timer: one that fired while the
/// connection sat idle still gives the next request its whole timeout, and a slow request later
/// on the same connection still gets its 504.
#[tokio::test]
async fn every_request_of_a_keep_alive_connection_gets_the_whole_response_timeout() {
    let (proxy, addr, _a, _dir) = one_backend_proxy_with(Tuning {
        target_timeout: Duration::from_millis(300),
        ..Tuning::default()
    })
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut ask = async |path: &str| {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        read_response(&mut s).await.0
    };
    assert_eq!(ask("/").await, "HTTP/1.1 200 OK");
    // Idle past the timeout: the timer set for the first request fires.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ask("/slow?ms=150").await, "HTTP/1.1 200 OK");
    assert_eq!(ask("/slow?ms=150").await, "HTTP/1.1 200 OK");
    assert_eq!(ask("/slow?ms=2000").await, "HTTP/1.1 504 Gateway Timeout");
    assert_eq!(ask("/").await, "HTTP/1.1 200 OK");
    proxy.shutdown().await;
}

#[tokio::test]
async fn streaming_response_is_not_buffered() {
    let a = backend("a").await;
    let cfg = config(
        1,
        "127.0.0.1:0",
        vec![],
        forward(&[("web", 1)]),
        vec![group("web", &[&a])],
    );
    let (proxy, addr, _dir) = start(&cfg, Tuning::default()).await;
    let cl = client();
    let resp = cl
        .request(
            http::Request::get(format!("http://{addr}/stream"))
                .body(http_body_util::Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = resp.into_body();
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("first chunk before the backend finished")
        .unwrap()
        .unwrap();
    assert_eq!(
        first.into_data().unwrap(),
        Bytes::from_static(b"first-chunk")
    );
    a.release.notify_one();
    let rest = tokio::time::timeout(Duration::from_secs(5), body.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert_eq!(rest, Bytes::from_static(b"second-chunk"));

    // Request bodies stream too (chunked upload echoed back).
    let (tx, req_body) = ChannelBody::new();
    let req = http::Request::post(format!("http://{addr}/echo"))
        .body(req_body)
        .unwrap();
    let streaming_client: hyper_util::client::legacy::Client<_, ChannelBody> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let pending = tokio::spawn(async move { streaming_client.request(req).await.unwrap() });
    tx.send(Bytes::from_static(b"hello ")).await.unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("response head before the upload ended")
        .unwrap();
    let mut body = resp.into_body();
    let echoed = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(echoed.into_data().unwrap(), Bytes::from_static(b"hello "));
    tx.send(Bytes::from_static(b"world")).await.unwrap();
    drop(tx);
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, Bytes::from_static(b"world"));
    proxy.shutdown().await;
}

#[tokio::test]
async fn websocket_upgrade_echoes_through_the_proxy() {
    let a = backend("a").await;
    let cfg = config(
        1,
        "127.0.0.1:0",
        vec![],
        forward(&[("web", 1)]),
        vec![group("web", &[&a])],
    );
    let (proxy, addr, _dir) = start(&cfg, Tuning::default()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    for msg in [&b"ping-1"[..], b"second message"] {
        s.write_all(msg).await.unwrap();
        let mut got = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, msg);
    }
    proxy.shutdown().await;
}

#[tokio::test]
async fn http2_prior_knowledge_clients_are_served() {
    let a = backend("a").await;
    let cfg = config(
        1,
        "127.0.0.1:0",
        vec![],
        forward(&[("web", 1)]),
        vec![group("web", &[&a])],
    );
    let (proxy, addr, _dir) = start(&cfg, Tuning::default()).await;
    let h2: hyper_util::client::legacy::Client<_, http_body_util::Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .http2_only(true)
            .build_http();
    let resp = h2
        .request(
            http::Request::get(format!("http://{addr}/"))
                .body(http_body_util::Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.headers().get("x-backend").unwrap(), "a");
    assert_eq!(
        resp.into_body().collect().await.unwrap().to_bytes(),
        Bytes::from_static(b"a")
    );
    proxy.shutdown().await;
}

/// Reads from `s` until the proxy closes the connection.
async fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the proxy closes the connection")
        .unwrap();
    String::from_utf8_lossy(&out).to_string()
}

async fn one_backend_proxy() -> (
    berth_proxy::Proxy,
    std::net::SocketAddr,
    Backend,
    tempfile::TempDir,
) {
    one_backend_proxy_with(Tuning::default()).await
}

async fn one_backend_proxy_with(
    tuning: Tuning,
) -> (
    berth_proxy::Proxy,
    std::net::SocketAddr,
    Backend,
    tempfile::TempDir,
) {
    let a = backend("a").await;
    let cfg = config(
        1,
        "127.0.0.1:0",
        vec![],
        forward(&[("web", 1)]),
        vec![group("web", &[&a])],
    );
    let (proxy, addr, dir) = start(&cfg, tuning).await;
    (proxy, addr, a, dir)
}

#[tokio::test]
async fn pipelined_requests_with_bodies_are_answered_in_order_on_one_connection() {
    let (proxy, addr, _a, _dir) = one_backend_proxy().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"GET /headers HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nfirst-body!\
          POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nsecond\r\n5\r\n-body\r\n0\r\n\r\n\
          GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let text = read_to_close(&mut s).await;
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 4, "{text}");
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing in {text}"))
    };
    let (headers, first, second) = (
        at("x-forwarded-for: 127.0.0.1"),
        at("first-body!"),
        at("second"),
    );
    assert!(headers < first && first < second, "{text}");
    assert!(text.contains("-body"), "{text}");
    // The last response says the connection closes.
    let last = &text[text.rfind("HTTP/1.1 200 OK").unwrap()..];
    assert!(last.contains("connection: close\r\n"), "{last}");
    assert!(last.ends_with("\r\n\r\na"), "{last}");
    proxy.shutdown().await;
}

#[tokio::test]
async fn http10_clients_get_the_connection_closed_unless_they_ask_for_keep_alive() {
    let (proxy, addr, _a, _dir) = one_backend_proxy().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let text = read_to_close(&mut s).await;
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("connection: close\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\na"), "{text}");

    let mut s = TcpStream::connect(addr).await.unwrap();
    for _ in 0..2 {
        s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
            .await
            .unwrap();
        let (status, body) = read_response(&mut s).await;
        assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "a"));
    }
    proxy.shutdown().await;
}

#[tokio::test]
async fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let (proxy, addr, _a, _dir) = one_backend_proxy().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    )
    .await
    .unwrap();
    let mut interim = [0u8; 25];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut interim))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"ping").await.unwrap();
    let (status, body) = read_response(&mut s).await;
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 200 OK", "ping")
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn conflicting_framing_is_refused_before_anything_reaches_a_target() {
    let (proxy, addr, a, _dir) = one_backend_proxy().await;
    let answer = raw(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(a.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    proxy.shutdown().await;
}

#[tokio::test]
async fn a_body_the_client_breaks_off_ends_the_request_instead_of_waiting_for_the_target() {
    let (proxy, addr, _a, _dir) = one_backend_proxy().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The target reads the whole body before answering; the client stops in the middle.
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.shutdown().await.unwrap();
    let text = read_to_close(&mut s).await;
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 502"),
        "{text}"
    );
    proxy.shutdown().await;
}
