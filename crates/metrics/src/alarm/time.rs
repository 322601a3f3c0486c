//! Calendar formatting for alarm reasons: `dd/MM/yy HH:mm:ss` and ISO 8601 with `+0000`.

/// (year, month, day, hour, minute, second, millisecond) in UTC for seconds since the epoch.
pub fn civil(epoch_seconds: f64) -> (i64, i64, i64, i64, i64, i64, i64) {
    let millis_total = (epoch_seconds * 1000.0).round() as i64;
    let (secs, millis) = (millis_total.div_euclid(1000), millis_total.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        millis,
    )
}

/// `22/11/26 10:01:00`, as CloudWatch writes datapoint times in state reasons.
pub fn reason_time(epoch_seconds: i64) -> String {
    let (y, mo, d, h, mi, s, _) = civil(epoch_seconds as f64);
    format!(
        "{d:02}/{mo:02}/{:02} {h:02}:{mi:02}:{s:02}",
        y.rem_euclid(100)
    )
}

/// `2026-11-22T10:01:00.000+0000`, as CloudWatch writes times in StateReasonData.
pub fn iso_offset(epoch_seconds: f64) -> String {
    let (y, mo, d, h, mi, s, ms) = civil(epoch_seconds);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}+0000")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        // 2026-11-22T10:01:00Z
        assert_eq!(reason_time(1_795_341_660), "22/11/26 10:01:00");
        assert_eq!(iso_offset(1_795_341_660.25), "2026-11-22T10:01:00.250+0000");
        assert_eq!(reason_time(0), "01/01/70 00:00:00");
    }
}
