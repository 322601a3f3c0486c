//! Listeners and client connections: binding, the accept loop, HTTP/1.1 + HTTP/2 (auto) serving
//! with upgrades, the listener's idle timeout, and graceful close when a listener is removed.

use crate::access_log::AccessLog;
use crate::forward::{handle, Conn};
use crate::pool::Connector;
use crate::snapshot::Listener;
use arc_swap::ArcSwap;
use http::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
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

/// hyper's own limit on request headers (431 beyond it).
const DEFAULT_MAX_HEADERS: usize = 100;

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
    pub server: auto::Builder<TokioExecutor>,
    /// Open client connections (for shutdown).
    pub open_connections: AtomicUsize,
}

impl Shared {
    /// Builds the client pool and the server settings.
    pub fn new(tuning: &crate::Tuning, access_log: Option<AccessLog>) -> Shared {
        let mut server = auto::Builder::new(TokioExecutor::new());
        server
            .http1()
            .keep_alive(true)
            .max_buf_size(tuning.max_header_bytes.max(8192));
        // hyper parses up to 100 headers in a stack array; a configured limit (even the same
        // 100) makes it allocate and fill a buffer per request.
        if tuning.max_headers != DEFAULT_MAX_HEADERS {
            server.http1().max_headers(tuning.max_headers);
        }
        server
            .http2()
            .max_header_list_size(tuning.max_header_bytes.min(u32::MAX as usize) as u32)
            .max_concurrent_streams(256);
        Shared {
            connector: Connector::new(tuning),
            max_idle_per_target: tuning.max_idle_per_target,
            pool_idle_timeout: POOL_IDLE_TIMEOUT,
            max_response_head: tuning.max_header_bytes.max(8192) * 2,
            access_log,
            server,
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

    let activity = Arc::new(AtomicU64::new(0));
    let tracked = Tracked {
        inner: stream,
        activity: activity.clone(),
    };
    let peer_ip = HeaderValue::from_str(&peer.ip().to_canonical().to_string())
        .unwrap_or(HeaderValue::from_static("-"));
    let conn = Arc::new(Conn {
        shared: shared.clone(),
        listener: routes,
        peer,
        peer_ip,
    });
    let idle = Idle {
        activity,
        timeout: idle_timeout,
        peer,
    };
    match tls {
        None => drive(TokioIo::new(tracked), conn, &shared, stop, idle).await,
        Some(config) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tracked)).await {
                Ok(Ok(tls)) => drive(TokioIo::new(tls), conn, &shared, stop, idle).await,
                Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "tls handshake failed"),
                Err(_) => tracing::debug!(peer = %peer, "tls handshake timed out"),
            }
        }
    }
    lb.active_connections.fetch_sub(1, Relaxed);
    shared.open_connections.fetch_sub(1, Relaxed);
}

/// What the idle timeout of a connection watches.
struct Idle {
    /// Bumped by every read and write on the socket.
    activity: Arc<AtomicU64>,
    timeout: Duration,
    peer: SocketAddr,
}

/// Serves HTTP on one client connection (plain or TLS) until it ends, idles out or the
/// listener stops.
async fn drive<I>(
    io: TokioIo<I>,
    conn: Arc<Conn>,
    shared: &Shared,
    mut stop: watch::Receiver<bool>,
    idle: Idle,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Idle {
        activity,
        timeout: idle_timeout,
        peer,
    } = idle;
    let service = service_fn(move |req| handle(conn.clone(), req));
    let connection = shared.server.serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);

    // Idle timeout: closed when no byte moved for `idle_timeout` (checked in quarters).
    let tick = (idle_timeout / 4).max(Duration::from_millis(10));
    let mut last_activity = 0;
    let mut quiet_ticks = 0u32;
    let mut closing = *stop.borrow();
    if closing {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(peer = %peer, error = %e, "client connection ended with an error");
                }
                break;
            }
            _ = tokio::time::sleep(tick) => {
                let now = activity.load(Relaxed);
                if now != last_activity {
                    last_activity = now;
                    quiet_ticks = 0;
                    continue;
                }
                quiet_ticks += 1;
                if quiet_ticks >= 4 && !closing {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                } else if quiet_ticks >= 8 {
                    break; // a request stuck without traffic for two idle periods
                }
            }
            changed = stop.changed(), if !closing => {
                if changed.is_err() || *stop.borrow() {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// A TCP stream that counts successful reads and writes (for the idle timeout).
struct Tracked {
    inner: TcpStream,
    activity: Arc<AtomicU64>,
}

impl Tracked {
    #[inline]
    fn touch(&self) {
        // One writer at a time (the connection's task), so load+store is enough.
        self.activity
            .store(self.activity.load(Relaxed).wrapping_add(1), Relaxed);
    }
}

impl AsyncRead for Tracked {
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

impl AsyncWrite for Tracked {
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
