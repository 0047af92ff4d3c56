//! UTC days: which report a record belongs to, file names, report periods.
//!
//! # Standards
//! RFC 7489 §7.2 (`date_range`: Unix seconds, UTC; a report covers one
//! day by default, `ri=86400`).

use time::{Date, Month, OffsetDateTime};

use super::ReportError;

/// The UTC day of a Unix time (times out of range fall on 1970-01-01).
pub fn day_of(unix: i64) -> Date {
    OffsetDateTime::from_unix_timestamp(unix)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .date()
}

/// `2026-12-06`.
pub fn day_name(day: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

/// Parses `YYYY-MM-DD`.
pub fn parse_day(s: &str) -> Result<Date, ReportError> {
    let bad = || ReportError::BadDay(s.to_owned());
    let mut it = s.split('-');
    let (Some(y), Some(m), Some(d), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let y: i32 = y.parse().map_err(|_| bad())?;
    let m: u8 = m.parse().map_err(|_| bad())?;
    let d: u8 = d.parse().map_err(|_| bad())?;
    let month = Month::try_from(m).map_err(|_| bad())?;
    Date::from_calendar_date(y, month, d).map_err(|_| bad())
}

/// The report period of a day: first and last second, inclusive.
pub fn day_bounds(day: Date) -> (u64, u64) {
    let begin = day.midnight().assume_utc().unix_timestamp();
    let begin = u64::try_from(begin).unwrap_or(0);
    (begin, begin + 86_399)
}

/// Today (UTC).
pub fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bounds() {
        let d = parse_day("2026-12-06").unwrap();
        assert_eq!(day_name(d), "2026-12-06");
        assert_eq!(day_bounds(d), (1_796_515_200, 1_796_601_599));
        assert_eq!(day_of(1_796_515_200 + 86_399), d);
        assert_eq!(day_name(day_of(1_796_515_200 + 86_400)), "2026-12-07");
        for bad in ["2026-13-01", "2026-02-30", "26-12-06", "2026-12-06-1", "x"] {
            assert!(parse_day(bad).is_err(), "{bad}");
        }
    }
}
