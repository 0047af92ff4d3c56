//! The command-line splitter: finds complete lines in received bytes without ever
//! holding more than the line limit.
//!
//! Sans-I/O: the caller owns the receive buffer, hands the unconsumed bytes to
//! [`LineReader::next_line`] and drops the consumed prefix. The reader is used for
//! command lines and AUTH continuation lines, not for DATA (see `data`).
//!
//! # Security
//! Untrusted input. A peer that never sends LF must not make us buffer without
//! bound: once a line cannot fit the limit the reader consumes (drops) everything
//! up to the next LF and reports [`Line::TooLong`] once, so the caller's buffer
//! never needs to hold more than `max_line - 1` unconsumed bytes.
//!
//! # Standards
//! RFC 5321 §2.3.8 (lines end with CRLF), §4.5.3.1.4 (command line limit of 512
//! octets including CRLF). For command lines a bare LF is accepted as the line
//! end (many clients and test tools send it, and it cannot smuggle anything
//! here: there is no terminator to confuse). A CR anywhere but just before the
//! LF is left in the line for the command parser to reject.

/// One result of [`LineReader::next_line`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// A complete line, without its CRLF (or bare LF).
    Complete(&'a [u8]),
    /// A line longer than the limit ended; its bytes were dropped. Answer
    /// `500 5.5.2 Line too long` (RFC 5321 §4.5.3.1.4).
    TooLong,
}

/// Splits received bytes into lines of at most `max_line` octets (counted as if
/// the line ended with CRLF).
#[derive(Debug, Clone)]
pub struct LineReader {
    max_line: usize,
    discarding: bool,
}

impl LineReader {
    /// A reader for lines of at most `max_line` octets including the CRLF
    /// (`Limits::max_command_line`, 512 by default).
    pub fn new(max_line: usize) -> Self {
        Self {
            max_line,
            discarding: false,
        }
    }

    /// The limit this reader enforces.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// True while the reader is dropping the rest of an over-long line.
    pub fn is_discarding(&self) -> bool {
        self.discarding
    }

    /// Scans `buf` (bytes received, not yet consumed). Returns
    /// `(Some(line), consumed)` when a line is complete (the line excludes the
    /// CRLF / LF), `(None, consumed)` when more data is needed. When a line
    /// exceeds the limit the reader switches to discarding: it consumes (drops)
    /// bytes and, when the LF finally arrives, returns `Some(Line::TooLong)` once.
    /// When it returns `(None, 0)` the caller holds fewer than `max_line` bytes.
    pub fn next_line<'a>(&mut self, buf: &'a [u8]) -> (Option<Line<'a>>, usize) {
        let lf = buf.iter().position(|&b| b == b'\n');
        if self.discarding {
            return match lf {
                Some(i) => {
                    self.discarding = false;
                    (Some(Line::TooLong), i + 1)
                }
                None => (None, buf.len()),
            };
        }
        match lf {
            Some(i) => {
                let line = &buf[..i];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                // Counted as if it ended in CRLF, so a client using bare LF gets
                // the same limit as one using CRLF (RFC 5321 §4.5.3.1.4).
                if line.len().saturating_add(2) > self.max_line {
                    (Some(Line::TooLong), i + 1)
                } else {
                    (Some(Line::Complete(line)), i + 1)
                }
            }
            // `max_line` bytes without an LF: even if the LF came next, the line
            // with its ending would be over the limit. Drop what we have.
            None if !buf.is_empty() && buf.len() >= self.max_line => {
                self.discarding = true;
                (None, buf.len())
            }
            None => (None, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` through a reader the way a session would (append, scan,
    /// drain), returning the lines seen and the largest buffer ever held.
    #[derive(Debug, PartialEq, Eq)]
    enum Got {
        Line(Vec<u8>),
        TooLong,
    }

    fn run(max: usize, chunks: &[&[u8]]) -> (Vec<Got>, usize) {
        let mut reader = LineReader::new(max);
        let mut buf: Vec<u8> = Vec::new();
        let mut lines = Vec::new();
        let mut high_water = 0;
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                let (line, consumed) = reader.next_line(&buf);
                let line = line.map(|l| match l {
                    Line::Complete(bytes) => Got::Line(bytes.to_vec()),
                    Line::TooLong => Got::TooLong,
                });
                buf.drain(..consumed);
                match line {
                    Some(l) => lines.push(l),
                    None => break,
                }
            }
            high_water = high_water.max(buf.len());
        }
        (lines, high_water)
    }

    fn ok(s: &str) -> Got {
        Got::Line(s.as_bytes().to_vec())
    }

    #[test]
    fn splits_lines_table() {
        let cases: Vec<(&[&[u8]], Vec<Got>)> = vec![
            (&[b"EHLO a\r\n"], vec![ok("EHLO a")]),
            (&[b"EHLO a\n"], vec![ok("EHLO a")]),
            (&[b"EH", b"LO a\r", b"\n"], vec![ok("EHLO a")]),
            (&[b"A\r\nB\nC\r\n"], vec![ok("A"), ok("B"), ok("C")]),
            (&[b"\r\n"], vec![ok("")]),
            (&[b"NOOP"], vec![]),
            // Only one trailing CR is stripped; the parser rejects the other.
            (&[b"A\r\r\n"], vec![ok("A\r")]),
            (&[b"A\rB\r\n"], vec![ok("A\rB")]),
        ];
        for (chunks, want) in cases {
            assert_eq!(run(512, chunks).0, want, "{chunks:?}");
        }
    }

    #[test]
    fn every_split_point_gives_the_same_lines() {
        let input = b"EHLO client.example\r\nMAIL FROM:<a@b>\nRCPT TO:<c@d>\r\nDATA\r\n";
        let want = vec![
            ok("EHLO client.example"),
            ok("MAIL FROM:<a@b>"),
            ok("RCPT TO:<c@d>"),
            ok("DATA"),
        ];
        for cut in 0..=input.len() {
            let (a, b) = input.split_at(cut);
            assert_eq!(run(512, &[a, b]).0, want, "cut at {cut}");
        }
    }

    #[test]
    fn limit_is_counted_with_crlf() {
        // max 10: 8 octets of text + CRLF fit, 9 do not, whatever the ending.
        let cases: Vec<(&[u8], bool)> = vec![
            (b"12345678\r\n", true),
            (b"12345678\n", true),
            (b"123456789\r\n", false),
            (b"123456789\n", false),
        ];
        for (input, fits) in cases {
            let (lines, _) = run(10, &[input]);
            assert_eq!(lines.len(), 1, "{input:?}");
            assert_eq!(lines[0] != Got::TooLong, fits, "{input:?}");
        }
    }

    #[test]
    fn over_long_line_is_dropped_and_reported_once() {
        let long = vec![b'x'; 5000];
        let (lines, high_water) = run(512, &[&long, &long, b"\r\nNOOP\r\n"]);
        assert_eq!(lines, vec![Got::TooLong, ok("NOOP")]);
        assert!(high_water < 512, "held {high_water} bytes");
    }

    #[test]
    fn memory_bound_with_byte_at_a_time_input() {
        let mut reader = LineReader::new(16);
        let mut buf = Vec::new();
        let mut too_long = 0;
        for _ in 0..1000 {
            buf.push(b'y');
            let (line, consumed) = reader.next_line(&buf);
            assert_eq!(line, None);
            buf.drain(..consumed);
            assert!(buf.len() < 16);
        }
        assert!(reader.is_discarding());
        buf.extend_from_slice(b"\r\nQUIT\r\n");
        loop {
            let (line, consumed) = reader.next_line(&buf);
            let done = match line {
                Some(Line::TooLong) => {
                    too_long += 1;
                    false
                }
                Some(Line::Complete(l)) => {
                    assert_eq!(l, b"QUIT");
                    true
                }
                None => true,
            };
            buf.drain(..consumed);
            if done {
                break;
            }
        }
        assert_eq!(too_long, 1);
        assert!(!reader.is_discarding());
    }

    #[test]
    fn exactly_max_bytes_without_lf_switches_to_discarding() {
        let mut reader = LineReader::new(4);
        assert_eq!(reader.next_line(b"abc"), (None, 0));
        assert_eq!(reader.next_line(b"abcd"), (None, 4));
        assert_eq!(reader.next_line(b"\n"), (Some(Line::TooLong), 1));
        assert_eq!(
            reader.next_line(b"ab\r\n"),
            (Some(Line::Complete(b"ab")), 4)
        );
    }

    #[test]
    fn empty_buffer_needs_more() {
        let mut reader = LineReader::new(0);
        assert_eq!(reader.next_line(b""), (None, 0));
        assert!(!reader.is_discarding());
    }
}
