//! The CloudWatch API (2010-08-01) in the three protocols its clients speak, over one
//! operation layer ([`ops`]) working on JSON-like data:
//! - rpc-v2-cbor (botocore ≥ 1.40 prefers it, so awscli and boto3 here send it):
//!   `POST /service/GraniteServiceVersion20100801/operation/<Op>`, header
//!   `smithy-protocol: rpc-v2-cbor`, CBOR bodies; the response should carry the same header.
//! - awsJson 1.0: `POST /` with `X-Amz-Target: GraniteServiceVersion20100801.<Op>`.
//! - query: `POST /` form body `Action=<Op>&Version=2010-08-01&...`, XML out.
//!
//! Errors: CBOR and JSON bodies `{"__type": code, "message": text}`; query `<ErrorResponse>`.

pub mod codec;
pub mod ops;

use berth_metrics::CloudWatch;
use serde_json::Value;

/// The service name in rpc-v2-cbor paths and awsJson targets.
pub const SERVICE: &str = "GraniteServiceVersion20100801";
/// The content type of rpc-v2-cbor requests and responses.
pub const CBOR_CONTENT_TYPE: &str = "application/cbor";
/// The content type of awsJson 1.0 responses.
pub const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.0";
/// The content type of query responses.
pub const XML_CONTENT_TYPE: &str = "text/xml";

/// A response: HTTP status, content type and body.
pub type Response = (u16, &'static str, Vec<u8>);

/// The operation named by an rpc-v2-cbor path
/// (`/service/GraniteServiceVersion20100801/operation/PutMetricData` → `PutMetricData`).
pub fn cbor_operation(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/service/")?;
    let (service, op) = rest.split_once("/operation/")?;
    (service == SERVICE && !op.is_empty() && !op.contains('/')).then_some(op)
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "berth-cw-{:x}-{}",
        (now() * 1000.0) as u64,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn error_value(e: &ops::ApiError) -> Value {
    serde_json::json!({"__type": e.code, "message": e.message})
}

fn strip(mut v: Value) -> Value {
    crate::json::strip_nulls(&mut v);
    v
}

/// Handles an rpc-v2-cbor request for operation `op` (see [`cbor_operation`]).
pub fn handle_cbor(cw: &CloudWatch, op: &str, body: &[u8]) -> Response {
    let result = codec::cbor_to_value(body)
        .map_err(|m| ops::ApiError::client("SerializationException", m))
        .and_then(|input| ops::call(cw, op, &input, now()));
    match result {
        Ok(out) => (200, CBOR_CONTENT_TYPE, codec::value_to_cbor(&strip(out))),
        Err(e) => (
            e.status,
            CBOR_CONTENT_TYPE,
            codec::value_to_cbor(&error_value(&e)),
        ),
    }
}

/// Handles an awsJson 1.0 request for operation `op` (the part of X-Amz-Target after the dot).
pub fn handle_json(cw: &CloudWatch, op: &str, body: &[u8]) -> Response {
    let input = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Value::Object(Default::default()))
    } else {
        serde_json::from_slice::<Value>(body).map_err(|e| {
            ops::ApiError::client(
                "SerializationException",
                format!("the body is not JSON: {e}"),
            )
        })
    };
    match input.and_then(|input| ops::call(cw, op, &input, now())) {
        Ok(out) => (200, JSON_CONTENT_TYPE, strip(out).to_string().into_bytes()),
        Err(e) => (
            e.status,
            JSON_CONTENT_TYPE,
            error_value(&e).to_string().into_bytes(),
        ),
    }
}

/// Handles a query-protocol request (`Action=...&Version=2010-08-01&...`).
pub fn handle_query(cw: &CloudWatch, form_body: &[u8]) -> Response {
    let rid = request_id();
    let result = codec::form_to_value(form_body)
        .map_err(|m| ops::ApiError::client("MissingAction", m))
        .and_then(|(action, input)| ops::call(cw, &action, &input, now()).map(|out| (action, out)));
    match result {
        Ok((action, out)) => (
            200,
            XML_CONTENT_TYPE,
            codec::xml_response(&action, &strip(out), &rid).into_bytes(),
        ),
        Err(e) => (
            e.status,
            XML_CONTENT_TYPE,
            codec::xml_error(&e.code, &e.message, e.status < 500, &rid).into_bytes(),
        ),
    }
}

#[cfg(test)]
mod tests;
