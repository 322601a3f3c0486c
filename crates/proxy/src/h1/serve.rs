//! One HTTP/1.1 client connection: reads a request head, hands the request to the request path
//! ([`handle`]), writes the response head and streams its body, then the next request
//! (keep-alive; pipelined requests are answered one at a time, in order). `100 Continue` is
//! sent before a body is read when the client expects it; a `101` answer splices the client's
//! connection with the target's. Heads refused by the codec get their 400 / 431 and the
//! connection closes.

use super::{
    encode_error, encode_response_head, parse_head, BodyHome, BodyMode, ClientBody, ClientReader,
    Limits, ResponseFacts, Returned,
};
use crate::body::{ReqBody, RespBody};
use crate::buffers::{put_write_buffer, take_write_buffer};
use crate::forward::{handle, ClientRequest, Conn};
use crate::upstream::{Framing, Upstream};
use bytes::Bytes;
use http::{Method, StatusCode, Version};
use hyper::body::Body;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Body data at most this long is copied into the write buffer (with the head, so a small
/// response leaves in one write); longer data is written from its own buffer.
const COPY_DATA: usize = 8 * 1024;

/// Where a connection's response timer points before its first request (it is reset to each
/// request's deadline before it is polled).
const IDLE_TIMER: std::time::Duration = std::time::Duration::from_secs(3600);

/// What the connection's supervisor (idle timeout, listener close) and the loop share.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    /// Close after the response under way (set by the supervisor).
    pub closing: AtomicBool,
    /// Waiting for the first byte of a request: the connection may be dropped at once.
    pub idle: AtomicBool,
}

/// The write side of a client connection.
pub(crate) type ClientWriter = Box<dyn AsyncWrite + Send + Unpin>;

/// Serves requests until the client closes, a response cannot be completed, or `state.closing`.
pub(crate) async fn serve(
    mut reader: ClientReader,
    mut writer: ClientWriter,
    conn: Arc<Conn>,
    limits: Limits,
    state: &ConnState,
) {
    let mut wbuf: Vec<u8> = Vec::new();
    // The target response timeout's timer, made at the connection's first request and reused.
    let mut timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        // The next request head.
        let head = loop {
            match parse_head(&mut reader.buf, &limits) {
                Ok(Some(head)) => break head,
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(peer = %conn.peer, error = %e, "refused a request head");
                    let status = e.status();
                    conn.listener.load().lb.metrics.record_elb(status.as_u16());
                    if wbuf.capacity() == 0 {
                        wbuf = take_write_buffer();
                    }
                    encode_error(&mut wbuf, status);
                    let _ = writer.write_all(&wbuf).await;
                    let _ = writer.shutdown().await;
                    return;
                }
            }
            if reader.buf.is_empty() {
                state.idle.store(true, Relaxed);
                if state.closing.load(Relaxed) {
                    return;
                }
            }
            let read = poll_fn(|cx| {
                let r = reader.poll_fill(cx);
                if r.is_pending() && !reader.holds_buffer() && wbuf.capacity() > 0 {
                    // Idle: the buffers go back to the pool.
                    put_write_buffer(std::mem::take(&mut wbuf));
                }
                r
            })
            .await;
            match read {
                Ok(0) | Err(_) => return,
                Ok(_) => state.idle.store(false, Relaxed),
            }
        };
        let super::Head {
            method,
            uri,
            version,
            fields,
            body: framing,
            keep_alive,
            expect_continue,
        } = head;
        let facts_head = method == Method::HEAD;
        let http10 = version == Version::HTTP_10;
        let has_body = framing != Framing::Done;
        let (body, home, kept) = if has_body {
            if expect_continue
                && !http10
                && writer
                    .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                    .await
                    .is_err()
            {
                return;
            }
            let h: BodyHome = Arc::new(Mutex::new(None));
            let body = ReqBody::Client(ClientBody::new(reader, framing, h.clone()));
            (body, Some(h), None)
        } else {
            (ReqBody::Empty, None, Some(reader))
        };
        let timer = timer.get_or_insert_with(|| {
            Box::pin(tokio::time::sleep_until(
                tokio::time::Instant::now() + IDLE_TIMER,
            ))
        });
        let request = ClientRequest {
            method,
            uri,
            version,
            fields,
            body,
        };
        let resp = handle(&conn, request, Some(timer.as_mut())).await;
        let (parts, mut body) = resp.into_parts();
        // The write buffer is taken only now (none is held while the target thinks).
        if wbuf.capacity() == 0 {
            wbuf = take_write_buffer();
        }

        if parts.status == StatusCode::SWITCHING_PROTOCOLS {
            if let Some((up, guard)) = body.take_upgraded() {
                let Some(back) = reclaim(home, kept) else {
                    return;
                };
                let (_, _) = encode_response_head(
                    &mut wbuf,
                    parts.status,
                    body.target_head(),
                    &parts.headers,
                    ResponseFacts {
                        head_request: false,
                        http10,
                        keep_alive: true,
                        exact_len: None,
                    },
                );
                drop(body);
                if writer.write_all(&wbuf).await.is_ok() {
                    splice(back.reader, writer, up).await;
                }
                drop(guard);
                return;
            }
        }

        let (mode, mut keep_alive) = encode_response_head(
            &mut wbuf,
            parts.status,
            body.target_head(),
            &parts.headers,
            ResponseFacts {
                head_request: facts_head,
                http10,
                keep_alive: keep_alive && !state.closing.load(Relaxed),
                exact_len: body.size_hint().exact(),
            },
        );
        drop(parts);
        if write_body(&mut writer, &mut wbuf, &mut body, mode)
            .await
            .is_err()
        {
            return;
        }
        drop(body);
        // The request body hands the reader back when dropped (with the response body that
        // was still sending it).
        let Some(back) = reclaim(home, kept) else {
            return;
        };
        reader = back.reader;
        keep_alive &= back.complete;
        if !keep_alive || state.closing.load(Relaxed) {
            let _ = writer.shutdown().await;
            return;
        }
    }
}

/// The reader back: kept by the loop, or handed back by the request body when it had one.
fn reclaim(home: Option<BodyHome>, kept: Option<ClientReader>) -> Option<Returned> {
    match (kept, home) {
        (Some(reader), _) => Some(Returned {
            reader,
            complete: true,
        }),
        (None, Some(h)) => h.lock().unwrap_or_else(|p| p.into_inner()).take(),
        (None, None) => None,
    }
}

/// Writes the head in `wbuf` and the body, then flushes. An error: the connection is done.
async fn write_body(
    writer: &mut ClientWriter,
    wbuf: &mut Vec<u8>,
    body: &mut RespBody,
    mode: BodyMode,
) -> io::Result<()> {
    if mode != BodyMode::None {
        loop {
            // Whatever is ready goes along with the head; the buffer leaves before waiting.
            let polled = poll_fn(|cx| Poll::Ready(Pin::new(&mut *body).poll_frame(cx))).await;
            let frame = match polled {
                Poll::Ready(f) => f,
                Poll::Pending => {
                    flush(writer, wbuf).await?;
                    poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
                }
            };
            let data = match frame {
                None => break,
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(d) => d,
                    Err(_) => continue, // trailers are not sent
                },
                Some(Err(e)) => {
                    // The target's body broke off: the client sees the connection close.
                    flush(writer, wbuf).await?;
                    return Err(e);
                }
            };
            if data.is_empty() {
                continue;
            }
            if mode == BodyMode::Chunked {
                super::chunk_size_line(wbuf, data.len());
            }
            put_data(writer, wbuf, data).await?;
            if mode == BodyMode::Chunked {
                wbuf.extend_from_slice(b"\r\n");
            }
        }
        if mode == BodyMode::Chunked {
            wbuf.extend_from_slice(b"0\r\n\r\n");
        }
    }
    flush(writer, wbuf).await
}

async fn put_data(writer: &mut ClientWriter, wbuf: &mut Vec<u8>, data: Bytes) -> io::Result<()> {
    if data.len() <= COPY_DATA {
        wbuf.extend_from_slice(&data);
        if wbuf.len() >= 4 * COPY_DATA {
            flush(writer, wbuf).await?;
        }
        return Ok(());
    }
    flush(writer, wbuf).await?;
    writer.write_all(&data).await
}

async fn flush(writer: &mut ClientWriter, wbuf: &mut Vec<u8>) -> io::Result<()> {
    if !wbuf.is_empty() {
        let r = writer.write_all(wbuf).await;
        wbuf.clear();
        r?;
    }
    Ok(())
}

/// Copies bytes both ways between the client (after handing the target what the client already
/// sent) and an upgraded target connection (after handing the client what the target already
/// sent), until both sides have closed or one fails.
async fn splice(reader: ClientReader, mut writer: ClientWriter, up: Upstream) {
    let (mut io, early) = up.into_parts();
    if !early.is_empty() && writer.write_all(&early).await.is_err() {
        return;
    }
    let (mut target_read, mut target_write) = io.split();
    let ClientReader {
        io: mut client_read,
        buf,
    } = reader;
    if !buf.is_empty() && target_write.write_all(buf.data()).await.is_err() {
        return;
    }
    drop(buf);
    let up = async {
        tokio::io::copy(&mut client_read, &mut target_write).await?;
        target_write.shutdown().await
    };
    let down = async {
        tokio::io::copy(&mut target_read, &mut writer).await?;
        writer.shutdown().await
    };
    let _ = tokio::try_join!(up, down);
}
