//! The log shipper: tails every container's `log.jsonl` and ships new lines to the control plane
//! (`POST /agent/v1/logs`), persisting its read offset per file (`log.offset`) after each
//! acknowledged batch, so a line is shipped again rather than lost when a request fails.

use crate::client::{Backoff, ControlPlane};
use crate::state;
use berth_model::protocol::agent::{LogBatch, LogEvent, LogShipment};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Most bytes of log lines in one shipment.
pub const MAX_SHIPMENT_BYTES: u64 = 1024 * 1024;
/// Most events in one shipment (CloudWatch's PutLogEvents limit).
const MAX_EVENTS: usize = 10_000;
/// How often the files are looked at when idle.
const POLL: Duration = Duration::from_millis(100);

/// One task's logs: where they are and where they go.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSource {
    pub task_id: String,
    /// Empty when the task has no log group: nothing is shipped.
    pub log_group: String,
    pub containers: Vec<String>,
    pub dir: PathBuf,
}

/// The tasks whose logs are shipped, by task id; the agent's main loop keeps it current.
pub type LogSources = Arc<Mutex<BTreeMap<String, LogSource>>>;

/// One line of `log.jsonl` as the shim writes it.
#[derive(Debug, Deserialize)]
struct Line {
    t: i64,
    #[allow(dead_code)]
    s: String,
    m: String,
}

fn read_offset(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Whether every line of the task's containers has been acknowledged by the control plane.
pub fn fully_shipped(source: &LogSource) -> bool {
    if source.log_group.is_empty() {
        return true;
    }
    source.containers.iter().all(|c| {
        let dir = source.dir.join(c);
        let len = std::fs::metadata(dir.join("log.jsonl"))
            .map(|m| m.len())
            .unwrap_or(0);
        read_offset(&dir.join("log.offset")) >= len
    })
}

/// A shipment ready to send and the offsets to record once it is acknowledged.
#[derive(Debug, Default)]
struct Pending {
    shipment: LogShipment,
    offsets: Vec<(PathBuf, u64)>,
    more: bool,
}

fn collect(node_id: &str, sources: &[LogSource], offsets: &mut HashMap<PathBuf, u64>) -> Pending {
    let mut pending = Pending {
        shipment: LogShipment {
            node_id: node_id.into(),
            batches: vec![],
        },
        ..Default::default()
    };
    let mut budget = MAX_SHIPMENT_BYTES;
    let mut n_events = 0;
    for source in sources.iter().filter(|s| !s.log_group.is_empty()) {
        for container in &source.containers {
            let dir = source.dir.join(container);
            let log_path = dir.join("log.jsonl");
            let offset_path = dir.join("log.offset");
            let offset = *offsets
                .entry(offset_path.clone())
                .or_insert_with(|| read_offset(&offset_path));
            let Ok(len) = std::fs::metadata(&log_path).map(|m| m.len()) else {
                continue;
            };
            if len <= offset {
                continue;
            }
            if budget == 0 || n_events >= MAX_EVENTS {
                pending.more = true;
                return pending;
            }
            let want = (len - offset).min(budget);
            let mut buf = Vec::with_capacity(want as usize);
            let read = std::fs::File::open(&log_path).and_then(|mut f| {
                f.seek(SeekFrom::Start(offset))?;
                f.take(want).read_to_end(&mut buf)
            });
            if let Err(error) = read {
                tracing::warn!(path = %log_path.display(), %error, "cannot read container log");
                continue;
            }
            let Some(last_newline) = buf.iter().rposition(|b| *b == b'\n') else {
                // Only a partial line so far (or it does not fit this shipment).
                pending.more |= want < len - offset;
                continue;
            };
            let mut events = Vec::new();
            let mut consumed = 0usize;
            for raw in buf[..=last_newline].split_inclusive(|b| *b == b'\n') {
                if n_events + events.len() >= MAX_EVENTS {
                    break;
                }
                consumed += raw.len();
                match serde_json::from_slice::<Line>(raw) {
                    Ok(line) => events.push(LogEvent {
                        timestamp: line.t,
                        message: line.m,
                    }),
                    Err(error) => {
                        tracing::debug!(path = %log_path.display(), %error, "skipping a bad log line")
                    }
                }
            }
            budget -= consumed as u64;
            n_events += events.len();
            let new_offset = offset + consumed as u64;
            pending.more |= new_offset < len;
            pending.offsets.push((offset_path, new_offset));
            if !events.is_empty() {
                pending.shipment.batches.push(LogBatch {
                    log_group: source.log_group.clone(),
                    log_stream: format!("ecs/{container}/{}", source.task_id),
                    events,
                });
            }
        }
    }
    pending
}

/// Ships logs until shutdown; retries with backoff while the control plane is away.
pub async fn ship_loop(
    client: ControlPlane,
    node_id: String,
    sources: LogSources,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut offsets: HashMap<PathBuf, u64> = HashMap::new();
    let mut backoff = Backoff::default();
    loop {
        let list: Vec<LogSource> = sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        offsets.retain(|path, _| list.iter().any(|s| path.starts_with(&s.dir)));
        let pending = collect(&node_id, &list, &mut offsets);
        let mut delay = POLL;
        if !pending.offsets.is_empty() {
            let sent = if pending.shipment.batches.is_empty() {
                Ok(())
            } else {
                client.ship_logs(&pending.shipment).await
            };
            match sent {
                Ok(()) => {
                    backoff.reset();
                    for (path, offset) in pending.offsets {
                        if let Err(error) =
                            state::write_atomic(&path, offset.to_string().as_bytes())
                        {
                            tracing::warn!(path = %path.display(), %error, "cannot record log offset");
                        }
                        offsets.insert(path, offset);
                    }
                    if pending.more {
                        delay = Duration::ZERO;
                    }
                }
                Err(error) => {
                    delay = backoff.next_delay();
                    tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "log shipment failed");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(dir: &Path) -> LogSource {
        LogSource {
            task_id: "t1".into(),
            log_group: "/ecs/web".into(),
            containers: vec!["app".into()],
            dir: dir.into(),
        }
    }

    #[test]
    fn collects_complete_lines_and_resumes_from_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let cdir = dir.path().join("app");
        std::fs::create_dir_all(&cdir).unwrap();
        let log = cdir.join("log.jsonl");
        std::fs::write(&log, "{\"t\":1,\"s\":\"stdout\",\"m\":\"a\"}\nnot json\n{\"t\":2,\"s\":\"stderr\",\"m\":\"b\"}\n{\"t\":3,").unwrap();
        let src = source(dir.path());
        let mut offsets = HashMap::new();
        let p = collect("n1", std::slice::from_ref(&src), &mut offsets);
        assert_eq!(p.shipment.batches.len(), 1);
        let batch = &p.shipment.batches[0];
        assert_eq!(batch.log_stream, "ecs/app/t1");
        assert_eq!(batch.log_group, "/ecs/web");
        let msgs: Vec<_> = batch
            .events
            .iter()
            .map(|e| (e.timestamp, e.message.as_str()))
            .collect();
        assert_eq!(msgs, vec![(1, "a"), (2, "b")]);
        assert!(pending_offset(&p) < std::fs::metadata(&log).unwrap().len());
        assert!(p.more, "the partial line is still to come");
        // Acknowledge: record the offset; the partial line is not sent until it is complete.
        let (path, off) = p.offsets[0].clone();
        std::fs::write(&path, off.to_string()).unwrap();
        offsets.insert(path, off);
        assert!(!fully_shipped(&src));
        let p = collect("n1", std::slice::from_ref(&src), &mut offsets);
        assert!(p.shipment.batches.is_empty());
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .map(|mut f| std::io::Write::write_all(&mut f, b"\"s\":\"stdout\",\"m\":\"c\"}\n"))
            .unwrap()
            .unwrap();
        let p = collect("n1", std::slice::from_ref(&src), &mut offsets);
        assert_eq!(p.shipment.batches[0].events[0].message, "c");
        let (path, off) = p.offsets[0].clone();
        std::fs::write(&path, off.to_string()).unwrap();
        assert!(fully_shipped(&src));
        // A fresh shipper (agent restart) resumes from the recorded offset.
        assert!(collect("n1", &[src], &mut HashMap::new())
            .shipment
            .batches
            .is_empty());
    }

    fn pending_offset(p: &Pending) -> u64 {
        p.offsets[0].1
    }

    #[test]
    fn shipments_are_capped_at_a_mebibyte() {
        let dir = tempfile::tempdir().unwrap();
        let cdir = dir.path().join("app");
        std::fs::create_dir_all(&cdir).unwrap();
        let line = format!(
            "{{\"t\":1,\"s\":\"stdout\",\"m\":\"{}\"}}\n",
            "x".repeat(1000)
        );
        std::fs::write(cdir.join("log.jsonl"), line.repeat(3000)).unwrap();
        let mut offsets = HashMap::new();
        let p = collect("n1", &[source(dir.path())], &mut offsets);
        let bytes = serde_json::to_vec(&p.shipment).unwrap().len() as u64;
        assert!(bytes <= MAX_SHIPMENT_BYTES + 64 * 1024, "{bytes}");
        assert!(p.more);
        assert_eq!(
            p.shipment.batches[0].events.len(),
            (MAX_SHIPMENT_BYTES as usize) / line.len()
        );
    }

    #[test]
    fn tasks_without_a_log_group_ship_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("app")).unwrap();
        std::fs::write(
            dir.path().join("app/log.jsonl"),
            "{\"t\":1,\"s\":\"stdout\",\"m\":\"a\"}\n",
        )
        .unwrap();
        let src = LogSource {
            log_group: String::new(),
            ..source(dir.path())
        };
        assert!(
            collect("n1", std::slice::from_ref(&src), &mut HashMap::new())
                .offsets
                .is_empty()
        );
        assert!(fully_shipped(&src));
    }
}
