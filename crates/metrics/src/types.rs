//! The metric data model: metric identities, datums to ingest, statistics, queries and datapoints.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One name/value pair that, with the namespace and metric name, identifies a metric.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dimension {
    /// The dimension's name (`ClusterName`).
    pub name: String,
    /// The dimension's value (`default`).
    pub value: String,
}

impl Dimension {
    /// A dimension from its name and value.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Dimension {
        Dimension {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A metric's identity: namespace, name and dimensions sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MetricId {
    /// The namespace (`AWS/ECS`).
    pub namespace: String,
    /// The metric name (`CPUUtilization`).
    pub name: String,
    /// The dimensions, sorted by name then value.
    pub dimensions: Vec<Dimension>,
}

impl MetricId {
    /// A metric identity; the dimensions are sorted so that their order never matters.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        mut dimensions: Vec<Dimension>,
    ) -> MetricId {
        dimensions.sort();
        dimensions.dedup();
        MetricId {
            namespace: namespace.into(),
            name: name.into(),
            dimensions,
        }
    }
}

/// What one datum carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Sample {
    /// One observed value.
    Value(f64),
    /// Values each observed `counts[i]` times (CloudWatch's `Values`/`Counts`; empty counts = 1 each).
    Values {
        /// The distinct values.
        values: Vec<f64>,
        /// How often each value was observed.
        counts: Vec<f64>,
    },
    /// A pre-aggregated set (CloudWatch's `StatisticValues`).
    StatisticSet {
        /// How many values the set summarises.
        sample_count: f64,
        /// Their sum.
        sum: f64,
        /// The smallest.
        minimum: f64,
        /// The largest.
        maximum: f64,
    },
}

/// One datum to ingest.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDatum {
    /// The metric it belongs to.
    pub id: MetricId,
    /// The unit (`Percent`, `Count`, ...); `None` is CloudWatch's `None`.
    pub unit: Option<String>,
    /// When it was observed, in seconds since the epoch (fractions are truncated to the second).
    pub timestamp: i64,
    /// The observation.
    pub sample: Sample,
}

/// A statistic a query asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Statistic {
    /// The number of values.
    SampleCount,
    /// Sum / SampleCount.
    Average,
    /// The sum of values.
    Sum,
    /// The smallest value.
    Minimum,
    /// The largest value.
    Maximum,
    /// A percentile, 0..=100 (`p99` is `Percentile(99.0)`).
    Percentile(f64),
}

impl Statistic {
    /// Parses `Average`, `Sum`, `SampleCount`, `Minimum`, `Maximum` or `pNN`/`pNN.N`.
    pub fn parse(text: &str) -> Option<Statistic> {
        Some(match text {
            "SampleCount" => Statistic::SampleCount,
            "Average" => Statistic::Average,
            "Sum" => Statistic::Sum,
            "Minimum" => Statistic::Minimum,
            "Maximum" => Statistic::Maximum,
            _ => {
                let rest = text.strip_prefix('p').or_else(|| text.strip_prefix('P'))?;
                if rest.is_empty() || !rest.chars().all(|c| c.is_ascii_digit() || c == '.') {
                    return None;
                }
                let p: f64 = rest.parse().ok()?;
                if !(0.0..=100.0).contains(&p) {
                    return None;
                }
                Statistic::Percentile(p)
            }
        })
    }

    /// True for the percentile statistics (CloudWatch's ExtendedStatistics).
    pub fn is_percentile(&self) -> bool {
        matches!(self, Statistic::Percentile(_))
    }
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statistic::SampleCount => f.write_str("SampleCount"),
            Statistic::Average => f.write_str("Average"),
            Statistic::Sum => f.write_str("Sum"),
            Statistic::Minimum => f.write_str("Minimum"),
            Statistic::Maximum => f.write_str("Maximum"),
            Statistic::Percentile(p) => write!(f, "p{p}"),
        }
    }
}

/// A statistics query over one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    /// The metric.
    pub id: MetricId,
    /// Inclusive start, seconds since the epoch.
    pub start: i64,
    /// Exclusive end, seconds since the epoch.
    pub end: i64,
    /// The period in seconds: a multiple of the resolution kept for data as old as `start`.
    pub period: i64,
    /// The statistics wanted, in the order the datapoints' values come back.
    pub statistics: Vec<Statistic>,
    /// Only data stored with this unit, when given.
    pub unit: Option<String>,
}

/// One period's statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct Datapoint {
    /// The period's start, seconds since the epoch.
    pub timestamp: i64,
    /// One value per statistic asked for, in the same order.
    pub values: DatapointValues,
}

/// How many values a [`DatapointValues`] holds without allocating.
pub(crate) const INLINE_VALUES: usize = 4;

/// A datapoint's values, read like a `&[f64]`: up to four are kept inline, so a query of
/// 86,400 datapoints makes no heap allocation per datapoint; more go to the heap.
#[derive(Clone)]
pub struct DatapointValues(ValuesRepr);

#[derive(Clone)]
enum ValuesRepr {
    Inline {
        len: u8,
        items: [f64; INLINE_VALUES],
    },
    Heap(Vec<f64>),
}

impl DatapointValues {
    /// No values.
    pub fn new() -> DatapointValues {
        DatapointValues(ValuesRepr::Inline {
            len: 0,
            items: [0.0; INLINE_VALUES],
        })
    }

    /// Appends a value.
    pub fn push(&mut self, v: f64) {
        match &mut self.0 {
            ValuesRepr::Inline { len, items } => match items.get_mut(usize::from(*len)) {
                Some(slot) => {
                    *slot = v;
                    *len += 1;
                }
                None => {
                    let mut heap = Vec::with_capacity(INLINE_VALUES * 2);
                    heap.extend_from_slice(items);
                    heap.push(v);
                    self.0 = ValuesRepr::Heap(heap);
                }
            },
            ValuesRepr::Heap(heap) => heap.push(v),
        }
    }

    /// The first `len` (at most four) of `items`, kept inline.
    #[inline]
    pub(crate) fn inline(items: [f64; INLINE_VALUES], len: usize) -> DatapointValues {
        DatapointValues(ValuesRepr::Inline {
            len: len.min(INLINE_VALUES) as u8,
            items,
        })
    }

    /// The values as a slice.
    #[inline]
    pub fn as_slice(&self) -> &[f64] {
        match &self.0 {
            ValuesRepr::Inline { len, items } => items.get(..usize::from(*len)).unwrap_or_default(),
            ValuesRepr::Heap(heap) => heap,
        }
    }

    /// The values as a mutable slice.
    pub fn as_mut_slice(&mut self) -> &mut [f64] {
        match &mut self.0 {
            ValuesRepr::Inline { len, items } => {
                items.get_mut(..usize::from(*len)).unwrap_or_default()
            }
            ValuesRepr::Heap(heap) => heap,
        }
    }

    /// The values as a `Vec`.
    pub fn to_vec(&self) -> Vec<f64> {
        self.as_slice().to_vec()
    }
}

impl Default for DatapointValues {
    fn default() -> DatapointValues {
        DatapointValues::new()
    }
}

impl std::ops::Deref for DatapointValues {
    type Target = [f64];
    #[inline]
    fn deref(&self) -> &[f64] {
        self.as_slice()
    }
}

impl std::ops::DerefMut for DatapointValues {
    fn deref_mut(&mut self) -> &mut [f64] {
        self.as_mut_slice()
    }
}

impl AsRef<[f64]> for DatapointValues {
    fn as_ref(&self) -> &[f64] {
        self.as_slice()
    }
}

impl fmt::Debug for DatapointValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl PartialEq for DatapointValues {
    fn eq(&self, other: &DatapointValues) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<Vec<f64>> for DatapointValues {
    fn eq(&self, other: &Vec<f64>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<[f64]> for DatapointValues {
    fn eq(&self, other: &[f64]) -> bool {
        self.as_slice() == other
    }
}

impl<const N: usize> PartialEq<[f64; N]> for DatapointValues {
    fn eq(&self, other: &[f64; N]) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl FromIterator<f64> for DatapointValues {
    fn from_iter<I: IntoIterator<Item = f64>>(iter: I) -> DatapointValues {
        let mut out = DatapointValues::new();
        for v in iter {
            out.push(v);
        }
        out
    }
}

impl From<&[f64]> for DatapointValues {
    fn from(values: &[f64]) -> DatapointValues {
        let mut items = [0.0; INLINE_VALUES];
        match items.get_mut(..values.len()) {
            Some(head) => {
                head.copy_from_slice(values);
                // At most INLINE_VALUES (4), so it fits.
                DatapointValues(ValuesRepr::Inline {
                    len: values.len() as u8,
                    items,
                })
            }
            None => DatapointValues(ValuesRepr::Heap(values.to_vec())),
        }
    }
}

impl From<Vec<f64>> for DatapointValues {
    fn from(v: Vec<f64>) -> DatapointValues {
        DatapointValues(ValuesRepr::Heap(v))
    }
}

impl From<DatapointValues> for Vec<f64> {
    fn from(v: DatapointValues) -> Vec<f64> {
        match v.0 {
            ValuesRepr::Inline { .. } => v.to_vec(),
            ValuesRepr::Heap(heap) => heap,
        }
    }
}

impl<'a> IntoIterator for &'a DatapointValues {
    type Item = &'a f64;
    type IntoIter = std::slice::Iter<'a, f64>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl IntoIterator for DatapointValues {
    type Item = f64;
    type IntoIter = std::vec::IntoIter<f64>;
    fn into_iter(self) -> Self::IntoIter {
        Vec::from(self).into_iter()
    }
}

/// How long each resolution is kept, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// 1-second buckets (CloudWatch: 3 hours).
    pub one_second: i64,
    /// 1-minute buckets (CloudWatch: 15 days).
    pub one_minute: i64,
    /// 1-hour buckets (CloudWatch: 455 days, about 15 months).
    pub one_hour: i64,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            one_second: 3 * 3600,
            one_minute: 15 * 86_400,
            one_hour: 455 * 86_400,
        }
    }
}

impl Retention {
    /// Each tier's (resolution in seconds, retention in seconds), finest first.
    pub fn tiers(&self) -> [(i64, i64); 3] {
        [
            (1, self.one_second),
            (60, self.one_minute),
            (3600, self.one_hour),
        ]
    }
}

/// A filter for [`crate::MetricStore::list`]: every given part must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricFilter {
    /// The namespace, exactly.
    pub namespace: Option<String>,
    /// The metric name, exactly.
    pub name: Option<String>,
    /// Dimensions the metric must have; a `None` value matches any value.
    pub dimensions: Vec<(String, Option<String>)>,
    /// Only metrics with a datapoint at or after this time (CloudWatch's RecentlyActive=PT3H).
    pub active_since: Option<i64>,
}

/// Why a query was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The period is not a positive multiple of the resolution available.
    #[error("period: a multiple of {resolution} seconds was expected for data starting {age} seconds ago, found {period}")]
    Period {
        /// The period asked for.
        period: i64,
        /// The resolution kept for data that old.
        resolution: i64,
        /// How old the start is.
        age: i64,
    },
    /// The start is not before the end.
    #[error("startTime: a time before endTime was expected, found start {start} >= end {end}")]
    Range {
        /// Start asked for.
        start: i64,
        /// End asked for.
        end: i64,
    },
    /// The query would return more datapoints than allowed.
    #[error("the query would return {n} datapoints; at most {max} are allowed per query")]
    TooManyDatapoints {
        /// How many it would return.
        n: i64,
        /// The limit.
        max: i64,
    },
}

/// Why the store could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory could not be created.
    #[error("metrics directory {path}: {error}")]
    Dir {
        /// The directory.
        path: String,
        /// The cause.
        error: std::io::Error,
    },
    /// The embedded database failed.
    #[error("metrics database: {0}")]
    Db(String),
}

impl StoreError {
    pub(crate) fn db(e: impl fmt::Display) -> StoreError {
        StoreError::Db(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datapoint_values_read_like_a_slice_inline_and_on_the_heap() {
        let few: DatapointValues = [1.0, 2.0, 3.0].into_iter().collect();
        assert_eq!(few, vec![1.0, 2.0, 3.0]);
        assert_eq!(few[1], 2.0);
        assert_eq!(few.first(), Some(&1.0));
        assert_eq!(format!("{few:?}"), "[1.0, 2.0, 3.0]");
        let many: DatapointValues = (0..9).map(f64::from).collect();
        assert_eq!(many.len(), 9, "past four values they move to the heap");
        assert_eq!(many[8], 8.0);
        assert_eq!(
            Vec::from(many.clone()),
            (0..9).map(f64::from).collect::<Vec<_>>()
        );
        assert_eq!(many.into_iter().sum::<f64>(), 36.0);
        let copied = DatapointValues::from(&[1.0, 2.0][..]);
        assert_eq!(copied, [1.0, 2.0]);
        let long = DatapointValues::from(&[0.5; 6][..]);
        assert_eq!(long, vec![0.5; 6]);
        let mut empty = DatapointValues::default();
        assert!(empty.is_empty());
        empty.push(5.0);
        empty[0] += 1.0;
        assert_eq!(empty, [6.0]);
        assert_ne!(empty, vec![6.0, 0.0], "unused inline room is not compared");
    }

    #[test]
    fn statistics_parse_and_refuse_bad_text() {
        assert_eq!(Statistic::parse("p99.9"), Some(Statistic::Percentile(99.9)));
        assert_eq!(Statistic::parse("Maximum"), Some(Statistic::Maximum));
        for bad in ["p", "p101", "p-1", "max", "p9x"] {
            assert_eq!(Statistic::parse(bad), None, "{bad}");
        }
    }
}
