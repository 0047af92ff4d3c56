//! The `track show` timeline and the `track evidence` report.

use std::fmt::Write as _;

use postern_track::{Attempt, CauseInfo, MailEvent, PeerCert, TrackRecord};

use super::clean;
use crate::sqlite::map::ip_of;
use crate::types::{Evidence, MessageLife, TlsEvidence};

fn indent_cause(out: &mut String, cause: Option<&CauseInfo>) {
    if let Some(c) = cause {
        let _ = writeln!(out, "      cause: {} — {}", clean(&c.id), clean(&c.summary));
        if !c.fix.is_empty() {
            let _ = writeln!(out, "      fix:   {}", clean(&c.fix));
        }
        if !c.detail.is_empty() {
            let _ = writeln!(out, "      detail: {}", clean(&c.detail));
        }
    }
}

fn attempt_line(a: &Attempt) -> String {
    let tls = match &a.tls {
        Some(t) => format!(
            "{} {}{}, certificate {}{}",
            t.version,
            t.cipher,
            t.group
                .as_ref()
                .map(|g| format!(" group {g}"))
                .unwrap_or_default(),
            if t.verified {
                "verified"
            } else {
                "not verified"
            },
            if t.verification.is_empty() {
                String::new()
            } else {
                format!(" ({})", t.verification)
            }
        ),
        None if a.ip.is_empty() => "not connected".to_owned(),
        None => "plaintext".to_owned(),
    };
    format!(
        "#{} to {} via {} [{}] ({}): {}; {}; policy {} ({}){}",
        a.attempt,
        a.destination,
        if a.mx.is_empty() { "-" } else { &a.mx },
        a.ip,
        a.route,
        a.outcome,
        tls,
        a.policy,
        a.policy_reason,
        if a.downgraded {
            "; PLAINTEXT RETRY after a failed handshake"
        } else {
            ""
        }
    )
}

fn record_lines(rec: &TrackRecord, out: &mut String) {
    let name = rec.event.name();
    let head = |out: &mut String, text: &str| {
        let _ = writeln!(out, "{}  {:<11} {}", rec.ts, name, clean(text));
    };
    match &rec.event {
        MailEvent::Received(r) => {
            let tls = match (&r.tls_params, &r.tls) {
                (Some(p), _) => format!(
                    "{} {}{}{}",
                    p.version,
                    p.cipher,
                    p.group
                        .as_ref()
                        .map(|g| format!(" group {g}"))
                        .unwrap_or_default(),
                    p.sni
                        .as_ref()
                        .map(|s| format!(" SNI {s}"))
                        .unwrap_or_default()
                ),
                (None, Some(s)) => s.clone(),
                (None, None) if r.peer.is_empty() => "local".to_owned(),
                (None, None) => "PLAINTEXT".to_owned(),
            };
            head(
                out,
                &format!(
                    "from {}[{}] HELO {} on {}, {} octets, {}",
                    r.client_name.as_deref().unwrap_or(""),
                    ip_of(&r.peer).map_or_else(|| r.peer.clone(), |ip| ip.to_string()),
                    r.helo,
                    r.listener,
                    r.size,
                    tls
                ),
            );
            let mut extra = Vec::new();
            if let Some(u) = &r.auth_user {
                extra.push(format!("AUTH user {u}"));
            }
            if let Some(g) = &r.sender_group {
                extra.push(format!("sender group {g}"));
            }
            if let Some(p) = &r.policy {
                extra.push(format!("mail-flow policy {p}"));
            }
            if !extra.is_empty() {
                let _ = writeln!(out, "      {}", clean(&extra.join(", ")));
            }
            if let Some(a) = &r.authentication {
                let _ = writeln!(out, "      authentication: {}", clean(a));
            }
            if !r.dkim_signed.is_empty() {
                let _ = writeln!(out, "      signed: {}", clean(&r.dkim_signed.join(", ")));
            }
            if let Some(h) = &r.held {
                let _ = writeln!(out, "      held: {}", clean(h));
            }
        }
        MailEvent::Queued(q) => head(
            out,
            &format!("{} recipient(s), origin {}", q.rcpt_count, q.origin),
        ),
        MailEvent::Attempt(a) => {
            head(out, &attempt_line(a));
            if let Some(r) = &a.reply {
                let _ = writeln!(out, "      reply: {}", clean(r));
            }
            indent_cause(out, a.cause.as_ref());
        }
        MailEvent::Delivered(o) | MailEvent::Deferred(o) | MailEvent::Bounced(o) => {
            let mut text = format!("{} {}", o.rcpt, o.status);
            if !o.mx.is_empty() {
                let _ = write!(text, " by {} [{}]", o.mx, o.ip);
            }
            if let Some(t) = &o.tls {
                let _ = write!(text, " over {t}");
            }
            if let Some(n) = &o.next_attempt {
                let _ = write!(text, ", next attempt {n}");
            }
            head(out, &text);
            if let Some(r) = &o.reply {
                let _ = writeln!(out, "      reply: {}", clean(r));
            }
            if !matches!(rec.event, MailEvent::Delivered(_)) {
                indent_cause(out, o.cause.as_ref());
            }
        }
        MailEvent::DsnSent(d) => {
            let text = match (&d.dsn_queue_id, &d.suppressed) {
                (_, Some(why)) => format!("{} DSN to <{}> suppressed: {why}", d.kind, d.to),
                (Some(q), None) => format!("{} DSN to <{}> queued as {q}", d.kind, d.to),
                (None, None) => format!("{} DSN to <{}>", d.kind, d.to),
            };
            head(out, &text);
        }
        MailEvent::Expired(x) => head(
            out,
            &format!(
                "{} after {}s (lifetime {}s)",
                x.rcpts.join(", "),
                x.age_secs,
                x.lifetime_secs
            ),
        ),
        MailEvent::Badmail(b) => head(out, &format!("{} → {}", b.reason, b.path)),
        MailEvent::Held(q) | MailEvent::Released(q) | MailEvent::Deleted(q) => {
            if q.by.is_empty() {
                head(out, &format!("{} via {}", q.rcpts.join(", "), q.via));
            } else {
                head(
                    out,
                    &format!("{} via {} by {}", q.rcpts.join(", "), q.via, q.by),
                );
            }
        }
        MailEvent::Filtered(f) => {
            head(
                out,
                if f.require_tls {
                    "content decisions (delivery requires verified TLS)"
                } else {
                    "content decisions"
                },
            );
            for d in &f.decisions {
                let action = if d.action.is_empty() {
                    String::new()
                } else {
                    format!(" → {}", d.action)
                };
                let _ = writeln!(
                    out,
                    "      {}: {}{}",
                    clean(&d.by),
                    clean(&d.verdict),
                    clean(&action)
                );
            }
        }
        MailEvent::Quarantined(q) => head(out, &format!("into {}: {}", q.quarantine, q.reason)),
    }
}

/// The whole life of a message on one screen: who sent it over which TLS,
/// every decision, every attempt with its TLS facts and cause / fix, the
/// outcome per recipient, DSNs.
pub fn life_text(life: &MessageLife) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Message {}", life.queue_id);
    if let Some(m) = &life.message_id {
        let _ = writeln!(out, "  Message-ID: <{}>", clean(m.trim_matches(['<', '>'])));
    }
    if let Some(s) = &life.sender {
        let _ = writeln!(out, "  From:    <{}>", clean(s));
    }
    if !life.recipients.is_empty() {
        let _ = writeln!(out, "  To:      {}", clean(&life.recipients.join(", ")));
    }
    if let Some(s) = &life.subject {
        let _ = writeln!(out, "  Subject: {}", clean(s));
    }
    let _ = writeln!(out, "  Outcome: {}", life.outcome);
    if !life.related.is_empty() {
        let _ = writeln!(out, "  Related: {}", life.related.join(", "));
    }
    out.push('\n');
    for rec in &life.records {
        record_lines(rec, &mut out);
    }
    // The outcome per recipient: the last word on each.
    let mut last: Vec<(String, String)> = Vec::new();
    for rec in &life.records {
        let (rcpts, state): (Vec<&str>, &str) = match &rec.event {
            MailEvent::Delivered(o) => (vec![o.rcpt.as_str()], "delivered"),
            MailEvent::Deferred(o) => (vec![o.rcpt.as_str()], "deferred"),
            MailEvent::Bounced(o) => (vec![o.rcpt.as_str()], "bounced"),
            MailEvent::Expired(x) => (x.rcpts.iter().map(String::as_str).collect(), "expired"),
            _ => continue,
        };
        for r in rcpts {
            match last.iter_mut().find(|(x, _)| x.eq_ignore_ascii_case(r)) {
                Some(slot) => state.clone_into(&mut slot.1),
                None => last.push((r.to_owned(), state.to_owned())),
            }
        }
    }
    if !last.is_empty() {
        out.push_str("\nPer recipient:\n");
        for (r, s) in last {
            let _ = writeln!(out, "  {:<10} {}", s, clean(&r));
        }
    }
    out
}

fn tls_lines(out: &mut String, tls: Option<&TlsEvidence>) {
    match tls {
        None => out.push_str("  TLS:          none (PLAINTEXT)\n"),
        Some(t) => {
            let _ = writeln!(
                out,
                "  TLS:          {}, cipher {}",
                clean(&t.version),
                clean(&t.cipher)
            );
            if let Some(g) = &t.group {
                let _ = writeln!(out, "  group:        {}", clean(g));
            }
            if let Some(s) = &t.sni {
                let _ = writeln!(out, "  SNI:          {}", clean(s));
            }
            if let Some(c) = &t.cert {
                cert_lines(out, c);
            }
        }
    }
}

fn cert_lines(out: &mut String, c: &PeerCert) {
    let _ = writeln!(out, "  certificate:  {}", clean(&c.subject));
    if !c.sans.is_empty() {
        let _ = writeln!(out, "  SANs:         {}", clean(&c.sans.join(", ")));
    }
    if !c.issuer.is_empty() {
        let _ = writeln!(out, "  issuer:       {}", clean(&c.issuer));
    }
    let _ = writeln!(out, "  SHA-256:      {}", clean(&c.fingerprint_sha256));
    let _ = writeln!(out, "  not after:    {}", clean(&c.not_after));
}

/// The transport-security evidence: the inbound hop and each outbound
/// attempt with version, cipher, group, certificate, verification method
/// and result, policy level and why, downgrade.
pub fn evidence_text(ev: &Evidence) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Transport security evidence for {}", ev.queue_id);
    if let Some(m) = &ev.message_id {
        let _ = writeln!(out, "Message-ID: <{}>", clean(m.trim_matches(['<', '>'])));
    }
    out.push('\n');
    match &ev.inbound {
        Some(i) => {
            let _ = writeln!(
                out,
                "Inbound  {}  from {}[{}] HELO {} on listener {}",
                i.ts,
                clean(i.client_name.as_deref().unwrap_or("")),
                clean(&i.client_ip),
                clean(&i.helo),
                clean(&i.listener)
            );
            if let Some(u) = &i.auth_user {
                let _ = writeln!(out, "  AUTH user:    {}", clean(u));
            }
            tls_lines(&mut out, i.tls.as_ref());
        }
        None => out
            .push_str("Inbound: no SMTP hop recorded (a DSN, the pickup folder, or not indexed)\n"),
    }
    if ev.outbound.is_empty() {
        out.push_str("\nOutbound: no delivery attempt yet\n");
    }
    for h in &ev.outbound {
        let _ = writeln!(
            out,
            "\nOutbound attempt #{}  {}  {} via {}[{}] (route {})",
            h.attempt,
            h.ts,
            clean(&h.destination),
            clean(&h.mx),
            clean(&h.ip),
            clean(&h.route)
        );
        let _ = writeln!(
            out,
            "  policy:       {} — {}",
            clean(&h.policy),
            clean(&h.policy_reason)
        );
        let _ = writeln!(
            out,
            "  STARTTLS:     {}",
            match h.starttls_offered {
                Some(true) => "offered",
                Some(false) => "NOT offered",
                None => "unknown (session ended earlier)",
            }
        );
        tls_lines(&mut out, h.tls.as_ref());
        let _ = writeln!(
            out,
            "  verification: {} — {} ({})",
            h.verification,
            clean(&h.verification_result),
            if h.verified {
                "verified"
            } else {
                "NOT verified"
            }
        );
        let _ = writeln!(
            out,
            "  downgrade:    {}",
            if h.downgraded {
                "YES: plaintext retry after a failed handshake"
            } else {
                "no"
            }
        );
        let _ = writeln!(out, "  outcome:      {}", clean(&h.outcome));
        if let Some(r) = &h.reply {
            let _ = writeln!(out, "  reply:        {}", clean(r));
        }
        if let Some(c) = &h.cause {
            let _ = writeln!(
                out,
                "  cause:        {} — {}",
                clean(&c.id),
                clean(&c.summary)
            );
            if !c.fix.is_empty() {
                let _ = writeln!(out, "  fix:          {}", clean(&c.fix));
            }
        }
    }
    out
}
