//! The `MailEvent` catalogue: one variant per thing that can happen to a queued
//! message, each with a stable snake_case name and the facts an operator needs.
//!
//! Names and field names are API: the mail log, the tracking database and the
//! admin UI key on them. Add variants and optional fields; never rename or reuse
//! one.
//!
//! # Security
//! Holds envelope addresses, remote replies (untrusted text, stored as given and
//! escaped by JSON) and TLS facts. Never message bodies, never AUTH secrets.

use std::sync::atomic::{AtomicU64, Ordering};

use postern_spool::QueueId;
use serde::{Deserialize, Serialize};

/// A unique, stable id for one event: `E` + the queue id + `.` + a per-process
/// sequence number in base 36, e.g. `E0H5W1N4Y8M2Q3R7T9.1a`. Unique because
/// queue ids are, and the process-wide sequence never repeats within a process;
/// across restarts the queue id part carries time, and the sequence restarts
/// with a random base. Sortable within one message only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub String);

static SEQ: AtomicU64 = AtomicU64::new(0);
static SEQ_BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

impl EventId {
    /// A fresh id for an event about `queue_id`.
    pub fn next(queue_id: &QueueId) -> Self {
        let base = *SEQ_BASE.get_or_init(|| {
            // Low-order time bits: a restart does not reuse the previous run's
            // sequence for the same message in practice.
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::from(d.subsec_nanos()))
                << 20
        });
        let n = base.wrapping_add(SEQ.fetch_add(1, Ordering::Relaxed));
        EventId(format!("E{queue_id}.{}", base36(n)))
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        // The remainder is below 36, the alphabet's length.
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// One logged event: who (queue id), which (event id), when, and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackRecord {
    /// RFC 3339 UTC time of the event.
    pub ts: String,
    /// Unique id of this event.
    pub event_id: EventId,
    /// The message concerned.
    pub queue_id: QueueId,
    /// The event and its facts; serialised flat with an `event` field holding
    /// the stable name.
    #[serde(flatten)]
    pub event: MailEvent,
}

impl TrackRecord {
    /// A record of `event` about `queue_id`, now.
    pub fn new(queue_id: QueueId, event: MailEvent) -> Self {
        Self {
            ts: now_rfc3339(),
            event_id: EventId::next(&queue_id),
            queue_id,
            event,
        }
    }
}

/// Current time, RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// What happened. The serialised `event` field is the stable name
/// ([`MailEvent::name`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum MailEvent {
    /// The smtpd accepted a message (after the durable commit).
    Received(Received),
    /// The scheduler took a message into its queue (new, DSN, pickup).
    Queued(Queued),
    /// One connection attempt to one host for some recipients.
    Attempt(Box<Attempt>),
    /// A recipient was accepted by the next hop.
    Delivered(RcptOutcome),
    /// A recipient failed temporarily; it will be retried.
    Deferred(RcptOutcome),
    /// A recipient failed permanently; a failure DSN follows unless suppressed.
    Bounced(RcptOutcome),
    /// A DSN was queued (or suppressed, with the reason).
    DsnSent(DsnSent),
    /// Recipients reached the queue lifetime and were bounced.
    Expired(Expired),
    /// A message that could not be delivered nor bounced (a DSN that failed)
    /// was moved to the badmail folder.
    Badmail(Badmail),
    /// The operator held the message (`postern queue hold`): not attempted
    /// until released.
    Held(QueueAction),
    /// The operator released a held message (`postern queue release`).
    Released(QueueAction),
    /// The operator deleted the message (`postern queue delete`): removed
    /// without a DSN.
    Deleted(QueueAction),
    /// The content engines and filter rules decided something about an
    /// accepted message (logged right after `received`).
    Filtered(Filtered),
    /// The message was accepted into a quarantine (after `received`).
    Quarantined(Quarantined),
}

impl MailEvent {
    /// The stable name, as in the `event` field.
    pub fn name(&self) -> &'static str {
        match self {
            MailEvent::Received(_) => "received",
            MailEvent::Queued(_) => "queued",
            MailEvent::Attempt(_) => "attempt",
            MailEvent::Delivered(_) => "delivered",
            MailEvent::Deferred(_) => "deferred",
            MailEvent::Bounced(_) => "bounced",
            MailEvent::DsnSent(_) => "dsn_sent",
            MailEvent::Expired(_) => "expired",
            MailEvent::Badmail(_) => "badmail",
            MailEvent::Held(_) => "held",
            MailEvent::Released(_) => "released",
            MailEvent::Deleted(_) => "deleted",
            MailEvent::Filtered(_) => "filtered",
            MailEvent::Quarantined(_) => "quarantined",
        }
    }

    /// Every name, for documentation and tests.
    pub const NAMES: &'static [&'static str] = &[
        "received",
        "queued",
        "attempt",
        "delivered",
        "deferred",
        "bounced",
        "dsn_sent",
        "expired",
        "badmail",
        "held",
        "released",
        "deleted",
        "filtered",
        "quarantined",
    ];
}

/// `received`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    /// Reverse path (`""` = null sender).
    pub sender: String,
    /// Recipients.
    pub rcpts: Vec<String>,
    /// Body size in octets.
    pub size: u64,
    /// Listener name.
    pub listener: String,
    /// Peer `ip:port`.
    pub peer: String,
    /// HELO name.
    pub helo: String,
    /// Inbound TLS version and cipher, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    /// Our `Authentication-Results:` value, unfolded: every SPF / DKIM
    /// (domain, selector) / ARC / DMARC verdict (issue 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<String>,
    /// The DKIM signatures we added, `d=domain s=selector` each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dkim_signed: Vec<String>,
    /// Accepted held for review (a DMARC quarantine), with the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
    /// The `Message-ID:` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The subject, when `[tracking] subjects` records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The client's forward-confirmed PTR name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// The AUTH user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_user: Option<String>,
    /// The sender group that matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_group: Option<String>,
    /// The mail-flow policy applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The inbound TLS parameters in full (version, cipher, key exchange
    /// group, SNI); `tls` keeps the short form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_params: Option<postern_spool::ReceiptTls>,
}

/// `filtered`: each decision of the content engines and filter rules, in
/// the order they ran (`Envelope::content`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filtered {
    /// The decisions.
    pub decisions: Vec<postern_spool::ContentDecision>,
    /// Delivery requires verified TLS (a `require-tls` rule).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_tls: bool,
}

/// `quarantined`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    /// The quarantine.
    pub quarantine: String,
    /// Why (the rule, or the engine verdict).
    pub reason: String,
}

impl MailEvent {
    /// The events that follow `received` for an accepted message, from its
    /// envelope: `filtered` when content decisions were recorded,
    /// `quarantined` when it was accepted held.
    pub fn after_receipt(env: &postern_spool::Envelope) -> Vec<MailEvent> {
        let mut out = Vec::new();
        if !env.content.is_empty() || env.require_tls {
            out.push(MailEvent::Filtered(Filtered {
                decisions: env.content.clone(),
                require_tls: env.require_tls,
            }));
        }
        if let (Some(q), Some(reason)) = (env.quarantine_name(), &env.hold) {
            out.push(MailEvent::Quarantined(Quarantined {
                quarantine: q.to_owned(),
                reason: reason.clone(),
            }));
        }
        out
    }
}

/// `d=… s=…` of each DKIM-Signature value.
fn signature_ids(values: &[String]) -> Vec<String> {
    values
        .iter()
        .map(|v| {
            let tag = |t: &str| {
                v.split(';')
                    .filter_map(|kv| kv.split_once('='))
                    .find(|(k, _)| k.trim() == t)
                    .map(|(_, x)| x.split_whitespace().collect::<String>())
                    .unwrap_or_default()
            };
            format!("d={} s={}", tag("d"), tag("s"))
        })
        .collect()
}

impl Received {
    /// The `received` facts of a committed message, from its envelope: the
    /// smtpd's (listener, peer, HELO, TLS) and the pickup folder's (listener
    /// `pickup`, no peer) alike.
    pub fn from_envelope(env: &postern_spool::Envelope) -> Self {
        Self {
            sender: env.reverse_path.clone(),
            rcpts: env.recipients.iter().map(|r| r.address.clone()).collect(),
            size: env.wire_size(),
            listener: env.receipt.listener.clone(),
            peer: env.receipt.peer.clone(),
            helo: env.receipt.helo.clone(),
            tls: env
                .receipt
                .tls
                .as_ref()
                .map(|t| format!("{} {}", t.version, t.cipher)),
            authentication: postern_proto::header_values(
                env.added_headers.as_bytes(),
                "Authentication-Results",
            )
            .into_iter()
            .next(),
            dkim_signed: signature_ids(&postern_proto::header_values(
                env.added_headers.as_bytes(),
                "DKIM-Signature",
            )),
            held: env.hold.clone(),
            message_id: env.message_id.clone(),
            subject: env.subject.clone(),
            client_name: env.receipt.client_name.clone(),
            auth_user: env.receipt.auth_user.clone(),
            sender_group: env.receipt.sender_group.clone(),
            policy: env.receipt.policy.clone(),
            tls_params: env.receipt.tls.clone(),
        }
    }
}

/// `queued`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    /// Reverse path (`""` = null sender).
    pub sender: String,
    /// Number of recipients.
    pub rcpt_count: usize,
    /// Body size in octets.
    pub size: u64,
    /// `smtp`, `dsn`, `pickup` or `recovery`.
    pub origin: String,
}

/// A classified failure: stable id, summary, smallest safe fix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CauseInfo {
    /// Stable id from a closed catalogue (`tls.out.peer_closed`, `smtp.reply_permanent`, …).
    pub id: String,
    /// What happened, in one sentence.
    pub summary: String,
    /// The smallest safe fix, or why there is none on our side; empty (and
    /// left out of the JSON) on success: no advice when nothing failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fix: String,
    /// Raw error text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The certificate the peer presented.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerCert {
    /// Subject DN.
    pub subject: String,
    /// DNS names and IP addresses in the subjectAltName.
    pub sans: Vec<String>,
    /// SHA-256 of the DER certificate, hex.
    pub fingerprint_sha256: String,
    /// notAfter, RFC 3339.
    pub not_after: String,
    /// Issuer DN.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub issuer: String,
}

/// What TLS negotiated on an attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsOutcome {
    /// `TLSv1.3` / `TLSv1.2`.
    pub version: String,
    /// IANA cipher suite name.
    pub cipher: String,
    /// Key exchange group (`X25519MLKEM768`, `secp256r1`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Whether the peer was authenticated as the policy requires
    /// (`verify`: PKIX and name; lower levels: whatever the check found).
    pub verified: bool,
    /// The verification result in words (`ok`, `unknown issuer`, `name mismatch: …`).
    pub verification: String,
    /// The leaf certificate, when one was presented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_cert: Option<PeerCert>,
}

/// `attempt`: one connection to one host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// Recipients this connection tried.
    pub rcpts: Vec<String>,
    /// The destination key (domain for MX delivery, `host:port` for a smart host).
    pub destination: String,
    /// `mx`, `implicit_mx`, `smarthost`, `relayhost`.
    pub route: String,
    /// The host connected to (MX exchange or smart host name).
    pub mx: String,
    /// The address connected to, `ip:port`; empty when no address was reached.
    #[serde(default)]
    pub ip: String,
    /// TLS policy level applied (`none`, `opportunistic`, `opportunistic-strict`,
    /// `required`, `verify`, …).
    pub policy: String,
    /// Why that level applied (`route[1] domain .example.com`, `default`, …).
    pub policy_reason: String,
    /// The server offered STARTTLS (absent when the session never got that far).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starttls_offered: Option<bool>,
    /// Set when TLS was established.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsOutcome>,
    /// This connection is the plaintext retry after a failed handshake
    /// (opportunistic downgrade).
    #[serde(default)]
    pub downgraded: bool,
    /// `delivered`, `deferred`, `bounced`, `partial` (recipients differ), `failed`
    /// (connection-level failure, next address tried).
    pub outcome: String,
    /// The last reply that decided the outcome, one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// On failure: the classified cause and its fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<CauseInfo>,
    /// Attempt number of these recipients (1 = first).
    pub attempt: u32,
    /// Milliseconds from connect to outcome.
    pub duration_ms: u64,
}

/// `delivered`, `deferred`, `bounced`: one recipient's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RcptOutcome {
    /// The recipient.
    pub rcpt: String,
    /// Host that answered (empty when none was reached).
    #[serde(default)]
    pub mx: String,
    /// `ip:port` that answered.
    #[serde(default)]
    pub ip: String,
    /// Reply that decided it, one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// RFC 3463 status (`2.0.0`, `4.4.1`, `5.1.10`).
    pub status: String,
    /// Why (failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<CauseInfo>,
    /// TLS version and cipher of the session, if encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    /// Attempts made for this recipient.
    pub attempts: u32,
    /// `deferred`: next attempt, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<String>,
    /// Age of the message at this outcome, milliseconds since it was
    /// received (the delivery latency of a `delivered` record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_ms: Option<u64>,
}

/// `dsn_sent`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DsnSent {
    /// `failure`, `delay`, `success`.
    pub kind: String,
    /// Recipients reported.
    pub rcpts: Vec<String>,
    /// Where it goes (the original sender).
    pub to: String,
    /// Queue id of the DSN message; absent when suppressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsn_queue_id: Option<QueueId>,
    /// Why none was sent (`null sender`, `NOTIFY=NEVER`), if suppressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<String>,
}

/// `expired`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expired {
    /// Recipients that expired.
    pub rcpts: Vec<String>,
    /// Age of the message, seconds.
    pub age_secs: u64,
    /// The configured lifetime, seconds.
    pub lifetime_secs: u64,
}

/// `badmail`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Badmail {
    /// Why it was moved.
    pub reason: String,
    /// Where it went.
    pub path: String,
}

/// `held`, `released`, `deleted`: an operator's queue command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueAction {
    /// The recipients it concerns (those not delivered or bounced yet).
    pub rcpts: Vec<String>,
    /// How the command came: `admin` (the admin socket of the running
    /// server) or `spool` (the CLI on the spool while the server was stopped).
    pub via: String,
    /// Attempts under way when the command came; they end and are recorded
    /// first (a hold takes effect after them, a deletion removes the message
    /// after them).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub in_flight: usize,
    /// Who gave the command, when known: an admin user or API token and the
    /// address it came from (`alice (192.0.2.5)`, `token:ci (192.0.2.9)`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub by: String,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_match_serialisation() {
        let id = QueueId::generate();
        let events = [
            MailEvent::Received(Received::default()),
            MailEvent::Queued(Queued::default()),
            MailEvent::Attempt(Box::default()),
            MailEvent::Delivered(RcptOutcome::default()),
            MailEvent::Deferred(RcptOutcome::default()),
            MailEvent::Bounced(RcptOutcome::default()),
            MailEvent::DsnSent(DsnSent::default()),
            MailEvent::Expired(Expired::default()),
            MailEvent::Badmail(Badmail::default()),
            MailEvent::Held(QueueAction::default()),
            MailEvent::Released(QueueAction::default()),
            MailEvent::Deleted(QueueAction::default()),
            MailEvent::Filtered(Filtered::default()),
            MailEvent::Quarantined(Quarantined::default()),
        ];
        assert_eq!(events.len(), MailEvent::NAMES.len());
        for (e, name) in events.into_iter().zip(MailEvent::NAMES) {
            assert_eq!(e.name(), *name);
            let rec = TrackRecord::new(id, e);
            let v: serde_json::Value = serde_json::to_value(&rec).unwrap();
            assert_eq!(v["event"], *name);
            assert_eq!(v["queue_id"], id.to_string());
            assert!(v["event_id"].as_str().unwrap().starts_with('E'));
            let back: TrackRecord = serde_json::from_value(v).unwrap();
            assert_eq!(back, rec);
        }
    }

    #[test]
    fn received_from_envelope() {
        use postern_spool::{Envelope, EnvelopeRecipient, Receipt, ReceiptTls};
        let env = Envelope {
            queue_id: QueueId::generate(),
            received_at: String::new(),
            reverse_path: "alice@example.com".into(),
            recipients: vec![
                EnvelopeRecipient {
                    address: "bob@example.net".into(),
                    ..EnvelopeRecipient::default()
                },
                EnvelopeRecipient {
                    address: "carol@example.org".into(),
                    ..EnvelopeRecipient::default()
                },
            ],
            params: postern_spool::MailParams::default(),
            receipt: Receipt {
                listener: "smtp".into(),
                peer: "192.0.2.7:40000".into(),
                helo: "client.example".into(),
                auth_user: None,
                tls: Some(ReceiptTls {
                    version: "TLSv1.3".into(),
                    cipher: "TLS13_AES_256_GCM_SHA384".into(),
                    ..ReceiptTls::default()
                }),
                ..Default::default()
            },
            message_size: 1234,
            added_headers: String::new(),
            hold: None,
            quarantine: None,
            require_tls: false,
            content: Vec::new(),
            bounce: None,
            message_id: None,
            subject: None,
        };
        let r = Received::from_envelope(&env);
        assert_eq!(r.sender, "alice@example.com");
        assert_eq!(r.authentication, None);
        let mut env = env;
        env.added_headers = "DKIM-Signature: v=1; a=ed25519-sha256; d=example.com;\r\n s=s2026; h=from; bh=x; b=y\r\n\
                             Authentication-Results: mx.example.net;\r\n spf=pass smtp.mailfrom=a@b.example\r\n"
            .into();
        let r = Received::from_envelope(&env);
        assert_eq!(
            r.authentication.as_deref(),
            Some("mx.example.net; spf=pass smtp.mailfrom=a@b.example")
        );
        assert_eq!(r.dkim_signed, vec!["d=example.com s=s2026".to_owned()]);
        assert_eq!(r.rcpts, ["bob@example.net", "carol@example.org"]);
        assert_eq!(
            r.size,
            1234 + env.added_headers.len() as u64,
            "the size as delivered"
        );
        assert_eq!(
            (r.listener.as_str(), r.peer.as_str()),
            ("smtp", "192.0.2.7:40000")
        );
        assert_eq!(r.helo, "client.example");
        assert_eq!(r.tls.as_deref(), Some("TLSv1.3 TLS13_AES_256_GCM_SHA384"));
    }

    #[test]
    fn event_ids_are_unique_and_name_the_message() {
        let id = QueueId::generate();
        let a = EventId::next(&id);
        let b = EventId::next(&id);
        assert_ne!(a, b);
        assert!(a.0.starts_with(&format!("E{id}.")));
        assert_eq!(base36(0), "0");
        assert_eq!(base36(36 * 36 + 1), "101");
    }
}
