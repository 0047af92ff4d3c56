//! The dashboard's messages-per-minute chart: an inline SVG bar chart drawn on
//! the server from numbers only (no script, no external image).
//!
//! # Security
//! Only integers and our own words reach the SVG; times are re-formatted from
//! parsed values, never copied.

use std::collections::HashMap;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The drawing area, in SVG user units.
pub(crate) const WIDTH: u32 = 600;
/// Height of the bars' area (labels below it).
pub(crate) const HEIGHT: u32 = 120;

/// One bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bar {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    /// `in` or `out` (the CSS class).
    pub class: &'static str,
    /// The tooltip / accessible text: `23:04 UTC: 12 received`.
    pub title: String,
}

/// The chart of `minutes` minutes ending with the minute of `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chart {
    pub bars: Vec<Bar>,
    /// The largest count per minute (the top of the scale).
    pub peak: u64,
    pub total_in: u64,
    pub total_out: u64,
    pub minutes: u32,
    /// Time labels under the axis: (x, `HH:MM`).
    pub labels: Vec<(u32, String)>,
    pub width: u32,
    pub height: u32,
    /// `height + 16`: room for the labels.
    pub view_height: u32,
}

/// Unix minute of an RFC 3339 time.
fn minute_of(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp().div_euclid(60))
}

fn hhmm(minute: i64) -> String {
    OffsetDateTime::from_unix_timestamp(minute.saturating_mul(60))
        .map(|t| format!("{:02}:{:02}", t.hour(), t.minute()))
        .unwrap_or_default()
}

fn counts(series: &[(String, u64)]) -> HashMap<i64, u64> {
    let mut m = HashMap::new();
    for (k, v) in series {
        if let Some(min) = minute_of(k) {
            *m.entry(min).or_insert(0) += v;
        }
    }
    m
}

impl Chart {
    /// Bars for received (`in`) and delivered (`out`) per minute over the
    /// last `minutes` minutes up to `now`. Minutes outside are ignored.
    pub(crate) fn per_minute(
        received: &[(String, u64)],
        delivered: &[(String, u64)],
        now: OffsetDateTime,
        minutes: u32,
    ) -> Self {
        let minutes = minutes.clamp(1, 240);
        let last = now.unix_timestamp().div_euclid(60);
        let first = last - i64::from(minutes) + 1;
        let (cin, cout) = (counts(received), counts(delivered));
        let series = |m: &HashMap<i64, u64>| -> Vec<u64> {
            (first..=last)
                .map(|k| m.get(&k).copied().unwrap_or(0))
                .collect()
        };
        let (sin, sout) = (series(&cin), series(&cout));
        let peak = sin.iter().chain(&sout).copied().max().unwrap_or(0);
        let slot = WIDTH / minutes;
        let bar = (slot / 2).max(1);
        let scale = |n: u64| -> u32 {
            // n <= peak, so the result is at most HEIGHT; no bars when peak is 0.
            n.saturating_mul(u64::from(HEIGHT))
                .checked_div(peak)
                .map_or(0, |h| u32::try_from(h).unwrap_or(HEIGHT))
        };
        let mut bars = Vec::new();
        let mut labels = Vec::new();
        for (i, minute) in (first..=last).enumerate() {
            let i32_ = u32::try_from(i).unwrap_or(0);
            let x = i32_ * slot;
            let label = hhmm(minute);
            for (n, class, word, dx) in [
                (sin[i], "in", "received", 0),
                (sout[i], "out", "delivered", bar),
            ] {
                let h = scale(n);
                if h > 0 {
                    bars.push(Bar {
                        x: x + dx,
                        y: HEIGHT - h,
                        width: bar,
                        height: h,
                        class,
                        title: format!("{label} UTC: {n} {word}"),
                    });
                }
            }
            if i % 15 == 0 {
                labels.push((x, label));
            }
        }
        Self {
            bars,
            peak,
            total_in: sin.iter().sum(),
            total_out: sout.iter().sum(),
            minutes,
            labels,
            width: WIDTH,
            height: HEIGHT,
            view_height: HEIGHT + 16,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_peak_and_skip_old_minutes() {
        let now = OffsetDateTime::parse("2026-12-06T23:10:30Z", &Rfc3339).unwrap();
        let rin = vec![
            ("2026-12-06T23:10:00Z".to_owned(), 10),
            ("2026-12-06T23:09:00Z".to_owned(), 5),
            ("2026-12-06T20:00:00Z".to_owned(), 999),
            ("garbage".to_owned(), 7),
        ];
        let rout = vec![("2026-12-06T23:10:00Z".to_owned(), 4)];
        let c = Chart::per_minute(&rin, &rout, now, 60);
        assert_eq!((c.peak, c.total_in, c.total_out), (10, 15, 4));
        assert_eq!(c.bars.len(), 3);
        let top = c
            .bars
            .iter()
            .find(|b| b.title.contains("10 received"))
            .unwrap();
        assert_eq!((top.height, top.y, top.class), (HEIGHT, 0, "in"));
        assert!(top.title.starts_with("23:10 UTC"), "{}", top.title);
        let half = c
            .bars
            .iter()
            .find(|b| b.title.contains("5 received"))
            .unwrap();
        assert_eq!(half.height, HEIGHT / 2);
        assert!(c.bars.iter().all(|b| b.x + b.width <= WIDTH));
        assert_eq!(c.labels.len(), 4);
        let empty = Chart::per_minute(&[], &[], now, 60);
        assert!(empty.bars.is_empty() && empty.peak == 0);
    }
}
