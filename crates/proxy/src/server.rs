//! Listeners and client connections: binding, the accept loop, choosing the protocol (HTTP/2
//! by prior knowledge or TLS ALPN goes to hyper, HTTP/1.1 to the proxy's own codec in
//! [`crate::h1`]), the listener's idle timeout, and graceful close when a listener is removed.

use crate::access_log::AccessLog;
use crate::body::ReqBody;
use crate::forward::{handle, ClientRequest, Conn};
use crate::h1::serve::{ClientWriter, ConnState};
use crate::h1::{ClientRead, ClientReader, Limits};
use crate::pool::Connector;
use crate::snapshot::Listener;
use arc_swap::ArcSwap;
use http::HeaderValue;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

/// Idle target connections are closed after this (below common keep-alive timeouts, 60 s and
/// more, so the proxy closes first and never sends on a connection the target is closing).
pub(crate) const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(55);

/// State shared by every connection.
pub(crate) struct Shared {
    /// Opens connections to targets (each target pools its idle ones).
    pub connector: Connector,
    /// Idle target connections kept per target.
    pub max_idle_per_target: usize,
    /// Idle target connections older than this are closed.
    pub pool_idle_timeout: Duration,
    /// Largest response head accepted from a target (502 beyond it).
    pub max_response_head: usize,
    pub access_log: Option<AccessLog>,
    /// HTTP/1.1 request head limits.
    pub limits: Limits,
    /// HTTP/2 server settings.
    pub h2: http2::Builder<TokioExecutor>,
    /// Open client connections (for shutdown).
    pub open_connections: AtomicUsize,
}

impl Shared {
    /// Builds the client pool and the server settings.
    pub fn new(tuning: &crate::Tuning, access_log: Option<AccessLog>) -> Shared {
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .max_header_list_size(tuning.max_header_bytes.min(u32::MAX as usize) as u32)
            .max_concurrent_streams(256);
        Shared {
            connector: Connector::new(tuning),
            max_idle_per_target: tuning.max_idle_per_target,
            pool_idle_timeout: POOL_IDLE_TIMEOUT,
            max_response_head: tuning.max_header_bytes.max(8192) * 2,
            access_log,
            limits: Limits {
                max_head: tuning.max_header_bytes.max(1024),
                max_headers: tuning.max_headers.max(1),
            },
            h2,
            open_connections: AtomicUsize::new(0),
        }
    }
}

/// A bound listener whose routing table can be swapped.
pub(crate) struct Slot {
    pub arn: String,
    pub local_addr: SocketAddr,
    pub routes: Arc<ArcSwap<Listener>>,
    /// Sending `true` stops accepting and closes connections once their requests end.
    pub stop: watch::Sender<bool>,
}

/// Binds a listening socket for `bind` (e.g. `127.0.0.1:8080`).
pub(crate) fn bind_socket(bind: &str) -> io::Result<TcpListener> {
    let addr: SocketAddr = bind
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad bind address"))?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// Starts accepting on a bound socket with `listener`'s routing.
pub(crate) fn start(
    shared: &Arc<Shared>,
    tcp: TcpListener,
    listener: Arc<Listener>,
) -> io::Result<Slot> {
    let local_addr = tcp.local_addr()?;
    let (stop, stop_rx) = watch::channel(false);
    let routes = Arc::new(ArcSwap::new(listener.clone()));
    tokio::spawn(accept_loop(tcp, shared.clone(), routes.clone(), stop_rx));
    tracing::info!(listener = %listener.arn, address = %local_addr, "listening");
    Ok(Slot {
        arn: listener.arn.clone(),
        local_addr,
        routes,
        stop,
    })
}

async fn accept_loop(
    tcp: TcpListener,
    shared: Arc<Shared>,
    routes: Arc<ArcSwap<Listener>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            accepted = tcp.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(serve_connection(stream, peer, shared.clone(), routes.clone(), stop.clone()));
                }
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
}

/// A client that has not finished its TLS handshake by then is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    routes: Arc<ArcSwap<Listener>>,
    stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let listener = routes.load_full();
    let lb = listener.lb.metrics.clone();
    let idle_timeout = listener.idle_timeout;
    let tls = listener.tls.clone();
    drop(listener);
    lb.new_connections.inc();
    lb.active_connections.fetch_add(1, Relaxed);
    shared.open_connections.fetch_add(1, Relaxed);

    let peer_ip = HeaderValue::from_str(&peer.ip().to_canonical().to_string())
        .unwrap_or(HeaderValue::from_static("-"));
    let conn = Arc::new(Conn {
        shared: shared.clone(),
        listener: routes,
        peer,
        peer_ip,
    });
    let idle = Idle {
        activity: Arc::new(AtomicU64::new(0)),
        timeout: idle_timeout,
        peer,
    };
    // The TLS and HTTP/2 paths are boxed: a connection's task is as large as its largest path,
    // and these hold far more state than a plain HTTP/1.1 connection needs.
    match tls {
        None => serve_plain(stream, conn, &shared, stop, idle).await,
        Some(config) => Box::pin(serve_tls(stream, config, conn, &shared, stop, idle)).await,
    }
    lb.active_connections.fetch_sub(1, Relaxed);
    shared.open_connections.fetch_sub(1, Relaxed);
}

/// A TLS connection: HTTP/2 when ALPN chose h2, else HTTP/1.1.
async fn serve_tls(
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    conn: Arc<Conn>,
    shared: &Shared,
    stop: watch::Receiver<bool>,
    idle: Idle,
) {
    let peer = idle.peer;
    let tracked = Tracked {
        inner: stream,
        activity: idle.activity.clone(),
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tracked)).await {
        Ok(Ok(tls)) => {
            if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                drive_h2(TokioIo::new(tls), conn, shared, stop, idle).await
            } else {
                let (r, w) = tokio::io::split(tls);
                let reader = ClientReader::new(Box::new(r));
                drive_h1(reader, Box::new(w), conn, shared, stop, idle).await
            }
        }
        Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "tls handshake failed"),
        Err(_) => tracing::debug!(peer = %peer, "tls handshake timed out"),
    }
}

/// The client connection preface of HTTP/2 with prior knowledge.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A plain connection: HTTP/2 when it starts with the HTTP/2 preface, else HTTP/1.1.
async fn serve_plain(
    stream: TcpStream,
    conn: Arc<Conn>,
    shared: &Shared,
    mut stop: watch::Receiver<bool>,
    idle: Idle,
) {
    if *stop.borrow() {
        return;
    }
    let h2 = tokio::select! {
        h2 = starts_with_h2_preface(&stream) => match h2 {
            Ok(h2) => h2,
            Err(_) => return,
        },
        _ = tokio::time::sleep(idle.timeout) => return,
        _ = stop.changed() => return,
    };
    if h2 {
        let tracked = Tracked {
            inner: stream,
            activity: idle.activity.clone(),
        };
        Box::pin(drive_h2(TokioIo::new(tracked), conn, shared, stop, idle)).await
    } else {
        let (r, w) = stream.into_split();
        let reader = ClientReader::new(Box::new(Tracked {
            inner: r,
            activity: idle.activity.clone(),
        }));
        let writer = Box::new(Tracked {
            inner: w,
            activity: idle.activity.clone(),
        });
        drive_h1(reader, writer, conn, shared, stop, idle).await
    }
}

/// Whether the first bytes the client sends are the HTTP/2 preface (looked at, not read).
/// `false` when they differ from it, or the client closes.
async fn starts_with_h2_preface(stream: &TcpStream) -> io::Result<bool> {
    let mut buf = [0u8; 24];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 || buf[..n] != H2_PREFACE[..n] {
            return Ok(false);
        }
        if n == H2_PREFACE.len() {
            return Ok(true);
        }
        // Part of the preface: wait for the rest (the socket stays readable, so poll slowly).
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What the idle timeout of a connection watches.
struct Idle {
    /// Bumped by every read and write on the socket.
    activity: Arc<AtomicU64>,
    timeout: Duration,
    peer: SocketAddr,
}

/// Drives a connection future until it ends, idles out or the listener stops. `close` asks the
/// connection to close after the requests under way (`true`: it may be dropped at once). Idle
/// timeout: closed when no byte moved for `idle.timeout` (checked in quarters); a request
/// stuck without traffic for two idle periods is dropped.
async fn supervise<F: Future>(
    mut connection: Pin<&mut F>,
    close: impl Fn(Pin<&mut F>) -> bool,
    mut stop: watch::Receiver<bool>,
    idle: Idle,
) {
    let tick = (idle.timeout / 4).max(Duration::from_millis(10));
    let mut last_activity = 0;
    let mut quiet_ticks = 0u32;
    let mut closing = false;
    if *stop.borrow() {
        closing = true;
        if close(connection.as_mut()) {
            return;
        }
    }
    // The timer and the stop signal register their wake-ups once and are looked at only when
    // they fired, so a wake-up of the connection (several per request) costs one poll of it.
    let mut stop_watch = stop.clone();
    let changed = stop_watch.changed();
    tokio::pin!(changed);
    let sleep = tokio::time::sleep(tick);
    tokio::pin!(sleep);
    let mut registered = false;
    std::future::poll_fn(|cx| {
        if connection.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        if !registered {
            registered = true;
            let _ = sleep.as_mut().poll(cx);
            let _ = changed.as_mut().poll(cx);
        }
        if !closing && !matches!(stop.has_changed(), Ok(false)) {
            let stopping = stop.has_changed().is_err() || *stop.borrow_and_update();
            if stopping {
                closing = true;
                if close(connection.as_mut()) {
                    return Poll::Ready(());
                }
            }
        }
        while sleep.is_elapsed() {
            let now = idle.activity.load(Relaxed);
            if now != last_activity {
                last_activity = now;
                quiet_ticks = 0;
            } else {
                quiet_ticks += 1;
                if quiet_ticks >= 4 && !closing {
                    closing = true;
                    if close(connection.as_mut()) {
                        return Poll::Ready(());
                    }
                } else if quiet_ticks >= 8 {
                    // A request stuck without traffic for two idle periods.
                    tracing::debug!(peer = %idle.peer, "closing a connection without traffic");
                    return Poll::Ready(());
                }
            }
            sleep.as_mut().reset(tokio::time::Instant::now() + tick);
            let _ = sleep.as_mut().poll(cx);
        }
        Poll::Pending
    })
    .await
}

/// Serves HTTP/2 (hyper) on one client connection until it ends, idles out or the listener
/// stops.
async fn drive_h2<I>(
    io: TokioIo<I>,
    conn: Arc<Conn>,
    shared: &Shared,
    stop: watch::Receiver<bool>,
    idle: Idle,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let conn = conn.clone();
        async move {
            let mut resp = handle(
                &conn,
                ClientRequest::from_http(req.map(ReqBody::Hyper)),
                None,
            )
            .await;
            // hyper sends one map: the target's fields, then the proxy's own.
            if let Some(target) = resp.body_mut().take_target_head() {
                let mut map = target.to_map();
                for (name, value) in resp.headers() {
                    map.append(name, value.clone());
                }
                *resp.headers_mut() = map;
            }
            Ok::<_, std::convert::Infallible>(resp)
        }
    });
    let connection = shared.h2.serve_connection(io, service);
    tokio::pin!(connection);
    let close = |c: Pin<&mut http2::Connection<_, _, _>>| {
        c.graceful_shutdown();
        false
    };
    supervise(connection.as_mut(), close, stop, idle).await;
}

/// Serves HTTP/1.1 (the proxy's own codec) on one client connection until it ends, idles out
/// or the listener stops.
async fn drive_h1(
    reader: ClientReader,
    writer: ClientWriter,
    conn: Arc<Conn>,
    shared: &Shared,
    stop: watch::Receiver<bool>,
    idle: Idle,
) {
    let state = ConnState::default();
    let connection = crate::h1::serve::serve(reader, writer, conn, shared.limits, &state);
    tokio::pin!(connection);
    let close = |_: Pin<&mut _>| {
        state.closing.store(true, Relaxed);
        state.idle.load(Relaxed)
    };
    supervise(connection.as_mut(), close, stop, idle).await;
}

/// A socket (or one half of it) that counts successful reads and writes (for the idle
/// timeout).
struct Tracked<T> {
    inner: T,
    activity: Arc<AtomicU64>,
}

impl<T> Tracked<T> {
    #[inline]
    fn touch(&self) {
        // The connection's task is the only writer, so load+store is enough.
        self.activity
            .store(self.activity.load(Relaxed).wrapping_add(1), Relaxed);
    }
}

impl ClientRead for Tracked<tokio::net::tcp::OwnedReadHalf> {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.as_ref().poll_read_ready(cx)
    }
}

impl<T: AsyncRead + AsyncWrite + Send> ClientRead for tokio::io::ReadHalf<T> {}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            if n > 0 {
                this.touch();
            }
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            if n > 0 {
                this.touch();
            }
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
