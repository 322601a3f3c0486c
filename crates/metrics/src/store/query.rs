//! Statistics per period over one tier's buckets, in one pass and without per-bucket clones:
//! each datapoint's values come straight from its bucket when the period is the resolution, or
//! from a running summary otherwise, the histograms' bins gathered and sorted once per period
//! only when a percentile is asked for.

use super::tier::Tier;
use crate::histogram::{percentile_of_sorted, statistic_of, Bucket};
use crate::types::{Datapoint, DatapointValues, MetricQuery, Statistic, INLINE_VALUES};

/// The datapoints of `q` from `tier` (of resolution `res`, which divides `q.period`); `first` is
/// the start of the bucket holding `q.start`.
pub(super) fn datapoints(q: &MetricQuery, tier: &Tier, res: i64, first: i64) -> Vec<Datapoint> {
    let n_periods = usize::try_from((q.end - q.start + q.period - 1) / q.period).unwrap_or(0);
    let capacity = n_periods.min(tier.upper_bound_in(first, q.end));
    let mut out = Vec::with_capacity(capacity);
    if q.period == res {
        let n = q.statistics.len();
        tier.for_each_in(first, q.end, |ts, b| {
            let values = if n <= INLINE_VALUES {
                let mut items = [0.0; INLINE_VALUES];
                for (v, s) in items.iter_mut().zip(&q.statistics) {
                    *v = b.statistic(*s);
                }
                DatapointValues::inline(items, n)
            } else {
                q.statistics.iter().map(|s| b.statistic(*s)).collect()
            };
            out.push(Datapoint {
                timestamp: ts.max(q.start),
                values,
            });
        });
        return out;
    }
    let want_bins = q.statistics.iter().any(Statistic::is_percentile);
    let mut period = Period::default();
    tier.for_each_in(first, q.end, |ts, b| {
        let period_start = q.start + (ts.max(q.start) - q.start) / q.period * q.period;
        if period.n_buckets > 0 && period.start != period_start {
            out.push(period.datapoint(&q.statistics));
            period.clear();
        }
        period.start = period_start;
        period.add(b, want_bins);
    });
    if period.n_buckets > 0 {
        out.push(period.datapoint(&q.statistics));
    }
    out
}

/// The running summary of one period.
#[derive(Debug)]
struct Period {
    start: i64,
    n_buckets: usize,
    count: f64,
    sum: f64,
    min: f64,
    max: f64,
    /// Every bucket's histogram bins, unsorted (reused from period to period).
    bins: Vec<(i32, f64)>,
}

impl Default for Period {
    fn default() -> Period {
        Period {
            start: 0,
            n_buckets: 0,
            count: 0.0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            bins: Vec::new(),
        }
    }
}

impl Period {
    fn add(&mut self, b: &Bucket, want_bins: bool) {
        self.n_buckets += 1;
        self.count += b.count;
        self.sum += b.sum;
        self.min = self.min.min(b.min);
        self.max = self.max.max(b.max);
        if want_bins {
            self.bins.extend_from_slice(b.histogram.bins());
        }
    }

    fn clear(&mut self) {
        let bins = std::mem::take(&mut self.bins);
        *self = Period {
            bins,
            ..Period::default()
        };
        self.bins.clear();
    }

    fn datapoint(&mut self, statistics: &[Statistic]) -> Datapoint {
        let summary = (self.count, self.sum, self.min, self.max);
        let has_distribution = !self.bins.is_empty();
        let mut sorted = false;
        let bins = &mut self.bins;
        let values = statistics
            .iter()
            .map(|s| {
                statistic_of(*s, summary, has_distribution, |p| {
                    if !sorted {
                        bins.sort_unstable_by_key(|(k, _)| *k);
                        sorted = true;
                    }
                    percentile_of_sorted(bins, p)
                })
            })
            .collect();
        Datapoint {
            timestamp: self.start,
            values,
        }
    }
}
