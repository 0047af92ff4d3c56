//! Content inspection for Postern's filters (issue 11): a decoded, bounded view
//! of a message ([`mime`]: header fields, subject, body text, attachments with
//! declared and detected types) and word-boundary dictionaries ([`dict`]).
//!
//! This crate does no policy: it answers "what does this message say and
//! carry?" and "which dictionary entries occur in this text?". The rule
//! language (`postern-filter`) decides what to do with the answers.
//!
//! # Security
//! Everything here reads untrusted input (the message, and dictionary files
//! an administrator wrote). Parsing never panics and every allocation is
//! bounded by [`ViewLimits`] or by the dictionary file-size cap.

pub mod dict;
pub mod mime;

pub use dict::{DictError, DictMatch, Dictionaries, Dictionary, RefreshOutcome, RefreshReport};
pub use mime::{Attachment, HeaderField, MessageView, ViewLimits};
