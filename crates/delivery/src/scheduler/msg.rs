//! One queued message as the scheduler holds it ([`Msg`]: envelope, delivery
//! state, what is under way) and the RFC 3461 NOTIFY it was given ([`Notify`]).

use std::sync::{Arc, Mutex};

use postern_spool::{Envelope, MessageState, RcptStatus};
use tokio::sync::oneshot;

use crate::clock::{ms, parse_rfc3339_ms};
use crate::control::{MessageView, VerbReport};
use crate::settings::DeliverySettings;

/// One queued message.
pub(super) struct Msg {
    pub(super) env: Arc<Envelope>,
    pub(super) state: MessageState,
    pub(super) has_file: bool,
    pub(super) received_ms: u64,
    pub(super) expires_ms: u64,
    /// Accepted into a quarantine: when its retention ends (Unix ms).
    pub(super) quarantine_until_ms: Option<u64>,
    pub(super) busy: Vec<bool>,
    /// Success DSN duty passed on to the next hop (in memory only).
    pub(super) remote_dsn: Vec<bool>,
    /// Delivered into a local mailbox (in memory only; after a restart an
    /// unreported success says `relayed`, the weaker claim).
    pub(super) final_delivery: Vec<bool>,
    pub(super) jobs_out: usize,
    pub(super) persisting: usize,
    pub(super) settling: bool,
    /// The operator deleted it: removed (no DSN) once no job or write is
    /// outstanding.
    pub(super) deleting: bool,
    /// Attempts under way when the delete came (for the `deleted` event).
    pub(super) delete_in_flight: usize,
    /// Who waits for the removal's report (a delete that did not have to wait
    /// for an attempt).
    pub(super) delete_reply: Option<oneshot::Sender<VerbReport>>,
    /// Who deleted it, for the `deleted` event (`admin`, `quarantine-expiry`).
    pub(super) delete_via: &'static str,
    /// Who asked for the deletion ([`crate::VerbContext::by`]).
    pub(super) delete_by: String,
    /// Serialises appends to `state/<id>` from blocking tasks.
    pub(super) file_lock: Arc<Mutex<()>>,
}

impl Msg {
    pub(super) fn new(
        env: Envelope,
        state: Option<MessageState>,
        settings: &DeliverySettings,
        now: u64,
    ) -> Self {
        let n = env.recipients.len();
        let has_file = state.is_some();
        let mut state = state.unwrap_or_else(|| MessageState::new(n));
        let received_ms = parse_rfc3339_ms(&env.received_at)
            .or_else(|| Some(env.queue_id.timestamp_micros() / 1000))
            .filter(|t| *t > 0)
            .unwrap_or(now);
        // Accepted held (a quarantine): held until a release is recorded.
        if env.hold.is_some() && !has_file {
            state.hold_from(received_ms);
        }
        let quarantine_until_ms = quarantine_until(&env, received_ms, settings);
        let lifetime_from = lifetime_base(&env, &state, received_ms);
        Self {
            expires_ms: lifetime_from.saturating_add(ms(settings.max_lifetime)),
            quarantine_until_ms,
            env: Arc::new(env),
            state,
            has_file,
            received_ms,
            busy: vec![false; n],
            remote_dsn: vec![false; n],
            final_delivery: vec![false; n],
            jobs_out: 0,
            persisting: 0,
            settling: false,
            deleting: false,
            delete_in_flight: 0,
            delete_reply: None,
            delete_via: "admin",
            delete_by: String::new(),
            file_lock: Arc::new(Mutex::new(())),
        }
    }

    /// The earliest time a not-busy, non-final recipient is due; `None` also
    /// while the message is held or being deleted (never scheduled then).
    pub(super) fn next_due(&self) -> Option<u64> {
        if self.deleting {
            return None;
        }
        if self.state.is_held() {
            // A quarantined message (accepted held, never released) is due
            // once: when its quarantine's retention ends.
            return if self.is_quarantined() {
                self.quarantine_until_ms
            } else {
                None
            };
        }
        self.state
            .rcpts
            .iter()
            .zip(&self.busy)
            .filter(|(r, busy)| !**busy && !r.status.is_final())
            .map(|(r, _)| match r.status {
                RcptStatus::Deferred => r.next_attempt_ms.unwrap_or(0),
                _ => 0,
            })
            .min()
    }

    /// Still in the quarantine it was accepted into.
    pub(super) fn is_quarantined(&self) -> bool {
        self.state.is_quarantined(self.env.hold.is_some())
    }

    /// Recomputes the lifetime and the quarantine's end from `settings`
    /// (a reload).
    pub(super) fn apply_settings(&mut self, settings: &DeliverySettings) {
        self.quarantine_until_ms = quarantine_until(&self.env, self.received_ms, settings);
        self.expires_ms = lifetime_base(&self.env, &self.state, self.received_ms)
            .saturating_add(ms(settings.max_lifetime));
    }

    pub(super) fn notify_of(&self, i: usize) -> Notify {
        Notify::parse(self.env.recipients.get(i).and_then(|r| r.notify.as_deref()))
    }

    /// Recipients not final and not being attempted.
    pub(super) fn idle_open_rcpts(&self) -> usize {
        self.state
            .rcpts
            .iter()
            .zip(&self.busy)
            .filter(|(r, busy)| !**busy && !r.status.is_final())
            .count()
    }

    pub(super) fn busy_count(&self) -> usize {
        self.busy.iter().filter(|b| **b).count()
    }

    /// Addresses of the recipients not delivered or bounced yet.
    pub(super) fn open_addresses(&self) -> Vec<String> {
        self.state
            .rcpts
            .iter()
            .zip(&self.env.recipients)
            .filter(|(r, _)| !r.status.is_final())
            .map(|(_, e)| e.address.clone())
            .collect()
    }

    /// The operator's view; `waiting`: recipients whose job waits for a
    /// connection slot (not in flight).
    pub(super) fn view(&self, waiting: Option<&Vec<usize>>) -> MessageView {
        let mut in_flight = self.busy.clone();
        for i in waiting.into_iter().flatten() {
            if let Some(b) = in_flight.get_mut(*i) {
                *b = false;
            }
        }
        MessageView {
            envelope: Arc::clone(&self.env),
            state: self.state.clone(),
            in_flight,
            deleting: self.deleting,
            expires_ms: self.expires_ms,
            quarantine_until_ms: self.quarantine_until_ms.filter(|_| self.is_quarantined()),
        }
    }
}

/// RFC 3461 §4.1 NOTIFY as stored (`NEVER`, `SUCCESS,FAILURE,DELAY`). Absent:
/// `FAILURE,DELAY` (the RFC leaves the default to the MTA; most send both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)]
pub(super) struct Notify {
    pub(super) success: bool,
    pub(super) failure: bool,
    pub(super) delay: bool,
}

impl Notify {
    pub(super) fn parse(s: Option<&str>) -> Self {
        let Some(s) = s else {
            return Notify {
                success: false,
                failure: true,
                delay: true,
            };
        };
        let mut n = Notify {
            success: false,
            failure: false,
            delay: false,
        };
        for word in s.split(',') {
            match word.trim().to_ascii_uppercase().as_str() {
                "SUCCESS" => n.success = true,
                "FAILURE" => n.failure = true,
                "DELAY" => n.delay = true,
                _ => {}
            }
        }
        n
    }
}

/// When a message accepted into a quarantine leaves it unless an operator
/// decides first.
fn quarantine_until(env: &Envelope, received_ms: u64, settings: &DeliverySettings) -> Option<u64> {
    env.quarantine_name()
        .map(|q| settings.quarantines.until(q, received_ms))
}

/// Where `max_lifetime` counts from (`MessageState::lifetime_start`).
fn lifetime_base(env: &Envelope, state: &MessageState, received_ms: u64) -> u64 {
    state.lifetime_start(env.hold.is_some(), received_ms)
}
