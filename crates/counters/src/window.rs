//! The sliding-window approximation both stores share: two fixed buckets
//! per key (the current and the previous window-sized bucket) and a
//! weighted sum.
//!
//! With `f` the elapsed fraction of the current bucket, the estimate of
//! the count over the last `window` is `previous × (1 − f) + current`. It
//! assumes the previous bucket's events were spread evenly over it. The true
//! count `T` satisfies `current ≤ T ≤ current + previous`, and so does the
//! estimate; the error is at most `previous × max(f, 1 − f)` (all of the
//! previous bucket's events at one of its ends), and zero when the traffic
//! is steady. See docs/counters.md for what this means for a limit.

use std::time::Duration;

use crate::CounterError;

/// The longest window or TTL accepted: one year (in milliseconds, so bucket
/// arithmetic stays far from overflow).
pub(crate) const MAX_DURATION: Duration = Duration::from_hours(366 * 24);

/// `d` in whole milliseconds, at least 1 and at most [`MAX_DURATION`].
pub(crate) fn millis(d: Duration, what: &str) -> Result<u64, CounterError> {
    if d < Duration::from_millis(1) || d > MAX_DURATION {
        return Err(CounterError::Invalid {
            what: format!("{what} must be between 1ms and 366 days, not {d:?}"),
        });
    }
    // Invariant: d ≤ MAX_DURATION, whose millisecond count fits a u64.
    Ok(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Where `now_ms` falls: the index of its bucket and the milliseconds
/// elapsed in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub index: u64,
    pub elapsed_ms: u64,
}

/// The bucket of `now_ms` for buckets of `window_ms` (≥ 1) from time 0.
pub(crate) fn position(now_ms: u64, window_ms: u64) -> Position {
    Position {
        index: now_ms / window_ms,
        elapsed_ms: now_ms % window_ms,
    }
}

/// `previous × (1 − elapsed/window) + current`, rounded down, saturating.
pub(crate) fn estimate(previous: u64, current: u64, elapsed_ms: u64, window_ms: u64) -> u64 {
    let remaining = u128::from(window_ms.saturating_sub(elapsed_ms));
    let weighted = u128::from(previous) * remaining / u128::from(window_ms.max(1));
    // weighted ≤ previous (remaining ≤ window), so it fits a u64.
    current.saturating_add(u64::try_from(weighted).unwrap_or(u64::MAX))
}

/// Checks a caller's key: 1 to [`MAX_KEY_LEN`] bytes of printable ASCII
/// without spaces (the keys hold client IPs and addresses the caller has
/// already checked; this keeps a bug from storing megabyte keys).
pub(crate) fn check_key(key: &str) -> Result<(), CounterError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        let shown: String = key.chars().take(64).collect();
        return Err(CounterError::Invalid {
            what: format!(
                "key {shown:?} must be 1 to {MAX_KEY_LEN} bytes of printable ASCII without spaces"
            ),
        });
    }
    Ok(())
}

/// The longest key accepted, in bytes (an RFC 5321 §4.5.3.1.3 path is at
/// most 256 octets; a key holds one or two plus a short tag).
pub const MAX_KEY_LEN: usize = 600;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_estimate() {
        assert_eq!(
            position(125, 60),
            Position {
                index: 2,
                elapsed_ms: 5
            }
        );
        // At the start of a bucket the previous one counts fully, at its
        // end not at all.
        assert_eq!(estimate(10, 3, 0, 60), 13);
        assert_eq!(estimate(10, 3, 30, 60), 8);
        assert_eq!(estimate(10, 3, 59, 60), 3);
        assert_eq!(estimate(u64::MAX, u64::MAX, 0, 1), u64::MAX);
    }

    #[test]
    fn durations_and_keys() {
        assert_eq!(millis(Duration::from_secs(2), "window").unwrap(), 2000);
        assert!(millis(Duration::ZERO, "window").is_err());
        assert!(millis(Duration::from_micros(999), "ttl").is_err());
        assert!(millis(MAX_DURATION + Duration::from_secs(1), "ttl").is_err());
        assert!(check_key("rcpt:ip:192.0.2.7").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key("a b").is_err());
        assert!(check_key("caf\u{e9}").is_err());
        assert!(check_key(&"x".repeat(MAX_KEY_LEN + 1)).is_err());
    }
}
