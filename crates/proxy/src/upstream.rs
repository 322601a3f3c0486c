//! HTTP/1.1 to targets, driven by the task of the client connection that needs it: the request
//! head and body are written and the response read on that task, so a proxied request costs no
//! task, channel or wake-up of its own. An [`Upstream`] is one keep-alive connection; an
//! [`Exchange`] is one request on it, whose response body ([`UpstreamBody`]) keeps sending the
//! rest of a streamed request body while the response streams back (full duplex).

use crate::body::ReqBody;
use crate::buffers::{put_read_buffer, put_write_buffer, take_read_buffer, take_write_buffer};
use crate::fields::Fields;
use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use hyper::body::Frame;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;

/// Room a read asks the socket to fill, at least.
const READ_CHUNK: usize = 8 * 1024;
/// Below this much free room the read buffer grows (or is reclaimed) before a read.
const MIN_ROOM: usize = 1024;
/// Response header fields parsed at most.
const MAX_RESPONSE_HEADERS: usize = 100;
/// Runs of forwarded lines a response head is copied in, at most.
const MAX_RUNS: usize = 8;
/// A chunk-size or trailer line longer than this is malformed.
const MAX_CHUNK_LINE: usize = 4096;

/// Bytes read from a target and not consumed yet; consumed bytes are split off as shared
/// `Bytes` (no copy).
#[derive(Debug, Default)]
pub(crate) struct ReadBuffer {
    buf: BytesMut,
}

impl ReadBuffer {
    /// A buffer over `buf` (its allocation reused).
    pub fn from_bytes(buf: BytesMut) -> ReadBuffer {
        ReadBuffer { buf }
    }

    /// The buffer, for reuse.
    pub fn into_bytes(self) -> BytesMut {
        self.buf
    }

    pub fn data(&self) -> &[u8] {
        &self.buf
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Bytes the buffer holds room for.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The first `n` bytes as a shared buffer.
    pub fn take(&mut self, n: usize) -> Bytes {
        self.buf.split_to(n).freeze()
    }

    pub fn consume(&mut self, n: usize) {
        self.buf.advance(n);
    }

    /// Appends bytes (tests).
    #[cfg(test)]
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Reads what `io` has into the spare room (grown first when short).
    pub fn poll_fill<R>(&mut self, io: &mut R, cx: &mut Context<'_>) -> Poll<io::Result<usize>>
    where
        R: tokio::io::AsyncRead + Unpin + ?Sized,
    {
        if self.buf.capacity() == 0 {
            self.buf = take_read_buffer();
        }
        self.poll_fill_with(io, cx, MIN_ROOM, READ_CHUNK)
    }

    /// Reads what `io` has into the spare room, after making room for `chunk` more bytes when
    /// less than `min_room` is left.
    pub fn poll_fill_with<R>(
        &mut self,
        io: &mut R,
        cx: &mut Context<'_>,
        min_room: usize,
        chunk: usize,
    ) -> Poll<io::Result<usize>>
    where
        R: tokio::io::AsyncRead + Unpin + ?Sized,
    {
        if self.buf.capacity() - self.buf.len() < min_room {
            self.buf.reserve(chunk);
        }
        // Reads into the spare capacity (no zero-filling).
        use std::future::Future;
        use tokio::io::AsyncReadExt;
        std::pin::pin!(io.read_buf(&mut self.buf)).poll(cx)
    }
}

/// One HTTP/1.1 connection to a target.
#[derive(Debug)]
pub(crate) struct Upstream {
    io: TcpStream,
    rbuf: ReadBuffer,
    /// The request head is encoded here (kept for the next request on the connection).
    pub wbuf: Vec<u8>,
}

impl Upstream {
    /// Wraps a connected socket.
    pub fn new(io: TcpStream) -> Upstream {
        Upstream {
            io,
            rbuf: ReadBuffer::default(),
            wbuf: Vec::new(),
        }
    }

    /// Whether the connection can carry another request: the target has neither closed it nor
    /// sent anything unasked. No system call unless the socket became readable.
    pub fn is_reusable(&self) -> bool {
        if !self.rbuf.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Gives the buffers back to the per-thread pool while the connection is idle (it holds
    /// none until its next request).
    pub fn release_buffers(&mut self) {
        if self.rbuf.is_empty() {
            put_read_buffer(std::mem::take(&mut self.rbuf).into_bytes());
        }
        put_write_buffer(std::mem::take(&mut self.wbuf));
    }

    /// The socket and the bytes already read from it (an upgraded connection's start).
    pub fn into_parts(mut self) -> (TcpStream, Bytes) {
        let n = self.rbuf.len();
        let rest = self.rbuf.take(n);
        (self.io, rest)
    }
}

/// What the proxy knows about a request head it encodes for a target.
pub(crate) struct RequestHead<'a> {
    pub method: &'a Method,
    /// Origin form (`/path?query`).
    pub path_and_query: &'a str,
    pub headers: &'a Fields,
    /// `Host` to send when the request has none.
    pub host: Option<&'a [u8]>,
    /// The client's address, appended to X-Forwarded-For.
    pub peer_ip: &'a [u8],
    pub forwarded_proto: &'a [u8],
    pub forwarded_port: &'a [u8],
    /// X-Amzn-Trace-Id to add (the request has none).
    pub trace_id: Option<&'a [u8]>,
    /// `Upgrade` value of a protocol upgrade (WebSocket): sent with `Connection: upgrade`.
    pub upgrade: Option<&'a [u8]>,
    /// The body is sent chunked (its length is unknown).
    pub chunked: bool,
}

/// How the proxy treats a request header field.
enum Field {
    Keep,
    /// Hop-by-hop or replaced by the proxy.
    Drop,
    ForwardedFor,
}

fn request_field(name: &[u8], chunked: bool) -> Field {
    const DROPPED: [&[u8]; 9] = [
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"x-forwarded-proto",
        b"x-forwarded-port",
    ];
    if name.eq_ignore_ascii_case(b"x-forwarded-for") {
        Field::ForwardedFor
    } else if DROPPED.iter().any(|d| name.eq_ignore_ascii_case(d))
        || (chunked && name.eq_ignore_ascii_case(b"content-length"))
    {
        Field::Drop
    } else {
        Field::Keep
    }
}

/// Header names a `Connection` header lists (besides `keep-alive` / `close`): hop-by-hop too.
pub(crate) fn connection_listed(headers: &Fields) -> Vec<&[u8]> {
    headers
        .get_all("connection")
        .flat_map(|v| v.split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| {
            !t.is_empty()
                && !t.eq_ignore_ascii_case(b"keep-alive")
                && !t.eq_ignore_ascii_case(b"close")
        })
        .collect()
}

/// Encodes the head sent to the target into `w`: the request line, the client's end-to-end
/// headers (names in the client's case), then Host (when missing), X-Forwarded-For/-Proto/-Port,
/// the trace id, upgrade and framing headers.
pub(crate) fn encode_head(w: &mut Vec<u8>, h: &RequestHead<'_>) {
    if w.capacity() == 0 {
        *w = take_write_buffer();
    }
    w.clear();
    w.reserve(256 + h.headers.len() * 48);
    w.extend_from_slice(h.method.as_str().as_bytes());
    w.push(b' ');
    w.extend_from_slice(h.path_and_query.as_bytes());
    w.extend_from_slice(b" HTTP/1.1\r\n");
    let listed = if h.headers.contains("connection") {
        connection_listed(h.headers)
    } else {
        Vec::new()
    };
    let mut forwarded_for = false;
    for (name, value) in h.headers.iter() {
        match request_field(name, h.chunked) {
            Field::Keep => {
                if !listed.is_empty() && listed.iter().any(|l| l.eq_ignore_ascii_case(name)) {
                    continue;
                }
                w.extend_from_slice(name);
                w.extend_from_slice(b": ");
                w.extend_from_slice(value);
                w.extend_from_slice(b"\r\n");
            }
            Field::Drop => {}
            Field::ForwardedFor => forwarded_for = true,
        }
    }
    // The fields the proxy adds after the client's.
    if let Some(host) = h.host {
        w.extend_from_slice(b"host: ");
        w.extend_from_slice(host);
        w.extend_from_slice(b"\r\n");
    }
    w.extend_from_slice(b"x-forwarded-for: ");
    if forwarded_for {
        for v in h.headers.get_all("x-forwarded-for") {
            w.extend_from_slice(v);
            w.extend_from_slice(b", ");
        }
    }
    w.extend_from_slice(h.peer_ip);
    w.extend_from_slice(b"\r\nx-forwarded-proto: ");
    w.extend_from_slice(h.forwarded_proto);
    w.extend_from_slice(b"\r\nx-forwarded-port: ");
    w.extend_from_slice(h.forwarded_port);
    w.extend_from_slice(b"\r\n");
    if let Some(trace) = h.trace_id {
        w.extend_from_slice(b"x-amzn-trace-id: ");
        w.extend_from_slice(trace);
        w.extend_from_slice(b"\r\n");
    }
    if let Some(up) = h.upgrade {
        w.extend_from_slice(b"connection: upgrade\r\nupgrade: ");
        w.extend_from_slice(up);
        w.extend_from_slice(b"\r\n");
    }
    if h.chunked {
        w.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    w.extend_from_slice(b"\r\n");
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// Not one byte of the request was written: it may be sent again anywhere.
    #[error("sending the request: {0}")]
    Unsent(io::Error),
    /// The target closed or reset the connection before any byte of a response.
    #[error("the target closed the connection without answering: {0}")]
    NotAnswered(io::Error),
    /// A response that cannot be forwarded, or a connection lost mid-response.
    #[error("{0}")]
    Failed(String),
}

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Length(u64),
    Chunked(Chunk),
    /// Until the target closes the connection.
    Close,
    Done,
}

/// Position in a chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunk {
    Size,
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    Trailers,
}

/// The response fields the proxy looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResponseField {
    Connection,
    TransferEncoding,
    ContentLength,
    /// `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`: never forwarded.
    HopByHop,
    /// Forwarded on a 101 only.
    Upgrade,
    Date,
    Other,
}

impl ResponseField {
    fn of(name: &[u8]) -> ResponseField {
        let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
        if is(b"connection") {
            ResponseField::Connection
        } else if is(b"transfer-encoding") {
            ResponseField::TransferEncoding
        } else if is(b"content-length") {
            ResponseField::ContentLength
        } else if is(b"keep-alive") || is(b"proxy-connection") || is(b"te") || is(b"trailer") {
            ResponseField::HopByHop
        } else if is(b"upgrade") {
            ResponseField::Upgrade
        } else if is(b"date") {
            ResponseField::Date
        } else {
            ResponseField::Other
        }
    }
}

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub status: StatusCode,
    /// End-to-end headers (hop-by-hop ones left out, except on 101).
    pub headers: TargetHead,
    framing: Framing,
    /// The connection may carry another request after this response.
    keep_alive: bool,
}

/// A target's response head as received, with the fields the proxy does not forward marked:
/// the fields are copied to the client from it, never parsed into a map (HTTP/1.1 clients).
#[derive(Debug, Clone)]
pub(crate) struct TargetHead {
    /// The whole head: status line, fields, empty line.
    head: Bytes,
    n_fields: usize,
    /// Fields left out, by index.
    skip: u128,
    /// The forwarded fields as byte ranges of whole lines of `head` (`None`: lines are
    /// rebuilt one by one, for heads with bare-LF line ends or many gaps).
    runs: [(u32, u32); MAX_RUNS],
    n_runs: Option<u8>,
    /// A forwarded `Content-Length` field is among them.
    pub has_length: bool,
    /// A `Date` field is among them.
    pub has_date: bool,
}

impl TargetHead {
    /// The forwarded fields as (name, value).
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let mut lines = self.head.split(|b| *b == b'\n');
        lines.next(); // the status line
        lines
            .take(self.n_fields)
            .enumerate()
            .filter(|(i, _)| self.skip & (1u128 << i) == 0)
            .filter_map(|(_, line)| {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let colon = line.iter().position(|b| *b == b':')?;
                Some((&line[..colon], line[colon + 1..].trim_ascii()))
            })
    }

    /// Appends the forwarded fields as `name: value` lines.
    pub fn write_fields(&self, w: &mut Vec<u8>) {
        if let Some(n) = self.n_runs {
            for &(a, b) in &self.runs[..n as usize] {
                w.extend_from_slice(&self.head[a as usize..b as usize]);
            }
            return;
        }
        for (name, value) in self.fields() {
            w.extend_from_slice(name);
            w.extend_from_slice(b": ");
            w.extend_from_slice(value);
            w.extend_from_slice(b"\r\n");
        }
    }

    /// The forwarded fields as a map (HTTP/2 clients and tests).
    pub fn to_map(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.n_fields);
        for (name, value) in self.fields() {
            let start = value.as_ptr() as usize - self.head.as_ptr() as usize;
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name),
                HeaderValue::from_maybe_shared(self.head.slice(start..start + value.len())),
            ) {
                map.append(name, value);
            }
        }
        map
    }
}

/// The request side of an exchange: head, then body frames, written as the socket takes them.
#[derive(Debug)]
struct Sending {
    /// Bytes of the head (`Upstream::wbuf`) written so far.
    head_written: usize,
    body: Option<ReqBody>,
    chunked: bool,
    /// Body bytes (with chunk framing) waiting to be written.
    pieces: VecDeque<Bytes>,
    /// Every byte of the request is written.
    finished: bool,
    /// Writing failed after the target got part of the request: no more is sent.
    failed: bool,
    /// Any byte was written.
    wrote: bool,
    /// The client's body broke off (the request cannot be completed).
    client_failed: bool,
}

impl Sending {
    fn poll(&mut self, up: &mut Upstream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let head = &up.wbuf[self.head_written..];
            if !head.is_empty() || !self.pieces.is_empty() {
                let mut slices = [IoSlice::new(&[]); 5];
                let mut k = 0;
                if !head.is_empty() {
                    slices[0] = IoSlice::new(head);
                    k = 1;
                }
                for p in self.pieces.iter().take(slices.len() - k) {
                    slices[k] = IoSlice::new(p);
                    k += 1;
                }
                let n = if k == 1 {
                    ready!(Pin::new(&mut up.io).poll_write(cx, &slices[0]))?
                } else {
                    ready!(Pin::new(&mut up.io).poll_write_vectored(cx, &slices[..k]))?
                };
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.wrote = true;
                let mut n = n;
                let from_head = n.min(head.len());
                self.head_written += from_head;
                if from_head > 0 && self.head_written == up.wbuf.len() {
                    // The head is sent: its buffer goes back to the pool.
                    put_write_buffer(std::mem::take(&mut up.wbuf));
                    self.head_written = 0;
                }
                n -= from_head;
                while n > 0 {
                    let Some(first) = self.pieces.front_mut() else {
                        break;
                    };
                    if n >= first.len() {
                        n -= first.len();
                        self.pieces.pop_front();
                    } else {
                        first.advance(n);
                        n = 0;
                    }
                }
                continue;
            }
            let Some(body) = self.body.as_mut() else {
                self.finished = true;
                return Poll::Ready(Ok(()));
            };
            match ready!(body.poll_data(cx)) {
                Some(Ok(data)) => {
                    if data.is_empty() {
                        continue;
                    }
                    if self.chunked {
                        self.pieces
                            .push_back(Bytes::from(format!("{:x}\r\n", data.len())));
                        self.pieces.push_back(data);
                        self.pieces.push_back(Bytes::from_static(b"\r\n"));
                    } else {
                        self.pieces.push_back(data);
                    }
                }
                None => {
                    self.body = None;
                    if self.chunked {
                        self.pieces.push_back(Bytes::from_static(b"0\r\n\r\n"));
                    }
                }
                Some(Err(e)) => {
                    self.client_failed = true;
                    return Poll::Ready(Err(io::Error::other(format!(
                        "reading the client's request body: {e}"
                    ))));
                }
            }
        }
    }
}

/// One request on an upstream connection.
#[derive(Debug)]
pub(crate) struct Exchange {
    up: Upstream,
    send: Sending,
    /// Response bytes were read.
    answered: bool,
}

impl Exchange {
    /// Starts sending `up.wbuf` (the encoded head), then `body`.
    pub fn new(up: Upstream, body: Option<ReqBody>, chunked: bool) -> Exchange {
        Exchange {
            up,
            send: Sending {
                head_written: 0,
                body,
                chunked,
                pieces: VecDeque::new(),
                finished: false,
                failed: false,
                wrote: false,
                client_failed: false,
            },
            answered: false,
        }
    }

    /// The request body, when not one byte of the request was written (to send it elsewhere).
    pub fn take_unsent_body(&mut self) -> Option<ReqBody> {
        if self.send.wrote {
            None
        } else {
            self.send.body.take()
        }
    }

    /// The connection, for an upgrade.
    pub fn into_upstream(self) -> Upstream {
        self.up
    }

    /// Sends what the socket takes; a failure stops sending (the response may still come).
    fn drive_send(&mut self, cx: &mut Context<'_>) -> Result<(), ExchangeError> {
        if self.send.finished || self.send.failed {
            return Ok(());
        }
        match self.send.poll(&mut self.up, cx) {
            Poll::Ready(Ok(())) | Poll::Pending => Ok(()),
            Poll::Ready(Err(e)) if self.send.client_failed => {
                // Not the target's doing, and no answer can be complete: give up the request.
                self.send.failed = true;
                self.send.body = None;
                Err(ExchangeError::Failed(e.to_string()))
            }
            Poll::Ready(Err(e)) if !self.send.wrote => Err(ExchangeError::Unsent(e)),
            Poll::Ready(Err(e)) => {
                tracing::debug!(error = %e, "sending the request to the target failed");
                self.send.failed = true;
                self.send.body = None;
                self.send.pieces.clear();
                Ok(())
            }
        }
    }

    /// Writes the request and reads the response head (skipping 1xx interim responses other
    /// than 101). `max_head` bounds the head's size.
    pub fn poll_head(
        &mut self,
        cx: &mut Context<'_>,
        method: &Method,
        max_head: usize,
    ) -> Poll<Result<ResponseHead, ExchangeError>> {
        loop {
            self.drive_send(cx)?;
            if !self.up.rbuf.is_empty() {
                if let Some(head) = self.parse_head(method, max_head)? {
                    return Poll::Ready(Ok(head));
                }
            }
            if self.up.rbuf.capacity() == 0 {
                // No buffer while the target thinks: one is taken when the answer arrives.
                if let Err(e) = ready!(self.up.io.poll_read_ready(cx)) {
                    return Poll::Ready(Err(if self.answered {
                        ExchangeError::Failed(format!("reading the response head: {e}"))
                    } else {
                        ExchangeError::NotAnswered(e)
                    }));
                }
            }
            match ready!(self.up.rbuf.poll_fill(&mut self.up.io, cx)) {
                Ok(0) if !self.answered => {
                    return Poll::Ready(Err(ExchangeError::NotAnswered(
                        io::ErrorKind::UnexpectedEof.into(),
                    )))
                }
                Ok(0) => {
                    return Poll::Ready(Err(ExchangeError::Failed(
                        "the target closed the connection in the middle of the response head"
                            .into(),
                    )))
                }
                Ok(_) => self.answered = true,
                Err(e) if !self.answered => {
                    return Poll::Ready(Err(ExchangeError::NotAnswered(e)));
                }
                Err(e) => {
                    return Poll::Ready(Err(ExchangeError::Failed(format!(
                        "reading the response head: {e}"
                    ))))
                }
            }
        }
    }

    fn parse_head(
        &mut self,
        method: &Method,
        max_head: usize,
    ) -> Result<Option<ResponseHead>, ExchangeError> {
        loop {
            let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_RESPONSE_HEADERS];
            let mut resp = httparse::Response::new(&mut []);
            let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
                &mut resp,
                self.up.rbuf.data(),
                &mut headers,
            );
            let len = match parsed {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) => {
                    if self.up.rbuf.len() > max_head {
                        return Err(ExchangeError::Failed(format!(
                            "response head larger than {max_head} bytes"
                        )));
                    }
                    return Ok(None);
                }
                Err(e) => {
                    return Err(ExchangeError::Failed(format!(
                        "malformed response head: {e}"
                    )))
                }
            };
            let code = resp.code.unwrap_or(0);
            let status = StatusCode::from_u16(code)
                .map_err(|_| ExchangeError::Failed(format!("malformed response status {code}")))?;
            if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
                self.up.rbuf.consume(len);
                continue;
            }
            let upgrade = status == StatusCode::SWITCHING_PROTOCOLS;
            let mut keep_alive = resp.version == Some(1);
            let mut chunked = false;
            let mut other_encoding = false;
            let mut length: Option<u64> = None;
            let mut has_date = false;
            // Fields not forwarded, by index (at most MAX_RESPONSE_HEADERS < 128 of them).
            let mut skip: u128 = 0;
            let mut listed: Vec<&[u8]> = Vec::new();
            let mut length_fields: u128 = 0;
            for (i, h) in resp.headers.iter().enumerate() {
                let bit = 1u128 << i;
                let value = h.value;
                match ResponseField::of(h.name.as_bytes()) {
                    ResponseField::Connection => {
                        for t in value.split(|b| *b == b',') {
                            let t = t.trim_ascii();
                            if t.eq_ignore_ascii_case(b"close") {
                                keep_alive = false;
                            } else if t.eq_ignore_ascii_case(b"keep-alive") {
                                // HTTP/1.0 keep-alive is not relied on.
                            } else if !t.eq_ignore_ascii_case(b"upgrade") && !t.is_empty() {
                                listed.push(t);
                            }
                        }
                        if !upgrade {
                            skip |= bit;
                        }
                    }
                    ResponseField::TransferEncoding => {
                        let last = value.rsplit(|b| *b == b',').next().unwrap_or(b"");
                        if last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                            chunked = true;
                        } else {
                            other_encoding = true;
                        }
                        skip |= bit;
                    }
                    ResponseField::ContentLength => {
                        match (crate::h1::parse_length(value), length) {
                            (Some(l), None) => length = Some(l),
                            (Some(l), Some(prev)) if l == prev => skip |= bit,
                            _ => {
                                return Err(ExchangeError::Failed(
                                    "invalid Content-Length in the response".into(),
                                ))
                            }
                        }
                        length_fields |= bit;
                    }
                    ResponseField::HopByHop => skip |= bit,
                    ResponseField::Upgrade => {
                        if !upgrade {
                            skip |= bit;
                        }
                    }
                    ResponseField::Date => has_date = true,
                    ResponseField::Other => {}
                }
            }
            if !listed.is_empty() && !upgrade {
                for (i, h) in resp.headers.iter().enumerate() {
                    if listed
                        .iter()
                        .any(|l| l.eq_ignore_ascii_case(h.name.as_bytes()))
                    {
                        skip |= 1u128 << i;
                        if h.name.eq_ignore_ascii_case("date") {
                            has_date = false;
                        }
                    }
                }
            }
            let framing = if upgrade
                || *method == Method::HEAD
                || status == StatusCode::NO_CONTENT
                || status == StatusCode::NOT_MODIFIED
            {
                Framing::Done
            } else if chunked {
                skip |= length_fields;
                Framing::Chunked(Chunk::Size)
            } else if other_encoding {
                skip |= length_fields;
                Framing::Close
            } else {
                match length {
                    Some(l) => Framing::Length(l),
                    None => Framing::Close,
                }
            };
            let has_length = length_fields & !skip != 0;
            if framing == Framing::Close {
                keep_alive = false;
            }
            // Forwarded fields as runs of whole lines of the head, copied as they are.
            let base = self.up.rbuf.data().as_ptr() as usize;
            let data = self.up.rbuf.data();
            let n_fields = resp.headers.len();
            let line_start = |i: usize| -> usize {
                if i < n_fields {
                    resp.headers[i].name.as_ptr() as usize - base
                } else {
                    len - 2 // the empty line that ends the head
                }
            };
            let mut runs = [(0u32, 0u32); MAX_RUNS];
            let mut n_runs = 0;
            let mut by_line = !data[..len].ends_with(b"\r\n\r\n");
            let mut i = 0;
            while i < n_fields && !by_line {
                if skip & (1u128 << i) != 0 {
                    i += 1;
                    continue;
                }
                let start = line_start(i);
                while i < n_fields && skip & (1u128 << i) == 0 {
                    i += 1;
                    // Every line of a run must end in CRLF to be copied as it is.
                    let end = line_start(i);
                    if end < 2 || &data[end - 2..end] != b"\r\n" {
                        by_line = true;
                    }
                }
                if n_runs == MAX_RUNS {
                    by_line = true;
                    break;
                }
                runs[n_runs] = (start as u32, line_start(i) as u32);
                n_runs += 1;
            }
            if by_line {
                n_runs = 0;
            }
            // The head leaves the read buffer as a shared slice (no copy).
            let head = self.up.rbuf.take(len);
            return Ok(Some(ResponseHead {
                status,
                headers: TargetHead {
                    head,
                    n_fields,
                    skip,
                    runs,
                    n_runs: if by_line { None } else { Some(n_runs as u8) },
                    has_length,
                    has_date,
                },
                framing,
                keep_alive,
            }));
        }
    }
}

/// A target's response body, read from its connection by the client connection's task; it also
/// finishes sending a request body still streaming. When it ends cleanly the connection is
/// handed back (see [`UpstreamBody::poll_frame`]).
#[derive(Debug)]
pub(crate) struct UpstreamBody {
    exchange: Option<Exchange>,
    framing: Framing,
    keep_alive: bool,
}

impl UpstreamBody {
    /// The body following `head` on `exchange`'s connection.
    pub fn new(exchange: Exchange, head: &ResponseHead) -> UpstreamBody {
        UpstreamBody {
            exchange: Some(exchange),
            framing: head.framing,
            keep_alive: head.keep_alive,
        }
    }

    /// Whether the body has ended.
    pub fn is_end_stream(&self) -> bool {
        matches!(self.framing, Framing::Done | Framing::Length(0))
    }

    /// The exact length, when known.
    pub fn exact_len(&self) -> Option<u64> {
        match self.framing {
            Framing::Done => Some(0),
            Framing::Length(n) => Some(n),
            _ => None,
        }
    }

    /// The connection, if the exchange ended so that it can carry another request.
    pub fn reusable(&mut self) -> Option<Upstream> {
        if !self.is_end_stream() || !self.keep_alive {
            return None;
        }
        let ex = self.exchange.take()?;
        if ex.send.finished && !ex.send.failed && ex.up.rbuf.is_empty() {
            Some(ex.up)
        } else {
            None
        }
    }

    /// Drops the connection (after an error).
    pub fn abandon(&mut self) {
        self.exchange = None;
        self.framing = Framing::Done;
    }

    /// The next piece of the body.
    pub fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let Some(ex) = self.exchange.as_mut() else {
            return Poll::Ready(None);
        };
        if ex.drive_send(cx).is_err() {
            // Unreachable in practice: the head was answered, so bytes were written.
            self.keep_alive = false;
        }
        if ex.send.failed {
            self.keep_alive = false;
        }
        loop {
            let rbuf = &mut ex.up.rbuf;
            match self.framing {
                Framing::Done | Framing::Length(0) => return Poll::Ready(None),
                Framing::Length(n) => {
                    if !rbuf.is_empty() {
                        let k = (rbuf.len() as u64).min(n) as usize;
                        self.framing = Framing::Length(n - k as u64);
                        return Poll::Ready(Some(Ok(Frame::data(rbuf.take(k)))));
                    }
                }
                Framing::Close => {
                    if !rbuf.is_empty() {
                        let k = rbuf.len();
                        return Poll::Ready(Some(Ok(Frame::data(rbuf.take(k)))));
                    }
                }
                Framing::Chunked(state) => match step_chunked(rbuf, state) {
                    Ok((next, data)) => {
                        self.framing = next;
                        if let Some(data) = data {
                            self.framing = settle_chunked(rbuf, next);
                            return Poll::Ready(Some(Ok(Frame::data(data))));
                        }
                        if next != Framing::Chunked(state) {
                            continue;
                        }
                    }
                    Err(e) => return Poll::Ready(Some(Err(e))),
                },
            }
            // Need more bytes.
            match ready!(rbuf.poll_fill(&mut ex.up.io, cx)) {
                Ok(0) if self.framing == Framing::Close => {
                    self.framing = Framing::Done;
                    self.keep_alive = false;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the target closed the connection before the end of the response body",
                    ))))
                }
                Ok(_) => {}
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}

/// After a chunk's data: consumes what follows it up to the next data (chunk end, sizes, a last
/// chunk and trailers) as far as it is buffered, so the body's end is seen with its last data.
pub(crate) fn settle_chunked(rbuf: &mut ReadBuffer, mut framing: Framing) -> Framing {
    while let Framing::Chunked(state @ (Chunk::DataEnd | Chunk::Size | Chunk::Trailers)) = framing {
        match step_chunked(rbuf, state) {
            Ok((next, None)) if next != framing => framing = next,
            _ => break,
        }
    }
    framing
}

/// One step of chunked decoding over the buffered bytes: the next framing state and maybe data.
/// Returns the same state and no data when more bytes are needed.
pub(crate) fn step_chunked(
    rbuf: &mut ReadBuffer,
    state: Chunk,
) -> io::Result<(Framing, Option<Bytes>)> {
    let bad =
        |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("chunked body: {what}"));
    match state {
        Chunk::Size | Chunk::Trailers => {
            let data = rbuf.data();
            let Some(nl) = data.iter().position(|b| *b == b'\n') else {
                if data.len() > MAX_CHUNK_LINE {
                    return Err(bad("line too long"));
                }
                return Ok((Framing::Chunked(state), None));
            };
            let line = data[..nl].strip_suffix(b"\r").unwrap_or(&data[..nl]);
            if state == Chunk::Trailers {
                let end = line.is_empty();
                rbuf.consume(nl + 1);
                return Ok((
                    if end {
                        Framing::Done
                    } else {
                        Framing::Chunked(Chunk::Trailers)
                    },
                    None,
                ));
            }
            let digits = line
                .split(|b| *b == b';')
                .next()
                .unwrap_or(b"")
                .trim_ascii();
            if digits.is_empty() || digits.len() > 15 {
                return Err(bad("invalid chunk size"));
            }
            let mut size: u64 = 0;
            for d in digits {
                let v = (*d as char)
                    .to_digit(16)
                    .ok_or_else(|| bad("invalid chunk size"))?;
                size = size * 16 + u64::from(v);
            }
            rbuf.consume(nl + 1);
            Ok((
                Framing::Chunked(if size == 0 {
                    Chunk::Trailers
                } else {
                    Chunk::Data(size)
                }),
                None,
            ))
        }
        Chunk::Data(n) => {
            if rbuf.is_empty() {
                return Ok((Framing::Chunked(state), None));
            }
            let k = (rbuf.len() as u64).min(n) as usize;
            let data = rbuf.take(k);
            let left = n - k as u64;
            Ok((
                Framing::Chunked(if left == 0 {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(left)
                }),
                Some(data),
            ))
        }
        Chunk::DataEnd => {
            let data = rbuf.data();
            if data.starts_with(b"\r\n") {
                rbuf.consume(2);
            } else if data.starts_with(b"\n") {
                rbuf.consume(1);
            } else if data.len() >= 2 || (data.len() == 1 && data[0] != b'\r') {
                return Err(bad("missing CRLF after chunk data"));
            } else {
                return Ok((Framing::Chunked(state), None));
            }
            Ok((Framing::Chunked(Chunk::Size), None))
        }
    }
}

#[cfg(test)]
mod tests;
