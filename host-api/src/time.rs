//! Times as Warden writes them: RFC 3339 UTC with nanoseconds
//! (`2026-11-25T19:47:18.123456789Z`), the one spelling of the audit log's `time`, a
//! grant's `expires` and a policy's `input.time`, so that they compare by eye.
//!
//! [`format`](fn@format) and [`parse`] are the strict wire form of grants: only
//! `YYYY-MM-DDTHH:MM:SS.fffffffffZ` from 1970 to 9999 is written, and only that form (with
//! 0 to 9 fraction digits) is read back; a token is produced by us, so anything looser is
//! more likely a forgery or a mistake than another writer. [`rfc3339`] writes any instant
//! (the audit log's clock), and [`Civil`] is the calendar behind both.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The last instant the wire form can write: 9999-12-31T23:59:59.999999999Z.
pub fn latest() -> SystemTime {
    UNIX_EPOCH + Duration::new(253_402_300_799, 999_999_999)
}

/// `t` as RFC 3339 UTC with nanoseconds; `None` before 1970 or after [`latest`].
pub fn format(t: SystemTime) -> Option<String> {
    if t < UNIX_EPOCH || t > latest() {
        return None;
    }
    Some(rfc3339(t))
}

/// `t` as RFC 3339 UTC with nanoseconds, whatever the instant (years before 1 or after
/// 9999 are written with more or fewer digits, and a sign).
pub fn rfc3339(t: SystemTime) -> String {
    Civil::of(t).rfc3339()
}

/// The names of the days of the week, Monday first, as OPA's `time.weekday` spells them.
pub const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// A UTC calendar date and time of day (proleptic Gregorian).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use warden_host_api::time::Civil;
///
/// let t = Civil::of(UNIX_EPOCH + Duration::new(951_782_400 + 23 * 3600, 5));
/// assert_eq!((t.year, t.month, t.day, t.hour, t.weekday_name()), (2000, 2, 29, 23, "Tuesday"));
/// assert_eq!(t.rfc3339(), "2000-02-29T23:00:00.000000005Z");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// The year.
    pub year: i64,
    /// 1 to 12.
    pub month: u8,
    /// 1 to 31.
    pub day: u8,
    /// 0 to 23.
    pub hour: u8,
    /// 0 to 59.
    pub minute: u8,
    /// 0 to 59.
    pub second: u8,
    /// Nanoseconds into the second.
    pub nanos: u32,
    /// The day of the week, 0 for Monday: an index into [`WEEKDAYS`].
    pub weekday: usize,
}

impl Civil {
    /// The UTC date and time of `time`, before 1970 too.
    pub fn of(time: SystemTime) -> Civil {
        let (secs, nanos) = match time.duration_since(UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
            Err(e) => {
                let d = e.duration();
                let whole = d.as_secs() as i64 + i64::from(d.subsec_nanos() > 0);
                let nanos = (Duration::from_secs(whole as u64) - d).subsec_nanos();
                (-whole, nanos)
            }
        };
        let days = secs.div_euclid(86_400);
        let of_day = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month: month as u8,
            day: day as u8,
            hour: (of_day / 3600) as u8,
            minute: (of_day % 3600 / 60) as u8,
            second: (of_day % 60) as u8,
            nanos,
            // 1970-01-01 was a Thursday.
            weekday: (days + 3).rem_euclid(7) as usize,
        }
    }

    /// RFC 3339 UTC with nanoseconds.
    pub fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.nanos
        )
    }

    /// The day of the week's name, e.g. `Wednesday`.
    pub fn weekday_name(&self) -> &'static str {
        WEEKDAYS[self.weekday]
    }
}

/// Reads what [`format`](fn@format) writes; the fraction may have 0 to 9 digits.
pub fn parse(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u64> {
        let part = b.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        part.iter().try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
    };
    let punct = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if b.len() < 20 || punct.iter().any(|&(i, c)| b[i] != c) || *b.last()? != b'Z' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let nanos = match &b[19..b.len() - 1] {
        [] => 0,
        [b'.', fraction @ ..] if (1..=9).contains(&fraction.len()) => {
            let n = digits(20..b.len() - 1)?;
            n * 10u64.pow(9 - fraction.len() as u32)
        }
        _ => return None,
    };
    if year < 1970
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = u64::try_from(days_from_civil(year as i64, month, day)).ok()?;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    Some(UNIX_EPOCH + Duration::new(secs, u32::try_from(nanos).ok()?))
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Howard Hinnant's `days_from_civil`, the inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u64, day: u64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = month as i64;
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_the_audit_log_does() {
        let t = UNIX_EPOCH + Duration::new(1_795_636_038, 5);
        assert_eq!(format(t).unwrap(), "2026-11-25T19:47:18.000000005Z");
        assert_eq!(
            format(UNIX_EPOCH).unwrap(),
            "1970-01-01T00:00:00.000000000Z"
        );
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(format(leap).unwrap(), "2000-02-29T00:00:00.000000000Z");
        assert_eq!(format(latest()).unwrap(), "9999-12-31T23:59:59.999999999Z");
        assert_eq!(format(latest() + Duration::from_nanos(1)), None);
        assert_eq!(format(UNIX_EPOCH - Duration::from_secs(1)), None);
    }

    #[test]
    fn any_instant_has_a_date_and_weekday() {
        let epoch = Civil::of(UNIX_EPOCH);
        assert_eq!(
            (epoch.rfc3339().as_str(), epoch.weekday_name()),
            ("1970-01-01T00:00:00.000000000Z", "Thursday")
        );
        let before = Civil::of(UNIX_EPOCH - Duration::new(1, 250_000_000));
        assert_eq!(before.rfc3339(), "1969-12-31T23:59:58.750000000Z");
        assert_eq!(before.weekday_name(), "Wednesday");
        // 2026-11-23 00:00 UTC is a Monday.
        let monday = 1_795_392_000;
        let names: Vec<_> = (0..7)
            .map(|d| {
                Civil::of(UNIX_EPOCH + Duration::from_secs(monday + d * 86_400)).weekday_name()
            })
            .collect();
        assert_eq!(names, WEEKDAYS);
    }

    #[test]
    fn parses_what_it_formats() {
        for t in [
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::new(1_795_636_038, 5),
            UNIX_EPOCH + Duration::new(951_782_400, 999_999_999),
            UNIX_EPOCH + Duration::new(4_107_542_399, 1),
            latest(),
        ] {
            assert_eq!(parse(&format(t).unwrap()), Some(t));
        }
        assert_eq!(
            parse("2026-11-25T19:47:18Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_795_636_038))
        );
        assert_eq!(
            parse("2026-11-25T19:47:18.5Z"),
            Some(UNIX_EPOCH + Duration::new(1_795_636_038, 500_000_000))
        );
    }

    #[test]
    fn refuses_anything_looser() {
        for bad in [
            "",
            "2026-11-25",
            "2026-11-25T19:47:18",
            "2026-11-25T19:47:18+00:00",
            "2026-11-25 19:47:18Z",
            "2026-11-25T19:47:18.Z",
            "2026-11-25T19:47:18.0000000001Z",
            "2026-13-25T19:47:18Z",
            "2026-02-29T19:47:18Z",
            "2026-11-25T24:00:00Z",
            "2026-11-25T19:60:00Z",
            "2026-11-25T19:47:60Z",
            "1969-12-31T23:59:59Z",
            "+026-11-25T19:47:18Z",
            "2026-11-25T19:47:1éZ",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
