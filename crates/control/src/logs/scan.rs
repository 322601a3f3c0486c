//! Running Logs Insights queries over the store: segment files are scanned in parallel (one
//! worker per core); when the query's filters need a literal text in `@message`, candidate lines
//! are found with a substring search over the whole file (as grep does) and only those are parsed.
//! Also the registry of started queries (StartQuery / GetQueryResults / StopQuery).

use super::query::{apply_streaming, render_row, Aggregation, Command, Event, Query, Row};
use super::{decode_line, escape, lines, now_ms, LogStore};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What a query looked at.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueryStats {
    pub records_matched: u64,
    pub records_scanned: u64,
    pub bytes_scanned: u64,
}

/// A finished query's result table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryOutput {
    pub rows: Vec<Vec<(String, String)>>,
    pub stats: QueryStats,
}

/// Why a query could not run.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the query was cancelled")]
    Cancelled,
}

struct Job {
    group: String,
    stream: String,
    path: std::path::PathBuf,
    /// Every line of the segment lies in [lo, hi).
    inside: bool,
}

#[derive(Default)]
struct Partial {
    agg: Aggregation,
    rows: Vec<Row<'static>>,
    stats: QueryStats,
}

/// Runs `query` over the groups' events in [start_ms, end_ms), at most `limit` result rows.
pub fn run_query(
    store: &LogStore,
    groups: &[String],
    start_ms: i64,
    end_ms: i64,
    query: &Query,
    limit: usize,
    cancel: &AtomicBool,
) -> Result<QueryOutput, ScanError> {
    let now = now_ms();
    let mut jobs = Vec::new();
    let mut bounds = Vec::new();
    for g in groups {
        let lo = store.cutoff(g, now).map_or(start_ms, |c| c.max(start_ms));
        for stream in store.streams(g).unwrap_or_default().keys() {
            for seg in store.segments(g, stream, Some(lo), Some(end_ms)) {
                let seg_lo = seg.bucket * super::SEGMENT_MS;
                let seg_hi = seg_lo + super::SEGMENT_MS;
                jobs.push(Job {
                    group: g.clone(),
                    stream: stream.clone(),
                    path: seg.path,
                    inside: seg_lo >= lo && seg_hi <= end_ms,
                });
                bounds.push((lo, end_ms));
            }
        }
    }
    let prefix = query.streaming_prefix();
    let stats_next = match query.commands.get(prefix) {
        Some(Command::Stats { aggs, by }) => Some((aggs, by)),
        _ => None,
    };
    // Keep only the newest `keep` rows per worker when nothing after the prefix needs more.
    let keep = match &query.commands[prefix..] {
        [] => Some(limit),
        [Command::Limit(n)] => Some((*n).min(limit)),
        _ => None,
    };
    let literal = query.required_literal().map(|l| escape(&l));
    let literal_decides = query.literal_decides()
        && query
            .required_literal()
            .is_some_and(|l| escape(&l) == l.as_bytes());
    let finder = literal.as_deref().map(memchr::memmem::Finder::new);
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8)
        .min(jobs.len().max(1));
    let worker = || -> Result<Partial, ScanError> {
        let mut part = Partial::default();
        let mut buf = Vec::new();
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(ScanError::Cancelled);
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = jobs.get(i) else { break };
            let (lo, hi) = bounds[i];
            // One buffer per worker, reused: no fresh pages to fault in for every file.
            buf.clear();
            let read = std::fs::File::open(&job.path)
                .and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut buf));
            match read {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(ScanError::Io {
                        path: job.path.display().to_string(),
                        source: e,
                    })
                }
            }
            part.stats.bytes_scanned += buf.len() as u64;
            if job.inside {
                part.stats.records_scanned += buf.iter().filter(|&&b| b == b'\n').count() as u64;
            } else {
                part.stats.records_scanned += lines(&buf)
                    .filter_map(|l| {
                        let tab = memchr::memchr(b'\t', l)?;
                        super::parse_i64(&l[..tab])
                    })
                    .filter(|ts| *ts >= lo && *ts < hi)
                    .count() as u64;
            }
            // `decided`: the literal was found in the message, which settles the first filter.
            let mut handle = |line: &[u8], decided: bool| {
                let Some((ts, message)) = decode_line(line) else {
                    return;
                };
                if !job.inside && (ts < lo || ts >= hi) {
                    return;
                }
                let mut row = Row::from_event(Event {
                    timestamp: ts,
                    message,
                    log_stream: Cow::Borrowed(&job.stream),
                    log: Cow::Borrowed(&job.group),
                });
                let skip = usize::from(decided && literal_decides);
                for c in &query.commands[skip..prefix] {
                    if !apply_streaming(c, &mut row) {
                        return;
                    }
                }
                part.stats.records_matched += 1;
                match stats_next {
                    Some((aggs, by)) => part.agg.add(aggs, by, &row),
                    None => {
                        part.rows.push(row.into_owned());
                        if let Some(k) = keep {
                            if part.rows.len() >= 2 * k.max(1024) {
                                newest_first(&mut part.rows);
                                part.rows.truncate(k);
                            }
                        }
                    }
                }
            };
            match &finder {
                Some(f) => {
                    let mut at = 0;
                    while let Some(hit) = f.find(&buf[at..]) {
                        let hit = at + hit;
                        let start = memchr::memrchr(b'\n', &buf[..hit]).map_or(0, |p| p + 1);
                        let Some(end) = memchr::memchr(b'\n', &buf[hit..]).map(|p| hit + p) else {
                            break;
                        };
                        let in_message = memchr::memchr(b'\t', &buf[start..end])
                            .is_some_and(|tab| start + tab < hit);
                        handle(&buf[start..end], in_message);
                        at = end + 1;
                    }
                }
                None => lines(&buf).for_each(|l| handle(l, false)),
            }
        }
        Ok(part)
    };
    let partials: Vec<Result<Partial, ScanError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers).map(|_| s.spawn(worker)).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(ScanError::Cancelled)))
            .collect()
    });
    let mut stats = QueryStats::default();
    let mut agg = Aggregation::default();
    let mut rows = Vec::new();
    for p in partials {
        let p = p?;
        stats.records_matched += p.stats.records_matched;
        stats.records_scanned += p.stats.records_scanned;
        stats.bytes_scanned += p.stats.bytes_scanned;
        if let Some((aggs, _)) = stats_next {
            agg.merge(aggs, p.agg);
        }
        rows.extend(p.rows);
    }
    let (rows, from) = match stats_next {
        Some((aggs, by)) => (agg.finish(aggs, by), prefix + 1),
        None => (rows, prefix),
    };
    let mut rows = super::query::run_rest(query, from, rows);
    rows.truncate(limit);
    let columns = query.columns();
    Ok(QueryOutput {
        rows: rows.iter().map(|r| render_row(&columns, r)).collect(),
        stats,
    })
}

fn newest_first(rows: &mut [Row<'static>]) {
    rows.sort_by_key(|r| std::cmp::Reverse(r.event.as_ref().map_or(0, |e| e.timestamp)));
}

/// One started query.
#[derive(Debug, Clone)]
pub struct QueryRecord {
    pub query_id: String,
    pub query_string: String,
    pub log_group_names: Vec<String>,
    /// Scheduled, Running, Complete, Failed, Cancelled.
    pub status: &'static str,
    pub create_time: i64,
    pub output: QueryOutput,
    pub error: Option<String>,
    cancel: Arc<AtomicBool>,
}

/// The queries started on a store (the last 1,000 are kept).
#[derive(Debug, Default)]
pub struct Queries {
    records: Mutex<BTreeMap<String, QueryRecord>>,
    order: Mutex<Vec<String>>,
}

/// Queries that may run at once (CloudWatch's quota is 30).
pub const MAX_RUNNING: usize = 30;
const KEPT: usize = 1000;

impl Queries {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, QueryRecord>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new query as Scheduled; None when too many are running.
    pub fn register(
        &self,
        query_string: &str,
        groups: &[String],
    ) -> Option<(String, Arc<AtomicBool>)> {
        let mut records = self.lock();
        let running = records
            .values()
            .filter(|r| matches!(r.status, "Scheduled" | "Running"))
            .count();
        if running >= MAX_RUNNING {
            return None;
        }
        let id = uuid::Uuid::new_v4().to_string();
        let cancel = Arc::new(AtomicBool::new(false));
        records.insert(
            id.clone(),
            QueryRecord {
                query_id: id.clone(),
                query_string: query_string.to_string(),
                log_group_names: groups.to_vec(),
                status: "Scheduled",
                create_time: now_ms(),
                output: QueryOutput::default(),
                error: None,
                cancel: cancel.clone(),
            },
        );
        let mut order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        order.push(id.clone());
        while order.len() > KEPT {
            let old = order.remove(0);
            records.remove(&old);
        }
        Some((id, cancel))
    }

    /// Marks a scheduled query running (false when it was cancelled meanwhile).
    pub fn set_running(&self, id: &str) -> bool {
        match self.lock().get_mut(id) {
            Some(r) if r.status == "Scheduled" => {
                r.status = "Running";
                true
            }
            _ => false,
        }
    }

    /// Records how a query ended.
    pub fn finish(&self, id: &str, result: Result<QueryOutput, ScanError>) {
        if let Some(r) = self.lock().get_mut(id) {
            match result {
                Ok(out) if r.status != "Cancelled" => {
                    r.status = "Complete";
                    r.output = out;
                }
                Ok(_) | Err(ScanError::Cancelled) => r.status = "Cancelled",
                Err(e) => {
                    r.status = "Failed";
                    r.error = Some(e.to_string());
                }
            }
        }
    }

    /// A query's record.
    pub fn get(&self, id: &str) -> Option<QueryRecord> {
        self.lock().get(id).cloned()
    }

    /// Every kept query, newest first.
    pub fn list(&self) -> Vec<QueryRecord> {
        let mut v: Vec<QueryRecord> = self.lock().values().cloned().collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.create_time));
        v
    }

    /// Cancels a scheduled or running query; false when it is not running.
    pub fn stop(&self, id: &str) -> bool {
        match self.lock().get_mut(id) {
            Some(r) if matches!(r.status, "Scheduled" | "Running") => {
                r.cancel.store(true, Ordering::Relaxed);
                r.status = "Cancelled";
                true
            }
            _ => false,
        }
    }
}
