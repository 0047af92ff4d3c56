//! Small text helpers shared by the header analyzer: unfolding, making
//! untrusted header text safe to print, durations in words.
//!
//! # Security
//! Everything here handles attacker-controlled header text. [`clean`] is the
//! one place that decides what may reach an operator's terminal: control
//! characters (ESC sequences, CR/LF, NUL) and bidirectional overrides are
//! replaced, so a crafted header cannot repaint the screen or disguise a
//! host name.
//!
//! # Standards
//! RFC 5322 §2.2.3 (long header fields are folded with CRLF + WSP; unfolding
//! removes the CRLF).

/// Unfolds a raw header value (RFC 5322 §2.2.3), collapses runs of white space
/// to one space, trims, and [`clean`]s the result.
pub(crate) fn unfold(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut pending_space = false;
    for c in raw.chars() {
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        if pending_space && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
    }
    clean(&out)
}

/// Replaces characters that could mislead or take over a terminal: C0/C1
/// controls (including ESC, CR, LF, TAB) and the Unicode bidirectional
/// embedding/override/isolate marks.
pub(crate) fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// Shortens `s` to at most `max` characters, marking the cut with `…`.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A signed number of seconds in the compact form admins read in queue tools:
/// `7s`, `1m05s`, `2h03m10s`, `3d04h05m`, `-59m55s`.
pub(crate) fn fmt_secs(seconds: i64) -> String {
    let sign = if seconds < 0 { "-" } else { "" };
    let s = seconds.unsigned_abs();
    let (d, h, m, sec) = (s / 86_400, (s / 3600) % 24, (s / 60) % 60, s % 60);
    if d > 0 {
        format!("{sign}{d}d{h:02}h{m:02}m")
    } else if h > 0 {
        format!("{sign}{h}h{m:02}m{sec:02}s")
    } else if m > 0 {
        format!("{sign}{m}m{sec:02}s")
    } else {
        format!("{sign}{sec}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfold_collapses_folding() {
        assert_eq!(unfold(" from a\r\n\tby b\r\n  id c "), "from a by b id c");
    }

    #[test]
    fn clean_replaces_controls_and_bidi() {
        assert_eq!(clean("a\u{1b}[2Jb\u{202e}c\0"), "a?[2Jb?c?");
        assert_eq!(clean("mx.exämple.org"), "mx.exämple.org");
    }

    #[test]
    fn durations() {
        for (s, want) in [
            (0, "0s"),
            (7, "7s"),
            (65, "1m05s"),
            (3604, "1h00m04s"),
            (-3595, "-59m55s"),
            (2 * 86_400 + 3 * 3600 + 15 * 60 + 9, "2d03h15m"),
        ] {
            assert_eq!(fmt_secs(s), want, "{s}");
        }
    }

    #[test]
    fn truncation() {
        assert_eq!(truncate("abcdef", 10), "abcdef");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
