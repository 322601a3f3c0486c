//! ALB-style access log: the request path hands a record to a bounded channel (never blocking;
//! records are dropped and counted when the writer falls behind) and a writer thread formats and
//! appends buffered lines to the file.

use crate::body::RespBody;
use crate::fields::Fields;
use crate::forward::{ClientRequest, Conn};
use crate::routing::strip_port;
use crate::snapshot::{Listener, LoadBalancer};
use crate::targets::{Group, Target};
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Response, Version};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// One request's log fields. The request path only clones reference-counted handles into it;
/// the writer thread formats the line.
#[derive(Debug, Clone)]
pub struct Record {
    pub time: SystemTime,
    pub lb: Arc<LoadBalancer>,
    pub client: SocketAddr,
    pub target: Option<Arc<Target>>,
    pub request_time: Duration,
    pub target_time: Option<Duration>,
    pub elb_status: u16,
    pub target_status: Option<u16>,
    pub received_bytes: u64,
    pub sent_bytes: u64,
    pub method: Method,
    /// The listener's `http` / `https` and port (request line).
    pub protocol: &'static str,
    pub port: u16,
    /// Host header (or the URI's authority), port included.
    pub host: Option<HeaderValue>,
    pub path_and_query: Option<PathAndQuery>,
    pub version: Version,
    pub user_agent: Option<HeaderValue>,
    pub target_group: Option<Arc<Group>>,
    pub trace_id: Option<HeaderValue>,
    pub rule_priority: Option<u32>,
    pub action: &'static str,
    pub redirect_url: Option<HeaderValue>,
    pub error_reason: Option<&'static str>,
}

fn content_length(h: &Fields) -> u64 {
    h.get("content-length")
        .and_then(crate::h1::parse_length)
        .unwrap_or(0)
}

fn value(h: &Fields, name: &str) -> Option<HeaderValue> {
    h.get(name).and_then(|v| HeaderValue::from_bytes(v).ok())
}

/// A header value as text for the log (`-` when absent or not visible ASCII).
fn text(v: &Option<HeaderValue>) -> &str {
    v.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-")
}

impl Record {
    /// Starts a record when a request arrives.
    pub(crate) fn start(
        req: &ClientRequest,
        conn: &Conn,
        l: &Listener,
        priority: Option<u32>,
    ) -> Record {
        let headers = &req.fields;
        let host = value(headers, "host").or_else(|| {
            req.uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        Record {
            time: SystemTime::now(),
            lb: l.lb.clone(),
            client: conn.peer,
            target: None,
            request_time: Duration::ZERO,
            target_time: None,
            elb_status: 0,
            target_status: None,
            received_bytes: content_length(headers),
            sent_bytes: 0,
            method: req.method.clone(),
            protocol: l.protocol,
            port: l.port,
            host,
            path_and_query: req.uri.path_and_query().cloned(),
            version: req.version,
            user_agent: value(headers, "user-agent"),
            target_group: None,
            trace_id: value(headers, "x-amzn-trace-id"),
            rule_priority: priority,
            action: "forward",
            redirect_url: None,
            error_reason: None,
        }
    }

    /// Completes the record with the response.
    pub(crate) fn finish(&mut self, resp: &Response<RespBody>, received: Instant) {
        use hyper::body::Body as _;
        self.elb_status = resp.status().as_u16();
        // The body's length when known (a streamed body of unknown length counts 0).
        self.sent_bytes = resp.body().size_hint().exact().unwrap_or(0);
        let total = received.elapsed();
        self.request_time = total.saturating_sub(self.target_time.unwrap_or_default());
    }

    /// The ALB log line (space separated, quoted fields as ALB quotes them).
    pub fn line(&self) -> String {
        let mut s = String::with_capacity(384);
        let opt_secs = |d: Option<Duration>| {
            d.map(|d| format!("{:.3}", d.as_secs_f64()))
                .unwrap_or_else(|| "-1".into())
        };
        let time = rfc3339(self.time);
        let domain = self
            .host
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .map(strip_port)
            .unwrap_or("-");
        let request_line = format!(
            "{} {}://{}:{}{} {:?}",
            self.method,
            self.protocol,
            domain,
            self.port,
            self.path_and_query
                .as_ref()
                .map(|p| p.as_str())
                .unwrap_or("/"),
            self.version
        );
        let target = self.target.as_ref().map(|t| t.label()).unwrap_or("-");
        let target_status = self
            .target_status
            .map(|c| c.to_string())
            .unwrap_or_else(|| "-".into());
        let _ = write!(
            s,
            "http {time} {} {} {} {:.3} {} 0.000 {} {} {} {} \"{}\" \"{}\" - - {} \"{}\" \"{}\" \"-\" {} {time} \"{}\" \"{}\" \"{}\" \"{}\" \"{}\" \"-\" \"-\"",
            self.lb.dimension,
            self.client,
            target,
            self.request_time.as_secs_f64(),
            opt_secs(self.target_time),
            self.elb_status,
            target_status,
            self.received_bytes,
            self.sent_bytes,
            request_line.replace('"', "%22"),
            text(&self.user_agent).replace('"', "%22"),
            self.target_group.as_ref().map(|g| g.arn.as_str()).unwrap_or("-"),
            text(&self.trace_id),
            domain.replace('"', "%22"),
            self.rule_priority.map(|p| p.to_string()).unwrap_or_else(|| "0".into()),
            self.action,
            text(&self.redirect_url),
            self.error_reason.unwrap_or("-"),
            target,
            target_status,
        );
        s
    }
}

/// `2024-05-01T12:00:00.123456Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// The sending side; the writer thread ends when it is dropped.
#[derive(Debug)]
pub struct AccessLog {
    tx: SyncSender<Record>,
    pub dropped: AtomicU64,
}

impl AccessLog {
    /// Opens (appends to) `path` and starts the writer thread.
    pub fn open(path: &Path) -> std::io::Result<AccessLog> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let (tx, rx) = sync_channel(65_536);
        std::thread::Builder::new()
            .name("berth-access-log".into())
            .spawn(move || write_loop(rx, file))?;
        Ok(AccessLog {
            tx,
            dropped: AtomicU64::new(0),
        })
    }

    /// Queues a record without blocking.
    pub fn send(&self, r: Record) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(r) {
            self.dropped.fetch_add(1, Relaxed);
        }
    }
}

fn write_loop(rx: Receiver<Record>, file: std::fs::File) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, file);
    while let Ok(first) = rx.recv() {
        let mut line = first.line();
        line.push('\n');
        let _ = out.write_all(line.as_bytes());
        while let Ok(r) = rx.try_recv() {
            let mut line = r.line();
            line.push('\n');
            let _ = out.write_all(line.as_bytes());
        }
        if let Err(e) = out.flush() {
            tracing::warn!(error = %e, "access log write failed");
        }
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_micros(1_714_564_800_123_456);
        assert_eq!(rfc3339(t), "2024-05-01T12:00:00.123456Z");
        assert_eq!(
            rfc3339(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000000Z"
        );
    }
}
