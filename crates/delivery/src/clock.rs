//! Time for the scheduler: wall-clock Unix milliseconds, injectable so tests can
//! run a five-day retry schedule in milliseconds.
//!
//! Due times are stored on disk (`state/<id>`) as Unix milliseconds, so the
//! scheduler needs wall-clock time, not only a monotonic clock. Sleeping is
//! always done with `tokio::time`, capped (see `scheduler`), so a wall clock that
//! steps is noticed within the cap.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of Unix time in milliseconds.
pub trait Clock: Send + Sync + 'static {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        unix_ms(SystemTime::now())
    }
}

/// Wall-clock time that advances with `tokio::time` — with
/// `tokio::time::pause()` it jumps when the runtime auto-advances, so tests
/// exercise real retry schedules without sleeping. Starts at the real wall
/// clock (or a given instant).
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base_ms: u64,
    base: tokio::time::Instant,
}

impl TokioClock {
    /// Starts now.
    pub fn new() -> Self {
        Self::starting_at(unix_ms(SystemTime::now()))
    }

    /// Starts at `base_ms` (Unix ms).
    pub fn starting_at(base_ms: u64) -> Self {
        Self {
            base_ms,
            base: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        let elapsed = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.base_ms.saturating_add(elapsed)
    }
}

/// Unix milliseconds of `t` (0 before the epoch).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `d` in milliseconds, saturating.
pub fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// RFC 3339 UTC of Unix milliseconds (for logs and DSNs).
pub fn rfc3339(at_ms: u64) -> String {
    let nanos = i128::from(at_ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// RFC 5322 date-time of Unix milliseconds (`Date:`, `Arrival-Date:`).
pub fn rfc5322(at_ms: u64) -> String {
    let secs = i64::try_from(at_ms / 1000).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc2822)
                .ok()
        })
        .unwrap_or_default()
}

/// Parses the RFC 3339 `received_at` of an envelope into Unix ms.
pub fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip() {
        let t = 1_763_830_000_123;
        let s = rfc3339(t);
        assert_eq!(s, "2025-11-22T16:46:40.123Z");
        assert_eq!(parse_rfc3339_ms(&s), Some(t));
        assert_eq!(rfc5322(t), "Sat, 22 Nov 2025 16:46:40 +0000");
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let c = TokioClock::starting_at(1000);
        tokio::time::sleep(Duration::from_hours(1)).await;
        assert_eq!(c.now_ms(), 1000 + 3_600_000);
    }
}
