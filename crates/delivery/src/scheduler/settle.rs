//! The blocking half of settling a message ([`SettleJob`]): DSNs into the
//! spool (or badmail for the null sender), state records, removal.

use std::io::Read;
use std::sync::{Arc, Mutex, PoisonError};

use postern_spool::{
    DsnKind, Durability, Envelope, EnvelopeRecipient, MailParams, MessageState, QueueId,
    RcptStatus, Receipt, Spool, SpoolError, StateRecord, StateStore,
};
use postern_track::{Badmail, DsnSent, MailEvent, MailLog};

use crate::cause;
use crate::dsn::{self, Action, DsnInput, DsnRecipient, Returned};

use super::Settled;

/// The blocking half of `settle`.
pub(super) struct SettleJob {
    pub(super) id: QueueId,
    pub(super) env: Arc<Envelope>,
    pub(super) state: MessageState,
    pub(super) received_ms: u64,
    pub(super) expires_ms: u64,
    pub(super) report: Vec<(usize, Action)>,
    pub(super) suppressed: Vec<usize>,
    pub(super) delayed: Vec<usize>,
    pub(super) remove: bool,
    pub(super) null_sender: bool,
    pub(super) unique: String,
    pub(super) now: u64,
    pub(super) hostname: String,
    pub(super) badmail_dir: std::path::PathBuf,
    pub(super) spool: Spool,
    pub(super) states: StateStore,
    pub(super) lock: Arc<Mutex<()>>,
    pub(super) log: MailLog,
}

impl SettleJob {
    pub(super) fn run(self) -> Settled {
        let mut records = Vec::new();
        let mut new_messages = Vec::new();
        let mut retry = false;
        let to_u32 = |v: &[usize]| -> Vec<u32> {
            v.iter()
                .map(|i| u32::try_from(*i).unwrap_or(u32::MAX))
                .collect()
        };
        let addresses = |v: &[usize]| -> Vec<String> {
            v.iter()
                .filter_map(|i| self.env.recipients.get(*i))
                .map(|r| r.address.clone())
                .collect()
        };

        // Failures and successes: one DSN per settle (RFC 3464 allows mixed
        // actions in one report), or badmail for the null sender.
        if !self.report.is_empty() {
            let idx: Vec<usize> = self.report.iter().map(|(i, _)| *i).collect();
            let has_failure = self.report.iter().any(|(_, a)| *a == Action::Failed);
            let kind = if has_failure {
                DsnKind::Failure
            } else {
                DsnKind::Success
            };
            if self.null_sender {
                if has_failure {
                    match self.to_badmail(&addresses(&idx)) {
                        Ok(path) => self.log.emit(
                            self.id,
                            MailEvent::Badmail(Badmail {
                                reason: "a message from the null sender (a bounce) could not be \
                                         delivered; a bounce is never bounced (RFC 5321 §4.5.5)"
                                    .into(),
                                path,
                            }),
                        ),
                        Err(e) => {
                            tracing::error!(queue_id = %self.id, error = %e, "delivery: cannot write badmail");
                            retry = true;
                        }
                    }
                }
                if !retry {
                    records.push(StateRecord::Dsn {
                        kind,
                        rcpts: to_u32(&idx),
                        dsn_queue_id: None,
                        at_ms: self.now,
                    });
                    self.log.emit(
                        self.id,
                        MailEvent::DsnSent(DsnSent {
                            kind: kind.as_str().into(),
                            rcpts: addresses(&idx),
                            to: String::new(),
                            dsn_queue_id: None,
                            suppressed: Some("null sender".into()),
                        }),
                    );
                }
            } else {
                let rcpts: Vec<DsnRecipient> = self
                    .report
                    .iter()
                    .map(|(i, a)| self.dsn_recipient(*i, *a))
                    .collect();
                match self.queue_dsn(&rcpts, "") {
                    Ok(dsn_id) => {
                        records.push(StateRecord::Dsn {
                            kind,
                            rcpts: to_u32(&idx),
                            dsn_queue_id: Some(dsn_id),
                            at_ms: self.now,
                        });
                        new_messages.push(dsn_id);
                        self.log.emit(
                            self.id,
                            MailEvent::DsnSent(DsnSent {
                                kind: kind.as_str().into(),
                                rcpts: addresses(&idx),
                                to: self.env.reverse_path.clone(),
                                dsn_queue_id: Some(dsn_id),
                                suppressed: None,
                            }),
                        );
                    }
                    Err(e) => {
                        tracing::error!(queue_id = %self.id, error = %e, "delivery: cannot queue DSN; retrying");
                        retry = true;
                    }
                }
            }
        }
        if !self.suppressed.is_empty() {
            records.push(StateRecord::Dsn {
                kind: DsnKind::Failure,
                rcpts: to_u32(&self.suppressed),
                dsn_queue_id: None,
                at_ms: self.now,
            });
            self.log.emit(
                self.id,
                MailEvent::DsnSent(DsnSent {
                    kind: "failure".into(),
                    rcpts: addresses(&self.suppressed),
                    to: self.env.reverse_path.clone(),
                    dsn_queue_id: None,
                    suppressed: Some(if self.null_sender {
                        "null sender".into()
                    } else {
                        "NOTIFY excludes FAILURE".into()
                    }),
                }),
            );
        }
        if !self.delayed.is_empty() {
            if self.null_sender {
                records.push(StateRecord::Dsn {
                    kind: DsnKind::Delay,
                    rcpts: to_u32(&self.delayed),
                    dsn_queue_id: None,
                    at_ms: self.now,
                });
            } else {
                let rcpts: Vec<DsnRecipient> = self
                    .delayed
                    .iter()
                    .map(|i| self.dsn_recipient(*i, Action::Delayed))
                    .collect();
                match self.queue_dsn(&rcpts, ".delay") {
                    Ok(dsn_id) => {
                        records.push(StateRecord::Dsn {
                            kind: DsnKind::Delay,
                            rcpts: to_u32(&self.delayed),
                            dsn_queue_id: Some(dsn_id),
                            at_ms: self.now,
                        });
                        new_messages.push(dsn_id);
                        self.log.emit(
                            self.id,
                            MailEvent::DsnSent(DsnSent {
                                kind: "delay".into(),
                                rcpts: addresses(&self.delayed),
                                to: self.env.reverse_path.clone(),
                                dsn_queue_id: Some(dsn_id),
                                suppressed: None,
                            }),
                        );
                    }
                    Err(e) => {
                        tracing::error!(queue_id = %self.id, error = %e, "delivery: cannot queue delay DSN");
                        retry = true;
                    }
                }
            }
        }

        // Record what was sent before acting further: a crash now repeats
        // nothing but (at worst) a DSN whose record did not reach the disk.
        if !records.is_empty() {
            let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            if let Err(e) = self.states.append(&self.id, &records, Durability::Sync) {
                tracing::error!(queue_id = %self.id, error = %e, "delivery: cannot record DSN in state/");
            }
        }
        let mut removed = false;
        if self.remove && !retry {
            match self.spool.remove(&self.id) {
                Ok(()) | Err(SpoolError::NotFound(_)) => removed = true,
                Err(e) => {
                    // Unlinked but maybe not durable (spool docs §3): not listed
                    // any more either way; forget it.
                    tracing::error!(queue_id = %self.id, error = %e,
                        "delivery: removal of a finished message may not be durable");
                    removed = true;
                }
            }
        }
        Settled {
            id: self.id,
            records,
            new_messages,
            removed,
            retry,
            delete_failed: false,
        }
    }

    pub(super) fn dsn_recipient(&self, i: usize, action: Action) -> DsnRecipient {
        let default = EnvelopeRecipient::default();
        let rcpt = self.env.recipients.get(i).unwrap_or(&default);
        let st = self.state.rcpts.get(i).cloned().unwrap_or_default();
        let class = match action {
            Action::Failed if st.last_cause.as_deref() == Some(cause::EXPIRED) => 4,
            Action::Failed => 5,
            Action::Delayed => 4,
            Action::Delivered | Action::Relayed => 2,
        };
        let status = dsn::status_for(st.last_reply.as_deref(), st.last_cause.as_deref(), class);
        let explanation = match action {
            Action::Failed => match st.last_cause.as_deref() {
                Some(cause::EXPIRED) => {
                    "The message could not be delivered in time and was given up.".to_owned()
                }
                Some(cause::NULL_MX) => {
                    "The recipient's domain does not accept mail (null MX).".to_owned()
                }
                Some(cause::NO_SUCH_DOMAIN) => "The recipient's domain does not exist.".to_owned(),
                Some(cause::LOCAL_MAILBOX_UNKNOWN) => {
                    "There is no mailbox for the recipient here.".to_owned()
                }
                Some(cause::LOCAL_UNSAFE_ADDRESS) => {
                    "The recipient's address is not a valid mailbox name here.".to_owned()
                }
                _ => "The recipient's server refused the message permanently.".to_owned(),
            },
            Action::Delayed => format!(
                "Not delivered yet after {} attempt(s); the last one failed temporarily.",
                st.attempts
            ),
            Action::Delivered => "Delivered.".to_owned(),
            Action::Relayed => "Relayed to a server that does not confirm delivery.".to_owned(),
        };
        DsnRecipient {
            address: rcpt.address.clone(),
            orcpt: rcpt.orcpt.clone(),
            action,
            status,
            remote_mta: st.last_mx.clone(),
            diagnostic: st
                .last_reply
                .clone()
                .filter(|_| action != Action::Delivered),
            explanation,
            last_attempt_ms: st.updated_ms,
            will_retry_until_ms: (action == Action::Delayed).then_some(self.expires_ms),
        }
    }

    pub(super) fn returned(&self) -> Returned {
        let full = self
            .env
            .params
            .ret
            .as_deref()
            .is_some_and(|r| r.eq_ignore_ascii_case("FULL"));
        let limit = if full {
            dsn::MAX_RETURNED_FULL
        } else {
            dsn::MAX_RETURNED_HEADERS
        };
        let mut body = Vec::new();
        let read = self.spool.open_message(&self.id).and_then(|r| {
            r.take(u64::try_from(limit).unwrap_or(u64::MAX) + 1)
                .read_to_end(&mut body)
                .map_err(|e| SpoolError::Io {
                    op: postern_spool::SpoolOp::Read,
                    path: self.spool.dir().to_path_buf(),
                    source: e,
                })
        });
        if let Err(e) = read {
            tracing::warn!(queue_id = %self.id, error = %e, "delivery: cannot read the message for its DSN");
        }
        if full && body.len() <= limit {
            Returned::Full(body)
        } else {
            Returned::Headers(dsn::header_section(&body))
        }
    }

    pub(super) fn queue_dsn(
        &self,
        rcpts: &[DsnRecipient],
        suffix: &str,
    ) -> Result<QueueId, SpoolError> {
        let unique = format!("{}{suffix}", self.unique);
        let bytes = dsn::build(&DsnInput {
            reporting_mta: &self.hostname,
            original: &self.env,
            arrival_ms: self.received_ms,
            now_ms: self.now,
            unique: &unique,
            recipients: rcpts,
            returned: self.returned(),
        });
        let mut incoming = self.spool.begin()?;
        incoming.write_all(&bytes)?;
        let env = incoming.commit(Envelope {
            queue_id: self.id,
            received_at: String::new(),
            reverse_path: String::new(),
            recipients: vec![EnvelopeRecipient {
                address: self.env.reverse_path.clone(),
                notify: None,
                orcpt: None,
            }],
            params: MailParams {
                body: Some("8BITMIME".into()),
                smtputf8: self.env.params.smtputf8,
                ..MailParams::default()
            },
            receipt: Receipt {
                listener: "dsn".into(),
                peer: String::new(),
                helo: self.hostname.clone(),
                auth_user: None,
                tls: None,
                ..Default::default()
            },
            message_size: 0,
            added_headers: String::new(),
            hold: None,
            quarantine: None,
            // A report about a message that required TLS carries its
            // content (headers at least): it requires TLS too (the idea of
            // RFC 8689 §5).
            require_tls: self.env.require_tls,
            content: Vec::new(),
            bounce: None,
            message_id: None,
            subject: None,
        })?;
        Ok(env.queue_id)
    }

    /// Copies the message to `badmail/<id>.eml` with `badmail/<id>.reason`.
    pub(super) fn to_badmail(&self, failed: &[String]) -> std::io::Result<String> {
        use std::fmt::Write as _;
        use std::io::Write as _;
        std::fs::create_dir_all(&self.badmail_dir)?;
        let eml = self.badmail_dir.join(format!("{}.eml", self.id));
        let reason_path = self.badmail_dir.join(format!("{}.reason", self.id));
        let mut reason = format!(
            "queue id {}\nsender <> (null: this is a bounce or auto-reply)\nfailed recipients:\n",
            self.id
        );
        for (i, r) in self.state.rcpts.iter().enumerate() {
            if r.status == RcptStatus::Bounced
                && let Some(addr) = self.env.recipients.get(i)
                && failed.contains(&addr.address)
            {
                let _ = writeln!(
                    reason,
                    "  {}: {}",
                    addr.address,
                    r.last_reply
                        .as_deref()
                        .or(r.last_cause.as_deref())
                        .unwrap_or("unknown")
                );
            }
        }
        let mut body = Vec::new();
        self.spool
            .open_message(&self.id)
            .map_err(std::io::Error::other)?
            .read_to_end(&mut body)?;
        let mut f = std::fs::File::create(&eml)?;
        f.write_all(&body)?;
        f.sync_all()?;
        let mut f = std::fs::File::create(&reason_path)?;
        f.write_all(reason.as_bytes())?;
        f.sync_all()?;
        std::fs::File::open(&self.badmail_dir)?.sync_all()?;
        Ok(eml.display().to_string())
    }
}
