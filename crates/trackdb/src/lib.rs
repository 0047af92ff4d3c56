//! The message tracking store: the mail log (`postern_track` JSON lines)
//! indexed into SQLite so an operator can search every event by sender,
//! recipient, time, queue id, Message-ID, subject, IP and TLS version, see the
//! whole life of a message with its transport-security evidence, and list the
//! TLS posture of every peer (`postern track …`, `postern tls posture`, the
//! web console).
//!
//! - [`TrackStore`] is the store trait (SQLite by default: [`SqliteStore`]; a
//!   shared store for several nodes implements the same trait).
//! - [`Indexer`] tails the mail log on its own thread and indexes it in
//!   batches, with the read offset committed in the same transaction as the
//!   rows: the server's hot path never waits for it, and a crash loses
//!   nothing (the mail log is the source of truth, re-read from the
//!   checkpoint).
//! - [`render`] turns results into the CLI's text tables, CSV and timelines.
//!
//! # Security
//! The store holds envelope addresses, remote replies (untrusted text) and,
//! only when `[tracking] subjects` is on, subjects. Queries are parameterised
//! (never string-built SQL from user input); CSV output neutralises formula
//! injection. The database is created 0600.

mod entry;
mod error;
mod evidence;
mod indexer;
pub mod render;
mod rotated;
mod settings;
mod sqlite;
mod store;
mod types;

pub use entry::{Batch, LogEntry};
pub use error::StoreError;
pub use indexer::{Indexer, IndexerStatus, NICE as INDEXER_NICE};
pub use settings::TrackingSettings;
pub use sqlite::SqliteStore;
pub use store::TrackStore;
pub use types::{
    Checkpoint, Direction, EventRow, Evidence, FileHead, InboundHop, MessageLife, OutboundHop,
    PeerPosture, PostureQuery, SearchQuery, Summary, TlsEvidence,
};
