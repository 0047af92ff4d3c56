//! Operator commands on the running queue (`postern queue hold|release|delete|
//! retry|flush`, through the admin socket): the [`Verb`] sent to the scheduler,
//! the [`VerbReport`] it answers with, and the [`MessageView`] it shows.
//!
//! The scheduler applies each verb between two events, so a verb never races
//! an outcome. What each one does (Postfix's `postsuper -h/-H/-d` and
//! `postqueue -i/-f/-s` are the models):
//!
//! - **hold**: the message is not attempted, does not expire and gets no delay
//!   warning until released (like `postsuper -h`, whose held mail does not
//!   expire). Jobs still waiting for a connection slot are withdrawn; an attempt
//!   already under way ends and its outcome is recorded, then nothing more is
//!   tried. Recorded in `state/<id>` (fsynced) before the answer, so a hold
//!   survives a restart.
//! - **release**: the message goes back on the schedule at each recipient's
//!   recorded next-attempt time (at once when that time has passed). The queue
//!   lifetime still counts from arrival: a message released after it would have
//!   expired gets one more attempt and bounces as expired if that one defers.
//! - **delete**: the message is removed (message file and state) without a DSN
//!   (like `postsuper -d`), and a `deleted` event is logged. Waiting jobs are
//!   withdrawn; when an attempt is under way, the answer is
//!   [`VerbOutcome::Pending`]: the attempt ends, its outcome is recorded and
//!   logged as usual (no DSN follows), then the message is removed. If the
//!   server stops before that, the message is still queued after the restart.
//!   A message that could not be loaded ([`LoadFailure`]) can be deleted too:
//!   its file goes without being read (the `deleted` event names no recipient).
//! - **retry** (one message or all): deferred recipients are due now; a
//!   message that could not be loaded ([`LoadFailure`]) is loaded again now.
//! - **flush** (a domain): deferred recipients at that domain are due now.
//!
//! # Security
//! Verbs come from the admin socket, whose file permissions are the access
//! control; ids are parsed [`QueueId`]s and domains are only compared.

use std::sync::Arc;

use postern_spool::{Envelope, MessageState, QueueId};

/// A queue command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    /// Stop attempting the message until released.
    Hold(QueueId),
    /// Undo a hold.
    Release(QueueId),
    /// Remove the message without a DSN.
    Delete(QueueId),
    /// Retry this message's deferred recipients now; `None`: every message's.
    Retry(Option<QueueId>),
    /// Retry now every deferred recipient at this domain (ASCII
    /// case-insensitive, exact: subdomains are other domains).
    Flush(String),
}

impl Verb {
    /// `hold`, `release`, `delete`, `retry`, `flush`.
    pub fn name(&self) -> &'static str {
        match self {
            Verb::Hold(_) => "hold",
            Verb::Release(_) => "release",
            Verb::Delete(_) => "delete",
            Verb::Retry(_) => "retry",
            Verb::Flush(_) => "flush",
        }
    }
}

/// How a verb ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerbOutcome {
    /// Done: held, released, deleted, or the recipients are due now (possibly
    /// none, for `retry` of the whole queue and `flush`).
    Done,
    /// Delete accepted: the message is removed when its attempts under way end.
    Pending,
    /// No message with this id is queued (delivered, deleted, never queued).
    NotFound,
    /// The message is being loaded into the queue this very moment.
    Loading,
    /// `hold` of a held message.
    AlreadyHeld,
    /// `release` of a message that is not held.
    NotHeld,
    /// `retry` of a held message: release it first.
    Held,
    /// The message is being deleted.
    Deleting,
    /// Every recipient is delivered or bounced; the message is being removed.
    Finishing,
    /// The removal (delete) failed; the message stays queued.
    Failed,
    /// The verb was asked only for a quarantined message
    /// ([`VerbContext::quarantined_only`]) and this one is not (any more).
    NotQuarantined,
}

/// Who asks for a verb, and on what condition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerbContext {
    /// Who gave the command (an admin user or token and its address), for
    /// the mail log's `held` / `released` / `deleted` events; empty: not known.
    pub by: String,
    /// Act on the message only while it is in a quarantine (the quarantine
    /// endpoints): checked in the same scheduler step as the verb, so a
    /// concurrent release cannot turn a quarantine deletion into the deletion
    /// of ordinary queued mail.
    pub quarantined_only: bool,
}

/// What a verb did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerbReport {
    /// How it ended.
    pub outcome: VerbOutcome,
    /// Messages it acted on.
    pub messages: usize,
    /// Recipients it acted on (not final, not being attempted).
    pub rcpts: usize,
    /// Recipients being attempted (or waiting in a connection slot) that the
    /// verb did not touch: a hold or delete takes effect after them.
    pub in_flight: usize,
    /// The hold or release is in effect but could not be recorded in
    /// `state/<id>` (a restart would undo it); or why a removal failed.
    pub error: Option<String>,
}

impl VerbReport {
    pub(crate) fn outcome(outcome: VerbOutcome) -> Self {
        Self {
            outcome,
            messages: 0,
            rcpts: 0,
            in_flight: 0,
            error: None,
        }
    }

    pub(crate) fn done(messages: usize, rcpts: usize, in_flight: usize) -> Self {
        Self {
            outcome: VerbOutcome::Done,
            messages,
            rcpts,
            in_flight,
            error: None,
        }
    }
}

/// A message in the spool that the scheduler could not load (its file or its
/// `state/<id>` could not be read). It is not forgotten: loading is retried
/// with backoff, and `postern queue list` shows it with the error until a
/// retry succeeds (or the file goes away).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadFailure {
    /// The message.
    pub queue_id: QueueId,
    /// The last error, for the operator.
    pub error: String,
    /// Failed attempts to load it so far.
    pub attempts: u32,
    /// Unix time (ms) of the next attempt.
    pub next_attempt_ms: u64,
}

/// One queued message as the scheduler holds it (`postern queue list|show`).
#[derive(Debug, Clone)]
pub struct MessageView {
    /// Its envelope.
    pub envelope: Arc<Envelope>,
    /// Its delivery state, as recorded and as changed since (a `retry` moves
    /// `next_attempt_ms` in memory only).
    pub state: MessageState,
    /// Per recipient: an attempt is under way (a job waiting for a connection
    /// slot is not: its recipients show as pending or deferred).
    pub in_flight: Vec<bool>,
    /// A delete is pending (waiting for attempts under way).
    pub deleting: bool,
    /// Unix time (ms) after which a deferral bounces as expired.
    pub expires_ms: u64,
    /// Still in the quarantine it was accepted into: when its retention ends.
    pub quarantine_until_ms: Option<u64>,
}
