//! The EHLO reply: the greeting line and the advertised service extensions.
//!
//! Which extensions to offer (e.g. STARTTLS only before TLS, AUTH only after) is
//! the session's decision; this module only writes them in a fixed order.
//!
//! # Security
//! `hostname` and `greeting` come from configuration, not from the peer; they
//! are still sanitised by [`Reply::to_bytes`].
//!
//! # Standards
//! RFC 5321 §4.1.1.1 (EHLO reply), RFC 2034 §3 (no enhanced code on the EHLO
//! reply), RFC 1870 (SIZE), RFC 2920 (PIPELINING), RFC 6152 (8BITMIME),
//! RFC 6531 (SMTPUTF8), RFC 3461 (DSN), RFC 3030 (CHUNKING), RFC 3207
//! (STARTTLS), RFC 4954 (AUTH).

use crate::reply::Reply;

/// The extensions to advertise. `Default` advertises nothing.
// One flag per extension keyword, as in the EHLO reply itself.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `SIZE n` (RFC 1870); `Some(0)` advertises "no fixed limit".
    pub size: Option<u64>,
    /// `PIPELINING` (RFC 2920).
    pub pipelining: bool,
    /// `8BITMIME` (RFC 6152).
    pub eightbitmime: bool,
    /// `ENHANCEDSTATUSCODES` (RFC 2034).
    pub enhanced_status_codes: bool,
    /// `SMTPUTF8` (RFC 6531).
    pub smtputf8: bool,
    /// `DSN` (RFC 3461).
    pub dsn: bool,
    /// `CHUNKING` (RFC 3030).
    pub chunking: bool,
    /// `STARTTLS` (RFC 3207).
    pub starttls: bool,
    /// SASL mechanisms for `AUTH` (RFC 4954), e.g. `["PLAIN", "LOGIN"]`;
    /// empty means AUTH is not advertised.
    pub auth: Vec<&'static str>,
}

/// `250-hostname greeting`, then one line per extension, `250 ` on the last.
/// No enhanced code: RFC 2034 §3 exempts the EHLO reply.
pub fn ehlo_reply(hostname: &str, greeting: &str, caps: &Capabilities) -> Reply {
    let mut lines = Vec::with_capacity(10);
    lines.push(if greeting.is_empty() {
        hostname.to_owned()
    } else {
        format!("{hostname} {greeting}")
    });
    if caps.pipelining {
        lines.push("PIPELINING".to_owned());
    }
    if let Some(size) = caps.size {
        lines.push(format!("SIZE {size}"));
    }
    if caps.eightbitmime {
        lines.push("8BITMIME".to_owned());
    }
    if caps.enhanced_status_codes {
        lines.push("ENHANCEDSTATUSCODES".to_owned());
    }
    if caps.smtputf8 {
        lines.push("SMTPUTF8".to_owned());
    }
    if caps.dsn {
        lines.push("DSN".to_owned());
    }
    if caps.chunking {
        lines.push("CHUNKING".to_owned());
    }
    if caps.starttls {
        lines.push("STARTTLS".to_owned());
    }
    if !caps.auth.is_empty() {
        lines.push(format!("AUTH {}", caps.auth.join(" ")));
    }
    Reply::multiline(250, None, lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(reply: &Reply) -> String {
        String::from_utf8_lossy(&reply.to_bytes()).into_owned()
    }

    #[test]
    fn nothing_advertised_is_one_line() {
        let r = ehlo_reply("mx.example.org", "", &Capabilities::default());
        assert_eq!(wire(&r), "250 mx.example.org\r\n");
    }

    #[test]
    fn everything_advertised() {
        let caps = Capabilities {
            size: Some(26_214_400),
            pipelining: true,
            eightbitmime: true,
            enhanced_status_codes: true,
            smtputf8: true,
            dsn: true,
            chunking: true,
            starttls: true,
            auth: vec!["PLAIN", "LOGIN"],
        };
        let r = ehlo_reply("mx.example.org", "Postern at your service", &caps);
        assert_eq!(r.enhanced, None);
        assert_eq!(
            wire(&r),
            "250-mx.example.org Postern at your service\r\n\
             250-PIPELINING\r\n\
             250-SIZE 26214400\r\n\
             250-8BITMIME\r\n\
             250-ENHANCEDSTATUSCODES\r\n\
             250-SMTPUTF8\r\n\
             250-DSN\r\n\
             250-CHUNKING\r\n\
             250-STARTTLS\r\n\
             250 AUTH PLAIN LOGIN\r\n"
        );
    }

    #[test]
    fn each_capability_alone() {
        type Set = fn(&mut Capabilities);
        let cases: [(Set, &str); 9] = [
            (|c| c.size = Some(0), "SIZE 0"),
            (|c| c.pipelining = true, "PIPELINING"),
            (|c| c.eightbitmime = true, "8BITMIME"),
            (|c| c.enhanced_status_codes = true, "ENHANCEDSTATUSCODES"),
            (|c| c.smtputf8 = true, "SMTPUTF8"),
            (|c| c.dsn = true, "DSN"),
            (|c| c.chunking = true, "CHUNKING"),
            (|c| c.starttls = true, "STARTTLS"),
            (|c| c.auth = vec!["PLAIN"], "AUTH PLAIN"),
        ];
        for (set, line) in cases {
            let mut caps = Capabilities::default();
            set(&mut caps);
            let r = ehlo_reply("h", "hi", &caps);
            assert_eq!(r.lines, vec!["h hi".to_owned(), line.to_owned()]);
        }
    }
}
