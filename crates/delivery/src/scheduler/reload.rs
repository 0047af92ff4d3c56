//! `SIGHUP` for delivery: new settings (routes, retry schedule, limits, TLS
//! defaults) and a new transport (DNS resolver, trust anchors) for every job
//! started from now on. Attempts under way finish under the old ones (their
//! job and transport are theirs, and their connection takes no further job);
//! jobs still waiting for a connection slot were routed under the old routes,
//! so they are taken back and routed again.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;

use postern_spool::QueueId;

use crate::route::Router;
use crate::settings::DeliverySettings;
use crate::transport::{Job, Transport};

use super::Scheduler;

/// A new configuration for the scheduler.
pub(crate) struct Reload {
    pub(crate) settings: Arc<DeliverySettings>,
    /// An `Arc<T>` of the scheduler's transport type (checked on arrival).
    pub(crate) transport: Arc<dyn Any + Send + Sync>,
}

impl<T: Transport> Scheduler<T> {
    pub(super) fn reload(&mut self, r: Reload) {
        let Ok(transport) = r.transport.downcast::<T>() else {
            // Only a programming error gets here: the handle is generic over T.
            tracing::error!("delivery: reload with another transport type ignored");
            return;
        };
        self.generation += 1;
        self.settings = r.settings;
        self.router = Router::new(Arc::clone(&self.settings));
        self.transport = transport;
        let taken = self.take_all_waiting_jobs();
        let mut quarantined = Vec::new();
        for (id, m) in &mut self.msgs {
            m.apply_settings(&self.settings);
            if m.is_quarantined()
                && let Some(until) = m.quarantine_until_ms
            {
                quarantined.push((*id, until));
            }
        }
        // A changed retention takes effect now, shorter ones included.
        for (id, until) in quarantined {
            self.due.schedule(id, until);
        }
        let mut rescheduled = 0;
        for id in taken {
            if let Some(due) = self.msgs.get(&id).and_then(super::Msg::next_due) {
                self.due.schedule(id, due);
                rescheduled += 1;
            }
        }
        tracing::info!(
            routes = self.settings.routes.len(),
            default_tls = %self.settings.default_tls,
            requeued = rescheduled,
            "delivery: configuration reloaded (attempts under way finish under the old one)"
        );
    }

    /// Takes back every job waiting for a connection slot (none was started)
    /// and returns the messages they belonged to.
    fn take_all_waiting_jobs(&mut self) -> Vec<QueueId> {
        let mut taken: Vec<Job> = Vec::new();
        for d in self.dests.values_mut() {
            taken.extend(d.pending.drain(..));
            d.blocked = false;
        }
        self.blocked = VecDeque::new();
        let mut ids = Vec::new();
        for job in taken {
            if let Some(m) = self.msgs.get_mut(&job.queue_id) {
                for i in &job.rcpts {
                    if let Some(b) = m.busy.get_mut(*i) {
                        *b = false;
                    }
                }
                m.jobs_out = m.jobs_out.saturating_sub(1);
            }
            if !ids.contains(&job.queue_id) {
                ids.push(job.queue_id);
            }
        }
        self.dests.retain(|_, d| d.active > 0);
        ids
    }
}
