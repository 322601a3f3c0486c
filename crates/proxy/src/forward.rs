//! The request path: route a client request by the listener's rules, then answer a fixed
//! response or redirect, or forward it to a target (retrying once on another target when the
//! first could not be reached), streaming both bodies and counting metrics.

use crate::access_log::Record;
use crate::body::{Checkin, ReqBody, RespBody};
use crate::health::mark_failed;
use crate::pool;
use crate::routing::{Action, Fixed, Forward, Redirect, RedirectInput, RequestView, TARGET_COOKIE};
use crate::server::Shared;
use crate::snapshot::Listener;
use crate::targets::{cookie, parse_key, InFlight};
use arc_swap::ArcSwap;
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{PathAndQuery, Uri};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::{Body, Incoming};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const X_AMZN_TRACE_ID: HeaderName = HeaderName::from_static("x-amzn-trace-id");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// One client connection's context, shared by its requests.
pub(crate) struct Conn {
    pub shared: Arc<Shared>,
    /// The listener's routing table, swapped when a snapshot applies.
    pub listener: Arc<ArcSwap<Listener>>,
    pub peer: SocketAddr,
    /// The peer's IP as a header value (X-Forwarded-For), formatted once per connection.
    pub peer_ip: HeaderValue,
}

/// Serves one request.
pub(crate) async fn handle(
    conn: Arc<Conn>,
    req: Request<Incoming>,
) -> Result<Response<RespBody>, Infallible> {
    let received = Instant::now();
    let listener = conn.listener.load_full();
    listener.lb.metrics.requests.inc();
    let view = RequestView::new(&req, conn.peer.ip());
    let (action, priority) = listener.routes.select(&view);
    let mut log = conn
        .shared
        .access_log
        .as_ref()
        .map(|_| Box::new(Record::start(&req, &conn, &listener, priority)));
    let resp = match action {
        Action::Fixed(f) => fixed(f),
        Action::Redirect(r) => {
            let resp = redirect(r, &view, &listener);
            if let Some(log) = &mut log {
                log.redirect_url = resp.headers().get(header::LOCATION).cloned();
            }
            resp
        }
        Action::Forward(f) => {
            let f = f.clone();
            // Boxed per request: hyper keeps a request future per client connection for the
            // connection's life, so an idle keep-alive connection holds only this small one.
            Box::pin(forward(&conn, &listener, &f, req, &mut log)).await
        }
    };
    if let Some(mut log) = log {
        log.action = action_name(action);
        log.finish(&resp, received);
        if let Some(al) = &conn.shared.access_log {
            al.send(*log);
        }
    }
    Ok(resp)
}

fn action_name(a: &Action) -> &'static str {
    a.name()
}

fn fixed(f: &Fixed) -> Response<RespBody> {
    let mut resp = Response::new(RespBody::full(f.body.clone()));
    *resp.status_mut() = f.status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, f.content_type.clone());
    resp
}

fn redirect(r: &Redirect, view: &RequestView<'_>, l: &Listener) -> Response<RespBody> {
    let input = RedirectInput {
        protocol: l.protocol,
        host: view.host.unwrap_or(""),
        port: l.port,
        path: view.path,
        query: view.query.unwrap_or(""),
    };
    let location = r.location(&input);
    let mut resp = Response::new(RespBody::full(Bytes::new()));
    *resp.status_mut() = r.status;
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => *resp.status_mut() = StatusCode::BAD_REQUEST,
    }
    resp
}

/// A response the load balancer generates itself (ALB's `HTTPCode_ELB_*`).
pub(crate) fn elb_response(l: &Listener, status: StatusCode) -> Response<RespBody> {
    l.lb.metrics.record_elb(status.as_u16());
    let body: &'static str = match status.as_u16() {
        502 => "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n",
        503 => "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n</body>\r\n</html>\r\n",
        504 => "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n",
        _ => "<html><body>error</body></html>\r\n",
    };
    let mut resp = Response::new(RespBody::full(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    resp
}

/// A bodiless, idempotent request, kept so it can go to another target when the first one
/// closed or reset the connection without answering.
struct Replay {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl Replay {
    fn request(self) -> Request<ReqBody> {
        let mut req = Request::new(ReqBody::Empty);
        *req.method_mut() = self.method;
        *req.uri_mut() = self.uri;
        *req.headers_mut() = self.headers;
        req
    }
}

/// How often a request the target never received (its pooled connection was closing) is sent
/// again on another connection to the same target.
const MAX_UNSENT_RETRIES: u32 = 3;

async fn forward(
    conn: &Conn,
    listener: &Listener,
    fwd: &Forward,
    mut req: Request<Incoming>,
    log: &mut Option<Box<Record>>,
) -> Response<RespBody> {
    let Some((group, group_cookie)) = fwd.choose(req.headers()) else {
        return elb_response(listener, StatusCode::SERVICE_UNAVAILABLE);
    };
    if let Some(log) = log {
        log.target_group = Some(group.clone());
    }
    let sticky = group
        .stickiness
        .and_then(|_| cookie(req.headers(), TARGET_COOKIE))
        .and_then(parse_key);
    let Some((mut index, first)) = group.pick(sticky, None) else {
        if let Some(log) = log {
            log.error_reason = Some("NoHealthyTargets");
        }
        return elb_response(listener, StatusCode::SERVICE_UNAVAILABLE);
    };
    let mut target = first.clone();

    let upgrade = is_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let bodiless = !upgrade && req.body().is_end_stream();
    let (mut parts, body) = req.into_parts();
    let upgrade_value = if upgrade {
        parts.headers.get(header::UPGRADE).cloned()
    } else {
        None
    };
    prepare_request_headers(
        &mut parts.headers,
        conn,
        listener,
        parts.uri.authority().map(|a| a.as_str()),
    );
    if let Some(v) = upgrade_value {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts.headers.insert(header::UPGRADE, v);
    }
    if !parts.headers.contains_key(header::HOST) {
        parts
            .headers
            .insert(header::HOST, target.host_header.clone());
    }
    if let Some(log) = log {
        log.trace_id = parts.headers.get(X_AMZN_TRACE_ID).cloned();
    }
    origin_form(&mut parts.uri);
    parts.version = Version::HTTP_11;
    parts.extensions = http::Extensions::new();
    // Only a request that can be replayed keeps a copy of its head.
    let mut replay = (bodiless && is_idempotent(&parts.method)).then(|| Replay {
        method: parts.method.clone(),
        uri: parts.uri.clone(),
        headers: parts.headers.clone(),
    });
    let mut out = Request::from_parts(
        parts,
        if bodiless {
            ReqBody::Empty
        } else {
            ReqBody::Stream(body)
        },
    );
    // Whether the request already moved to a second target (it does so at most once).
    let mut moved_on = false;
    let mut unsent_retries = 0;

    loop {
        let guard = InFlight::new(target.clone());
        let shared = &conn.shared;
        let mut sender = match pool::connection(
            &shared.connector,
            &target,
            shared.pool_idle_timeout,
        )
        .await
        {
            Ok((sender, _reused)) => sender,
            Err(e) => {
                drop(guard);
                // Passive health check: out of rotation until active checks bring it back.
                target.update_health(mark_failed);
                tracing::debug!(target = target.label(), error = %e, "target refused the connection");
                // Nothing was sent yet: any request may go to another target.
                if !moved_on {
                    if let Some((i, t)) = group.pick(None, Some(&target)) {
                        moved_on = true;
                        index = i;
                        target = t.clone();
                        continue;
                    }
                }
                if let Some(log) = log {
                    log.target = Some(target.clone());
                    log.error_reason = Some("TargetConnectionError");
                }
                return elb_response(listener, StatusCode::BAD_GATEWAY);
            }
        };
        let sent = Instant::now();
        let result =
            tokio::time::timeout(group.response_timeout, sender.try_send_request(out)).await;
        let err = match result {
            Ok(Ok(mut resp)) => {
                let target_time = sent.elapsed();
                let status = resp.status();
                group.metrics.requests.inc();
                group.metrics.codes.record(status.as_u16());
                group.metrics.response_time.record(target_time);
                let lbm = &listener.lb.metrics;
                lbm.codes.record(status.as_u16());
                lbm.response_time.record(target_time);
                if let Some(log) = log {
                    log.target = Some(target.clone());
                    log.target_status = Some(status.as_u16());
                    log.target_time = Some(target_time);
                }
                if status == StatusCode::SWITCHING_PROTOCOLS {
                    let Some(client_upgrade) = client_upgrade else {
                        return elb_response(listener, StatusCode::BAD_GATEWAY);
                    };
                    let target_upgrade = hyper::upgrade::on(&mut resp);
                    tokio::spawn(async move {
                        let (Ok(client), Ok(upstream)) =
                            tokio::join!(client_upgrade, target_upgrade)
                        else {
                            return;
                        };
                        let (mut client, mut upstream) =
                            (TokioIo::new(client), TokioIo::new(upstream));
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                        drop(guard);
                    });
                    let (parts, _) = resp.into_parts();
                    return Response::from_parts(parts, RespBody::full(Bytes::new()));
                }
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                if let Some(c) = group_cookie {
                    parts.headers.append(header::SET_COOKIE, c);
                }
                if let Some(c) = group.sticky_cookies.get(index) {
                    parts.headers.append(header::SET_COOKIE, c.clone());
                }
                let checkin = Checkin {
                    sender,
                    max_idle: shared.max_idle_per_target,
                    bodiless,
                };
                return Response::from_parts(parts, RespBody::stream(body, guard, Some(checkin)));
            }
            Ok(Err(mut e)) => match e.take_message() {
                // Never written: the pooled connection was closing. Another connection to the
                // same target gets it.
                Some(req) if unsent_retries < MAX_UNSENT_RETRIES => {
                    unsent_retries += 1;
                    out = req;
                    continue;
                }
                _ => e.into_error(),
            },
            Err(_elapsed) => {
                if let Some(log) = log {
                    log.target = Some(target.clone());
                    log.error_reason = Some("TargetResponseTimeout");
                }
                return elb_response(listener, StatusCode::GATEWAY_TIMEOUT);
            }
        };
        drop(guard);
        let next = match &replay {
            Some(_) if !moved_on && not_answered(&err) => group.pick(None, Some(&target)),
            _ => None,
        };
        match (next, replay.take()) {
            (Some((i, t)), Some(r)) => {
                tracing::debug!(target = target.label(), error = %err, "target did not answer; trying another");
                moved_on = true;
                index = i;
                target = t.clone();
                out = r.request();
            }
            _ => {
                tracing::debug!(target = target.label(), error = %err, "forwarding failed");
                if let Some(log) = log {
                    log.target = Some(target.clone());
                    log.error_reason = Some("TargetResponseError");
                }
                return elb_response(listener, StatusCode::BAD_GATEWAY);
            }
        }
    }
}

/// Reduces an absolute-form or HTTP/2 URI to the origin form (`/path?query`) sent to targets.
fn origin_form(uri: &mut Uri) {
    if uri.scheme().is_none() && uri.authority().is_none() {
        return;
    }
    let pq = uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    *uri = Uri::from(pq);
}

fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// Whether the error means the target never answered (connection closed or reset before a
/// response), so an idempotent bodiless request may go to another target.
fn not_answered(e: &(dyn StdError + 'static)) -> bool {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_canceled() {
                return true;
            }
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | ConnectionRefused
            ) {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

fn is_upgrade(h: &HeaderMap) -> bool {
    h.get(header::UPGRADE).is_some()
        && h.get_all(header::CONNECTION).iter().any(|v| {
            v.to_str().is_ok_and(|s| {
                s.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
        })
}

/// Hop-by-hop headers: never forwarded.
static HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including those the Connection header names.
pub(crate) fn strip_hop_by_hop(h: &mut HeaderMap) {
    // One pass over the (few) names present instead of a lookup per hop-by-hop name.
    let mut present = 0u8;
    for name in h.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|hop| hop == name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    if present & 1 != 0 {
        // Names listed in Connection; the usual `keep-alive` / `close` name nothing more.
        let listed: Vec<HeaderName> = h
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|t| !t.eq_ignore_ascii_case("keep-alive") && !t.eq_ignore_ascii_case("close"))
            .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
            .collect();
        for name in listed {
            h.remove(name);
        }
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            h.remove(name);
        }
    }
}

fn prepare_request_headers(h: &mut HeaderMap, conn: &Conn, l: &Listener, authority: Option<&str>) {
    strip_hop_by_hop(h);
    // Room for X-Forwarded-For/-Proto/-Port, the trace id and Host: one growth at most.
    h.reserve(5);
    if !h.contains_key(header::HOST) {
        if let Some(v) = authority.and_then(|a| HeaderValue::from_str(a).ok()) {
            h.insert(header::HOST, v);
        }
    }
    let xff = match h.get(X_FORWARDED_FOR) {
        None => conn.peer_ip.clone(),
        Some(_) => {
            let mut b = BytesMut::with_capacity(64);
            for v in h.get_all(X_FORWARDED_FOR) {
                if !b.is_empty() {
                    b.put_slice(b", ");
                }
                b.put_slice(v.as_bytes());
            }
            b.put_slice(b", ");
            b.put_slice(conn.peer_ip.as_bytes());
            HeaderValue::from_maybe_shared(b.freeze()).unwrap_or_else(|_| conn.peer_ip.clone())
        }
    };
    h.insert(X_FORWARDED_FOR, xff);
    h.insert(X_FORWARDED_PROTO, l.forwarded_proto.clone());
    h.insert(X_FORWARDED_PORT, l.forwarded_port.clone());
    if !h.contains_key(X_AMZN_TRACE_ID) {
        h.insert(X_AMZN_TRACE_ID, trace_id());
    }
}

/// `Root=1-<8 hex epoch seconds>-<24 hex random>`.
pub(crate) fn trace_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as u32;
    let mut buf = [0u8; 40];
    buf[..7].copy_from_slice(b"Root=1-");
    for i in 0..8 {
        buf[7 + i] = HEX[((secs >> (28 - 4 * i)) & 0xf) as usize];
    }
    buf[15] = b'-';
    let (a, b) = (crate::rand::next(), crate::rand::next());
    for i in 0..16 {
        buf[16 + i] = HEX[((a >> (60 - 4 * i)) & 0xf) as usize];
    }
    for i in 0..8 {
        buf[32 + i] = HEX[((b >> (60 - 4 * i)) & 0xf) as usize];
    }
    // Infallible: the buffer holds only ASCII letters, digits, '=' and '-'.
    HeaderValue::from_bytes(&buf).unwrap_or(HeaderValue::from_static(
        "Root=1-00000000-000000000000000000000000",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_have_alb_shape() {
        let v = trace_id();
        let s = v.to_str().unwrap();
        assert_eq!(s.len(), 40, "{s}");
        assert!(s.starts_with("Root=1-"));
        let parts: Vec<&str> = s["Root=".len()..].split('-').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1].len(), 8);
        assert_eq!(parts[2].len(), 24);
        assert!(parts[1..]
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit())));
        assert_ne!(trace_id(), v, "random part differs");
    }

    #[test]
    fn hop_by_hop_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key(header::CONTENT_TYPE));
    }
}
