//! Starting the admin socket for `postern serve`, and the one piece of glue the
//! admin crate cannot have: [`postern_admin::QueueControl`] over delivery's
//! [`Controller`] (admin does not depend on delivery; ARCHITECTURE.md).
//!
//! Wiring (done in `serve.rs`): start this after delivery, before the
//! listeners; shut it down before delivery.
//!
//! # Security
//! The socket is the admin API's access control (created `0600`; see
//! `postern_admin::server`). Nothing here parses input: verbs arrive parsed.

use std::sync::Arc;

use anyhow::Context as _;
use postern_admin::{
    AdminServer, BoxFuture, QueueControl, QueueStatus, QueuedMessage, RecheckReport, SpoolHealth,
    Unreadable, Verb, VerbContext, VerbOutcome, VerbReport,
};
use postern_delivery::{Controller, DeliveryHandle};

/// The running queue as the admin socket and the HTTP API see it.
pub(crate) fn control(
    delivery: &DeliveryHandle,
    spool: postern_spool::Spool,
) -> Arc<dyn QueueControl> {
    Arc::new(DeliveryControl {
        controller: delivery.controller(),
        spool,
    })
}

/// Starts the admin socket unless `[admin] enabled = false`.
pub(crate) async fn start(
    cfg: &postern_config::Config,
    control: Arc<dyn QueueControl>,
) -> anyhow::Result<Option<AdminServer>> {
    if !cfg.admin.enabled {
        tracing::info!(
            "admin socket disabled ([admin] enabled = false): `postern queue` verbs cannot reach this server"
        );
        return Ok(None);
    }
    let server = postern_admin::start(&cfg.admin, control, cfg.delivery.mail_log.clone())
        .await
        .context("starting the admin socket")?;
    Ok(Some(server))
}

/// The running scheduler and spool, as the admin API sees them.
struct DeliveryControl {
    controller: Controller,
    spool: postern_spool::Spool,
}

impl QueueControl for DeliveryControl {
    fn messages(
        &self,
        queue_id: Option<postern_spool::QueueId>,
    ) -> BoxFuture<'_, Option<Vec<QueuedMessage>>> {
        Box::pin(async move {
            let views = self.controller.messages(queue_id).await?;
            Some(
                views
                    .into_iter()
                    .map(|v| QueuedMessage {
                        envelope: v.envelope,
                        state: v.state,
                        in_flight: v.in_flight,
                        deleting: v.deleting,
                        expires_ms: Some(v.expires_ms),
                        quarantine_until_ms: v.quarantine_until_ms,
                    })
                    .collect(),
            )
        })
    }

    fn status(&self) -> BoxFuture<'_, Option<QueueStatus>> {
        Box::pin(async move {
            let s = self.controller.snapshot().await?;
            Some(QueueStatus {
                messages: s.messages,
                pending: s.pending,
                deferred: s.deferred,
                held_messages: s.held_messages,
                held: s.held,
                in_flight: s.in_flight,
                connections: s.connections,
                unloadable: s.unloadable,
                spool: None,
            })
        })
    }

    fn unreadable(&self) -> BoxFuture<'_, Option<Vec<Unreadable>>> {
        Box::pin(async move {
            let failures = self.controller.load_failures().await?;
            Some(
                failures
                    .into_iter()
                    .map(|f| Unreadable {
                        name: f.queue_id.to_string(),
                        error: f.error,
                        attempts: Some(f.attempts),
                        next_attempt: Some(postern_admin::view::rfc3339(f.next_attempt_ms)),
                    })
                    .collect(),
            )
        })
    }

    fn spool_health(&self) -> BoxFuture<'_, Option<SpoolHealth>> {
        let spool = self.spool.clone();
        // statvfs(2), at most once a second: off the runtime all the same.
        Box::pin(async move {
            tokio::task::spawn_blocking(move || SpoolHealth::of(&spool))
                .await
                .ok()
        })
    }

    fn recheck(&self) -> BoxFuture<'_, Option<RecheckReport>> {
        let spool = self.spool.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || RecheckReport::of(spool.recheck()))
                .await
                .ok()
        })
    }

    fn apply(&self, verb: Verb) -> BoxFuture<'_, Option<VerbReport>> {
        self.apply_with(verb, VerbContext::default())
    }

    /// The quarantine check and the verb in one scheduler step; `by` into
    /// the mail log's `held` / `released` / `deleted` events.
    fn apply_with(&self, verb: Verb, cx: VerbContext) -> BoxFuture<'_, Option<VerbReport>> {
        Box::pin(async move {
            let cx = postern_delivery::VerbContext {
                by: cx.by,
                quarantined_only: cx.quarantined_only,
            };
            let r = self.controller.control_with(to_delivery(&verb), cx).await?;
            Some(VerbReport::new(
                &verb,
                outcome(r.outcome),
                (r.messages, r.rcpts, r.in_flight),
                r.error,
            ))
        })
    }

    fn header_preview(
        &self,
        queue_id: postern_spool::QueueId,
    ) -> BoxFuture<'_, Option<Vec<(String, String)>>> {
        let spool = self.spool.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                use std::io::Read as _;
                let mut msg = spool.open_message(&queue_id).ok()?;
                let mut buf = Vec::with_capacity(postern_admin::view::HEADER_PREVIEW_MAX);
                let max = postern_admin::view::HEADER_PREVIEW_MAX as u64;
                msg.by_ref().take(max).read_to_end(&mut buf).ok()?;
                Some(postern_admin::view::header_preview(&buf))
            })
            .await
            .ok()
            .flatten()
        })
    }
}

fn to_delivery(v: &Verb) -> postern_delivery::Verb {
    use postern_delivery::Verb as D;
    match v {
        Verb::Hold(id) => D::Hold(*id),
        Verb::Release(id) => D::Release(*id),
        Verb::Delete(id) => D::Delete(*id),
        Verb::Retry(id) => D::Retry(*id),
        Verb::Flush(d) => D::Flush(d.clone()),
    }
}

fn outcome(o: postern_delivery::VerbOutcome) -> VerbOutcome {
    use postern_delivery::VerbOutcome as D;
    match o {
        D::Done => VerbOutcome::Done,
        D::Pending => VerbOutcome::Pending,
        D::NotFound => VerbOutcome::NotFound,
        D::Loading => VerbOutcome::Loading,
        D::AlreadyHeld => VerbOutcome::AlreadyHeld,
        D::NotHeld => VerbOutcome::NotHeld,
        D::Held => VerbOutcome::Held,
        D::Deleting => VerbOutcome::Deleting,
        D::Finishing => VerbOutcome::Finishing,
        D::Failed => VerbOutcome::Failed,
        D::NotQuarantined => VerbOutcome::NotQuarantined,
    }
}
