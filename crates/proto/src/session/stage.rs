//! Policy stages: the points of a session where the gateway may refuse, with the
//! facts known there and the verdict it returns.
//!
//! The session machine ([`super::Session`]) stops at each stage with
//! [`super::Action::Check`] and waits for a [`Verdict`]; the driver asks the
//! policy (relay rules today; sender groups, rate limits, DHAP, SPF/DKIM/DMARC
//! and filters later) with [`super::Session::stage`], which borrows the facts
//! from the machine: nothing is copied per command.
//!
//! # Security
//! The facts are what an untrusted client sent (HELO name, envelope) plus what
//! we observed (peer address, TLS, AUTH identity). Policy must treat the first
//! kind as claims.
//!
//! # Standards
//! RFC 5321 §3.1 (a refusal at connect: `554`, then `503` to everything but
//! QUIT), §4.2.5 (refusing after DATA), §3.8 (`421`).

use std::net::IpAddr;

use crate::command::{MailFrom, RcptTo};
use crate::reply::Reply;

/// Where the session stands when it asks the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StageKind {
    /// A client connected (before the greeting).
    Connect,
    /// EHLO or HELO, before its `250`.
    Helo,
    /// MAIL FROM, before its `250`.
    Mail,
    /// RCPT TO, before its `250`.
    Rcpt,
    /// The whole message has been received (end of DATA or BDAT LAST), before
    /// it is committed.
    DataEnd,
}

impl StageKind {
    /// The stage's name in logs and configuration (`connect`, `helo`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Connect => "connect",
            StageKind::Helo => "helo",
            StageKind::Mail => "mail",
            StageKind::Rcpt => "rcpt",
            StageKind::DataEnd => "data-end",
        }
    }
}

/// The TLS facts policy may look at (the driver keeps the full handshake facts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.3`, `TLSv1.2`.
    pub version: String,
    /// The IANA suite name.
    pub cipher: String,
}

/// What is known of the session itself, at every stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFacts {
    /// The client's address.
    pub peer: IpAddr,
    /// The listener's name (`smtp`, `submission`, …).
    pub listener: String,
    /// The EHLO/HELO argument, once given (cleared by STARTTLS, RFC 3207 §4.2).
    pub helo: Option<String>,
    /// TLS in use on this session.
    pub tls: Option<TlsInfo>,
    /// The authenticated user (RFC 4954), once AUTH succeeded.
    pub auth_user: Option<String>,
    /// The SASL mechanism it succeeded with (`PLAIN`, `LOGIN`).
    pub auth_mechanism: Option<&'static str>,
}

/// One stage with the facts known there, borrowed from the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage<'a> {
    /// A client connected.
    Connect,
    /// EHLO (`esmtp`) or HELO with its argument, already syntax-checked.
    Helo {
        /// The argument: a domain or an address literal.
        name: &'a str,
        /// EHLO rather than HELO.
        esmtp: bool,
    },
    /// MAIL FROM with its parameters.
    Mail {
        /// The command.
        from: &'a MailFrom,
    },
    /// RCPT TO, with the transaction so far.
    Rcpt {
        /// The transaction's sender.
        from: &'a MailFrom,
        /// The recipient asked for.
        to: &'a RcptTo,
        /// Recipients accepted before this one.
        accepted: &'a [RcptTo],
    },
    /// The message is complete.
    DataEnd {
        /// The transaction's sender.
        from: &'a MailFrom,
        /// The accepted recipients.
        recipients: &'a [RcptTo],
        /// Message octets received (before our `Received:` header).
        octets: u64,
    },
}

impl Stage<'_> {
    /// Which stage this is.
    pub fn kind(&self) -> StageKind {
        match self {
            Stage::Connect => StageKind::Connect,
            Stage::Helo { .. } => StageKind::Helo,
            Stage::Mail { .. } => StageKind::Mail,
            Stage::Rcpt { .. } => StageKind::Rcpt,
            Stage::DataEnd { .. } => StageKind::DataEnd,
        }
    }
}

/// A policy's answer at a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No objection: the session goes on with its own reply.
    Accept,
    /// Refuse this command with this reply (`4xx` defers, `5xx` rejects); the
    /// session goes on. At connect, a `5xx` is the RFC 5321 §3.1 refusal: the
    /// session answers `503` to everything but QUIT; a `4xx` there closes.
    Refuse(Reply),
    /// Send this reply (`421`, or `554` at connect) and close the connection.
    Disconnect(Reply),
}
