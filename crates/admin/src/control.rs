//! The seam between the admin API and the running queue: the [`QueueControl`]
//! trait (the binary implements it over delivery's `DeliveryHandle`; this crate
//! does not depend on delivery), the [`Verb`]s an operator sends, and the
//! [`VerbReport`] that says, in admin words, what happened.
//!
//! The same report, with the same words, comes from the offline path
//! (`crate::offline`, server stopped), so `postern queue hold ID` reads the
//! same either way.
//!
//! # Security
//! Plain data. Queue ids are parsed [`QueueId`]s; domains are only compared.

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;

use postern_spool::QueueId;
use serde::{Deserialize, Serialize};

use crate::health::{RecheckReport, SpoolHealth, Unreadable};
use crate::view::QueuedMessage;

/// A boxed future, so that [`QueueControl`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the admin API needs from the running queue. Every method answers
/// `None` once the queue has stopped.
pub trait QueueControl: Send + Sync + 'static {
    /// The queued messages (with `Some`, only that one, if it is queued).
    fn messages(&self, queue_id: Option<QueueId>) -> BoxFuture<'_, Option<Vec<QueuedMessage>>>;
    /// Counts.
    fn status(&self) -> BoxFuture<'_, Option<QueueStatus>>;
    /// Applies a verb.
    fn apply(&self, verb: Verb) -> BoxFuture<'_, Option<VerbReport>>;
    /// Queued files the scheduler could not load (retried with backoff). The
    /// default: none.
    fn unreadable(&self) -> BoxFuture<'_, Option<Vec<Unreadable>>> {
        Box::pin(async { Some(Vec::new()) })
    }
    /// The spool's health. The default: unknown.
    fn spool_health(&self) -> BoxFuture<'_, Option<SpoolHealth>> {
        Box::pin(async { None })
    }
    /// `postern spool recheck`: a test write and fsync, then the poison is
    /// cleared. The default: not available (`None`).
    fn recheck(&self) -> BoxFuture<'_, Option<RecheckReport>> {
        Box::pin(async { None })
    }
    /// [`Self::apply`] with who asks and on what condition. The default
    /// checks [`VerbContext::quarantined_only`] by listing the message first
    /// (check then act: right for a stopped server, whose spool lock keeps
    /// the CLI out) and drops `by`; the running server's queue does both in
    /// one scheduler step and records `by` in the mail log.
    fn apply_with(&self, verb: Verb, cx: VerbContext) -> BoxFuture<'_, Option<VerbReport>> {
        Box::pin(async move {
            if cx.quarantined_only
                && let Some(id) = verb.queue_id()
            {
                let found = self.messages(Some(id)).await?;
                match found.first() {
                    None => return Some(VerbReport::outcome(&verb, VerbOutcome::NotFound)),
                    Some(m) if crate::view::MessageInfo::of(m, false).quarantine.is_none() => {
                        return Some(VerbReport::outcome(&verb, VerbOutcome::NotQuarantined));
                    }
                    Some(_) => {}
                }
            }
            self.apply(verb).await
        })
    }
    /// A queued message's header preview ([`crate::view::header_preview`]):
    /// for reviewing quarantined mail. The default: not available.
    fn header_preview(&self, queue_id: QueueId) -> BoxFuture<'_, Option<Vec<(String, String)>>> {
        let _ = queue_id;
        Box::pin(async { None })
    }
}

/// Who asks for a verb, and on what condition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerbContext {
    /// Who gave the command: an admin user or API token and the address it
    /// came from (`alice (192.0.2.5)`); recorded in the mail log's `held`,
    /// `released` and `deleted` events. Empty: not known.
    pub by: String,
    /// Act only while the message is in a quarantine (the quarantine
    /// endpoints): [`VerbOutcome::NotQuarantined`] otherwise, so a concurrent
    /// release cannot turn a quarantine deletion into the deletion of ordinary
    /// queued mail.
    pub quarantined_only: bool,
}

/// An operator's queue command.
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
    /// Retry now the deferred recipients at this domain.
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

    /// The queue id, domain or `all` it acts on.
    pub fn target(&self) -> String {
        match self {
            Verb::Hold(id) | Verb::Release(id) | Verb::Delete(id) | Verb::Retry(Some(id)) => {
                id.to_string()
            }
            Verb::Retry(None) => "all".to_owned(),
            Verb::Flush(d) => d.clone(),
        }
    }

    /// The message it acts on, if one.
    pub fn queue_id(&self) -> Option<QueueId> {
        match self {
            Verb::Hold(id) | Verb::Release(id) | Verb::Delete(id) | Verb::Retry(Some(id)) => {
                Some(*id)
            }
            Verb::Retry(None) | Verb::Flush(_) => None,
        }
    }
}

/// How a verb ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerbOutcome {
    /// Done.
    Done,
    /// Delete accepted; the message is removed when its attempt under way ends.
    Pending,
    /// No such message in the queue.
    NotFound,
    /// The message is being queued this very moment.
    Loading,
    /// `hold` of a held message.
    AlreadyHeld,
    /// `release` of a message that is not held.
    NotHeld,
    /// `retry` of a held message.
    Held,
    /// The message is being deleted.
    Deleting,
    /// Every recipient is final; the message is being removed.
    Finishing,
    /// The server is not running (`retry`, `flush` need it).
    NotRunning,
    /// Something failed; see `error`.
    Failed,
    /// A quarantine verb on a message that is not (or no longer) in a
    /// quarantine.
    NotQuarantined,
}

impl VerbOutcome {
    /// The command did what was asked, or it was already so (exit status 0).
    pub fn is_success(self) -> bool {
        matches!(
            self,
            VerbOutcome::Done
                | VerbOutcome::Pending
                | VerbOutcome::AlreadyHeld
                | VerbOutcome::NotHeld
        )
    }

    /// The HTTP status the API answers with.
    pub fn http_status(self) -> u16 {
        match self {
            VerbOutcome::Done | VerbOutcome::AlreadyHeld | VerbOutcome::NotHeld => 200,
            VerbOutcome::Pending => 202,
            VerbOutcome::NotFound => 404,
            VerbOutcome::Held
            | VerbOutcome::Deleting
            | VerbOutcome::Finishing
            | VerbOutcome::NotQuarantined => 409,
            VerbOutcome::Loading | VerbOutcome::NotRunning => 503,
            VerbOutcome::Failed => 500,
        }
    }
}

/// What a verb did, with a sentence for people (`held 0H5W… (2 recipients)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerbReport {
    /// `hold`, `release`, `delete`, `retry`, `flush`.
    pub verb: String,
    /// The queue id, domain, or `all`.
    pub target: String,
    /// How it ended.
    pub outcome: VerbOutcome,
    /// Messages acted on.
    pub messages: usize,
    /// Recipients acted on.
    pub rcpts: usize,
    /// Recipients being attempted, which the verb left to finish first.
    pub in_flight: usize,
    /// A warning (done, but not recorded on disk) or why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The outcome in admin words, one line.
    pub text: String,
}

impl VerbReport {
    /// A report of `verb` with its sentence.
    pub fn new(
        verb: &Verb,
        outcome: VerbOutcome,
        counts: (usize, usize, usize),
        error: Option<String>,
    ) -> Self {
        let (messages, rcpts, in_flight) = counts;
        let mut r = Self {
            verb: verb.name().to_owned(),
            target: verb.target(),
            outcome,
            messages,
            rcpts,
            in_flight,
            error,
            text: String::new(),
        };
        r.text = r.describe(verb);
        r
    }

    /// Just an outcome, no counts.
    pub fn outcome(verb: &Verb, outcome: VerbOutcome) -> Self {
        Self::new(verb, outcome, (0, 0, 0), None)
    }

    fn describe(&self, verb: &Verb) -> String {
        let t = &self.target;
        let n = plural(self.rcpts, "recipient");
        let busy = plural(self.in_flight, "recipient");
        let mut s = match (verb, self.outcome) {
            (Verb::Hold(_), VerbOutcome::Done) if self.in_flight > 0 => format!(
                "held {t} ({n}); {busy} being attempted now: the hold takes effect after that attempt"
            ),
            (Verb::Hold(_), VerbOutcome::Done) => format!("held {t} ({n})"),
            (Verb::Release(_), VerbOutcome::Done) => format!("released {t} ({n})"),
            (Verb::Delete(_), VerbOutcome::Done) => {
                format!("deleted {t} ({n} not delivered; no DSN sent)")
            }
            (Verb::Delete(_), VerbOutcome::Pending) => format!(
                "deleting {t}: {busy} being attempted now; the message is removed when that \
                 attempt ends (no DSN sent)"
            ),
            (Verb::Retry(Some(_)), VerbOutcome::Done) if self.rcpts == 0 => {
                format!("nothing to retry in {t} ({busy} being attempted now)")
            }
            (Verb::Retry(Some(_)), VerbOutcome::Done) => format!("retrying {t} now ({n})"),
            (Verb::Retry(None), VerbOutcome::Done) => {
                format!("retrying {n} in {} now", plural(self.messages, "message"))
            }
            (Verb::Flush(_), VerbOutcome::Done) => format!(
                "flushing {t}: {n} in {} due now",
                plural(self.messages, "message")
            ),
            (_, VerbOutcome::AlreadyHeld) => format!("already held: {t}"),
            (_, VerbOutcome::NotHeld) => format!("not held: {t}"),
            (_, VerbOutcome::NotFound) => {
                format!("not found: {t} (not in the queue: delivered, deleted or never queued)")
            }
            (_, VerbOutcome::Loading) => {
                format!("{t} is being queued right now; try again in a moment")
            }
            (_, VerbOutcome::Held) => {
                format!("held: {t}; release it first (postern queue release {t})")
            }
            (_, VerbOutcome::Deleting) => format!("being deleted: {t}"),
            (_, VerbOutcome::Finishing) => format!(
                "{t}: every recipient is delivered or bounced; the message is being removed"
            ),
            (_, VerbOutcome::NotRunning) => format!(
                "the server is not running: nothing is scheduled until it starts \
                 (it then attempts every deferred recipient at its recorded time); \
                 {} {t} not done",
                verb.name()
            ),
            (_, VerbOutcome::Failed) => format!("failed: {} {t}", verb.name()),
            (_, VerbOutcome::NotQuarantined) => format!(
                "{t} is not in a quarantine (released meanwhile?); `postern queue` acts on \
                 ordinary queued mail"
            ),
            (_, o) => format!("{} {t}: {o:?}", verb.name()),
        };
        if let Some(e) = &self.error {
            if self.outcome.is_success() {
                let _ = write!(s, " (warning: {e})");
            } else {
                let _ = write!(s, ": {e}");
            }
        }
        s
    }
}

/// `1 recipient`, `2 recipients`.
pub(crate) fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Counts of the running queue (`GET /v1/status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStatus {
    /// Messages in the queue.
    pub messages: usize,
    /// Recipients not attempted yet.
    pub pending: usize,
    /// Recipients waiting for a retry.
    pub deferred: usize,
    /// Held messages.
    pub held_messages: usize,
    /// Recipients of held messages.
    pub held: usize,
    /// Recipients being attempted (not those waiting for a connection slot).
    pub in_flight: usize,
    /// Open outbound connections.
    pub connections: usize,
    /// Queued messages that could not be loaded (retried with backoff).
    #[serde(default)]
    pub unloadable: usize,
    /// The spool's health (poisoned, free space).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spool: Option<SpoolHealth>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences() {
        let id = QueueId::generate();
        let r = VerbReport::new(&Verb::Hold(id), VerbOutcome::Done, (1, 2, 0), None);
        assert_eq!(r.text, format!("held {id} (2 recipients)"));
        let r = VerbReport::new(&Verb::Hold(id), VerbOutcome::Done, (1, 0, 1), None);
        assert!(
            r.text.contains("takes effect after that attempt"),
            "{}",
            r.text
        );
        let r = VerbReport::outcome(&Verb::Delete(id), VerbOutcome::NotFound);
        assert!(r.text.starts_with(&format!("not found: {id}")));
        assert!(!r.outcome.is_success());
        assert_eq!(r.outcome.http_status(), 404);
        let r = VerbReport::new(
            &Verb::Flush("example.com".into()),
            VerbOutcome::Done,
            (1, 1, 0),
            None,
        );
        assert_eq!(
            r.text,
            "flushing example.com: 1 recipient in 1 message due now"
        );
        let r = VerbReport::new(
            &Verb::Release(id),
            VerbOutcome::Done,
            (1, 1, 0),
            Some("disk full".into()),
        );
        assert!(r.text.ends_with("(warning: disk full)"), "{}", r.text);
        let r = VerbReport::outcome(&Verb::Retry(None), VerbOutcome::NotRunning);
        assert!(
            r.text.starts_with("the server is not running"),
            "{}",
            r.text
        );
    }
}
