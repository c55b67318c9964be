//! Grant times in their wire form: RFC 3339 UTC with nanoseconds, the spelling the audit
//! log uses, so that a grant's `expires` and a record's `time` compare by eye.
//!
//! Only `YYYY-MM-DDTHH:MM:SS.fffffffffZ` from 1970 to 9999 is written, and only that form
//! (with 0 to 9 fraction digits) is read back: a token is produced by us, so anything
//! looser is more likely a forgery or a mistake than another writer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The last instant the wire form can write: 9999-12-31T23:59:59.999999999Z.
pub(crate) fn latest() -> SystemTime {
    UNIX_EPOCH + Duration::new(253_402_300_799, 999_999_999)
}

/// `t` as RFC 3339 UTC with nanoseconds; `None` before 1970 or after [`latest`].
pub(crate) fn format(t: SystemTime) -> Option<String> {
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    if t > latest() {
        return None;
    }
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(i64::try_from(days).ok()?);
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    ))
}

/// Reads what [`format`] writes; the fraction may have 0 to 9 digits.
pub(crate) fn parse(s: &str) -> Option<SystemTime> {
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
