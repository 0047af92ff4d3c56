//! The durable message spool: every message Postern answered `250` to is here,
//! complete, until delivery removes it.
//!
//! A message is streamed into `tmp/<queue id>` ([`Spool::begin`],
//! [`Incoming::write_all`]), then [`Incoming::commit`] appends the envelope and a
//! trailer, fsyncs the file, renames it into `msg/`, and waits for a directory
//! fsync shared with concurrent commits (group commit). Only then may the smtpd
//! answer `250`. Async callers run that work on the spool's own I/O threads
//! ([`Spool::execute`]) and let the committer answer them
//! ([`Incoming::commit_then`], [`Spool::remove_then`]) instead of parking a
//! thread per commit. [`Spool::open`] recovers after a crash: `tmp/` is emptied and every
//! file in `msg/` is validated; damaged ones go to `corrupt/`. The format, the
//! protocol and the crash analysis are in `docs/spool-format.md`.
//!
//! This crate is not the delivery queue: it stores messages and envelopes; the
//! mutable per-recipient delivery state (`state/`) belongs to the scheduler.
//!
//! # Security
//! Writes only below the configured spool directory, to names built from a
//! validated [`QueueId`]. Reads files it wrote itself, but treats them as untrusted
//! on recovery (a damaged file is moved aside, never half-read). Message bodies
//! never reach a log. An fsync failure poisons the spool (no more `250`s) until
//! the operator's [`Spool::recheck`] or a restart; below the free-space floor
//! ([`Spool::admit`]) new messages are refused before their data is read.
//!
//! # Standards
//! None on the wire; the on-disk format is `docs/spool-format.md`. Envelope fields
//! follow RFC 5321, RFC 3461 (DSN) and RFC 6531 (SMTPUTF8).

mod envelope;
mod error;
mod format;
mod fs;
mod group;
mod id;
mod io;
mod quarantine;
mod reader;
mod reuse;
mod settings;
mod space;
mod spool;
pub mod state;

pub use envelope::{
    ContentDecision, DEFAULT_QUARANTINE, Envelope, EnvelopeRecipient, MailParams, Receipt,
    ReceiptTls, rfc3339_now,
};
pub use error::{SpoolError, SpoolOp};
pub use format::{MessageReader, validate_message_bytes};
pub use fs::{DirHandle, FaultFs, ReadFile, SpoolFs, StdFs, WriteFile};
pub use group::PoisonInfo;
pub use id::{QUEUE_ID_LEN, QueueId};
pub use quarantine::{BUILTIN_QUARANTINES, OnExpiry, QuarantineSpec, Quarantines};
pub use reader::{Listing, SpoolReader};
pub use settings::{DEFAULT_MIN_FREE, SpoolSettings};
pub use spool::{Incoming, RecoveryReport, Spool};
pub use state::{
    DsnKind, Durability, MessageState, RcptState, RcptStatus, StateRecord, StateStore,
};
