//! A small, load-independent query benchmark: one series of 24 h at 1 s, queried `runs` times at
//! `period` seconds (arguments; defaults 3 and 1), for counting instructions under
//! `valgrind --tool=callgrind --toggle-collect='*query_at*' query_cost 1 1`.

use berth_metrics::*;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let retention = Retention {
        one_second: 86_400 + 3600,
        ..Retention::default()
    };
    let store = MetricStore::open(dir.path(), retention)?;
    let now = store::now_seconds();
    let start = now - 86_400;
    let id = MetricId::new("Bench", "Latency", vec![Dimension::new("Service", "svc3")]);
    let mut batch = Vec::with_capacity(1000);
    let t = Instant::now();
    for s in 0..86_400 {
        batch.push(MetricDatum {
            id: id.clone(),
            unit: Some("Milliseconds".into()),
            timestamp: start + s,
            sample: Sample::Value(((s * 7 + 39) % 1000) as f64 + 0.5),
        });
        if batch.len() == 1000 {
            store.put_at(&batch, now);
            batch.clear();
        }
    }
    store.put_at(&batch, now);
    println!("ingest: {:.1} ms", t.elapsed().as_secs_f64() * 1000.0);
    let arg = |i: usize, default: i64| -> i64 {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (runs, period) = (arg(1, 3), arg(2, 1));
    let q = MetricQuery {
        id,
        start,
        end: now,
        period,
        statistics: vec![
            Statistic::Average,
            Statistic::Maximum,
            Statistic::Percentile(99.0),
        ],
        unit: None,
    };
    let (mut total, mut n) = (0.0, 0);
    let t = Instant::now();
    for _ in 0..runs {
        let dps = store.query_at(&q, now)?;
        n = dps.len();
        total += dps.iter().map(|d| d.values[2]).sum::<f64>();
    }
    println!(
        "{runs} queries at {period} s: {n} datapoints each, {:.2} ms each (checksum {total})",
        t.elapsed().as_secs_f64() * 1000.0 / runs as f64
    );
    Ok(())
}
