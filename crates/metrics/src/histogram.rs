//! A sparse log-bucketed histogram (relative error under 1%) and the per-second bucket built on it.
//!
//! Why our own rather than hdrhistogram: CloudWatch values are arbitrary `f64`s (negative, tiny,
//! huge, fractional), while hdrhistogram wants non-negative integers within a range fixed up front.
//! Bins grow geometrically by [`GAMMA`]; a value is reported as its bin's midpoint, so the error
//! is at most (GAMMA-1)/(GAMMA+1) ≈ 0.99% of the value. Counts are `f64` because CloudWatch's
//! `Counts` are.

/// The ratio between consecutive bin bounds.
pub const GAMMA: f64 = 1.02;
/// `GAMMA.ln()`, spelled out because the call is not folded at compile time (a test checks it).
const LN_GAMMA: f64 = 0.01980262729617973;
/// Keeps keys of positive values above zero (ln(f64::MIN_POSITIVE)/ln(GAMMA) ≈ -35,900).
const KEY_OFFSET: f64 = 40_000.0;

/// A histogram as sorted (key, count) pairs; key 0 is zero, negative keys negative values.
/// A single bin is kept inline, so the common one-value-per-second bucket allocates nothing.
#[derive(Debug, Clone)]
pub struct Histogram {
    bins: Bins,
}

#[derive(Debug, Clone)]
enum Bins {
    /// Exactly one bin.
    One([(i32, f64); 1]),
    /// Any number of bins (empty without allocating).
    Many(Vec<(i32, f64)>),
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            bins: Bins::Many(Vec::new()),
        }
    }
}

impl PartialEq for Histogram {
    fn eq(&self, other: &Histogram) -> bool {
        self.bins() == other.bins()
    }
}

/// The bin key of a value.
pub(crate) fn key_of(v: f64) -> i32 {
    if v == 0.0 || !v.is_finite() {
        return 0;
    }
    let magnitude = (v.abs().ln() / LN_GAMMA).ceil() + KEY_OFFSET;
    // Clamped into i32 range; the offset keeps it ≥ 1 for every normal f64.
    let k = magnitude.clamp(1.0, f64::from(i32::MAX)) as i32;
    if v < 0.0 {
        -k
    } else {
        k
    }
}

/// The midpoint of a key's bin (bin k covers (GAMMA^(k-1), GAMMA^k]).
fn value_of(key: i32) -> f64 {
    if key == 0 {
        return 0.0;
    }
    let e = f64::from(key.abs()) - KEY_OFFSET;
    let upper = GAMMA.powf(e);
    let mid = 2.0 * upper / (GAMMA + 1.0);
    if key < 0 {
        -mid
    } else {
        mid
    }
}

/// The nearest-rank percentile `p` of (key, count) pairs sorted by key (a key may repeat, as when
/// several histograms' bins are gathered and sorted rather than merged); None if they count nothing.
pub(crate) fn percentile_of_sorted(bins: &[(i32, f64)], p: f64) -> Option<f64> {
    let total: f64 = bins.iter().map(|(_, c)| c).sum();
    if total <= 0.0 {
        return None;
    }
    let rank = (p / 100.0 * total).max(f64::MIN_POSITIVE);
    let mut seen = 0.0;
    for (k, c) in bins {
        seen += c;
        if seen >= rank * (1.0 - 1e-12) {
            return Some(value_of(*k));
        }
    }
    bins.last().map(|(k, _)| value_of(*k))
}

impl Histogram {
    /// Adds `count` observations of `value`.
    pub fn add(&mut self, value: f64, count: f64) {
        if count <= 0.0 || !count.is_finite() {
            return;
        }
        self.add_key(key_of(value), count);
    }

    /// Adds `count` (positive, finite) observations to bin `k`.
    pub(crate) fn add_key(&mut self, k: i32, count: f64) {
        match &mut self.bins {
            Bins::One([(k0, c0)]) if *k0 == k => *c0 += count,
            Bins::One([first]) => {
                let mut v = vec![*first, (k, count)];
                v.sort_by_key(|(k, _)| *k);
                self.bins = Bins::Many(v);
            }
            Bins::Many(v) if v.is_empty() => self.bins = Bins::One([(k, count)]),
            Bins::Many(v) => match v.binary_search_by_key(&k, |(k, _)| *k) {
                Ok(i) => v[i].1 += count,
                Err(i) => v.insert(i, (k, count)),
            },
        }
    }

    /// Adds every bin of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        let theirs = other.bins();
        if theirs.is_empty() {
            return;
        }
        if self.is_empty() {
            *self = other.clone();
            return;
        }
        if let [(k, c)] = theirs {
            self.add_key(*k, *c);
            return;
        }
        let ours = self.bins();
        let mut out = Vec::with_capacity(ours.len() + theirs.len());
        let (mut a, mut b) = (ours.iter().peekable(), theirs.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    out.push((x.0, x.1 + y.1));
                    a.next();
                    b.next();
                }
                (Some(x), Some(y)) if x.0 < y.0 => {
                    out.push(**x);
                    a.next();
                }
                (Some(_), Some(y)) => {
                    out.push(**y);
                    b.next();
                }
                (Some(x), None) => {
                    out.push(**x);
                    a.next();
                }
                (None, Some(y)) => {
                    out.push(**y);
                    b.next();
                }
                (None, None) => break,
            }
        }
        self.bins = Bins::Many(out);
    }

    /// True when nothing was added.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.bins().is_empty()
    }

    /// The total count.
    pub fn count(&self) -> f64 {
        self.bins().iter().map(|(_, c)| c).sum()
    }

    /// The value below which `p` percent of observations fall (nearest rank), or None if empty.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        percentile_of_sorted(self.bins(), p)
    }

    /// The bins, sorted by key, for encoding.
    #[inline]
    pub fn bins(&self) -> &[(i32, f64)] {
        match &self.bins {
            Bins::One(one) => one,
            Bins::Many(v) => v,
        }
    }

    /// A histogram from encoded bins (sorted again in case they were not).
    pub fn from_bins(mut bins: Vec<(i32, f64)>) -> Histogram {
        bins.sort_by_key(|(k, _)| *k);
        match bins.as_slice() {
            [one] => Histogram {
                bins: Bins::One([*one]),
            },
            _ => Histogram {
                bins: Bins::Many(bins),
            },
        }
    }
}

/// A statistic from a bucket's (or a merged period's) summary, with percentiles from
/// `percentile` (None when it holds no distribution) clamped to [min, max]; one value (min = max)
/// is its own percentile, without consulting the distribution.
#[inline]
pub(crate) fn statistic_of(
    statistic: crate::Statistic,
    (count, sum, min, max): (f64, f64, f64, f64),
    has_distribution: bool,
    percentile: impl FnOnce(f64) -> Option<f64>,
) -> f64 {
    use crate::Statistic::*;
    match statistic {
        SampleCount => count,
        Average => {
            if count > 0.0 {
                sum / count
            } else {
                0.0
            }
        }
        Sum => sum,
        Minimum => min,
        Maximum => max,
        Percentile(p) => {
            if p <= 0.0 {
                return min;
            }
            if p >= 100.0 {
                return max;
            }
            if !has_distribution {
                return f64::NAN;
            }
            if min == max {
                return min;
            }
            // max/min rather than clamp: a statistic set may claim min > max; clamp would panic.
            percentile(p).map_or(f64::NAN, |v| v.max(min).min(max))
        }
    }
}

/// One time bucket: count, sum, minimum, maximum and the distribution.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// Number of values.
    pub count: f64,
    /// Their sum.
    pub sum: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// Their distribution, for percentiles.
    pub histogram: Histogram,
}

impl Default for Bucket {
    fn default() -> Bucket {
        Bucket {
            count: 0.0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            histogram: Histogram::default(),
        }
    }
}

impl Bucket {
    /// Adds `count` observations of `value`.
    pub fn add_value(&mut self, value: f64, count: f64) {
        if count <= 0.0 {
            return;
        }
        self.count += count;
        self.sum += value * count;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.histogram.add(value, count);
    }

    /// Adds one observation of the finite `value`, whose bin key [`key_of`] gave (so that a
    /// value folded into several resolutions has its key computed once).
    pub(crate) fn add_one_keyed(&mut self, value: f64, key: i32) {
        self.count += 1.0;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.histogram.add_key(key, 1.0);
    }

    /// Adds a statistic set. Its distribution is unknown, so the histogram gets the minimum and
    /// maximum once each and the remaining samples at the mean (clamped to [min, max]); exact
    /// when SampleCount ≤ 2 or Minimum = Maximum, which is when CloudWatch itself offers percentiles.
    pub fn add_set(&mut self, sample_count: f64, sum: f64, min: f64, max: f64) {
        if sample_count <= 0.0 {
            return;
        }
        self.count += sample_count;
        self.sum += sum;
        self.min = self.min.min(min);
        self.max = self.max.max(max);
        if sample_count <= 1.0 {
            self.histogram.add(sum / sample_count, sample_count);
        } else if min == max {
            self.histogram.add(min, sample_count);
        } else {
            self.histogram.add(min, 1.0);
            self.histogram.add(max, 1.0);
            let rest = sample_count - 2.0;
            if rest > 0.0 {
                // max/min rather than clamp, which panics if a caller claims min > max.
                let mean_rest = ((sum - min - max) / rest).max(min).min(max);
                self.histogram.add(mean_rest, rest);
            }
        }
    }

    /// Adds another bucket.
    pub fn merge(&mut self, other: &Bucket) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.histogram.merge(&other.histogram);
    }

    /// Adds another bucket's count, sum, min and max only (when no percentile is wanted).
    pub fn merge_summary(&mut self, other: &Bucket) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// A statistic of this bucket; percentiles come from the histogram, clamped to [min, max].
    #[inline]
    pub fn statistic(&self, statistic: crate::Statistic) -> f64 {
        statistic_of(
            statistic,
            (self.count, self.sum, self.min, self.max),
            !self.histogram.is_empty(),
            |p| self.histogram.percentile(p),
        )
    }

    /// Encodes as little-endian count, sum, min, max, n bins, then (key, count) per bin.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(36 + self.histogram.bins().len() * 12);
        self.encode_into(&mut out);
        out
    }

    /// Appends what [`Bucket::encode`] returns to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let bins = self.histogram.bins();
        for v in [self.count, self.sum, self.min, self.max] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(bins.len() as u32).to_le_bytes());
        for (k, c) in bins {
            out.extend_from_slice(&k.to_le_bytes());
            out.extend_from_slice(&c.to_le_bytes());
        }
    }

    /// Decodes what [`Bucket::encode`] wrote; None if truncated.
    pub fn decode(bytes: &[u8]) -> Option<Bucket> {
        let f = |i: usize| -> Option<f64> {
            Some(f64::from_le_bytes(bytes.get(i..i + 8)?.try_into().ok()?))
        };
        let n = u32::from_le_bytes(bytes.get(32..36)?.try_into().ok()?) as usize;
        let mut bins = Vec::with_capacity(n);
        for i in 0..n {
            let at = 36 + i * 12;
            let k = i32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
            let c = f(at + 4)?;
            bins.push((k, c));
        }
        Some(Bucket {
            count: f(0)?,
            sum: f(8)?,
            min: f(16)?,
            max: f(24)?,
            histogram: Histogram::from_bins(bins),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Statistic;

    #[test]
    fn percentiles_of_a_uniform_distribution_are_within_one_percent() {
        let mut b = Bucket::default();
        for v in 1..=10_000 {
            b.add_value(f64::from(v), 1.0);
        }
        for (p, exact) in [
            (50.0, 5000.0),
            (90.0, 9000.0),
            (99.0, 9900.0),
            (99.9, 9990.0),
        ] {
            let got = b.statistic(Statistic::Percentile(p));
            let err = (got - exact).abs() / exact;
            assert!(err <= 0.0101, "p{p}: got {got}, exact {exact}, error {err}");
        }
        assert_eq!(b.statistic(Statistic::Minimum), 1.0);
        assert_eq!(b.statistic(Statistic::Maximum), 10_000.0);
        assert_eq!(b.statistic(Statistic::SampleCount), 10_000.0);
        assert_eq!(b.statistic(Statistic::Sum), 50_005_000.0);
        assert_eq!(b.statistic(Statistic::Average), 5000.5);
    }

    #[test]
    fn the_spelled_out_logarithm_is_the_computed_one() {
        assert_eq!(LN_GAMMA.to_bits(), GAMMA.ln().to_bits());
    }

    #[test]
    fn one_bin_is_kept_inline_and_grows_into_many() {
        let mut h = Histogram::default();
        assert!(h.is_empty());
        h.add(5.0, 1.0);
        h.add(5.0, 2.0);
        assert_eq!(h.bins().len(), 1);
        assert_eq!(h.count(), 3.0);
        h.add(-5.0, 1.0);
        assert_eq!(h.bins().len(), 2);
        assert!(h.bins()[0].0 < h.bins()[1].0, "still sorted");
        assert_eq!(h, Histogram::from_bins(h.bins().to_vec()));
        let mut one = Histogram::default();
        one.add(5.0, 3.0);
        assert_eq!(one, Histogram::from_bins(vec![(key_of(5.0), 3.0)]));
        one.merge(&h);
        assert_eq!(one.count(), 7.0);
        assert_eq!(one.bins().len(), 2);
    }

    #[test]
    fn a_statistic_set_claiming_min_above_max_gives_numbers_not_a_panic() {
        let mut b = Bucket::default();
        b.add_set(3.0, 15.0, 9.0, 1.0);
        let p50 = b.statistic(Statistic::Percentile(50.0));
        assert!(p50.is_finite(), "{p50}");
        let empty = Bucket::default().statistic(Statistic::Percentile(50.0));
        assert!(empty.is_nan(), "an empty bucket has no percentile: {empty}");
    }

    #[test]
    fn negative_zero_and_tiny_values_keep_their_order() {
        let mut h = Histogram::default();
        for v in [-1000.0, -1.0, 0.0, 1e-9, 1.0, 1e12] {
            h.add(v, 1.0);
        }
        let keys: Vec<i32> = h.bins().iter().map(|(k, _)| *k).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(keys.len(), 6);
        let p0 = h.percentile(1.0).unwrap_or(0.0);
        assert!(
            (p0 + 1000.0).abs() / 1000.0 < 0.01,
            "lowest is about -1000, got {p0}"
        );
        let top = h.percentile(100.0).unwrap_or(0.0);
        assert!(
            (top - 1e12).abs() / 1e12 < 0.01,
            "highest is about 1e12, got {top}"
        );
    }

    #[test]
    fn merge_equals_adding_everything_to_one() {
        let (mut a, mut b, mut all) = (
            Histogram::default(),
            Histogram::default(),
            Histogram::default(),
        );
        for v in 0..500 {
            let x = f64::from(v) * 1.7;
            if v % 3 == 0 {
                a.add(x, 2.0);
            } else {
                b.add(x, 2.0);
            }
            all.add(x, 2.0);
        }
        a.merge(&b);
        assert_eq!(a, all);
        assert_eq!(a.count(), 1000.0);
    }

    #[test]
    fn buckets_round_trip_and_truncation_is_refused() {
        let mut b = Bucket::default();
        b.add_value(3.5, 2.0);
        b.add_set(4.0, 40.0, 5.0, 15.0);
        let bytes = b.encode();
        assert_eq!(Bucket::decode(&bytes), Some(b.clone()));
        assert_eq!(Bucket::decode(&bytes[..bytes.len() - 1]), None);
        assert_eq!(b.count, 6.0);
        assert_eq!(b.min, 3.5);
        assert_eq!(b.max, 15.0);
    }

    #[test]
    fn statistic_sets_with_equal_bounds_give_exact_percentiles() {
        let mut b = Bucket::default();
        b.add_set(10.0, 70.0, 7.0, 7.0);
        assert_eq!(b.statistic(Statistic::Percentile(99.0)), 7.0);
        assert_eq!(b.statistic(Statistic::Average), 7.0);
    }
}
