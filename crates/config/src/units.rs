//! Sizes (`"25MiB"`) and durations (`"5m"`) as written in postern.toml.
//!
//! # Security
//! Parses operator input only; every arithmetic step is checked, so an absurd
//! value is an error rather than a wrapped-around small limit.

use std::time::Duration;

/// Size units, matched ASCII case-insensitively.
const SIZE_UNITS: &[(&str, u64)] = &[
    ("b", 1),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
];

/// Duration units in milliseconds, matched exactly (lower case: `M` could be
/// months or mega, so it is refused rather than guessed).
const DURATION_UNITS: &[(&str, u64)] = &[
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// What a size may look like, for error messages.
pub(crate) const SIZE_HELP: &str = "a whole number followed by B, KiB, MiB, GiB, KB, MB or GB \
     (e.g. \"25MiB\"), or an integer number of bytes";

/// What a duration may look like, for error messages.
pub(crate) const DURATION_HELP: &str = "a whole number followed by ms, s, m, h or d (e.g. \"30s\", \"5m\", \"1h\", \"7d\", \"1500ms\")";

/// Splits `"25 MiB"` into `(25, "MiB")`; `None` when there is no leading number.
fn split_number(s: &str) -> Option<(u64, &str)> {
    let s = s.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (num, unit) = s.split_at(digits);
    Some((num.parse().ok()?, unit.trim_start()))
}

/// Parses a size: `"25MiB"`, `"10 MB"`, `"512B"` or `"1048576"` (bytes).
/// Binary units (KiB = 1024) and decimal units (KB = 1000) are both accepted,
/// case-insensitively.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid size {s:?}; allowed: {SIZE_HELP}");
    let (n, unit) = split_number(s).ok_or_else(bad)?;
    let factor = if unit.is_empty() {
        1
    } else {
        SIZE_UNITS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(unit))
            .map(|&(_, f)| f)
            .ok_or_else(bad)?
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// Parses a duration: `"30s"`, `"5m"`, `"1h"`, `"1500ms"` (a unit is required).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}; allowed: {DURATION_HELP}");
    let (n, unit) = split_number(s).ok_or_else(bad)?;
    let factor = DURATION_UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|&(_, f)| f)
        .ok_or_else(bad)?;
    n.checked_mul(factor)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("duration {s:?} is too large"))
}

/// Writes a duration back the way an operator would (`"5m"`, `"1500ms"`).
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, factor) in DURATION_UNITS.iter().rev() {
        let f = u128::from(*factor);
        if ms != 0 && ms.is_multiple_of(f) {
            return format!("{}{unit}", ms / f);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let ok: &[(&str, u64)] = &[
            ("0", 0),
            ("1048576", 1_048_576),
            ("512B", 512),
            ("512 b", 512),
            ("1KiB", 1024),
            ("1kib", 1024),
            ("25MiB", 25 * 1024 * 1024),
            ("25 MiB", 25 * 1024 * 1024),
            ("2GiB", 2 * 1024 * 1024 * 1024),
            ("1KB", 1000),
            ("10MB", 10_000_000),
            ("10mb", 10_000_000),
            ("3GB", 3_000_000_000),
            (" 7MiB ", 7 * 1024 * 1024),
        ];
        for (s, want) in ok {
            assert_eq!(parse_size(s), Ok(*want), "{s}");
        }
        for s in [
            "", "MiB", "25XB", "25 M", "25TiB", "-1", "1.5MiB", "25MiBs", "0x10", "25 MiB x",
        ] {
            assert_eq!(
                parse_size(s),
                Err(format!("invalid size {s:?}; allowed: {SIZE_HELP}")),
                "{s}"
            );
        }
        assert_eq!(
            parse_size("18446744073709551615GiB"),
            Err("size \"18446744073709551615GiB\" is too large".to_owned())
        );
        assert!(parse_size("99999999999999999999999").is_err());
    }

    #[test]
    fn durations() {
        let ok: &[(&str, Duration)] = &[
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_mins(5)),
            ("1h", Duration::from_hours(1)),
            ("1500ms", Duration::from_millis(1500)),
            ("0s", Duration::ZERO),
            ("5 m", Duration::from_mins(5)),
            ("7d", Duration::from_hours(7 * 24)),
        ];
        for (s, want) in ok {
            assert_eq!(parse_duration(s), Ok(*want), "{s}");
        }
        for s in [
            "", "5", "300", "m", "5M", "5min", "1.5m", "5days", "-5s", "5S", "s5",
        ] {
            assert_eq!(
                parse_duration(s),
                Err(format!("invalid duration {s:?}; allowed: {DURATION_HELP}")),
                "{s}"
            );
        }
        assert!(parse_duration("18446744073709551615h").is_err());
    }

    #[test]
    fn durations_format_back() {
        assert_eq!(format_duration(Duration::from_mins(5)), "5m");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_hours(2)), "2h");
        assert_eq!(format_duration(Duration::ZERO), "0ms");
    }
}
