//! The outbound SMTP client session: connect, banner, EHLO, STARTTLS, AUTH,
//! MAIL/RCPT/DATA (pipelined when offered), QUIT — with a transcript hook and
//! the TLS facts of the handshake. Shared by delivery and diagnostics (ADR 0004):
//! what `postern send` shows is exactly what delivery does.
//!
//! A delivery attempt reads like this:
//!
//! ```text
//! Session::connect(addr)          → banner (220)
//!   .ehlo()                       → EhloInfo (HELO fallback on 500/502)
//!   .starttls(mx_name, &tls)      → TlsInfo (facts + certificate verdict); then .ehlo() again
//!   .auth(Plain, user, password)  (smart hosts only; refused without TLS)
//!   .send(&envelope, &mut body)   → TransactionOutcome (reply to MAIL, each RCPT, end of data)
//!   .probe_recipient(addr)        → RecipientProbe (MAIL FROM:<>, RCPT TO, RSET; no DATA: call-ahead)
//!   .quit()
//! ```
//!
//! Policy (when to require TLS, what to do with an unverified certificate,
//! whether to retry in plaintext) is the caller's: this crate reports, it does
//! not decide.
//!
//! # Security
//! Talks to remote servers; every reply is untrusted input parsed with limits
//! (`postern_proto::ReplyParser`). Outbound message data is always dot-stuffed
//! and sent with CRLF line ends only (we never relay a bare LF: the
//! SMTP-smuggling defence, outbound side; see [`body`]). Addresses and
//! parameters with control characters are refused before anything is sent
//! (command injection). AUTH payloads never reach the transcript
//! (`[redacted]`), and AUTH is refused on a plaintext connection unless the
//! caller allows it. Bytes a server sends after its `220` to STARTTLS are
//! discarded, never read as post-TLS replies (RFC 3207 §4.2 response
//! injection). Message bodies are streamed, never held whole, and never
//! logged.
//!
//! # Standards
//! RFC 5321, RFC 3207 (STARTTLS), RFC 8314 (implicit TLS), RFC 2920
//! (PIPELINING), RFC 4954 (AUTH), RFC 4616 (PLAIN), RFC 3030 (CHUNKING),
//! RFC 1870 (SIZE), RFC 6152 (8BITMIME), RFC 6531 (SMTPUTF8), RFC 3461 (DSN).

pub mod body;
pub mod cause;
mod error;
mod probe;
mod session;

use std::fmt::Write as _;
use std::time::Duration;

pub use error::{ClientError, Stage};
pub use postern_proto::{EhloInfo, EnhancedCode, Reply};
pub use postern_tls::cause::Advice;
pub use postern_tls::client::{ClientTls, PeerVerdict};
pub use probe::RecipientProbe;
pub use session::Session;

/// Session settings. Timeouts default to RFC 5321 §4.5.3.2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// The name we give in EHLO/HELO: our own FQDN.
    pub helo_name: String,
    /// TCP connect. Default 30 s.
    pub connect_timeout: Duration,
    /// The 220 greeting. Default 5 min (RFC 5321 §4.5.3.2.1).
    pub greeting_timeout: Duration,
    /// Each command reply, each block of data written, and the TLS
    /// handshake. Default 5 min (RFC 5321 §4.5.3.2.2–4).
    pub command_timeout: Duration,
    /// The reply to the end of data. Default 10 min (RFC 5321 §4.5.3.2.6).
    pub data_timeout: Duration,
    /// Use BDAT instead of DATA when the server offers CHUNKING (RFC 3030).
    /// Default false: DATA is what every server implements best.
    pub prefer_chunking: bool,
    /// Allow AUTH on a connection without TLS (the password would cross the
    /// network in clear). Default false.
    pub allow_plaintext_auth: bool,
    /// What a TLS failure's fix may say about the caller's policy: the
    /// recipient domains and whether the level retries in plaintext
    /// (default: unknown domains, no retry).
    pub advice: Advice,
}

impl ClientSettings {
    /// Defaults with `helo_name`.
    pub fn new(helo_name: impl Into<String>) -> Self {
        Self {
            helo_name: helo_name.into(),
            ..Self::default()
        }
    }
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            helo_name: "localhost".to_owned(),
            connect_timeout: Duration::from_secs(30),
            greeting_timeout: Duration::from_mins(5),
            command_timeout: Duration::from_mins(5),
            data_timeout: Duration::from_mins(10),
            prefer_chunking: false,
            allow_plaintext_auth: false,
            advice: Advice::default(),
        }
    }
}

/// Which way a transcript line went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// A command line we sent (`>>>`).
    Sent,
    /// A reply line we received (`<<<`).
    Received,
    /// Something that happened (connected, TLS established, N octets sent).
    Event,
}

impl Direction {
    /// `>>>`, `<<<` or `***`.
    pub fn marker(self) -> &'static str {
        match self {
            Direction::Sent => ">>>",
            Direction::Received => "<<<",
            Direction::Event => "***",
        }
    }
}

/// The transcript hook: called once per line, without line ends. AUTH
/// payloads arrive as `[redacted]`; message data as one event with its size.
pub type Transcript = Box<dyn FnMut(Direction, &str) + Send>;

/// SASL mechanisms we can use (RFC 4954).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMechanism {
    /// RFC 4616, sent as an initial response.
    Plain,
    /// The de-facto LOGIN mechanism (draft-murchison-sasl-login).
    Login,
}

impl AuthMechanism {
    /// The SASL name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMechanism::Plain => "PLAIN",
            AuthMechanism::Login => "LOGIN",
        }
    }
}

/// What a TLS handshake gave us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// Version, suite, group, the SNI we sent, resumption.
    pub facts: postern_tls::facts::TlsFacts,
    /// The verdict on the presented chain for the name we connected to.
    pub verdict: Option<PeerVerdict>,
}

impl TlsInfo {
    /// `TLSv1.3 TLS_AES_256_GCM_SHA384 group X25519MLKEM768, certificate
    /// CN=mx.example.com verified: no (self-signed)`.
    pub fn summary(&self) -> String {
        let mut out = format!("{} {}", self.facts.version, self.facts.cipher);
        if let Some(g) = &self.facts.group {
            out.push_str(" group ");
            out.push_str(g);
        }
        if self.facts.resumed {
            out.push_str(" (resumed)");
        }
        if let Some(v) = &self.verdict {
            let subject = v.leaf().map_or_else(|| "(none)".to_owned(), |d| d.subject);
            let _ = write!(out, ", certificate {subject} verified: {}", v.summary());
        }
        out
    }
}

/// One message to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutEnvelope {
    /// Reverse path without angle brackets; empty for the null sender `<>`.
    pub mail_from: String,
    /// Recipients, in order.
    pub rcpts: Vec<OutRecipient>,
    /// Message size in octets, for `SIZE=` (RFC 1870) when offered.
    pub size: Option<u64>,
    /// `BODY=` value (`7BIT`, `8BITMIME`), sent when 8BITMIME is offered.
    pub body: Option<String>,
    /// Send `SMTPUTF8` (RFC 6531) when offered.
    pub smtputf8: bool,
    /// `RET=` (`FULL`/`HDRS`), sent when DSN is offered.
    pub ret: Option<String>,
    /// `ENVID=` as xtext, sent when DSN is offered.
    pub envid: Option<String>,
}

/// One recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutRecipient {
    /// Forward path without angle brackets.
    pub address: String,
    /// `NOTIFY=` value (RFC 3461), sent when DSN is offered.
    pub notify: Option<String>,
    /// `ORCPT=` value (`rfc822;xtext`), sent when DSN is offered.
    pub orcpt: Option<String>,
}

impl OutRecipient {
    /// A recipient without DSN parameters.
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            ..Self::default()
        }
    }
}

/// The replies of one transaction. 4xx/5xx replies are outcomes, not errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionOutcome {
    /// Reply to MAIL FROM.
    pub mail: Reply,
    /// Reply to each RCPT TO, in envelope order. Empty when MAIL was refused
    /// without pipelining (no RCPT was sent); with pipelining the server's
    /// replies to the RCPTs sent anyway are kept (typically 503).
    pub rcpts: Vec<Reply>,
    /// Reply to the end of data (or to DATA/BDAT itself when refused);
    /// `None` when no RCPT was accepted.
    pub data: Option<Reply>,
}

impl TransactionOutcome {
    /// The message was accepted for at least one recipient: a 2xx after
    /// the data.
    pub fn is_accepted(&self) -> bool {
        self.data
            .as_ref()
            .is_some_and(|r| (200..300).contains(&r.code))
    }

    /// The reply that decides recipient `i`: the data reply when the RCPT
    /// was accepted, else the RCPT reply (or MAIL's when MAIL was refused).
    pub fn rcpt_result(&self, i: usize) -> Option<&Reply> {
        if !self.mail.is_positive() {
            return Some(&self.mail);
        }
        let rcpt = self.rcpts.get(i)?;
        if rcpt.is_positive() {
            self.data.as_ref().or(Some(rcpt))
        } else {
            Some(rcpt)
        }
    }
}
