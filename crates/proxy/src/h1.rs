//! HTTP/1.1 from clients, the proxy's own codec: request heads parsed (httparse) from the
//! connection's read buffer into `http` types whose header values share that buffer, request
//! body framing (Content-Length, chunked, none) decoded straight from the connection, and
//! response heads encoded into the connection's write buffer. Buffers are borrowed from a
//! per-thread pool while a request is under way, so an idle keep-alive connection holds none.
//! The connection loop is [`serve`].

pub(crate) mod serve;
#[cfg(test)]
mod tests;

use crate::buffers::{put_head_buffer, take_head_buffer, HEAD_BUFFER};
use crate::fields::{Fields, FieldsBuilder};
use crate::upstream::{settle_chunked, step_chunked, Chunk, Framing, ReadBuffer, TargetHead};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Uri, Version};
use std::cell::RefCell;
use std::io;
use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::SystemTime;
use tokio::io::AsyncRead;

/// Request header fields parsed on the stack; a larger configured limit parses into the heap.
const STACK_HEADERS: usize = 100;

/// Limits on request heads (431 beyond them).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Bytes of request line and header fields.
    pub max_head: usize,
    /// Header fields.
    pub max_headers: usize,
}

/// Why a request head was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HeadError {
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("request head larger than {0} bytes")]
    TooLarge(usize),
    #[error("more than {0} request header fields")]
    TooManyHeaders(usize),
}

impl HeadError {
    /// The status answered: 400 for malformed requests, 431 for heads past the limits.
    pub fn status(&self) -> StatusCode {
        match self {
            HeadError::Malformed(_) => StatusCode::BAD_REQUEST,
            HeadError::TooLarge(_) | HeadError::TooManyHeaders(_) => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
        }
    }
}

/// A parsed request head.
#[derive(Debug)]
pub(crate) struct Head {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    /// All header fields (the request path drops the hop-by-hop ones when it forwards).
    pub fields: Fields,
    /// How the body is delimited: `Done` (none), `Length`, or `Chunked`.
    pub body: Framing,
    /// The client wants the connection kept open after the response.
    pub keep_alive: bool,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
}

/// Parses the request head at the start of `buf`, taking it out of the buffer. `None`: more
/// bytes are needed.
pub(crate) fn parse_head(buf: &mut ReadBuffer, limits: &Limits) -> Result<Option<Head>, HeadError> {
    let mut stack = [const { MaybeUninit::uninit() }; STACK_HEADERS];
    let mut heap;
    let headers: &mut [MaybeUninit<httparse::Header<'_>>] = if limits.max_headers <= STACK_HEADERS {
        &mut stack[..limits.max_headers]
    } else {
        heap = Vec::with_capacity(limits.max_headers);
        heap.resize_with(limits.max_headers, MaybeUninit::uninit);
        &mut heap[..]
    };
    let mut req = httparse::Request::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut req,
        buf.data(),
        headers,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_head {
                return Err(HeadError::TooLarge(limits.max_head));
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HeadError::TooManyHeaders(limits.max_headers))
        }
        Err(httparse::Error::Version) => return Err(HeadError::Malformed("HTTP version")),
        Err(httparse::Error::Token) => return Err(HeadError::Malformed("request line")),
        Err(_) => return Err(HeadError::Malformed("header field")),
    };
    if len > limits.max_head {
        return Err(HeadError::TooLarge(limits.max_head));
    }
    // Complete: method, target and version are there.
    let method = Method::from_bytes(req.method.unwrap_or("").as_bytes())
        .map_err(|_| HeadError::Malformed("method"))?;
    let version = match req.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    // Fields become ranges of the head, shared rather than copied: note where each one is
    // before the head leaves the buffer (offsets within a head far below 4 GiB).
    let start = buf.data().as_ptr() as usize;
    let span = |s: &[u8]| (s.as_ptr() as usize - start, s.len());
    let target = span(req.path.unwrap_or("").as_bytes());
    let mut fields = FieldsBuilder::with_capacity(req.headers.len());
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut expect_continue = false;
    for h in req.headers.iter() {
        let (name, value) = (h.name.as_bytes(), h.value);
        if name.eq_ignore_ascii_case(b"content-length") {
            let l = parse_length(value).ok_or(HeadError::Malformed("Content-Length"))?;
            if length.is_some_and(|prev| prev != l) {
                return Err(HeadError::Malformed("conflicting Content-Length values"));
            }
            length = Some(l);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Chunked must be the last coding of a request, and only once.
            let last = value.rsplit(|b| *b == b',').next().unwrap_or(b"");
            if chunked || !last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(HeadError::Malformed("Transfer-Encoding"));
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for t in value.split(|b| *b == b',') {
                let t = t.trim_ascii();
                close |= t.eq_ignore_ascii_case(b"close");
                keep_alive_token |= t.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect_continue = value.eq_ignore_ascii_case(b"100-continue");
        }
        fields.push(span(name), span(value));
    }
    let head = buf.take(len);
    let uri = Uri::from_maybe_shared(head.slice(target.0..target.0 + target.1))
        .map_err(|_| HeadError::Malformed("request target"))?;
    let fields = fields.finish(head);
    if chunked && length.is_some() {
        return Err(HeadError::Malformed(
            "both Content-Length and Transfer-Encoding",
        ));
    }
    if chunked && version == Version::HTTP_10 {
        return Err(HeadError::Malformed(
            "Transfer-Encoding in an HTTP/1.0 request",
        ));
    }
    let body = if chunked {
        Framing::Chunked(Chunk::Size)
    } else {
        match length {
            Some(0) | None => Framing::Done,
            Some(l) => Framing::Length(l),
        }
    };
    let keep_alive = !close && (version == Version::HTTP_11 || keep_alive_token);
    Ok(Some(Head {
        method,
        uri,
        version,
        fields,
        body,
        keep_alive,
        expect_continue,
    }))
}

/// A Content-Length value: decimal digits only (no sign, no spaces inside), below 2^63.
pub(crate) fn parse_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// The read side of a client connection.
pub(crate) trait ClientRead: AsyncRead + Send + Unpin {
    /// Ready when the connection has bytes to read (or an error or end), without reading: an
    /// idle connection waits here holding no buffer. Ready at once where unknown (TLS).
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let _ = cx;
        Poll::Ready(Ok(()))
    }
}

/// A client connection's read side with the bytes read but not consumed yet.
pub(crate) struct ClientReader {
    pub io: Box<dyn ClientRead>,
    pub buf: ReadBuffer,
}

impl std::fmt::Debug for ClientReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientReader")
            .field("buffered", &self.buf.len())
            .finish()
    }
}

impl ClientReader {
    /// A reader over `io`, holding no buffer yet.
    pub fn new(io: Box<dyn ClientRead>) -> ClientReader {
        ClientReader {
            io,
            buf: ReadBuffer::default(),
        }
    }

    /// Reads more bytes. An empty buffer goes back to the pool while the connection waits, and
    /// one is taken when bytes arrive. `Ok(0)`: the client closed its side.
    pub fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.poll_fill_with(cx, HEAD_BUFFER / 4, HEAD_BUFFER)
    }

    /// [`ClientReader::poll_fill`] for a body: it reads in larger steps.
    fn poll_fill_body(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.poll_fill_with(cx, 1024, 8 * 1024)
    }

    fn poll_fill_with(
        &mut self,
        cx: &mut Context<'_>,
        min_room: usize,
        chunk: usize,
    ) -> Poll<io::Result<usize>> {
        if self.buf.capacity() == 0 {
            ready!(self.io.poll_read_ready(cx))?;
            self.buf = ReadBuffer::from_bytes(take_head_buffer());
        }
        let r = self.buf.poll_fill_with(&mut *self.io, cx, min_room, chunk);
        if r.is_pending() && self.buf.is_empty() {
            put_head_buffer(std::mem::take(&mut self.buf).into_bytes());
        }
        r
    }

    /// Whether the reader holds a buffer (it does not while idle).
    pub fn holds_buffer(&self) -> bool {
        self.buf.capacity() > 0
    }
}

/// What a request body hands back to its connection when it is dropped: the reader, and
/// whether the body was read to its end (else the connection cannot carry another request).
#[derive(Debug)]
pub(crate) struct Returned {
    pub reader: ClientReader,
    pub complete: bool,
}

/// Where a request body leaves the connection's reader when it is dropped.
pub(crate) type BodyHome = Arc<Mutex<Option<Returned>>>;

/// A request body read from the client connection as the target takes it.
#[derive(Debug)]
pub(crate) struct ClientBody {
    reader: Option<ClientReader>,
    framing: Framing,
    failed: bool,
    home: BodyHome,
}

impl ClientBody {
    /// The body delimited by `framing` at the start of `reader`'s bytes.
    pub fn new(reader: ClientReader, framing: Framing, home: BodyHome) -> ClientBody {
        ClientBody {
            reader: Some(reader),
            framing,
            failed: false,
            home,
        }
    }

    /// Whether the body was read to its end.
    pub fn is_end_stream(&self) -> bool {
        matches!(self.framing, Framing::Done | Framing::Length(0))
    }

    /// The next piece of the body.
    pub fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        let Some(r) = self.reader.as_mut() else {
            return Poll::Ready(None);
        };
        if self.failed {
            // Never an end: what was read is not the whole body.
            return Poll::Ready(Some(Err(io::Error::other(
                "the request body broke off earlier",
            ))));
        }
        loop {
            match self.framing {
                Framing::Done | Framing::Close | Framing::Length(0) => return Poll::Ready(None),
                Framing::Length(n) => {
                    if !r.buf.is_empty() {
                        let k = (r.buf.len() as u64).min(n) as usize;
                        self.framing = Framing::Length(n - k as u64);
                        return Poll::Ready(Some(Ok(r.buf.take(k))));
                    }
                }
                Framing::Chunked(state) => match step_chunked(&mut r.buf, state) {
                    Ok((next, data)) => {
                        self.framing = next;
                        if let Some(data) = data {
                            self.framing = settle_chunked(&mut r.buf, next);
                            return Poll::Ready(Some(Ok(data)));
                        }
                        if next != Framing::Chunked(state) {
                            continue;
                        }
                    }
                    Err(e) => {
                        self.failed = true;
                        return Poll::Ready(Some(Err(e)));
                    }
                },
            }
            match ready!(r.poll_fill_body(cx)) {
                Ok(0) => {
                    self.failed = true;
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the client closed the connection before the end of the request body",
                    ))));
                }
                Ok(_) => {}
                Err(e) => {
                    self.failed = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}

impl Drop for ClientBody {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            let complete = !self.failed && self.is_end_stream();
            let mut home = self.home.lock().unwrap_or_else(|p| p.into_inner());
            *home = Some(Returned { reader, complete });
        }
    }
}

/// How a response body is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyMode {
    /// No body (HEAD, 1xx, 204, 304).
    None,
    /// As is, `Content-Length` says how long.
    Length,
    /// Chunked (an HTTP/1.1 client, length unknown).
    Chunked,
    /// Until the connection closes (an HTTP/1.0 client, length unknown).
    Close,
}

/// What shapes a response head besides the response itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseFacts {
    /// The request was HEAD.
    pub head_request: bool,
    /// The client speaks HTTP/1.0.
    pub http10: bool,
    /// The connection stays open after this response (so far).
    pub keep_alive: bool,
    /// The body's length, when known.
    pub exact_len: Option<u64>,
}

/// Encodes a response head into `w`: the status line, the target's fields (copied as received,
/// hop-by-hop ones left out), the response's own fields, then the framing (`content-length` or
/// `transfer-encoding: chunked`), `connection` and `date` fields it needs. Returns how the body
/// goes and whether the connection stays open.
pub(crate) fn encode_response_head(
    w: &mut Vec<u8>,
    status: StatusCode,
    target: Option<&TargetHead>,
    headers: &HeaderMap,
    facts: ResponseFacts,
) -> (BodyMode, bool) {
    let mut keep_alive = facts.keep_alive;
    w.extend_from_slice(b"HTTP/1.1 ");
    w.extend_from_slice(status.as_str().as_bytes());
    w.push(b' ');
    w.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    w.extend_from_slice(b"\r\n");
    let mut has_length = false;
    let mut has_date = false;
    if let Some(t) = target {
        t.write_fields(w);
        has_length = t.has_length;
        has_date = t.has_date;
    }
    for (name, value) in headers {
        if *name == header::CONTENT_LENGTH {
            has_length = true;
        } else if *name == header::DATE {
            has_date = true;
        } else if *name == header::TRANSFER_ENCODING || *name == header::CONNECTION {
            // Framing and connection fields are the proxy's own (a 101 keeps its Connection).
            if status != StatusCode::SWITCHING_PROTOCOLS {
                continue;
            }
        }
        w.extend_from_slice(name.as_str().as_bytes());
        w.extend_from_slice(b": ");
        w.extend_from_slice(value.as_bytes());
        w.extend_from_slice(b"\r\n");
    }
    let no_body_status = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let mode = if no_body_status {
        BodyMode::None
    } else {
        if !has_length {
            if let Some(n) = facts.exact_len {
                w.extend_from_slice(b"content-length: ");
                w.extend_from_slice(itoa_u64(n, &mut [0; 20]));
                w.extend_from_slice(b"\r\n");
                has_length = true;
            }
        }
        if facts.head_request {
            BodyMode::None
        } else if has_length {
            BodyMode::Length
        } else if facts.http10 {
            keep_alive = false;
            BodyMode::Close
        } else {
            w.extend_from_slice(b"transfer-encoding: chunked\r\n");
            BodyMode::Chunked
        }
    };
    if status != StatusCode::SWITCHING_PROTOCOLS {
        if !keep_alive {
            w.extend_from_slice(b"connection: close\r\n");
        } else if facts.http10 {
            w.extend_from_slice(b"connection: keep-alive\r\n");
        }
    }
    if !has_date {
        w.extend_from_slice(b"date: ");
        write_date(w);
        w.extend_from_slice(b"\r\n");
    }
    w.extend_from_slice(b"\r\n");
    (mode, keep_alive)
}

/// The answer to a refused request head: its status, a small HTML body, and the connection
/// closes.
pub(crate) fn encode_error(w: &mut Vec<u8>, status: StatusCode) {
    let reason = status.canonical_reason().unwrap_or("");
    let body = format!(
        "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>{code} {reason}</h1></center>\r\n</body>\r\n</html>\r\n",
        code = status.as_str()
    );
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    encode_response_head(
        w,
        status,
        None,
        &headers,
        ResponseFacts {
            head_request: false,
            http10: false,
            keep_alive: false,
            exact_len: Some(body.len() as u64),
        },
    );
    w.extend_from_slice(body.as_bytes());
}

/// A chunk-size line for `n` bytes of data: `<hex>\r\n`.
pub(crate) fn chunk_size_line(w: &mut Vec<u8>, n: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    w.extend_from_slice(&digits[i..]);
    w.extend_from_slice(b"\r\n");
}

fn itoa_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

thread_local! {
    /// The `Date` value of the current second.
    static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

/// Appends the current time as an HTTP date (formatted once a second).
fn write_date(w: &mut Vec<u8>) {
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    DATE.with_borrow_mut(|(at, text)| {
        if *at != secs {
            let s = httpdate::fmt_http_date(now);
            if s.len() == text.len() {
                text.copy_from_slice(s.as_bytes());
                *at = secs;
            } else {
                w.extend_from_slice(s.as_bytes());
                return;
            }
        }
        w.extend_from_slice(&text[..]);
    });
}
