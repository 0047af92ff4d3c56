//! `postern-milter`: the MTA side of the Sendmail milter protocol (version
//! 6), so existing mail filters plug into Postern: opendkim, clamav-milter,
//! rspamd's proxy worker, commercial filters.
//!
//! One conversation per message: at end of data the caller calls [`run`]
//! with a [`MilterSpec`] (where the milter is, timeouts, failure action,
//! macros), the [`Envelope`] of the transaction, the header fields and a
//! reader over the body. We connect, negotiate, replay the transaction and
//! return a [`MilterResult`]: the [`Verdict`] and the [`Modification`]s,
//! which [`apply`] applies to the header and recipient lists before the
//! message is committed and answered `250`. On [`MilterError`] the caller
//! applies [`MilterSpec::default_action`]; [`MilterError::cause`] gives the
//! operator an id and a fix.
//!
//! Layers: [`codec`] (packets, no I/O), [`fields`] (checks on every field a
//! milter sends), [`Session`] (one step at a time, for use during a live SMTP
//! session), [`client`] (the whole-message replay on it: [`run`]),
//! [`modify`] (verdicts, modifications, applying them), [`macros`] (macro
//! lists and values).
//! See `docs/milter.md`.
//!
//! # Security
//! A milter is an outside program: every packet it sends is bounded
//! ([`codec::MAX_PACKET`]) and checked, a modification must have been
//! negotiated, a header value cannot inject a field, an address must be a
//! mailbox, a reply must be 4xx/5xx, and every wait has a timeout.
//!
//! # Standards
//! Sendmail libmilter protocol version 6 (`mfdef.h`, `smfi_*` docs);
//! RFC 5321, RFC 5322, RFC 3463 for the fields it carries.

pub mod cause;
pub mod client;
pub mod codec;
mod error;
pub mod fields;
mod flags;
pub mod macros;
pub mod modify;
pub mod session;
mod spec;
mod stream;

use std::fmt;

pub use client::{Negotiated, run, run_on_stream};
pub use error::{EncodeError, MilterError, ProtocolError};
pub use flags::{Actions, MacroStage, ProtocolFlags};
pub use macros::MacroLists;
pub use modify::{Applied, MilterResult, Modification, Verdict, apply};
pub use session::{Session, Step};
pub use spec::{Envelope, MilterAddr, MilterSpec, OnFailure, ResultLimits, Timeouts};
pub use stream::{MilterStream, QuickAck, open};

/// Where a conversation is: in errors and in [`MilterResult::stage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Opening the socket.
    Open,
    /// `SMFIC_OPTNEG`.
    Negotiate,
    /// `SMFIC_CONNECT`.
    Connect,
    /// `SMFIC_HELO`.
    Helo,
    /// `SMFIC_MAIL`.
    Mail,
    /// `SMFIC_RCPT`.
    Rcpt,
    /// `SMFIC_DATA`.
    Data,
    /// `SMFIC_HEADER`.
    Header,
    /// `SMFIC_EOH`.
    EndOfHeaders,
    /// `SMFIC_BODY`.
    Body,
    /// `SMFIC_BODYEOB` and the modifications.
    EndOfMessage,
    /// `SMFIC_QUIT`.
    Quit,
}

impl Stage {
    /// The stage's name in logs and docs.
    pub const fn name(self) -> &'static str {
        match self {
            Stage::Open => "open",
            Stage::Negotiate => "negotiate",
            Stage::Connect => "connect",
            Stage::Helo => "helo",
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
            Stage::Header => "header",
            Stage::EndOfHeaders => "eoh",
            Stage::Body => "body",
            Stage::EndOfMessage => "eom",
            Stage::Quit => "quit",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
