//! The DATA decoder and the BDAT checker: strict CRLF, dot un-stuffing, and the
//! end-of-data terminator — the SMTP-smuggling defence.
//!
//! [`DataDecoder`] turns the bytes a client sends after `354` into message bytes
//! and tells the session where the message ends. [`BdatChecker`] applies the
//! same line rules to BDAT chunks, which are length-delimited and have neither
//! dot-stuffing nor a terminator (RFC 3030 §2). Neither touches the spool or
//! enforces SIZE: the session counts [`DataDecoder::message_len`].
//!
//! # Security
//! Untrusted input, and the place where SMTP smuggling (CVE-2023-51764,
//! CVE-2023-51765, CVE-2023-51766) is stopped. Only `CRLF "." CRLF` ends the data;
//! `LF "." LF`, `LF "." CRLF`, `CR "." CRLF` and friends do not, because a
//! bare LF or CR never starts a line here. Bare LF, bare CR, NUL and over-long
//! lines are *flagged* (the first is kept in [`DataDecoder::error`]) and decoding
//! continues to the real terminator, so bytes after a fake terminator are never
//! read as commands; the session then rejects the whole message (Postfix ≥ 3.9
//! `smtpd_forbid_bare_newline` behaviour). Flagged bytes are dropped from the
//! output, so the output only ever holds CRLF-terminated lines; it is still not
//! a message anyone should keep once an error is set.
//!
//! Memory: the decoder holds a few words of state, whatever the input; lines are
//! counted, never buffered.
//!
//! # Standards
//! RFC 5321 §2.3.8 (CRLF only), §4.1.1.4 (DATA, the terminator), §4.5.2
//! (transparency: dot-stuffing), §4.5.3.1.6 (text line limit of 1000 octets
//! including CRLF, not counting the stuffed dot), RFC 3030 (BDAT), RFC 2045
//! §2.8 (no NUL in 8bit data).

use thiserror::Error;

use crate::limits::Limits;
use crate::reply::{EnhancedCode, Reply};

/// Why a message received with DATA or BDAT must be rejected. Only the first
/// error seen is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DataError {
    /// An LF not preceded by CR.
    #[error("bare LF in message data")]
    BareLf,
    /// A CR not followed by LF.
    #[error("bare CR in message data")]
    BareCr,
    /// A NUL octet.
    #[error("NUL octet in message data")]
    Nul,
    /// A text line longer than `Limits::max_text_line` (with its CRLF).
    #[error("text line longer than {limit} octets")]
    LineTooLong {
        /// The limit in force (`Limits::max_text_line`), named in the reply.
        limit: usize,
    },
}

/// RFC 3463 §3.7: X.6.0, other or undefined media error.
const MEDIA_ERROR: EnhancedCode = EnhancedCode::new(5, 6, 0);

impl DataError {
    /// The reply to the end of data (or to a BDAT chunk): `554 5.6.0`
    /// (RFC 5321 §4.3.2 lists 554 for DATA; RFC 3463 X.6.0 "other or undefined
    /// media error"). The text names the rule. This is the one table of
    /// DATA/BDAT errors to replies. Reply text is ASCII only (RFC 5321 §4.2
    /// `textstring`), hence "section" rather than the sign.
    pub fn to_reply(&self) -> Reply {
        let text = match self {
            DataError::BareLf => "Message rejected: bare LF received, lines must end with CRLF \
                                  (RFC 5321 section 2.3.8)"
                .to_owned(),
            DataError::BareCr => "Message rejected: bare CR received, lines must end with CRLF \
                                  (RFC 5321 section 2.3.8)"
                .to_owned(),
            DataError::Nul => {
                "Message rejected: NUL octet in message (RFC 2045 section 2.8)".to_owned()
            }
            DataError::LineTooLong { limit } => format!(
                "Message rejected: line longer than {limit} octets (RFC 5321 section 4.5.3.1.6)"
            ),
        };
        Reply::new(554, Some(MEDIA_ERROR), text)
    }
}

/// Whether the terminator has been seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataStatus {
    /// The terminator has not been seen yet: feed more bytes.
    NeedMore,
    /// `CRLF "." CRLF` was seen; the message is complete.
    Done,
}

/// Line bookkeeping shared by DATA and BDAT: length of the current line and the
/// first error.
#[derive(Debug, Clone)]
struct LineCheck {
    /// Octets of the current line so far, without its CRLF and without a
    /// stuffed dot, counting flagged octets too.
    line_len: usize,
    /// Longest allowed line content: `max_text_line - 2` (the CRLF).
    max_content: usize,
    /// `Limits::max_text_line`, for the error.
    max_text_line: usize,
    /// Whether the current line has already been flagged as too long.
    error: Option<DataError>,
}

impl LineCheck {
    fn new(limits: &Limits) -> Self {
        Self {
            line_len: 0,
            max_content: limits.max_text_line.saturating_sub(2),
            max_text_line: limits.max_text_line,
            error: None,
        }
    }

    fn flag(&mut self, error: DataError) {
        if self.error.is_none() {
            self.error = Some(error);
        }
    }

    /// Counts `n` octets of line content; RFC 5321 §4.5.3.1.6.
    fn count(&mut self, n: usize) {
        self.line_len = self.line_len.saturating_add(n);
        if self.line_len > self.max_content {
            self.flag(DataError::LineTooLong {
                limit: self.max_text_line,
            });
        }
    }

    fn end_line(&mut self) {
        self.line_len = 0;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// After CRLF, or before the first byte: a "." here is special.
    LineStart,
    /// Inside a line.
    Text,
    /// Inside a line, after a CR: only LF makes it a line end.
    Cr,
    /// After a "." at line start (the dot is dropped: un-stuffing).
    Dot,
    /// After "." CR at line start: LF ends the data.
    DotCr,
    /// The terminator was consumed.
    Done,
}

/// Sans-I/O decoder for the DATA phase. See the module's `# Security`.
#[derive(Debug, Clone)]
pub struct DataDecoder {
    state: State,
    check: LineCheck,
    message_len: u64,
}

impl DataDecoder {
    /// A decoder at the start of the first line, so `".\r\n"` as the very first
    /// line ends an empty message and `".."` on the first line is un-stuffed.
    pub fn new(limits: &Limits) -> Self {
        Self {
            state: State::LineStart,
            check: LineCheck::new(limits),
            message_len: 0,
        }
    }

    /// Decodes `input`, appending un-stuffed message bytes (with their CRLFs) to
    /// `out`. Returns how many input bytes were consumed and whether the
    /// terminator was seen; bytes after `CRLF "." CRLF` are not consumed (they
    /// are pipelined commands). Only `CRLF "." CRLF` ends the data. Bare LF,
    /// bare CR, NUL and over-long lines set the error (and are left out of
    /// `out`) but decoding continues to the real terminator.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, DataStatus) {
        let start_len = out.len();
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Done {
                break;
            }
            if self.state == State::Text {
                // Fast path: copy the run of ordinary octets in one go.
                let run = input[i..]
                    .iter()
                    .position(|&b| matches!(b, b'\r' | b'\n' | 0))
                    .unwrap_or(input.len() - i);
                if run > 0 {
                    out.extend_from_slice(&input[i..i + run]);
                    self.check.count(run);
                    i += run;
                    continue;
                }
            }
            let b = input[i];
            i += 1;
            self.step(b, out);
        }
        self.message_len = self
            .message_len
            .saturating_add((out.len() - start_len) as u64);
        let status = if self.state == State::Done {
            DataStatus::Done
        } else {
            DataStatus::NeedMore
        };
        (i, status)
    }

    fn step(&mut self, b: u8, out: &mut Vec<u8>) {
        match self.state {
            State::LineStart => {
                if b == b'.' {
                    // RFC 5321 §4.5.2: the first "." of a line is deleted;
                    // a line that is only "." ends the data.
                    self.state = State::Dot;
                } else {
                    self.text(b, out);
                }
            }
            State::Dot => {
                if b == b'\r' {
                    self.state = State::DotCr;
                } else {
                    self.text(b, out);
                }
            }
            State::DotCr => {
                if b == b'\n' {
                    self.state = State::Done;
                } else {
                    // "." CR x: the CR is bare; this was no terminator.
                    self.check.flag(DataError::BareCr);
                    self.check.count(1);
                    self.text(b, out);
                }
            }
            State::Cr => {
                if b == b'\n' {
                    out.extend_from_slice(b"\r\n");
                    self.check.end_line();
                    self.state = State::LineStart;
                } else {
                    self.check.flag(DataError::BareCr);
                    self.check.count(1);
                    self.text(b, out);
                }
            }
            State::Text => self.text(b, out),
            State::Done => {}
        }
    }

    /// One octet inside a line. A bare LF does *not* start a new line: that is
    /// what keeps `LF "." CRLF` from ever being a terminator (RFC 5321 §2.3.8).
    fn text(&mut self, b: u8, out: &mut Vec<u8>) {
        self.state = State::Text;
        match b {
            b'\r' => self.state = State::Cr,
            b'\n' => {
                self.check.flag(DataError::BareLf);
                self.check.count(1);
            }
            0 => {
                self.check.flag(DataError::Nul);
                self.check.count(1);
            }
            _ => {
                out.push(b);
                self.check.count(1);
            }
        }
    }

    /// The first error seen, if any. Check it when [`DataStatus::Done`] is
    /// returned: with an error the whole message must be rejected.
    pub fn error(&self) -> Option<DataError> {
        self.check.error
    }

    /// True once the terminator has been consumed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Octets appended to `out` so far (the message size for SIZE checks,
    /// RFC 1870 §6).
    pub fn message_len(&self) -> u64 {
        self.message_len
    }
}

/// The DATA line rules (no bare LF, no bare CR, no NUL, line limit) over BDAT
/// chunks (RFC 3030: no dot-stuffing, no terminator; chunks are concatenated, so
/// a CRLF may be split across two chunks).
#[derive(Debug, Clone)]
pub struct BdatChecker {
    check: LineCheck,
    pending_cr: bool,
}

impl BdatChecker {
    /// A checker at the start of the message.
    pub fn new(limits: &Limits) -> Self {
        Self {
            check: LineCheck::new(limits),
            pending_cr: false,
        }
    }

    /// Checks the next chunk, in order.
    pub fn check(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if self.pending_cr {
                self.pending_cr = false;
                if b == b'\n' {
                    self.check.end_line();
                    continue;
                }
                self.check.flag(DataError::BareCr);
                self.check.count(1);
            }
            match b {
                b'\r' => self.pending_cr = true,
                b'\n' => {
                    self.check.flag(DataError::BareLf);
                    self.check.count(1);
                }
                0 => {
                    self.check.flag(DataError::Nul);
                    self.check.count(1);
                }
                _ => self.check.count(1),
            }
        }
    }

    /// Call after the `LAST` chunk: a CR at the very end of the message is bare.
    pub fn finish(&mut self) {
        if self.pending_cr {
            self.pending_cr = false;
            self.check.flag(DataError::BareCr);
        }
    }

    /// The first error seen, if any.
    pub fn error(&self) -> Option<DataError> {
        self.check.error
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits(max_text_line: usize) -> Limits {
        Limits {
            max_text_line,
            ..Limits::default()
        }
    }

    /// Decodes `input` in one call.
    fn decode_all(input: &[u8]) -> (usize, DataStatus, Vec<u8>, Option<DataError>) {
        let mut d = DataDecoder::new(&Limits::default());
        let mut out = Vec::new();
        let (n, status) = d.decode(input, &mut out);
        (n, status, out, d.error())
    }

    /// Decodes `input` split at the given (sorted) cut points, the way a
    /// session does: stop feeding once done.
    fn decode_chunked(
        limits: &Limits,
        input: &[u8],
        cuts: &[usize],
    ) -> (usize, DataStatus, Vec<u8>, Option<DataError>) {
        let mut d = DataDecoder::new(limits);
        let mut out = Vec::new();
        let mut consumed = 0;
        let mut status = DataStatus::NeedMore;
        let mut start = 0;
        for &end in cuts.iter().chain(std::iter::once(&input.len())) {
            let end = end.clamp(start, input.len());
            if status == DataStatus::Done {
                break;
            }
            let (n, s) = d.decode(&input[start..end], &mut out);
            assert!(n <= end - start);
            if s == DataStatus::NeedMore {
                assert_eq!(n, end - start, "NeedMore must consume everything");
            }
            consumed += n;
            status = s;
            start = end;
        }
        assert_eq!(d.message_len(), out.len() as u64);
        (consumed, status, out, d.error())
    }

    #[test]
    fn decode_table() {
        use DataStatus::{Done, NeedMore};
        type Case = (
            &'static [u8],
            usize,
            DataStatus,
            &'static [u8],
            Option<DataError>,
        );
        let cases: Vec<Case> = vec![
            // Empty message: the terminator as the very first line.
            (b".\r\n", 3, Done, b"", None),
            (b"hi\r\n.\r\n", 7, Done, b"hi\r\n", None),
            // Un-stuffing, on the first line and later ones.
            (b"..\r\n.\r\n", 7, Done, b".\r\n", None),
            (b"..x\r\n..\r\n.\r\n", 12, Done, b".x\r\n.\r\n", None),
            (b"a\r\n...\r\n.\r\n", 11, Done, b"a\r\n..\r\n", None),
            // A single leading dot followed by text is deleted (RFC 5321 §4.5.2).
            (b".x\r\n.\r\n", 7, Done, b"x\r\n", None),
            // A dot not at line start is text.
            (b"a.b\r\n.\r\n", 8, Done, b"a.b\r\n", None),
            // Empty lines are kept.
            (b"\r\n\r\n.\r\n", 7, Done, b"\r\n\r\n", None),
            // Pipelined bytes after the terminator are not consumed.
            (b"x\r\n.\r\nQUIT\r\n", 6, Done, b"x\r\n", None),
            (b".\r\nRSET\r\n", 3, Done, b"", None),
            // Not finished yet.
            (b"abc", 3, NeedMore, b"abc", None),
            (b"abc\r\n.", 6, NeedMore, b"abc\r\n", None),
            (b"abc\r\n.\r", 7, NeedMore, b"abc\r\n", None),
            (b"", 0, NeedMore, b"", None),
            // Smuggling: none of these ends the data, each is flagged, and the
            // real terminator still works.
            (
                b"a\n.\nMAIL FROM:<x@y>\r\n.\r\n",
                24,
                Done,
                b"a.MAIL FROM:<x@y>\r\n",
                Some(DataError::BareLf),
            ),
            (
                b"a\n.\r\nRCPT\r\n.\r\n",
                14,
                Done,
                b"a.\r\nRCPT\r\n",
                Some(DataError::BareLf),
            ),
            (
                b"a\r.\r\nRCPT\r\n.\r\n",
                14,
                Done,
                b"a.\r\nRCPT\r\n",
                Some(DataError::BareCr),
            ),
            (
                b"a\r\n\x00.\r\nRCPT\r\n.\r\n",
                16,
                Done,
                b"a\r\n.\r\nRCPT\r\n",
                Some(DataError::Nul),
            ),
            (
                b"a\r\n.\nRCPT\r\n.\r\n",
                14,
                Done,
                b"a\r\nRCPT\r\n",
                Some(DataError::BareLf),
            ),
            (
                b"a\r\n.\rRCPT\r\n.\r\n",
                14,
                Done,
                b"a\r\nRCPT\r\n",
                Some(DataError::BareCr),
            ),
            (b"a\n\r\n.\r\n", 7, Done, b"a\r\n", Some(DataError::BareLf)),
            (b"\n.\n", 3, NeedMore, b".", Some(DataError::BareLf)),
            (b"\n.\r\n", 4, NeedMore, b".\r\n", Some(DataError::BareLf)),
            (b"\r.\r\n", 4, NeedMore, b".\r\n", Some(DataError::BareCr)),
            (
                b"\r\n\x00.\r\n",
                6,
                NeedMore,
                b"\r\n.\r\n",
                Some(DataError::Nul),
            ),
            // The first error is the one kept.
            (
                b"\r\x00\n\r\n.\r\n",
                8,
                Done,
                b"\r\n",
                Some(DataError::BareCr),
            ),
            (b"\x00\r\r\n.\r\n", 7, Done, b"\r\n", Some(DataError::Nul)),
            // CR CR LF: the first CR is bare, the second ends the line.
            (b"a\r\r\n.\r\n", 7, Done, b"a\r\n", Some(DataError::BareCr)),
        ];
        for (input, consumed, status, out, error) in cases {
            let got = decode_all(input);
            assert_eq!(
                got,
                (consumed, status, out.to_vec(), error),
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn terminator_split_at_every_boundary() {
        let input = b"Subject: x\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n";
        let want = (
            30,
            DataStatus::Done,
            b"Subject: x\r\n\r\n.dot\r\nbody\r\n".to_vec(),
            None,
        );
        for a in 0..=input.len() {
            assert_eq!(
                decode_chunked(&Limits::default(), input, &[a]),
                want,
                "cut {a}"
            );
            for b in a..=input.len() {
                assert_eq!(
                    decode_chunked(&Limits::default(), input, &[a, b]),
                    want,
                    "cuts {a},{b}"
                );
            }
        }
        // Byte at a time.
        let cuts: Vec<usize> = (1..input.len()).collect();
        assert_eq!(decode_chunked(&Limits::default(), input, &cuts), want);
    }

    #[test]
    fn done_decoder_consumes_nothing_more() {
        let mut d = DataDecoder::new(&Limits::default());
        let mut out = Vec::new();
        assert_eq!(d.decode(b".\r\n", &mut out), (3, DataStatus::Done));
        assert!(d.is_done());
        assert_eq!(
            d.decode(b"MAIL FROM:<>\r\n", &mut out),
            (0, DataStatus::Done)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn line_limit_at_and_over() {
        // max_text_line 10: 8 octets + CRLF fit, 9 do not. A stuffed dot is
        // not counted (RFC 5321 §4.5.3.1.6).
        let cases: Vec<(&[u8], Option<DataError>)> = vec![
            (b"12345678\r\n.\r\n", None),
            (
                b"123456789\r\n.\r\n",
                Some(DataError::LineTooLong { limit: 10 }),
            ),
            (b"..2345678\r\n.\r\n", None),
            (
                b"..23456789\r\n.\r\n",
                Some(DataError::LineTooLong { limit: 10 }),
            ),
            (b"a\r\n12345678\r\n12345678\r\n.\r\n", None),
            (
                b"a\r\n12345678\r\n123456789\r\n.\r\n",
                Some(DataError::LineTooLong { limit: 10 }),
            ),
        ];
        for (input, error) in cases {
            let (_, status, _, got) = decode_chunked(&limits(10), input, &[]);
            assert_eq!(status, DataStatus::Done);
            assert_eq!(got, error, "{:?}", String::from_utf8_lossy(input));
        }
        // Default limit: 998 + CRLF is fine, 999 is not.
        let mut ok = vec![b'x'; 998];
        ok.extend_from_slice(b"\r\n.\r\n");
        assert_eq!(decode_all(&ok).3, None);
        let mut long = vec![b'x'; 999];
        long.extend_from_slice(b"\r\n.\r\n");
        assert_eq!(
            decode_all(&long).3,
            Some(DataError::LineTooLong { limit: 1000 })
        );
    }

    #[test]
    fn replies() {
        let e560 = Some(EnhancedCode::new(5, 6, 0));
        for (err, needle) in [
            (DataError::BareLf, "bare LF"),
            (DataError::BareCr, "bare CR"),
            (DataError::Nul, "NUL"),
            (
                DataError::LineTooLong { limit: 1000 },
                "line longer than 1000 octets",
            ),
        ] {
            let reply = err.to_reply();
            assert_eq!((reply.code, reply.enhanced), (554, e560), "{err:?}");
            assert!(reply.lines[0].contains(needle), "{reply:?}");
            assert!(reply.lines[0].is_ascii());
        }
        for err in [DataError::BareLf, DataError::BareCr] {
            assert!(err.to_reply().lines[0].contains("RFC 5321 section 2.3.8"));
        }
        let mut d = DataDecoder::new(&limits(100));
        let mut out = Vec::new();
        d.decode(&[b'x'; 200], &mut out);
        let reply = d.error().map(|e| e.to_reply());
        assert_eq!(
            reply.map(|r| String::from_utf8_lossy(&r.to_bytes()).into_owned()),
            Some(
                "554 5.6.0 Message rejected: line longer than 100 octets \
                 (RFC 5321 section 4.5.3.1.6)\r\n"
                    .to_owned()
            )
        );
    }

    #[test]
    fn bdat_checker_table() {
        let cases: Vec<(&[&[u8]], Option<DataError>)> = vec![
            (&[b"a\r\nb\r\n"], None),
            (&[b"a\r", b"\nb\r\n"], None),
            (&[b".\r\n..\r\n"], None),
            (&[b"a\nb"], Some(DataError::BareLf)),
            (&[b"a\r", b"b"], Some(DataError::BareCr)),
            (&[b"a\rb\r\n"], Some(DataError::BareCr)),
            (&[b"a\r"], Some(DataError::BareCr)), // after finish()
            (&[b"a\x00"], Some(DataError::Nul)),
            (&[b"12345678\r\n"], None),
            (&[b"12345", b"678\r\n"], None),
            (
                &[b"12345", b"6789\r\n"],
                Some(DataError::LineTooLong { limit: 10 }),
            ),
        ];
        for (chunks, want) in cases {
            let mut c = BdatChecker::new(&limits(10));
            for chunk in chunks {
                c.check(chunk);
            }
            c.finish();
            assert_eq!(c.error(), want, "{chunks:?}");
        }
    }

    /// The reference model: search the first `CRLF "." CRLF` in `CRLF + input`
    /// directly, then un-stuff and filter line by line. Written differently
    /// from the state machine on purpose.
    fn reference(
        max_text_line: usize,
        input: &[u8],
    ) -> (usize, DataStatus, Vec<u8>, Option<DataError>) {
        let mut stream = b"\r\n".to_vec();
        stream.extend_from_slice(input);
        let term = stream.windows(5).position(|w| w == b"\r\n.\r\n");
        let (body, consumed, status) = match term {
            // stream[p..p + 5] is the terminator; input[..p] is the body
            // (it ends with the CRLF before the dot).
            Some(p) => (&input[..p], p + 3, DataStatus::Done),
            // Unfinished: a trailing CR may yet become a CRLF, so it is neither
            // output nor judged.
            None => (
                input.strip_suffix(b"\r").unwrap_or(input),
                input.len(),
                DataStatus::NeedMore,
            ),
        };
        let max_content = max_text_line.saturating_sub(2);
        let mut out = Vec::new();
        let mut errors = Vec::new();
        let mut lines: Vec<&[u8]> = Vec::new();
        let mut rest = body;
        while let Some(p) = rest.windows(2).position(|w| w == b"\r\n") {
            lines.push(&rest[..p + 2]);
            rest = &rest[p + 2..];
        }
        lines.push(rest);
        for line in lines {
            let (content, crlf) = match line.strip_suffix(b"\r\n") {
                Some(c) => (c, true),
                None => (line, false),
            };
            let content = content.strip_prefix(b".").unwrap_or(content);
            for (n, &b) in content.iter().enumerate() {
                match b {
                    b'\r' => errors.push(DataError::BareCr),
                    b'\n' => errors.push(DataError::BareLf),
                    0 => errors.push(DataError::Nul),
                    _ => out.push(b),
                }
                if n + 1 > max_content {
                    errors.push(DataError::LineTooLong {
                        limit: max_text_line,
                    });
                }
            }
            if crlf {
                out.extend_from_slice(b"\r\n");
            }
        }
        (consumed, status, out, errors.first().copied())
    }

    fn data_bytes() -> impl Strategy<Value = Vec<u8>> {
        // Mostly the interesting octets, so terminators and near-terminators
        // are common.
        prop::collection::vec(
            prop_oneof![
                4 => Just(b'\r'),
                4 => Just(b'\n'),
                4 => Just(b'.'),
                1 => Just(0u8),
                3 => Just(b'a'),
                1 => any::<u8>(),
            ],
            0..64,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn decoder_matches_reference_in_any_chunking(
            input in data_bytes(),
            mut cuts in prop::collection::vec(0usize..64, 0..6),
            max_text_line in 3usize..12,
        ) {
            cuts.sort_unstable();
            let limits = limits(max_text_line);
            let got = decode_chunked(&limits, &input, &cuts);
            prop_assert_eq!(&got, &reference(max_text_line, &input));
            // Output never holds a bare LF, bare CR or NUL.
            let out = &got.2;
            for (i, &b) in out.iter().enumerate() {
                prop_assert!(b != 0);
                if b == b'\n' { prop_assert!(i > 0 && out[i - 1] == b'\r'); }
                if b == b'\r' { prop_assert!(out.get(i + 1) == Some(&b'\n')); }
            }
        }

        #[test]
        fn bdat_checker_matches_decoder_rules(
            input in data_bytes(),
            cut in 0usize..64,
        ) {
            // Without dots, BDAT and DATA agree on the error for a body that
            // has no terminator in it.
            let body: Vec<u8> = input.iter().copied().filter(|&b| b != b'.').collect();
            let mut c = BdatChecker::new(&limits(10));
            let cut = cut.min(body.len());
            c.check(&body[..cut]);
            c.check(&body[cut..]);
            let (_, _, _, want) = reference(10, &body);
            prop_assert_eq!(c.error(), want);
        }
    }
}
