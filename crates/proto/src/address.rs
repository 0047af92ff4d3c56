//! Envelope addresses: `Mailbox`, the reverse path of MAIL and the forward path
//! of RCPT, and their parser.
//!
//! The parser accepts what RFC 5321 §4.1.2 allows (dot-strings, quoted local
//! parts with escapes, address literals, source routes, which are ignored) and
//! UTF-8 where RFC 6531 allows it. Whether UTF-8 was *permitted* (the SMTPUTF8
//! parameter) is decided by the caller with [`Mailbox::is_ascii`].
//!
//! # Security
//! Untrusted input, already bounded by the command line limit. Quoted local
//! parts are decoded once and re-quoted canonically on output, so what we store
//! and what we forward is the same address. Length limits are checked on the
//! octets as sent (the canonical form is never longer).
//!
//! # Standards
//! RFC 5321 §4.1.2 (syntax), §4.1.3 (address literals), §4.5.3.1.1 and
//! §4.5.3.1.2 (local part 64 and domain 255 octets), §4.1.1.3 and Appendix C
//! (source routes), RFC 6531 §3.3 (UTF-8 in addresses), RFC 1035 §2.3.4
//! (63-octet labels).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use thiserror::Error;

use crate::limits::Limits;

/// An envelope mailbox, `local-part@domain`.
///
/// `local_part` is the decoded value (quotes and escapes removed); `domain` is
/// as sent, and may be an address literal such as `[192.0.2.1]` or
/// `[IPv6:2001:db8::1]`. `Display` gives the canonical form, quoting the local
/// part only when it is not a dot-string (RFC 5321 §4.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mailbox {
    /// The local part, unquoted.
    pub local_part: String,
    /// The domain or address literal, as sent.
    pub domain: String,
}

impl Mailbox {
    /// True if neither part holds a non-ASCII character. An address that is not
    /// ASCII needs SMTPUTF8 (RFC 6531 §3.5: otherwise `553 5.6.7`).
    pub fn is_ascii(&self) -> bool {
        self.local_part.is_ascii() && self.domain.is_ascii()
    }

    /// True if the domain is an address literal (`[...]`).
    pub fn is_address_literal(&self) -> bool {
        self.domain.starts_with('[')
    }

    /// Parses a bare mailbox, `local-part@domain` without angle brackets (an
    /// address taken from a header field or a pickup file's `X-Receiver:`
    /// line), with the same syntax and length checks as a RCPT path. A source
    /// route, `<>` and anything after the domain are refused.
    pub fn parse(s: &str, limits: &Limits) -> Result<Mailbox, AddressError> {
        if s.is_empty() || s.starts_with('@') || s.contains(['<', '>']) {
            return Err(AddressError::Syntax);
        }
        match parse_path(&format!("<{s}>"), limits) {
            Ok((Some(mailbox), "")) => Ok(mailbox),
            Err(PathError::Address(e)) => Err(e),
            _ => Err(AddressError::Syntax),
        }
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_dot_string(&self.local_part) {
            f.write_str(&self.local_part)?;
        } else {
            // RFC 5321 §4.1.2: quoted-pairSMTP for `"` and `\`, qtextSMTP for
            // the rest.
            f.write_str("\"")?;
            for ch in self.local_part.chars() {
                if ch == '"' || ch == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{ch}")?;
            }
            f.write_str("\"")?;
        }
        write!(f, "@{}", self.domain)
    }
}

/// The MAIL FROM path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReversePath {
    /// `<>`: bounces and other notifications (RFC 5321 §4.5.5).
    Null,
    /// A sender mailbox.
    Mailbox(Mailbox),
}

impl ReversePath {
    /// True unless the mailbox holds non-ASCII characters.
    pub fn is_ascii(&self) -> bool {
        match self {
            ReversePath::Null => true,
            ReversePath::Mailbox(m) => m.is_ascii(),
        }
    }
}

impl fmt::Display for ReversePath {
    /// `""` for the null path, so `format!("<{path}>")` gives `<>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => Ok(()),
            ReversePath::Mailbox(m) => m.fmt(f),
        }
    }
}

/// The RCPT TO path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ForwardPath {
    /// `<Postmaster>` without a domain (RFC 5321 §4.1.1.3): must be accepted,
    /// meaning the postmaster of this server.
    Postmaster,
    /// A recipient mailbox.
    Mailbox(Mailbox),
}

impl ForwardPath {
    /// True unless the mailbox holds non-ASCII characters. RCPT has no SMTPUTF8
    /// parameter of its own: the session checks this against the transaction's
    /// MAIL (RFC 6531 §3.5).
    pub fn is_ascii(&self) -> bool {
        match self {
            ForwardPath::Postmaster => true,
            ForwardPath::Mailbox(m) => m.is_ascii(),
        }
    }
}

impl fmt::Display for ForwardPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardPath::Postmaster => f.write_str("Postmaster"),
            ForwardPath::Mailbox(m) => m.fmt(f),
        }
    }
}

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AddressError {
    /// Not RFC 5321 path syntax.
    #[error("bad address syntax")]
    Syntax,
    /// `RCPT TO:<>`.
    #[error("null recipient")]
    NullRecipient,
    /// The local part is longer than the limit (RFC 5321 §4.5.3.1.1).
    #[error("local part longer than {limit} octets")]
    LocalPartTooLong {
        /// The configured limit.
        limit: usize,
    },
    /// The domain is longer than the limit (RFC 5321 §4.5.3.1.2).
    #[error("domain longer than {limit} octets")]
    DomainTooLong {
        /// The configured limit.
        limit: usize,
    },
}

/// What went wrong while parsing a path: either the address itself, or the
/// command around it (no closing `>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathError {
    Address(AddressError),
    Unclosed,
}

impl From<AddressError> for PathError {
    fn from(e: AddressError) -> Self {
        PathError::Address(e)
    }
}

/// RFC 5321 §4.1.2 `atext` (from RFC 5322), plus UTF-8 (RFC 6531 §3.3).
fn is_atext(ch: char) -> bool {
    ch.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~".contains(ch)
        || (!ch.is_ascii() && !ch.is_control())
}

/// `Dot-string = Atom *("." Atom)`.
fn is_dot_string(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

/// Letters, digits, hyphen, and (RFC 6531 §3.3, U-labels) any non-ASCII.
fn is_label_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || ch == '-' || (!ch.is_ascii() && !ch.is_control())
}

/// RFC 5321 §4.1.2 `sub-domain = Let-dig [Ldh-str]`, at most 63 octets
/// (RFC 1035 §2.3.4). The octet limit applies to ASCII labels only: a U-label's
/// A-label form (which the limit is about) is not its UTF-8 length.
fn is_valid_label(label: &str, utf8: bool) -> bool {
    !label.is_empty()
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .chars()
            .all(|c| is_label_char(c) && (utf8 || c.is_ascii()))
        && (!label.is_ascii() || label.len() <= 63)
}

/// True if `s` is an RFC 5321 `Domain` (LDH labels separated by dots, at most
/// 255 octets); with `utf8`, U-labels are allowed (RFC 6531 §3.3). No trailing
/// dot. Useful to judge an EHLO argument.
pub fn is_valid_domain(s: &str, utf8: bool) -> bool {
    s.len() <= 255 && s.split('.').all(|l| is_valid_label(l, utf8))
}

/// True if `s` is an RFC 5321 §4.1.3 address literal we can use:
/// `[IPv4]` or `[IPv6:...]`. General (tagged) literals are refused.
pub fn is_valid_address_literal(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
        return false;
    };
    if let Some(v6) = strip_prefix_ignore_case(inner, "IPv6:") {
        // std's parser is strict: no zone ids, no brackets, dotted quad only
        // in the last 32 bits (RFC 5321 §4.1.3 IPv6-addr).
        v6.parse::<Ipv6Addr>().is_ok()
    } else {
        // std rejects leading zeros ("010.0.0.1"), which some stacks read as
        // octal: refusing them removes the ambiguity.
        inner.parse::<Ipv4Addr>().is_ok()
    }
}

pub(crate) fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// A cursor over a path.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let ch = self.peek()?;
        self.pos += ch.len_utf8();
        Some(ch)
    }

    fn eat(&mut self, ch: char) -> bool {
        if self.peek() == Some(ch) {
            self.pos += ch.len_utf8();
            true
        } else {
            false
        }
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    /// Takes the longest run of characters matching `f`.
    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while let Some(ch) = self.peek() {
            if !f(ch) {
                break;
            }
            self.pos += ch.len_utf8();
        }
        &self.s[start..self.pos]
    }
}

/// Parses `"<" [ A-d-l ":" ] Mailbox ">"` or `"<>"` at the start of `s`.
/// Returns the mailbox (`None` for `<>`) and the text after `>`.
pub(crate) fn parse_path<'a>(
    s: &'a str,
    limits: &Limits,
) -> Result<(Option<Mailbox>, &'a str), PathError> {
    let mut cur = Cursor { s, pos: 0 };
    if !cur.eat('<') {
        return Err(PathError::Unclosed);
    }
    if cur.eat('>') {
        return Ok((None, cur.rest()));
    }
    // RFC 5321 §4.1.2 / Appendix C: a source route `@a,@b:` MUST be accepted
    // and SHOULD be ignored.
    if cur.peek() == Some('@') {
        loop {
            if !cur.eat('@') {
                return Err(AddressError::Syntax.into());
            }
            let domain = cur.take_while(|c| is_label_char(c) || c == '.');
            if !is_valid_domain(domain, true) {
                return Err(AddressError::Syntax.into());
            }
            if cur.eat(':') {
                break;
            }
            if !cur.eat(',') {
                return Err(AddressError::Syntax.into());
            }
        }
    }
    let local_start = cur.pos;
    let local_part = parse_local_part(&mut cur)?;
    let local_sent_len = cur.pos - local_start;
    if !cur.eat('@') {
        return Err(match cur.peek() {
            None => PathError::Unclosed,
            Some(_) => AddressError::Syntax.into(),
        });
    }
    let domain = parse_domain(&mut cur)?;
    match cur.peek() {
        Some('>') => {
            cur.bump();
        }
        None => return Err(PathError::Unclosed),
        Some(_) => return Err(AddressError::Syntax.into()),
    }
    // Limits are checked after the syntax, on the octets as sent.
    if local_sent_len > limits.max_local_part {
        return Err(AddressError::LocalPartTooLong {
            limit: limits.max_local_part,
        }
        .into());
    }
    if domain.len() > limits.max_domain {
        return Err(AddressError::DomainTooLong {
            limit: limits.max_domain,
        }
        .into());
    }
    Ok((
        Some(Mailbox {
            local_part,
            domain: domain.to_owned(),
        }),
        cur.rest(),
    ))
}

/// `Local-part = Dot-string / Quoted-string`, decoded.
fn parse_local_part(cur: &mut Cursor<'_>) -> Result<String, PathError> {
    if !cur.eat('"') {
        let dot_string = cur.take_while(|c| is_atext(c) || c == '.');
        if !is_dot_string(dot_string) {
            return Err(AddressError::Syntax.into());
        }
        return Ok(dot_string.to_owned());
    }
    let mut local = String::new();
    loop {
        match cur.bump() {
            Some('"') => return Ok(local),
            // quoted-pairSMTP = %d92 %d32-126
            Some('\\') => match cur.bump() {
                Some(c @ ' '..='~') => local.push(c),
                _ => return Err(AddressError::Syntax.into()),
            },
            // qtextSMTP = %d32-33 / %d35-91 / %d93-126, plus UTF-8 (RFC 6531)
            Some(c) if matches!(c, ' '..='~') || (!c.is_ascii() && !c.is_control()) => {
                local.push(c);
            }
            Some(_) => return Err(AddressError::Syntax.into()),
            None => return Err(PathError::Unclosed),
        }
    }
}

/// `Domain / address-literal`, as sent.
fn parse_domain<'a>(cur: &mut Cursor<'a>) -> Result<&'a str, PathError> {
    let start = cur.pos;
    if cur.peek() == Some('[') {
        let end = cur.rest().find(']').ok_or(PathError::Unclosed)?;
        let literal = &cur.rest()[..=end];
        cur.pos += literal.len();
        if !is_valid_address_literal(literal) {
            return Err(AddressError::Syntax.into());
        }
        return Ok(&cur.s[start..cur.pos]);
    }
    let domain = cur.take_while(|c| is_label_char(c) || c == '.');
    if !is_valid_domain_any_len(domain) {
        return Err(AddressError::Syntax.into());
    }
    Ok(domain)
}

/// Domain syntax without the 255-octet cap (the configured limit is checked
/// separately, with its own reply).
fn is_valid_domain_any_len(s: &str) -> bool {
    s.split('.').all(|l| is_valid_label(l, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(local: &str, domain: &str) -> Mailbox {
        Mailbox {
            local_part: local.to_owned(),
            domain: domain.to_owned(),
        }
    }

    type Parsed<'a> = Result<(Option<Mailbox>, &'a str), PathError>;

    #[test]
    fn bare_mailbox() {
        let l = Limits::default();
        assert_eq!(Mailbox::parse("a@b.example", &l), Ok(mb("a", "b.example")));
        assert_eq!(
            Mailbox::parse("\"a b\"@[192.0.2.1]", &l),
            Ok(mb("a b", "[192.0.2.1]"))
        );
        for bad in ["", "a", "a@", "@a:b@c", "<a@b>", "a@b c", "a@b>", "a@@b"] {
            assert_eq!(
                Mailbox::parse(bad, &l),
                Err(AddressError::Syntax),
                "{bad:?}"
            );
        }
        let long = format!("{}@b", "x".repeat(65));
        assert_eq!(
            Mailbox::parse(&long, &l),
            Err(AddressError::LocalPartTooLong { limit: 64 })
        );
    }

    #[test]
    fn path_table() {
        let syntax = || Err(PathError::Address(AddressError::Syntax));
        let cases: Vec<(&str, Parsed<'_>)> = vec![
            ("<>", Ok((None, ""))),
            ("<> SIZE=1", Ok((None, " SIZE=1"))),
            ("<a@b>", Ok((Some(mb("a", "b")), ""))),
            (
                "<a.b+c@example.org> X",
                Ok((Some(mb("a.b+c", "example.org")), " X")),
            ),
            (
                "<@r1,@r2.example:u@d.example>",
                Ok((Some(mb("u", "d.example")), "")),
            ),
            ("<@r1:u@d>", Ok((Some(mb("u", "d")), ""))),
            ("<\"a b\"@c>", Ok((Some(mb("a b", "c")), ""))),
            ("<\"a\\\"b\\\\c\"@d>", Ok((Some(mb("a\"b\\c", "d")), ""))),
            ("<\"a>@b\"@d>", Ok((Some(mb("a>@b", "d")), ""))),
            ("<\"\"@d>", Ok((Some(mb("", "d")), ""))),
            ("<a@[192.0.2.1]>", Ok((Some(mb("a", "[192.0.2.1]")), ""))),
            (
                "<a@[IPv6:2001:db8::1]>",
                Ok((Some(mb("a", "[IPv6:2001:db8::1]")), "")),
            ),
            ("<a@[ipv6:::1]>", Ok((Some(mb("a", "[ipv6:::1]")), ""))),
            ("<a@x-y.example>", Ok((Some(mb("a", "x-y.example")), ""))),
            ("<a@123.example>", Ok((Some(mb("a", "123.example")), ""))),
            (
                "<jürgen@bücher.example>",
                Ok((Some(mb("jürgen", "bücher.example")), "")),
            ),
            ("<\"jü rgen\"@d>", Ok((Some(mb("jü rgen", "d")), ""))),
            ("<a@b", Err(PathError::Unclosed)),
            ("<a", Err(PathError::Unclosed)),
            ("<\"a", Err(PathError::Unclosed)),
            ("<a@[1.2.3.4", Err(PathError::Unclosed)),
            ("a@b", Err(PathError::Unclosed)),
            ("<a>", syntax()),
            ("<@b>", syntax()),
            ("<a@>", syntax()),
            ("<.a@b>", syntax()),
            ("<a.@b>", syntax()),
            ("<a..b@c>", syntax()),
            ("<a b@c>", syntax()),
            ("<a@b@c>", syntax()),
            ("<a@-b.c>", syntax()),
            ("<a@b-.c>", syntax()),
            ("<a@b..c>", syntax()),
            ("<a@b.c.>", syntax()),
            ("<a@b_c>", syntax()),
            ("<a@[1.2.3]>", syntax()),
            ("<a@[1.2.3.256]>", syntax()),
            ("<a@[01.2.3.4]>", syntax()),
            ("<a@[IPv6:1.2.3.4]>", syntax()),
            ("<a@[IPv6:fe80::1%eth0]>", syntax()),
            ("<a@[x-tag:foo]>", syntax()),
            ("<\"a\\\u{1}\"@b>", syntax()),
            ("<\"a\u{7f}\"@b>", syntax()),
            ("<@r1u@d>", syntax()),
            ("<@r1,u@d>", syntax()),
            ("<@-r:u@d>", syntax()),
            ("<a@b>>", Ok((Some(mb("a", "b")), ">"))),
            ("<a@bx>", Ok((Some(mb("a", "bx")), ""))),
        ];
        let limits = Limits::default();
        for (input, want) in cases {
            assert_eq!(parse_path(input, &limits), want, "{input:?}");
        }
    }

    #[test]
    fn long_labels() {
        let limits = Limits::default();
        let label63 = "a".repeat(63);
        let label64 = "a".repeat(64);
        assert!(parse_path(&format!("<u@{label63}.example>"), &limits).is_ok());
        assert_eq!(
            parse_path(&format!("<u@{label64}.example>"), &limits),
            Err(PathError::Address(AddressError::Syntax))
        );
    }

    #[test]
    fn limits_at_and_over() {
        let limits = Limits::default();
        let at = |local: &str, domain: &str| {
            parse_path(&format!("<{local}@{domain}>"), &limits).map(|(m, _)| m)
        };
        let domain_255 = format!(
            "{}.{}.{}.{}",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63)
        );
        assert_eq!(domain_255.len(), 255);
        let domain_256 = format!(
            "{}.{}.{}.{}.e",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(62)
        );
        assert_eq!(domain_256.len(), 256);
        assert!(at(&"x".repeat(64), "d").is_ok());
        assert_eq!(
            at(&"x".repeat(65), "d"),
            Err(PathError::Address(AddressError::LocalPartTooLong {
                limit: 64
            }))
        );
        // Quotes count: the limit is on the octets as sent.
        assert!(at(&format!("\"{}\"", "x".repeat(62)), "d").is_ok());
        assert_eq!(
            at(&format!("\"{}\"", "x".repeat(63)), "d"),
            Err(PathError::Address(AddressError::LocalPartTooLong {
                limit: 64
            }))
        );
        assert!(at("u", &domain_255).is_ok());
        assert_eq!(
            at("u", &domain_256),
            Err(PathError::Address(AddressError::DomainTooLong {
                limit: 255
            }))
        );
    }

    #[test]
    fn display_is_canonical() {
        let cases = [
            (mb("a.b", "example.org"), "a.b@example.org"),
            (mb("a b", "d"), "\"a b\"@d"),
            (mb("a\"b\\c", "d"), "\"a\\\"b\\\\c\"@d"),
            (mb("", "d"), "\"\"@d"),
            (mb(".a", "d"), "\".a\"@d"),
            (mb("a..b", "d"), "\"a..b\"@d"),
            (mb("jürgen", "bücher.example"), "jürgen@bücher.example"),
            (mb("u", "[192.0.2.1]"), "u@[192.0.2.1]"),
        ];
        for (mailbox, want) in cases {
            assert_eq!(mailbox.to_string(), want);
            // The canonical form parses back to the same mailbox.
            let path = format!("<{want}>");
            let reparsed = parse_path(&path, &Limits::default());
            assert_eq!(reparsed, Ok((Some(mailbox), "")), "{want}");
        }
        assert_eq!(ReversePath::Null.to_string(), "");
        assert_eq!(ForwardPath::Postmaster.to_string(), "Postmaster");
    }

    #[test]
    fn helpers() {
        assert!(is_valid_domain("mx.example.org", false));
        assert!(is_valid_domain("localhost", false));
        assert!(!is_valid_domain("bücher.example", false));
        assert!(is_valid_domain("bücher.example", true));
        assert!(!is_valid_domain("", false));
        assert!(!is_valid_domain("a_b.example", false));
        assert!(is_valid_address_literal("[127.0.0.1]"));
        assert!(is_valid_address_literal("[IPv6:::1]"));
        assert!(!is_valid_address_literal("127.0.0.1"));
        assert!(!is_valid_address_literal("[127.0.0.1"));
        assert!(mb("a", "b").is_ascii());
        assert!(!mb("ü", "b").is_ascii());
        assert!(!mb("a", "ü").is_ascii());
        assert!(mb("a", "[1.2.3.4]").is_address_literal());
    }
}
