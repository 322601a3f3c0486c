//! The embedded log store (CloudWatch Logs' data): per log group a directory with `group.json`
//! (creation time, retention, metric filters) and per stream a directory of hourly segment files
//! `<hour>.log`, each line `<timestamp ms>\t<message>\n` with `\`, newline and CR escaped.
//! Appends are batched and fsynced once per batch; retention drops whole segment files, and
//! readers hide anything older than the retention at once.

pub mod metric_filter;
pub mod pattern;
pub mod query;
pub mod scan;

use berth_model::protocol::agent::LogEvent;
use metric_filter::MetricFilter;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};

/// Milliseconds in one segment file's time bucket.
pub const SEGMENT_MS: i64 = 3_600_000;
/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;
/// The retention values CloudWatch Logs accepts, in days.
pub const RETENTION_DAYS: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// Facts about one stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StreamInfo {
    /// When the stream was created (ms).
    pub creation_time: i64,
    pub first_event: Option<i64>,
    pub last_event: Option<i64>,
    pub last_ingestion: Option<i64>,
    pub stored_bytes: u64,
}

/// What `group.json` keeps about a log group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupMeta {
    /// When the group was created (ms).
    pub creation_time: i64,
    /// Days events are kept; `None` keeps them forever.
    #[serde(default)]
    pub retention_in_days: Option<u32>,
    /// The group's metric filters, in creation order.
    #[serde(default)]
    pub metric_filters: Vec<MetricFilter>,
}

/// One group as DescribeLogGroups shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSummary {
    pub name: String,
    pub meta: GroupMeta,
    pub stored_bytes: u64,
}

/// One segment file of a stream: its hour bucket and path.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// `timestamp.div_euclid(SEGMENT_MS)` of every line in it.
    pub bucket: i64,
    pub path: PathBuf,
    pub bytes: u64,
}

#[derive(Debug, Default)]
struct StreamState {
    info: StreamInfo,
    /// bucket → bytes.
    segments: BTreeMap<i64, u64>,
    /// The segment file last appended to, kept open.
    writer: Option<(i64, File)>,
}

type NamedStream = (String, Arc<Mutex<StreamState>>);

struct Group {
    meta: GroupMeta,
    streams: BTreeMap<String, Arc<Mutex<StreamState>>>,
}

/// The log store.
pub struct LogStore {
    root: PathBuf,
    groups: RwLock<BTreeMap<String, Group>>,
    metrics: OnceLock<berth_metrics::MetricStore>,
    /// Logs Insights queries started on this store.
    pub(crate) queries: scan::Queries,
}

/// Encodes a group or stream name into one safe file name (`/` and other bytes as `%XX`).
fn encode(name: &str) -> String {
    // `.` and `..` would name this directory or its parent.
    if name == "." || name == ".." {
        return name.replace('.', "%2E");
    }
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
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
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

/// The current time in ms since the epoch.
pub fn now_ms() -> i64 {
    (berth_model::now() * 1000.0) as i64
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep using it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Appends one event as a segment line: `<ts>\t<escaped message>\n`.
pub fn encode_line(buf: &mut Vec<u8>, timestamp: i64, message: &str) {
    let _ = write!(buf, "{timestamp}\t");
    let m = message.as_bytes();
    if memchr::memchr3(b'\\', b'\n', b'\r', m).is_none() {
        buf.extend_from_slice(m);
    } else {
        for &b in m {
            match b {
                b'\\' => buf.extend_from_slice(b"\\\\"),
                b'\n' => buf.extend_from_slice(b"\\n"),
                b'\r' => buf.extend_from_slice(b"\\r"),
                _ => buf.push(b),
            }
        }
    }
    buf.push(b'\n');
}

/// Escapes text the way segment lines store it (so a substring search can run on raw lines).
pub fn escape(text: &str) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_line(&mut buf, 0, text);
    buf.drain(..2);
    buf.pop();
    buf
}

/// Splits one segment line (without its `\n`) into timestamp and message; None when torn.
pub fn decode_line(line: &[u8]) -> Option<(i64, std::borrow::Cow<'_, str>)> {
    let tab = memchr::memchr(b'\t', line)?;
    let ts = parse_i64(&line[..tab])?;
    let raw = &line[tab + 1..];
    let message = if memchr::memchr(b'\\', raw).is_none() {
        String::from_utf8_lossy(raw)
    } else {
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'\\' && i + 1 < raw.len() {
                out.push(match raw[i + 1] {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    other => other,
                });
                i += 2;
            } else {
                out.push(raw[i]);
                i += 1;
            }
        }
        std::borrow::Cow::Owned(String::from_utf8_lossy(&out).into_owned())
    };
    Some((ts, message))
}

/// Parses a decimal i64 (optionally negative) from ASCII digits.
pub fn parse_i64(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    Some(if neg { -v } else { v })
}

/// Every complete line of a segment file's bytes (a torn tail without `\n` is left out).
pub fn lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let end = buf.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    buf[..end]
        .split_inclusive(|&b| b == b'\n')
        .map(|l| &l[..l.len() - 1])
}

/// All events of a segment file's bytes, in file order.
fn segment_events(buf: &[u8]) -> Vec<LogEvent> {
    lines(buf)
        .filter_map(decode_line)
        .map(|(timestamp, m)| LogEvent {
            timestamp,
            message: m.into_owned(),
        })
        .collect()
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl LogStore {
    /// Opens the store under `root`, indexing what is there (and converting the old one-file
    /// `<stream>.jsonl` layout into segments).
    pub fn open(root: PathBuf) -> std::io::Result<LogStore> {
        std::fs::create_dir_all(&root)?;
        let mut groups = BTreeMap::new();
        for g in std::fs::read_dir(&root)? {
            let g = g?;
            if !g.file_type()?.is_dir() {
                continue;
            }
            let name = decode(&g.file_name().to_string_lossy());
            let dir = g.path();
            let meta_path = dir.join("group.json");
            let meta = match std::fs::read(&meta_path) {
                Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
                Err(_) => {
                    let created = g
                        .metadata()?
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or_else(now_ms, |d| d.as_millis() as i64);
                    let meta = GroupMeta {
                        creation_time: created,
                        ..GroupMeta::default()
                    };
                    write_atomic(&meta_path, &serde_json::to_vec(&meta)?)?;
                    meta
                }
            };
            migrate_jsonl(&dir)?;
            let mut streams = BTreeMap::new();
            let streams_dir = dir.join("streams");
            if streams_dir.is_dir() {
                for s in std::fs::read_dir(&streams_dir)? {
                    let s = s?;
                    if !s.file_type()?.is_dir() {
                        continue;
                    }
                    let state = load_stream(&s.path())?;
                    streams.insert(
                        decode(&s.file_name().to_string_lossy()),
                        Arc::new(Mutex::new(state)),
                    );
                }
            }
            groups.insert(name, Group { meta, streams });
        }
        Ok(LogStore {
            root,
            groups: RwLock::new(groups),
            metrics: OnceLock::new(),
            queries: scan::Queries::default(),
        })
    }

    /// Sends metric filters' data points to `store` from now on.
    pub fn attach_metrics(&self, store: berth_metrics::MetricStore) {
        let _ = self.metrics.set(store);
    }

    fn read_groups(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Group>> {
        self.groups.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_groups(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Group>> {
        self.groups.write().unwrap_or_else(|e| e.into_inner())
    }

    fn group_dir(&self, group: &str) -> PathBuf {
        self.root.join(encode(group))
    }

    fn stream_dir(&self, group: &str, stream: &str) -> PathBuf {
        self.group_dir(group).join("streams").join(encode(stream))
    }

    fn save_meta(&self, group: &str, meta: &GroupMeta) -> std::io::Result<()> {
        write_atomic(
            &self.group_dir(group).join("group.json"),
            &serde_json::to_vec(meta)?,
        )
    }

    /// Creates an empty group; false when it already exists.
    pub fn create_group(&self, group: &str) -> std::io::Result<bool> {
        let mut groups = self.write_groups();
        if groups.contains_key(group) {
            return Ok(false);
        }
        std::fs::create_dir_all(self.group_dir(group).join("streams"))?;
        let meta = GroupMeta {
            creation_time: now_ms(),
            ..GroupMeta::default()
        };
        self.save_meta(group, &meta)?;
        groups.insert(
            group.to_string(),
            Group {
                meta,
                streams: BTreeMap::new(),
            },
        );
        Ok(true)
    }

    /// Creates an empty stream in an existing group: Ok(false) when it exists, Err NotFound when
    /// the group does not.
    pub fn create_stream(&self, group: &str, stream: &str) -> std::io::Result<bool> {
        let mut groups = self.write_groups();
        let Some(g) = groups.get_mut(group) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such log group",
            ));
        };
        if g.streams.contains_key(stream) {
            return Ok(false);
        }
        let state = new_stream(&self.stream_dir(group, stream))?;
        g.streams
            .insert(stream.to_string(), Arc::new(Mutex::new(state)));
        Ok(true)
    }

    /// Deletes a stream and its events; false when it did not exist.
    pub fn delete_stream(&self, group: &str, stream: &str) -> std::io::Result<bool> {
        let mut groups = self.write_groups();
        let Some(g) = groups.get_mut(group) else {
            return Ok(false);
        };
        let Some(s) = g.streams.remove(stream) else {
            return Ok(false);
        };
        lock(&s).writer = None;
        let dir = self.stream_dir(group, stream);
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        Ok(true)
    }

    /// The stream's state, creating group and stream as needed; with the group's metric filters.
    fn stream_for_append(
        &self,
        group: &str,
        stream: &str,
    ) -> std::io::Result<(Arc<Mutex<StreamState>>, Vec<MetricFilter>)> {
        {
            let groups = self.read_groups();
            if let Some(s) = groups.get(group).and_then(|g| {
                g.streams
                    .get(stream)
                    .map(|s| (s.clone(), g.meta.metric_filters.clone()))
            }) {
                return Ok(s);
            }
        }
        if !self.read_groups().contains_key(group) {
            self.create_group(group)?;
        }
        let _ = self.create_stream(group, stream);
        let groups = self.read_groups();
        groups
            .get(group)
            .and_then(|g| {
                g.streams
                    .get(stream)
                    .map(|s| (s.clone(), g.meta.metric_filters.clone()))
            })
            .ok_or_else(|| std::io::Error::other("the log group was deleted while appending"))
    }

    /// Appends events to a stream (creating group and stream); durable once it returns (one fsync
    /// per touched segment). Metric filters of the group turn matching events into metrics.
    pub fn append(&self, group: &str, stream: &str, events: &[LogEvent]) -> std::io::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let (state, filters) = self.stream_for_append(group, stream)?;
        let dir = self.stream_dir(group, stream);
        // Encode per hour bucket (usually one).
        let mut buckets: Vec<(i64, Vec<u8>)> = Vec::new();
        let mut first = i64::MAX;
        let mut last = i64::MIN;
        for e in events {
            let b = e.timestamp.div_euclid(SEGMENT_MS);
            let i = match buckets.iter().position(|(x, _)| *x == b) {
                Some(i) => i,
                None => {
                    buckets.push((b, Vec::with_capacity(events.len() * 64)));
                    buckets.len() - 1
                }
            };
            encode_line(&mut buckets[i].1, e.timestamp, &e.message);
            first = first.min(e.timestamp);
            last = last.max(e.timestamp);
        }
        {
            let mut st = lock(&state);
            let mut written = 0u64;
            for (bucket, buf) in &buckets {
                let reuse = matches!(&st.writer, Some((b, _)) if b == bucket);
                if !reuse {
                    let f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(dir.join(format!("{bucket}.log")))?;
                    st.writer = Some((*bucket, f));
                }
                if let Some((_, f)) = st.writer.as_mut() {
                    f.write_all(buf)?;
                    f.sync_data()?;
                }
                *st.segments.entry(*bucket).or_default() += buf.len() as u64;
                written += buf.len() as u64;
            }
            let info = &mut st.info;
            info.first_event = Some(info.first_event.map_or(first, |f| f.min(first)));
            info.last_event = Some(info.last_event.map_or(last, |l| l.max(last)));
            info.last_ingestion = Some(now_ms());
            info.stored_bytes += written;
        }
        if !filters.is_empty() {
            if let Some(m) = self.metrics.get() {
                let data = metric_filter::data_for(&filters, events);
                if !data.is_empty() {
                    m.put(&data);
                }
            }
        }
        Ok(())
    }

    /// Every group with its metadata and size, sorted by name.
    pub fn groups(&self) -> Vec<GroupSummary> {
        self.read_groups()
            .iter()
            .map(|(name, g)| GroupSummary {
                name: name.clone(),
                meta: g.meta.clone(),
                stored_bytes: g.streams.values().map(|s| lock(s).info.stored_bytes).sum(),
            })
            .collect()
    }

    /// One group's metadata, or None.
    pub fn group(&self, group: &str) -> Option<GroupMeta> {
        self.read_groups().get(group).map(|g| g.meta.clone())
    }

    /// Streams of a group, or None when the group does not exist.
    pub fn streams(&self, group: &str) -> Option<BTreeMap<String, StreamInfo>> {
        self.read_groups().get(group).map(|g| {
            g.streams
                .iter()
                .map(|(n, s)| (n.clone(), lock(s).info.clone()))
                .collect()
        })
    }

    /// The oldest timestamp readers may see in `group` at `now` (retention), if any.
    pub fn cutoff(&self, group: &str, now: i64) -> Option<i64> {
        self.group(group)?
            .retention_in_days
            .map(|d| now - i64::from(d) * DAY_MS)
    }

    /// Segments of a stream that may hold events in [start, end), oldest first.
    pub fn segments(
        &self,
        group: &str,
        stream: &str,
        start: Option<i64>,
        end: Option<i64>,
    ) -> Vec<Segment> {
        let state = {
            let groups = self.read_groups();
            match groups.get(group).and_then(|g| g.streams.get(stream)) {
                Some(s) => s.clone(),
                None => return Vec::new(),
            }
        };
        let dir = self.stream_dir(group, stream);
        let st = lock(&state);
        st.segments
            .iter()
            .filter(|(b, _)| {
                start.is_none_or(|s| (**b + 1) * SEGMENT_MS > s)
                    && end.is_none_or(|e| **b * SEGMENT_MS < e)
            })
            .map(|(b, bytes)| Segment {
                bucket: *b,
                path: dir.join(format!("{b}.log")),
                bytes: *bytes,
            })
            .collect()
    }

    /// All events of one stream in [start, end), oldest first (stable for equal timestamps),
    /// hiding events older than the group's retention.
    pub fn events(
        &self,
        group: &str,
        stream: &str,
        start: Option<i64>,
        end: Option<i64>,
    ) -> std::io::Result<Vec<LogEvent>> {
        let start = match (start, self.cutoff(group, now_ms())) {
            (Some(s), Some(c)) => Some(s.max(c)),
            (s, c) => s.or(c),
        };
        let mut out = Vec::new();
        for seg in self.segments(group, stream, start, end) {
            let buf = match std::fs::read(&seg.path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let mut evs: Vec<LogEvent> = segment_events(&buf)
                .into_iter()
                .filter(|e| {
                    start.is_none_or(|s| e.timestamp >= s) && end.is_none_or(|x| e.timestamp < x)
                })
                .collect();
            evs.sort_by_key(|e| e.timestamp);
            out.extend(evs);
        }
        Ok(out)
    }

    /// Deletes a group and its streams.
    pub fn delete_group(&self, group: &str) -> std::io::Result<bool> {
        let mut groups = self.write_groups();
        let existed = groups.remove(group).is_some();
        let dir = self.group_dir(group);
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        Ok(existed)
    }

    /// Changes a group's metadata (retention, metric filters) durably; None when no such group.
    pub fn update_group<R>(
        &self,
        group: &str,
        f: impl FnOnce(&mut GroupMeta) -> R,
    ) -> std::io::Result<Option<R>> {
        let mut groups = self.write_groups();
        let Some(g) = groups.get_mut(group) else {
            return Ok(None);
        };
        let mut meta = g.meta.clone();
        let r = f(&mut meta);
        if meta != g.meta {
            self.save_meta(group, &meta)?;
            g.meta = meta;
        }
        Ok(Some(r))
    }

    /// Deletes every segment file wholly older than its group's retention at `now_ms`, and
    /// recomputes the affected streams' first events. Call it every minute or so. Returns how
    /// many segment files were removed.
    pub fn enforce_retention(&self, now_ms: i64) -> std::io::Result<usize> {
        let work: Vec<(String, i64, Vec<NamedStream>)> = self
            .read_groups()
            .iter()
            .filter_map(|(name, g)| {
                let days = g.meta.retention_in_days?;
                Some((
                    name.clone(),
                    now_ms - i64::from(days) * DAY_MS,
                    g.streams
                        .iter()
                        .map(|(n, s)| (n.clone(), s.clone()))
                        .collect(),
                ))
            })
            .collect();
        let mut removed = 0;
        for (group, cutoff, streams) in work {
            for (stream, state) in streams {
                let dir = self.stream_dir(&group, &stream);
                let mut st = lock(&state);
                let expired: Vec<i64> = st
                    .segments
                    .keys()
                    .copied()
                    .filter(|b| (b + 1) * SEGMENT_MS <= cutoff)
                    .collect();
                if expired.is_empty() {
                    continue;
                }
                for b in &expired {
                    if matches!(&st.writer, Some((w, _)) if w == b) {
                        st.writer = None;
                    }
                    match std::fs::remove_file(dir.join(format!("{b}.log"))) {
                        Ok(()) => removed += 1,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                    if let Some(bytes) = st.segments.remove(b) {
                        st.info.stored_bytes = st.info.stored_bytes.saturating_sub(bytes);
                    }
                }
                st.info.first_event = match st.segments.keys().next() {
                    Some(b) => std::fs::read(dir.join(format!("{b}.log")))
                        .ok()
                        .and_then(|buf| segment_events(&buf).iter().map(|e| e.timestamp).min()),
                    None => None,
                };
                if st.segments.is_empty() {
                    st.info.last_event = None;
                }
            }
        }
        Ok(removed)
    }
}

fn new_stream(dir: &Path) -> std::io::Result<StreamState> {
    std::fs::create_dir_all(dir)?;
    let created = now_ms();
    std::fs::write(dir.join("created"), created.to_string())?;
    Ok(StreamState {
        info: StreamInfo {
            creation_time: created,
            ..StreamInfo::default()
        },
        ..StreamState::default()
    })
}

/// Indexes a stream directory: segment sizes (cutting a torn last line), first and last events.
fn load_stream(dir: &Path) -> std::io::Result<StreamState> {
    let mut st = StreamState::default();
    st.info.creation_time = std::fs::read_to_string(dir.join("created"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    for f in std::fs::read_dir(dir)? {
        let f = f?;
        let name = f.file_name().to_string_lossy().to_string();
        let Some(bucket) = name
            .strip_suffix(".log")
            .and_then(|b| b.parse::<i64>().ok())
        else {
            continue;
        };
        let mut len = f.metadata()?.len();
        if len > 0 {
            // A crash may leave a torn last line: cut it so the next append starts a fresh line.
            use std::io::{Read, Seek, SeekFrom};
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(f.path())?;
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                let buf = std::fs::read(f.path())?;
                len = buf.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1) as u64;
                file.set_len(len)?;
                file.sync_data()?;
            }
        }
        st.segments.insert(bucket, len);
        st.info.stored_bytes += len;
    }
    let edge = |b: Option<&i64>| -> Vec<i64> {
        b.and_then(|b| std::fs::read(dir.join(format!("{b}.log"))).ok())
            .map(|buf| segment_events(&buf).iter().map(|e| e.timestamp).collect())
            .unwrap_or_default()
    };
    st.info.first_event = edge(st.segments.keys().next()).into_iter().min();
    st.info.last_event = edge(st.segments.keys().next_back()).into_iter().max();
    if st.info.creation_time == 0 {
        st.info.creation_time = st.info.first_event.unwrap_or(0);
    }
    Ok(st)
}

/// Converts `<stream>.jsonl` files of the first log store layout into stream segments.
fn migrate_jsonl(group_dir: &Path) -> std::io::Result<()> {
    #[derive(Deserialize)]
    struct Line {
        t: i64,
        m: String,
    }
    for f in std::fs::read_dir(group_dir)? {
        let f = f?;
        let name = f.file_name().to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".jsonl") else {
            continue;
        };
        let dir = group_dir.join("streams").join(stem);
        std::fs::create_dir_all(&dir)?;
        let text = std::fs::read_to_string(f.path())?;
        let mut buckets: BTreeMap<i64, Vec<u8>> = BTreeMap::new();
        for l in text
            .lines()
            .filter_map(|l| serde_json::from_str::<Line>(l).ok())
        {
            encode_line(
                buckets.entry(l.t.div_euclid(SEGMENT_MS)).or_default(),
                l.t,
                &l.m,
            );
        }
        for (b, buf) in buckets {
            let mut out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(format!("{b}.log")))?;
            out.write_all(&buf)?;
            out.sync_data()?;
        }
        std::fs::remove_file(f.path())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
