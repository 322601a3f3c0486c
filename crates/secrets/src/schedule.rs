//! Rotation schedules: `RotationRules` with `AutomaticallyAfterDays`, or a `ScheduleExpression`
//! `rate(N days|hours)` / `cron(minutes hours day-of-month month day-of-week [year])` (UTC).

use crate::error::SecretsError;
use chrono::{DateTime, Datelike, Timelike, Utc};

/// A validated rotation schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Every this many seconds after the last rotation.
    Every(f64),
    /// The fields of a cron expression.
    Cron(Vec<String>),
}

/// Reads `RotationRules`; errors list every problem found.
pub fn parse_rules(rules: &serde_json::Value) -> Result<Schedule, SecretsError> {
    let days = rules.get("AutomaticallyAfterDays").and_then(|v| v.as_i64());
    let expr = rules.get("ScheduleExpression").and_then(|v| v.as_str());
    match (days, expr) {
        (Some(d), None) if (1..=1000).contains(&d) => Ok(Schedule::Every(d as f64 * 86400.0)),
        (Some(d), None) => Err(SecretsError::InvalidParameter(format!(
            "RotationRules.AutomaticallyAfterDays: expected 1 to 1000, found {d}"
        ))),
        (None, Some(e)) => parse_expression(e),
        (Some(_), Some(_)) => Err(SecretsError::InvalidParameter(
            "RotationRules: expected AutomaticallyAfterDays or ScheduleExpression, found both"
                .into(),
        )),
        (None, None) => Err(SecretsError::InvalidParameter(
            "RotationRules: expected AutomaticallyAfterDays or ScheduleExpression".into(),
        )),
    }
}

fn parse_expression(e: &str) -> Result<Schedule, SecretsError> {
    let bad = |why: &str| {
        SecretsError::InvalidParameter(format!(
            "RotationRules.ScheduleExpression: {why}, found {e:?}"
        ))
    };
    if let Some(inner) = e.strip_prefix("rate(").and_then(|s| s.strip_suffix(')')) {
        let mut it = inner.split_whitespace();
        let n: u64 = it
            .next()
            .and_then(|n| n.parse().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| bad("expected rate(N days|hours)"))?;
        let unit = match it.next() {
            Some("day" | "days") => 86400.0,
            Some("hour" | "hours") => 3600.0,
            _ => return Err(bad("expected rate(N days|hours)")),
        };
        return Ok(Schedule::Every(n as f64 * unit));
    }
    if let Some(inner) = e.strip_prefix("cron(").and_then(|s| s.strip_suffix(')')) {
        let fields: Vec<String> = inner.split_whitespace().map(str::to_uppercase).collect();
        if fields.len() != 5 && fields.len() != 6 {
            return Err(bad(
                "expected cron(minutes hours day-of-month month day-of-week [year])",
            ));
        }
        let limits = [(0, 59), (0, 23), (1, 31), (1, 12), (1, 7), (1970, 2199)];
        for (f, (lo, hi)) in fields.iter().zip(limits) {
            if !valid_field(f, lo, hi) {
                return Err(bad(&format!(
                    "cron field {f:?} is not a number, *, ?, list, range or step within {lo}-{hi}"
                )));
            }
        }
        return Ok(Schedule::Cron(fields));
    }
    Err(bad("expected rate(...) or cron(...)"))
}

fn name_value(s: &str) -> Option<u32> {
    const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    const MONTHS: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    s.parse().ok().or_else(|| {
        DAYS.iter()
            .position(|d| *d == s)
            .or_else(|| MONTHS.iter().position(|m| *m == s))
            .map(|i| i as u32 + 1)
    })
}

fn valid_field(f: &str, lo: u32, hi: u32) -> bool {
    f.split(',').all(|part| {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0).map(Some)),
            None => (part, Some(None)),
        };
        if step.is_none() {
            return false;
        }
        if range == "*" || range == "?" {
            return true;
        }
        let (a, b) = range.split_once('-').unwrap_or((range, range));
        matches!((name_value(a), name_value(b)), (Some(a), Some(b)) if lo <= a && a <= b && b <= hi)
    })
}

fn field_matches(f: &str, v: u32, lo: u32) -> bool {
    f.split(',').any(|part| {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().unwrap_or(1).max(1)),
            None => (part, 1),
        };
        let (a, b) = if range == "*" || range == "?" {
            (lo, u32::MAX)
        } else {
            let (a, b) = range.split_once('-').unwrap_or((range, range));
            let a = name_value(a).unwrap_or(u32::MAX);
            // `5/10` means from 5 every 10.
            let b = if part.contains('/') && !range.contains('-') {
                u32::MAX
            } else {
                name_value(b).unwrap_or(0)
            };
            (a, b)
        };
        v >= a && v <= b && (v - a) % step == 0
    })
}

impl Schedule {
    /// When the next rotation is due after one at `last` (seconds since the epoch), if ever
    /// within a year.
    pub fn next_after(&self, last: f64) -> Option<f64> {
        match self {
            Schedule::Every(s) => Some(last + s),
            Schedule::Cron(f) => {
                let start = DateTime::<Utc>::from_timestamp(last as i64 + 60, 0)?;
                let mut t = start.with_second(0)?;
                let end = start + chrono::Duration::days(366);
                while t < end {
                    let day_ok = field_matches(&f[2], t.day(), 1)
                        && field_matches(&f[3], t.month(), 1)
                        && field_matches(&f[4], t.weekday().num_days_from_sunday() + 1, 1)
                        && f.get(5)
                            .is_none_or(|y| field_matches(y, t.year() as u32, 1970));
                    if !day_ok {
                        t = (t + chrono::Duration::days(1))
                            .with_hour(0)?
                            .with_minute(0)?;
                        continue;
                    }
                    if !field_matches(&f[1], t.hour(), 0) {
                        t = (t + chrono::Duration::hours(1)).with_minute(0)?;
                        continue;
                    }
                    if field_matches(&f[0], t.minute(), 0) {
                        return Some(t.timestamp() as f64);
                    }
                    t += chrono::Duration::minutes(1);
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn days_and_rates_add_to_the_last_rotation() {
        let s = parse_rules(&json!({"AutomaticallyAfterDays": 2})).unwrap();
        assert_eq!(s.next_after(100.0), Some(100.0 + 2.0 * 86400.0));
        let s = parse_rules(&json!({"ScheduleExpression": "rate(4 hours)"})).unwrap();
        assert_eq!(s.next_after(0.0), Some(4.0 * 3600.0));
    }

    #[test]
    fn cron_finds_the_next_matching_minute() {
        // 2026-01-01T00:00:00Z is a Thursday.
        let t0 = 1767225600.0;
        let s = parse_rules(&json!({"ScheduleExpression": "cron(0 16 1,15 * ? *)"})).unwrap();
        assert_eq!(s.next_after(t0), Some(t0 + 16.0 * 3600.0));
        let s = parse_rules(&json!({"ScheduleExpression": "cron(30 2 ? * MON *)"})).unwrap();
        // Next Monday is 2026-01-05.
        assert_eq!(
            s.next_after(t0),
            Some(t0 + 4.0 * 86400.0 + 2.0 * 3600.0 + 1800.0)
        );
        let s = parse_rules(&json!({"ScheduleExpression": "cron(0/15 * * * ? *)"})).unwrap();
        assert_eq!(s.next_after(t0), Some(t0 + 900.0));
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in [
            json!({}),
            json!({"AutomaticallyAfterDays": 0}),
            json!({"AutomaticallyAfterDays": 1, "ScheduleExpression": "rate(1 days)"}),
            json!({"ScheduleExpression": "rate(x days)"}),
            json!({"ScheduleExpression": "rate(1 weeks)"}),
            json!({"ScheduleExpression": "cron(61 * * * ? *)"}),
            json!({"ScheduleExpression": "cron(* *)"}),
            json!({"ScheduleExpression": "every day"}),
        ] {
            assert_eq!(
                parse_rules(&bad).unwrap_err().code(),
                "InvalidParameterException",
                "{bad}"
            );
        }
    }
}
