//! Times of crashes and journal entries, printed in UTC as coredumpctl
//! prints them.

/// Formats microseconds since the epoch as coredumpctl does, in UTC:
/// `Fri 2026-12-04 21:04:25 UTC`.
pub fn format_time(usec: u64) -> String {
    let (year, month, day, hour, minute, second, weekday) = civil(usec);
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let weekday = DAYS.get(weekday).copied().unwrap_or("???");
    format!("{weekday} {year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC")
}

/// Formats microseconds since the epoch as RFC 3339 in UTC.
pub fn format_rfc3339(usec: u64) -> String {
    let (year, month, day, hour, minute, second, _) = civil(usec);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// Splits a time into UTC calendar fields and the weekday counted from
/// Thursday (1 January 1970 was a Thursday), with the proleptic Gregorian
/// calendar algorithm of Howard Hinnant's `civil_from_days`.
fn civil(usec: u64) -> (i64, u32, u32, u64, u64, u64, usize) {
    let seconds = usec / 1_000_000;
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    let weekday = (days % 7) as usize;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        weekday,
    )
}
