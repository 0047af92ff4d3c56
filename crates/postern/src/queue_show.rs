//! `postern queue show ID`: the envelope, each recipient's state, and the
//! message's history from the mail log — above all its attempts, each with the
//! host and address, the TLS policy and why it applied, what TLS negotiated and
//! what the certificate was, the outcome, the reply, and for failures the
//! cause with its fix.
//!
//! From the running server (`GET /v1/queue/{id}`), else from the spool and the
//! mail log directly. A message no longer queued (delivered, bounced, deleted)
//! still shows its history.
//!
//! # Security
//! Replies, certificate names and addresses are remote or client input: printed
//! as text, one line each (JSON escaping in the log keeps them single-line;
//! control characters are replaced before printing).

use std::fmt::Write as _;
use std::process::ExitCode;

use postern_admin::{MessageInfo, ShowBody};
use postern_spool::{Envelope, QueueId};
use postern_track::{Attempt, MailEvent, TrackRecord};

use crate::cli::SpoolLocation;
use crate::queue_cmd::{ask, place, read_offline, server_refused, short_time};

pub(crate) async fn show(
    config: Option<&std::path::Path>,
    id: QueueId,
    loc: &SpoolLocation,
    json: bool,
) -> ExitCode {
    let place = match place(config, loc) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let uri = format!("/v1/queue/{id}");
    let (message, events) = match ask::<serde_json::Value>(place.admin.as_ref(), "GET", &uri).await
    {
        Err(code) => return code,
        Ok(Some((200, v))) => match serde_json::from_value::<ShowBody>(v) {
            Ok(b) => (Some(b.message), b.events),
            Err(e) => {
                eprintln!("error: unexpected answer from the server: {e}");
                return ExitCode::from(1);
            }
        },
        Ok(Some((404, _))) => (None, local_events(place.mail_log.as_deref(), id).await),
        Ok(Some((status, v))) => return server_refused(status, &v),
        Ok(None) => {
            let message = match read_offline(&place, move |dir, lifetimes| {
                postern_admin::view::read_one(dir, &id, lifetimes)
            })
            .await
            {
                Ok(m) => m.map(|m| MessageInfo::of(&m, true)),
                Err(code) => return code,
            };
            (message, local_events(place.mail_log.as_deref(), id).await)
        }
    };
    if message.is_none() && events.is_empty() {
        eprintln!(
            "not found: {id} (not in {}, and no events in the mail log); {}, or --spool DIR",
            place.describe(),
            crate::config_file::HOW_TO_CHOOSE
        );
        return ExitCode::from(1);
    }
    if json {
        let v = serde_json::json!({ "message": message, "events": events });
        crate::out::outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let mut out = String::new();
    match &message {
        Some(m) => write_message(&mut out, m),
        None => {
            let _ = writeln!(
                out,
                "queue id:     {id} (no longer queued: delivered, bounced or deleted)"
            );
        }
    }
    write_history(&mut out, &events, place.mail_log.is_some());
    crate::out::out!("{out}");
    ExitCode::SUCCESS
}

async fn local_events(log: Option<&std::path::Path>, id: QueueId) -> Vec<TrackRecord> {
    let Some(path) = log.map(std::path::Path::to_path_buf) else {
        return Vec::new();
    };
    match tokio::task::spawn_blocking(move || postern_track::read_log(&path, &id)).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            eprintln!("warning: cannot read the mail log: {e}");
            Vec::new()
        }
        Err(_) => Vec::new(),
    }
}

/// One line, controls replaced.
pub(crate) fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn write_message(out: &mut String, m: &MessageInfo) {
    let _ = writeln!(out, "queue id:     {}", m.queue_id);
    let _ = writeln!(out, "state:        {}", m.state.as_str());
    if let Some(q) = &m.quarantine {
        let until = m
            .quarantine_until
            .as_deref()
            .map(|u| format!(" until {u}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "quarantine:   {q}{until} (postern quarantine release|delete {})",
            m.queue_id
        );
    } else if let Some(h) = &m.held_since {
        let _ = writeln!(
            out,
            "held since:   {h} (release with: postern queue release {})",
            m.queue_id
        );
    }
    if let Some(e) = &m.envelope {
        write_envelope(out, e);
    } else {
        let _ = writeln!(out, "received at:  {}", m.received_at);
        let _ = writeln!(out, "size:         {} octets", m.message_size);
        let _ = writeln!(out, "sender:       <{}>", clean(&m.reverse_path));
    }
    // A quarantined message's lifetime counts from its release.
    if let (Some(x), None) = (&m.expires_at, &m.quarantine) {
        let _ = writeln!(out, "expires:      {x} (deferrals after this bounce)");
    }
    let _ = writeln!(out, "recipients:");
    for r in &m.recipients {
        let _ = write!(out, "  <{}>  {}", clean(&r.address), r.state.as_str());
        if r.attempts > 0 {
            let _ = write!(out, ", {} attempt(s)", r.attempts);
        }
        if let Some(n) = &r.next_attempt {
            let _ = write!(out, ", next {n}");
        }
        let _ = writeln!(out);
        if let Some(reply) = &r.last_reply {
            let _ = writeln!(out, "      last reply: {}", clean(reply));
        }
        if let Some(c) = &r.last_cause {
            let host = r
                .last_mx
                .as_deref()
                .map(|h| format!(" at {h}"))
                .unwrap_or_default();
            let _ = writeln!(out, "      last cause: {c}{host}");
        }
    }
}

fn write_envelope(out: &mut String, env: &Envelope) {
    let _ = writeln!(out, "received at:  {}", env.received_at);
    let _ = writeln!(out, "size:         {} octets", env.message_size);
    let _ = writeln!(out, "sender:       <{}>", clean(&env.reverse_path));
    let p = &env.params;
    let _ = writeln!(
        out,
        "parameters:   SIZE={} BODY={} SMTPUTF8={} RET={} ENVID={}",
        p.size.map_or("-".into(), |s| s.to_string()),
        p.body.as_deref().unwrap_or("-"),
        p.smtputf8,
        p.ret.as_deref().unwrap_or("-"),
        p.envid.as_deref().map_or("-".into(), clean)
    );
    let r = &env.receipt;
    let _ = writeln!(out, "listener:     {}", r.listener);
    let _ = writeln!(out, "peer:         {} (HELO {})", r.peer, clean(&r.helo));
    let _ = writeln!(
        out,
        "auth user:    {}",
        r.auth_user.as_deref().map_or("-".into(), clean)
    );
    match &r.tls {
        Some(t) => {
            let _ = writeln!(
                out,
                "inbound tls:  {} {} group={} sni={}",
                t.version,
                t.cipher,
                t.group.as_deref().unwrap_or("-"),
                t.sni.as_deref().map_or("-".into(), clean)
            );
        }
        None => {
            let _ = writeln!(out, "inbound tls:  none (plaintext)");
        }
    }
    // Issue 10: our verdicts, the signatures we added, a quarantine hold.
    let received = postern_track::Received::from_envelope(env);
    if let Some(ar) = &received.authentication {
        let _ = writeln!(out, "auth results: {}", clean(ar));
    }
    for sig in &received.dkim_signed {
        let _ = writeln!(out, "dkim signed:  {}", clean(sig));
    }
    if let Some(why) = &env.hold {
        let _ = writeln!(out, "held because: {}", clean(why));
    }
    for d in &env.content {
        let _ = writeln!(out, "content:      {}", decision(d));
    }
    if env.require_tls {
        let _ = writeln!(
            out,
            "require tls:  delivery only over verified TLS (a content filter said so)"
        );
    }
    for rc in &env.recipients {
        let mut extra = String::new();
        if let Some(n) = &rc.notify {
            let _ = write!(extra, " NOTIFY={n}");
        }
        if let Some(o) = &rc.orcpt {
            let _ = write!(extra, " ORCPT={}", clean(o));
        }
        if !extra.is_empty() {
            let _ = writeln!(out, "dsn:          <{}>{extra}", clean(&rc.address));
        }
    }
}

fn write_history(out: &mut String, events: &[TrackRecord], has_log: bool) {
    let attempts = events
        .iter()
        .filter(|r| matches!(r.event, MailEvent::Attempt(_)))
        .count();
    let _ = writeln!(out, "history ({attempts} attempt(s)):");
    if events.is_empty() {
        let _ = writeln!(
            out,
            "  {}",
            if has_log {
                "nothing in the mail log for this message yet"
            } else {
                "no mail log ([delivery] mail_log = false, or --spool given)"
            }
        );
    }
    for rec in events {
        let ts = short_time(&rec.ts);
        match &rec.event {
            MailEvent::Attempt(a) => write_attempt(out, &ts, a),
            MailEvent::Deferred(o) | MailEvent::Delivered(o) | MailEvent::Bounced(o) => {
                let _ = write!(
                    out,
                    "  {ts}  {:<9} <{}> {}",
                    rec.event.name(),
                    clean(&o.rcpt),
                    o.status
                );
                if let Some(n) = &o.next_attempt {
                    let _ = write!(out, ", next attempt {n}");
                }
                let _ = writeln!(out);
            }
            MailEvent::Held(a) | MailEvent::Released(a) | MailEvent::Deleted(a) => {
                let who = if a.via == "quarantine-expiry" {
                    "at the end of its quarantine (via quarantine-expiry".to_owned()
                } else if a.by.is_empty() {
                    format!("by the operator (via {}", a.via)
                } else {
                    // `by` came from our own admin user/token names and
                    // addresses, or the socket's peer uid: still cleaned,
                    // as every logged value shown on a terminal is.
                    let by: String = a.by.chars().filter(|c| !c.is_control()).collect();
                    format!("by the operator (via {}, {by}", a.via)
                };
                let _ = writeln!(
                    out,
                    "  {ts}  {:<9} {who}; {} recipient(s))",
                    rec.event.name(),
                    a.rcpts.len()
                );
            }
            MailEvent::Filtered(f) => {
                for d in &f.decisions {
                    let _ = writeln!(out, "  {ts}  filtered  {}", decision(d));
                }
                if f.require_tls {
                    let _ = writeln!(out, "  {ts}  filtered  delivery requires verified TLS");
                }
            }
            MailEvent::Quarantined(q) => {
                let _ = writeln!(
                    out,
                    "  {ts}  quarantined in {:?}: {}",
                    q.quarantine,
                    clean(&q.reason)
                );
            }
            MailEvent::DsnSent(d) => {
                let what = match (&d.dsn_queue_id, &d.suppressed) {
                    (Some(q), _) => format!("queued as {q} to <{}>", clean(&d.to)),
                    (None, Some(why)) => format!("suppressed: {why}"),
                    (None, None) => String::new(),
                };
                let _ = writeln!(out, "  {ts}  dsn_sent  {} {what}", d.kind);
            }
            MailEvent::Expired(e) => {
                let _ = writeln!(
                    out,
                    "  {ts}  expired   after {}s (lifetime {}s): {}",
                    e.age_secs,
                    e.lifetime_secs,
                    e.rcpts.len()
                );
            }
            other => {
                let _ = writeln!(out, "  {ts}  {}", other.name());
            }
        }
    }
}

/// `rspamd: spam suspect (score 7.20 of 15.00) → tag subject`.
fn decision(d: &postern_spool::ContentDecision) -> String {
    let action = if d.action.is_empty() {
        String::new()
    } else {
        format!(" → {}", clean(&d.action))
    };
    format!("{}: {}{action}", clean(&d.by), clean(&d.verdict))
}

fn write_attempt(out: &mut String, ts: &str, a: &Attempt) {
    let to = if a.ip.is_empty() {
        a.mx.clone()
    } else {
        format!("{} [{}]", a.mx, a.ip)
    };
    let _ = writeln!(
        out,
        "  {ts}  attempt {} to {to}: {}{}",
        a.attempt,
        a.outcome,
        if a.downgraded {
            " (plaintext retry after a failed handshake)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "      route {} to {}, {} ms; recipients: {}",
        a.route,
        a.destination,
        a.duration_ms,
        a.rcpts
            .iter()
            .map(|r| clean(r))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        out,
        "      policy: {} ({})",
        a.policy,
        clean(&a.policy_reason)
    );
    let offered = match a.starttls_offered {
        Some(true) => "yes",
        Some(false) => "no",
        None => "- (the session did not get that far)",
    };
    let _ = writeln!(out, "      STARTTLS offered: {offered}");
    match &a.tls {
        Some(t) => {
            let _ = writeln!(
                out,
                "      TLS: {} {}; verification: {} ({})",
                t.version,
                t.cipher,
                if t.verified { "ok" } else { "not verified" },
                clean(&t.verification)
            );
            if let Some(c) = &t.peer_cert {
                let _ = writeln!(out, "      certificate: {}", clean(&c.subject));
                let _ = writeln!(
                    out,
                    "        SANs: {}",
                    c.sans
                        .iter()
                        .map(|s| clean(s))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                if !c.issuer.is_empty() {
                    let _ = writeln!(out, "        issuer: {}", clean(&c.issuer));
                }
                let _ = writeln!(out, "        expires: {}", c.not_after);
                let _ = writeln!(out, "        sha256: {}", c.fingerprint_sha256);
            }
        }
        None => {
            let _ = writeln!(out, "      TLS: none");
        }
    }
    if let Some(r) = &a.reply {
        let _ = writeln!(out, "      reply: {}", clean(r));
    }
    if let Some(c) = &a.cause {
        let _ = writeln!(out, "      cause: {} — {}", c.id, clean(&c.summary));
        if !c.fix.is_empty() {
            let _ = writeln!(out, "      fix: {}", clean(&c.fix));
        }
        if !c.detail.is_empty() {
            let _ = writeln!(out, "      detail: {}", clean(&c.detail));
        }
    }
}
