//! Keep-alive HTTP/1.1 connections to targets. Each target keeps a LIFO stack of idle
//! [`Upstream`] connections: the request path checks one out, and the response body checks it
//! back in when the exchange ends, inline (no task per connection or request, no keyed pool
//! map). Idle connections expire after an idle timeout; at most `max_idle` are kept per target.

use crate::targets::Target;
use crate::upstream::Upstream;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

struct Idle {
    conn: Upstream,
    since: Instant,
}

/// A target's idle keep-alive connections, most recently used on top.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<Vec<Idle>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("idle", &self.idle_count())
            .finish()
    }
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, Vec<Idle>> {
        // The stack stays consistent even if a holder panicked (push/pop only).
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently used idle connection that is still open and idle for less than
    /// `max_age`; stale ones met on the way are closed.
    pub(crate) fn checkout(&self, max_age: Duration) -> Option<Upstream> {
        loop {
            let idle = self.lock().pop()?;
            if idle.conn.is_reusable() && idle.since.elapsed() < max_age {
                return Some(idle.conn);
            }
        }
    }

    /// Returns a connection whose last exchange ended; closed when the stack is full.
    pub(crate) fn checkin(&self, mut conn: Upstream, max_idle: usize) {
        conn.release_buffers();
        let since = Instant::now();
        let mut idle = self.lock();
        if idle.len() < max_idle {
            idle.push(Idle { conn, since });
        }
    }

    /// Closes idle connections older than `max_age` or closed by the target; returns how many
    /// stay.
    pub(crate) fn evict(&self, max_age: Duration) -> usize {
        let stale: Vec<Idle> = {
            let mut idle = self.lock();
            let (keep, stale) = std::mem::take(&mut *idle)
                .into_iter()
                .partition(|i| i.conn.is_reusable() && i.since.elapsed() < max_age);
            *idle = keep;
            stale
        };
        drop(stale);
        self.idle_count()
    }

    /// Number of idle connections.
    pub fn idle_count(&self) -> usize {
        self.lock().len()
    }
}

/// Why no connection to a target could be made (the target counts as refusing).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("connecting to {target}: {source}")]
    Io {
        target: String,
        source: std::io::Error,
    },
    #[error("connecting to {target}: no answer within {timeout:?}")]
    Timeout { target: String, timeout: Duration },
}

/// Opens new connections to targets.
pub(crate) struct Connector {
    pub connect_timeout: Duration,
}

impl Connector {
    /// Settings for target connections.
    pub fn new(tuning: &crate::Tuning) -> Connector {
        Connector {
            connect_timeout: tuning.connect_timeout,
        }
    }

    /// A new connection to `target`.
    pub async fn connect(&self, target: &Target) -> Result<Upstream, ConnectError> {
        let label = || target.label().to_string();
        let connecting = async {
            match target.addr {
                Some(addr) => TcpStream::connect(addr).await,
                None => TcpStream::connect((target.id.as_str(), target.port)).await,
            }
        };
        let stream = match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => {
                return Err(ConnectError::Io {
                    target: label(),
                    source,
                })
            }
            Err(_) => {
                return Err(ConnectError::Timeout {
                    target: label(),
                    timeout: self.connect_timeout,
                })
            }
        };
        // Requests and responses are written whole; never wait for ACKs (Nagle).
        let _ = stream.set_nodelay(true);
        Ok(Upstream::new(stream))
    }
}

/// A connection to `target`: the most recently used idle one that is still open, else a new
/// one. The flag says whether it was reused.
pub(crate) async fn connection(
    connector: &Connector,
    target: &Target,
    max_age: Duration,
) -> Result<(Upstream, bool), ConnectError> {
    if let Some(conn) = target.pool.checkout(max_age) {
        return Ok((conn, true));
    }
    // Boxed: the rare path's state stays out of every request's future.
    Box::pin(connector.connect(target))
        .await
        .map(|c| (c, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::{Exchange, UpstreamBody};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A target that answers every request on a connection with 200 "ok" (keep-alive).
    async fn keep_alive_target() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut have = Vec::new();
                    loop {
                        let Ok(n) = s.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        have.extend_from_slice(&buf[..n]);
                        while let Some(end) = have.windows(4).position(|w| w == b"\r\n\r\n") {
                            have.drain(..end + 4);
                            let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                            if s.write_all(resp).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (addr, task)
    }

    fn target(addr: std::net::SocketAddr) -> Target {
        Target::new(
            "tg",
            &addr.ip().to_string(),
            addr.port(),
            false,
            Instant::now(),
        )
        .unwrap()
    }

    /// One GET on `conn`: the status, and the connection when it can be reused.
    async fn get(mut conn: Upstream) -> (u16, Option<Upstream>) {
        conn.wbuf.clear();
        conn.wbuf
            .extend_from_slice(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n");
        let mut ex = Exchange::new(conn, None, false);
        let head = std::future::poll_fn(|cx| ex.poll_head(cx, &http::Method::GET, 65536))
            .await
            .unwrap();
        let mut body = UpstreamBody::new(ex, &head);
        while let Some(frame) = std::future::poll_fn(|cx| body.poll_frame(cx)).await {
            frame.unwrap();
        }
        (head.status.as_u16(), body.reusable())
    }

    #[tokio::test]
    async fn connections_are_reused_capped_and_expired() {
        let (addr, _task) = keep_alive_target().await;
        let t = target(addr);
        let connector = Connector::new(&crate::Tuning::default());
        let long = Duration::from_secs(60);

        let (a, reused) = connection(&connector, &t, long).await.unwrap();
        assert!(!reused, "empty pool: new connection");
        let (status, a) = get(a).await;
        assert_eq!(status, 200);
        let a = a.expect("a keep-alive response leaves the connection reusable");
        let (b, _) = connection(&connector, &t, long).await.unwrap();
        t.pool.checkin(a, 1);
        t.pool.checkin(b, 1);
        assert_eq!(t.pool.idle_count(), 1, "max_idle caps the stack");

        let (again, reused) = connection(&connector, &t, long).await.unwrap();
        assert!(reused, "the idle connection is taken");
        let (status, again) = get(again).await;
        assert_eq!(status, 200, "and still works");
        t.pool.checkin(again.unwrap(), 8);

        assert_eq!(t.pool.evict(long), 1, "fresh connections stay");
        assert_eq!(t.pool.evict(Duration::ZERO), 0, "expired ones go");
        assert!(t.pool.checkout(long).is_none());
    }

    #[tokio::test]
    async fn refused_and_closed_connections_are_reported_and_skipped() {
        // A port nobody listens on: bind, note the port, close.
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let t = target(addr);
        let connector = Connector::new(&crate::Tuning::default());
        let err = connection(&connector, &t, Duration::from_secs(1))
            .await
            .expect_err("nothing listens");
        assert!(matches!(err, ConnectError::Io { .. }), "{err:?}");

        // A connection the target closes is dropped from the pool, not handed out.
        let closer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let t = target(closer.local_addr().unwrap());
        let (conn, _) = connection(&connector, &t, Duration::from_secs(60))
            .await
            .unwrap();
        drop(closer.accept().await.unwrap());
        for _ in 0..200 {
            if !conn.is_reusable() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!conn.is_reusable(), "the target closed it");
        t.pool.checkin(conn, 8);
        assert_eq!(t.pool.idle_count(), 1, "checked in");
        assert!(
            t.pool.checkout(Duration::from_secs(60)).is_none(),
            "a closed connection is not handed out"
        );
        assert_eq!(t.pool.idle_count(), 0, "and is dropped");
    }
}
