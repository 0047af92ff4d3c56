//! The client side of replies: [`ReplyParser`] turns bytes received from an SMTP
//! server into complete [`Reply`]s (multi-line replies joined, the RFC 3463
//! enhanced code recognised), and [`parse_ehlo`] reads the extensions a server
//! advertises in its EHLO reply.
//!
//! Sans-I/O like the rest of this crate: the caller feeds whatever it read and
//! asks for complete replies; nothing here knows about sockets or timeouts.
//!
//! # Security
//! Every byte comes from a remote server we do not control (delivery talks to
//! anyone's MX). Limits are enforced before memory grows: a line longer than
//! [`MAX_REPLY_LINE`] octets or a reply of more than [`MAX_REPLY_LINES`] lines
//! is an error, so the buffer holds at most one line over the limit plus what
//! the caller fed since the last call. Control characters other than HT in the
//! reply text become spaces, so a reply printed to a terminal or a log cannot
//! carry escape sequences or fake line breaks. Errors are sticky: after one,
//! the connection is no longer in sync and must be closed.
//!
//! Broken servers: an LF without CR ends a line too (RFC 5321 §4.5.2 asks
//! clients to be liberal here; a reply has no terminator that could be
//! smuggled, unlike DATA).
//!
//! # Standards
//! RFC 5321 §4.2 (reply syntax: `code SP text` / `code "-" text`, the last line
//! without the hyphen, all lines the same code), §4.2.1 (code classes),
//! §4.1.1.1 (EHLO reply: domain, greeting, one extension per line),
//! RFC 3463 / RFC 2034 §4 (enhanced status codes at the start of the text),
//! RFC 1870 (SIZE), RFC 2920 (PIPELINING), RFC 3207 (STARTTLS), RFC 6152
//! (8BITMIME), RFC 6531 (SMTPUTF8), RFC 3461 (DSN), RFC 3030 (CHUNKING),
//! RFC 4954 (AUTH).

use crate::reply::{EnhancedCode, Reply};

/// Longest reply line accepted, in octets including the line end. RFC 5321
/// §4.5.3.1.5 sets 512 as the minimum a client must accept; real servers send
/// longer text (Exchange's banners, Postfix's DSN text), so we allow four times
/// that and no more.
pub const MAX_REPLY_LINE: usize = 2048;

/// Most lines accepted in one multi-line reply. The longest real replies are
/// EHLO lists of about 20 extensions.
pub const MAX_REPLY_LINES: usize = 100;

/// Why the bytes from the server cannot be read as replies. The connection is
/// out of step after any of these and should be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// A line exceeded [`MAX_REPLY_LINE`] (or the configured limit).
    #[error("reply line longer than {limit} octets")]
    LineTooLong {
        /// The limit in force.
        limit: usize,
    },
    /// A reply had more lines than [`MAX_REPLY_LINES`] (or the configured limit).
    #[error("reply has more than {limit} lines")]
    TooManyLines {
        /// The limit in force.
        limit: usize,
    },
    /// A line does not start with a three-digit code followed by SP, `-` or
    /// the line end.
    #[error("malformed reply line {line:?}: expected a three-digit code, then SP or '-'")]
    Malformed {
        /// The start of the line (at most 80 characters, control characters replaced).
        line: String,
    },
    /// A continuation line carries another code than the first line.
    #[error("multi-line reply changes its code from {first} to {then}")]
    CodeMismatch {
        /// Code of the first line.
        first: u16,
        /// Code of the offending line.
        then: u16,
    },
}

/// Feeds on received bytes, yields complete replies. See the module's
/// `# Security` for the limits.
#[derive(Debug, Clone)]
pub struct ReplyParser {
    /// Received bytes not yet turned into lines; `buf[pos..]` is pending.
    buf: Vec<u8>,
    pos: usize,
    /// Code of the reply being collected (after its first line).
    code: Option<u16>,
    /// Text of the lines collected so far.
    lines: Vec<String>,
    max_line: usize,
    max_lines: usize,
    failed: Option<ReplyError>,
}

impl Default for ReplyParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplyParser {
    /// A parser with the default limits ([`MAX_REPLY_LINE`], [`MAX_REPLY_LINES`]).
    pub fn new() -> Self {
        Self::with_limits(MAX_REPLY_LINE, MAX_REPLY_LINES)
    }

    /// A parser with other limits (tests, or a caller that knows better).
    pub fn with_limits(max_line: usize, max_lines: usize) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            code: None,
            lines: Vec::new(),
            max_line: max_line.max(4),
            max_lines: max_lines.max(1),
            failed: None,
        }
    }

    /// Appends received bytes. Call [`ReplyParser::next_reply`] until it
    /// returns `Ok(None)` before feeding more, so the buffer stays bounded.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Received octets not yet split into lines. After the `220` to STARTTLS
    /// this should be zero: anything else was sent before the handshake and
    /// must not be trusted (RFC 3207 §4.2; the response-injection mirror of
    /// CVE-2011-0411).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether a reply has been started but not finished.
    pub fn is_mid_reply(&self) -> bool {
        self.code.is_some() || self.buffered() > 0
    }

    /// Drops every buffered byte and any partial reply (after STARTTLS).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.pos = 0;
        self.code = None;
        self.lines.clear();
    }

    /// The next complete reply, `Ok(None)` when more bytes are needed.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, ReplyError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.parse();
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        // Compact once the consumed prefix is large, so feeding stays amortised O(n).
        if self.pos > 0 && (self.pos == self.buf.len() || self.pos >= 4096) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        result
    }

    fn parse(&mut self) -> Result<Option<Reply>, ReplyError> {
        loop {
            let pending = &self.buf[self.pos..];
            let Some(lf) = pending.iter().position(|&b| b == b'\n') else {
                // No line end yet: the partial line must still be able to fit.
                if pending.len() >= self.max_line {
                    return Err(ReplyError::LineTooLong {
                        limit: self.max_line,
                    });
                }
                return Ok(None);
            };
            if lf + 1 > self.max_line {
                return Err(ReplyError::LineTooLong {
                    limit: self.max_line,
                });
            }
            let mut line = &pending[..lf];
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            let (code, last, text) = split_line(line)?;
            self.pos += lf + 1;
            match self.code {
                None => self.code = Some(code),
                Some(first) if first != code => {
                    return Err(ReplyError::CodeMismatch { first, then: code });
                }
                Some(_) => {}
            }
            if self.lines.len() >= self.max_lines {
                return Err(ReplyError::TooManyLines {
                    limit: self.max_lines,
                });
            }
            self.lines.push(text);
            if last {
                self.code = None;
                let lines = std::mem::take(&mut self.lines);
                return Ok(Some(finish(code, lines)));
            }
        }
    }
}

/// `(code, is_last_line, text)` of one line without its line end.
fn split_line(line: &[u8]) -> Result<(u16, bool, String), ReplyError> {
    let malformed = || ReplyError::Malformed {
        line: sanitize(&line[..line.len().min(80)]),
    };
    let (digits, rest) = line.split_at_checked(3).ok_or_else(malformed)?;
    // RFC 5321 §4.2: the first digit is 2..=5 (1yz is defined but unused);
    // the second 0..=5; we accept any digit there and let the class decide.
    if !digits.iter().all(u8::is_ascii_digit) || !(b'1'..=b'5').contains(&digits[0]) {
        return Err(malformed());
    }
    let code = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    match rest.split_first() {
        None => Ok((code, true, String::new())),
        Some((b' ', text)) => Ok((code, true, sanitize(text))),
        Some((b'-', text)) => Ok((code, false, sanitize(text))),
        Some(_) => Err(malformed()),
    }
}

/// Lossy UTF-8 (SMTPUTF8 servers may send UTF-8 text), control characters
/// other than HT replaced by a space (see the module's `# Security`).
fn sanitize(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
        .collect()
}

/// Builds the reply; the enhanced code is recognised on the first line when
/// its class matches the reply code's (RFC 3463 §2: a 2.x.x code on a 5yz
/// reply is not one), and stripped from every line that repeats it.
fn finish(code: u16, mut lines: Vec<String>) -> Reply {
    let class = code / 100;
    let enhanced = lines
        .first()
        .and_then(|first| parse_enhanced_prefix(first))
        .filter(|(e, _)| u16::from(e.class) == class && matches!(e.class, 2 | 4 | 5));
    if let Some((_, prefix)) = &enhanced {
        for line in &mut lines {
            if let Some(rest) = line.strip_prefix(prefix.as_str()) {
                if rest.is_empty() {
                    line.clear();
                } else if let Some(text) = rest.strip_prefix(' ') {
                    *line = text.to_owned();
                }
            }
        }
    }
    Reply::multiline(code, enhanced.map(|(e, _)| e), lines)
}

/// `class.subject.detail` at the start of `text`, followed by SP or the end;
/// returns the code and its text as written.
fn parse_enhanced_prefix(text: &str) -> Option<(EnhancedCode, String)> {
    let token = text.split(' ').next()?;
    let mut parts = token.split('.');
    let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let number = |s: &str, max_len: usize| -> Option<u16> {
        if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let class = u8::try_from(number(class, 1)?).ok()?;
    let code = EnhancedCode::new(class, number(subject, 3)?, number(detail, 3)?);
    Some((code, token.to_owned()))
}

/// What a server's EHLO reply advertises (RFC 5321 §4.1.1.1).
// One flag per extension keyword, as in the reply itself.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EhloInfo {
    /// The first word of the first line: the server's name for itself.
    pub hostname: String,
    /// The rest of the first line.
    pub greeting: String,
    /// `PIPELINING` (RFC 2920).
    pub pipelining: bool,
    /// `SIZE [n]` (RFC 1870); `Some(0)` when advertised without a (valid) limit.
    pub size: Option<u64>,
    /// `STARTTLS` (RFC 3207).
    pub starttls: bool,
    /// `8BITMIME` (RFC 6152).
    pub eightbitmime: bool,
    /// `SMTPUTF8` (RFC 6531).
    pub smtputf8: bool,
    /// `DSN` (RFC 3461).
    pub dsn: bool,
    /// `CHUNKING` (RFC 3030).
    pub chunking: bool,
    /// `ENHANCEDSTATUSCODES` (RFC 2034).
    pub enhanced_status_codes: bool,
    /// SASL mechanisms from `AUTH` (RFC 4954) and the pre-standard `AUTH=`
    /// form, upper case, without duplicates.
    pub auth: Vec<String>,
    /// Every other extension line as sent (`VRFY`, `ETRN`, `XCLIENT …`).
    pub other: Vec<String>,
}

impl EhloInfo {
    /// Whether `mechanism` (any case) is among the advertised SASL mechanisms.
    pub fn has_auth(&self, mechanism: &str) -> bool {
        self.auth.iter().any(|m| m.eq_ignore_ascii_case(mechanism))
    }
}

/// Reads the extensions from a (positive) EHLO reply. Keywords are matched
/// case-insensitively (RFC 5321 §2.4); unknown ones land in `other`.
pub fn parse_ehlo(reply: &Reply) -> EhloInfo {
    let mut info = EhloInfo::default();
    let mut lines = reply.lines.iter();
    if let Some(first) = lines.next() {
        let first = first.trim();
        let (host, greeting) = first.split_once(' ').unwrap_or((first, ""));
        host.clone_into(&mut info.hostname);
        greeting.trim().clone_into(&mut info.greeting);
    }
    for line in lines {
        let line = line.trim();
        let (keyword, params) = match line.split_once([' ', '=']) {
            Some((k, p)) => (k, p.trim()),
            None => (line, ""),
        };
        match keyword.to_ascii_uppercase().as_str() {
            "PIPELINING" => info.pipelining = true,
            "SIZE" => info.size = Some(params.parse().unwrap_or(0)),
            "STARTTLS" => info.starttls = true,
            "8BITMIME" => info.eightbitmime = true,
            "SMTPUTF8" => info.smtputf8 = true,
            "DSN" => info.dsn = true,
            "CHUNKING" => info.chunking = true,
            "ENHANCEDSTATUSCODES" => info.enhanced_status_codes = true,
            "AUTH" => {
                for mech in params.split_ascii_whitespace() {
                    let mech = mech.to_ascii_uppercase();
                    if !info.auth.contains(&mech) {
                        info.auth.push(mech);
                    }
                }
            }
            "" => {}
            _ => info.other.push(line.to_owned()),
        }
    }
    info
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Reply>, ReplyError> {
        let mut p = ReplyParser::new();
        p.feed(input);
        let mut out = Vec::new();
        while let Some(r) = p.next_reply()? {
            out.push(r);
        }
        Ok(out)
    }

    #[allow(clippy::unnecessary_wraps)] // reads as the field it fills
    fn e(class: u8, subject: u16, detail: u16) -> Option<EnhancedCode> {
        Some(EnhancedCode::new(class, subject, detail))
    }

    #[test]
    fn replies_table() {
        let cases: Vec<(&str, u16, Option<EnhancedCode>, Vec<&str>)> = vec![
            (
                "220 mx.example ESMTP\r\n",
                220,
                None,
                vec!["mx.example ESMTP"],
            ),
            ("250 OK\r\n", 250, None, vec!["OK"]),
            ("354\r\n", 354, None, vec![""]),
            ("250 \r\n", 250, None, vec![""]),
            ("250 2.1.0 Ok\r\n", 250, e(2, 1, 0), vec!["Ok"]),
            (
                "550 5.7.1 Relaying denied\r\n",
                550,
                e(5, 7, 1),
                vec!["Relaying denied"],
            ),
            ("221 2.0.0\r\n", 221, e(2, 0, 0), vec![""]),
            // Class mismatch: not an enhanced code (RFC 3463 §2).
            ("550 2.0.0 odd\r\n", 550, None, vec!["2.0.0 odd"]),
            // Not a code: too many parts, letters, four-digit subject.
            ("250 1.2.3.4 x\r\n", 250, None, vec!["1.2.3.4 x"]),
            ("250 2.a.0 x\r\n", 250, None, vec!["2.a.0 x"]),
            ("250 2.1000.0 x\r\n", 250, None, vec!["2.1000.0 x"]),
            ("250 2.0.0Ok\r\n", 250, None, vec!["2.0.0Ok"]),
            // Multi-line, enhanced code on every line.
            (
                "550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 third\r\n",
                550,
                e(5, 7, 1),
                vec!["first", "second", "third"],
            ),
            // Multi-line, EHLO style.
            (
                "250-mx.example Hello\r\n250-PIPELINING\r\n250 SIZE 1000\r\n",
                250,
                None,
                vec!["mx.example Hello", "PIPELINING", "SIZE 1000"],
            ),
            // Empty continuation text.
            ("250-\r\n250 end\r\n", 250, None, vec!["", "end"]),
            // LF-only line ends from broken servers.
            ("250-a\n250 b\n", 250, None, vec!["a", "b"]),
            // Control characters are neutralised.
            ("250 a\x1b[31mb\rc\r\n", 250, None, vec!["a [31mb c"]),
            // UTF-8 text is kept.
            ("250 Grüße\r\n", 250, None, vec!["Grüße"]),
        ];
        for (wire, code, enhanced, lines) in cases {
            let replies = parse_all(wire.as_bytes()).unwrap();
            assert_eq!(replies.len(), 1, "{wire:?}");
            let r = &replies[0];
            assert_eq!(r.code, code, "{wire:?}");
            assert_eq!(r.enhanced, enhanced, "{wire:?}");
            assert_eq!(r.lines, lines, "{wire:?}");
        }
    }

    #[test]
    fn errors_table() {
        let long = format!("250 {}\r\n", "x".repeat(MAX_REPLY_LINE));
        let many: String = (0..=MAX_REPLY_LINES).map(|_| "250-x\r\n").collect();
        let cases: Vec<(String, ReplyError)> = vec![
            (
                "25 short\r\n".into(),
                ReplyError::Malformed {
                    line: "25 short".into(),
                },
            ),
            (
                "abc def\r\n".into(),
                ReplyError::Malformed {
                    line: "abc def".into(),
                },
            ),
            (
                "650 nope\r\n".into(),
                ReplyError::Malformed {
                    line: "650 nope".into(),
                },
            ),
            (
                "250_x\r\n".into(),
                ReplyError::Malformed {
                    line: "250_x".into(),
                },
            ),
            (
                "250-a\r\n251 b\r\n".into(),
                ReplyError::CodeMismatch {
                    first: 250,
                    then: 251,
                },
            ),
            (
                long,
                ReplyError::LineTooLong {
                    limit: MAX_REPLY_LINE,
                },
            ),
            (
                many,
                ReplyError::TooManyLines {
                    limit: MAX_REPLY_LINES,
                },
            ),
        ];
        for (wire, want) in cases {
            assert_eq!(parse_all(wire.as_bytes()), Err(want), "{wire:?}");
        }
    }

    #[test]
    fn unterminated_long_line_fails_before_newline() {
        let mut p = ReplyParser::with_limits(16, 5);
        p.feed(b"250 0123456789");
        assert_eq!(p.next_reply(), Ok(None));
        p.feed(b"abcdef");
        assert_eq!(p.next_reply(), Err(ReplyError::LineTooLong { limit: 16 }));
        // Sticky.
        p.feed(b"\r\n250 ok\r\n");
        assert_eq!(p.next_reply(), Err(ReplyError::LineTooLong { limit: 16 }));
    }

    #[test]
    fn byte_by_byte_and_pipelined() {
        let wire = b"250 2.1.0 Ok\r\n250-2.1.5 a\r\n250 2.1.5 b\r\n354 go ahead\r\n";
        let mut p = ReplyParser::new();
        let mut got = Vec::new();
        for b in wire {
            p.feed(std::slice::from_ref(b));
            while let Some(r) = p.next_reply().unwrap() {
                got.push(r);
            }
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].lines, vec!["a", "b"]);
        assert_eq!(got[2].code, 354);
        assert_eq!(p.buffered(), 0);
        assert!(!p.is_mid_reply());
    }

    #[test]
    fn buffered_counts_bytes_after_a_reply() {
        let mut p = ReplyParser::new();
        p.feed(b"220 Ready to start TLS\r\n250 injected\r\n");
        assert_eq!(p.next_reply().unwrap().unwrap().code, 220);
        assert_eq!(p.buffered(), "250 injected\r\n".len());
        p.clear();
        assert_eq!(p.buffered(), 0);
        assert_eq!(p.next_reply(), Ok(None));
    }

    #[test]
    fn round_trip_with_to_bytes() {
        for r in [
            Reply::new(250, e(2, 0, 0), "OK"),
            Reply::multiline(550, e(5, 7, 1), vec!["a".into(), "b".into()]),
            Reply::multiline(250, None, vec!["h hi".into(), "PIPELINING".into()]),
        ] {
            assert_eq!(parse_all(&r.to_bytes()).unwrap(), vec![r]);
        }
    }

    #[test]
    fn ehlo_table() {
        let reply = Reply::multiline(
            250,
            None,
            [
                "mx.example.org Hello [192.0.2.1]",
                "PIPELINING",
                "SIZE 26214400",
                "8BITMIME",
                "enhancedstatuscodes",
                "SMTPUTF8",
                "DSN",
                "CHUNKING",
                "STARTTLS",
                "AUTH PLAIN login",
                "AUTH=LOGIN XOAUTH2",
                "VRFY",
                "XCLIENT NAME ADDR",
            ]
            .map(str::to_owned)
            .to_vec(),
        );
        let info = parse_ehlo(&reply);
        assert_eq!(
            info,
            EhloInfo {
                hostname: "mx.example.org".into(),
                greeting: "Hello [192.0.2.1]".into(),
                pipelining: true,
                size: Some(26_214_400),
                starttls: true,
                eightbitmime: true,
                smtputf8: true,
                dsn: true,
                chunking: true,
                enhanced_status_codes: true,
                auth: vec!["PLAIN".into(), "LOGIN".into(), "XOAUTH2".into()],
                other: vec!["VRFY".into(), "XCLIENT NAME ADDR".into()],
            }
        );
        assert!(info.has_auth("plain"));
        assert!(!info.has_auth("CRAM-MD5"));
    }

    #[test]
    fn ehlo_edge_cases() {
        let cases: Vec<(Vec<&str>, EhloInfo)> = vec![
            (
                vec!["mx"],
                EhloInfo {
                    hostname: "mx".into(),
                    ..EhloInfo::default()
                },
            ),
            (
                vec!["mx hi", "SIZE"],
                EhloInfo {
                    hostname: "mx".into(),
                    greeting: "hi".into(),
                    size: Some(0),
                    ..EhloInfo::default()
                },
            ),
            (
                vec!["mx", "SIZE lots"],
                EhloInfo {
                    hostname: "mx".into(),
                    size: Some(0),
                    ..EhloInfo::default()
                },
            ),
        ];
        for (lines, want) in cases {
            let reply =
                Reply::multiline(250, None, lines.iter().map(|s| (*s).to_owned()).collect());
            assert_eq!(parse_ehlo(&reply), want, "{lines:?}");
        }
    }

    #[test]
    fn agrees_with_our_server_side_ehlo() {
        let caps = crate::Capabilities {
            size: Some(1000),
            pipelining: true,
            eightbitmime: true,
            enhanced_status_codes: true,
            smtputf8: true,
            dsn: true,
            chunking: true,
            starttls: true,
            auth: vec!["PLAIN", "LOGIN"],
        };
        let wire = crate::ehlo_reply("h", "hi", &caps).to_bytes();
        let reply = parse_all(&wire).unwrap().remove(0);
        let info = parse_ehlo(&reply);
        assert!(info.pipelining && info.starttls && info.chunking && info.dsn);
        assert_eq!(info.size, Some(1000));
        assert_eq!(info.auth, vec!["PLAIN", "LOGIN"]);
        assert!(info.other.is_empty());
    }
}
