//! Tests of the metrics store: statistics, downsampling, retention, persistence and listing.

use super::*;
use crate::Dimension;
use redb::ReadableTableMetadata;

const T0: i64 = 1_800_000_000; // a round "now" (divisible by 3600)

fn id(name: &str) -> MetricId {
    MetricId::new("App", name, vec![Dimension::new("Service", "web")])
}

fn value(name: &str, ts: i64, v: f64) -> MetricDatum {
    MetricDatum {
        id: id(name),
        unit: Some("Count".into()),
        timestamp: ts,
        sample: Sample::Value(v),
    }
}

fn query(name: &str, start: i64, end: i64, period: i64, stats: &[Statistic]) -> MetricQuery {
    MetricQuery {
        id: id(name),
        start,
        end,
        period,
        statistics: stats.to_vec(),
        unit: None,
    }
}

fn open(dir: &Path) -> MetricStore {
    match MetricStore::open(dir, Retention::default()) {
        Ok(s) => s,
        Err(e) => panic!("open: {e}"),
    }
}

#[test]
fn every_statistic_over_one_period() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let data: Vec<MetricDatum> = (1..=10)
        .map(|v| value("m", T0 - 30 + v, v as f64))
        .collect();
    s.put_at(&data, T0);
    let stats = [
        Statistic::SampleCount,
        Statistic::Average,
        Statistic::Sum,
        Statistic::Minimum,
        Statistic::Maximum,
        Statistic::Percentile(50.0),
    ];
    let dps = s
        .query_at(&query("m", T0 - 60, T0, 60, &stats), T0)
        .unwrap();
    assert_eq!(dps.len(), 1);
    assert_eq!(dps[0].timestamp, T0 - 60);
    assert_eq!(&dps[0].values[..5], &[10.0, 5.5, 55.0, 1.0, 10.0]);
    assert!(
        (dps[0].values[5] - 5.0).abs() <= 0.05,
        "p50 {}",
        dps[0].values[5]
    );
    assert_eq!(s.unit(&id("m")).as_deref(), Some("Count"));
}

#[test]
fn one_second_periods_give_one_datapoint_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let data: Vec<MetricDatum> = (0..120)
        .map(|i| value("m", T0 - 120 + i, i as f64))
        .collect();
    s.put_at(&data, T0);
    let dps = s
        .query_at(&query("m", T0 - 120, T0, 1, &[Statistic::Maximum]), T0)
        .unwrap();
    assert_eq!(dps.len(), 120);
    assert_eq!(dps[7].timestamp, T0 - 113);
    assert_eq!(dps[7].values, vec![7.0]);
    let by5 = s
        .query_at(&query("m", T0 - 120, T0, 5, &[Statistic::Sum]), T0)
        .unwrap();
    assert_eq!(by5.len(), 24);
    assert_eq!(by5[0].values, vec![0.0 + 1.0 + 2.0 + 3.0 + 4.0]);
}

#[test]
fn statistic_sets_and_value_arrays_are_ingested() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let mut set = value("m", T0 - 10, 0.0);
    set.sample = Sample::StatisticSet {
        sample_count: 4.0,
        sum: 20.0,
        minimum: 1.0,
        maximum: 9.0,
    };
    let mut arr = value("m", T0 - 9, 0.0);
    arr.sample = Sample::Values {
        values: vec![2.0, 3.0],
        counts: vec![3.0, 1.0],
    };
    s.put_at(&[set, arr], T0);
    let dps = s
        .query_at(
            &query(
                "m",
                T0 - 60,
                T0,
                60,
                &[
                    Statistic::SampleCount,
                    Statistic::Sum,
                    Statistic::Minimum,
                    Statistic::Maximum,
                ],
            ),
            T0,
        )
        .unwrap();
    assert_eq!(dps[0].values, vec![8.0, 29.0, 1.0, 9.0]);
}

#[test]
fn old_data_is_served_downsampled_and_periods_must_fit_the_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let old = T0 - 5 * 3600; // older than the 3 h of 1 s data
    s.put_at(
        &[value("m", old + 5, 1.0), value("m", old + 65, 3.0)],
        old + 70,
    );
    s.compact_at(T0);
    assert_eq!(s.bucket_counts()[0], 0, "1 s buckets past 3 h are dropped");
    assert_eq!(s.bucket_counts()[1], 2);
    let err = s
        .query_at(&query("m", old, old + 120, 1, &[Statistic::Sum]), T0)
        .unwrap_err();
    assert!(
        matches!(err, QueryError::Period { resolution: 60, .. }),
        "{err}"
    );
    let dps = s
        .query_at(&query("m", old, old + 120, 60, &[Statistic::Sum]), T0)
        .unwrap();
    assert_eq!(
        dps.iter().map(|d| d.values[0]).collect::<Vec<_>>(),
        vec![1.0, 3.0]
    );
    let hour = s
        .query_at(
            &query("m", old, old + 3600, 3600, &[Statistic::Average]),
            T0,
        )
        .unwrap();
    assert_eq!(hour.len(), 1);
    assert_eq!(hour[0].values, vec![2.0]);
    let ancient = T0 - 20 * 86_400;
    let err = s
        .query_at(
            &query("m", ancient, ancient + 3600, 60, &[Statistic::Sum]),
            T0,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            QueryError::Period {
                resolution: 3600,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn retention_drops_each_tier_and_data_older_than_all_is_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention {
        one_second: 10,
        one_minute: 120,
        one_hour: 7200,
    };
    let s = MetricStore::open(dir.path(), retention).unwrap();
    s.put_at(
        &[value("m", T0 - 5, 1.0), value("m", T0 - 100_000, 1.0)],
        T0,
    );
    assert_eq!(s.bucket_counts(), [1, 1, 1]);
    s.compact_at(T0 + 60);
    assert_eq!(s.bucket_counts(), [0, 1, 1]);
    s.compact_at(T0 + 600);
    assert_eq!(s.bucket_counts(), [0, 0, 1]);
    s.compact_at(T0 + 10_000);
    assert_eq!(s.bucket_counts(), [0, 0, 0]);
    assert!(
        s.list(&MetricFilter::default()).is_empty(),
        "a metric without data is not listed"
    );
}

#[test]
fn flushed_data_survives_reopening_and_expired_data_stays_gone() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_seconds();
    {
        let s = open(dir.path());
        s.put_at(
            &[
                value("m", now - 2, 4.0),
                value("m", now - 1, 6.0),
                value("n", now - 1, 1.0),
            ],
            now,
        );
        s.flush().unwrap();
    }
    let s = open(dir.path());
    let dps = s
        .query_at(
            &query("m", now - 60, now + 1, 1, &[Statistic::Maximum]),
            now,
        )
        .unwrap();
    assert_eq!(
        dps.iter().map(|d| d.values[0]).collect::<Vec<_>>(),
        vec![4.0, 6.0]
    );
    assert_eq!(s.unit(&id("m")).as_deref(), Some("Count"));
    assert_eq!(s.list(&MetricFilter::default()).len(), 2);
    // Later writes to a known series go to the same series after reopening.
    s.put_at(&[value("m", now, 8.0)], now);
    s.compact_at(now + 500 * 86_400);
    s.flush().unwrap();
    drop(s);
    let s = open(dir.path());
    assert_eq!(s.bucket_counts(), [0, 0, 0]);
}

#[test]
fn the_background_thread_flushes_within_about_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_seconds();
    let s = open(dir.path());
    s.put_at(&[value("m", now, 1.0)], now);
    // Wait (bounded) until the flush thread has written; then a fresh read of the file sees it.
    let mut seen = false;
    for _ in 0..40 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let txn = s.inner.db.begin_read().unwrap();
        let t = txn.open_table(BUCKETS).unwrap();
        if t.len().unwrap() == 3 {
            seen = true;
            break;
        }
    }
    assert!(
        seen,
        "the 3 buckets (1 s, 1 min, 1 h) reach disk without an explicit flush"
    );
}

#[test]
fn list_filters_by_namespace_name_and_dimensions() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let mut other = value("x", T0, 1.0);
    other.id = MetricId::new("Other", "x", vec![Dimension::new("Service", "api")]);
    s.put_at(&[value("a", T0, 1.0), value("b", T0, 1.0), other], T0);
    let names = |f: MetricFilter| s.list(&f).into_iter().map(|m| m.name).collect::<Vec<_>>();
    assert_eq!(names(MetricFilter::default()), vec!["a", "b", "x"]);
    assert_eq!(
        names(MetricFilter {
            namespace: Some("App".into()),
            ..Default::default()
        }),
        vec!["a", "b"]
    );
    assert_eq!(
        names(MetricFilter {
            name: Some("b".into()),
            ..Default::default()
        }),
        vec!["b"]
    );
    let dims = vec![("Service".to_string(), Some("api".to_string()))];
    assert_eq!(
        names(MetricFilter {
            dimensions: dims,
            ..Default::default()
        }),
        vec!["x"]
    );
    let any = vec![("Service".to_string(), None)];
    assert_eq!(
        names(MetricFilter {
            dimensions: any,
            ..Default::default()
        })
        .len(),
        3
    );
    let none = vec![("Nope".to_string(), None)];
    assert!(names(MetricFilter {
        dimensions: none,
        ..Default::default()
    })
    .is_empty());
}

#[test]
fn bad_queries_are_refused_and_unknown_metrics_are_empty() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.put_at(&[value("m", T0 - 1, 1.0)], T0);
    assert!(matches!(
        s.query_at(&query("m", T0, T0, 60, &[]), T0),
        Err(QueryError::Range { .. })
    ));
    assert!(matches!(
        s.query_at(&query("m", T0 - 60, T0, 0, &[]), T0),
        Err(QueryError::Period { .. })
    ));
    assert!(s
        .query_at(&query("zz", T0 - 60, T0, 60, &[Statistic::Sum]), T0)
        .unwrap()
        .is_empty());
    let mut q = query("m", T0 - 60, T0, 60, &[Statistic::Sum]);
    q.unit = Some("Seconds".into());
    assert!(
        s.query_at(&q, T0).unwrap().is_empty(),
        "a different unit matches nothing"
    );
}

#[test]
fn prometheus_text_shows_the_newest_second() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.put_at(
        &[
            value("Requests", T0 - 2, 1.0),
            value("Requests", T0 - 1, 3.0),
            value("Requests", T0 - 1, 5.0),
        ],
        T0,
    );
    let text = s.prometheus_text();
    assert!(text.contains("app_requests{service=\"web\"} 4 "), "{text}");
}

#[test]
fn period_statistics_equal_one_bucket_holding_all_of_the_periods_values() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let start = T0 - 7200;
    // Several distinct values per second, so the 1 s buckets hold real histograms too.
    let mut data = Vec::new();
    let mut expected: Vec<Bucket> = vec![Bucket::default(); 120];
    for i in 0..7200 {
        let mut d = value("m", start + i, 0.0);
        let values: Vec<f64> = (0..3).map(|k| ((i * 37 + k * 101) % 997) as f64).collect();
        for v in &values {
            expected[(i / 60) as usize].add_value(*v, 1.0);
        }
        d.sample = Sample::Values {
            values,
            counts: vec![],
        };
        data.push(d);
    }
    s.put_at(&data, T0);
    let stats = [
        Statistic::SampleCount,
        Statistic::Average,
        Statistic::Minimum,
        Statistic::Maximum,
        Statistic::Percentile(50.0),
        Statistic::Percentile(99.0),
    ];
    let dps = s.query_at(&query("m", start, T0, 60, &stats), T0).unwrap();
    assert_eq!(dps.len(), 120);
    for (i, (dp, b)) in dps.iter().zip(&expected).enumerate() {
        assert_eq!(dp.timestamp, start + 60 * i as i64);
        let want: Vec<f64> = stats.iter().map(|st| b.statistic(*st)).collect();
        assert_eq!(dp.values, want, "period {i}");
    }
    // The 1 min tier serves the same periods from its own buckets, with the same figures.
    s.compact_at(T0 + 4 * 3600);
    let later = s
        .query_at(&query("m", start, T0, 60, &stats), T0 + 4 * 3600)
        .unwrap();
    assert_eq!(later, dps);
}

#[test]
fn out_of_order_data_across_hour_windows_comes_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let start = T0 - 3 * 3600 + 1800;
    let data: Vec<MetricDatum> = (0..7200)
        .rev()
        .step_by(7)
        .map(|i| value("m", start + i, i as f64))
        .collect();
    s.put_at(&data, T0);
    let dps = s
        .query_at(&query("m", start, start + 7200, 1, &[Statistic::Sum]), T0)
        .unwrap();
    let got: Vec<(i64, f64)> = dps.iter().map(|d| (d.timestamp, d.values[0])).collect();
    let mut want: Vec<(i64, f64)> = (0..7200)
        .rev()
        .step_by(7)
        .map(|i| (start + i, i as f64))
        .collect();
    want.reverse();
    assert_eq!(got, want);
    // A range starting and ending inside windows.
    let part = s
        .query_at(
            &query("m", start + 100, start + 3700, 1, &[Statistic::Sum]),
            T0,
        )
        .unwrap();
    assert!(part
        .iter()
        .all(|d| d.timestamp >= start + 100 && d.timestamp < start + 3700));
    assert_eq!(
        part.len(),
        want.iter()
            .filter(|(t, _)| (start + 100..start + 3700).contains(t))
            .count()
    );
}

#[test]
fn samples_without_a_finite_value_make_no_bucket_and_no_datapoint() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let mut empty = value("m", T0 - 3, 0.0);
    empty.sample = Sample::Values {
        values: vec![f64::NAN, 1.0],
        counts: vec![1.0, 0.0],
    };
    let mut bad_set = value("m", T0 - 2, 0.0);
    bad_set.sample = Sample::StatisticSet {
        sample_count: 0.0,
        sum: 0.0,
        minimum: 0.0,
        maximum: 0.0,
    };
    let mut upside_down = value("m", T0 - 2, 0.0);
    upside_down.sample = Sample::StatisticSet {
        sample_count: 3.0,
        sum: 15.0,
        minimum: 9.0,
        maximum: 1.0,
    };
    s.put_at(
        &[
            empty,
            bad_set,
            upside_down,
            value("m", T0 - 1, f64::INFINITY),
        ],
        T0,
    );
    assert_eq!(s.bucket_counts(), [0, 0, 0]);
    assert!(s
        .query_at(&query("m", T0 - 60, T0, 1, &[Statistic::SampleCount]), T0)
        .unwrap()
        .is_empty());
}

#[test]
fn a_loaded_bucket_changed_after_reopening_is_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_seconds();
    {
        let s = open(dir.path());
        s.put_at(&[value("m", now - 1, 4.0)], now);
        s.flush().unwrap();
    }
    {
        let s = open(dir.path());
        s.put_at(&[value("m", now - 1, 6.0)], now);
        s.flush().unwrap();
    }
    let s = open(dir.path());
    let dps = s
        .query_at(
            &query(
                "m",
                now - 1,
                now,
                1,
                &[Statistic::SampleCount, Statistic::Sum],
            ),
            now,
        )
        .unwrap();
    assert_eq!(dps.len(), 1);
    assert_eq!(dps[0].values, vec![2.0, 10.0]);
}
