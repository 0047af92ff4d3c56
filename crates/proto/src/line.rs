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
//! RFC 5321 §2.3.8 (lines end with CRLF, nothing else), §4.5.3.1.4 (command line
//! limit of 512 octets including CRLF), RFC 4954 §4 (SASL responses up to 12 288
//! octets: the session's reader uses that limit, `Session::line_limit`).
//!
//! # SMTP smuggling (RFC 5321 §2.3.8, CVE-2023-51764 family)
//! Only CRLF ends a line. An LF without the CR before it is reported as
//! [`Line::BareLineFeed`] with the bytes before it, so that a line which a
//! CRLF-splitting proxy or filter sees as ONE command can never run here as
//! two: the session answers one error for the whole line and closes (as
//! Postfix's `smtpd_forbid_bare_newline` does). A CR that is not followed by LF
//! stays inside the line, for the command parser to reject as a control
//! character.

/// One result of [`LineReader::next_line`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// A complete line, without its CRLF.
    Complete(&'a [u8]),
    /// A line ended by an LF without CR (RFC 5321 §2.3.8 forbids it). The
    /// bytes before the LF are given for the transcript only: never execute
    /// them. Answer one error and close the connection.
    BareLineFeed(&'a [u8]),
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
    /// While discarding: the last byte dropped was a CR (so an LF at the start
    /// of the next buffer ends the line properly).
    dropped_cr: bool,
}

impl LineReader {
    /// A reader for lines of at most `max_line` octets including the CRLF
    /// (`Limits::max_command_line`, 512 by default).
    pub fn new(max_line: usize) -> Self {
        Self {
            max_line,
            discarding: false,
            dropped_cr: false,
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
    /// CRLF; a bare LF gives [`Line::BareLineFeed`]), `(None, consumed)` when
    /// more data is needed. When a line
    /// exceeds the limit the reader switches to discarding: it consumes (drops)
    /// bytes and, when the LF finally arrives, returns `Some(Line::TooLong)` once.
    /// When it returns `(None, 0)` the caller holds fewer than `max_line` bytes.
    pub fn next_line<'a>(&mut self, buf: &'a [u8]) -> (Option<Line<'a>>, usize) {
        let lf = buf.iter().position(|&b| b == b'\n');
        if self.discarding {
            let Some(i) = lf else {
                self.dropped_cr = buf.last() == Some(&b'\r');
                return (None, buf.len());
            };
            self.discarding = false;
            let cr = if i == 0 {
                self.dropped_cr
            } else {
                buf[i - 1] == b'\r'
            };
            return if cr {
                (Some(Line::TooLong), i + 1)
            } else {
                // An over-long line ended by a bare LF is still a bare LF:
                // what follows must not run as a command.
                (Some(Line::BareLineFeed(&[])), i + 1)
            };
        }
        match lf {
            Some(i) => {
                let Some(line) = buf[..i].strip_suffix(b"\r") else {
                    // RFC 5321 §2.3.8: a bare LF never ends a line here.
                    return (Some(Line::BareLineFeed(&buf[..i])), i + 1);
                };
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
                self.dropped_cr = buf.last() == Some(&b'\r');
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
        Bare(Vec<u8>),
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
                    Line::BareLineFeed(bytes) => Got::Bare(bytes.to_vec()),
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

    fn bare(s: &str) -> Got {
        Got::Bare(s.as_bytes().to_vec())
    }

    #[test]
    fn splits_lines_table() {
        let cases: Vec<(&[&[u8]], Vec<Got>)> = vec![
            (&[b"EHLO a\r\n"], vec![ok("EHLO a")]),
            (&[b"EHLO a\n"], vec![bare("EHLO a")]),
            (&[b"EH", b"LO a\r", b"\n"], vec![ok("EHLO a")]),
            // The smuggling shape: a bare LF inside what a proxy sees as one line.
            (&[b"A\r\nB\nC\r\n"], vec![ok("A"), bare("B"), ok("C")]),
            (&[b"NOOP x\nRSET\r\n"], vec![bare("NOOP x"), ok("RSET")]),
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
            bare("MAIL FROM:<a@b>"),
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
        let cases: Vec<(&[u8], bool)> = vec![(b"12345678\r\n", true), (b"123456789\r\n", false)];
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
                Some(Line::BareLineFeed(_)) => panic!("bare LF"),
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
        assert_eq!(reader.next_line(b"\r\n"), (Some(Line::TooLong), 2));
        assert_eq!(
            reader.next_line(b"ab\r\n"),
            (Some(Line::Complete(b"ab")), 4)
        );
    }

    #[test]
    fn over_long_line_ended_by_bare_lf_is_a_bare_lf() {
        let long = vec![b'x'; 600];
        let (lines, _) = run(512, &[&long, b"\nRSET\r\n"]);
        assert_eq!(lines, vec![bare(""), ok("RSET")]);
        // The CR in one read, the LF in the next: a proper line end.
        let (lines, _) = run(512, &[&long, b"\r", b"\nRSET\r\n"]);
        assert_eq!(lines, vec![Got::TooLong, ok("RSET")]);
    }

    #[test]
    fn raised_limit_for_sasl_responses() {
        let long = [b"x".repeat(12_000), b"\r\n".to_vec()].concat();
        assert_eq!(LineReader::new(512).next_line(&long).0, Some(Line::TooLong));
        let mut reader = LineReader::new(12_288);
        assert_eq!(
            reader.next_line(&long).0,
            Some(Line::Complete(&long[..12_000]))
        );
    }

    #[test]
    fn empty_buffer_needs_more() {
        let mut reader = LineReader::new(0);
        assert_eq!(reader.next_line(b""), (None, 0));
        assert!(!reader.is_discarding());
    }
}
