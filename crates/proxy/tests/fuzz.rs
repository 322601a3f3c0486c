//! Property tests of the proxy's request handling: arbitrary bytes and mangled HTTP/1.1 requests
//! (odd methods, paths, header names and values with CR/LF/NUL, wrong lengths, broken chunking)
//! sent over TCP to an in-process proxy. Each gets an HTTP answer or a closed connection within a
//! deadline, nothing panics anywhere in the process, and a good request is still served after.
//! `PROPTEST_CASES` sets the number of cases (256 by default).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use berth_proxy::Tuning;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::*;

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));
}

/// Sends `bytes` and returns the answer's first line ("" when the connection closed unanswered).
/// A request the proxy still waits on (a promised body that never comes) is half-closed after a
/// moment, which must end it too.
fn exchange(addr: SocketAddr, bytes: &[u8]) -> Result<String, String> {
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let _ = s.write_all(bytes);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut half_closed = false;
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e)
                if !half_closed
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
            {
                half_closed = true;
                let _ = s.shutdown(std::net::Shutdown::Write);
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            }
            Err(e) => return Err(format!("no answer: {e}")),
        }
    }
    Ok(String::from_utf8_lossy(&buf)
        .lines()
        .next()
        .unwrap_or("")
        .to_string())
}

fn token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::sample::select(
            &[
                "GET", "POST", "PUT", "HEAD", "OPTIONS", "CONNECT", "TRACE", "DELETE", "PATCH",
                "get", "G ET", ""
            ][..]
        )
        .prop_map(|s| s.as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..8),
    ]
}

fn header() -> impl Strategy<Value = Vec<u8>> {
    let name = prop_oneof![
        prop::sample::select(
            &[
                "Host",
                "Content-Length",
                "Transfer-Encoding",
                "Connection",
                "Upgrade",
                "X-Forwarded-For",
                "X-Forwarded-Proto",
                "Expect",
                "Cookie",
                "Te",
                "Trailer",
            ][..]
        )
        .prop_map(|s| s.as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..12),
    ];
    let value = prop_oneof![
        prop::sample::select(
            &[
                "chunked",
                "gzip, chunked",
                "100-continue",
                "-1",
                "18446744073709551616",
                "keep-alive, upgrade",
                "websocket",
                "1.2.3.4\r\nX-Injected: 1",
                "a\nSet-Cookie: x=1",
                "a\rb",
                "a\0b",
                "h2c",
            ][..]
        )
        .prop_map(|s| s.as_bytes().to_vec()),
        "[0-9]{0,6}".prop_map(|s| s.into_bytes()),
        prop::collection::vec(any::<u8>(), 0..24),
    ];
    (name, value).prop_map(|(mut n, v)| {
        n.extend_from_slice(b": ");
        n.extend(v);
        n.extend_from_slice(b"\r\n");
        n
    })
}

fn request() -> impl Strategy<Value = Vec<u8>> {
    (
        token(),
        prop_oneof![
            prop::sample::select(
                &[
                    "/",
                    "/echo",
                    "/headers",
                    "*",
                    "http://x/",
                    "//a/../b",
                    "/%00",
                    "/a?b=%zz"
                ][..]
            )
            .prop_map(|s| s.as_bytes().to_vec()),
            prop::collection::vec(any::<u8>(), 0..24),
        ],
        prop::sample::select(&["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 x", ""][..]),
        prop::collection::vec(header(), 0..6),
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            Just(b"5\r\nhello\r\n0\r\n\r\n".to_vec()),
            Just(b"zz\r\nhello\r\n".to_vec()),
            Just(b"ffffffffffffffffff\r\n".to_vec()),
        ],
    )
        .prop_map(|(method, path, version, headers, body)| {
            let mut out = method;
            out.push(b' ');
            out.extend(path);
            out.push(b' ');
            out.extend_from_slice(version.as_bytes());
            out.extend_from_slice(b"\r\nHost: fuzz\r\n");
            for h in headers {
                out.extend(h);
            }
            out.extend_from_slice(b"\r\n");
            out.extend(body);
            out
        })
}

fn runner_cases() -> usize {
    Config::default().cases as usize
}

fn acceptable(first_line: &str) -> bool {
    if first_line.is_empty() {
        return true; // closed without an answer
    }
    let status = first_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| first_line.strip_prefix("HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|s| s.parse::<u16>().ok());
    // 502: the client's body ended early, so the target never got a whole request.
    matches!(status, Some(s) if s < 500 || s == 502)
}

#[test]
fn mangled_requests_get_answers_and_the_proxy_keeps_serving() {
    count_panics();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (proxy, addr, _dir, _backend) = rt.block_on(async {
        let a = backend("a").await;
        let cfg = config(
            1,
            "127.0.0.1:0",
            vec![],
            forward(&[("web", 1)]),
            vec![group("web", &[&a])],
        );
        let (proxy, addr, dir) = start(&cfg, Tuning::default()).await;
        (proxy, addr, dir, a)
    });
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = prop_oneof![prop::collection::vec(any::<u8>(), 0..256), request(),];
    let answered = std::sync::atomic::AtomicUsize::new(0);
    let result = runner.run(&strategy, |bytes| {
        let line = exchange(addr, &bytes).map_err(TestCaseError::fail)?;
        if !line.is_empty() {
            answered.fetch_add(1, Ordering::SeqCst);
        }
        prop_assert!(
            acceptable(&line),
            "{:?} got {line:?}",
            String::from_utf8_lossy(&bytes)
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
    // Most cases are answered (400s, 200s), so the cases reach the parser and the router.
    let answered = answered.load(Ordering::SeqCst);
    assert!(
        answered * 2 > runner_cases(),
        "only {answered} cases were answered"
    );
    let good = exchange(
        addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(good, "HTTP/1.1 200 OK");
    rt.block_on(proxy.shutdown());
}
