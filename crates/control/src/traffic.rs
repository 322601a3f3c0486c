//! Per-target-group request statistics from the proxy's one-second metrics, kept in memory for
//! the last minutes: what canary analysis compares between the old and the new task set.

use berth_model::protocol::proxy::MetricSample;
use std::collections::{BTreeMap, VecDeque};

/// Seconds of history kept per target group.
const KEEP_SECONDS: i64 = 1800;

#[derive(Debug, Clone, Default)]
struct Second {
    t: i64,
    requests: f64,
    errors: f64,
    /// (latency seconds, count)
    latencies: Vec<(f64, f64)>,
}

/// Request statistics per target group (keyed by its CloudWatch dimension `targetgroup/name/id`).
#[derive(Debug, Default)]
pub struct TrafficStats {
    groups: BTreeMap<String, VecDeque<Second>>,
}

/// Figures of one target group over a window.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Window {
    pub requests: f64,
    pub errors: f64,
    /// p99 of target response time, seconds.
    pub p99: Option<f64>,
}

impl Window {
    /// 5xx share in percent.
    pub fn error_percent(&self) -> f64 {
        if self.requests > 0.0 {
            100.0 * self.errors / self.requests
        } else {
            0.0
        }
    }
}

/// `targetgroup/<name>/<id>` of a target group ARN.
pub fn tg_dimension(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

impl TrafficStats {
    /// Folds in one report's samples.
    pub fn record(&mut self, samples: &[MetricSample]) {
        for s in samples {
            let Some((_, tg)) = s.dimensions.iter().find(|(k, _)| k == "TargetGroup") else {
                continue;
            };
            let t = s.timestamp.floor() as i64;
            let q = self.groups.entry(tg.clone()).or_default();
            let idx = match q.iter().rposition(|x| x.t == t) {
                Some(i) => i,
                None => {
                    q.push_back(Second {
                        t,
                        ..Second::default()
                    });
                    q.make_contiguous().sort_by_key(|x| x.t);
                    q.iter().rposition(|x| x.t == t).unwrap_or(0)
                }
            };
            let sec = &mut q[idx];
            let total: f64 = s.values.iter().zip(&s.counts).map(|(v, c)| v * c).sum();
            match s.name.as_str() {
                "RequestCount" => sec.requests += total,
                "HTTPCode_Target_5XX_Count"
                | "HTTPCode_ELB_502_Count"
                | "HTTPCode_ELB_504_Count" => sec.errors += total,
                "TargetResponseTime" => sec
                    .latencies
                    .extend(s.values.iter().copied().zip(s.counts.iter().copied())),
                _ => {}
            }
            while q.front().is_some_and(|x| x.t < t - KEEP_SECONDS) {
                q.pop_front();
            }
        }
    }

    /// The figures of a target group between two times (seconds).
    pub fn window(&self, tg_arn: &str, since: f64, until: f64) -> Window {
        let Some(q) = self.groups.get(tg_dimension(tg_arn)) else {
            return Window::default();
        };
        let mut w = Window::default();
        let mut lat: Vec<(f64, f64)> = Vec::new();
        for s in q
            .iter()
            .filter(|s| (s.t as f64) >= since.floor() && (s.t as f64) <= until)
        {
            w.requests += s.requests;
            w.errors += s.errors;
            lat.extend(&s.latencies);
        }
        w.p99 = percentile(&mut lat, 0.99);
        w
    }
}

fn percentile(values: &mut [(f64, f64)], q: f64) -> Option<f64> {
    let total: f64 = values.iter().map(|(_, c)| c).sum();
    if total <= 0.0 {
        return None;
    }
    values.sort_by(|a, b| a.0.total_cmp(&b.0));
    let rank = q * total;
    let mut seen = 0.0;
    for (v, c) in values.iter() {
        seen += c;
        if seen >= rank {
            return Some(*v);
        }
    }
    values.last().map(|(v, _)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, t: f64, values: Vec<f64>, counts: Vec<f64>) -> MetricSample {
        MetricSample {
            namespace: "AWS/ApplicationELB".into(),
            name: name.into(),
            dimensions: vec![
                ("LoadBalancer".into(), "app/web/1".into()),
                ("TargetGroup".into(), "targetgroup/green/2".into()),
            ],
            timestamp: t,
            unit: "Count".into(),
            values,
            counts,
        }
    }

    #[test]
    fn windows_add_up_requests_errors_and_latency() {
        let mut s = TrafficStats::default();
        s.record(&[
            sample("RequestCount", 100.0, vec![50.0], vec![1.0]),
            sample("HTTPCode_Target_5XX_Count", 100.0, vec![5.0], vec![1.0]),
            sample(
                "TargetResponseTime",
                100.0,
                vec![0.01, 0.5],
                vec![98.0, 2.0],
            ),
            sample("RequestCount", 101.0, vec![50.0], vec![1.0]),
        ]);
        let arn = "arn:aws:elasticloadbalancing:us-east-1:0:targetgroup/green/2";
        let w = s.window(arn, 100.0, 101.0);
        assert_eq!(w.requests, 100.0);
        assert_eq!(w.errors, 5.0);
        assert!((w.error_percent() - 5.0).abs() < 1e-9);
        assert_eq!(w.p99, Some(0.5));
        assert_eq!(s.window(arn, 101.0, 200.0).requests, 50.0);
        assert_eq!(
            s.window("arn:x:targetgroup/other/1", 0.0, 1e12),
            Window::default()
        );
    }
}
