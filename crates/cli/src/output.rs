//! Human output: aligned tables and short durations.

/// Prints rows under a header with columns aligned.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{:<w$}  ", c, w = widths[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// "3s", "4m", "2h" ago.
pub fn ago(timestamp: Option<f64>) -> String {
    let Some(t) = timestamp else {
        return "-".into();
    };
    let d = (berth_model::now() - t).max(0.0);
    if d < 120.0 {
        format!("{}s", d as u64)
    } else if d < 7200.0 {
        format!("{}m", (d / 60.0) as u64)
    } else {
        format!("{}h", (d / 3600.0) as u64)
    }
}

/// Pretty JSON to stdout.
pub fn json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}
