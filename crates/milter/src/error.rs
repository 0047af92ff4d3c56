//! [`MilterError`]: why a milter conversation failed, and [`ProtocolError`]:
//! what was wrong with a packet from the milter.
//!
//! The caller turns every [`MilterError`] into the milter's configured
//! failure action ([`crate::OnFailure`]: accept, tempfail or reject); the
//! operator reads [`crate::cause`] for the id and the fix.

use std::time::Duration;

use crate::Stage;

/// A packet from the milter that breaks the protocol or our bounds. Every
/// field a milter sends is checked; the first fault ends the conversation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The 4-byte length prefix is 0 or larger than the bound.
    #[error("packet length {len} out of bounds (1..={max})")]
    Length {
        /// The length the milter announced.
        len: u64,
        /// Our bound.
        max: usize,
    },
    /// A reply byte that is not one of the `SMFIR_*` codes.
    #[error("unknown reply code {0:?}")]
    UnknownReply(char),
    /// A reply whose data is not what its code requires (a missing NUL, a
    /// header name with a colon, a CR/LF that would start a new header
    /// field, an invalid address, a reply code that is not 4xx/5xx, …).
    #[error("malformed {what}: {why}")]
    Malformed {
        /// The reply (`SMFIR_CHGHEADER`, …).
        what: &'static str,
        /// What is wrong.
        why: String,
    },
    /// A reply the protocol does not allow here (a modification before end
    /// of message, a skip outside the body, …).
    #[error("unexpected {reply} at stage {stage}")]
    Unexpected {
        /// The reply.
        reply: &'static str,
        /// Where it came.
        stage: Stage,
    },
    /// A modification the milter did not request in negotiation.
    #[error("{reply} without negotiating the {action} action")]
    NotNegotiated {
        /// The reply.
        reply: &'static str,
        /// The `SMFIF_*` action it needs.
        action: &'static str,
    },
    /// The milter answered negotiation with a version we cannot speak.
    #[error("milter protocol version {0} not supported (we speak 2 to 6)")]
    Version(u32),
    /// The milter asked for actions we did not offer.
    #[error("milter asked for actions {asked} beyond those offered ({offered})")]
    Actions {
        /// What it asked for.
        asked: crate::Actions,
        /// What we offered.
        offered: crate::Actions,
    },
    /// A modification would grow the result past its bound.
    #[error("{what} exceeds its bound of {max}")]
    TooMuch {
        /// What grew (`modifications`, `replacement body`).
        what: &'static str,
        /// The bound.
        max: usize,
    },
}

/// Something we were asked to send cannot be encoded: a field holding a NUL
/// (it would end the field early and shift every later one), or a body chunk
/// longer than the protocol allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A NUL inside a string field.
    #[error("{field} contains a NUL byte")]
    Nul {
        /// Which field.
        field: &'static str,
    },
    /// A body chunk over 65535 bytes.
    #[error("body chunk of {0} bytes exceeds 65535")]
    ChunkTooLong(usize),
}

/// A failed milter conversation. Map it to the milter's failure action.
#[derive(Debug, thiserror::Error)]
pub enum MilterError {
    /// The milter's address could not be parsed.
    #[error("milter {name}: bad address {address:?}: {why}")]
    Address {
        /// The milter's name.
        name: String,
        /// The address as configured.
        address: String,
        /// What is wrong and what is allowed.
        why: &'static str,
    },
    /// Connecting failed (refused, no such socket, unreachable).
    #[error("milter {name}: cannot connect to {address}: {source}")]
    Connect {
        /// The milter's name.
        name: String,
        /// The address.
        address: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// No answer (or no progress) within the timeout of a stage.
    #[error("milter {name}: timed out after {after:?} at stage {stage}")]
    Timeout {
        /// The milter's name.
        name: String,
        /// Where it stopped answering.
        stage: Stage,
        /// The timeout that expired.
        after: Duration,
    },
    /// The connection failed or closed mid-conversation.
    #[error("milter {name}: connection lost at stage {stage}: {source}")]
    Io {
        /// The milter's name.
        name: String,
        /// Where.
        stage: Stage,
        /// The socket error (`UnexpectedEof` when the milter closed).
        #[source]
        source: std::io::Error,
    },
    /// The milter broke the protocol.
    #[error("milter {name}: protocol error at stage {stage}: {source}")]
    Protocol {
        /// The milter's name.
        name: String,
        /// Where.
        stage: Stage,
        /// What was wrong.
        #[source]
        source: ProtocolError,
    },
    /// Our own data could not be encoded (a NUL in a header value, …).
    #[error("milter {name}: cannot send stage {stage}: {source}")]
    Encode {
        /// The milter's name.
        name: String,
        /// Where.
        stage: Stage,
        /// What could not be encoded.
        #[source]
        source: EncodeError,
    },
    /// Reading the message body from the caller's reader failed.
    #[error("milter {name}: reading the message body: {source}")]
    Body {
        /// The milter's name.
        name: String,
        /// The reader's error.
        #[source]
        source: std::io::Error,
    },
}

impl MilterError {
    /// The stage the conversation stopped at, when it got that far.
    pub fn stage(&self) -> Option<Stage> {
        match self {
            MilterError::Timeout { stage, .. }
            | MilterError::Io { stage, .. }
            | MilterError::Protocol { stage, .. }
            | MilterError::Encode { stage, .. } => Some(*stage),
            MilterError::Body { .. } => Some(Stage::Body),
            MilterError::Address { .. } | MilterError::Connect { .. } => None,
        }
    }
}
