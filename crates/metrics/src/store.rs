//! The metrics store: every series kept in memory at three resolutions (1 s, 1 min, 1 h), each
//! datum folded into all three at ingest, and the buckets changed in the last second written to a
//! redb file by a background thread (so a kill -9 loses at most about one second). The same
//! thread's compaction drops each resolution's buckets once they are older than its retention,
//! so old data survives only downsampled.
//!
//! In memory a series' buckets of one resolution lie in sorted runs per time window (see
//! [`tier`]), so a day of 1 s buckets is a scan of 24 slices; a bucket holding one distinct value
//! needs no heap allocation. Changed buckets carry a dirty mark and are listed once for the flush.
//!
//! On disk: table `series` (id → JSON identity and unit) and table `buckets`
//! ((series id, tier, bucket start) → encoded [`Bucket`]).

mod query;
mod tier;

use crate::histogram::{key_of, Bucket};
use crate::types::*;
use redb::{Database, ReadableTable, TableDefinition};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SERIES: TableDefinition<u32, &str> = TableDefinition::new("series");
const BUCKETS: TableDefinition<(u32, u8, i64), &[u8]> = TableDefinition::new("buckets");

/// (series id, tier, bucket start): a bucket's key on disk.
type BucketKey = (u32, u8, i64);

/// How often dirty buckets are written.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How often expired buckets are dropped.
const COMPACT_EVERY_TICKS: u32 = 60;
/// A query may not produce more datapoints than this.
const MAX_DATAPOINTS: i64 = 10_000_000;

/// Seconds since the epoch, now.
pub fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Seconds since the epoch, now, with fractions.
pub fn now_seconds_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One series: its identity, unit and buckets at each resolution.
#[derive(Debug)]
struct Series {
    id: MetricId,
    unit: Option<String>,
    tiers: [tier::Tier; 3],
}

impl Series {
    fn new(id: MetricId, unit: Option<String>) -> Series {
        Series {
            id,
            unit,
            tiers: [tier::Tier::new(0), tier::Tier::new(1), tier::Tier::new(2)],
        }
    }

    fn has_data_since(&self, since: i64) -> bool {
        self.tiers
            .iter()
            .zip(tier::RESOLUTIONS)
            .any(|(t, res)| t.last().is_some_and(|(k, _)| k + res > since))
    }

    /// The newest bucket of the finest resolution holding data.
    fn latest(&self) -> Option<(i64, &Bucket)> {
        self.tiers.iter().find_map(tier::Tier::last)
    }
}

#[derive(Debug, Default)]
struct State {
    series: Vec<Series>,
    /// Series id by identity; foldhash rather than SipHash, as hashing identities was a
    /// quarter of the cost of ingest (its seed is random per process).
    index: HashMap<MetricId, u32, foldhash::fast::RandomState>,
    /// Buckets that turned dirty since the last flush, each listed once (a compacted one may
    /// linger here until the flush skips it).
    dirty: Vec<BucketKey>,
    new_series: Vec<u32>,
    /// (series, tier, cutoff): buckets before cutoff are to be deleted from disk.
    expired: Vec<(u32, u8, i64)>,
}

#[derive(Debug)]
struct Inner {
    state: RwLock<State>,
    db: Database,
    retention: Retention,
    /// One flush at a time, so the order of disk writes follows the order of changes.
    flushing: Mutex<()>,
}

/// Stops and joins the background thread when the last handle goes.
#[derive(Debug)]
struct Guard {
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

/// The embedded, durable time-series store; cheap to clone (an `Arc` inside).
#[derive(Debug, Clone)]
pub struct MetricStore {
    // Dropped first: joins the flush thread (which flushes once more) before `inner` goes.
    _guard: Arc<Guard>,
    inner: Arc<Inner>,
}

impl Inner {
    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn flush(&self) -> Result<(), StoreError> {
        let _one = self.flushing.lock().unwrap_or_else(|e| e.into_inner());
        let (series, buckets, expired) = {
            let mut st = self.write();
            if st.dirty.is_empty() && st.new_series.is_empty() && st.expired.is_empty() {
                return Ok(());
            }
            let st = &mut *st;
            let mut dirty = std::mem::take(&mut st.dirty);
            let new_series = std::mem::take(&mut st.new_series);
            let expired = std::mem::take(&mut st.expired);
            let series: Vec<(u32, String)> = new_series
                .iter()
                .filter_map(|&sid| {
                    let s = st.series.get(sid as usize)?;
                    let json = serde_json::json!({"id": s.id, "unit": s.unit});
                    Some((sid, json.to_string()))
                })
                .collect();
            // In key order, which suits the B-tree on disk.
            dirty.sort_unstable();
            let mut buckets = Encoded::default();
            for (sid, tier, ts) in dirty {
                let Some(t) = st
                    .series
                    .get_mut(sid as usize)
                    .and_then(|s| s.tiers.get_mut(usize::from(tier)))
                else {
                    continue;
                };
                if let Some(b) = t.take_dirty(ts) {
                    buckets.push((sid, tier, ts), b);
                }
            }
            (series, buckets, expired)
        };
        let result = self.write_to_disk(&series, &buckets, &expired);
        if result.is_err() {
            // Keep the work for the next flush: mark everything dirty again.
            let mut st = self.write();
            let st = &mut *st;
            st.new_series.extend(series.iter().map(|(sid, _)| *sid));
            for &(sid, tier, ts) in &buckets.keys {
                let t = st
                    .series
                    .get_mut(sid as usize)
                    .and_then(|s| s.tiers.get_mut(usize::from(tier)));
                if t.is_some_and(|t| !t.set_dirty(ts, true)) {
                    st.dirty.push((sid, tier, ts));
                }
            }
            st.expired.extend(expired);
        }
        result
    }

    fn write_to_disk(
        &self,
        series: &[(u32, String)],
        buckets: &Encoded,
        expired: &[(u32, u8, i64)],
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(StoreError::db)?;
        {
            let mut t = txn.open_table(SERIES).map_err(StoreError::db)?;
            for (sid, json) in series {
                t.insert(sid, json.as_str()).map_err(StoreError::db)?;
            }
            let mut t = txn.open_table(BUCKETS).map_err(StoreError::db)?;
            for (key, bytes) in buckets.iter() {
                t.insert(key, bytes).map_err(StoreError::db)?;
            }
            for (sid, tier, cutoff) in expired {
                t.retain_in((*sid, *tier, i64::MIN)..(*sid, *tier, *cutoff), |_, _| {
                    false
                })
                .map_err(StoreError::db)?;
            }
        }
        txn.commit().map_err(StoreError::db)
    }

    fn compact(&self, now: i64) {
        let tiers = self.retention.tiers();
        let mut st = self.write();
        let mut expired = Vec::new();
        for (sid, s) in st.series.iter_mut().enumerate() {
            for (tier, (_, keep)) in tiers.iter().enumerate() {
                let cutoff = now.saturating_sub(*keep);
                if s.tiers[tier].drop_before(cutoff) {
                    expired.push((sid as u32, tier as u8, cutoff));
                }
            }
        }
        st.expired.extend(expired);
    }
}

fn run_background(inner: Arc<Inner>, stop: Arc<AtomicBool>) {
    let mut ticks = 0u32;
    loop {
        let mut slept = Duration::ZERO;
        while slept < FLUSH_EVERY && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
            slept += Duration::from_millis(50);
        }
        ticks = ticks.wrapping_add(1);
        if ticks.is_multiple_of(COMPACT_EVERY_TICKS) {
            inner.compact(now_seconds());
        }
        if let Err(error) = inner.flush() {
            tracing::warn!(%error, "metrics flush failed; will retry");
        }
        if stop.load(Ordering::SeqCst) {
            return;
        }
    }
}

impl MetricStore {
    /// Opens (or creates) the store in `dir`, loads what it holds and starts the flush thread.
    pub fn open(dir: impl AsRef<Path>, retention: Retention) -> Result<MetricStore, StoreError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|error| StoreError::Dir {
            path: dir.display().to_string(),
            error,
        })?;
        let db = Database::create(dir.join("metrics.redb")).map_err(StoreError::db)?;
        let state = load(&db)?;
        let inner = Arc::new(Inner {
            state: RwLock::new(state),
            db,
            retention,
            flushing: Mutex::new(()),
        });
        inner.compact(now_seconds());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (inner, stop) = (inner.clone(), stop.clone());
            std::thread::Builder::new()
                .name("berth-metrics-flush".into())
                .spawn(move || run_background(inner, stop))
                .map_err(|error| StoreError::Dir {
                    path: dir.display().to_string(),
                    error,
                })?
        };
        Ok(MetricStore {
            _guard: Arc::new(Guard {
                stop,
                thread: Mutex::new(Some(thread)),
            }),
            inner,
        })
    }

    /// The retention this store keeps.
    pub fn retention(&self) -> Retention {
        self.inner.retention
    }

    /// Ingests datums stamped relative to the wall clock (see [`MetricStore::put_at`]).
    pub fn put(&self, data: &[MetricDatum]) {
        self.put_at(data, now_seconds());
    }

    /// Ingests datums into every resolution whose retention still covers their timestamp at
    /// `now`. Non-finite values are skipped (the API refuses them before they get here).
    pub fn put_at(&self, data: &[MetricDatum], now: i64) {
        let tiers = self.inner.retention.tiers();
        let mut st = self.inner.write();
        let st = &mut *st;
        for d in data {
            if !adds_anything(&d.sample) {
                continue;
            }
            let sid = match st.index.get(&d.id) {
                Some(sid) => *sid,
                None => {
                    let sid = st.series.len() as u32;
                    st.series.push(Series::new(d.id.clone(), d.unit.clone()));
                    st.index.insert(d.id.clone(), sid);
                    st.new_series.push(sid);
                    sid
                }
            };
            let series = &mut st.series[sid as usize];
            if d.unit.is_some() && series.unit != d.unit {
                series.unit = d.unit.clone();
                st.new_series.push(sid);
            }
            let one_value = match d.sample {
                Sample::Value(v) => Some((v, key_of(v))),
                _ => None,
            };
            for (tier, (res, keep)) in tiers.iter().enumerate() {
                if d.timestamp < now - keep {
                    continue;
                }
                let start = d.timestamp - d.timestamp.rem_euclid(*res);
                let (b, turned_dirty) = series.tiers[tier].bucket_mut(start);
                match one_value {
                    Some((v, key)) => b.add_one_keyed(v, key),
                    None => add_sample(b, &d.sample),
                }
                if turned_dirty {
                    st.dirty.push((sid, tier as u8, start));
                }
            }
        }
    }

    /// Statistics for one metric, relative to the wall clock (see [`MetricStore::query_at`]).
    pub fn query(&self, q: &MetricQuery) -> Result<Vec<Datapoint>, QueryError> {
        self.query_at(q, now_seconds())
    }

    /// Statistics for one metric per period from `q.start` (periods start at `q.start`), using the
    /// finest resolution still kept for data as old as `q.start` at `now`. Periods without data
    /// give no datapoint.
    pub fn query_at(&self, q: &MetricQuery, now: i64) -> Result<Vec<Datapoint>, QueryError> {
        if q.start >= q.end {
            return Err(QueryError::Range {
                start: q.start,
                end: q.end,
            });
        }
        let tiers = self.inner.retention.tiers();
        let age = (now - q.start).max(0);
        let finest = tiers
            .iter()
            .position(|(_, keep)| *keep >= age)
            .unwrap_or(tiers.len() - 1);
        let resolution = tiers[finest].0;
        if q.period <= 0 || q.period % resolution != 0 {
            return Err(QueryError::Period {
                period: q.period,
                resolution,
                age,
            });
        }
        let n = (q.end - q.start + q.period - 1) / q.period;
        if n > MAX_DATAPOINTS {
            return Err(QueryError::TooManyDatapoints {
                n,
                max: MAX_DATAPOINTS,
            });
        }
        // A coarser tier serves as well when its buckets nest inside the periods.
        let tier = (finest..tiers.len())
            .rev()
            .find(|&t| {
                let res = tiers[t].0;
                q.period % res == 0 && q.start.rem_euclid(res) == 0 && tiers[t].1 >= age
            })
            .unwrap_or(finest);
        let res = tiers[tier].0;
        let st = self.inner.read();
        let Some(series) = st.index.get(&q.id).map(|sid| &st.series[*sid as usize]) else {
            return Ok(Vec::new());
        };
        if q.unit.is_some() && q.unit != series.unit {
            return Ok(Vec::new());
        }
        let first = q.start - q.start.rem_euclid(res);
        Ok(query::datapoints(q, &series.tiers[tier], res, first))
    }

    /// The metrics matching `filter` that still hold data, sorted by identity.
    pub fn list(&self, filter: &MetricFilter) -> Vec<MetricId> {
        let st = self.inner.read();
        let mut out: Vec<MetricId> = st
            .series
            .iter()
            .filter(|s| {
                filter
                    .namespace
                    .as_ref()
                    .is_none_or(|n| *n == s.id.namespace)
            })
            .filter(|s| filter.name.as_ref().is_none_or(|n| *n == s.id.name))
            .filter(|s| {
                filter.dimensions.iter().all(|(name, value)| {
                    s.id.dimensions
                        .iter()
                        .any(|d| d.name == *name && value.as_ref().is_none_or(|v| *v == d.value))
                })
            })
            .filter(|s| s.has_data_since(filter.active_since.unwrap_or(i64::MIN)))
            .map(|s| s.id.clone())
            .collect();
        out.sort();
        out
    }

    /// The unit a metric was last stored with (datapoints carry no unit of their own).
    pub fn unit(&self, id: &MetricId) -> Option<String> {
        let st = self.inner.read();
        st.index
            .get(id)
            .and_then(|sid| st.series[*sid as usize].unit.clone())
    }

    /// The newest bucket of the finest resolution holding data: (bucket start, bucket).
    pub fn latest(&self, id: &MetricId) -> Option<(i64, Bucket)> {
        let st = self.inner.read();
        let s = &st.series[*st.index.get(id)? as usize];
        s.latest().map(|(ts, b)| (ts, b.clone()))
    }

    /// Every metric's current value (the average of its newest 1 s bucket) in the Prometheus
    /// text format; see [`crate::prometheus`] for the name mapping.
    pub fn prometheus_text(&self) -> String {
        let st = self.inner.read();
        let current: Vec<(&MetricId, i64, f64)> = st
            .series
            .iter()
            .filter_map(|s| {
                let (ts, b) = s.latest()?;
                Some((&s.id, ts, b.statistic(Statistic::Average)))
            })
            .collect();
        crate::prometheus::render(&current)
    }

    /// Writes the buckets changed since the last flush now (the background thread does this
    /// every second).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()
    }

    /// Drops buckets older than their resolution's retention at `now` (the background thread
    /// does this every minute); the next flush deletes them on disk too.
    pub fn compact_at(&self, now: i64) {
        self.inner.compact(now);
    }

    /// How many buckets each resolution holds in memory (1 s, 1 min, 1 h).
    pub fn bucket_counts(&self) -> [usize; 3] {
        let st = self.inner.read();
        let mut n = [0; 3];
        for s in &st.series {
            for (i, t) in s.tiers.iter().enumerate() {
                n[i] += t.len();
            }
        }
        n
    }
}

/// Encoded buckets for one write: their keys and their bytes end to end.
#[derive(Debug, Default)]
struct Encoded {
    keys: Vec<BucketKey>,
    /// Where each bucket's bytes end in `bytes`.
    ends: Vec<usize>,
    bytes: Vec<u8>,
}

impl Encoded {
    fn push(&mut self, key: BucketKey, b: &Bucket) {
        b.encode_into(&mut self.bytes);
        self.keys.push(key);
        self.ends.push(self.bytes.len());
    }

    fn iter(&self) -> impl Iterator<Item = (&BucketKey, &[u8])> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        self.keys
            .iter()
            .zip(starts.zip(self.ends.iter().copied()))
            .map(|(k, (a, b))| (k, self.bytes.get(a..b).unwrap_or_default()))
    }
}

/// Whether a sample holds at least one finite observation (so that a bucket is worth creating);
/// a statistic set must also have Minimum <= Maximum, as the API demands.
fn adds_anything(sample: &Sample) -> bool {
    match sample {
        Sample::Value(v) => v.is_finite(),
        Sample::Values { values, counts } => values.iter().enumerate().any(|(i, v)| {
            let c = counts.get(i).copied().unwrap_or(1.0);
            v.is_finite() && c.is_finite() && c > 0.0
        }),
        Sample::StatisticSet {
            sample_count,
            sum,
            minimum,
            maximum,
        } => {
            *sample_count > 0.0
                && minimum <= maximum
                && [*sample_count, *sum, *minimum, *maximum]
                    .iter()
                    .all(|v| v.is_finite())
        }
    }
}

fn add_sample(b: &mut Bucket, sample: &Sample) {
    match sample {
        Sample::Value(v) if v.is_finite() => b.add_value(*v, 1.0),
        Sample::Value(_) => {}
        Sample::Values { values, counts } => {
            for (i, v) in values.iter().enumerate() {
                let c = counts.get(i).copied().unwrap_or(1.0);
                if v.is_finite() && c.is_finite() {
                    b.add_value(*v, c);
                }
            }
        }
        Sample::StatisticSet {
            sample_count,
            sum,
            minimum,
            maximum,
        } => {
            if [*sample_count, *sum, *minimum, *maximum]
                .iter()
                .all(|v| v.is_finite())
            {
                b.add_set(*sample_count, *sum, *minimum, *maximum);
            }
        }
    }
}

fn load(db: &Database) -> Result<State, StoreError> {
    let txn = db.begin_write().map_err(StoreError::db)?;
    {
        txn.open_table(SERIES).map_err(StoreError::db)?;
        txn.open_table(BUCKETS).map_err(StoreError::db)?;
    }
    txn.commit().map_err(StoreError::db)?;
    let txn = db.begin_read().map_err(StoreError::db)?;
    let series_table = txn.open_table(SERIES).map_err(StoreError::db)?;
    let mut st = State::default();
    let mut by_disk_id: HashMap<u32, u32> = HashMap::new();
    for row in series_table.iter().map_err(StoreError::db)? {
        let (k, v) = row.map_err(StoreError::db)?;
        #[derive(serde::Deserialize)]
        struct Stored {
            id: MetricId,
            unit: Option<String>,
        }
        let Ok(stored) = serde_json::from_str::<Stored>(v.value()) else {
            tracing::warn!(series = k.value(), "unreadable series record skipped");
            continue;
        };
        let disk_id = k.value();
        // Disk ids are kept: series are only ever appended, so they are dense from 0.
        while st.series.len() < disk_id as usize {
            st.series.push(Series::new(
                MetricId::new("", format!("__gap{}", st.series.len()), vec![]),
                None,
            ));
        }
        if st.series.len() == disk_id as usize {
            st.index.insert(stored.id.clone(), disk_id);
            st.series.push(Series::new(stored.id, stored.unit));
            by_disk_id.insert(disk_id, disk_id);
        }
    }
    let buckets = txn.open_table(BUCKETS).map_err(StoreError::db)?;
    for row in buckets.iter().map_err(StoreError::db)? {
        let (k, v) = row.map_err(StoreError::db)?;
        let (sid, tier, ts) = k.value();
        let (Some(sid), Some(bucket)) = (by_disk_id.get(&sid), Bucket::decode(v.value())) else {
            continue;
        };
        if let Some(t) = st.series[*sid as usize].tiers.get_mut(usize::from(tier)) {
            t.insert_loaded(ts, bucket);
        }
    }
    Ok(st)
}

#[cfg(test)]
mod tests;
