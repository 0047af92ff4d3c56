//! Mapping a log entry to the columns of its `events` row, its recipients
//! and its contribution to the posture aggregate.
//!
//! # Standards
//! Addresses are compared case-insensitively (lowercased): RFC 5321 §2.4
//! lets the local part be case-sensitive, but no real mailbox relies on it
//! and operators search the way they type.

use std::net::{IpAddr, SocketAddr};

use postern_track::{MailEvent, SessionEvent, SessionRecord, TrackRecord};

use crate::entry::LogEntry;
use crate::types::Direction;

/// The columns of one `events` row.
#[derive(Debug, Default)]
pub(crate) struct Row {
    pub ts_ms: i64,
    pub ts: String,
    pub event: &'static str,
    pub kind: &'static str,
    pub event_id: String,
    pub queue_id: Option<String>,
    pub session: Option<String>,
    pub message_id: Option<String>,
    pub sender: Option<String>,
    pub subject: Option<String>,
    pub client_ip: Option<String>,
    pub client_name: Option<String>,
    pub server_ip: Option<String>,
    pub server_name: Option<String>,
    pub listener: Option<String>,
    pub size: Option<u64>,
    pub status: Option<String>,
    pub reply: Option<String>,
    pub tls_version: Option<String>,
    pub tls_cipher: Option<String>,
    pub cause: Option<String>,
    pub rule: Option<String>,
    pub sender_group: Option<String>,
    pub policy: Option<String>,
    pub related_queue_id: Option<String>,
    pub detail: String,
    pub recipients: Vec<String>,
    pub posture: Option<PostureDelta>,
}

/// One event's contribution to the posture aggregate (flags, as the
/// aggregate's counters are).
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct PostureDelta {
    pub direction: Option<Direction>,
    pub peer: String,
    pub ip: String,
    pub tls_version: String,
    pub cipher: String,
    pub starttls_offered: bool,
    pub starttls_missing: bool,
    pub verified: bool,
    pub unverified: bool,
    pub method: &'static str,
    pub plaintext_retry: bool,
}

/// Milliseconds since the epoch of an RFC 3339 time; `None` if it does not parse.
pub(crate) fn ts_ms(ts: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Milliseconds since the epoch.
pub(crate) fn ms(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// A Message-ID without its angle brackets and surrounding space.
pub(crate) fn bare_message_id(id: &str) -> String {
    let id = id.trim();
    id.strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(id)
        .trim()
        .to_owned()
}

/// The domain of an address, labels reversed and lowercased
/// (`a@Mail.Example.COM` → `com.example.mail`): one index range covers a
/// domain and its subdomains.
pub(crate) fn rdomain_of_address(address: &str) -> String {
    let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
    rdomain(domain)
}

/// A domain, labels reversed and lowercased; a leading `@` or `.` is ignored.
pub(crate) fn rdomain(domain: &str) -> String {
    let d = domain
        .trim()
        .trim_start_matches('@')
        .trim_start_matches('.')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let mut labels: Vec<&str> = d.split('.').collect();
    labels.reverse();
    labels.join(".")
}

/// The IP of `ip:port`, `[v6]:port` or a bare address.
pub(crate) fn ip_of(peer: &str) -> Option<IpAddr> {
    let peer = peer.trim();
    if peer.is_empty() {
        return None;
    }
    peer.parse::<SocketAddr>()
        .map(|s| s.ip())
        .or_else(|_| peer.trim_matches(['[', ']']).parse::<IpAddr>())
        .ok()
        .map(|ip| ip.to_canonical())
}

/// The 16-byte key of an IP (IPv4 mapped into IPv6), ordered like the
/// addresses: a CIDR block is one range.
pub(crate) fn ip_key(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// `TLSv1.3 TLS13_AES_…` → (version, cipher).
fn split_tls(short: &str) -> (String, String) {
    let mut it = short.splitn(2, ' ');
    let version = it.next().unwrap_or_default().to_owned();
    let cipher = it.next().unwrap_or_default().trim().to_owned();
    (version, cipher)
}

/// The verification method of an attempt from its TLS policy level
/// (`postern_tlspolicy::Level::as_str`): DANE and MTA-STS name themselves;
/// otherwise a verified certificate was checked by PKIX.
pub(crate) fn verification_method(policy: &str, verified: bool) -> &'static str {
    if policy.starts_with("dane") {
        "dane"
    } else if policy.starts_with("mta-sts") {
        "mta-sts"
    } else if verified {
        "pkix"
    } else {
        "none"
    }
}

fn some(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn lower_addr(s: &str) -> String {
    s.trim().to_ascii_lowercase()
}

/// The row of one entry.
pub(crate) fn row(entry: &LogEntry) -> Row {
    match entry {
        LogEntry::Mail(r) => mail_row(r),
        LogEntry::Session(r) => session_row(r),
    }
}

#[allow(clippy::many_single_char_names)] // one short name per event kind
fn mail_row(r: &TrackRecord) -> Row {
    let mut row = Row {
        ts_ms: ts_ms(&r.ts).unwrap_or(0),
        ts: r.ts.clone(),
        event: r.event.name(),
        kind: "mail",
        event_id: r.event_id.0.clone(),
        queue_id: Some(r.queue_id.to_string()),
        ..Row::default()
    };
    match &r.event {
        MailEvent::Received(x) => {
            row.sender = Some(lower_addr(&x.sender));
            row.recipients = x.rcpts.iter().map(|a| lower_addr(a)).collect();
            row.size = Some(x.size);
            row.listener = some(&x.listener);
            let ip = ip_of(&x.peer);
            row.client_ip = ip.map(|i| i.to_string()).or_else(|| some(&x.peer));
            row.client_name = x.client_name.clone().or_else(|| some(&x.helo));
            row.message_id = x.message_id.as_deref().map(bare_message_id);
            row.subject.clone_from(&x.subject);
            row.sender_group.clone_from(&x.sender_group);
            row.policy.clone_from(&x.policy);
            let (version, cipher) = match (&x.tls_params, &x.tls) {
                (Some(p), _) => (p.version.clone(), p.cipher.clone()),
                (None, Some(s)) => split_tls(s),
                (None, None) => ("none".to_owned(), String::new()),
            };
            if ip.is_some() {
                row.tls_version = Some(version.clone());
                row.tls_cipher = some(&cipher);
            }
            let mut detail = Vec::new();
            if let Some(u) = &x.auth_user {
                detail.push(format!("auth {u}"));
            }
            if let Some(g) = &x.sender_group {
                detail.push(format!("group {g}"));
            }
            if let Some(p) = &x.policy {
                detail.push(format!("policy {p}"));
            }
            if let Some(h) = &x.held {
                detail.push(format!("held: {h}"));
            }
            if let Some(a) = &x.authentication {
                detail.push(a.clone());
            }
            row.detail = detail.join("; ");
            if let Some(ip) = ip {
                // Only a forward-confirmed name stands for the peer: a HELO
                // is whatever the client claims (`HELO gmail.com`), so an
                // unconfirmed client is shown by its address, HELO beside.
                let peer = match &x.client_name {
                    Some(name) if !name.trim().is_empty() => name.trim().to_ascii_lowercase(),
                    _ => {
                        let helo: String = x
                            .helo
                            .trim()
                            .chars()
                            .filter(|c| !c.is_control())
                            .take(64)
                            .collect();
                        if helo.is_empty() {
                            format!("[{ip}]")
                        } else {
                            format!("[{ip}] (HELO {})", helo.to_ascii_lowercase())
                        }
                    }
                };
                row.posture = Some(PostureDelta {
                    direction: Some(Direction::Inbound),
                    peer,
                    ip: ip.to_string(),
                    starttls_offered: version != "none",
                    starttls_missing: version == "none",
                    tls_version: version,
                    cipher,
                    method: "none",
                    ..PostureDelta::default()
                });
            }
        }
        MailEvent::Queued(x) => {
            row.sender = Some(lower_addr(&x.sender));
            row.size = Some(x.size);
            row.detail = format!("origin {}, {} recipient(s)", x.origin, x.rcpt_count);
        }
        MailEvent::Attempt(a) => {
            row.recipients = a.rcpts.iter().map(|s| lower_addr(s)).collect();
            let ip = ip_of(&a.ip);
            row.server_ip = ip.map(|i| i.to_string());
            row.server_name = some(&a.mx);
            row.reply.clone_from(&a.reply);
            row.policy = Some(a.policy.clone());
            row.cause = a.cause.as_ref().map(|c| c.id.clone());
            let verified = a.tls.as_ref().is_some_and(|t| t.verified);
            let method = verification_method(&a.policy, verified);
            match (&a.tls, ip) {
                (Some(t), _) => {
                    row.tls_version = Some(t.version.clone());
                    row.tls_cipher = some(&t.cipher);
                }
                (None, Some(_)) => row.tls_version = Some("none".to_owned()),
                (None, None) => {}
            }
            let mut detail = vec![
                format!("#{} {} to {}", a.attempt, a.outcome, a.destination),
                format!("policy {} ({})", a.policy, a.policy_reason),
            ];
            if a.downgraded {
                detail.push("plaintext retry".into());
            }
            if let Some(c) = &a.cause {
                detail.push(c.id.clone());
            }
            row.detail = detail.join("; ");
            if let Some(ip) = ip {
                let tls = a.tls.as_ref();
                row.posture = Some(PostureDelta {
                    direction: Some(Direction::Outbound),
                    peer: a.destination.to_ascii_lowercase(),
                    ip: ip.to_string(),
                    tls_version: tls.map_or_else(|| "none".to_owned(), |t| t.version.clone()),
                    cipher: tls.map(|t| t.cipher.clone()).unwrap_or_default(),
                    starttls_offered: a.starttls_offered == Some(true),
                    starttls_missing: a.starttls_offered == Some(false),
                    verified: tls.is_some_and(|t| t.verified),
                    unverified: tls.is_some_and(|t| !t.verified),
                    method,
                    plaintext_retry: a.downgraded,
                });
            }
        }
        MailEvent::Delivered(o) | MailEvent::Deferred(o) | MailEvent::Bounced(o) => {
            row.recipients = vec![lower_addr(&o.rcpt)];
            let ip = ip_of(&o.ip);
            row.server_ip = ip.map(|i| i.to_string());
            row.server_name = some(&o.mx);
            row.status = some(&o.status);
            row.reply.clone_from(&o.reply);
            row.cause = o.cause.as_ref().map(|c| c.id.clone());
            match (&o.tls, ip) {
                (Some(t), _) => {
                    let (v, c) = split_tls(t);
                    row.tls_version = Some(v);
                    row.tls_cipher = some(&c);
                }
                (None, Some(_)) => row.tls_version = Some("none".to_owned()),
                (None, None) => {}
            }
            let mut detail = vec![format!("{} attempt(s)", o.attempts)];
            if let Some(c) = &o.cause {
                detail.push(c.id.clone());
            }
            if let Some(n) = &o.next_attempt {
                detail.push(format!("next {n}"));
            }
            row.detail = detail.join("; ");
        }
        MailEvent::DsnSent(d) => {
            row.recipients = d.rcpts.iter().map(|s| lower_addr(s)).collect();
            row.related_queue_id = d.dsn_queue_id.map(|q| q.to_string());
            row.detail = match (&d.dsn_queue_id, &d.suppressed) {
                (_, Some(why)) => format!("{} DSN to <{}> suppressed: {why}", d.kind, d.to),
                (Some(q), None) => format!("{} DSN to <{}> as {q}", d.kind, d.to),
                (None, None) => format!("{} DSN to <{}>", d.kind, d.to),
            };
        }
        MailEvent::Expired(x) => {
            row.recipients = x.rcpts.iter().map(|s| lower_addr(s)).collect();
            row.detail = format!("age {}s of {}s", x.age_secs, x.lifetime_secs);
        }
        MailEvent::Badmail(x) => {
            row.detail = format!("{} ({})", x.reason, x.path);
        }
        MailEvent::Held(x) | MailEvent::Released(x) | MailEvent::Deleted(x) => {
            row.recipients = x.rcpts.iter().map(|s| lower_addr(s)).collect();
            row.detail = if x.by.is_empty() {
                format!("via {}", x.via)
            } else {
                format!("via {} by {}", x.via, x.by)
            };
        }
        MailEvent::Filtered(f) => {
            let mut parts: Vec<String> = f
                .decisions
                .iter()
                .map(|d| {
                    if d.action.is_empty() {
                        format!("{}: {}", d.by, d.verdict)
                    } else {
                        format!("{}: {} → {}", d.by, d.verdict, d.action)
                    }
                })
                .collect();
            if f.require_tls {
                parts.push("require-tls".into());
            }
            row.detail = parts.join("; ");
        }
        MailEvent::Quarantined(q) => {
            row.detail = format!("quarantine {}: {}", q.quarantine, q.reason);
        }
    }
    row
}

fn session_row(r: &SessionRecord) -> Row {
    let d = match &r.event {
        SessionEvent::Rejected(d)
        | SessionEvent::Deferred(d)
        | SessionEvent::Throttled(d)
        | SessionEvent::Greylisted(d)
        | SessionEvent::Dropped(d) => d,
    };
    let ip = ip_of(&d.client);
    let mut detail = vec![format!("{} at {}", d.rule, d.stage)];
    if let Some(g) = &d.group {
        detail.push(format!("group {g}"));
    }
    if let Some(p) = &d.policy {
        detail.push(format!("policy {p}"));
    }
    Row {
        ts_ms: ts_ms(&r.ts).unwrap_or(0),
        ts: r.ts.clone(),
        event: r.event.name(),
        kind: "session",
        event_id: r.event_id.clone(),
        session: Some(r.session.clone()),
        sender: d.sender.as_deref().map(lower_addr),
        recipients: d.recipient.iter().map(|s| lower_addr(s)).collect(),
        client_ip: ip.map(|i| i.to_string()).or_else(|| some(&d.client)),
        listener: some(&d.listener),
        reply: some(&d.reply),
        status: status_of_reply(&d.reply),
        rule: some(&d.rule),
        sender_group: d.group.clone(),
        policy: d.policy.clone(),
        detail: detail.join("; "),
        ..Row::default()
    }
}

/// The RFC 3463 status in a reply line (`452 4.5.3 …` → `4.5.3`).
fn status_of_reply(reply: &str) -> Option<String> {
    let word = reply.split_whitespace().nth(1)?;
    let parts: Vec<&str> = word.split('.').collect();
    (parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit())))
    .then(|| word.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(rdomain_of_address("A@Mail.Example.COM"), "com.example.mail");
        assert_eq!(rdomain("@example.com"), "com.example");
        assert_eq!(bare_message_id(" <a@b> "), "a@b");
        assert_eq!(
            ip_of("[2001:db8::1]:25").map(|i| i.to_string()),
            Some("2001:db8::1".into())
        );
        assert_eq!(
            ip_of("192.0.2.7:40000").map(|i| i.to_string()),
            Some("192.0.2.7".into())
        );
        assert_eq!(
            ip_of("198.51.100.7").map(|i| i.to_string()),
            Some("198.51.100.7".into())
        );
        assert_eq!(status_of_reply("452 4.5.3 Too many"), Some("4.5.3".into()));
        assert_eq!(status_of_reply("550 no"), None);
        assert_eq!(verification_method("dane", true), "dane");
        assert_eq!(verification_method("mta-sts", false), "mta-sts");
        assert_eq!(verification_method("verify", true), "pkix");
        assert_eq!(verification_method("opportunistic", false), "none");
        assert_eq!(ts_ms("1970-01-01T00:00:01.5Z"), Some(1500));
    }
}
