//! Starting the scheduler and talking to it: [`start`] and [`DeliveryHandle`].
//!
//! The smtpd (or the pickup folder, or the admin API) tells delivery about a
//! newly committed message with [`DeliveryHandle::notify`] — or a cloned
//! [`Notifier`] — which never blocks. At start the scheduler loads every message
//! already in the spool once (recovery), then runs until
//! [`DeliveryHandle::shutdown`]. The operator's verbs (hold, release, delete,
//! retry, flush) and the queue views go through [`DeliveryHandle::control`] and
//! [`DeliveryHandle::messages`].

use std::sync::Arc;
use std::time::Duration;

use postern_spool::{Envelope, QueueId, Spool};
use postern_track::MailLog;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::control::{LoadFailure, MessageView, Verb, VerbContext, VerbReport};
use crate::scheduler::{Event, Origin, QueueSnapshot, Scheduler};
use crate::settings::DeliverySettings;
use crate::transport::Transport;

/// Tells the scheduler about new messages; cheap to clone, never blocks.
#[derive(Clone)]
pub struct Notifier {
    tx: mpsc::UnboundedSender<Event>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

impl Notifier {
    /// A message was committed to the spool by the smtpd: queue it now.
    pub fn notify(&self, queue_id: QueueId) {
        let _ = self.tx.send(Event::Notify(queue_id, Origin::Smtp));
    }

    /// A message was committed by the smtpd, with the envelope as committed:
    /// queued without reading it back from the spool (a new message has no
    /// delivery state yet). Saves a blocking-pool hop and the file opens per
    /// message (issue 8 §7). Never blocks.
    pub fn notify_committed(&self, envelope: &Envelope) {
        let _ = self
            .tx
            .send(Event::Committed(Box::new(envelope.clone()), Origin::Smtp));
    }

    /// Like `notify`, for a message from the pickup folder.
    pub fn notify_pickup(&self, queue_id: QueueId) {
        let _ = self.tx.send(Event::Notify(queue_id, Origin::Pickup));
    }
}

/// The operator's side of the scheduler: verbs, views, counts. Cheap to
/// clone, outlives nothing: every call answers `None` once the scheduler has
/// stopped.
#[derive(Clone)]
pub struct Controller {
    tx: mpsc::UnboundedSender<Event>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller").finish_non_exhaustive()
    }
}

impl Controller {
    /// See [`DeliveryHandle::control`].
    pub async fn control(&self, verb: Verb) -> Option<VerbReport> {
        self.control_with(verb, VerbContext::default()).await
    }

    /// A verb with who asks and on what condition ([`VerbContext`]).
    pub async fn control_with(&self, verb: Verb, cx: VerbContext) -> Option<VerbReport> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Event::Control(verb, cx, Some(tx))).ok()?;
        rx.await.ok()
    }

    /// See [`DeliveryHandle::messages`].
    pub async fn messages(&self, queue_id: Option<QueueId>) -> Option<Vec<MessageView>> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Event::Inspect(queue_id, tx)).ok()?;
        rx.await.ok()
    }

    /// See [`DeliveryHandle::snapshot`].
    pub async fn snapshot(&self) -> Option<QueueSnapshot> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Event::Snapshot(tx)).ok()?;
        rx.await.ok()
    }

    /// See [`DeliveryHandle::load_failures`].
    pub async fn load_failures(&self) -> Option<Vec<LoadFailure>> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Event::LoadFailures(tx)).ok()?;
        rx.await.ok()
    }
}

/// The running delivery scheduler.
pub struct DeliveryHandle {
    notifier: Notifier,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for DeliveryHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryHandle").finish_non_exhaustive()
    }
}

/// Starts the scheduler on the current tokio runtime: scans the spool (every
/// message and its `state/` once; orphaned state files removed), then delivers
/// through `transport`. Returns at once; the scan runs in the background.
pub fn start<T: Transport>(
    settings: DeliverySettings,
    spool: Spool,
    transport: Arc<T>,
    log: MailLog,
    clock: Arc<dyn Clock>,
) -> DeliveryHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let settings = Arc::new(settings);
    let scheduler = Scheduler::new(
        settings,
        spool.clone(),
        log,
        clock,
        transport,
        tx.clone(),
        tracker,
    );
    let token = cancel.clone();
    let task = tokio::spawn(async move {
        let recovered = match tokio::task::spawn_blocking(move || {
            Scheduler::<T>::recovery_scan(&spool)
        })
        .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "delivery: recovery scan failed");
                Vec::new()
            }
        };
        tracing::info!(messages = recovered.len(), "delivery: queue loaded");
        scheduler.run(rx, recovered, token).await;
    });
    DeliveryHandle {
        notifier: Notifier { tx },
        cancel,
        task,
    }
}

impl DeliveryHandle {
    /// A message was committed to the spool: queue it now. Never blocks.
    pub fn notify(&self, queue_id: QueueId) {
        self.notifier.notify(queue_id);
    }

    /// A clonable notifier to hand to the smtpd / pickup folder.
    pub fn notifier(&self) -> Notifier {
        self.notifier.clone()
    }

    /// Retry `queue_id` (or, with `None`, every deferred message) now instead
    /// of at its scheduled time, without waiting for a report; see
    /// [`DeliveryHandle::control`].
    pub fn retry_now(&self, queue_id: Option<QueueId>) {
        let _ = self.notifier.tx.send(Event::Control(
            Verb::Retry(queue_id),
            VerbContext::default(),
            None,
        ));
    }

    /// Applies an operator's verb (`postern queue hold|release|delete|retry|
    /// flush`; `crate::control` says what each does) and reports what it did;
    /// `None` once the scheduler has stopped.
    pub async fn control(&self, verb: Verb) -> Option<VerbReport> {
        self.controller().control(verb).await
    }

    /// A clonable handle for the operator's verbs and views (the admin API).
    pub fn controller(&self) -> Controller {
        Controller {
            tx: self.notifier.tx.clone(),
        }
    }

    /// Hold `queue_id`: see [`DeliveryHandle::control`].
    pub async fn hold(&self, queue_id: QueueId) -> Option<VerbReport> {
        self.control(Verb::Hold(queue_id)).await
    }

    /// Release a held `queue_id`.
    pub async fn release(&self, queue_id: QueueId) -> Option<VerbReport> {
        self.control(Verb::Release(queue_id)).await
    }

    /// Delete `queue_id` without a DSN.
    pub async fn delete(&self, queue_id: QueueId) -> Option<VerbReport> {
        self.control(Verb::Delete(queue_id)).await
    }

    /// Retry every deferred recipient at `domain` now.
    pub async fn flush(&self, domain: &str) -> Option<VerbReport> {
        self.control(Verb::Flush(domain.to_owned())).await
    }

    /// The queued messages (with `Some`, that one, if queued) as the scheduler
    /// holds them; `None` once it has stopped.
    pub async fn messages(&self, queue_id: Option<QueueId>) -> Option<Vec<MessageView>> {
        self.controller().messages(queue_id).await
    }

    /// Counts of the queue; `None` once the scheduler has stopped.
    pub async fn snapshot(&self) -> Option<QueueSnapshot> {
        self.controller().snapshot().await
    }

    /// The messages in the spool that could not be loaded (retried with
    /// backoff), sorted by queue id; `None` once the scheduler has stopped.
    pub async fn load_failures(&self) -> Option<Vec<LoadFailure>> {
        self.controller().load_failures().await
    }

    /// `SIGHUP`: every job started from now on uses `settings` (routes, retry
    /// schedule, limits, TLS levels) and `transport` (with its DNS resolver and
    /// trust anchors); attempts under way finish under the old ones. Jobs
    /// waiting for a connection slot are routed again. Never blocks.
    pub fn reload<T: Transport>(&self, settings: DeliverySettings, transport: Arc<T>) {
        let _ = self
            .notifier
            .tx
            .send(Event::Reload(Box::new(crate::scheduler::Reload {
                settings: Arc::new(settings),
                transport,
            })));
    }

    /// Stops the scheduler: no new attempts; attempts in progress finish and
    /// their outcomes are recorded, for at most `grace`. Attempts still running
    /// after that are abandoned: their recipients are retried after the next
    /// start (a possible duplicate, never a loss).
    pub async fn shutdown(self, grace: Duration) {
        self.cancel.cancel();
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            tracing::warn!(
                "delivery: attempts still running after the shutdown grace period; abandoning them"
            );
            task.abort();
        }
    }
}
