//! SMTP replies: a three-digit code, an optional enhanced status code and one or
//! more lines of text, written to the wire in one buffer.
//!
//! This module only formats replies. Which reply a situation deserves is decided
//! elsewhere (the error tables in `command`, `data` and `sasl`, and the session).
//!
//! # Security
//! Reply text may contain peer-supplied strings (a HELO name, an address). A CR
//! or LF in such a string would let the peer inject a whole reply line into our
//! answer (and so desynchronise a pipelining client). [`Reply::to_bytes`] replaces
//! every control character except HT with a space, so one `Reply` is always
//! exactly `lines.len()` wire lines.
//!
//! # Standards
//! RFC 5321 §4.2 (reply syntax, multi-line replies), RFC 3463 (enhanced status
//! codes), RFC 2034 §4 (the enhanced code is repeated on every line).

use std::fmt;

/// An RFC 3463 enhanced status code, `class.subject.detail` (e.g. `5.7.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    /// The subject (RFC 3463 §3): 1 addressing, 5 protocol, 6 content, 7 security, …
    pub subject: u16,
    /// The detail within the subject.
    pub detail: u16,
}

impl EnhancedCode {
    /// Builds `class.subject.detail`.
    pub const fn new(class: u8, subject: u16, detail: u16) -> Self {
        Self {
            class,
            subject,
            detail,
        }
    }
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// One SMTP reply, possibly multi-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code (RFC 5321 §4.2.1), 200..=599 in practice.
    pub code: u16,
    /// Written after the code on every line when present (RFC 2034 §4).
    pub enhanced: Option<EnhancedCode>,
    /// Text lines, without line endings. Empty means one line with no text.
    pub lines: Vec<String>,
}

impl Reply {
    /// A single-line reply.
    pub fn new(code: u16, enhanced: Option<EnhancedCode>, text: impl Into<String>) -> Reply {
        Reply {
            code,
            enhanced,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply (RFC 5321 §4.2.1: `250-first`, …, `250 last`).
    pub fn multiline(code: u16, enhanced: Option<EnhancedCode>, lines: Vec<String>) -> Reply {
        Reply {
            code,
            enhanced,
            lines,
        }
    }

    /// The reply as it goes on the wire, all lines in one buffer so it can be
    /// written with one call (RFC 2920 §3.1 lets a server batch replies).
    ///
    /// Every line gets the code, `-` (continuation) or SP (last line), the
    /// enhanced code when present (RFC 2034 §4: on every line) and the text.
    /// Control characters other than HT in the text become spaces, so a
    /// peer-supplied string can never end a line early (see the module's
    /// `# Security`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let empty = [String::new()];
        let lines: &[String] = if self.lines.is_empty() {
            &empty
        } else {
            &self.lines
        };
        let text_len: usize = lines.iter().map(String::len).sum();
        let mut out = Vec::with_capacity(text_len + lines.len() * 16);
        let last = lines.len() - 1;
        for (i, line) in lines.iter().enumerate() {
            // Codes outside 100..=999 are a programming error; `{:03}` keeps the
            // line at three digits for every value that can be sent.
            out.extend_from_slice(format!("{:03}", self.code % 1000).as_bytes());
            let has_text = !line.is_empty();
            let sep = if i == last { b' ' } else { b'-' };
            if let Some(enhanced) = self.enhanced {
                out.push(sep);
                out.extend_from_slice(enhanced.to_string().as_bytes());
                if has_text {
                    out.push(b' ');
                }
            } else if has_text || i != last {
                // RFC 5321 §4.2: `Reply-code [ SP textstring ] CRLF` for the last
                // line, `Reply-code "-" [ textstring ] CRLF` for the others.
                out.push(sep);
            }
            push_sanitized(&mut out, line);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// 1yz, 2yz or 3yz: the command was accepted (RFC 5321 §4.2.1).
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// 4yz: transient negative completion; the client may retry.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5yz: permanent negative completion.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }
}

/// Appends `text`, replacing CR, LF and every other control character except HT
/// with a space (RFC 5321 §4.2: `textstring = 1*(%d09 / %d32-126)`; UTF-8 above
/// that is left for SMTPUTF8 sessions, RFC 6531 §3.7.4).
fn push_sanitized(out: &mut Vec<u8>, text: &str) {
    for ch in text.chars() {
        if ch.is_control() && ch != '\t' {
            out.push(b' ');
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const E571: EnhancedCode = EnhancedCode::new(5, 7, 1);

    #[test]
    fn enhanced_code_display() {
        assert_eq!(E571.to_string(), "5.7.1");
        assert_eq!(EnhancedCode::new(2, 10, 100).to_string(), "2.10.100");
    }

    #[test]
    fn to_bytes_table() {
        let cases: Vec<(Reply, &str)> = vec![
            (Reply::new(250, None, "OK"), "250 OK\r\n"),
            (
                Reply::new(250, Some(EnhancedCode::new(2, 0, 0)), "OK"),
                "250 2.0.0 OK\r\n",
            ),
            (Reply::new(354, None, ""), "354\r\n"),
            (
                Reply::new(221, Some(EnhancedCode::new(2, 0, 0)), ""),
                "221 2.0.0\r\n",
            ),
            (Reply::multiline(250, None, vec![]), "250\r\n"),
            (
                Reply::multiline(250, None, vec!["a".into(), "b".into()]),
                "250-a\r\n250 b\r\n",
            ),
            (
                Reply::multiline(250, None, vec!["a".into(), String::new(), "c".into()]),
                "250-a\r\n250-\r\n250 c\r\n",
            ),
            (
                Reply::multiline(550, Some(E571), vec!["a".into(), "b".into(), "c".into()]),
                "550-5.7.1 a\r\n550-5.7.1 b\r\n550 5.7.1 c\r\n",
            ),
        ];
        for (reply, wire) in cases {
            assert_eq!(
                String::from_utf8_lossy(&reply.to_bytes()),
                wire,
                "{reply:?}"
            );
        }
    }

    #[test]
    fn to_bytes_sanitizes_line_breaks_and_controls() {
        // A HELO name or address echoed back must never start a new reply line.
        let injected = "evil\r\n250 fake\rx\ny\0z\x1b\tt";
        let reply = Reply::multiline(550, Some(E571), vec![injected.into(), "ok".into()]);
        let wire = reply.to_bytes();
        assert_eq!(
            String::from_utf8_lossy(&wire),
            "550-5.7.1 evil  250 fake x y z \tt\r\n550 5.7.1 ok\r\n"
        );
        // Exactly one CRLF per line and no other CR or LF.
        let text = String::from_utf8_lossy(&wire);
        let cr = text.matches('\r').count();
        let lf = text.matches('\n').count();
        assert_eq!((cr, lf), (2, 2));
    }

    #[test]
    fn utf8_text_is_kept() {
        let reply = Reply::new(250, None, "Grüße");
        assert_eq!(reply.to_bytes(), "250 Grüße\r\n".as_bytes());
    }

    #[test]
    fn classes() {
        for (code, positive, transient, permanent) in [
            (220, true, false, false),
            (250, true, false, false),
            (354, true, false, false),
            (421, false, true, false),
            (451, false, true, false),
            (500, false, false, true),
            (554, false, false, true),
        ] {
            let r = Reply::new(code, None, "x");
            assert_eq!(r.is_positive(), positive, "{code}");
            assert_eq!(r.is_transient(), transient, "{code}");
            assert_eq!(r.is_permanent(), permanent, "{code}");
        }
    }
}
