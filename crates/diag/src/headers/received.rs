//! One `Received:` header → one [`Hop`]: structure from mail-parser, TLS facts
//! and the protocol keyword from our own reading of the raw text, the date
//! normalised to UTC.
//!
//! mail-parser's `Received` parser gives `from`, `from_ip`, `by`, `with`, `id`,
//! `for` and the date. The TLS comment is MTA-specific, so this module reads it
//! itself (and unit-tests every style):
//!
//! | MTA | TLS facts as written |
//! |---|---|
//! | Postern | `with ESMTPS (TLS1.3 TLS_AES_256_GCM_SHA384)` |
//! | Postfix | `(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) …)` |
//! | Exchange / Office 365 | `with Microsoft SMTP Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384)` |
//! | Gmail | `with ESMTPS id … (version=TLS1_3 cipher=TLS_AES_128_GCM_SHA256 bits=128/128)`, `(Google Transport Security)` |
//! | Exim ≥ 4.92 | `with esmtps (TLS1.3) tls TLS_AES_256_GCM_SHA384` |
//! | Exim (older) | `with esmtps (TLS1.2:ECDHE-RSA-AES256-GCM-SHA384:256)` |
//! | Sendmail | `(version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256 verify=NOT)` |
//! | Exchange 2010 | `with Microsoft SMTP Server (TLS) id 14.3…` |
//!
//! # Security
//! The text after `from` (the HELO name and, in Postfix/Sendmail, the PTR name
//! in the first comment) is chosen by the sending peer. TLS facts are never
//! read from that part, so a client announcing `EHLO TLSv1.3` cannot make a
//! plaintext hop look encrypted. Everything else in the header is only as
//! honest as the server that wrote it.
//!
//! # Standards
//! RFC 5321 §4.4 (Stamp: `from`, `by`, `via`, `with`, `id`, `for`, `;` date),
//! RFC 3848 and RFC 6531 §3.7.3 (with-protocol keywords; `…S` = STARTTLS),
//! RFC 5322 §3.3 (date-time and zone).

use mail_parser::{DateTime, HeaderValue, Host, Protocol, Received};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use super::text::clean;
use super::{Hop, HopTls};

/// Builds the hop for one `Received:` header. `raw` is the unfolded value.
/// Returns the hop and whether the header had a recognisable structure
/// (a `from` or `by` part, or at least a date).
pub(crate) fn hop(index: usize, raw: String, value: &HeaderValue<'_>) -> (Hop, bool) {
    if let Some(r) = value.as_received() {
        return from_received(index, raw, r);
    }
    let hop = Hop {
        index,
        raw,
        ..Hop::default()
    };
    (hop, false)
}

fn from_received(index: usize, raw: String, r: &Received<'_>) -> (Hop, bool) {
    let scan = scan_raw(&raw);
    let from_host_ip = match &r.from {
        Some(Host::IpAddr(ip)) => Some(*ip),
        _ => None,
    };
    let has_from = scan.has_from;
    let with = r.with.map(protocol_name).map(str::to_owned).or_else(|| {
        scan.with_word
            .as_deref()
            .map(|w| clean(&w.to_ascii_uppercase()))
    });
    let tls = scan.tls.clone().or_else(|| {
        with.as_deref()
            .filter(|w| protocol_implies_tls(w))
            .map(|_| HopTls::default())
    });
    let hop = Hop {
        index,
        from: r.from.as_ref().filter(|_| has_from).map(host_text),
        from_ip: r.from_ip.or(from_host_ip).filter(|_| has_from),
        from_rdns: r.from_iprev.as_deref().filter(|_| has_from).map(clean),
        helo: r.helo.as_ref().filter(|_| has_from).map(host_text),
        by: r.by.as_ref().map(host_text),
        with,
        tls,
        id: r.id.as_deref().map(clean),
        for_: r.for_.as_deref().map(clean),
        time_utc: r.date.as_ref().and_then(to_utc),
        delay: None,
        raw,
    };
    // A stamp without from/by but with a date (qmail's `(qmail 123 invoked by
    // uid 1000); date`) is a local injection, not garbage.
    let parsed =
        hop.from.is_some() || hop.from_ip.is_some() || hop.by.is_some() || hop.time_utc.is_some();
    (hop, parsed)
}

fn host_text(h: &Host<'_>) -> String {
    match h {
        Host::Name(n) => clean(n),
        Host::IpAddr(ip) => ip.to_string(),
    }
}

/// The IANA "Mail Transmission Types" spelling (RFC 3848, RFC 6531).
fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::SMTP => "SMTP",
        Protocol::ESMTP => "ESMTP",
        Protocol::ESMTPA => "ESMTPA",
        Protocol::ESMTPS => "ESMTPS",
        Protocol::ESMTPSA => "ESMTPSA",
        Protocol::LMTP => "LMTP",
        Protocol::LMTPA => "LMTPA",
        Protocol::LMTPS => "LMTPS",
        Protocol::LMTPSA => "LMTPSA",
        Protocol::MMS => "MMS",
        Protocol::UTF8SMTP => "UTF8SMTP",
        Protocol::UTF8SMTPA => "UTF8SMTPA",
        Protocol::UTF8SMTPS => "UTF8SMTPS",
        Protocol::UTF8SMTPSA => "UTF8SMTPSA",
        Protocol::UTF8LMTP => "UTF8LMTP",
        Protocol::UTF8LMTPA => "UTF8LMTPA",
        Protocol::UTF8LMTPS => "UTF8LMTPS",
        Protocol::UTF8LMTPSA => "UTF8LMTPSA",
        Protocol::HTTP => "HTTP",
        Protocol::HTTPS => "HTTPS",
        Protocol::IMAP => "IMAP",
        Protocol::POP3 => "POP3",
        Protocol::Local => "local",
    }
}

/// Whether the protocol keyword itself says the session was encrypted
/// (RFC 3848: the `S` in ESMTPS/ESMTPSA means STARTTLS; `SMTPS` is Gmail's
/// spelling for implicit TLS).
pub(crate) fn protocol_implies_tls(with: &str) -> bool {
    let w = with.to_ascii_uppercase();
    matches!(
        w.as_str(),
        "ESMTPS"
            | "ESMTPSA"
            | "LMTPS"
            | "LMTPSA"
            | "UTF8SMTPS"
            | "UTF8SMTPSA"
            | "UTF8LMTPS"
            | "UTF8LMTPSA"
            | "SMTPS"
            | "HTTPS"
            | "IMAPS"
            | "POP3S"
    )
}

/// Whether the hop was a hand-over inside one machine (no network to
/// encrypt): local pickup, Exchange's store submission (`mapi`), loopback.
pub(crate) fn is_local(hop: &Hop) -> bool {
    if hop.from.is_none() && hop.from_ip.is_none() {
        // `Received: by host (Postfix, from userid 1000) id …`: local injection.
        return true;
    }
    if hop.from_ip.is_some_and(|ip| ip.is_loopback()) {
        return true;
    }
    if hop
        .from
        .as_deref()
        .is_some_and(|f| f.eq_ignore_ascii_case("localhost"))
    {
        return true;
    }
    hop.with.as_deref().is_some_and(|w| {
        ["local", "mapi", "stdin", "socket"]
            .iter()
            .any(|l| w.eq_ignore_ascii_case(l))
    })
}

/// An RFC 5322 date-time (with its zone) as a UTC instant; `None` when a field
/// is out of range (month 13, 31 February, zone +2500 …).
pub(crate) fn to_utc(dt: &DateTime) -> Option<OffsetDateTime> {
    let month = Month::try_from(dt.month).ok()?;
    let date = Date::from_calendar_date(i32::from(dt.year), month, dt.day).ok()?;
    let time = Time::from_hms(dt.hour, dt.minute, dt.second).ok()?;
    let sign: i8 = if dt.tz_before_gmt { -1 } else { 1 };
    let offset = UtcOffset::from_hms(
        sign * i8::try_from(dt.tz_hour).ok()?,
        sign * i8::try_from(dt.tz_minute).ok()?,
        0,
    )
    .ok()?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_offset(offset)
            .to_offset(UtcOffset::UTC),
    )
}

/// What our own pass over the raw text found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct RawScan {
    /// TLS facts, `Some` when any TLS evidence was found.
    pub(crate) tls: Option<HopTls>,
    /// The first word after a top-level `with` (for keywords mail-parser does
    /// not know, such as Gmail's `SMTPS` or Exchange's `mapi`).
    pub(crate) with_word: Option<String>,
    /// Whether a top-level `from` clause exists. mail-parser also takes a
    /// `from` inside a comment (`(Postfix, from userid 1000)`) as the peer.
    pub(crate) has_from: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    Open,
    Close,
    Semi,
    Word(&'a str),
}

/// Splits on white space and commas; parentheses and `;` are tokens.
fn lex(s: &str) -> Vec<Tok<'_>> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in s.char_indices() {
        let sep = match c {
            '(' => Some(Tok::Open),
            ')' => Some(Tok::Close),
            ';' => Some(Tok::Semi),
            c if c.is_whitespace() || c == ',' => None,
            _ => {
                start.get_or_insert(i);
                continue;
            }
        };
        if let Some(st) = start.take() {
            out.push(Tok::Word(&s[st..i]));
        }
        if let Some(t) = sep {
            out.push(t);
        }
    }
    if let Some(st) = start {
        out.push(Tok::Word(&s[st..]));
    }
    out
}

/// Reads TLS facts and the `with` keyword from the raw header text, skipping
/// the peer-controlled `from` part (see the module's Security note) and
/// stopping at the top-level `;` that starts the date.
pub(crate) fn scan_raw(raw: &str) -> RawScan {
    let toks = lex(raw);
    let has_from = top_level_words(&toks)
        .iter()
        .any(|w| w.eq_ignore_ascii_case("from"));
    let mut i = skip_from_clause(&toks);
    let mut depth = 0usize;
    let mut version: Option<String> = None;
    let mut cipher: Option<String> = None;
    let mut tls_seen = false;
    let mut with_word = None;
    let mut expect_with = false;
    let mut comment_words: Vec<&str> = Vec::new();
    let mut recent: [&str; 2] = ["", ""];
    while let Some(tok) = toks.get(i) {
        i += 1;
        match *tok {
            Tok::Open => {
                if depth == 0 {
                    comment_words.clear();
                }
                depth += 1;
                expect_with = false;
            }
            Tok::Close => {
                depth = depth.saturating_sub(1);
                // Exchange 2010: `with Microsoft SMTP Server (TLS) id …`.
                if depth == 0
                    && comment_words.len() == 1
                    && comment_words[0].eq_ignore_ascii_case("TLS")
                {
                    tls_seen = true;
                }
            }
            Tok::Semi => {
                if depth == 0 {
                    break;
                }
            }
            Tok::Word(w) => {
                if depth == 0 {
                    if expect_with {
                        with_word = Some(w.to_owned());
                        expect_with = false;
                    } else if w.eq_ignore_ascii_case("with") && with_word.is_none() {
                        expect_with = true;
                    }
                } else {
                    comment_words.push(w);
                }
                if recent[0].eq_ignore_ascii_case("google")
                    && recent[1].eq_ignore_ascii_case("transport")
                    && w.eq_ignore_ascii_case("security")
                {
                    tls_seen = true;
                }
                recent = [recent[1], w];
                let (v, c) = tls_word(w);
                if version.is_none() {
                    version = v;
                }
                if cipher.is_none() {
                    cipher = c;
                }
            }
        }
    }
    let tls = (version.is_some() || cipher.is_some() || tls_seen).then(|| HopTls {
        version,
        cipher: cipher.map(|c| clean(&c)),
    });
    RawScan {
        tls,
        with_word,
        has_from,
    }
}

/// Words outside comments, up to the top-level `;` before the date.
fn top_level_words<'a>(toks: &[Tok<'a>]) -> Vec<&'a str> {
    let mut depth = 0usize;
    let mut out = Vec::new();
    for t in toks {
        match *t {
            Tok::Open => depth += 1,
            Tok::Close => depth = depth.saturating_sub(1),
            Tok::Semi if depth == 0 => break,
            Tok::Word(w) if depth == 0 => out.push(w),
            Tok::Semi | Tok::Word(_) => {}
        }
    }
    out
}

/// Index of the first token after `from <host> [( … )]`.
fn skip_from_clause(toks: &[Tok<'_>]) -> usize {
    let mut i = 0;
    match toks.first() {
        Some(Tok::Word(w)) if w.eq_ignore_ascii_case("from") => i += 1,
        _ => return 0,
    }
    if let Some(Tok::Word(_)) = toks.get(i) {
        i += 1;
    }
    if let Some(Tok::Open) = toks.get(i) {
        let mut depth = 0usize;
        while let Some(t) = toks.get(i) {
            i += 1;
            match t {
                Tok::Open => depth += 1,
                Tok::Close => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        break;
                    }
                }
                Tok::Semi | Tok::Word(_) => {}
            }
        }
    }
    i
}

/// Version and/or cipher carried by one word: `version=TLS1_2`,
/// `cipher=…`, `TLS1.2:ECDHE-RSA-AES256-GCM-SHA384:256`, `TLSv1.3`,
/// `TLS_AES_256_GCM_SHA384`.
fn tls_word(w: &str) -> (Option<String>, Option<String>) {
    if let Some((k, v)) = w.split_once('=') {
        let k = k.to_ascii_lowercase();
        return match k.as_str() {
            "version" | "tls" | "protocol" => (normalize_version(v), None),
            "cipher" => (None, (!v.is_empty()).then(|| v.to_owned())),
            _ => (None, None),
        };
    }
    if w.contains(':') {
        let mut parts = w.split(':');
        let v = parts.next().and_then(normalize_version);
        let c = parts
            .next()
            .filter(|c| v.is_some() && is_cipher_like(c))
            .map(str::to_owned);
        return (v, c);
    }
    if let Some(v) = normalize_version(w) {
        return (Some(v), None);
    }
    if is_cipher_like(w) {
        return (None, Some(w.to_owned()));
    }
    (None, None)
}

/// `TLS1.3`, `TLSv1.3`, `TLS1_3`, `tls1.3` → `TLSv1.3`; `TLSv1`/`TLS1` →
/// `TLSv1.0`; `SSLv3` → `SSLv3`. Anything else → `None`.
pub(crate) fn normalize_version(w: &str) -> Option<String> {
    let lower = w.to_ascii_lowercase();
    let (tls, rest) = if let Some(r) = lower.strip_prefix("tlsv") {
        (true, r)
    } else if let Some(r) = lower.strip_prefix("tls") {
        (true, r)
    } else if let Some(r) = lower.strip_prefix("sslv") {
        (false, r)
    } else if let Some(r) = lower.strip_prefix("ssl") {
        (false, r)
    } else {
        return None;
    };
    let rest = rest.replace('_', ".");
    if tls {
        let minor = match rest.as_str() {
            "1" | "1.0" => "0",
            "1.1" => "1",
            "1.2" => "2",
            "1.3" => "3",
            _ => return None,
        };
        Some(format!("TLSv1.{minor}"))
    } else {
        match rest.as_str() {
            "2" | "2.0" => Some("SSLv2".to_owned()),
            "3" | "3.0" => Some("SSLv3".to_owned()),
            _ => None,
        }
    }
}

/// An IANA (`TLS_AES_128_GCM_SHA256`), OpenSSL (`ECDHE-RSA-AES256-GCM-SHA384`)
/// or GnuTLS (`ECDHE_RSA_AES_256_GCM_SHA384`) cipher-suite name.
fn is_cipher_like(w: &str) -> bool {
    const MARKERS: [&str; 11] = [
        "AES", "CHACHA20", "CAMELLIA", "DES-", "DES_", "RC4", "ARIA", "SM4", "NULL", "GCM", "CCM",
    ];
    w.len() >= 7
        && w.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && w.bytes().any(|b| b.is_ascii_digit())
        && w.bytes().any(|b| b == b'_' || b == b'-')
        && MARKERS.iter().any(|m| w.contains(m))
}

/// For cross-checks in tests: mail-parser's own view of a hop's TLS version.
#[cfg(test)]
fn mail_parser_version(v: mail_parser::TlsVersion) -> &'static str {
    use mail_parser::TlsVersion as V;
    match v {
        V::SSLv2 => "SSLv2",
        V::SSLv3 => "SSLv3",
        V::TLSv1_0 => "TLSv1.0",
        V::TLSv1_1 => "TLSv1.1",
        V::TLSv1_2 => "TLSv1.2",
        V::TLSv1_3 => "TLSv1.3",
        V::DTLSv1_0 | V::DTLSv1_2 | V::DTLSv1_3 => "DTLS",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::text::unfold;

    /// One sample per MTA style: (name, raw header value, expected TLS
    /// version and cipher, expected `with`).
    type Style = (
        &'static str,
        &'static str,
        Option<(&'static str, &'static str)>,
        &'static str,
    );

    const STYLES: &[Style] = &[
        (
            "postern",
            "from mail.example.org ([198.51.100.7])\r\n\tby mx.example.net (Postern) with ESMTPS (TLS1.3 TLS_AES_256_GCM_SHA384)\r\n\tid 01JNQ5ZK3V8R4T2M6W9XBYCDEF\r\n\tfor <bob@example.net>; Tue, 4 Mar 2025 10:00:02 +0000",
            Some(("TLSv1.3", "TLS_AES_256_GCM_SHA384")),
            "ESMTPS",
        ),
        (
            "postfix",
            "from mail.example.org (mail.example.org [198.51.100.7])\r\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\r\n\t key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256)\r\n\t(No client certificate requested)\r\n\tby mx.example.net (Postfix) with ESMTPS id 4Z6Xyz1AbcDz\r\n\tfor <bob@example.net>; Tue,  4 Mar 2025 10:00:03 +0000 (UTC)",
            Some(("TLSv1.3", "TLS_AES_256_GCM_SHA384")),
            "ESMTPS",
        ),
        (
            "postfix tls1.2 openssl name",
            "from relay.example.org (relay.example.org [198.51.100.9])\r\n\t(using TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits))\r\n\t(No client certificate requested)\r\n\tby mx.example.net (Postfix) with ESMTPS id 4Z6Xyz1AbcDz; Tue, 4 Mar 2025 10:00:03 +0000",
            Some(("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384")),
            "ESMTPS",
        ),
        (
            "exchange online",
            "from DM6PR01MB1234.namprd01.prod.example.com (2001:db8:10::5) by\r\n BN8PR01MB5678.namprd01.prod.example.com (2001:db8:10::9) with Microsoft SMTP\r\n Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id\r\n 15.20.8489.25; Tue, 4 Mar 2025 10:00:04 +0000",
            Some(("TLSv1.2", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")),
            "SMTP",
        ),
        (
            "gmail",
            "from mail.example.org (mail.example.org. [198.51.100.7])\r\n        by mx.example.com with ESMTPS id 5b1f17b1804b1-43bd2855a1esi12345f8f.123.2025.03.04.02.00.05\r\n        for <carol@example.com>\r\n        (version=TLS1_3 cipher=TLS_AES_128_GCM_SHA256 bits=128/128);\r\n        Tue, 04 Mar 2025 02:00:05 -0800 (PST)",
            Some(("TLSv1.3", "TLS_AES_128_GCM_SHA256")),
            "ESMTPS",
        ),
        (
            "exim 4.9x",
            "from [198.51.100.23] (helo=mail.example.org)\r\n\tby mx.example.net with esmtps  (TLS1.3) tls TLS_AES_256_GCM_SHA384\r\n\t(Exim 4.96)\r\n\t(envelope-from <alice@example.org>)\r\n\tid 1tpXyZ-000ABC-12\r\n\tfor bob@example.net; Tue, 04 Mar 2025 10:00:05 +0000",
            Some(("TLSv1.3", "TLS_AES_256_GCM_SHA384")),
            "ESMTPS",
        ),
        (
            "exim old openssl",
            "from mail.example.org ([198.51.100.23])\r\n\tby mx.example.net with esmtps (TLS1.2:ECDHE-RSA-AES256-GCM-SHA384:256)\r\n\t(Exim 4.89) (envelope-from <alice@example.org>) id 1abcDE-0001xY-Ab; Tue, 04 Mar 2025 10:00:05 +0000",
            Some(("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384")),
            "ESMTPS",
        ),
        (
            "exim old gnutls",
            "from mail.example.org ([198.51.100.23])\r\n\tby mx.example.net with esmtps (TLS1.2:ECDHE_RSA_AES_256_GCM_SHA384:256)\r\n\t(Exim 4.89) id 1abcDE-0001xY-Ab; Tue, 04 Mar 2025 10:00:05 +0000",
            Some(("TLSv1.2", "ECDHE_RSA_AES_256_GCM_SHA384")),
            "ESMTPS",
        ),
        (
            "sendmail",
            "from mail.example.org (mail.example.org [198.51.100.7])\r\n\tby mx.example.net (8.17.1/8.17.1) with ESMTPS id 524A05Ab012345\r\n\t(version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256 verify=NOT)\r\n\tfor <bob@example.net>; Tue, 4 Mar 2025 10:00:05 GMT",
            Some(("TLSv1.3", "TLS_AES_256_GCM_SHA384")),
            "ESMTPS",
        ),
    ];

    #[test]
    fn tls_comment_of_each_mta_style() {
        for (name, raw, want, with) in STYLES {
            let scan = scan_raw(&unfold(raw));
            let want = want.map(|(v, c)| HopTls {
                version: Some(v.to_owned()),
                cipher: Some(c.to_owned()),
            });
            assert_eq!(scan.tls, want, "{name}");
            assert!(
                scan.with_word.as_deref().is_some_and(
                    |w| w.eq_ignore_ascii_case(with) || w.eq_ignore_ascii_case("Microsoft")
                ),
                "{name}: {:?}",
                scan.with_word
            );
        }
    }

    /// The same samples through mail-parser: structure is found, and where
    /// mail-parser recognises a TLS version itself, it agrees with ours.
    #[test]
    fn styles_parse_with_mail_parser() {
        for (name, raw, want, with) in STYLES {
            let msg = format!("Received: {raw}\r\nSubject: x\r\n\r\nbody\r\n");
            let parsed = mail_parser::MessageParser::default()
                .parse_headers(msg.as_bytes())
                .unwrap();
            let header = &parsed.headers()[0];
            let (hop, ok) = hop(1, unfold(raw), &header.value);
            assert!(ok, "{name}: {hop:?}");
            assert!(hop.by.is_some(), "{name}");
            assert!(hop.time_utc.is_some(), "{name}");
            assert_eq!(hop.with.as_deref(), Some(*with), "{name}");
            assert_eq!(
                hop.tls.as_ref().and_then(|t| t.version.as_deref()),
                want.map(|w| w.0),
                "{name}"
            );
            if let Some(v) = header.value.as_received().and_then(|r| r.tls_version) {
                assert_eq!(Some(mail_parser_version(v)), want.map(|w| w.0), "{name}");
            }
        }
    }

    #[test]
    fn exchange_2010_bare_tls_and_google_transport_security() {
        let ex = scan_raw(
            "from ex1.example.com (192.0.2.10) by ex2.example.com (192.0.2.11) with Microsoft SMTP Server (TLS) id 14.3.123.3; Tue, 4 Mar 2025 10:00:00 +0100",
        );
        assert_eq!(ex.tls, Some(HopTls::default()));
        let g = scan_raw(
            "from mail-sor-f41.example.com (mail-sor-f41.example.com. [198.51.100.41]) by mx.example.com with SMTPS id a1sor for <c@example.com> (Google Transport Security); Tue, 04 Mar 2025 02:00:05 -0800 (PST)",
        );
        assert_eq!(g.tls, Some(HopTls::default()));
        assert_eq!(g.with_word.as_deref(), Some("SMTPS"));
    }

    #[test]
    fn plaintext_has_no_tls() {
        for raw in [
            "from relay.example.org (relay.example.org [198.51.100.9]) by mx.example.net (Postfix) with ESMTP id 4Z6; Tue, 4 Mar 2025 10:00:03 +0000",
            "from mail.example.org ([198.51.100.7]) by mx.example.net (Postern) with ESMTP id X for <b@example.net>; Tue, 4 Mar 2025 10:00:02 +0000",
            // Sendmail's SASL comment carries bits= but no TLS.
            "from a.example.org (a.example.org [198.51.100.7]) (authenticated bits=0) by mx.example.net (8.17.1/8.17.1) with ESMTP id 524; Tue, 4 Mar 2025 10:00:05 GMT",
        ] {
            assert_eq!(scan_raw(raw).tls, None, "{raw}");
        }
    }

    /// A peer choosing its HELO (or PTR) name must not fake TLS facts.
    #[test]
    fn helo_and_ptr_cannot_fake_tls() {
        for raw in [
            "from TLSv1.3 ([192.0.2.66]) by mx.example.net (Postern) with ESMTP id X; Tue, 4 Mar 2025 10:00:02 +0000",
            "from TLS_AES_256_GCM_SHA384 (tls1.3 [192.0.2.66]) by mx.example.net (Postfix) with ESMTP id X; Tue, 4 Mar 2025 10:00:02 +0000",
            "from x.example (helo=TLSv1.3 version=TLS1_3) by mx.example.net with esmtp id X; Tue, 4 Mar 2025 10:00:02 +0000",
        ] {
            assert_eq!(scan_raw(raw).tls, None, "{raw}");
        }
    }

    #[test]
    fn date_part_is_not_scanned() {
        let s =
            scan_raw("by mx.example.net with ESMTP id X; Tue, 4 Mar 2025 10:00:02 +0000 (TLSv1.3)");
        assert_eq!(s.tls, None);
    }

    #[test]
    fn version_spellings() {
        for (w, want) in [
            ("TLS1.3", Some("TLSv1.3")),
            ("TLSv1.2", Some("TLSv1.2")),
            ("TLS1_2", Some("TLSv1.2")),
            ("tls1.1", Some("TLSv1.1")),
            ("TLSv1", Some("TLSv1.0")),
            ("SSLv3", Some("SSLv3")),
            ("TLS", None),
            ("tls", None),
            ("TLS1.4", None),
            ("tlsfoo", None),
        ] {
            assert_eq!(normalize_version(w).as_deref(), want, "{w}");
        }
    }

    fn dt(s: &str) -> Option<OffsetDateTime> {
        let msg = format!("Date: {s}\r\n\r\n");
        let parsed = mail_parser::MessageParser::default()
            .parse_headers(msg.as_bytes())
            .unwrap();
        parsed.date().and_then(to_utc)
    }

    #[test]
    fn timezones_normalise_to_utc() {
        use time::macros::datetime;
        for (s, want) in [
            (
                "Tue, 4 Mar 2025 10:00:05 +0000",
                datetime!(2025-03-04 10:00:05 UTC),
            ),
            (
                "Tue, 4 Mar 2025 10:00:05 GMT",
                datetime!(2025-03-04 10:00:05 UTC),
            ),
            (
                "Tue, 04 Mar 2025 02:00:05 -0800 (PST)",
                datetime!(2025-03-04 10:00:05 UTC),
            ),
            (
                "Tue, 4 Mar 2025 15:30:05 +0530",
                datetime!(2025-03-04 10:00:05 UTC),
            ),
            (
                "Tue, 4 Mar 2025 11:00:05 +0100 (CET)",
                datetime!(2025-03-04 10:00:05 UTC),
            ),
            // Crossing midnight and a month end backwards and forwards.
            (
                "Fri, 28 Feb 2025 23:30:00 -0300",
                datetime!(2025-03-01 02:30:00 UTC),
            ),
            (
                "Sat, 1 Mar 2025 01:15:00 +0200",
                datetime!(2025-02-28 23:15:00 UTC),
            ),
            (
                "Tue, 4 Mar 2025 10:00:05 -0000",
                datetime!(2025-03-04 10:00:05 UTC),
            ),
        ] {
            assert_eq!(dt(s), Some(want), "{s}");
        }
    }

    #[test]
    fn impossible_dates_are_none() {
        assert_eq!(dt("Sun, 31 Feb 2025 10:00:05 +0000"), None);
        assert_eq!(dt("Tue, 4 Mar 2025 25:00:05 +0000"), None);
    }
}
