//! End of data, the content policy (issue 11, `docs/content-policy.md`):
//! after mail authentication and before the commit, in this order —
//!
//! 1. **clamd** (`[clamav]`, the policy's `virus_scan`): infected → the
//!    policy's `virus_action` (quarantine `virus` by default);
//! 2. **rspamd** (`[rspamd]`, `spam_scan`): positive / suspect / clean by
//!    rspamd's action or the policy's thresholds; `X-Spam-Score:` and
//!    `X-Spam-Status:` added, rspamd's own `milter.add_headers` honoured;
//! 3. **milters** (`[[milter]]`, `milters`), in order, each seeing the
//!    previous one's changes;
//! 4. **message filters** (`[filters] message_rules`), once, with every
//!    verdict above as a fact;
//! 5. **content filters** (`content_rules`), per recipient: recipients with
//!    different outcomes get their own copy of the message.
//!
//! A filter rule's final action (accept, drop, reject, bounce, quarantine)
//! wins over the engines' policy actions; without one the engines' decide.
//! A refusal is answered here and nothing is stored; a drop is answered
//! `250` and nothing is stored (logged as a `dropped` session event); a
//! quarantine is stored held.
//!
//! # Security
//! Runs before the commit (tenet 1: never a `250` for what is not stored, and
//! a refused message leaves nothing behind). Engine failures defer by default
//! (`451`). Changes from rules and milters were validated by their crates
//! (no CR/LF injection); the message is rewritten only when it was read
//! whole (`[filters] max_scan_size`). A bounce is never sent for a whole
//! message: it becomes a reject at end of data (the sending MTA reports to
//! its user; no backscatter to a forged sender).
//!
//! # Standards
//! RFC 5321 §4.2 (one reply to DATA), §4.5.3.1 (limits); RFC 3463
//! (enhanced codes); RFC 8689 (the idea behind `require-tls`).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

use postern_content::MessageView;
use postern_engines::{ScanRequest, SpamOutcome, VirusVerdict};
use postern_filter::{Disposition, Facts, Outcome, Spam, TlsInfo, Virus};
use postern_policy::content::{
    EngineDisposition, Score, classify_spam, engine_failure, spam_disposition, virus_disposition,
};
use postern_proto::Reply;
use postern_spool::{ContentDecision, Envelope, EnvelopeRecipient};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use super::mailauth::Verdicts;
use crate::rewrite;

/// One copy of the message to store (one per recipient group).
#[derive(Debug, Clone)]
pub(super) struct Copy {
    /// Its recipients.
    pub(super) rcpts: Vec<EnvelopeRecipient>,
    /// The envelope sender (a milter may change it).
    pub(super) sender: String,
    /// The message as changed (without our `Received:`), when it changed.
    pub(super) message: Option<Vec<u8>>,
    /// Header fields to put in front (`X-Spam-*`, additions to a message too
    /// large to rewrite).
    pub(super) added_headers: String,
    /// Accepted into this quarantine, with the reason.
    pub(super) quarantine: Option<(String, String)>,
    /// Deliver only over verified TLS.
    pub(super) require_tls: bool,
    /// Bounce these recipients with this reply instead of delivering.
    pub(super) bounce: Option<String>,
    /// What was decided, in order.
    pub(super) decisions: Vec<ContentDecision>,
    /// Notifications the rules asked for.
    pub(super) notify: Vec<postern_filter::Notify>,
}

/// What the content policy decided.
pub(super) enum ContentStep {
    /// Refuse (`4xx`/`5xx`); nothing is stored.
    Refuse(Reply),
    /// Accept and discard (`250`, logged); nothing is stored.
    Drop {
        /// Why (the rule or the engine).
        reason: String,
    },
    /// Store these copies.
    Store(Vec<Copy>),
}

fn decision(
    by: impl Into<String>,
    verdict: impl Into<String>,
    action: impl Into<String>,
) -> ContentDecision {
    ContentDecision {
        by: by.into(),
        verdict: verdict.into(),
        action: action.into(),
    }
}

/// The engines' disposition in words (`quarantine "spam"`, `tag subject`).
fn describe(d: &EngineDisposition) -> String {
    match d {
        EngineDisposition::Deliver { subject_tag: None } => String::new(),
        EngineDisposition::Deliver {
            subject_tag: Some(t),
        } => format!("tag subject {t:?}"),
        EngineDisposition::Quarantine { name, .. } => format!("quarantine {name:?}"),
        EngineDisposition::Drop { .. } => "drop".into(),
        EngineDisposition::Refuse(r) => format!("refuse {}", reply_line(r)),
    }
}

/// The spam verdict fields we write; a client's own are removed when
/// rspamd is configured.
const SPAM_FIELDS: [&str; 3] = ["X-Spam-Status", "X-Spam-Score", "X-Spam-Flag"];

/// The engine whose verdict refused (for the `rejected` event's rule).
fn engine_name(decisions: &[ContentDecision]) -> &'static str {
    if decisions
        .iter()
        .any(|d| d.by == "clamav" && d.verdict.starts_with("infected"))
    {
        "clamav"
    } else if decisions.iter().any(|d| d.by == "rspamd") {
        "rspamd"
    } else {
        "content"
    }
}

use crate::replies::one_line as reply_line;

/// The symmetric key size of a TLS cipher suite, by its IANA name
/// (`TLS13_AES_256_GCM_SHA384` → 256): Sendmail's `{cipher_bits}`.
pub(super) fn cipher_bits(suite: &str) -> Option<u32> {
    let s = suite.to_ascii_uppercase();
    if s.contains("AES_256") || s.contains("CHACHA20") || s.contains("AES256") {
        Some(256)
    } else if s.contains("AES_128") || s.contains("AES128") {
        Some(128)
    } else {
        None
    }
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Whether the content policy applies to this transaction.
    pub(super) fn content_applies(&self) -> bool {
        let c = &self.ctx.shared.content;
        if !c.any() {
            return false;
        }
        let a = &self.flow().content;
        (a.filters && (c.settings.message_rules.is_some() || c.settings.content_rules.is_some()))
            || (a.spam_scan && c.rspamd.is_some())
            || (a.virus_scan && c.clamd.is_some())
            || (a.milters && !c.settings.milters.is_empty())
    }

    /// Runs the content policy on `message` (whole, without our
    /// `Received:`; `None` when larger than `max_scan_size`, with
    /// `header_only` its header section then).
    #[allow(clippy::too_many_lines)] // the five steps in the order the module documents
    pub(super) async fn content_step(
        &mut self,
        message: Option<&[u8]>,
        header_only: Option<&[u8]>,
        envelope: &Envelope,
        verdicts: &Verdicts,
    ) -> ContentStep {
        let shared = Arc::clone(&self.ctx.shared);
        let content = Arc::clone(&shared.content);
        if content.refresh_due() {
            let c = Arc::clone(&content);
            let _ = tokio::task::spawn_blocking(move || c.refresh_if_due()).await;
        }
        let flow = self.flow().clone();
        let a = &flow.content;
        let mut decisions = Vec::new();
        let mut engine = EngineDisposition::Deliver { subject_tag: None };
        let mut spam: Option<Spam> = None;
        let mut virus: Option<Virus> = None;
        let mut added = String::new();
        // Header fields to take out of what is stored: the spam verdict
        // fields we write (a client's own would pass for ours) and what
        // rspamd asks to remove.
        let mut removals: Vec<String> = if content.rspamd.is_some() {
            SPAM_FIELDS.iter().map(|n| (*n).to_owned()).collect()
        } else {
            Vec::new()
        };
        let mut sender = envelope.reverse_path.clone();
        let mut rcpts = envelope.recipients.clone();
        let mut current: Option<Cow<'_, [u8]>> = message.map(Cow::Borrowed);
        let helo = self.machine.facts().helo.clone();
        let auth_user = self.machine.facts().auth_user.clone();
        // The forward-confirmed name (rspamd `Hostname`, milter `{client_name}`):
        // never the HELO or an unconfirmed PTR, which the client controls.
        let client_name = self.gate.facts.verified.first().cloned();
        let hostname = self.ctx.listener.hostname.clone();
        let listener = self.ctx.listener.name.clone();
        let ip = self.peer.ip();
        let tls = self.tls.as_ref().map(|t| TlsInfo {
            version: t.version.clone(),
            cipher: t.cipher.clone(),
            client_cert_verified: false,
        });
        let engines_wanted = (a.virus_scan && content.clamd.is_some())
            || (a.spam_scan && content.rspamd.is_some())
            || (a.milters && !content.settings.milters.is_empty());
        if message.is_none() && engines_wanted {
            decisions.push(decision(
                "content",
                "not scanned: larger than [filters] max_scan_size",
                "",
            ));
        }

        // 1. clamd.
        if let (Some((clamd, on_failure)), true, Some(msg)) =
            (&content.clamd, a.virus_scan, message)
        {
            match clamd.scan_bytes(msg).await {
                Ok(VirusVerdict::Clean) => decisions.push(decision("clamav", "clean", "")),
                Ok(VirusVerdict::Infected { name }) => {
                    let d = virus_disposition(&name, a);
                    decisions.push(decision("clamav", format!("infected {name}"), describe(&d)));
                    self.event(&format!("virus found: {name}"));
                    virus = Some(Virus { name });
                    engine = d;
                }
                Ok(VirusVerdict::TooLarge { .. }) => {
                    decisions.push(decision("clamav", "not scanned: too large", ""));
                }
                Err(e) => {
                    let cause = e.cause();
                    self.in_tx(|| tracing::warn!(cause = cause.id, error = %e, "clamd failed"));
                    if let Some(reply) = engine_failure("virus", *on_failure) {
                        self.log_decision("data", "clamav", Some(&reply));
                        return ContentStep::Refuse(reply);
                    }
                    decisions.push(decision(
                        "clamav",
                        format!("failed ({}): accepted unscanned", cause.id),
                        "",
                    ));
                }
            }
        }

        // 2. rspamd.
        let rcpt_addrs: Vec<String> = rcpts.iter().map(|r| r.address.clone()).collect();
        if let (Some((rspamd, on_failure)), true, Some(msg)) =
            (&content.rspamd, a.spam_scan, message)
        {
            let req = ScanRequest {
                ip: Some(ip),
                helo: helo.as_deref(),
                from: Some(sender.as_str()),
                rcpts: &rcpt_addrs,
                user: auth_user.as_deref(),
                tls_version: tls.as_ref().map(|t| t.version.as_str()),
                tls_cipher: tls.as_ref().map(|t| t.cipher.as_str()),
                mta_name: Some(hostname.as_str()),
                queue_id: Some(envelope.queue_id.as_str()),
                settings_id: a.rspamd_settings.as_deref(),
                // rspamd scores a missing name as unknown (HFILTER_HOSTNAME_UNKNOWN,
                // RDNS_NONE): when FCrDNS was looked up, say which it is;
                // when not (no policy needed it) or it failed, say nothing.
                hostname: self
                    .gate
                    .facts
                    .fcrdns
                    .done()
                    .map(|_| client_name.as_deref().unwrap_or("unknown")),
            };
            match rspamd.check_bytes(&req, msg).await {
                Ok(SpamOutcome::Scanned(v)) => {
                    let score = Score::from_f64(v.score);
                    let class = classify_spam(v.action.as_str(), score, a);
                    let required = Score::from_f64(v.required_score);
                    let d = spam_disposition(class, score, a);
                    let is_spam = !matches!(class, postern_policy::content::SpamClass::Clean);
                    let _ = write!(added, "X-Spam-Score: {score}\r\n");
                    let _ = write!(
                        added,
                        "X-Spam-Status: {}, score={score} required={required} class={}\r\n",
                        if is_spam { "Yes" } else { "No" },
                        class.as_str()
                    );
                    for r in &v.remove_headers {
                        // Every instance (rspamd's index is finer; removing
                        // all of a name it distrusts is the safe reading).
                        if !removals.iter().any(|n| n.eq_ignore_ascii_case(&r.name)) {
                            removals.push(r.name.clone());
                        }
                    }
                    for h in &v.add_headers {
                        if rewrite::safe_value(&h.value)
                            && !h.name.is_empty()
                            && h.name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
                        {
                            let _ = write!(added, "{}: {}\r\n", h.name, h.value.trim_start());
                        }
                    }
                    decisions.push(decision(
                        "rspamd",
                        format!(
                            "spam {} (score {score} of {required}; rspamd action {:?})",
                            class.as_str(),
                            v.action.as_str()
                        ),
                        describe(&d),
                    ));
                    spam = Some(Spam {
                        score: v.score,
                        action: v.action.as_str().to_owned(),
                    });
                    if matches!(engine, EngineDisposition::Deliver { subject_tag: None }) {
                        engine = d;
                    }
                }
                Ok(SpamOutcome::Skipped(_)) => {
                    decisions.push(decision(
                        "rspamd",
                        "not scanned: larger than [rspamd] max_size",
                        "",
                    ));
                }
                Err(e) => {
                    let cause = e.cause();
                    self.in_tx(|| tracing::warn!(cause = cause.id, error = %e, "rspamd failed"));
                    if let Some(reply) = engine_failure("spam", *on_failure) {
                        self.log_decision("data", "rspamd", Some(&reply));
                        return ContentStep::Refuse(reply);
                    }
                    decisions.push(decision(
                        "rspamd",
                        format!("failed ({}): accepted unscanned", cause.id),
                        "",
                    ));
                }
            }
        }

        // 3. Milters, each seeing the previous one's changes.
        let run_milters = a.milters && !matches!(engine, EngineDisposition::Refuse(_));
        if run_milters && let Some(msg) = current.clone() {
            let mail_args = envelope.params.esmtp_args();
            let session = self.milter_facts();
            let mut msg = msg.into_owned();
            let mut changed = false;
            for spec in &content.settings.milters {
                let rcpt_now: Vec<String> = rcpts.iter().map(|r| r.address.clone()).collect();
                let parsed = rewrite::split(&msg);
                let mut env = session.envelope(&sender, &rcpt_now);
                env.mail_args = &mail_args;
                env.queue_id = Some(envelope.queue_id.as_str());
                let by = format!("milter:{}", spec.name);
                let result =
                    postern_milter::run(spec, &env, &parsed.fields, &msg[parsed.body_at..]).await;
                let r = match result {
                    Ok(r) => r,
                    Err(e) => {
                        let cause = e.cause();
                        self.in_tx(|| tracing::warn!(milter = %spec.name, cause = cause.id, error = %e, "milter failed"));
                        match spec.default_action.verdict() {
                            postern_milter::Verdict::Reject(reply)
                            | postern_milter::Verdict::Tempfail(reply) => {
                                self.log_decision("data", &by, Some(&reply));
                                return ContentStep::Refuse(reply);
                            }
                            _ => {
                                decisions.push(decision(
                                    &by,
                                    format!("failed ({}): skipped", cause.id),
                                    "",
                                ));
                                continue;
                            }
                        }
                    }
                };
                match r.verdict {
                    postern_milter::Verdict::Reject(reply)
                    | postern_milter::Verdict::Tempfail(reply) => {
                        self.event(&format!("{by}: {}", reply_line(&reply)));
                        self.log_decision("data", &by, Some(&reply));
                        return ContentStep::Refuse(reply);
                    }
                    postern_milter::Verdict::Discard => {
                        return self.dropped(format!("{by} discarded it"));
                    }
                    postern_milter::Verdict::Accept | postern_milter::Verdict::Continue => {}
                }
                let n = r.modifications.len();
                if n > 0 {
                    let applied =
                        postern_milter::apply(&parsed.fields, &rcpt_now, &r.modifications);
                    let body = applied.body.as_deref().unwrap_or(&msg[parsed.body_at..]);
                    let new = rewrite::join(&applied.headers, parsed.blank_line, body);
                    msg = new;
                    changed = true;
                    if applied.rcpts != rcpt_now {
                        rcpts = applied
                            .rcpts
                            .iter()
                            .map(|addr| {
                                rcpts
                                    .iter()
                                    .find(|r| r.address.eq_ignore_ascii_case(addr))
                                    .cloned()
                                    .unwrap_or_else(|| EnvelopeRecipient {
                                        address: addr.clone(),
                                        ..EnvelopeRecipient::default()
                                    })
                            })
                            .collect();
                    }
                    if let Some((from, _)) = &applied.mail_from {
                        sender.clone_from(from);
                    }
                    if let Some(reason) = &applied.quarantine
                        && matches!(engine, EngineDisposition::Deliver { .. })
                    {
                        engine = EngineDisposition::Quarantine {
                            name: postern_spool::DEFAULT_QUARANTINE.into(),
                            reason: format!("{by}: {reason}"),
                        };
                    }
                }
                decisions.push(decision(
                    &by,
                    "accept",
                    if n > 0 {
                        format!("{n} change(s)")
                    } else {
                        String::new()
                    },
                ));
            }
            if changed {
                current = Some(Cow::Owned(msg));
            }
        }

        // 4 and 5. The rules (the decoded message view only when there are
        // some).
        let any_rules = a.filters
            && (content.settings.message_rules.is_some()
                || content.settings.content_rules.is_some());
        let view_bytes: &[u8] = if any_rules {
            current.as_deref().or(header_only).unwrap_or_default()
        } else {
            &[]
        };
        let view = MessageView::parse(view_bytes, &content.settings.view);
        let rcpt_addrs: Vec<String> = rcpts.iter().map(|r| r.address.clone()).collect();
        let group = self.gate.class.as_ref().and_then(|c| c.group.clone());
        let facts = Facts {
            sender: &sender,
            recipients: &rcpt_addrs,
            listener: &listener,
            sender_group: group.as_deref(),
            policy: Some(flow.name.as_str()),
            auth_user: auth_user.as_deref(),
            client_ip: Some(ip),
            helo: helo.as_deref(),
            spf: verdicts.spf.as_deref(),
            dkim: verdicts.dkim.as_deref(),
            dmarc: verdicts.dmarc.as_deref(),
            tls: tls.as_ref(),
            spam: spam.as_ref(),
            virus: virus.as_ref(),
            message: &view,
            dictionaries: &content.dictionaries,
        };
        let message_outcome = match (a.filters, content.message_rules()) {
            (true, Some(rules)) => postern_filter::evaluate(&rules, &facts),
            _ => Outcome::default(),
        };
        for hit in &message_outcome.hits {
            decisions.push(decision(
                format!("rule:{}", hit.rule),
                format!("matched (message rules line {})", hit.line),
                "",
            ));
        }
        let message_decided = message_outcome.decided_by.is_some();
        let content_rules = content.content_rules().filter(|_| {
            a.filters && (!message_decided || message_outcome.disposition == Disposition::Deliver)
        });
        let groups: Vec<(Vec<String>, Outcome)> = match content_rules {
            // A copy per recipient group (a message too large to scan is
            // still split: the commit reads it back for each copy).
            Some(rules) => postern_filter::evaluate_per_recipient(&rules, &facts)
                .into_iter()
                .map(|g| (g.recipients, g.outcome))
                .collect(),
            None => vec![(rcpt_addrs.clone(), Outcome::default())],
        };
        let several = groups.len() > 1;
        let mut copies: Vec<Copy> = Vec::new();
        let mut dropped = Vec::new();
        let mut refused: Option<Reply> = None;
        // Whose failures may be reported by DSN: our own users and relay
        // clients, or a sender the checks vouched for (RFC 3834 §2, RFC 5321
        // §6.2: no reports to unverified senders).
        let trusted_sender = auth_user.is_some()
            || flow.action == postern_policy::admission::FlowAction::Relay
            || shared.policy.relay().is_relay_client(ip)
            || verdicts.dmarc.as_deref() == Some("pass")
            || verdicts.spf.as_deref() == Some("pass");
        for (group_rcpts, group_outcome) in groups {
            let outcome = merge(&message_outcome, &group_outcome);
            let mut d = decisions.clone();
            for hit in &group_outcome.hits {
                d.push(decision(
                    format!("rule:{}", hit.rule),
                    format!("matched (content rules line {})", hit.line),
                    "",
                ));
            }
            let filter_decided =
                message_outcome.decided_by.is_some() || group_outcome.decided_by.is_some();
            let mut copy = Copy {
                // Exact: group addresses are copies of the envelope's.
                rcpts: rcpts
                    .iter()
                    .filter(|r| group_rcpts.contains(&r.address))
                    .cloned()
                    .collect(),
                sender: sender.clone(),
                message: None,
                added_headers: added.clone(),
                quarantine: None,
                require_tls: outcome.require_tls,
                bounce: None,
                decisions: Vec::new(),
                notify: outcome.notify.clone(),
            };
            let mut subject_tag = None;
            // A rule's accept does not lift a virus verdict or an engine's
            // refusal (a forged allow-listed sender must not carry malware
            // through); it does lift the spam actions (allow lists).
            let engine_binding = virus.is_some() || matches!(engine, EngineDisposition::Refuse(_));
            let rule_delivers = filter_decided && outcome.disposition == Disposition::Deliver;
            if filter_decided && !(rule_delivers && engine_binding) {
                let by = outcome.decided_by.clone().unwrap_or_default();
                match &outcome.disposition {
                    Disposition::Deliver => {
                        d.push(decision(format!("rule:{by}"), "accept", "deliver"));
                    }
                    Disposition::Drop => {
                        d.push(decision(format!("rule:{by}"), "drop", "drop"));
                        if !several {
                            self.refused_notify = notify_all(&outcome, "dropped");
                            return self.dropped(format!("rule {by:?}"));
                        }
                        dropped.extend(group_rcpts);
                        continue;
                    }
                    Disposition::Reject(r) | Disposition::Bounce(r) => {
                        let reply = r.to_reply();
                        if !several || reply.code < 500 {
                            // One reply for the whole message: a temporary
                            // refusal of some recipients defers them all
                            // (the client retries; no permanent bounce).
                            if reply.code >= 500 {
                                self.refused_notify = notify_all(
                                    &outcome,
                                    &format!("refused: {}", reply_line(&reply)),
                                );
                            }
                            self.event(&format!("rule {by:?}: {}", reply_line(&reply)));
                            self.log_decision("data", &format!("rule:{by}"), Some(&reply));
                            return ContentStep::Refuse(reply);
                        }
                        refused.get_or_insert(reply.clone());
                        if !trusted_sender {
                            // A DSN to an unverified sender is backscatter:
                            // these recipients are dropped (and logged).
                            d.push(decision(
                                format!("rule:{by}"),
                                "refused",
                                "dropped: the sender is not verified, so no DSN",
                            ));
                            dropped.extend(group_rcpts);
                            continue;
                        }
                        d.push(decision(format!("rule:{by}"), "bounce", reply_line(&reply)));
                        copy.bounce = Some(reply_line(&reply));
                    }
                    Disposition::Quarantine { name } => {
                        copy.quarantine = Some((name.clone(), format!("rule {by:?}")));
                        d.push(decision(
                            format!("rule:{by}"),
                            "quarantine",
                            format!("quarantine {name:?}"),
                        ));
                    }
                }
            } else {
                if rule_delivers {
                    d.push(decision(
                        "rules",
                        "accept not applied",
                        "a virus verdict or an engine refusal stands",
                    ));
                }
                match &engine {
                    EngineDisposition::Deliver { subject_tag: t } => subject_tag.clone_from(t),
                    EngineDisposition::Refuse(reply) => {
                        self.log_decision("data", engine_name(&decisions), Some(reply));
                        return ContentStep::Refuse(reply.clone());
                    }
                    EngineDisposition::Drop { reason } => return self.dropped(reason.clone()),
                    EngineDisposition::Quarantine { name, reason } => {
                        copy.quarantine = Some((name.clone(), reason.clone()));
                    }
                }
            }
            if copy.bounce.is_some() {
                // Only the refused recipients: no bcc or redirect address
                // ever shows in a DSN.
                copy.decisions = d;
                copies.push(copy);
                continue;
            }
            // The envelope changes the rules asked for.
            if let Some(to) = &outcome.redirect {
                copy.rcpts = vec![EnvelopeRecipient {
                    address: to.clone(),
                    notify: Some("NEVER".into()),
                    orcpt: None,
                }];
                d.push(decision("rules", "redirect", format!("to <{to}>")));
            }
            for b in &outcome.bcc {
                if !copy.rcpts.iter().any(|r| r.address.eq_ignore_ascii_case(b)) {
                    // NOTIFY=NEVER: a failing archive address is not
                    // reported to the sender (it would disclose it).
                    copy.rcpts.push(EnvelopeRecipient {
                        address: b.clone(),
                        notify: Some("NEVER".into()),
                        orcpt: None,
                    });
                }
                d.push(decision("rules", "bcc", format!("<{b}>")));
            }
            if outcome.require_tls {
                d.push(decision(
                    "rules",
                    "require-tls",
                    "deliver only over verified TLS",
                ));
            }
            // Header changes: rewrite when the message was read whole.
            let mut edits = outcome.clone();
            let head = current.as_deref().or(header_only).unwrap_or_default();
            let present = |name: &str| !postern_proto::header_values(head, name).is_empty();
            let strip: Vec<postern_filter::HeaderEdit> = removals
                .iter()
                .filter(|n| present(n))
                .map(|n| postern_filter::HeaderEdit::Remove { name: n.clone() })
                .collect();
            edits.header_edits.splice(0..0, strip);
            if let Some(tag) = subject_tag {
                // The policy's tag is a word: a space after it.
                let tag = if tag.ends_with(char::is_whitespace) {
                    tag
                } else {
                    format!("{tag} ")
                };
                edits.subject_prefix = Some(match edits.subject_prefix.take() {
                    Some(p) => format!("{tag}{p}"),
                    None => tag,
                });
            }
            let wants_rewrite = !edits.header_edits.is_empty() || edits.subject_prefix.is_some();
            match (&current, wants_rewrite) {
                (Some(msg), true) => {
                    let split_at = postern_auth::canon::split_message(msg).0.len();
                    let head = &msg[..split_at];
                    let head = head.strip_suffix(b"\r\n").unwrap_or(head);
                    let mut new = postern_filter::apply_header_edits(head, &edits);
                    new.extend_from_slice(b"\r\n");
                    new.extend_from_slice(&msg[split_at..]);
                    copy.message = Some(new);
                    for e in &edits.header_edits {
                        d.push(decision("rules", e.to_string(), ""));
                    }
                    if let Some(p) = &edits.subject_prefix {
                        d.push(decision("rules", format!("prefix-subject {p:?}"), ""));
                    }
                }
                (Some(msg), false) if matches!(current, Some(Cow::Owned(_))) => {
                    copy.message = Some(msg.to_vec());
                }
                (None, true) => {
                    d.push(decision(
                        "rules",
                        "header changes not applied: larger than [filters] max_scan_size",
                        "",
                    ));
                }
                _ => {}
            }
            if copy.rcpts.is_empty() {
                continue;
            }
            copy.decisions = d;
            copies.push(copy);
        }
        if !dropped.is_empty() && !copies.is_empty() {
            let why = format!(
                "for {} of the recipients: {}",
                dropped.len(),
                dropped.join(", ")
            );
            self.event(&format!("dropped {why}"));
            self.log_drop(&why);
        }
        let delivered = copies.iter().any(|c| c.bounce.is_none());
        if let (false, Some(reply)) = (delivered, refused) {
            // Nobody gets the message: one refusal at end of data says so
            // better than DSNs (and never reaches a forged sender).
            self.log_decision("data", "rules", Some(&reply));
            return ContentStep::Refuse(reply);
        }
        if copies.is_empty() {
            return self.dropped("every recipient dropped by the content rules".into());
        }
        ContentStep::Store(copies)
    }

    /// A drop: logged as a `dropped` session event; the client gets `250`.
    fn dropped(&mut self, reason: String) -> ContentStep {
        self.event(&format!("dropped: {reason}"));
        self.in_tx(|| tracing::info!(reason = %reason, "message dropped by the content policy"));
        ContentStep::Drop { reason }
    }
}

/// Every notification of `outcome`, with what happened to the message.
fn notify_all(outcome: &Outcome, what: &str) -> Vec<(postern_filter::Notify, String)> {
    outcome
        .notify
        .iter()
        .map(|n| (n.clone(), what.to_owned()))
        .collect()
}

/// The message filters' outcome with one recipient group's: a final
/// disposition of the message filters wins; edits, recipients and
/// notifications add up.
fn merge(message: &Outcome, group: &Outcome) -> Outcome {
    let mut out = message.clone();
    if message.decided_by.is_none() {
        out.disposition = group.disposition.clone();
        out.decided_by.clone_from(&group.decided_by);
    }
    out.hits.extend(group.hits.iter().cloned());
    out.header_edits.extend(group.header_edits.iter().cloned());
    if let Some(p) = &group.subject_prefix {
        out.subject_prefix = Some(match out.subject_prefix.take() {
            Some(m) => format!("{p}{m}"),
            None => p.clone(),
        });
    }
    if group.redirect.is_some() {
        out.redirect.clone_from(&group.redirect);
    }
    out.bcc.extend(group.bcc.iter().cloned());
    out.notify.extend(group.notify.iter().cloned());
    out.require_tls |= group.require_tls;
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn cipher_bits_by_suite_name() {
        use super::cipher_bits;
        assert_eq!(cipher_bits("TLS13_AES_256_GCM_SHA384"), Some(256));
        assert_eq!(cipher_bits("TLS13_CHACHA20_POLY1305_SHA256"), Some(256));
        assert_eq!(cipher_bits("TLS13_AES_128_GCM_SHA256"), Some(128));
        assert_eq!(
            cipher_bits("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
            Some(128)
        );
        assert_eq!(cipher_bits("ECDHE-RSA-AES256-GCM-SHA384"), Some(256));
        assert_eq!(cipher_bits("TLS_NULL_WITH_NULL_NULL"), None);
    }
}
