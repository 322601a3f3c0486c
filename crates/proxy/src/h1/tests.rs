//! Tests of the HTTP/1.1 client codec: request heads (good, malformed, oversize, pipelined),
//! body framing read from a connection, and response heads.

use super::*;
use http::header::HeaderName;
use tokio::io::AsyncWriteExt;

const LIMITS: Limits = Limits {
    max_head: 1024,
    max_headers: 8,
};

fn buffer(bytes: &[u8]) -> ReadBuffer {
    let mut b = ReadBuffer::default();
    b.extend(bytes);
    b
}

fn parse(bytes: &[u8]) -> Result<Option<Head>, HeadError> {
    parse_head(&mut buffer(bytes), &LIMITS)
}

fn parsed(bytes: &[u8]) -> Head {
    parse(bytes).unwrap().expect("a complete head")
}

#[test]
fn a_request_head_is_parsed_and_taken_out_of_the_buffer() {
    let mut b = buffer(
        b"GET /a/b?c=1 HTTP/1.1\r\nHost: example.com\r\nX-Custom: v1\r\nx-custom: v2\r\n\r\nGET /next HTTP/1.1\r\nHost: n\r\n\r\n",
    );
    let head = parse_head(&mut b, &LIMITS).unwrap().unwrap();
    assert_eq!(head.method, Method::GET);
    assert_eq!(head.uri.path(), "/a/b");
    assert_eq!(head.uri.query(), Some("c=1"));
    assert_eq!(head.version, Version::HTTP_11);
    assert_eq!(head.fields.get("host"), Some(&b"example.com"[..]));
    let custom: Vec<_> = head.fields.get_all("x-custom").collect();
    assert_eq!(custom, [b"v1", b"v2"]);
    let names: Vec<_> = head.fields.iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [&b"Host"[..], b"X-Custom", b"x-custom"],
        "names as sent"
    );
    assert_eq!(head.body, Framing::Done);
    assert!(head.keep_alive);
    assert!(!head.expect_continue);
    // The pipelined request stays in the buffer, whole, and parses next.
    assert_eq!(b.data(), b"GET /next HTTP/1.1\r\nHost: n\r\n\r\n");
    let next = parse_head(&mut b, &LIMITS).unwrap().unwrap();
    assert_eq!(next.uri.path(), "/next");
    assert!(b.is_empty());
}

#[test]
fn a_partial_head_waits_for_more_bytes() {
    let mut b = buffer(b"GET / HTTP/1.1\r\nHost: x\r\n");
    assert!(parse_head(&mut b, &LIMITS).unwrap().is_none());
    assert_eq!(b.len(), 25, "nothing consumed");
    b.extend(b"\r\n");
    assert!(parse_head(&mut b, &LIMITS).unwrap().is_some());
}

#[test]
fn malformed_request_lines_and_fields_are_400() {
    for bad in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1 x\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET  / HTTP/1.1\r\n\r\n",
        b"G(T / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: v\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
        b"GET /a\x7fb HTTP/1.1\r\n\r\n",
    ] {
        let e = parse(bad).expect_err(&String::from_utf8_lossy(bad));
        assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{e}");
        assert!(matches!(e, HeadError::Malformed(_)), "{e:?}");
    }
}

#[test]
fn body_framing_comes_from_content_length_or_chunked() {
    let h = parsed(b"POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n");
    assert_eq!(h.body, Framing::Length(12));
    let h = parsed(b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(h.body, Framing::Done);
    let h = parsed(b"POST / HTTP/1.1\r\nContent-Length: 7\r\ncontent-length: 7\r\n\r\n");
    assert_eq!(h.body, Framing::Length(7), "equal repeats are one length");
    let h = parsed(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
    assert_eq!(h.body, Framing::Chunked(Chunk::Size));
    assert_eq!(
        h.fields.get("transfer-encoding"),
        Some(&b"gzip, chunked"[..]),
        "kept for the request path to see"
    );
}

#[test]
fn conflicting_or_invalid_framing_is_400() {
    for bad in [
        &b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        let e = parse(bad).expect_err(&String::from_utf8_lossy(bad));
        assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{e}");
    }
}

#[test]
fn oversize_heads_and_too_many_fields_are_431() {
    let mut big = b"GET / HTTP/1.1\r\nx-big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 2000));
    // Not even complete yet: refused once past the limit.
    assert_eq!(parse(&big).unwrap_err(), HeadError::TooLarge(1024));
    big.extend_from_slice(b"\r\n\r\n");
    let e = parse(&big).unwrap_err();
    assert_eq!(e, HeadError::TooLarge(1024));
    assert_eq!(e.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..9 {
        many.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let e = parse(&many).unwrap_err();
    assert_eq!(e, HeadError::TooManyHeaders(8));
    assert_eq!(e.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    // Exactly at the limit is fine.
    let mut eight = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..8 {
        eight.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
    }
    eight.extend_from_slice(b"\r\n");
    assert_eq!(parsed(&eight).fields.len(), 8);
}

#[test]
fn a_limit_above_the_stack_array_parses_on_the_heap() {
    let limits = Limits {
        max_head: 64 * 1024,
        max_headers: 150,
    };
    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..140 {
        many.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let head = parse_head(&mut buffer(&many), &limits).unwrap().unwrap();
    assert_eq!(head.fields.len(), 140);
}

#[test]
fn keep_alive_follows_version_and_connection() {
    assert!(parsed(b"GET / HTTP/1.1\r\n\r\n").keep_alive);
    assert!(!parsed(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
    assert!(!parsed(b"GET / HTTP/1.1\r\nConnection: upgrade, Close\r\n\r\n").keep_alive);
    let h10 = parsed(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(h10.version, Version::HTTP_10);
    assert!(!h10.keep_alive);
    assert!(parsed(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
}

#[test]
fn expect_continue_is_noted() {
    let h = parsed(b"PUT / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n");
    assert!(h.expect_continue);
    assert!(!parsed(b"PUT / HTTP/1.1\r\nExpect: nothing\r\n\r\n").expect_continue);
}

#[test]
fn other_request_target_forms_parse() {
    let h = parsed(b"GET http://example.com:8080/p?q HTTP/1.1\r\n\r\n");
    assert_eq!(h.uri.authority().unwrap(), "example.com:8080");
    assert_eq!(h.uri.path(), "/p");
    let h = parsed(b"OPTIONS * HTTP/1.1\r\n\r\n");
    assert_eq!(h.uri, "*");
    // Leading empty lines before a request line are ignored.
    let h = parsed(b"\r\nGET /x HTTP/1.1\r\n\r\n");
    assert_eq!(h.uri.path(), "/x");
}

impl ClientRead for tokio::io::DuplexStream {}

/// A body over a connection that already holds `buffered` and then gets `later`, read to its
/// end: (the data, the error if any, what came back to the connection).
async fn read_body(
    framing: Framing,
    buffered: &[u8],
    later: &[u8],
) -> (Vec<u8>, Option<String>, Returned) {
    let (client, mut peer) = tokio::io::duplex(64 * 1024);
    let mut reader = ClientReader::new(Box::new(client));
    reader.buf.extend(buffered);
    peer.write_all(later).await.unwrap();
    drop(peer); // the client closes after `later`
    let home: BodyHome = Arc::new(Mutex::new(None));
    let mut body = ClientBody::new(reader, framing, home.clone());
    let mut data = Vec::new();
    let mut error = None;
    while let Some(piece) = std::future::poll_fn(|cx| body.poll_data(cx)).await {
        match piece {
            Ok(d) => data.extend_from_slice(&d),
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    drop(body);
    let back = home.lock().unwrap().take().expect("the reader came back");
    (data, error, back)
}

#[tokio::test]
async fn a_length_body_stops_at_its_length_and_leaves_the_next_request() {
    let (data, error, back) = read_body(
        Framing::Length(10),
        b"hello",
        b"worldGET /next HTTP/1.1\r\n\r\n",
    )
    .await;
    assert_eq!(data, b"helloworld");
    assert_eq!(error, None);
    assert!(back.complete);
    let mut reader = back.reader;
    // What follows the body is the next request (maybe not read yet).
    while reader.buf.len() < 22 {
        let n = std::future::poll_fn(|cx| reader.poll_fill(cx))
            .await
            .unwrap();
        assert!(n > 0, "ended early: {:?}", reader.buf.data());
    }
    assert_eq!(reader.buf.data(), b"GET /next HTTP/1.1\r\n\r\n");
}

#[tokio::test]
async fn a_chunked_body_is_decoded_with_extensions_and_trailers() {
    let (data, error, back) = read_body(
        Framing::Chunked(Chunk::Size),
        b"5;ext=1\r\nhello\r\n",
        b"6\r\n world\r\n0\r\nx-trailer: t\r\n\r\nNEXT",
    )
    .await;
    assert_eq!(data, b"hello world");
    assert_eq!(error, None);
    assert!(back.complete);
    assert!(back.reader.buf.data().starts_with(b"NEXT") || back.reader.buf.is_empty());
}

#[tokio::test]
async fn bad_chunk_sizes_fail_the_body_and_the_connection() {
    for bad in [
        &b"zz\r\nhello\r\n"[..],
        b"ffffffffffffffffff\r\n",
        b"\r\n",
        b"5\r\nhelloXX",
    ] {
        let (_, error, back) = read_body(Framing::Chunked(Chunk::Size), bad, b"").await;
        assert!(error.is_some(), "{:?}", String::from_utf8_lossy(bad));
        assert!(!back.complete, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[tokio::test]
async fn a_body_cut_short_by_the_client_fails() {
    let (data, error, back) = read_body(Framing::Length(10), b"abc", b"de").await;
    assert_eq!(data, b"abcde");
    assert!(error
        .unwrap()
        .contains("before the end of the request body"));
    assert!(!back.complete);
}

#[tokio::test]
async fn a_body_dropped_unread_leaves_the_connection_unusable() {
    let (client, _peer) = tokio::io::duplex(1024);
    let home: BodyHome = Arc::new(Mutex::new(None));
    let body = ClientBody::new(
        ClientReader::new(Box::new(client)),
        Framing::Length(3),
        home.clone(),
    );
    drop(body);
    assert!(!home.lock().unwrap().take().unwrap().complete);
}

fn response(
    status: u16,
    headers: &[(&str, &str)],
    facts: ResponseFacts,
) -> (String, BodyMode, bool) {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let mut w = Vec::new();
    let (mode, keep) = encode_response_head(
        &mut w,
        StatusCode::from_u16(status).unwrap(),
        None,
        &map,
        facts,
    );
    (String::from_utf8(w).unwrap(), mode, keep)
}

const FACTS: ResponseFacts = ResponseFacts {
    head_request: false,
    http10: false,
    keep_alive: true,
    exact_len: None,
};

#[test]
fn response_heads_carry_the_framing_the_body_needs() {
    let dated = [("date", "Sun, 22 Nov 2026 06:00:00 GMT")];
    // Known length: Content-Length added.
    let (h, mode, keep) = response(
        200,
        &dated,
        ResponseFacts {
            exact_len: Some(3),
            ..FACTS
        },
    );
    assert_eq!(
        h,
        "HTTP/1.1 200 OK\r\ndate: Sun, 22 Nov 2026 06:00:00 GMT\r\ncontent-length: 3\r\n\r\n"
    );
    assert_eq!((mode, keep), (BodyMode::Length, true));
    // Unknown length: chunked for HTTP/1.1 ...
    let (h, mode, _) = response(200, &dated, FACTS);
    assert!(h.contains("transfer-encoding: chunked\r\n"), "{h}");
    assert_eq!(mode, BodyMode::Chunked);
    // ... until close for HTTP/1.0.
    let (h, mode, keep) = response(
        200,
        &dated,
        ResponseFacts {
            http10: true,
            ..FACTS
        },
    );
    assert!(
        h.contains("connection: close\r\n") && !h.contains("chunked"),
        "{h}"
    );
    assert_eq!((mode, keep), (BodyMode::Close, false));
    // HTTP/1.0 keep-alive is said so.
    let (h, _, keep) = response(
        200,
        &dated,
        ResponseFacts {
            http10: true,
            exact_len: Some(0),
            ..FACTS
        },
    );
    assert!(h.contains("connection: keep-alive\r\n"), "{h}");
    assert!(keep);
    // HEAD: the length is told, no body goes.
    let (h, mode, _) = response(
        200,
        &[("content-length", "42")],
        ResponseFacts {
            head_request: true,
            exact_len: Some(0),
            ..FACTS
        },
    );
    assert!(
        h.contains("content-length: 42\r\n") && !h.contains("content-length: 0"),
        "{h}"
    );
    assert_eq!(mode, BodyMode::None);
    // 204 and 304 have no body and no length added.
    let (h, mode, _) = response(
        204,
        &dated,
        ResponseFacts {
            exact_len: Some(0),
            ..FACTS
        },
    );
    assert!(!h.contains("content-length"), "{h}");
    assert_eq!(mode, BodyMode::None);
    // Closing: said so.
    let (h, _, keep) = response(
        200,
        &dated,
        ResponseFacts {
            keep_alive: false,
            exact_len: Some(0),
            ..FACTS
        },
    );
    assert!(h.contains("connection: close\r\n"), "{h}");
    assert!(!keep);
}

#[test]
fn response_heads_get_a_date_once_and_drop_framing_fields_of_their_own() {
    let (h, _, _) = response(
        200,
        &[
            ("transfer-encoding", "chunked"),
            ("connection", "x"),
            ("x-a", "1"),
        ],
        ResponseFacts {
            exact_len: Some(1),
            ..FACTS
        },
    );
    assert!(
        !h.contains("transfer-encoding") && !h.contains("connection: x"),
        "{h}"
    );
    assert_eq!(h.matches("date: ").count(), 1, "{h}");
    let date = h
        .split("date: ")
        .nth(1)
        .unwrap()
        .split("\r\n")
        .next()
        .unwrap();
    assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
    // A 101 keeps its Connection and Upgrade fields, and gets no framing.
    let (h, mode, _) = response(
        101,
        &[("connection", "Upgrade"), ("upgrade", "websocket")],
        FACTS,
    );
    assert!(h.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{h}");
    assert!(
        h.contains("connection: Upgrade\r\nupgrade: websocket\r\n"),
        "{h}"
    );
    assert_eq!(mode, BodyMode::None);
}

#[test]
fn error_answers_close_and_chunk_lines_are_hex() {
    let mut w = Vec::new();
    encode_error(&mut w, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let text = String::from_utf8(w).unwrap();
    assert!(
        text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{text}"
    );
    assert!(text.contains("connection: close\r\n"), "{text}");
    let body = text.split("\r\n\r\n").nth(1).unwrap();
    assert!(
        text.contains(&format!("content-length: {}\r\n", body.len())),
        "{text}"
    );
    let mut w = Vec::new();
    chunk_size_line(&mut w, 0x1a2f);
    chunk_size_line(&mut w, 0);
    assert_eq!(w, b"1a2f\r\n0\r\n");
}
