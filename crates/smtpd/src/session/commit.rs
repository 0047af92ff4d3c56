//! End of data: mail authentication, the content policy, DKIM signing, then
//! the durable commit of each copy of the message — `250` only when every
//! copy is durable (tenet 1).
//!
//! Usually there is one copy: the message as it streamed to its `tmp/`
//! file, with header fields of ours put in front (`Envelope::added_headers`).
//! The content policy can make more: a copy per recipient group when the
//! content rules split the message, and a rewritten copy when a rule or a
//! milter changed header fields or the body. Each is committed like any
//! message and announced to delivery (`QueuedHook`); the client hears
//! `queued as ID [ID …]`.
//!
//! # Security
//! Nothing is stored before every check said yes; a refused or dropped
//! message's `tmp/` file is removed. Messages are held in memory only up
//! to `max_verify_size` / `[filters] max_scan_size`, within the server-wide
//! `verify_memory` budget (`451 4.3.2` when exhausted).
//!
//! # Standards
//! RFC 5321 §4.1.1.4 (the reply to the end of data), §6.1 (reliable
//! delivery: the `250` is a promise).

use postern_proto::session::Event;
use postern_spool::{Envelope, QueueId, SpoolError};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use super::content::{ContentStep, Copy};
use super::data::{Body, TrackingIds, begin, scrubbed};
use super::mailauth::{
    AuthStep, ForAuth, Verdicts, header_section, read_message, reserve, restore,
};
use crate::received;
use crate::replies;

/// One copy to commit: its envelope, and its bytes when they are not the
/// streamed original.
struct Commit {
    envelope: Envelope,
    bytes: Option<Vec<u8>>,
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Commits the message: `250` only when it is durable.
    #[allow(clippy::too_many_lines)] // the steps in the order the module documents
    pub(super) async fn commit(&mut self) {
        let (Some(mut body), Some(tx)) = (self.body.take(), self.machine.transaction()) else {
            let reply = replies::spool_error(&SpoolError::Poisoned);
            self.machine.handle(Event::Committed(Err(reply)));
            return;
        };
        let mut envelope = self.envelope_for(tx);
        // The id the spool file has (or will have): told to the engines.
        envelope.queue_id = body.queue_id;
        let ids = body
            .ids
            .take()
            .unwrap_or_else(|| TrackingIds::from_start(&body.pending));
        envelope.message_id = ids.message_id;
        // Privacy: only with `[tracking] subjects = true`.
        envelope.subject = ids
            .subject
            .filter(|_| self.ctx.shared.settings.record_subjects);
        // Small messages were never flushed: their header section is scrubbed
        // here, before verification sees it and before it is stored.
        if body.incoming.is_none() && body.scrub.is_some() {
            let pending = std::mem::take(&mut body.pending);
            body.pending = scrubbed(pending, body.scrub.as_deref());
        }
        let plan = self.auth_plan();
        let content_on = self.content_applies();
        let mut copies: Vec<Copy> = Vec::new();
        let mut original: Option<Vec<u8>> = None;
        let mut signatures: Vec<String> = Vec::new();
        // The verification memory this message holds until it is committed:
        // the message itself, then any copies the content step made.
        let mut permits = Vec::new();
        // Per copy (or the original): the ARC set to put on top.
        let mut seals: Vec<String> = Vec::new();
        let mut subject = String::new();
        if plan.any() || content_on {
            // A server-wide budget for messages held in memory while they
            // are checked or signed; a bounded wait, then 451 4.3.2.
            let shared = std::sync::Arc::clone(&self.ctx.shared);
            match reserve(&shared.mail_auth, body.total).await {
                Ok(p) => permits.push(p),
                Err(reply) => {
                    self.discard(body);
                    self.machine.handle(Event::Committed(Err(reply)));
                    return;
                }
            }
            let verify_limit = shared.settings.authentication.max_verify_size;
            let scan_limit = shared.content.settings.max_scan_size;
            let limit = match (plan.any(), content_on) {
                (true, true) => verify_limit.max(scan_limit),
                (true, false) => verify_limit,
                _ => scan_limit,
            };
            // Part of the message on disk starts with our Received: field.
            let ours = body.incoming.as_ref().map_or(0, |inc| {
                received::render(&body.trace, inc.queue_id().as_str()).len()
            });
            let input = match read_message(self.ctx.spool.clone(), &mut body, limit).await {
                Ok(m) => m,
                Err(reply) => {
                    self.discard(body);
                    self.machine.handle(Event::Committed(Err(reply)));
                    return;
                }
            };
            let mut verdicts = Verdicts::default();
            if plan.verify {
                let narrowed;
                let for_auth = match &input {
                    ForAuth::Full(m) if body.total > verify_limit => {
                        narrowed = ForAuth::HeaderOnly(header_section(m));
                        &narrowed
                    }
                    other => other,
                };
                match self.authenticate(plan, for_auth).await {
                    AuthStep::Store {
                        added_headers,
                        hold,
                        verdicts: v,
                    } => {
                        envelope.added_headers = added_headers;
                        envelope.hold = hold;
                        verdicts = v;
                    }
                    AuthStep::Refuse(reply) => {
                        restore(&mut body, input);
                        self.discard(body);
                        self.machine.handle(Event::Committed(Err(reply)));
                        return;
                    }
                }
            }
            if content_on {
                let (whole, head) = match &input {
                    ForAuth::Full(m) if body.total <= scan_limit => {
                        (Some(&m[ours.min(m.len())..]), None)
                    }
                    ForAuth::Full(m) => (None, Some(header_section(&m[ours.min(m.len())..]))),
                    ForAuth::HeaderOnly(h) => (None, Some(h[ours.min(h.len())..].to_vec())),
                };
                if let Some(s) = postern_proto::header_values(
                    whole.or(head.as_deref()).unwrap_or_default(),
                    "Subject",
                )
                .into_iter()
                .next()
                {
                    s.trim().clone_into(&mut subject);
                }
                let run = self.content_step(whole, head.as_deref(), &envelope, &verdicts);
                let step = if let Ok(step) =
                    tokio::time::timeout(shared.content.settings.deadline, run).await
                {
                    step
                } else {
                    let r = postern_proto::Reply::new(
                        451,
                        Some(postern_proto::EnhancedCode::new(4, 3, 0)),
                        "Temporary failure: the content checks did not finish in time, try again later",
                    );
                    self.in_tx(|| {
                        tracing::warn!("content policy: over the end-of-data deadline; deferred");
                    });
                    self.log_decision("data", "content_deadline", Some(&r));
                    ContentStep::Refuse(r)
                };
                match step {
                    ContentStep::Refuse(reply) => {
                        restore(&mut body, input);
                        self.discard(body);
                        self.notify_unstored(&envelope, &subject, "-").await;
                        self.machine.handle(Event::Committed(Err(reply)));
                        return;
                    }
                    ContentStep::Drop { reason } => {
                        restore(&mut body, input);
                        self.discard(body);
                        // Accepted and discarded, as the operator asked; the
                        // client sees an ordinary acceptance, whose id the
                        // `dropped` event names.
                        let id = QueueId::generate();
                        self.event(&format!("discarded ({reason}); answered as {id}"));
                        self.log_drop(&format!("{reason}; answered as {id}"));
                        self.notify_unstored(&envelope, &subject, id.as_str()).await;
                        self.machine
                            .handle(Event::Committed(Ok(id.as_str().to_owned())));
                        return;
                    }
                    ContentStep::Store(c) => {
                        let originals = c.iter().filter(|c| c.message.is_none()).count();
                        if originals > 1 {
                            original = whole.map(<[u8]>::to_vec);
                        }
                        copies = c;
                    }
                }
                if original.is_none() && copies.iter().filter(|c| c.message.is_none()).count() > 1 {
                    // Too large to have been read: read it now, once, for
                    // the second and later copies (the budget reserved
                    // covers its size).
                    let read = if body.incoming.is_none() {
                        Ok(ForAuth::Full(body.pending.clone()))
                    } else {
                        read_message(self.ctx.spool.clone(), &mut body, u64::MAX).await
                    };
                    match read {
                        Ok(ForAuth::Full(m)) => {
                            let ours = if body.incoming.is_some() { ours } else { 0 };
                            original = Some(m[ours.min(m.len())..].to_vec());
                        }
                        Ok(ForAuth::HeaderOnly(_)) => {}
                        Err(reply) => {
                            restore(&mut body, input);
                            self.discard(body);
                            self.machine.handle(Event::Committed(Err(reply)));
                            return;
                        }
                    }
                }
            }
            if plan.sign {
                let full = match &input {
                    ForAuth::Full(m) if body.total <= verify_limit => Some(m.as_slice()),
                    _ => None,
                };
                if copies.is_empty() {
                    signatures.push(self.sign(full));
                } else {
                    let changed: Vec<Option<Vec<u8>>> =
                        copies.iter().map(|c| c.message.clone()).collect();
                    for m in &changed {
                        let s = self.sign(m.as_deref().or(full));
                        signatures.push(s);
                    }
                }
            }
            // ARC seals (RFC 8617) on copies for a sealing route, over
            // the message as forwarded (our DKIM signature included).
            if let (Some(arc), Some(ar)) = (shared.mail_auth.arc.clone(), verdicts.ar_value.clone())
            {
                let full = match &input {
                    ForAuth::Full(m) => Some(m.as_slice()),
                    ForAuth::HeaderOnly(_) => None,
                };
                let targets: Vec<(&[postern_spool::EnvelopeRecipient], Option<&[u8]>)> =
                    if copies.is_empty() {
                        vec![(envelope.recipients.as_slice(), None)]
                    } else {
                        copies
                            .iter()
                            .map(|c| (c.rcpts.as_slice(), c.message.as_deref()))
                            .collect()
                    };
                let now = time::OffsetDateTime::now_utc()
                    .unix_timestamp()
                    .unsigned_abs();
                for (k, (rcpts, changed)) in targets.into_iter().enumerate() {
                    let wanted = rcpts.iter().any(|r| {
                        r.address
                            .rsplit_once('@')
                            .is_some_and(|(_, d)| arc.settings.seals_for(d))
                    });
                    let Some(msg) = changed.or(full).filter(|_| wanted) else {
                        seals.push(String::new());
                        continue;
                    };
                    let mut forwarded = signatures.get(k).cloned().unwrap_or_default().into_bytes();
                    forwarded.extend_from_slice(msg);
                    let sealer = postern_auth::arc_seal::Sealer {
                        domain: &arc.settings.domain,
                        selector: &arc.settings.selector,
                        key: &arc.key,
                    };
                    let chain = verdicts
                        .arc
                        .unwrap_or(postern_auth::arc_seal::ChainValidation::None);
                    match postern_auth::arc_seal::seal(&forwarded, &ar, chain, &sealer, now) {
                        Ok(fields) => {
                            self.event(&format!(
                                "ARC-sealed d={} s={}",
                                arc.settings.domain, arc.settings.selector
                            ));
                            seals.push(fields);
                        }
                        Err(e) => {
                            self.event(&format!("not ARC-sealed: {e}"));
                            seals.push(String::new());
                        }
                    }
                }
            }
            restore(&mut body, input);
            // Copies held in memory until committed count against the
            // same budget (several rewritten copies of a large message).
            let extra: usize = copies
                .iter()
                .filter_map(|c| c.message.as_ref().map(Vec::len))
                .sum::<usize>()
                + original.as_ref().map_or(0, Vec::len);
            if extra > 0 {
                match reserve(&shared.mail_auth, extra as u64).await {
                    Ok(p) => permits.push(p),
                    Err(reply) => {
                        self.discard(body);
                        self.machine.handle(Event::Committed(Err(reply)));
                        return;
                    }
                }
            }
        }

        // The notifications the rules asked for, with what happened to the
        // copy that asked.
        let notify: Vec<(postern_filter::Notify, String)> = copies
            .iter()
            .flat_map(|c| {
                let what = match (&c.quarantine, &c.bounce) {
                    (Some((q, _)), _) => format!("quarantined in {q:?}"),
                    (None, Some(b)) => format!("bounced: {b}"),
                    (None, None) => "delivered".to_owned(),
                };
                c.notify.iter().map(move |n| (n.clone(), what.clone()))
            })
            .collect();
        let base = envelope.clone();
        // The copies to commit.
        let mut commits = Vec::new();
        if copies.is_empty() {
            let mut e = envelope;
            if let Some(s) = signatures.first() {
                e.added_headers = format!("{s}{}", e.added_headers);
            }
            if let Some(a) = seals.first() {
                e.added_headers = format!("{a}{}", e.added_headers);
            }
            commits.push(Commit {
                envelope: e,
                bytes: None,
            });
        } else {
            let mut original_used = false;
            for (i, c) in copies.into_iter().enumerate() {
                let mut e = envelope.clone();
                e.recipients = c.rcpts;
                e.reverse_path = c.sender;
                e.added_headers = format!(
                    "{}{}{}{}",
                    seals.get(i).map_or("", String::as_str),
                    signatures.get(i).map_or("", String::as_str),
                    e.added_headers,
                    c.added_headers
                );
                if let Some((name, why)) = c.quarantine {
                    e.hold = Some(why);
                    e.quarantine = Some(name);
                }
                e.require_tls = c.require_tls;
                e.content = c.decisions;
                e.bounce = c.bounce;
                let bytes = match c.message {
                    Some(m) => Some(m),
                    None if !original_used => {
                        original_used = true;
                        None
                    }
                    None => original.clone(),
                };
                commits.push(Commit { envelope: e, bytes });
            }
            // No copy kept the original: its tmp file goes.
            if !original_used {
                if let Some(inc) = body.incoming.take() {
                    self.ctx.spool.execute(move || drop(inc));
                }
                body.pending.clear();
            }
        }
        let result = self.commit_copies(body, commits).await;
        let reply_id = result
            .as_ref()
            .ok()
            .and_then(|ids| ids.split(' ').next().map(str::to_owned));
        if let (Ok(ids), false) = (&result, notify.is_empty()) {
            let rcpts: Vec<String> = base.recipients.iter().map(|r| r.address.clone()).collect();
            let about = super::notify::About {
                sender: &base.reverse_path,
                recipients: &rcpts,
                subject: &subject,
                rule: "",
                queue_ids: ids,
                reason: "",
            };
            self.send_notifications(notify, &base, &about).await;
        }
        self.machine
            .handle(Event::Committed(result.map(|ids| reply_id.unwrap_or(ids))));
    }

    /// The notifications a rule asked for on a message it dropped or refused
    /// (`queue_id`: the id the client was given, or `-`).
    async fn notify_unstored(&mut self, envelope: &Envelope, subject: &str, queue_id: &str) {
        let requests = std::mem::take(&mut self.refused_notify);
        if requests.is_empty() {
            return;
        }
        let rcpts: Vec<String> = envelope
            .recipients
            .iter()
            .map(|r| r.address.clone())
            .collect();
        let about = super::notify::About {
            sender: &envelope.reverse_path,
            recipients: &rcpts,
            subject,
            rule: "",
            queue_ids: queue_id,
            reason: "",
        };
        self.send_notifications(requests, envelope, &about).await;
    }

    /// Commits each copy (the original from `body`, the others written
    /// now) and announces each; the reply text's ids, or the first error.
    async fn commit_copies(
        &mut self,
        mut body: Body,
        commits: Vec<Commit>,
    ) -> Result<String, postern_proto::Reply> {
        let mut ids = Vec::new();
        let mut original = Some((body.incoming.take(), std::mem::take(&mut body.pending)));
        for c in commits {
            let spool = self.ctx.spool.clone();
            let trace = body.trace.clone();
            // The message as received keeps the id chosen at DATA; a copy a
            // rule split off gets its own.
            let id = if c.bytes.is_none() {
                body.queue_id
            } else {
                QueueId::generate()
            };
            let (incoming, data) = match c.bytes {
                Some(bytes) => (None, bytes),
                None => original.take().unwrap_or((None, Vec::new())),
            };
            // On a spool I/O thread: write, fsync, rename; the committer
            // answers once the shared directory fsync is done.
            let (tx, rx) = tokio::sync::oneshot::channel();
            let io = spool.clone();
            let envelope = c.envelope;
            io.execute(move || {
                let started = incoming.map_or_else(|| begin(&spool, &trace, id), Ok);
                let inc = match started.and_then(|mut inc| inc.write_all(&data).map(|()| inc)) {
                    Ok(inc) => inc,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let mut envelope = envelope;
                envelope.queue_id = *inc.queue_id();
                inc.commit_then(envelope, move |res| {
                    let _ = tx.send(res);
                });
            });
            match rx.await {
                Ok(Ok(env)) => {
                    self.queued(&env, ids.is_empty()).await;
                    ids.push(env.queue_id.as_str().to_owned());
                }
                Ok(Err(e)) => {
                    self.in_tx(|| {
                        tracing::error!(error = %e, "spool commit failed; message not accepted");
                    });
                    // Copies already committed stay queued (they are
                    // durable and will be delivered); the client retries
                    // for all, so some recipients may get it twice — the
                    // safe side of RFC 5321 §6.1.
                    return Err(replies::spool_error(&e));
                }
                Err(gone) => {
                    tracing::error!(error = %gone, "spool commit task failed");
                    return Err(replies::spool_error(&SpoolError::Poisoned));
                }
            }
        }
        if ids.len() > 1 {
            // The client hears one id (a split is our business); the
            // transcript and the mail log have every copy.
            self.event(&format!(
                "stored as {} copies: {}",
                ids.len(),
                ids.join(" ")
            ));
        }
        Ok(ids.join(" "))
    }

    /// A committed copy: logged, announced to delivery; the first copy is
    /// the one the session's and the sender's message counts see.
    async fn queued(&mut self, env: &Envelope, first: bool) {
        if let Some(span) = &self.tx_span {
            span.record("queue_id", tracing::field::display(&env.queue_id));
        }
        self.in_tx(|| {
            tracing::info!(
                queue_id = %env.queue_id, from = %env.reverse_path,
                nrcpt = env.recipients.len(), size = env.message_size,
                tls = env.receipt.tls.as_ref().map_or("none", |t| t.version.as_str()),
                "queued"
            );
        });
        self.event(&format!("queued as {}", env.queue_id));
        if first {
            self.gate.messages += 1;
            self.count_message(&env.reverse_path).await;
        }
        if let Some(hook) = &self.ctx.on_queued {
            hook(&crate::server::Accepted {
                queue_id: env.queue_id,
                envelope: env,
                session: &self.id,
            });
        }
    }
}
