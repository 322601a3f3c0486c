//! The request path: route a client request by the listener's rules, then answer a fixed
//! response or redirect, or forward it to a target (retrying once on another target when the
//! first could not be reached), streaming both bodies and counting metrics.

use crate::access_log::Record;
use crate::body::{ReqBody, RespBody};
use crate::fields::Fields;
use crate::health::mark_failed;
use crate::pool;
use crate::routing::{Action, Fixed, Forward, Redirect, RedirectInput, RequestView, TARGET_COOKIE};
use crate::server::Shared;
use crate::snapshot::Listener;
use crate::targets::{cookie, parse_key, InFlight};
use crate::upstream::{encode_head, Exchange, ExchangeError, RequestHead, UpstreamBody};
use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Instant, SystemTime};

/// One client connection's context, shared by its requests.
pub(crate) struct Conn {
    pub shared: Arc<Shared>,
    /// The listener's routing table, swapped when a snapshot applies.
    pub listener: Arc<ArcSwap<Listener>>,
    pub peer: SocketAddr,
    /// The peer's IP as a header value (X-Forwarded-For), formatted once per connection.
    pub peer_ip: HeaderValue,
}

/// A connection's timer for the target response timeout, reused by its requests one after
/// another (HTTP/1.1): moving its deadline later does not touch the runtime's timer wheel, so a
/// request costs no timer registration. `None` (HTTP/2, concurrent streams): a timer per request.
pub(crate) type ResponseTimer<'a> = Option<Pin<&'a mut tokio::time::Sleep>>;

/// A client's request as the request path takes it.
pub(crate) struct ClientRequest {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub fields: Fields,
    pub body: ReqBody,
}

impl ClientRequest {
    /// An HTTP/2 request (hyper's types).
    pub fn from_http(req: Request<ReqBody>) -> ClientRequest {
        let (parts, body) = req.into_parts();
        ClientRequest {
            method: parts.method,
            uri: parts.uri,
            version: parts.version,
            fields: Fields::from_map(&parts.headers),
            body,
        }
    }
}

/// Serves one request: routed at once; a fixed response or redirect is ready at once, a
/// forwarded request is the future of its exchange with a target (the one future the request
/// path keeps per request: routing state is not held across it).
pub(crate) fn handle<'a>(
    conn: &'a Arc<Conn>,
    req: ClientRequest,
    timer: ResponseTimer<'a>,
) -> Handled<impl Future<Output = Response<RespBody>> + 'a> {
    let received = Instant::now();
    let listener = conn.listener.load_full();
    listener.lb.metrics.requests.inc();
    let view = RequestView::new(&req.method, &req.uri, &req.fields, conn.peer.ip());
    let (action, priority) = listener.routes.select(&view);
    let mut log = conn
        .shared
        .access_log
        .as_ref()
        .map(|_| Box::new(Record::start(&req, conn, &listener, priority)));
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
            return forward(conn, listener, f, req, log, timer, received);
        }
    };
    finish_log(conn, log, action_name(action), &resp, received);
    Handled::Ready(Some(Box::new(resp)))
}

/// A request's response: ready at once, or the exchange with a target (boxed: a connection's
/// task is as large as its largest state, so an idle connection would otherwise hold room for a
/// whole exchange).
pub(crate) enum Handled<F> {
    Ready(Option<Box<Response<RespBody>>>),
    Forward(Pin<Box<F>>),
}

impl<F: Future<Output = Response<RespBody>>> Future for Handled<F> {
    type Output = Response<RespBody>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            // Polled again after it answered: never ready again.
            Handled::Ready(resp) => resp.take().map_or(Poll::Pending, |r| Poll::Ready(*r)),
            Handled::Forward(f) => f.as_mut().poll(cx),
        }
    }
}

/// Completes a request's access log record with its response and sends it.
fn finish_log(
    conn: &Conn,
    log: Option<Box<Record>>,
    action: &'static str,
    resp: &Response<RespBody>,
    received: Instant,
) {
    if let Some(mut log) = log {
        log.action = action;
        log.finish(resp, received);
        if let Some(al) = &conn.shared.access_log {
            al.send(*log);
        }
    }
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

/// How often a request is sent again to the same target on a new connection because the one
/// it went to (a reused keep-alive connection) was closing: nothing was written, or the target
/// closed it without answering.
const MAX_UNSENT_RETRIES: u32 = 3;

/// Forwards a request routed to `fwd`, then completes and sends its access log record. The
/// target group and target are chosen at once (503 when there is none); the exchange is the
/// future returned, which holds only what the exchange needs.
fn forward<'a>(
    conn: &'a Conn,
    listener: Arc<Listener>,
    fwd: Arc<Forward>,
    req: ClientRequest,
    mut log: Option<Box<Record>>,
    mut timer: ResponseTimer<'a>,
    received: Instant,
) -> Handled<impl Future<Output = Response<RespBody>> + 'a> {
    let unavailable = |log: Option<Box<Record>>| {
        let resp = elb_response(&listener, StatusCode::SERVICE_UNAVAILABLE);
        finish_log(conn, log, "forward", &resp, received);
        Handled::Ready(Some(Box::new(resp)))
    };
    let Some((group, group_cookie)) = fwd.choose(&req.fields) else {
        return unavailable(log);
    };
    let group = group.clone();
    if let Some(log) = &mut log {
        log.target_group = Some(group.clone());
    }
    let sticky = group
        .stickiness
        .and_then(|_| cookie(&req.fields, TARGET_COOKIE))
        .and_then(parse_key);
    let Some((mut index, first)) = group.pick(sticky, None) else {
        if let Some(log) = &mut log {
            log.error_reason = Some("NoHealthyTargets");
        }
        return unavailable(log);
    };
    let mut target = first.clone();

    let facts = HeaderFacts::of(&req.fields);
    let upgrade = facts.upgrade && is_upgrade(&req.fields);
    // Only HTTP/1.1 connections switch protocols (HTTP/2 has no Upgrade).
    let h1_upgrade = upgrade && !matches!(req.body, ReqBody::Hyper(_));
    let ClientRequest {
        method,
        uri,
        fields,
        body,
        ..
    } = req;
    let mut body = (!body.is_end_stream()).then_some(body);
    let had_body = body.is_some();
    // A body of unknown length (or one the client sent chunked) goes chunked.
    let chunked = body.is_some() && (facts.transfer_encoding || !facts.content_length);
    let has_host = facts.host;
    // The same trace id on every attempt.
    let trace = (!facts.trace_id).then(trace_id_bytes);
    if let Some(log) = &mut log {
        log.trace_id = match &trace {
            Some(t) => HeaderValue::from_bytes(t).ok(),
            None => fields
                .get("x-amzn-trace-id")
                .and_then(|v| HeaderValue::from_bytes(v).ok()),
        };
    }
    // Only a request without a body, sent again on another connection, can be replayed.
    let replayable = body.is_none() && !upgrade && is_idempotent(&method);

    Handled::Forward(Box::pin(async move {
        let listener = &*listener;
        let log = &mut log;
        let upgrade_value = if upgrade { fields.get("upgrade") } else { None };
        let authority = uri.authority().map(|a| a.as_str().as_bytes());
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
        // Whether the request already moved to a second target (it does so at most once).
        let mut moved_on = false;
        let mut unsent_retries = 0;
        let shared = &conn.shared;
        let resp: Response<RespBody> = 'resp: {
            loop {
                let guard = InFlight::new(target.clone());
                let (mut upstream, reused) = match pool::connection(
                    &shared.connector,
                    &target,
                    shared.pool_idle_timeout,
                )
                .await
                {
                    Ok(c) => c,
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
                        break 'resp elb_response(listener, StatusCode::BAD_GATEWAY);
                    }
                };
                let host = match (has_host, authority) {
                    (true, _) => None,
                    (false, Some(a)) => Some(a),
                    (false, None) => Some(target.host_header.as_bytes()),
                };
                encode_head(
                    &mut upstream.wbuf,
                    &RequestHead {
                        method: &method,
                        path_and_query,
                        headers: &fields,
                        host,
                        peer_ip: conn.peer_ip.as_bytes(),
                        forwarded_proto: listener.forwarded_proto.as_bytes(),
                        forwarded_port: listener.forwarded_port.as_bytes(),
                        trace_id: trace.as_ref().map(|t| &t[..]),
                        upgrade: upgrade_value,
                        chunked,
                    },
                );
                let mut exchange = Exchange::new(upstream, body.take(), chunked);
                let sent = Instant::now();
                let deadline = tokio::time::Instant::from_std(sent + group.response_timeout);
                let answer = std::future::poll_fn(|cx| {
                    exchange.poll_head(cx, &method, shared.max_response_head)
                });
                let result = match timer.as_mut() {
                    Some(t) => {
                        t.as_mut().reset(deadline);
                        within(answer, t.as_mut()).await
                    }
                    None => tokio::time::timeout_at(deadline, answer)
                        .await
                        .map_err(|_| ()),
                };
                let err = match result {
                    Ok(Ok(head)) => {
                        let target_time = sent.elapsed();
                        let status = head.status;
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
                            if !h1_upgrade {
                                break 'resp elb_response(listener, StatusCode::BAD_GATEWAY);
                            }
                            // The HTTP/1.1 connection loop splices the two connections.
                            let upstream = exchange.into_upstream();
                            let mut resp =
                                Response::new(RespBody::upgraded(upstream, guard, head.headers));
                            *resp.status_mut() = status;
                            break 'resp resp;
                        }
                        let body = UpstreamBody::new(exchange, &head);
                        let mut resp = Response::new(RespBody::upstream(
                            body,
                            guard,
                            shared.max_idle_per_target,
                            head.headers,
                        ));
                        *resp.status_mut() = status;
                        let headers = resp.headers_mut();
                        if let Some(c) = group_cookie {
                            headers.append(header::SET_COOKIE, c);
                        }
                        if let Some(c) = group.sticky_cookies.get(index) {
                            headers.append(header::SET_COOKIE, c.clone());
                        }
                        break 'resp resp;
                    }
                    Ok(Err(err)) => err,
                    Err(_elapsed) => {
                        if let Some(log) = log {
                            log.target = Some(target.clone());
                            log.error_reason = Some("TargetResponseTimeout");
                        }
                        break 'resp elb_response(listener, StatusCode::GATEWAY_TIMEOUT);
                    }
                };
                body = exchange.take_unsent_body();
                drop(exchange);
                drop(guard);
                // A reused connection the target was closing: the request goes again on a new one
                // (when nothing was sent, or when a replayable request got no answer).
                let stale = reused
                    && unsent_retries < MAX_UNSENT_RETRIES
                    && match &err {
                        ExchangeError::Unsent(_) => true,
                        ExchangeError::NotAnswered(_) => replayable,
                        ExchangeError::Failed(_) => false,
                    };
                if stale {
                    unsent_retries += 1;
                    continue;
                }
                // The target did not answer: a replayable request (or one nothing was sent of) moves
                // to another target, once.
                let may_move = match &err {
                    ExchangeError::Unsent(_) => !had_body || body.is_some(),
                    ExchangeError::NotAnswered(_) => replayable,
                    ExchangeError::Failed(_) => false,
                };
                let next = if may_move && !moved_on {
                    group.pick(None, Some(&target))
                } else {
                    None
                };
                match next {
                    Some((i, t)) => {
                        tracing::debug!(target = target.label(), error = %err, "target did not answer; trying another");
                        moved_on = true;
                        index = i;
                        target = t.clone();
                    }
                    None => {
                        tracing::debug!(target = target.label(), error = %err, "forwarding failed");
                        if let Some(log) = log {
                            log.target = Some(target.clone());
                            log.error_reason = Some("TargetResponseError");
                        }
                        break 'resp elb_response(listener, StatusCode::BAD_GATEWAY);
                    }
                }
            }
        };
        finish_log(conn, log.take(), "forward", &resp, received);
        resp
    }))
}

/// `fut`'s output, or `Err` when `timer` fires first.
async fn within<F: std::future::Future>(
    fut: F,
    mut timer: Pin<&mut tokio::time::Sleep>,
) -> Result<F::Output, ()> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        timer.as_mut().poll(cx).map(|()| Err(()))
    })
    .await
}

fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// Which of the fields the request path looks at a request has, found in one pass over its
/// fields (no lookup by name).
#[derive(Debug, Default, Clone, Copy)]
struct HeaderFacts {
    host: bool,
    upgrade: bool,
    transfer_encoding: bool,
    content_length: bool,
    trace_id: bool,
}

impl HeaderFacts {
    fn of(fields: &Fields) -> HeaderFacts {
        let mut f = HeaderFacts::default();
        for (name, _) in fields.iter() {
            let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
            f.host |= is(b"host");
            f.upgrade |= is(b"upgrade");
            f.transfer_encoding |= is(b"transfer-encoding");
            f.content_length |= is(b"content-length");
            f.trace_id |= is(b"x-amzn-trace-id");
        }
        f
    }
}

fn is_upgrade(fields: &Fields) -> bool {
    fields.contains("upgrade")
        && fields.get_all("connection").any(|v| {
            v.split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
        })
}

/// `Root=1-<8 hex epoch seconds>-<24 hex random>`.
pub(crate) fn trace_id_bytes() -> [u8; 40] {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as u32;
    let mut buf = [0u8; 40];
    buf[..7].copy_from_slice(b"Root=1-");
    put_hex(&mut buf[7..15], &secs.to_be_bytes());
    buf[15] = b'-';
    let (a, b) = (crate::rand::next(), crate::rand::next());
    put_hex(&mut buf[16..32], &a.to_be_bytes());
    put_hex(&mut buf[32..40], &b.to_be_bytes()[..4]);
    buf
}

/// Lowercase hex digits of `bytes` into `out` (twice as long).
fn put_hex(out: &mut [u8], bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0xf)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_have_alb_shape() {
        let v = trace_id_bytes();
        let s = std::str::from_utf8(&v).unwrap();
        assert_eq!(s.len(), 40, "{s}");
        assert!(s.starts_with("Root=1-"));
        let parts: Vec<&str> = s["Root=".len()..].split('-').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1].len(), 8);
        assert_eq!(parts[2].len(), 24);
        assert!(parts[1..]
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit())));
        assert_ne!(trace_id_bytes(), v, "random part differs");
    }
}
