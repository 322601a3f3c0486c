//! Tests of the demo app: options from the environment, and the server over real 127.0.0.1 sockets.

use super::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const LIMIT: Duration = Duration::from_secs(20);

struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    done: JoinHandle<std::io::Result<()>>,
}

async fn start(opts: DemoOptions) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(serve(listener, opts, async move {
        let _ = stopped.await;
    }));
    Running { addr, stop, done }
}

/// One HTTP/1.1 GET with `Connection: close`; returns status and the raw body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    tokio::time::timeout(LIMIT, async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, body.to_string())
    })
    .await
    .expect("request finished in time")
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap()
}

fn opts(name: &str, version: &str) -> DemoOptions {
    DemoOptions {
        name: name.into(),
        version: version.into(),
        ..DemoOptions::default()
    }
}

async fn stop(r: Running) {
    r.stop.send(()).unwrap();
    tokio::time::timeout(LIMIT, r.done)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn health_says_ok_even_when_errors_are_injected() {
    let r = start(DemoOptions {
        error_rate: 1.0,
        ..opts("a", "v1")
    })
    .await;
    assert_eq!(get(r.addr, "/health").await, (200, "ok".to_string()));
    stop(r).await;
}

#[tokio::test]
async fn answers_name_version_and_path_on_any_path() {
    let r = start(opts("shop-api", "v7")).await;
    for path in ["/", "/api/anything?x=1"] {
        let (status, body) = get(r.addr, path).await;
        assert_eq!(status, 200, "{body}");
        let v = json(&body);
        assert_eq!(v["name"], "shop-api");
        assert_eq!(v["version"], "v7");
        assert_eq!(v["path"], path.split('?').next().unwrap());
        assert_eq!(v["pid"], std::process::id());
        assert!(v.get("task").is_some(), "{v}");
    }
    stop(r).await;
}

#[tokio::test]
async fn error_rate_one_answers_500_and_zero_never_does() {
    let failing = start(DemoOptions {
        error_rate: 1.0,
        ..opts("a", "v1")
    })
    .await;
    let ok = start(opts("b", "v1")).await;
    for _ in 0..10 {
        let (status, body) = get(failing.addr, "/").await;
        assert_eq!(status, 500);
        assert_eq!(json(&body)["version"], "v1");
        assert_eq!(get(ok.addr, "/").await.0, 200);
    }
    stop(failing).await;
    stop(ok).await;
}

#[tokio::test]
async fn query_overrides_status_and_rejects_bad_values() {
    let r = start(opts("a", "v1")).await;
    assert_eq!(get(r.addr, "/?status=503").await.0, 503);
    assert_eq!(get(r.addr, "/?status=500").await.0, 500);
    let (status, body) = get(r.addr, "/?sleep_ms=soon").await;
    assert_eq!(status, 400);
    assert!(body.contains("sleep_ms"), "{body}");
    assert_eq!(get(r.addr, "/?status=42").await.0, 400);
    assert_eq!(get(r.addr, "/?burn_ms=99999999").await.0, 400);
    stop(r).await;
}

#[tokio::test]
async fn sleep_and_burn_knobs_delay_the_answer() {
    let r = start(DemoOptions {
        latency_ms: 150,
        ..opts("a", "v1")
    })
    .await;
    let t = Instant::now();
    assert_eq!(get(r.addr, "/").await.0, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "latency_ms was not applied"
    );
    let t = Instant::now();
    assert_eq!(get(r.addr, "/?sleep_ms=300").await.0, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "sleep_ms was not applied"
    );
    let t = Instant::now();
    assert_eq!(get(r.addr, "/?sleep_ms=0&burn_ms=100").await.0, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(100),
        "burn_ms was not applied"
    );
    stop(r).await;
}

#[tokio::test]
async fn stream_sends_the_requested_number_of_chunks() {
    let r = start(opts("a", "v2")).await;
    let (status, body) = get(r.addr, "/stream?chunks=3&interval_ms=20").await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = body.lines().filter(|l| l.starts_with('{')).collect();
    assert_eq!(lines.len(), 3, "{body}");
    assert_eq!(json(lines[2])["chunk"], 2);
    assert_eq!(json(lines[0])["version"], "v2");
    stop(r).await;
}

#[tokio::test]
async fn shutdown_finishes_the_in_flight_request_then_stops_accepting() {
    let r = start(opts("a", "v1")).await;
    let addr = r.addr;
    let slow = tokio::spawn(async move { get(addr, "/slow?sleep_ms=1000").await });
    // Give the slow request time to be accepted and start sleeping.
    tokio::time::sleep(Duration::from_millis(300)).await;
    r.stop.send(()).unwrap();
    let (status, body) = tokio::time::timeout(LIMIT, slow).await.unwrap().unwrap();
    assert_eq!(status, 200, "in-flight request was cut: {body}");
    assert_eq!(json(&body)["path"], "/slow");
    tokio::time::timeout(LIMIT, r.done)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test]
async fn run_reports_a_bind_failure() {
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let opts = DemoOptions {
        listen: taken.local_addr().unwrap(),
        ..DemoOptions::default()
    };
    let err = run(opts, std::future::pending()).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
}

#[test]
fn options_from_environment() {
    type Case = (
        &'static [(&'static str, &'static str)],
        &'static str,
        &'static str,
        u64,
        f64,
        usize,
    );
    // (variables, listen, name, latency_ms, error_rate, number of warnings)
    let cases: &[Case] = &[
        (&[], "127.0.0.1:8080", "demo", 0, 0.0, 0),
        (
            &[("PORT", "9001"), ("BERTH_CONTAINER_NAME", "web")],
            "127.0.0.1:9001",
            "web",
            0,
            0.0,
            0,
        ),
        (
            &[
                ("PORT", "9001"),
                ("DEMO_LISTEN", "0.0.0.0:7000"),
                ("DEMO_NAME", "api"),
                ("BERTH_CONTAINER_NAME", "web"),
            ],
            "0.0.0.0:7000",
            "api",
            0,
            0.0,
            0,
        ),
        (
            &[("DEMO_LATENCY_MS", "25"), ("DEMO_ERROR_RATE", "0.5")],
            "127.0.0.1:8080",
            "demo",
            25,
            0.5,
            0,
        ),
        (
            &[
                ("PORT", "http"),
                ("DEMO_LATENCY_MS", "-1"),
                ("DEMO_ERROR_RATE", "2"),
                ("DEMO_LISTEN", "nowhere"),
            ],
            "127.0.0.1:8080",
            "demo",
            0,
            0.0,
            4,
        ),
    ];
    for (vars, listen, name, latency, rate, n_warnings) in cases {
        let (o, warnings) = DemoOptions::from_lookup(|k| {
            vars.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        });
        assert_eq!(o.listen.to_string(), *listen, "{vars:?}");
        assert_eq!(o.name, *name, "{vars:?}");
        assert_eq!(o.latency_ms, *latency, "{vars:?}");
        assert_eq!(o.error_rate, *rate, "{vars:?}");
        assert_eq!(warnings.len(), *n_warnings, "{vars:?}: {warnings:?}");
        assert_eq!(o.version, "v1");
    }
}

#[tokio::test]
async fn shutdown_does_not_wait_for_idle_connections() {
    let r = start(opts("a", "v1")).await;
    // One connection that never sends a byte, one idle after a keep-alive request.
    let _silent = TcpStream::connect(r.addr).await.unwrap();
    let mut idle = TcpStream::connect(r.addr).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    stop(r).await;
}

/// CPU time this whole process has used.
fn process_cpu() -> Duration {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID).unwrap();
    Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burn_ms_costs_that_much_cpu_time() {
    let r = start(opts("a", "v1")).await;
    let before = process_cpu();
    assert_eq!(get(r.addr, "/?burn_ms=200").await.0, 200);
    let used = process_cpu() - before;
    assert!(
        used >= Duration::from_millis(195),
        "burn_ms=200 used only {used:?} of CPU"
    );
    stop(r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_burns_a_share_of_a_core_in_the_background_and_checks_its_input() {
    let r = start(opts("a", "v1")).await;
    let before = process_cpu();
    let t = Instant::now();
    let (status, body) = get(r.addr, "/busy?millicores=500&duration_ms=1000").await;
    assert_eq!(status, 202, "{body}");
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "/busy answers before the burn ends"
    );
    assert_eq!(json(&body)["busy"]["millicores"], 500);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let used = process_cpu() - before;
    // Half a core for one second: 0.5 s, less only when the machine starves the burner (other
    // tests' burns in this process add at most 0.3 s; a whole core would be 1 s).
    assert!(
        used >= Duration::from_millis(250) && used <= Duration::from_millis(900),
        "millicores=500 for 1 s used {used:?} of CPU"
    );
    let (status, body) = get(r.addr, "/busy?millicores=0&duration_ms=soon").await;
    assert_eq!(status, 400);
    assert!(
        body.contains("millicores") && body.contains("duration_ms"),
        "{body}"
    );
    let (status, body) = get(r.addr, "/busy?duration_ms=10").await;
    assert_eq!(status, 400);
    assert!(body.contains("millicores: required"), "{body}");
    stop(r).await;
}
