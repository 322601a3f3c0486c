//! The embedded log store: one append-only JSON-lines file per log stream under `<state>/logs/`,
//! grouped by log group, with an in-memory index of groups and streams.

use berth_model::protocol::agent::LogEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Facts about one stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StreamInfo {
    pub first_event: Option<i64>,
    pub last_event: Option<i64>,
    pub last_ingestion: Option<i64>,
    pub stored_bytes: u64,
}

#[derive(Serialize, Deserialize)]
struct Line {
    t: i64,
    m: String,
}

/// The log store.
pub struct LogStore {
    root: PathBuf,
    index: Mutex<BTreeMap<String, BTreeMap<String, StreamInfo>>>,
}

/// Encodes a group or stream name into one safe file name (`/` and other bytes as `%XX`).
fn encode(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&name[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn now_ms() -> i64 {
    (berth_model::now() * 1000.0) as i64
}

impl LogStore {
    /// Opens the store under `root`, indexing what is there.
    pub fn open(root: PathBuf) -> std::io::Result<LogStore> {
        std::fs::create_dir_all(&root)?;
        let mut index: BTreeMap<String, BTreeMap<String, StreamInfo>> = BTreeMap::new();
        for g in std::fs::read_dir(&root)? {
            let g = g?;
            if !g.file_type()?.is_dir() {
                continue;
            }
            let group = decode(&g.file_name().to_string_lossy());
            let streams = index.entry(group).or_default();
            for s in std::fs::read_dir(g.path())? {
                let s = s?;
                let fname = s.file_name().to_string_lossy().to_string();
                let Some(stem) = fname.strip_suffix(".jsonl") else {
                    continue;
                };
                let mut info = StreamInfo {
                    stored_bytes: s.metadata()?.len(),
                    ..StreamInfo::default()
                };
                for e in read_stream(&s.path())? {
                    info.first_event = Some(
                        info.first_event
                            .map_or(e.timestamp, |f: i64| f.min(e.timestamp)),
                    );
                    info.last_event = Some(
                        info.last_event
                            .map_or(e.timestamp, |l: i64| l.max(e.timestamp)),
                    );
                }
                streams.insert(decode(stem), info);
            }
        }
        Ok(LogStore {
            root,
            index: Mutex::new(index),
        })
    }

    fn path(&self, group: &str, stream: &str) -> PathBuf {
        self.root
            .join(encode(group))
            .join(format!("{}.jsonl", encode(stream)))
    }

    /// Creates an empty group (no error when it exists).
    pub fn create_group(&self, group: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(self.root.join(encode(group)))?;
        self.index
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(group.to_string())
            .or_default();
        Ok(())
    }

    /// Appends events to a stream (creating group and stream); durable once it returns.
    pub fn append(&self, group: &str, stream: &str, events: &[LogEvent]) -> std::io::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        std::fs::create_dir_all(self.root.join(encode(group)))?;
        let mut buf = Vec::new();
        for e in events {
            serde_json::to_writer(
                &mut buf,
                &Line {
                    t: e.timestamp,
                    m: e.message.clone(),
                },
            )?;
            buf.push(b'\n');
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(group, stream))?;
        f.write_all(&buf)?;
        f.sync_data()?;
        let info = index
            .entry(group.to_string())
            .or_default()
            .entry(stream.to_string())
            .or_default();
        for e in events {
            info.first_event = Some(info.first_event.map_or(e.timestamp, |f| f.min(e.timestamp)));
            info.last_event = Some(info.last_event.map_or(e.timestamp, |l| l.max(e.timestamp)));
        }
        info.last_ingestion = Some(now_ms());
        info.stored_bytes += buf.len() as u64;
        Ok(())
    }

    /// Group names, sorted.
    pub fn groups(&self) -> BTreeMap<String, u64> {
        let index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        index
            .iter()
            .map(|(g, s)| (g.clone(), s.values().map(|i| i.stored_bytes).sum()))
            .collect()
    }

    /// Streams of a group, or None when the group does not exist.
    pub fn streams(&self, group: &str) -> Option<BTreeMap<String, StreamInfo>> {
        self.index
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(group)
            .cloned()
    }

    /// All events of one stream in the time range [start, end), oldest first.
    pub fn events(
        &self,
        group: &str,
        stream: &str,
        start: Option<i64>,
        end: Option<i64>,
    ) -> std::io::Result<Vec<LogEvent>> {
        let path = self.path(group, stream);
        if !path.exists() {
            return Ok(Vec::new());
        }
        Ok(read_stream(&path)?
            .into_iter()
            .filter(|e| {
                start.is_none_or(|s| e.timestamp >= s) && end.is_none_or(|x| e.timestamp < x)
            })
            .collect())
    }

    /// Deletes a group and its streams.
    pub fn delete_group(&self, group: &str) -> std::io::Result<bool> {
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        let existed = index.remove(group).is_some();
        let dir = self.root.join(encode(group));
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        Ok(existed)
    }
}

fn read_stream(path: &Path) -> std::io::Result<Vec<LogEvent>> {
    let f = std::fs::File::open(path)?;
    let mut out = Vec::new();
    for line in std::io::BufReader::new(f).lines() {
        let line = line?;
        // A torn last line after a crash is skipped, not fatal.
        if let Ok(l) = serde_json::from_str::<Line>(&line) {
            out.push(LogEvent {
                timestamp: l.t,
                message: l.m,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_file_names() {
        for n in ["/berth/default/web", "ecs/app/abc123", "a b%c"] {
            assert_eq!(decode(&encode(n)), n);
            assert!(!encode(n).contains('/'));
        }
    }

    #[test]
    fn appended_events_survive_reopen_and_filter_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path().to_path_buf()).unwrap();
        let ev = |t, m: &str| LogEvent {
            timestamp: t,
            message: m.into(),
        };
        store
            .append(
                "/berth/default/web",
                "ecs/app/t1",
                &[ev(1, "a"), ev(2, "b"), ev(3, "c")],
            )
            .unwrap();
        let store = LogStore::open(dir.path().to_path_buf()).unwrap();
        let streams = store.streams("/berth/default/web").unwrap();
        assert_eq!(streams["ecs/app/t1"].first_event, Some(1));
        assert_eq!(streams["ecs/app/t1"].last_event, Some(3));
        let got = store
            .events("/berth/default/web", "ecs/app/t1", Some(2), Some(3))
            .unwrap();
        assert_eq!(got, vec![ev(2, "b")]);
        assert!(store.delete_group("/berth/default/web").unwrap());
        assert!(store.streams("/berth/default/web").is_none());
    }
}
