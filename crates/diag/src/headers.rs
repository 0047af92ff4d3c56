//! Header analysis (`postern headers analyze`): what an admin reads in a
//! message's headers, done for them. The `Received:` chain becomes a hop table
//! (from → by, protocol and TLS facts, time in UTC, delay per hop, total);
//! `Authentication-Results:` / `Received-SPF:` become SPF/DKIM/DMARC rows
//! (`ARC-Authentication-Results:` copies are left out); spam-filter headers become one-line verdicts; and anomalies are flagged:
//! clock skew, negative delays, long delays, hops without TLS, missing dates,
//! unparsable `Received:` headers.
//!
//! It is not a validator: it does not check DKIM signatures or SPF records
//! (that needs DNS and the body), and it never fails — whatever cannot be
//! read becomes an [`Anomaly`].
//!
//! Layout: [`received`] (one header → one [`Hop`], TLS comment styles of
//! Postern, Postfix, Exchange, Gmail, Exim, Sendmail), [`auth`] (RFC 8601),
//! [`spam`] (SpamAssassin, Rspamd, Microsoft EOP), [`render`] (the text
//! report), [`text`] (unfolding and making text safe to print).
//!
//! Timing model: hop 1 is the oldest (bottom-most) `Received:`. A hop's delay
//! is measured from the previous known timestamp: the hop before it, or, for
//! the first hop with a date, the `Date:` header. The total runs from `Date:`
//! (or the first hop when there is no `Date:`) to the last hop. The final
//! (top-most) hop is the reference clock for skew: it is normally your own
//! server.
//!
//! # Security
//! The whole input is untrusted, and much of it is written by whoever sent the
//! message: any `Received:` below your own server's, every
//! `Authentication-Results:` not carrying your own authserv-id
//! (RFC 8601 §5), every spam header. The report says what each header claims.
//! All text taken from the message is stripped of control characters and
//! bidi overrides before it is stored or printed ([`text::clean`]), so a
//! header cannot inject terminal escapes into an operator's screen. Parsing
//! is linear in the input; nothing is executed, fetched or resolved.
//!
//! # Standards
//! RFC 5321 §4.4 (trace fields), RFC 5322 §2.2.3 (folding), §3.3 (dates and
//! zones), §3.6.7 (trace fields order: newest first), RFC 3848 and RFC 6531
//! §3.7.3 (`with` keywords), RFC 8601 (Authentication-Results), RFC 7208 §9.1
//! (Received-SPF).

mod auth;
mod received;
mod render;
mod spam;
mod text;

use std::fmt;
use std::net::IpAddr;

use mail_parser::{HeaderName, MessageParser};
use serde::{Serialize, Serializer};
use time::{Duration, OffsetDateTime};

pub use render::render_text;

/// A hop is "late" above this delay: longer than a greylisting retry or a
/// normal queue run.
pub const LONG_DELAY: Duration = Duration::minutes(10);

/// Clocks may disagree by this much before it is called skew.
pub const SKEW_TOLERANCE: Duration = Duration::seconds(60);

/// Everything learnt from one message's headers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Analysis {
    /// The `Received:` chain, oldest first (`hops[0].index == 1`).
    pub hops: Vec<Hop>,
    /// From `Date:` (or the first hop) to the last hop with a timestamp.
    #[serde(rename = "total_delay_seconds", serialize_with = "ser_duration")]
    pub total_delay: Option<Duration>,
    /// `Authentication-Results:` and `Received-SPF:` rows, in header order
    /// (top-most, i.e. newest, first).
    pub auth_results: Vec<AuthResult>,
    /// Spam-filter verdicts, in header order.
    pub spam: Vec<SpamVerdict>,
    /// What looks wrong, by hop.
    pub anomalies: Vec<Anomaly>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    /// The `Date:` header in UTC.
    #[serde(serialize_with = "ser_time")]
    pub date_utc: Option<OffsetDateTime>,
}

/// One `Received:` header: one server taking the message from another.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Hop {
    /// 1 = first hop (oldest, bottom-most `Received:`).
    pub index: usize,
    /// The `from` name as written (usually the peer's HELO), or an IP literal.
    pub from: Option<String>,
    /// The peer's address as the receiving server saw it.
    pub from_ip: Option<IpAddr>,
    /// The reverse-DNS name the receiving server recorded (Postfix, Sendmail).
    pub from_rdns: Option<String>,
    /// The HELO name when recorded apart from `from` (Exim `helo=`).
    pub helo: Option<String>,
    /// The server that added this header.
    pub by: Option<String>,
    /// Protocol keyword: ESMTPS, ESMTPSA, ESMTP, SMTP, LMTP, HTTP, local, MAPI…
    pub with: Option<String>,
    /// `Some` when the receiving server recorded TLS (by an `…S` protocol
    /// keyword or a TLS comment); its fields are `None` when it did not say
    /// which version or cipher.
    pub tls: Option<HopTls>,
    /// The receiving server's queue id.
    pub id: Option<String>,
    /// The envelope recipient, when the server names one (`for` in JSON).
    #[serde(rename = "for")]
    pub for_: Option<String>,
    #[serde(serialize_with = "ser_time")]
    pub time_utc: Option<OffsetDateTime>,
    /// Since the previous known timestamp (see the module docs).
    #[serde(rename = "delay_seconds", serialize_with = "ser_duration")]
    pub delay: Option<Duration>,
    /// The header value, unfolded and cleaned.
    pub raw: String,
}

/// TLS facts of one hop, normalised: version as `TLSv1.3`, cipher as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HopTls {
    pub version: Option<String>,
    pub cipher: Option<String>,
}

/// One result of one method (RFC 8601 `resinfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthResult {
    /// `Authentication-Results` or `Received-SPF`.
    pub header: String,
    /// Who evaluated it; empty when the header did not say (Office 365).
    pub authserv_id: String,
    /// spf | dkim | dmarc | arc | compauth | …, lower case.
    pub method: String,
    /// pass | fail | softfail | neutral | none | temperror | permerror | …
    pub result: String,
    /// `smtp.mailfrom=…`, `header.d=…`, `reason=…`, in order.
    pub properties: Vec<(String, String)>,
}

/// What one spam-filter header says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpamVerdict {
    pub header: String,
    /// e.g. `SCL 5 (spam)`, `Yes, score=7.1 required=5.0 (spam); tests: …`.
    pub verdict: String,
}

/// Something in the headers an admin should look at. `hop` is a hop index;
/// 0 stands for the `Date:` header (the sender's own clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Anomaly {
    /// The hop's timestamp is later than the final hop's by `seconds`.
    ClockSkew { hop: usize, seconds: i64 },
    /// The hop is stamped before the previous timestamp (`seconds` < 0).
    NegativeDelay { hop: usize, seconds: i64 },
    /// A network hop with no TLS recorded.
    NoTls { hop: usize },
    /// Neither `from` nor `by` could be read.
    UnparsableReceived { hop: usize, raw: String },
    /// No valid date after the `;`.
    MissingDate { hop: usize },
    /// The hop's delay exceeds [`LONG_DELAY`].
    LongDelay { hop: usize, seconds: i64 },
}

impl Anomaly {
    /// The hop the anomaly is about (0 = the `Date:` header).
    pub fn hop(&self) -> usize {
        match self {
            Anomaly::ClockSkew { hop, .. }
            | Anomaly::NegativeDelay { hop, .. }
            | Anomaly::NoTls { hop }
            | Anomaly::UnparsableReceived { hop, .. }
            | Anomaly::MissingDate { hop }
            | Anomaly::LongDelay { hop, .. } => *hop,
        }
    }
}

/// When a clock difference is close to a whole or half hour, the likely cause
/// is a server writing local time with the wrong UTC offset.
fn timezone_hint(seconds: i64) -> String {
    let a = seconds.unsigned_abs();
    if a < 1800 {
        return String::new();
    }
    let half_hours = (a + 900) / 1800;
    if a.abs_diff(half_hours * 1800) > 120 {
        return String::new();
    }
    let hours = if half_hours.is_multiple_of(2) {
        format!("{}h", half_hours / 2)
    } else {
        format!("{}h30m", half_hours / 2)
    };
    format!(" (about {hours}: looks like local time stamped with the wrong UTC offset)")
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use text::fmt_secs;
        match self {
            Anomaly::ClockSkew { hop: 0, seconds } => write!(
                f,
                "Date: header: {} ahead of the final hop's clock: the sender's clock runs fast{}",
                fmt_secs(*seconds),
                timezone_hint(*seconds)
            ),
            Anomaly::ClockSkew { hop, seconds } => write!(
                f,
                "hop {hop}: clock skew: stamped {} later than the final hop: this server's clock runs fast (or the final one's slow){}",
                fmt_secs(*seconds),
                timezone_hint(*seconds)
            ),
            Anomaly::NegativeDelay { hop, seconds } => write!(
                f,
                "hop {hop}: negative delay {}: stamped earlier than {}: one of the two clocks is wrong{}",
                fmt_secs(*seconds),
                if *hop == 1 {
                    "the Date: header"
                } else {
                    "the hop before it"
                },
                timezone_hint(*seconds)
            ),
            Anomaly::NoTls { hop } => write!(
                f,
                "hop {hop}: no TLS: received over the network in plaintext (no ESMTPS or TLS facts recorded)"
            ),
            Anomaly::UnparsableReceived { hop, raw } => write!(
                f,
                "hop {hop}: unparsable Received header (no from or by): {}",
                text::truncate(raw, 80)
            ),
            Anomaly::MissingDate { hop } => write!(
                f,
                "hop {hop}: no valid date: delays around this hop are measured past it"
            ),
            Anomaly::LongDelay { hop, seconds } => write!(
                f,
                "hop {hop}: long delay {} (over {}): the message waited at the previous hop (queue backlog, greylisting or retries)",
                fmt_secs(*seconds),
                text::fmt_secs(LONG_DELAY.whole_seconds())
            ),
        }
    }
}

#[allow(clippy::ref_option)] // serde's serialize_with passes `&Option<T>`.
fn ser_time<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => {
            let text = t
                .format(&time::format_description::well_known::Rfc3339)
                .map_err(serde::ser::Error::custom)?;
            s.serialize_some(&text)
        }
        None => s.serialize_none(),
    }
}

#[allow(clippy::ref_option)] // serde's serialize_with passes `&Option<T>`.
fn ser_duration<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.whole_seconds()),
        None => s.serialize_none(),
    }
}

/// Analyzes a message (or just its header block). Never fails: a missing or
/// broken part shows up as an [`Anomaly`] or an empty field.
pub fn analyze(message: &[u8]) -> Analysis {
    let mut a = Analysis::default();
    let Some(msg) = MessageParser::default().parse_headers(message) else {
        return a;
    };
    a.subject = msg.subject().map(text::clean);
    a.message_id = msg.message_id().map(text::clean);
    a.date_utc = msg.date().and_then(received::to_utc);

    let mut received_headers = Vec::new();
    for h in msg.headers() {
        let raw = message
            .get(h.offset_start as usize..h.offset_end as usize)
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        let value = text::unfold(&raw);
        let name = h.name.as_str();
        if h.name == HeaderName::Received {
            received_headers.push((value, &h.value));
        } else if name.eq_ignore_ascii_case("Authentication-Results") {
            a.auth_results
                .extend(auth::parse_authentication_results(&value));
        } else if name.eq_ignore_ascii_case("Received-SPF") {
            a.auth_results.extend(auth::parse_received_spf(&value));
        } else if let Some(v) = spam::verdict(name, &value) {
            a.spam.push(v);
        }
    }

    // RFC 5322 §3.6.7: trace fields are prepended, so the newest is on top.
    let mut parsed = Vec::with_capacity(received_headers.len());
    for (i, (raw, value)) in received_headers.into_iter().rev().enumerate() {
        let (hop, ok) = received::hop(i + 1, raw, value);
        a.hops.push(hop);
        parsed.push(ok);
    }
    time_hops(&mut a);
    a.anomalies = anomalies(&a, &parsed);
    a
}

/// Fills in per-hop delays and the total.
fn time_hops(a: &mut Analysis) {
    let mut prev = a.date_utc;
    for hop in &mut a.hops {
        if let Some(t) = hop.time_utc {
            hop.delay = prev.map(|p| t - p);
            prev = Some(t);
        }
    }
    let mut timed = a
        .hops
        .iter()
        .filter_map(|h| h.time_utc.map(|t| (h.index, t)));
    let first = timed.next();
    let last = timed.next_back().or(first);
    a.total_delay = match (a.date_utc, first, last) {
        (Some(d), _, Some((_, l))) => Some(l - d),
        (None, Some((fi, f)), Some((li, l))) if fi != li => Some(l - f),
        _ => None,
    };
}

fn anomalies(a: &Analysis, parsed: &[bool]) -> Vec<Anomaly> {
    let mut out = Vec::new();
    let last = a
        .hops
        .iter()
        .rev()
        .find_map(|h| h.time_utc.map(|t| (h.index, t)));
    if let (Some(d), Some((_, t_final))) = (a.date_utc, last) {
        let ahead = d - t_final;
        if ahead > SKEW_TOLERANCE {
            out.push(Anomaly::ClockSkew {
                hop: 0,
                seconds: ahead.whole_seconds(),
            });
        }
    }
    for (hop, ok) in a.hops.iter().zip(parsed) {
        let n = hop.index;
        if !ok {
            out.push(Anomaly::UnparsableReceived {
                hop: n,
                raw: hop.raw.clone(),
            });
            continue;
        }
        let mut skewed = false;
        match (hop.time_utc, last) {
            (None, _) => out.push(Anomaly::MissingDate { hop: n }),
            (Some(t), Some((final_index, t_final))) if n < final_index => {
                let ahead = t - t_final;
                if ahead > SKEW_TOLERANCE {
                    skewed = true;
                    out.push(Anomaly::ClockSkew {
                        hop: n,
                        seconds: ahead.whole_seconds(),
                    });
                }
            }
            _ => {}
        }
        if let Some(d) = hop.delay {
            if d.is_negative() {
                out.push(Anomaly::NegativeDelay {
                    hop: n,
                    seconds: d.whole_seconds(),
                });
            } else if d > LONG_DELAY && !skewed {
                // A hop whose clock runs fast shows a long delay that is not one.
                out.push(Anomaly::LongDelay {
                    hop: n,
                    seconds: d.whole_seconds(),
                });
            }
        }
        if hop.tls.is_none() && !received::is_local(hop) {
            out.push(Anomaly::NoTls { hop: n });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(received: &[&str], extra: &str) -> Vec<u8> {
        let mut m = String::new();
        for r in received {
            m.push_str("Received: ");
            m.push_str(r);
            m.push_str("\r\n");
        }
        m.push_str(extra);
        m.push_str("Subject: t\r\n\r\nbody\r\n");
        m.into_bytes()
    }

    const H1: &str = "from a.example.org (a.example.org [198.51.100.7]) (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)) by b.example.net (Postfix) with ESMTPS id 1; Tue, 4 Mar 2025 10:00:00 +0000";

    #[test]
    fn order_delays_and_total() {
        let h2 = "from b.example.net ([198.51.100.8]) by c.example.net (Postern) with ESMTPS (TLS1.3 TLS_AES_256_GCM_SHA384) id 2; Tue, 4 Mar 2025 11:00:03 +0100";
        let a = analyze(&msg(&[h2, H1], "Date: Tue, 4 Mar 2025 09:59:58 +0000\r\n"));
        assert_eq!(a.hops.len(), 2);
        assert_eq!(a.hops[0].by.as_deref(), Some("b.example.net"));
        assert_eq!(a.hops[0].delay, Some(Duration::seconds(2)));
        assert_eq!(a.hops[1].delay, Some(Duration::seconds(3)));
        assert_eq!(a.total_delay, Some(Duration::seconds(5)));
        assert!(a.anomalies.is_empty(), "{:?}", a.anomalies);
    }

    #[test]
    fn total_without_date_header() {
        let h2 = "from b.example.net ([198.51.100.8]) by c.example.net (Postern) with ESMTPS id 2; Tue, 4 Mar 2025 10:00:07 +0000";
        let a = analyze(&msg(&[h2, H1], ""));
        assert_eq!(a.hops[0].delay, None);
        assert_eq!(a.total_delay, Some(Duration::seconds(7)));
        let one = analyze(&msg(&[H1], ""));
        assert_eq!(one.total_delay, None);
    }

    #[test]
    fn skew_negative_long_and_plaintext() {
        let h2 = "from b.example.net (b.example.net [198.51.100.8]) by c.example.net (Postfix) with ESMTP id 2; Tue, 4 Mar 2025 11:00:04 +0000";
        let h3 = "from c.example.net ([198.51.100.9]) by d.example.net (Postern) with ESMTPS (TLS1.3 TLS_AES_256_GCM_SHA384) id 3; Tue, 4 Mar 2025 10:00:09 +0000";
        let a = analyze(&msg(&[h3, h2, H1], ""));
        assert_eq!(
            a.anomalies,
            [
                Anomaly::ClockSkew {
                    hop: 2,
                    seconds: 3595
                },
                Anomaly::NoTls { hop: 2 },
                Anomaly::NegativeDelay {
                    hop: 3,
                    seconds: -3595
                },
            ]
        );
        assert!(
            a.anomalies[0].to_string().contains("about 1h:"),
            "{}",
            a.anomalies[0]
        );
    }

    #[test]
    fn long_delay_and_fast_sender_clock() {
        let h2 = "from b.example.net ([198.51.100.8]) by c.example.net (Postern) with ESMTPS id 2; Tue, 4 Mar 2025 10:25:00 +0000";
        let a = analyze(&msg(&[h2, H1], "Date: Tue, 4 Mar 2025 10:30:00 +0000\r\n"));
        assert_eq!(
            a.anomalies,
            [
                Anomaly::ClockSkew {
                    hop: 0,
                    seconds: 300
                },
                Anomaly::NegativeDelay {
                    hop: 1,
                    seconds: -1800
                },
                Anomaly::LongDelay {
                    hop: 2,
                    seconds: 1500
                },
            ]
        );
    }

    #[test]
    fn unparsable_and_missing_date() {
        let a = analyze(&msg(
            &[
                "from b.example.net ([198.51.100.8]) by c.example.net with ESMTPS id 2",
                "this is ]] not ;; a trace header",
            ],
            "",
        ));
        assert!(
            matches!(
                a.anomalies.as_slice(),
                [
                    Anomaly::UnparsableReceived { hop: 1, .. },
                    Anomaly::MissingDate { hop: 2 }
                ]
            ),
            "{:?}",
            a.anomalies
        );
    }

    #[test]
    fn local_hops_are_not_plaintext() {
        for h in [
            "by mail.example.org (Postfix, from userid 1000) id 4Z6; Tue, 4 Mar 2025 10:00:00 +0000",
            "from localhost (localhost [127.0.0.1]) by mail.example.org (Postfix) with ESMTP id 4Z6; Tue, 4 Mar 2025 10:00:00 +0000",
            "from mbx.example.com ([::1]) by mbx.example.com ([::1]) with mapi id 15.20.1; Tue, 4 Mar 2025 10:00:00 +0000",
        ] {
            let a = analyze(&msg(&[h], ""));
            assert!(a.anomalies.is_empty(), "{h}: {:?}", a.anomalies);
        }
    }

    #[test]
    fn never_fails_on_garbage() {
        for input in [
            &b""[..],
            b"\r\n\r\n",
            b"\xff\xfe\x00",
            b"Received:\r\n\r\n",
            b"Received: ;;;((((\r\n",
        ] {
            let a = analyze(input);
            let _ = render_text(&a);
            let _ = serde_json::to_string(&a).unwrap();
        }
    }

    #[test]
    fn json_has_units_and_rfc3339() {
        let a = analyze(&msg(&[H1], "Date: Tue, 4 Mar 2025 09:59:58 +0000\r\n"));
        let v: serde_json::Value = serde_json::to_value(&a).unwrap();
        assert_eq!(v["hops"][0]["time_utc"], "2025-03-04T10:00:00Z");
        assert_eq!(v["hops"][0]["delay_seconds"], 2);
        assert_eq!(v["total_delay_seconds"], 2);
        assert_eq!(v["hops"][0]["tls"]["version"], "TLSv1.3");
        let anomaly = serde_json::to_value(Anomaly::NoTls { hop: 3 }).unwrap();
        assert_eq!(anomaly, serde_json::json!({"kind": "no_tls", "hop": 3}));
    }

    #[test]
    fn escapes_never_reach_the_output() {
        let a = analyze(
            b"Received: from evil\x1b[2J.example ([192.0.2.66]) by mx.example.net with ESMTP id 1; Tue, 4 Mar 2025 10:00:00 +0000\r\nSubject: hi\x1b]0;pwned\x07\r\n\r\n",
        );
        let out = render_text(&a);
        assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out}");
    }
}
