//! Scheduled action schedules: `at(yyyy-mm-ddThh:mm:ss)`, `rate(N minutes|hours|days)` and AWS's
//! six-field `cron(minutes hours day-of-month month day-of-week year)` with `?`, `L`, `W` and `#`,
//! evaluated in an IANA time zone. Parsing and next-fire computation are pure.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::collections::BTreeSet;

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Once, at this local time.
    At(NaiveDateTime),
    /// Every this many seconds, counted from the action's start (StartTime or creation).
    Rate(i64),
    /// Whenever the local time matches.
    Cron(Box<Cron>),
}

/// A cron expression's fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Cron {
    minutes: BTreeSet<u32>,
    hours: BTreeSet<u32>,
    day_of_month: DayOfMonth,
    months: BTreeSet<u32>,
    day_of_week: DayOfWeek,
    years: BTreeSet<i32>,
}

#[derive(Debug, Clone, PartialEq)]
enum DayOfMonth {
    Any,
    Days(BTreeSet<u32>),
    /// `L`: the last day of the month.
    Last,
    /// `nW`: the weekday nearest day n, in the same month.
    NearestWeekday(u32),
    /// `LW`: the last weekday of the month.
    LastWeekday,
}

#[derive(Debug, Clone, PartialEq)]
enum DayOfWeek {
    Any,
    /// 1 = Sunday ... 7 = Saturday.
    Days(BTreeSet<u32>),
    /// `nL`: the last such day of the month.
    Last(u32),
    /// `n#k`: the k-th such day of the month.
    Nth(u32, u32),
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Schedule {
    /// Parses a Schedule value; the error says what was expected and what was found.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        if let Some(inner) = text.strip_prefix("at(").and_then(|s| s.strip_suffix(')')) {
            return NaiveDateTime::parse_from_str(inner, "%Y-%m-%dT%H:%M:%S")
                .map(Schedule::At)
                .map_err(|_| {
                    format!("Schedule: at(yyyy-mm-ddThh:mm:ss) was expected, found '{text}'")
                });
        }
        if let Some(inner) = text.strip_prefix("rate(").and_then(|s| s.strip_suffix(')')) {
            let bad = || {
                format!(
                    "Schedule: rate(N minutes|hours|days) with N ≥ 1 was expected, found '{text}'"
                )
            };
            let mut parts = inner.split_whitespace();
            let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad());
            };
            let n: i64 = n.parse().map_err(|_| bad())?;
            let unit_seconds = match unit {
                "minute" | "minutes" => 60,
                "hour" | "hours" => 3600,
                "day" | "days" => 86_400,
                _ => return Err(bad()),
            };
            if n < 1 {
                return Err(bad());
            }
            return Ok(Schedule::Rate(n * unit_seconds));
        }
        if let Some(inner) = text.strip_prefix("cron(").and_then(|s| s.strip_suffix(')')) {
            return Cron::parse(inner).map(|c| Schedule::Cron(Box::new(c)));
        }
        Err(format!(
            "Schedule: at(...), rate(...) or cron(...) was expected, found '{text}'"
        ))
    }

    /// The first time this schedule fires strictly after `after`, in time zone `tz`; `anchor` is
    /// where a rate counts from. None: never again.
    pub fn next_after(
        &self,
        after: DateTime<Utc>,
        anchor: DateTime<Utc>,
        tz: Tz,
    ) -> Option<DateTime<Utc>> {
        match self {
            Schedule::At(local) => {
                let t = tz
                    .from_local_datetime(local)
                    .earliest()?
                    .with_timezone(&Utc);
                (t > after).then_some(t)
            }
            Schedule::Rate(seconds) => {
                if anchor > after {
                    return Some(anchor);
                }
                let elapsed = (after - anchor).num_seconds();
                let k = elapsed / seconds + 1;
                Some(anchor + chrono::Duration::seconds(k * seconds))
            }
            Schedule::Cron(c) => c.next_after(after, tz),
        }
    }
}

fn field_error(name: &str, what: &str, found: &str) -> String {
    format!("Schedule: cron {name} field: {what} was expected, found '{found}'")
}

/// Parses a comma list of values, ranges and steps (`*`, `5`, `1-5`, `*/15`, `10-50/10`, names).
fn parse_set(
    field: &str,
    name: &str,
    lo: u32,
    hi: u32,
    names: &[&str],
    base: u32,
) -> Result<BTreeSet<u32>, String> {
    let what = format!("values {lo}-{hi}, ranges, lists or steps");
    let value = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(i as u32 + base);
        }
        let v: u32 = s.parse().map_err(|_| field_error(name, &what, field))?;
        if v < lo || v > hi {
            return Err(field_error(name, &what, field));
        }
        Ok(v)
    };
    let mut out = BTreeSet::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| field_error(name, &what, field))?,
            ),
            None => (item, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let a = value(range)?;
            (a, if item.contains('/') { hi } else { a })
        };
        if a > b {
            return Err(field_error(name, &what, field));
        }
        out.extend((a..=b).step_by(step as usize));
    }
    Ok(out)
}

impl Cron {
    /// Parses the six fields inside `cron(...)`.
    pub fn parse(text: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(format!(
                "Schedule: cron(minutes hours day-of-month month day-of-week year) with 6 fields was expected, found {} in '{text}'",
                fields.len()
            ));
        }
        let minutes = parse_set(fields[0], "minutes", 0, 59, &[], 0)?;
        let hours = parse_set(fields[1], "hours", 0, 23, &[], 0)?;
        let months = parse_set(fields[3], "month", 1, 12, &MONTHS, 1)?;
        let years = parse_set(fields[5], "year", 1970, 2199, &[], 0)?
            .into_iter()
            .map(|y| y as i32)
            .collect();
        let dom = fields[2];
        let day_of_month = if dom == "?" {
            DayOfMonth::Any
        } else if dom == "L" {
            DayOfMonth::Last
        } else if dom == "LW" {
            DayOfMonth::LastWeekday
        } else if let Some(n) = dom.strip_suffix('W') {
            let n: u32 = n
                .parse()
                .ok()
                .filter(|n| (1..=31).contains(n))
                .ok_or_else(|| field_error("day-of-month", "nW with n 1-31", dom))?;
            DayOfMonth::NearestWeekday(n)
        } else {
            DayOfMonth::Days(parse_set(dom, "day-of-month", 1, 31, &[], 0)?)
        };
        let dow = fields[4];
        let day_of_week = if dow == "?" {
            DayOfWeek::Any
        } else if let Some(n) = dow.strip_suffix('L') {
            DayOfWeek::Last(
                *parse_set(n, "day-of-week", 1, 7, &DAYS, 1)?
                    .iter()
                    .next()
                    .ok_or_else(|| field_error("day-of-week", "nL", dow))?,
            )
        } else if let Some((d, k)) = dow.split_once('#') {
            let d = *parse_set(d, "day-of-week", 1, 7, &DAYS, 1)?
                .iter()
                .next()
                .ok_or_else(|| field_error("day-of-week", "d#k", dow))?;
            let k: u32 = k
                .parse()
                .ok()
                .filter(|k| (1..=5).contains(k))
                .ok_or_else(|| field_error("day-of-week", "d#k with k 1-5", dow))?;
            DayOfWeek::Nth(d, k)
        } else {
            DayOfWeek::Days(parse_set(dow, "day-of-week", 1, 7, &DAYS, 1)?)
        };
        // AWS: one of day-of-month and day-of-week must be `?`.
        if (dom == "?") == (dow == "?") {
            return Err(format!(
                "Schedule: cron needs '?' in exactly one of day-of-month and day-of-week, found '{dom}' and '{dow}'"
            ));
        }
        Ok(Cron {
            minutes,
            hours,
            day_of_month,
            months,
            day_of_week,
            years,
        })
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        let last = last_day(d.year(), d.month());
        let dom_ok = match &self.day_of_month {
            DayOfMonth::Any => true,
            DayOfMonth::Days(s) => s.contains(&d.day()),
            DayOfMonth::Last => d.day() == last,
            DayOfMonth::NearestWeekday(n) => {
                nearest_weekday(d.year(), d.month(), (*n).min(last)) == d.day()
            }
            DayOfMonth::LastWeekday => nearest_weekday(d.year(), d.month(), last) == d.day(),
        };
        let dow = d.weekday().number_from_sunday();
        let dow_ok = match &self.day_of_week {
            DayOfWeek::Any => true,
            DayOfWeek::Days(s) => s.contains(&dow),
            DayOfWeek::Last(w) => *w == dow && d.day() + 7 > last,
            DayOfWeek::Nth(w, k) => *w == dow && (d.day() - 1) / 7 + 1 == *k,
        };
        dom_ok && dow_ok
    }

    /// The first matching local time strictly after `after`, converted from `tz` (a local time
    /// skipped by a daylight-saving change does not fire; a repeated one fires at its first instance).
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let local_after = after.with_timezone(&tz).naive_local();
        let start = local_after.date();
        for &year in self.years.range(start.year()..) {
            for &month in &self.months {
                if (year, month) < (start.year(), start.month()) {
                    continue;
                }
                for day in 1..=last_day(year, month) {
                    let Some(date) = NaiveDate::from_ymd_opt(year, month, day) else {
                        continue;
                    };
                    if date < start || !self.day_matches(date) {
                        continue;
                    }
                    for &h in &self.hours {
                        for &m in &self.minutes {
                            let Some(local) = date.and_hms_opt(h, m, 0) else {
                                continue;
                            };
                            if local + chrono::Duration::hours(3) < local_after {
                                continue;
                            }
                            let Some(t) = tz.from_local_datetime(&local).earliest() else {
                                continue;
                            };
                            let t = t.with_timezone(&Utc);
                            if t > after {
                                return Some(t);
                            }
                        }
                    }
                }
            }
        }
        None
    }
}

fn last_day(year: i32, month: u32) -> u32 {
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(ny, nm, 1)
        .and_then(|d| d.pred_opt())
        .map_or(28, |d| d.day())
}

/// The weekday (Mon-Fri) nearest day `n` of the month, without leaving the month.
fn nearest_weekday(year: i32, month: u32, n: u32) -> u32 {
    let Some(d) = NaiveDate::from_ymd_opt(year, month, n) else {
        return n;
    };
    let last = last_day(year, month);
    match d.weekday().number_from_sunday() {
        7 if n == 1 => 3,        // Saturday the 1st: Monday the 3rd
        7 => n - 1,              // Saturday: Friday
        1 if n == last => n - 2, // Sunday the last: Friday
        1 => n + 1,              // Sunday: Monday
        _ => n,
    }
}

/// Parses an IANA time zone name (default UTC).
pub fn parse_timezone(name: Option<&str>) -> Result<Tz, String> {
    match name {
        None => Ok(Tz::UTC),
        Some(n) => n.parse::<Tz>().map_err(|_| {
            format!(
                "Timezone: an IANA time zone name such as Europe/Paris was expected, found '{n}'"
            )
        }),
    }
}

#[cfg(test)]
mod tests;
