//! Records built with the real `postern_track` types, as the server logs them.
#![allow(dead_code, clippy::unwrap_used)]

use postern_spool::{ContentDecision, QueueId, ReceiptTls};
use postern_track::{
    Attempt, CauseInfo, DsnSent, EventId, Filtered, MailEvent, PeerCert, Quarantined, Queued,
    RcptOutcome, Received, SessionEvent, SessionRecord, SmtpDecision, TlsOutcome, TrackRecord,
};
use postern_trackdb::LogEntry;

pub mod tail;

pub fn rec(q: QueueId, ts: &str, event: MailEvent) -> LogEntry {
    LogEntry::Mail(TrackRecord {
        ts: ts.to_owned(),
        event_id: EventId::next(&q),
        queue_id: q,
        event,
    })
}

pub fn session(id: &str, n: u32, ts: &str, event: SessionEvent) -> LogEntry {
    let mut r = SessionRecord::new(id, n, event);
    ts.clone_into(&mut r.ts);
    LogEntry::Session(r)
}

pub fn t(s: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
}

pub fn received(sender: &str, rcpts: &[&str], peer: &str, tls: Option<(&str, &str)>) -> Received {
    Received {
        sender: sender.into(),
        rcpts: rcpts.iter().map(|s| (*s).to_owned()).collect(),
        size: 2048,
        listener: "mx".into(),
        peer: peer.into(),
        helo: "client.example".into(),
        tls: tls.map(|(v, c)| format!("{v} {c}")),
        tls_params: tls.map(|(v, c)| ReceiptTls {
            version: v.into(),
            cipher: c.into(),
            group: Some("X25519MLKEM768".into()),
            sni: Some("mx.example.com".into()),
        }),
        ..Received::default()
    }
}

pub fn cert(name: &str) -> PeerCert {
    PeerCert {
        subject: format!("CN={name}"),
        sans: vec![name.to_owned()],
        fingerprint_sha256: "ab".repeat(32),
        not_after: "2027-06-01T00:00:00Z".into(),
        issuer: "CN=Test CA".into(),
    }
}

#[allow(clippy::too_many_arguments)]
pub fn attempt(
    n: u32,
    rcpts: &[&str],
    dest: &str,
    mx: &str,
    ip: &str,
    policy: &str,
    starttls: Option<bool>,
    tls: Option<(&str, bool)>,
    outcome: &str,
) -> MailEvent {
    MailEvent::Attempt(Box::new(Attempt {
        rcpts: rcpts.iter().map(|s| (*s).to_owned()).collect(),
        destination: dest.into(),
        route: "mx".into(),
        mx: mx.into(),
        ip: ip.into(),
        policy: policy.into(),
        policy_reason: "default".into(),
        starttls_offered: starttls,
        tls: tls.map(|(v, verified)| TlsOutcome {
            version: v.into(),
            cipher: "TLS_AES_256_GCM_SHA384".into(),
            verified,
            group: Some("X25519".into()),
            verification: if verified {
                "ok".into()
            } else {
                "unknown issuer".into()
            },
            peer_cert: Some(cert(mx)),
        }),
        downgraded: false,
        outcome: outcome.into(),
        reply: Some(match outcome {
            "delivered" => "250 2.0.0 ok".into(),
            "deferred" => "451 4.3.0 try later".into(),
            _ => "550 5.1.1 no such user".into(),
        }),
        cause: (outcome != "delivered").then(|| CauseInfo {
            id: if outcome == "deferred" {
                "smtp.reply_transient".into()
            } else {
                "smtp.reply_permanent".into()
            },
            summary: "the server refused".into(),
            fix: "none on our side".into(),
            detail: String::new(),
        }),
        attempt: n,
        duration_ms: 120,
    }))
}

pub fn outcome(rcpt: &str, mx: &str, ip: &str, status: &str, tls: Option<&str>) -> RcptOutcome {
    RcptOutcome {
        rcpt: rcpt.into(),
        mx: mx.into(),
        ip: ip.into(),
        reply: Some(format!("{} {status} reply", &status[..1])),
        status: status.into(),
        cause: (!status.starts_with('2')).then(|| CauseInfo {
            id: "smtp.reply_transient".into(),
            summary: "s".into(),
            ..CauseInfo::default()
        }),
        tls: tls.map(str::to_owned),
        attempts: 1,
        next_attempt: None,
        age_ms: Some(1500),
    }
}

pub fn decision(
    client: &str,
    rule: &str,
    sender: Option<&str>,
    rcpt: Option<&str>,
) -> SmtpDecision {
    SmtpDecision {
        client: client.into(),
        listener: "mx".into(),
        stage: "rcpt".into(),
        rule: rule.into(),
        group: Some("SUSPECT".into()),
        policy: Some("THROTTLED".into()),
        reply: "452 4.5.3 Too many recipients".into(),
        sender: sender.map(str::to_owned),
        recipient: rcpt.map(str::to_owned),
    }
}

/// The fixture: four messages and three session events.
pub struct World {
    pub entries: Vec<LogEntry>,
    /// receive → defer → deliver with TLS.
    pub delivered: QueueId,
    /// receive → bounce → dsn_sent.
    pub bounced: QueueId,
    /// The DSN of `bounced`.
    pub dsn: QueueId,
    /// received, filtered, quarantined.
    pub quarantined: QueueId,
    /// delivered over TLS 1.0 to legacy.example.
    pub legacy: QueueId,
}

pub fn world() -> World {
    let a = QueueId::generate();
    let b = QueueId::generate();
    let dsn = QueueId::generate();
    let c = QueueId::generate();
    let d = QueueId::generate();
    let mut rx_a = received(
        "Alice@Example.com",
        &["Bob@Example.NET"],
        "192.0.2.7:40000",
        Some(("TLSv1.3", "TLS13_AES_256_GCM_SHA384")),
    );
    rx_a.message_id = Some("<a1@example.com>".into());
    rx_a.subject = Some("Quarterly Report".into());
    rx_a.client_name = Some("client.example".into());
    rx_a.auth_user = Some("alice".into());
    let mut rx_b = received(
        "carol@mail.example.org",
        &["dave@example.com", "erin@example.com"],
        "203.0.113.5:5000",
        None,
    );
    rx_b.message_id = Some("<b2@example.org>".into());
    rx_b.helo = "b.example".into();
    let mut rx_c = received(
        "spam@bad.example",
        &["frank@example.com"],
        "[2001:db8::5]:1234",
        None,
    );
    rx_c.held = Some("rule spam".into());
    rx_c.helo = "spammer.example".into();
    let mut rx_d = received(
        "alice@example.com",
        &["gina@legacy.example"],
        "192.0.2.8:1",
        None,
    );
    rx_d.helo = "d.example".into();
    let entries = vec![
        rec(a, "2026-12-01T10:00:00.000Z", MailEvent::Received(rx_a)),
        rec(
            a,
            "2026-12-01T10:00:00.010Z",
            MailEvent::Queued(Queued {
                sender: "alice@example.com".into(),
                rcpt_count: 1,
                size: 2048,
                origin: "smtp".into(),
            }),
        ),
        rec(
            a,
            "2026-12-01T10:00:01.000Z",
            attempt(
                1,
                &["bob@example.net"],
                "example.net",
                "mx1.example.net",
                "198.51.100.10:25",
                "opportunistic",
                Some(true),
                Some(("TLSv1.2", false)),
                "deferred",
            ),
        ),
        rec(
            a,
            "2026-12-01T10:00:01.001Z",
            MailEvent::Deferred(outcome(
                "bob@example.net",
                "mx1.example.net",
                "198.51.100.10:25",
                "4.3.0",
                Some("TLSv1.2 TLS_AES_256_GCM_SHA384"),
            )),
        ),
        rec(b, "2026-12-01T10:05:00.000Z", MailEvent::Received(rx_b)),
        rec(
            b,
            "2026-12-01T10:05:01.000Z",
            attempt(
                1,
                &["dave@example.com", "erin@example.com"],
                "example.com",
                "mx.example.com",
                "198.51.100.20:25",
                "opportunistic",
                Some(false),
                None,
                "bounced",
            ),
        ),
        rec(
            b,
            "2026-12-01T10:05:01.001Z",
            MailEvent::Bounced(outcome(
                "dave@example.com",
                "mx.example.com",
                "198.51.100.20:25",
                "5.1.1",
                None,
            )),
        ),
        rec(
            b,
            "2026-12-01T10:05:01.002Z",
            MailEvent::Bounced(outcome(
                "erin@example.com",
                "mx.example.com",
                "198.51.100.20:25",
                "5.1.1",
                None,
            )),
        ),
        rec(
            b,
            "2026-12-01T10:05:01.003Z",
            MailEvent::DsnSent(DsnSent {
                kind: "failure".into(),
                rcpts: vec!["dave@example.com".into(), "erin@example.com".into()],
                to: "carol@mail.example.org".into(),
                dsn_queue_id: Some(dsn),
                suppressed: None,
            }),
        ),
        rec(
            dsn,
            "2026-12-01T10:05:01.004Z",
            MailEvent::Queued(Queued {
                sender: String::new(),
                rcpt_count: 1,
                size: 900,
                origin: "dsn".into(),
            }),
        ),
        rec(c, "2026-12-01T10:10:00.000Z", MailEvent::Received(rx_c)),
        rec(
            c,
            "2026-12-01T10:10:00.001Z",
            MailEvent::Filtered(Filtered {
                decisions: vec![ContentDecision {
                    by: "rule:spam".into(),
                    verdict: "matched at message.rules:3".into(),
                    action: "quarantine \"spam\"".into(),
                }],
                require_tls: false,
            }),
        ),
        rec(
            c,
            "2026-12-01T10:10:00.002Z",
            MailEvent::Quarantined(Quarantined {
                quarantine: "spam".into(),
                reason: "rule spam".into(),
            }),
        ),
        session(
            "S1",
            1,
            "2026-12-01T10:20:00.000Z",
            SessionEvent::Rejected(decision(
                "198.51.100.7",
                "relay_denied",
                Some("x@bad.example"),
                Some("u@example.com"),
            )),
        ),
        session(
            "S2",
            1,
            "2026-12-01T10:21:00.000Z",
            SessionEvent::Throttled(decision(
                "198.51.100.8",
                "max_recipients_per_hour_per_ip",
                Some("y@bad.example"),
                Some("v@example.com"),
            )),
        ),
        session(
            "S3",
            1,
            "2026-12-01T10:22:00.000Z",
            SessionEvent::Greylisted(decision(
                "198.51.100.9",
                "greylist",
                Some("z@bad.example"),
                Some("w@example.com"),
            )),
        ),
        rec(
            a,
            "2026-12-01T11:00:00.000Z",
            attempt(
                2,
                &["bob@example.net"],
                "example.net",
                "mx2.example.net",
                "198.51.100.11:25",
                "dane",
                Some(true),
                Some(("TLSv1.3", true)),
                "delivered",
            ),
        ),
        rec(
            a,
            "2026-12-01T11:00:00.001Z",
            MailEvent::Delivered(outcome(
                "bob@example.net",
                "mx2.example.net",
                "198.51.100.11:25",
                "2.0.0",
                Some("TLSv1.3 TLS_AES_256_GCM_SHA384"),
            )),
        ),
        rec(d, "2026-12-01T11:30:00.000Z", MailEvent::Received(rx_d)),
        rec(
            d,
            "2026-12-01T11:30:01.000Z",
            attempt(
                1,
                &["gina@legacy.example"],
                "legacy.example",
                "mx.legacy.example",
                "198.51.100.30:25",
                "opportunistic",
                Some(true),
                Some(("TLSv1.0", false)),
                "delivered",
            ),
        ),
        rec(
            d,
            "2026-12-01T11:30:01.001Z",
            MailEvent::Delivered(outcome(
                "gina@legacy.example",
                "mx.legacy.example",
                "198.51.100.30:25",
                "2.0.0",
                Some("TLSv1.0 TLS_RSA_WITH_AES_128_CBC_SHA"),
            )),
        ),
    ];
    World {
        entries,
        delivered: a,
        bounced: b,
        dsn,
        quarantined: c,
        legacy: d,
    }
}

/// Serialises entries as mail-log lines.
pub fn lines(entries: &[LogEntry]) -> String {
    entries
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect()
}
