//! The demo app's HTTP server: routes, knobs, and graceful shutdown.

use crate::options::{DemoOptions, MAX_KNOB_MS};
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Most chunks `/stream` sends for one request.
const MAX_STREAM_CHUNKS: u64 = 10_000;

/// Most `/busy` burners running at once.
const MAX_BUSY_BURNERS: usize = 8;

/// Length of one `/busy` duty cycle: each burns its share of this window, then sleeps the rest.
const BUSY_WINDOW: Duration = Duration::from_millis(100);

/// What every request handler sees.
struct State {
    opts: DemoOptions,
    task_id: Option<String>,
    pid: u32,
    /// `/busy` burners running now.
    busy_burners: Arc<std::sync::atomic::AtomicUsize>,
}

/// Binds `opts.listen` and serves until `shutdown` completes, then stops accepting and waits for
/// in-flight requests to finish.
pub async fn run(
    opts: DemoOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener = TcpListener::bind(opts.listen).await?;
    serve(listener, opts, shutdown).await
}

/// Like [`run`], stopping on SIGTERM or SIGINT.
pub async fn run_until_signal(opts: DemoOptions) -> io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let stop = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    run(opts, stop).await
}

/// Serves on an already bound listener (`listen` in `opts` is only reported) until `shutdown`
/// completes, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    opts: DemoOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let local = listener.local_addr()?;
    let state = Arc::new(State {
        task_id: std::env::var("BERTH_TASK_ID")
            .ok()
            .filter(|t| !t.is_empty()),
        pid: std::process::id(),
        opts,
        busy_burners: Arc::default(),
    });
    println!(
        "demo-app started name={} version={} listen={} pid={} latency_ms={} cpu_burn_ms={} error_rate={}",
        state.opts.name,
        state.opts.version,
        local,
        state.pid,
        state.opts.latency_ms,
        state.opts.cpu_burn_ms,
        state.opts.error_rate
    );
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(error) => {
                        // Out of descriptors and similar: keep the server up and try again shortly.
                        eprintln!("demo-app accept failed error={error}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let state = state.clone();
                let service = service_fn(move |req| handle(req, state.clone()));
                let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    // A client going away mid-request is its own business.
                    let _ = conn.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    println!(
        "demo-app stopping name={} version={} in_flight_connections={}",
        state.opts.name,
        state.opts.version,
        graceful.count()
    );
    graceful.shutdown().await;
    Ok(())
}

/// Per-request overrides from the query string.
#[derive(Debug, Default)]
struct Overrides {
    burn_ms: Option<u64>,
    sleep_ms: Option<u64>,
    status: Option<StatusCode>,
    chunks: Option<u64>,
    interval_ms: Option<u64>,
}

fn parse_overrides(query: &str) -> Result<Overrides, String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| format!("query: expected key=value pairs, {e}"))?;
    let mut o = Overrides::default();
    let millis = |key: &str, v: &str, max: u64| -> Result<u64, String> {
        match v.parse::<u64>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(format!(
                "{key}: expected an integer from 0 to {max}, found {v:?}"
            )),
        }
    };
    for (key, value) in pairs {
        match key.as_str() {
            "burn_ms" => o.burn_ms = Some(millis(&key, &value, MAX_KNOB_MS)?),
            "sleep_ms" => o.sleep_ms = Some(millis(&key, &value, MAX_KNOB_MS)?),
            "chunks" => o.chunks = Some(millis(&key, &value, MAX_STREAM_CHUNKS)?),
            "interval_ms" => o.interval_ms = Some(millis(&key, &value, MAX_KNOB_MS)?),
            "status" => {
                let status = value
                    .parse::<u16>()
                    .ok()
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .filter(|s| s.as_u16() >= 200);
                match status {
                    Some(s) => o.status = Some(s),
                    None => {
                        return Err(format!(
                            "status: expected an HTTP status 200-999, found {value:?}"
                        ))
                    }
                }
            }
            _ => {} // other parameters are the caller's own; ignore them
        }
    }
    Ok(o)
}

async fn handle(req: Request<Incoming>, state: Arc<State>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let overrides = match parse_overrides(req.uri().query().unwrap_or("")) {
        Ok(o) => o,
        Err(message) => return Ok(text(StatusCode::BAD_REQUEST, format!("{message}\n"))),
    };
    Ok(match path.as_str() {
        "/health" => text(StatusCode::OK, "ok".to_string()),
        "/stream" => stream(&state, &overrides),
        "/busy" => busy(&state, req.uri().query().unwrap_or("")),
        _ => answer(&state, &path, &overrides).await,
    })
}

/// The main answer: apply latency, CPU burn and error injection, then say who we are.
async fn answer(state: &State, path: &str, o: &Overrides) -> Response<Body> {
    let sleep_ms = o.sleep_ms.unwrap_or(state.opts.latency_ms);
    if sleep_ms > 0 {
        tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
    }
    let burn_ms = o.burn_ms.unwrap_or(state.opts.cpu_burn_ms);
    if burn_ms > 0 {
        // The burn runs on the blocking pool so it uses a core without stalling other requests.
        let _ = tokio::task::spawn_blocking(move || {
            burn_cpu(Duration::from_millis(burn_ms), burn_deadline(burn_ms))
        })
        .await;
    }
    let (status, reason) = match o.status {
        Some(s) => (s, "status_parameter"),
        None if state.opts.error_rate > 0.0 && rand::random::<f64>() < state.opts.error_rate => {
            (StatusCode::INTERNAL_SERVER_ERROR, "error_rate")
        }
        None => (StatusCode::OK, ""),
    };
    let mut body = serde_json::json!({
        "name": state.opts.name,
        "version": state.opts.version,
        "path": path,
        "task": state.task_id,
        "pid": state.pid,
    });
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        println!(
            "demo-app status=500 reason={reason} path={path} name={} version={}",
            state.opts.name, state.opts.version
        );
        body["error"] = serde_json::Value::from(format!("injected failure ({reason})"));
    }
    let mut response = Response::new(full(format!("{body}\n")));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `/stream?chunks=N&interval_ms=M`: N JSON lines, M milliseconds apart.
fn stream(state: &State, o: &Overrides) -> Response<Body> {
    let chunks = o.chunks.unwrap_or(5);
    let interval = Duration::from_millis(o.interval_ms.unwrap_or(100));
    let name = state.opts.name.clone();
    let version = state.opts.version.clone();
    let frames = futures_util::stream::unfold(0u64, move |i| {
        let line = serde_json::json!({"chunk": i, "of": chunks, "name": name, "version": version});
        async move {
            if i >= chunks {
                return None;
            }
            if i > 0 {
                tokio::time::sleep(interval).await;
            }
            Some((
                Ok::<_, Infallible>(Frame::data(Bytes::from(format!("{line}\n")))),
                i + 1,
            ))
        }
    });
    let mut response = Response::new(BodyExt::boxed_unsync(StreamBody::new(frames)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

/// `/busy?millicores=M&duration_ms=D`: keeps M thousandths of a core busy (1 to 1000) for D
/// milliseconds in the background, in duty cycles of [`BUSY_WINDOW`]; answers at once.
fn busy(state: &State, query: &str) -> Response<Body> {
    let pairs: Vec<(String, String)> = match serde_urlencoded::from_str(query) {
        Ok(p) => p,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("query: expected key=value pairs, {e}\n"),
            )
        }
    };
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let number = |key: &str, min: u64, max: u64| -> Result<u64, String> {
        let v = get(key).ok_or_else(|| format!("{key}: required, from {min} to {max}"))?;
        match v.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(format!(
                "{key}: expected an integer from {min} to {max}, found {v:?}"
            )),
        }
    };
    let (millicores, duration_ms) = match (
        number("millicores", 1, 1000),
        number("duration_ms", 1, MAX_KNOB_MS),
    ) {
        (Ok(m), Ok(d)) => (m, d),
        (m, d) => {
            let errors: Vec<String> = [m.err(), d.err()].into_iter().flatten().collect();
            return text(StatusCode::BAD_REQUEST, format!("{}\n", errors.join("; ")));
        }
    };
    let burners = state.busy_burners.clone();
    let running = burners.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if running >= MAX_BUSY_BURNERS {
        burners.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        return text(
            StatusCode::TOO_MANY_REQUESTS,
            format!("busy: at most {MAX_BUSY_BURNERS} burners run at once\n"),
        );
    }
    let spawned = std::thread::Builder::new()
        .name("demo-busy".into())
        .spawn(move || {
            let end = Instant::now() + Duration::from_millis(duration_ms);
            let share = BUSY_WINDOW.mul_f64(millicores as f64 / 1000.0);
            while Instant::now() < end {
                let window_end = (Instant::now() + BUSY_WINDOW).min(end);
                burn_cpu(share, window_end);
                if let Some(rest) = window_end.checked_duration_since(Instant::now()) {
                    std::thread::sleep(rest);
                }
            }
            burners.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        state
            .busy_burners
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("busy: cannot start a burner: {e}\n"),
        );
    }
    println!(
        "demo-app busy millicores={millicores} duration_ms={duration_ms} name={} version={}",
        state.opts.name, state.opts.version
    );
    let body = serde_json::json!({
        "name": state.opts.name,
        "busy": {"millicores": millicores, "duration_ms": duration_ms},
        "task": state.task_id,
    });
    let mut response = Response::new(full(format!("{body}\n")));
    *response.status_mut() = StatusCode::ACCEPTED;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The latest a `burn_ms` burn may end, however starved of CPU the machine is.
fn burn_deadline(burn_ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(burn_ms.saturating_mul(20).min(MAX_KNOB_MS))
}

/// CPU time this thread has used.
fn thread_cpu_time() -> Option<Duration> {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).ok()?;
    Some(Duration::new(
        u64::try_from(t.tv_sec()).ok()?,
        u32::try_from(t.tv_nsec()).ok()?,
    ))
}

/// Spins until this thread used `cpu` of CPU time (not wall time: a busy machine makes the burn
/// take longer, never cost less CPU) or `deadline` passes.
fn burn_cpu(cpu: Duration, deadline: Instant) {
    let start = thread_cpu_time();
    let wall_start = Instant::now();
    let used = || match (start, thread_cpu_time()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        // No thread clock: fall back to wall time.
        _ => wall_start.elapsed(),
    };
    let mut x: u64 = 1;
    while used() < cpu && Instant::now() < deadline {
        for _ in 0..10_000 {
            x = std::hint::black_box(
                x.wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407),
            );
        }
    }
}

fn full(body: String) -> Body {
    BodyExt::boxed_unsync(Full::new(Bytes::from(body)))
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
