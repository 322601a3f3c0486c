//! Log store benchmark: ingests generated lines in batches (one writer per stream), writes the
//! same messages to a text file for `grep`, then runs a Logs Insights query over them and
//! prints `key=value` figures (bench/logs.sh reads them).

use berth_control::logs::query::Query;
use berth_control::logs::scan::run_query;
use berth_control::logs::LogStore;
use berth_model::protocol::agent::LogEvent;
use std::io::Write;
use std::time::Instant;

fn message(i: usize) -> String {
    if i.is_multiple_of(10) {
        format!(
            "ERROR [req-{i}] payment failed: upstream timeout after 3000ms user=u{}",
            i % 50
        )
    } else if i.is_multiple_of(3) {
        format!(
            "{{\"level\":\"INFO\",\"ms\":{},\"path\":\"/api/items/{}\",\"user\":\"u{}\"}}",
            i % 997,
            i % 100,
            i % 50
        )
    } else {
        format!(
            "INFO [req-{i}] GET /api/items/{} 200 {}B in {}ms",
            i % 100,
            i % 5000,
            i % 97
        )
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(
        args.next()
            .ok_or("usage: logs_bench DIR [LINES] [STREAMS] [BATCH]")?,
    );
    let lines: usize = args.next().map_or(Ok(1_000_000), |s| s.parse())?;
    let streams: usize = args.next().map_or(Ok(4), |s| s.parse())?;
    let batch: usize = args.next().map_or(Ok(10_000), |s| s.parse())?;
    std::fs::create_dir_all(&dir)?;
    let store = LogStore::open(dir.join("logs"))?;
    let group = "/berth/bench/app";
    // Two hours of lines ending now.
    let end = berth_control::logs::now_ms();
    let start = end - 2 * 3_600_000;
    let per_stream = lines / streams;
    let step = (2 * 3_600_000 / per_stream.max(1)).max(1) as i64;
    let batches: Vec<Vec<Vec<LogEvent>>> = (0..streams)
        .map(|s| {
            (0..per_stream)
                .map(|j| LogEvent {
                    timestamp: start + j as i64 * step,
                    message: message(j * streams + s),
                })
                .collect::<Vec<_>>()
                .chunks(batch)
                .map(<[LogEvent]>::to_vec)
                .collect()
        })
        .collect();
    let t0 = Instant::now();
    std::thread::scope(|sc| -> Result<(), std::io::Error> {
        let handles: Vec<_> = batches
            .iter()
            .enumerate()
            .map(|(s, bs)| {
                let store = &store;
                sc.spawn(move || -> std::io::Result<()> {
                    for b in bs {
                        store.append(group, &format!("ecs/app/task-{s}"), b)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| std::io::Error::other("writer panicked"))??;
        }
        Ok(())
    })?;
    let ingest = t0.elapsed().as_secs_f64();
    let total = per_stream * streams;
    println!("lines={total}");
    println!("ingest_seconds={ingest:.3}");
    println!("ingest_lines_per_s={:.0}", total as f64 / ingest);
    let mut text = std::io::BufWriter::new(std::fs::File::create(dir.join("lines.txt"))?);
    for bs in &batches {
        for b in bs {
            for e in b {
                writeln!(text, "{}", e.message)?;
            }
        }
    }
    text.flush()?;
    drop(batches);
    let query_text = "filter @message like /ERROR/ | stats count(*) by bin(1m)";
    let query = Query::parse(query_text)?;
    let mut best = f64::MAX;
    let mut out = None;
    for _ in 0..3 {
        let t = Instant::now();
        let o = run_query(
            &store,
            &[group.to_string()],
            start,
            end + 1,
            &query,
            10_000,
            &Default::default(),
        )?;
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(o);
    }
    let out = out.ok_or("no query ran")?;
    let matched: u64 = out
        .rows
        .iter()
        .filter_map(|r| {
            r.iter()
                .find(|(f, _)| f == "count(*)")
                .and_then(|(_, v)| v.parse::<u64>().ok())
        })
        .sum();
    println!("query={query_text}");
    println!("query_seconds={best:.4}");
    println!("query_rows={}", out.rows.len());
    println!("query_matched={matched}");
    println!("query_records_scanned={}", out.stats.records_scanned);
    println!("query_bytes_scanned={}", out.stats.bytes_scanned);
    Ok(())
}
