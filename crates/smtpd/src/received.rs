//! The `Received:` trace header we prepend to every accepted message.
//!
//! # Security
//! The HELO argument and addresses are peer-supplied: they are reduced to a safe
//! character set so a client cannot inject header lines or break the field.
//!
//! # Standards
//! RFC 5321 §4.4 (trace information), RFC 3848 (ESMTPS/ESMTPA/ESMTPSA),
//! RFC 6531 §3.7.3 (UTF8SMTP*), RFC 5322 §3.3 (date-time).

use std::net::SocketAddr;

/// Facts the header is built from (owned: it travels to the spool thread).
#[derive(Clone)]
pub(crate) struct Trace {
    pub(crate) helo: String,
    pub(crate) peer: SocketAddr,
    pub(crate) by: String,
    pub(crate) esmtp: bool,
    pub(crate) authenticated: bool,
    pub(crate) smtputf8: bool,
    /// From `TlsFacts::received_clause`, e.g. "TLS1.3 TLS_AES_256_GCM_SHA384".
    pub(crate) tls: Option<String>,
    /// Named only when there is exactly one recipient (RFC 5321 §7.6: do not
    /// disclose the other recipients of a message).
    pub(crate) single_rcpt: Option<String>,
    pub(crate) date: time::OffsetDateTime,
}

/// The protocol keyword for the `with` clause.
fn protocol(t: &Trace) -> String {
    let base = match (t.smtputf8, t.esmtp) {
        (true, _) => "UTF8SMTP",
        (false, true) => "ESMTP",
        (false, false) => "SMTP",
    };
    if !t.esmtp && !t.smtputf8 {
        return base.to_owned();
    }
    let mut p = base.to_owned();
    if t.tls.is_some() {
        p.push('S');
    }
    if t.authenticated {
        p.push('A');
    }
    p
}

/// Keeps only characters that are safe inside a header field token.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric()
                || "-.:[]_@+=".contains(c)
                || (!c.is_ascii() && !c.is_control())
            {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// Renders the header, folded, ending with CRLF.
pub(crate) fn render(t: &Trace, queue_id: &str) -> String {
    let date = t
        .date
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    let helo = if t.helo.is_empty() {
        "unknown".to_owned()
    } else {
        clean(&t.helo)
    };
    let ip = t.peer.ip();
    let mut h = format!(
        "Received: from {helo} ([{ip}])\r\n\tby {} (Postern) with {}",
        clean(&t.by),
        protocol(t)
    );
    if let Some(tls) = &t.tls {
        h.push_str(" (");
        h.push_str(&clean_comment(tls));
        h.push(')');
    }
    h.push_str("\r\n\tid ");
    h.push_str(queue_id);
    if let Some(rcpt) = &t.single_rcpt {
        h.push_str("\r\n\tfor <");
        h.push_str(&clean(rcpt));
        h.push('>');
    }
    h.push_str("; ");
    h.push_str(&date);
    h.push_str("\r\n");
    h
}

fn clean_comment(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '(' && c != ')' && c != '\\' || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(tls: Option<&str>, auth: bool) -> Trace {
        Trace {
            helo: "client.example\r\nX-Injected: yes".into(),
            peer: "192.0.2.7:40000".parse().unwrap(),
            by: "mx.example.com".into(),
            esmtp: true,
            authenticated: auth,
            smtputf8: false,
            tls: tls.map(str::to_owned),
            single_rcpt: Some("bob@example.com".into()),
            date: time::macros::datetime!(2026-11-22 16:40:01 UTC),
        }
    }

    #[test]
    fn esmtps_with_tls_clause() {
        let h = render(
            &trace(Some("TLS1.3 TLS_AES_256_GCM_SHA384"), false),
            "0123456789ABCDEFGH",
        );
        assert!(
            h.starts_with("Received: from client.example??X-Injected:?yes ([192.0.2.7])\r\n"),
            "{h}"
        );
        assert!(
            h.contains("with ESMTPS (TLS1.3 TLS_AES_256_GCM_SHA384)"),
            "{h}"
        );
        assert!(h.contains("\tid 0123456789ABCDEFGH\r\n\tfor <bob@example.com>; Sun, 22 Nov 2026 16:40:01 +0000\r\n"), "{h}");
        // The CRLF in HELO never becomes a header line of its own.
        assert_eq!(h.matches("\r\n").count(), 4, "{h}");
        assert!(!h.contains("\r\nX-Injected"));
    }

    #[test]
    fn protocol_keywords() {
        assert!(render(&trace(None, false), "Q").contains("with ESMTP\r\n"));
        assert!(render(&trace(Some("TLS1.2 X"), true), "Q").contains("with ESMTPSA ("));
    }
}
