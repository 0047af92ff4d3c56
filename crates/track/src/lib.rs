//! What happened to each message: the `MailEvent` catalogue with stable event
//! names, written as JSON lines (the mail log the tracking database will index).
//!
//! [`MailEvent`] names what happened (`received`, `queued`, `attempt`,
//! `delivered`, `deferred`, `bounced`, `dsn_sent`, `expired`, `badmail`, and the
//! operator's `held`, `released`, `deleted`) with the facts an operator needs;
//! [`TrackRecord`] adds the queue id, a unique [`EventId`] and the time;
//! [`MailLog`] writes records as JSON lines from one writer thread, never
//! blocking the caller; [`read_log`] reads them back for one message
//! (`postern queue show`).
//!
//! Consumers: the tracking database (`postern-trackdb`) indexes the log
//! file; the metrics (`postern-metrics`) see each record as a
//! [`LogObserver`].
//!
//! # Security
//! Records envelope addresses and TLS facts, never message bodies or AUTH
//! secrets. Remote replies are untrusted text; JSON escaping keeps each record on
//! one line.

mod event;
mod log;
mod read;
mod session;

pub use event::{
    Attempt, Badmail, CauseInfo, DsnSent, EventId, Expired, Filtered, MailEvent, PeerCert,
    Quarantined, QueueAction, Queued, RcptOutcome, Received, TlsOutcome, TrackRecord, now_rfc3339,
};
pub use log::{ConnectionGuard, LogObserver, MailLog, MemoryLog};
pub use read::{read_log, records_for};
pub use session::{SessionEvent, SessionRecord, SmtpDecision};
