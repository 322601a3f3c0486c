//! Tests of the target-side HTTP/1.1: head encoding, response parsing and body framing against
//! scripted targets on loopback.

use super::*;
use http::{header, Method};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn head<'a>(headers: &'a Fields, chunked: bool) -> RequestHead<'a> {
    RequestHead {
        method: &Method::GET,
        path_and_query: "/p?q=1",
        headers,
        host: None,
        peer_ip: b"10.0.0.9",
        forwarded_proto: b"http",
        forwarded_port: b"80",
        trace_id: None,
        upgrade: None,
        chunked,
    }
}

#[test]
fn heads_drop_hop_by_hop_fields_and_add_forwarding_ones() {
    let mut h = HeaderMap::new();
    h.insert(header::HOST, HeaderValue::from_static("example.com"));
    h.insert(
        header::CONNECTION,
        HeaderValue::from_static("keep-alive, x-secret"),
    );
    h.insert("x-secret", HeaderValue::from_static("1"));
    h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    h.insert(header::TE, HeaderValue::from_static("trailers"));
    h.insert("x-forwarded-proto", HeaderValue::from_static("gopher"));
    h.append("x-forwarded-for", HeaderValue::from_static("1.1.1.1"));
    h.append("x-forwarded-for", HeaderValue::from_static("2.2.2.2"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
    h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
    let h = Fields::from_map(&h);
    let mut w = Vec::new();
    encode_head(&mut w, &head(&h, false));
    let text = String::from_utf8(w.clone()).unwrap();
    assert_eq!(
        text,
        "GET /p?q=1 HTTP/1.1\r\nhost: example.com\r\ncontent-length: 5\r\naccept: */*\r\n\
         x-forwarded-for: 1.1.1.1, 2.2.2.2, 10.0.0.9\r\nx-forwarded-proto: http\r\n\
         x-forwarded-port: 80\r\n\r\n"
    );

    // Chunked: Content-Length goes, Transfer-Encoding comes; Host, trace id and upgrade added.
    let mut up = head(&h, true);
    up.host = Some(b"10.0.0.1:8080");
    up.trace_id = Some(b"Root=1-x");
    up.upgrade = Some(b"websocket");
    let mut h2 = HeaderMap::new();
    h2.insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
    let h2 = Fields::from_map(&h2);
    up.headers = &h2;
    encode_head(&mut w, &up);
    assert_eq!(
        String::from_utf8(w).unwrap(),
        "GET /p?q=1 HTTP/1.1\r\nhost: 10.0.0.1:8080\r\nx-forwarded-for: 10.0.0.9\r\n\
         x-forwarded-proto: http\r\nx-forwarded-port: 80\r\nx-amzn-trace-id: Root=1-x\r\n\
         connection: upgrade\r\nupgrade: websocket\r\ntransfer-encoding: chunked\r\n\r\n"
    );
}

/// A target that reads one request head and answers with `answer`, written in two pieces to
/// exercise partial reads; returns the request it read.
async fn scripted(answer: &'static [u8]) -> (Upstream, tokio::task::JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let mid = answer.len() / 2;
        s.write_all(&answer[..mid]).await.unwrap();
        s.flush().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        s.write_all(&answer[mid..]).await.unwrap();
        // Keep the connection open a little (keep-alive), then close.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        got
    });
    let io = TcpStream::connect(addr).await.unwrap();
    (Upstream::new(io), task)
}

/// Sends a GET (or `method`) and reads the whole response: head, body, reusable.
async fn exchange(
    mut up: Upstream,
    method: Method,
) -> Result<(ResponseHead, Vec<u8>, bool), String> {
    up.wbuf.clear();
    up.wbuf
        .extend_from_slice(format!("{method} / HTTP/1.1\r\nhost: t\r\n\r\n").as_bytes());
    let mut ex = Exchange::new(up, None, false);
    let head = std::future::poll_fn(|cx| ex.poll_head(cx, &method, 65536))
        .await
        .map_err(|e| e.to_string())?;
    let mut body = UpstreamBody::new(ex, &head);
    let mut data = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| body.poll_frame(cx)).await {
        let frame = frame.map_err(|e| e.to_string())?;
        data.extend_from_slice(frame.data_ref().unwrap());
    }
    let reusable = body.reusable().is_some();
    Ok((head, data, reusable))
}

#[tokio::test]
async fn response_bodies_by_length_chunks_and_close() {
    let (up, _t) = scripted(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nKeep-Alive: timeout=5\r\n\r\nhello",
    )
    .await;
    let (h, body, reusable) = exchange(up, Method::GET).await.unwrap();
    assert_eq!(h.status, 200);
    assert_eq!(body, b"hello");
    assert!(reusable);
    assert_eq!(h.headers.to_map().get("x-a").unwrap(), "1");
    assert_eq!(h.headers.to_map().get("content-length").unwrap(), "5");
    assert!(!h.headers.to_map().contains_key("keep-alive"), "hop-by-hop");

    let (up, _t) = scripted(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nConnection: x-hop\r\nX-Hop: 1\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
    )
    .await;
    let (h, body, reusable) = exchange(up, Method::GET).await.unwrap();
    assert_eq!(h.status, 201, "the interim 100 is skipped");
    assert_eq!(body, b"hello world");
    assert!(reusable);
    assert!(!h.headers.to_map().contains_key("transfer-encoding"));
    assert!(
        !h.headers.to_map().contains_key("x-hop"),
        "named in Connection: hop-by-hop"
    );

    let (up, _t) = scripted(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end").await;
    let (_, body, reusable) = exchange(up, Method::GET).await.unwrap();
    assert_eq!(body, b"until the end");
    assert!(!reusable);

    let (up, _t) = scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").await;
    let (_, body, reusable) = exchange(up, Method::HEAD).await.unwrap();
    assert!(body.is_empty(), "HEAD: no body whatever the length says");
    assert!(reusable);
}

#[tokio::test]
async fn broken_responses_are_errors() {
    let (up, _t) = scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort").await;
    let err = exchange(up, Method::GET).await.unwrap_err();
    assert!(err.contains("closed"), "{err}");

    let (up, _t) =
        scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab").await;
    let err = exchange(up, Method::GET).await.unwrap_err();
    assert!(err.contains("Content-Length"), "{err}");

    let (up, _t) = scripted(b"NOT HTTP AT ALL\r\n\r\n").await;
    let err = exchange(up, Method::GET).await.unwrap_err();
    assert!(err.contains("malformed"), "{err}");

    let (up, _t) = scripted(b"").await;
    let err = exchange(up, Method::GET).await.unwrap_err();
    assert!(err.contains("without answering"), "{err}");
}

/// The forwarded fields of a response head, as an HTTP/1.1 client gets them.
async fn forwarded_fields(response: &'static [u8]) -> String {
    let (up, _t) = scripted(response).await;
    let (h, _, _) = exchange(up, Method::GET).await.unwrap();
    let mut w = Vec::new();
    h.headers.write_fields(&mut w);
    String::from_utf8(w).unwrap()
}

#[tokio::test]
async fn response_fields_are_copied_in_order_without_hop_by_hop_ones() {
    let expected = "Server: t\r\nDate: Sun, 22 Nov 2026 06:00:00 GMT\r\nContent-Length: 2\r\nX-Backend: 1\r\nX-Last: z\r\n";
    // CRLF lines: copied as runs of whole lines around the left-out ones.
    let crlf = forwarded_fields(
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive, x-gone\r\nServer: t\r\nDate: Sun, 22 Nov 2026 06:00:00 GMT\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\nX-Backend: 1\r\nX-Gone: 1\r\nX-Last: z\r\n\r\nok",
    )
    .await;
    assert_eq!(crlf, expected);
    // Bare LF lines: rebuilt one by one, with CRLF.
    let lf = forwarded_fields(
        b"HTTP/1.1 200 OK\nConnection: keep-alive, x-gone\nServer: t\nDate: Sun, 22 Nov 2026 06:00:00 GMT\nContent-Length: 2\nKeep-Alive: timeout=5\nX-Backend: 1\nX-Gone: 1\nX-Last: z\n\nok",
    )
    .await;
    assert_eq!(lf, expected);
    // A chunked response loses its Transfer-Encoding and any Content-Length.
    let chunked = forwarded_fields(
        b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(chunked, "X-A: 1\r\n");
}
