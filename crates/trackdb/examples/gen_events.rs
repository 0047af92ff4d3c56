//! Generates realistic tracking records for the performance figures in
//! docs/tracking.md: N messages (≈5 events each: received, queued, attempt,
//! delivered; some deferred then retried, some bounced with a DSN) to about
//! 10 000 distinct recipients over 50 domains, spread over 30 days, plus
//! some session events.
//!
//! ```text
//! cargo run --release -p postern-trackdb --example gen_events -- \
//!     --messages 217000 --log /tmp/track/mail.log --db /tmp/track/tracking.db
//! ```
//! `--log` writes the mail log; `--db` indexes the records (parsed back from
//! their JSON lines, as the indexer does) in batches of 2 000 and prints the
//! indexing rate (events/s, one thread).
#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)] // a generator: the casts are of small, positive figures

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use postern_spool::{QueueId, ReceiptTls};
use postern_track::{
    Attempt, CauseInfo, DsnSent, EventId, MailEvent, PeerCert, Queued, RcptOutcome, Received,
    SessionEvent, SessionRecord, SmtpDecision, TlsOutcome, TrackRecord,
};
use postern_trackdb::{Checkpoint, LogEntry, SqliteStore, TrackStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DOMAINS: usize = 50;
const USERS_PER_DOMAIN: usize = 200;
const SENDER_DOMAINS: usize = 20;
const SENDERS_PER_DOMAIN: usize = 100;
const BATCH: usize = 2_000;

struct Args {
    messages: usize,
    log: Option<PathBuf>,
    db: Option<PathBuf>,
    seed: u64,
}

fn args() -> Args {
    let mut a = Args {
        messages: 200_000,
        log: None,
        db: None,
        seed: 12,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--messages" => a.messages = v.parse().unwrap(),
            "--log" => a.log = Some(v.into()),
            "--db" => a.db = Some(v.into()),
            "--seed" => a.seed = v.parse().unwrap(),
            other => panic!("unknown argument {other}; see the doc comment"),
        }
    }
    a
}

fn ts(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn rec(q: QueueId, ms: i64, event: MailEvent) -> LogEntry {
    LogEntry::Mail(TrackRecord {
        ts: ts(ms),
        event_id: EventId::next(&q),
        queue_id: q,
        event,
    })
}

fn recipient(rng: &mut StdRng) -> String {
    // Skewed: a few domains and users get most mail, as in real traffic.
    let d = (rng.random::<f64>().powi(2) * DOMAINS as f64) as usize;
    let u = (rng.random::<f64>().powi(2) * USERS_PER_DOMAIN as f64) as usize;
    format!("user{u}@domain{d}.example")
}

fn sender(rng: &mut StdRng) -> String {
    format!(
        "sender{}@corp{}.example",
        rng.random_range(0..SENDERS_PER_DOMAIN),
        rng.random_range(0..SENDER_DOMAINS)
    )
}

fn tls_outcome(rng: &mut StdRng, mx: &str) -> Option<TlsOutcome> {
    let r: f64 = rng.random();
    let version = if r < 0.03 {
        return None;
    } else if r < 0.05 {
        "TLSv1.0"
    } else if r < 0.35 {
        "TLSv1.2"
    } else {
        "TLSv1.3"
    };
    let verified = rng.random::<f64>() < 0.8;
    Some(TlsOutcome {
        version: version.into(),
        cipher: if version == "TLSv1.3" {
            "TLS13_AES_256_GCM_SHA384".into()
        } else {
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()
        },
        verified,
        group: Some("X25519".into()),
        verification: if verified { "ok" } else { "unknown issuer" }.into(),
        peer_cert: Some(PeerCert {
            subject: format!("CN={mx}"),
            sans: vec![mx.to_owned()],
            fingerprint_sha256: "0f".repeat(32),
            not_after: "2027-03-01T00:00:00Z".into(),
            issuer: "CN=Example CA".into(),
        }),
    })
}

#[allow(clippy::too_many_lines)]
fn message(rng: &mut StdRng, ms: i64, out: &mut Vec<LogEntry>) {
    let q = QueueId::generate();
    let from = sender(rng);
    let n = if rng.random::<f64>() < 0.15 { 2 } else { 1 };
    let rcpts: Vec<String> = (0..n).map(|_| recipient(rng)).collect();
    let host = rng.random_range(1..250);
    let client = format!("192.0.2.{host}");
    let tls_in = rng.random::<f64>() < 0.9;
    out.push(rec(
        q,
        ms,
        MailEvent::Received(Received {
            sender: from.clone(),
            rcpts: rcpts.clone(),
            size: rng.random_range(2_000..200_000),
            listener: "mx".into(),
            peer: format!("{client}:{}", rng.random_range(1024..65535)),
            helo: format!("mail{host}.corp{}.example", host % SENDER_DOMAINS),
            tls: tls_in.then(|| "TLSv1.3 TLS13_AES_256_GCM_SHA384".into()),
            message_id: Some(format!("<{q}@corp.example>")),
            tls_params: tls_in.then(|| ReceiptTls {
                version: "TLSv1.3".into(),
                cipher: "TLS13_AES_256_GCM_SHA384".into(),
                group: Some("X25519".into()),
                sni: None,
            }),
            ..Received::default()
        }),
    ));
    out.push(rec(
        q,
        ms + 5,
        MailEvent::Queued(Queued {
            sender: from.clone(),
            rcpt_count: n,
            size: 1000,
            origin: "smtp".into(),
        }),
    ));
    for rcpt in rcpts {
        let domain = rcpt.split_once('@').unwrap().1.to_owned();
        let mx = format!("mx.{domain}");
        let ip = format!("198.51.100.{}:25", domain.len() * 7 % 250);
        let mut t = ms + 500;
        let roll: f64 = rng.random();
        let attempt = |n: u32, outcome: &str, tls: Option<TlsOutcome>| {
            MailEvent::Attempt(Box::new(Attempt {
                rcpts: vec![rcpt.clone()],
                destination: domain.clone(),
                route: "mx".into(),
                mx: mx.clone(),
                ip: ip.clone(),
                policy: "opportunistic".into(),
                policy_reason: "default".into(),
                starttls_offered: Some(tls.is_some()),
                tls,
                downgraded: false,
                outcome: outcome.into(),
                reply: Some("250 2.0.0 ok".into()),
                cause: None,
                attempt: n,
                duration_ms: 200,
            }))
        };
        let tls = tls_outcome(rng, &mx);
        let tls_short = tls.as_ref().map(|t| format!("{} {}", t.version, t.cipher));
        let outcome = |status: &str, cause: Option<&str>| RcptOutcome {
            rcpt: rcpt.clone(),
            mx: mx.clone(),
            ip: ip.clone(),
            reply: Some(format!("{} {status} reply", &status[..1])),
            status: status.into(),
            cause: cause.map(|c| CauseInfo {
                id: c.into(),
                summary: "the server refused".into(),
                ..CauseInfo::default()
            }),
            tls: tls_short.clone(),
            attempts: 1,
            next_attempt: None,
            age_ms: Some(500),
        };
        if roll < 0.10 {
            out.push(rec(q, t, attempt(1, "deferred", tls.clone())));
            out.push(rec(
                q,
                t + 1,
                MailEvent::Deferred(outcome("4.7.1", Some("smtp.reply_transient"))),
            ));
            t += 600_000;
            out.push(rec(q, t, attempt(2, "delivered", tls.clone())));
            out.push(rec(q, t + 1, MailEvent::Delivered(outcome("2.0.0", None))));
        } else if roll < 0.13 {
            out.push(rec(q, t, attempt(1, "bounced", tls.clone())));
            out.push(rec(
                q,
                t + 1,
                MailEvent::Bounced(outcome("5.1.1", Some("smtp.reply_permanent"))),
            ));
            out.push(rec(
                q,
                t + 2,
                MailEvent::DsnSent(DsnSent {
                    kind: "failure".into(),
                    rcpts: vec![rcpt.clone()],
                    to: from.clone(),
                    dsn_queue_id: Some(QueueId::generate()),
                    suppressed: None,
                }),
            ));
        } else {
            out.push(rec(q, t, attempt(1, "delivered", tls.clone())));
            out.push(rec(q, t + 1, MailEvent::Delivered(outcome("2.0.0", None))));
        }
    }
    if rng.random::<f64>() < 0.05 {
        let mut s = SessionRecord::new(
            &format!("S{q}"),
            1,
            SessionEvent::Rejected(SmtpDecision {
                client: format!("203.0.113.{}", rng.random_range(1..250)),
                listener: "mx".into(),
                stage: "rcpt".into(),
                rule: "relay_denied".into(),
                group: None,
                policy: None,
                reply: "554 5.7.1 Relay access denied".into(),
                sender: Some(sender(rng)),
                recipient: Some(recipient(rng)),
            }),
        );
        s.ts = ts(ms + 3);
        out.push(LogEntry::Session(s));
    }
}

fn main() {
    let a = args();
    let mut rng = StdRng::seed_from_u64(a.seed);
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let span: i64 = 30 * 86_400_000;
    let start_ms = now_ms - span;
    let step = span / i64::try_from(a.messages.max(1)).unwrap();
    let mut log = a.log.as_ref().map(|p| {
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::io::BufWriter::new(std::fs::File::create(p).unwrap())
    });
    let store = a.db.as_ref().map(|p| {
        let _ = std::fs::remove_file(p);
        SqliteStore::open(p).unwrap()
    });
    let mut pending: Vec<LogEntry> = Vec::new();
    let mut events = 0u64;
    let mut offset = 0u64;
    let mut index_time = std::time::Duration::ZERO;
    let mut flush = |pending: &mut Vec<LogEntry>, offset: &mut u64| {
        let lines: Vec<String> = pending
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect();
        if let Some(w) = log.as_mut() {
            for l in &lines {
                w.write_all(l.as_bytes()).unwrap();
            }
        }
        *offset += lines.iter().map(|l| l.len() as u64).sum::<u64>();
        if let Some(s) = &store {
            let t0 = Instant::now();
            // As the indexer does: parse the lines, index them with the checkpoint.
            let batch: Vec<LogEntry> = lines.iter().filter_map(|l| LogEntry::parse(l)).collect();
            s.index(
                &batch,
                &Checkpoint {
                    file_id: 1,
                    offset: *offset,
                },
            )
            .unwrap();
            index_time += t0.elapsed();
        }
        pending.clear();
    };
    for i in 0..a.messages {
        let ms = start_ms + step * i64::try_from(i).unwrap();
        message(&mut rng, ms, &mut pending);
        if pending.len() >= BATCH {
            events += pending.len() as u64;
            flush(&mut pending, &mut offset);
        }
    }
    events += pending.len() as u64;
    flush(&mut pending, &mut offset);
    if let Some(w) = log.as_mut() {
        w.flush().unwrap();
    }
    println!(
        "{} messages, {events} events, {offset} bytes of mail log",
        a.messages
    );
    if a.db.is_some() {
        let secs = index_time.as_secs_f64();
        println!(
            "indexed in {secs:.1} s: {:.0} events/s (parse + index, one thread, batches of {BATCH})",
            events as f64 / secs
        );
    }
}
