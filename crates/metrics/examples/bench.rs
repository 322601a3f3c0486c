//! Benchmark of the metrics store: ingest rate, and the p99 time to query one metric's
//! 24 hours at 1 s resolution (86,400 datapoints). Prints figures; asserts nothing.

use berth_metrics::*;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    // Keep 1 s data for a day so a 24 h query at 1 s is possible.
    let retention = Retention {
        one_second: 86_400 + 3600,
        ..Retention::default()
    };
    let store = MetricStore::open(dir.path(), retention)?;
    let now = store::now_seconds();
    let start = now - 86_400;
    let n_series = 10;
    let ids: Vec<MetricId> = (0..n_series)
        .map(|i| {
            MetricId::new(
                "Bench",
                "Latency",
                vec![Dimension::new("Service", format!("svc{i}"))],
            )
        })
        .collect();

    // Ingest: one value per series per second for 24 h, in batches of 1,000 datums.
    let t = Instant::now();
    let mut n = 0u64;
    let mut batch = Vec::with_capacity(1000);
    for s in 0..86_400 {
        for (i, id) in ids.iter().enumerate() {
            batch.push(MetricDatum {
                id: id.clone(),
                unit: Some("Milliseconds".into()),
                timestamp: start + s,
                sample: Sample::Value(((s * 7 + i as i64 * 13) % 1000) as f64 + 0.5),
            });
            if batch.len() == 1000 {
                store.put_at(&batch, now);
                n += batch.len() as u64;
                batch.clear();
            }
        }
    }
    store.put_at(&batch, now);
    n += batch.len() as u64;
    let secs = t.elapsed().as_secs_f64();
    println!("ingest: {n} datapoints in {secs:.2} s = {:.0} datapoints/s ({n_series} series, 1 s apart, batches of 1000)", n as f64 / secs);
    let t = Instant::now();
    store.flush()?;
    println!(
        "flush of all dirty buckets to redb: {:.2} s",
        t.elapsed().as_secs_f64()
    );

    // Query: 24 h at 1 s, Average + Maximum + p99, repeated.
    let q = MetricQuery {
        id: ids[3].clone(),
        start,
        end: now,
        period: 1,
        statistics: vec![
            Statistic::Average,
            Statistic::Maximum,
            Statistic::Percentile(99.0),
        ],
        unit: None,
    };
    let runs = 60;
    let mut times = Vec::with_capacity(runs);
    let mut points = 0;
    for _ in 0..runs {
        let t = Instant::now();
        points = store.query_at(&q, now)?.len();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let p = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!("query 24 h at 1 s ({points} datapoints, 3 statistics): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target p99 < 20 ms)", p(0.5), p(0.99), p(1.0));

    let avg = MetricQuery {
        statistics: vec![Statistic::Average],
        ..q.clone()
    };
    let t = Instant::now();
    for _ in 0..10 {
        store.query_at(&avg, now)?;
    }
    println!(
        "query 24 h at 1 s, Average only: {:.2} ms each",
        t.elapsed().as_secs_f64() * 100.0
    );
    let q60 = MetricQuery {
        period: 60,
        ..q.clone()
    };
    let t = Instant::now();
    let n60 = store.query_at(&q60, now)?.len();
    println!(
        "query 24 h at 60 s with p99 ({n60} datapoints, merging histograms): {:.2} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}
