//! Schedule parsing and next-fire tables.

use super::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn next(schedule: &str, after: &str, tz: &str) -> Option<String> {
    let s = Schedule::parse(schedule).unwrap();
    let tz = parse_timezone(Some(tz)).unwrap();
    s.next_after(utc(after), utc("2025-01-01T00:00:00Z"), tz)
        .map(|t| t.to_rfc3339())
}

#[test]
fn next_fire_table() {
    // (schedule, after, time zone, expected next fire in UTC)
    let cases: &[(&str, &str, &str, Option<&str>)] = &[
        (
            "cron(0 18 ? * MON-FRI *)",
            "2025-06-06T17:00:00Z",
            "UTC",
            Some("2025-06-06T18:00:00+00:00"),
        ), // Friday
        (
            "cron(0 18 ? * MON-FRI *)",
            "2025-06-06T18:00:00Z",
            "UTC",
            Some("2025-06-09T18:00:00+00:00"),
        ), // strictly after → Monday
        (
            "cron(0 20 * * ? *)",
            "2025-06-06T12:00:00Z",
            "Europe/Paris",
            Some("2025-06-06T18:00:00+00:00"),
        ), // CEST = UTC+2
        (
            "cron(0 20 * * ? *)",
            "2025-01-06T12:00:00Z",
            "Europe/Paris",
            Some("2025-01-06T19:00:00+00:00"),
        ), // CET = UTC+1
        (
            "cron(*/15 * * * ? *)",
            "2025-06-06T10:07:00Z",
            "UTC",
            Some("2025-06-06T10:15:00+00:00"),
        ),
        (
            "cron(0 9 L * ? *)",
            "2025-02-03T00:00:00Z",
            "UTC",
            Some("2025-02-28T09:00:00+00:00"),
        ),
        (
            "cron(0 9 ? * 6L *)",
            "2025-06-01T00:00:00Z",
            "UTC",
            Some("2025-06-27T09:00:00+00:00"),
        ), // last Friday
        (
            "cron(0 9 ? * 2#1 *)",
            "2025-06-01T00:00:00Z",
            "UTC",
            Some("2025-06-02T09:00:00+00:00"),
        ), // first Monday
        (
            "cron(0 9 15W * ? *)",
            "2025-06-01T00:00:00Z",
            "UTC",
            Some("2025-06-16T09:00:00+00:00"),
        ), // the 15th is a Sunday
        (
            "cron(0 9 1W * ? *)",
            "2025-11-01T00:00:00Z",
            "UTC",
            Some("2025-11-03T09:00:00+00:00"),
        ), // Saturday the 1st
        (
            "cron(0 9 LW * ? *)",
            "2025-08-01T00:00:00Z",
            "UTC",
            Some("2025-08-29T09:00:00+00:00"),
        ), // the 31st is a Sunday
        (
            "cron(0 0 1 JAN ? 2024)",
            "2025-06-01T00:00:00Z",
            "UTC",
            None,
        ), // only in the past
        (
            "cron(30 2 * * ? *)",
            "2025-03-30T00:00:00Z",
            "Europe/Paris",
            Some("2025-03-31T00:30:00+00:00"),
        ), // 02:30 skipped by DST
        (
            "at(2025-06-06T20:00:00)",
            "2025-06-06T00:00:00Z",
            "America/New_York",
            Some("2025-06-07T00:00:00+00:00"),
        ),
        (
            "at(2025-06-06T20:00:00)",
            "2025-06-08T00:00:00Z",
            "UTC",
            None,
        ),
        (
            "rate(5 minutes)",
            "2025-01-01T00:07:00Z",
            "UTC",
            Some("2025-01-01T00:10:00+00:00"),
        ),
        (
            "rate(1 day)",
            "2024-12-31T00:00:00Z",
            "UTC",
            Some("2025-01-01T00:00:00+00:00"),
        ), // anchor in the future
    ];
    for (schedule, after, tz, want) in cases {
        assert_eq!(
            next(schedule, after, tz).as_deref(),
            *want,
            "{schedule} after {after} in {tz}"
        );
    }
}

#[test]
fn bad_schedules_say_what_was_expected() {
    let cases = [
        ("cron(0 18 * * MON *)", "exactly one"),
        ("cron(0 18 ? * ? *)", "exactly one"),
        ("cron(0 18 ? *)", "6 fields"),
        ("cron(61 18 ? * * *)", "minutes field"),
        ("cron(0 25 ? * * *)", "hours field"),
        ("cron(0 1 ? FOO * *)", "month field"),
        ("cron(0 1 ? * 8 *)", "day-of-week field"),
        ("cron(0 1 ? * 2#9 *)", "d#k"),
        ("rate(0 minutes)", "rate("),
        ("rate(5 weeks)", "rate("),
        ("at(2025-13-01T00:00:00)", "at(yyyy"),
        ("every day", "at(...), rate(...) or cron(...)"),
    ];
    for (text, needle) in cases {
        let e = Schedule::parse(text).unwrap_err();
        assert!(
            e.contains(needle) && e.starts_with("Schedule: "),
            "{text}: {e}"
        );
    }
    assert!(parse_timezone(Some("Mars/Olympus"))
        .unwrap_err()
        .contains("IANA"));
    assert_eq!(parse_timezone(None).unwrap(), Tz::UTC);
}
