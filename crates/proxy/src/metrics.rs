//! Lock-free per-load-balancer and per-target-group counters, drained once a second into
//! CloudWatch-shaped samples (namespace `AWS/ApplicationELB`).

use berth_model::protocol::proxy::MetricSample;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// CloudWatch namespace of every sample.
pub const NAMESPACE: &str = "AWS/ApplicationELB";

/// A counter read-and-reset by the reporter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }
    /// Returns the count and resets it.
    pub fn take(&self) -> u64 {
        self.0.swap(0, Relaxed)
    }
}

/// Buckets grow by 25 % from 10 µs; the last one catches everything above ~100 s.
const N_BUCKETS: usize = 74;
const FIRST_BUCKET_SECS: f64 = 10e-6;
const GROWTH: f64 = 1.25;

/// A compact log-scale latency histogram.
#[derive(Debug)]
pub struct Histogram {
    buckets: [AtomicU64; N_BUCKETS],
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

fn bucket_of(secs: f64) -> usize {
    if secs <= FIRST_BUCKET_SECS {
        return 0;
    }
    let i = ((secs / FIRST_BUCKET_SECS).ln() / GROWTH.ln()).ceil() as usize;
    i.min(N_BUCKETS - 1)
}

/// Upper bound of bucket `i` in seconds (the value reported for its observations).
fn bucket_value(i: usize) -> f64 {
    FIRST_BUCKET_SECS * GROWTH.powi(i as i32)
}

impl Histogram {
    /// Records one observation.
    #[inline]
    pub fn record(&self, d: Duration) {
        self.buckets[bucket_of(d.as_secs_f64())].fetch_add(1, Relaxed);
    }
    /// Returns (values, counts) of the non-empty buckets and resets them.
    pub fn take(&self) -> (Vec<f64>, Vec<f64>) {
        let mut values = Vec::new();
        let mut counts = Vec::new();
        for (i, b) in self.buckets.iter().enumerate() {
            let n = b.swap(0, Relaxed);
            if n > 0 {
                values.push(bucket_value(i));
                counts.push(n as f64);
            }
        }
        (values, counts)
    }
}

/// HTTP status classes returned by targets.
#[derive(Debug, Default)]
pub struct TargetCodes {
    pub c2xx: Counter,
    pub c3xx: Counter,
    pub c4xx: Counter,
    pub c5xx: Counter,
}

impl TargetCodes {
    /// Counts one target response code.
    #[inline]
    pub fn record(&self, status: u16) {
        match status {
            200..=299 => self.c2xx.inc(),
            300..=399 => self.c3xx.inc(),
            400..=499 => self.c4xx.inc(),
            500..=599 => self.c5xx.inc(),
            _ => {}
        }
    }
}

/// Counters of one target group.
#[derive(Debug, Default)]
pub struct GroupMetrics {
    pub requests: Counter,
    pub codes: TargetCodes,
    pub response_time: Histogram,
}

/// Counters of one load balancer.
#[derive(Debug, Default)]
pub struct LbMetrics {
    pub requests: Counter,
    pub codes: TargetCodes,
    pub response_time: Histogram,
    pub elb_4xx: Counter,
    pub elb_502: Counter,
    pub elb_503: Counter,
    pub elb_504: Counter,
    pub elb_5xx: Counter,
    pub new_connections: Counter,
    pub active_connections: AtomicI64,
}

impl LbMetrics {
    /// Counts one response the load balancer generated itself.
    #[inline]
    pub fn record_elb(&self, status: u16) {
        match status {
            400..=499 => self.elb_4xx.inc(),
            502 => self.elb_502.inc(),
            503 => self.elb_503.inc(),
            504 => self.elb_504.inc(),
            _ => {}
        }
        if (500..=599).contains(&status) {
            self.elb_5xx.inc();
        }
    }
}

/// Builds samples for one second.
pub struct SampleSink<'a> {
    pub out: &'a mut Vec<MetricSample>,
    pub timestamp: f64,
}

impl SampleSink<'_> {
    fn push(
        &mut self,
        name: &str,
        dims: &[(&str, &str)],
        unit: &str,
        values: Vec<f64>,
        counts: Vec<f64>,
    ) {
        self.out.push(MetricSample {
            namespace: NAMESPACE.into(),
            name: name.into(),
            dimensions: dims
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            timestamp: self.timestamp,
            unit: unit.into(),
            values,
            counts,
        });
    }

    /// A counter sample, left out when zero.
    pub fn count(&mut self, name: &str, dims: &[(&str, &str)], n: u64) {
        if n > 0 {
            self.push(name, dims, "Count", vec![n as f64], vec![1.0]);
        }
    }

    /// A gauge sample, always sent.
    pub fn gauge(&mut self, name: &str, dims: &[(&str, &str)], v: f64) {
        self.push(name, dims, "Count", vec![v], vec![1.0]);
    }

    /// A latency histogram, left out when empty.
    pub fn seconds(&mut self, name: &str, dims: &[(&str, &str)], h: &Histogram) {
        let (values, counts) = h.take();
        if !values.is_empty() {
            self.push(name, dims, "Seconds", values, counts);
        }
    }

    /// The target status classes.
    pub fn codes(&mut self, dims: &[(&str, &str)], c: &TargetCodes) {
        self.count("HTTPCode_Target_2XX_Count", dims, c.c2xx.take());
        self.count("HTTPCode_Target_3XX_Count", dims, c.c3xx.take());
        self.count("HTTPCode_Target_4XX_Count", dims, c.c4xx.take());
        self.count("HTTPCode_Target_5XX_Count", dims, c.c5xx.take());
    }
}

/// `app/<name>/<id>` from a load balancer ARN (CloudWatch's LoadBalancer dimension).
pub fn lb_dimension(arn: &str) -> String {
    match arn.split_once(":loadbalancer/") {
        Some((_, rest)) => rest.to_string(),
        None => arn.to_string(),
    }
}

/// `targetgroup/<name>/<id>` from a target group ARN (CloudWatch's TargetGroup dimension).
pub fn tg_dimension(arn: &str) -> String {
    match arn.find(":targetgroup/") {
        Some(i) => arn[i + 1..].to_string(),
        None => arn.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_hold_their_values() {
        let h = Histogram::default();
        h.record(Duration::from_micros(5));
        h.record(Duration::from_millis(3));
        h.record(Duration::from_millis(3));
        h.record(Duration::from_secs(1000));
        let (values, counts) = h.take();
        assert_eq!(counts, vec![1.0, 2.0, 1.0]);
        assert!(
            values[1] >= 0.003 && values[1] < 0.003 * GROWTH,
            "{values:?}"
        );
        assert!(h.take().0.is_empty(), "take resets");
    }

    #[test]
    fn dimensions_from_arns() {
        assert_eq!(
            lb_dimension(
                "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/web/50dc6c495c0c9188"
            ),
            "app/web/50dc6c495c0c9188"
        );
        assert_eq!(
            tg_dimension(
                "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/tg/73e2d6bc24d8a067"
            ),
            "targetgroup/tg/73e2d6bc24d8a067"
        );
        assert_eq!(lb_dimension("plain"), "plain");
    }
}
