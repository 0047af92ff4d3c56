//! The SMTP session as a state machine without I/O.
//!
//! A [`Session`] holds everything a server session knows (greeting, EHLO, TLS,
//! AUTH, the transaction) and decides every reply; it never touches a socket, a
//! clock, a file or a password hash. The driver (`postern-smtpd`) feeds it
//! [`Event`]s — a complete command line, the end of a message body, a policy
//! verdict, the result of a credential check — and carries out the [`Action`]s
//! it takes out with [`Session::poll_action`]: send a reply, start TLS, ask a
//! policy stage, verify credentials, receive a body, commit it, close.
//!
//! ```text
//!  bytes ─▶ LineReader ─▶ Event::Line ─▶ Session ─▶ Action::Reply / Check / Authenticate /
//!                                         ▲          ReceiveData / ReceiveChunk / Commit /
//!  Verdict / AuthResult / BodyEnd / ──────┘          StartTls / Close
//!  Committed / TlsEstablished
//! ```
//!
//! An action that needs an answer (`Check`, `Authenticate`, `StartTls`,
//! `ReceiveData`, `ReceiveChunk`, `Commit`) is always the last one queued; the
//! machine takes no other event until that answer arrives.
//!
//! # Security
//! Every line comes from an untrusted peer. The machine enforces command order
//! (RFC 5321 §4.1.4), the TLS and AUTH gates (RFC 3207 §4, RFC 4954), the
//! transaction limits, the error budget (RFC 5321 §4.3.2: `421` after
//! `max_errors`) and the AUTH failure budget; it forgets everything learned in
//! clear after STARTTLS (RFC 3207 §4.2). A bare LF closes the session (RFC 5321
//! §2.3.8, SMTP smuggling). Nothing it keeps grows without bound: recipients
//! are capped, counters saturate.
//!
//! # Standards
//! RFC 5321, RFC 3207 (STARTTLS), RFC 4954 (AUTH), RFC 1870 (SIZE), RFC 2920
//! (PIPELINING), RFC 3030 (CHUNKING), RFC 6531 (SMTPUTF8), RFC 3461 (DSN).

mod auth;
pub(crate) mod replies;
mod stage;
mod stats;
#[cfg(test)]
mod tests;
mod verbs;

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;

pub use stage::{SessionFacts, Stage, StageKind, TlsInfo, Verdict};
pub use stats::Stats;

use crate::command::{MailFrom, RcptTo};
use crate::data::DataError;
use crate::limits::Limits;
use crate::reply::Reply;

/// RFC 4954 §4: a SASL response line may be up to 12 288 octets, whatever the
/// command-line limit.
pub const MAX_SASL_LINE: usize = 12_288;

/// When TLS is used on a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// STARTTLS is not offered.
    Off,
    /// STARTTLS is offered; plaintext mail is accepted.
    Optional,
    /// STARTTLS is offered and MAIL/AUTH before it get `530 5.7.0`. For
    /// implicit-TLS listeners this means the handshake before the greeting.
    Required,
}

/// Whether SMTP AUTH is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// AUTH is not offered.
    Off,
    /// AUTH is offered after TLS; unauthenticated sessions may still send to
    /// accepted domains (or relay from relay networks).
    Offered,
    /// AUTH is offered after TLS and MAIL without it gets `530 5.7.0`.
    Required,
}

/// How VRFY is answered. EXPN is always `502`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrfyMode {
    /// `252 2.5.0` (cannot verify, will accept and attempt delivery; RFC 5321 §3.5.3).
    Ambiguous,
    /// `502 5.5.1` command not implemented.
    Disabled,
}

/// What a session may offer and how much it accepts; fixed for its lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Our name in the greeting and the EHLO reply.
    pub hostname: String,
    /// Line and path limits (RFC 5321 §4.5.3.1).
    pub limits: Limits,
    /// Largest message, advertised in SIZE (RFC 1870).
    pub max_message_size: u64,
    /// Recipients per transaction (RFC 5321 §4.5.3.1.8: at least 100).
    pub max_recipients: usize,
    /// Error replies before `421` and close (RFC 5321 §4.3.2 hint).
    pub max_errors: usize,
    /// Failed AUTH attempts before `421` and close.
    pub max_auth_failures: usize,
    /// The listener's TLS mode.
    pub tls: TlsMode,
    /// A TLS configuration is loaded (STARTTLS can actually run).
    pub tls_available: bool,
    /// The listener's AUTH mode.
    pub auth: AuthMode,
    /// `[danger] allow_insecure_auth`: offer AUTH without TLS.
    pub auth_in_clear: bool,
    /// VRFY answer.
    pub vrfy: VrfyMode,
}

/// Per-client changes to the [`SessionConfig`], chosen at the connect stage
/// (the sender group's mail-flow policy) and applied with [`Session::tune`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tuning {
    /// The greeting's text after `220 hostname ESMTP`.
    pub banner: Option<String>,
    /// The TLS mode instead of the listener's.
    pub tls: Option<TlsMode>,
    /// The AUTH mode instead of the listener's.
    pub auth: Option<AuthMode>,
    /// The largest message (advertised in SIZE).
    pub max_message_size: Option<u64>,
    /// Recipients per transaction.
    pub max_recipients: Option<usize>,
}

/// Something that happened, for the machine to decide on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// The connection is established (after the implicit-TLS handshake on a
    /// `submissions` listener). The machine asks the connect stage, then greets.
    Connected,
    /// A complete line (without its CRLF): a command, or a SASL response while
    /// an AUTH exchange waits for one.
    Line(&'a [u8]),
    /// A line longer than the reader's limit ended (its bytes were dropped).
    LineTooLong,
    /// A line ended with a bare LF (RFC 5321 §2.3.8): one error, then close.
    BareLineFeed,
    /// The STARTTLS handshake succeeded.
    TlsEstablished(TlsInfo),
    /// The policy's answer to the pending [`Action::Check`].
    Verdict(Verdict),
    /// The answer to [`Action::Authenticate`].
    AuthResult(AuthOutcome),
    /// The end of a DATA body ([`Action::ReceiveData`]) or of a BDAT chunk
    /// ([`Action::ReceiveChunk`]).
    BodyEnd(BodyOutcome),
    /// The answer to [`Action::Commit`]: the queue id, or the reply for a
    /// storage failure (`451 4.3.0`, `452 4.3.1`).
    Committed(Result<String, Reply>),
    /// A deadline passed (command line, DATA, AUTH queue): `421 4.4.2` and close.
    Timeout,
    /// The server is shutting down: `421 4.3.2` and close.
    Shutdown,
}

/// The result of a credential check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The password matches.
    Success,
    /// Unknown user or wrong password (`535 5.7.8`).
    Invalid,
    /// The check could not run in time (verifier busy): `454 4.7.0`.
    Unavailable,
}

/// How a message body (or a BDAT chunk) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyOutcome {
    /// Received whole and stored; `octets` so far in the message.
    Stored {
        /// Message octets received so far (all chunks for BDAT).
        octets: u64,
    },
    /// Read to its end but malformed (bare LF/CR, NUL, long line): rejected.
    Malformed(DataError),
    /// Larger than `max_message_size`: `552 5.3.4`.
    TooBig,
    /// The spool could not take it: the reply (`451`/`452`).
    StorageFailed(Reply),
    /// A BDAT chunk read and dropped because the command was refused.
    Discarded,
}

/// Credentials to check; `Debug` never prints the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The authentication identity.
    pub user: String,
    /// The password (a secret: never logged).
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Queue this reply for the client (write when no complete command is
    /// waiting: RFC 2920 batching).
    Reply(Reply),
    /// Write queued replies, drop any plaintext received after the command
    /// (CVE-2011-0411), run the TLS handshake, then feed
    /// [`Event::TlsEstablished`] — or end the session if it fails.
    StartTls,
    /// Ask the policy about [`Session::stage`], then feed [`Event::Verdict`].
    Check(StageKind),
    /// Verify these credentials, then feed [`Event::AuthResult`].
    Authenticate(Credentials),
    /// Write queued replies, receive a DATA body up to `CRLF.CRLF` into the
    /// spool, then feed [`Event::BodyEnd`].
    ReceiveData,
    /// Receive the `size` octets of a BDAT chunk that follow the command
    /// (always, even when refused: RFC 3030 §2), then feed [`Event::BodyEnd`].
    ReceiveChunk {
        /// Octets in the chunk.
        size: u64,
        /// `BDAT … LAST`.
        last: bool,
        /// Keep the chunk (false: read and drop it, the command is refused).
        store: bool,
        /// The first chunk of this transaction: start a new body.
        first: bool,
    },
    /// Drop the body being received by BDAT (the transaction was reset).
    DiscardBody,
    /// Commit the message (envelope: [`Session::transaction`]), then feed
    /// [`Event::Committed`].
    Commit,
    /// Write queued replies and close the connection.
    Close,
}

/// The mail transaction in progress (MAIL … end of data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// The MAIL command.
    pub mail: MailFrom,
    /// Accepted recipients, in order.
    pub recipients: Vec<RcptTo>,
    /// BDAT has started (DATA is no longer allowed, RFC 3030 §3).
    pub bdat: bool,
    /// Message octets received, once the body is complete.
    pub octets: u64,
}

/// What the machine waits for.
#[derive(Debug)]
enum Waiting {
    /// Nothing: the next line is a command (or a SASL response, see `sasl`).
    Command,
    /// A policy verdict; what to do on `Accept`.
    Verdict(Pending),
    /// A credential check.
    Auth,
    /// The STARTTLS handshake.
    Tls,
    /// A DATA body.
    Data,
    /// A BDAT chunk; `refusal` is the reply once a refused chunk has been read.
    Chunk {
        size: u64,
        last: bool,
        refusal: Option<Reply>,
    },
    /// The spool commit.
    Commit,
    /// The session is over (after `Close`).
    Closed,
}

/// The command a policy verdict decides.
#[derive(Debug)]
enum Pending {
    Connect,
    Helo { name: String, esmtp: bool },
    Mail(MailFrom),
    Rcpt(RcptTo),
    DataEnd,
}

/// One SMTP server session, without I/O. See the module documentation.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    facts: SessionFacts,
    /// EHLO (not HELO) was used; `facts.helo` holds the argument.
    esmtp: bool,
    tx: Option<Transaction>,
    waiting: Waiting,
    /// An AUTH exchange waiting for the client's next line.
    sasl: Option<auth::SaslStep>,
    /// The user whose credentials are being checked.
    pending_user: Option<String>,
    /// The mechanism of the AUTH exchange in progress.
    pending_mechanism: Option<&'static str>,
    /// RFC 5321 §3.1: refused at connect; only QUIT is served.
    refused: bool,
    /// The greeting's text after `ESMTP` ([`Tuning::banner`]).
    banner: Option<String>,
    errors: usize,
    auth_failures: usize,
    stats: Stats,
    actions: VecDeque<Action>,
}

impl Session {
    /// A session for a client at `peer` on listener `listener`. `tls` is set
    /// when the connection is already encrypted (implicit TLS, RFC 8314).
    pub fn new(
        config: SessionConfig,
        peer: IpAddr,
        listener: impl Into<String>,
        tls: Option<TlsInfo>,
    ) -> Self {
        Self {
            config,
            facts: SessionFacts {
                peer,
                listener: listener.into(),
                helo: None,
                tls,
                auth_user: None,
                auth_mechanism: None,
            },
            esmtp: false,
            tx: None,
            waiting: Waiting::Command,
            sasl: None,
            pending_user: None,
            pending_mechanism: None,
            refused: false,
            banner: None,
            errors: 0,
            auth_failures: 0,
            stats: Stats::default(),
            actions: VecDeque::with_capacity(4),
        }
    }

    /// Applies the client's mail-flow policy ([`Tuning`]); only before the
    /// greeting (while the connect stage waits for its verdict), so what the
    /// EHLO reply advertises never changes within a session. A TLS mode other
    /// than `off` is ignored without a TLS configuration, and an implicit-TLS
    /// session keeps its mode.
    pub fn tune(&mut self, t: Tuning) {
        if !matches!(self.waiting, Waiting::Verdict(Pending::Connect)) {
            return;
        }
        if let Some(b) = t.banner {
            self.banner = Some(b);
        }
        if let Some(tls) = t.tls
            && self.facts.tls.is_none()
            && (tls == TlsMode::Off || self.config.tls_available)
        {
            self.config.tls = tls;
        }
        if let Some(auth) = t.auth {
            self.config.auth = auth;
        }
        if let Some(size) = t.max_message_size {
            self.config.max_message_size = size;
        }
        if let Some(n) = t.max_recipients {
            self.config.max_recipients = n.max(1);
        }
    }

    /// The next thing to do, in order; `None` when the machine waits for input.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// What is known of the session (peer, listener, HELO, TLS, AUTH user).
    pub fn facts(&self) -> &SessionFacts {
        &self.facts
    }

    /// EHLO rather than HELO was used.
    pub fn is_esmtp(&self) -> bool {
        self.esmtp
    }

    /// The transaction in progress (for the `Received:` header and the commit).
    pub fn transaction(&self) -> Option<&Transaction> {
        self.tx.as_ref()
    }

    /// Per-command counters, for the session's disconnect line.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The longest line the driver's reader must accept, for the whole
    /// session: a SASL response may be 12 288 octets (RFC 4954 §4); the machine
    /// itself answers `500` to a command line over `max_command_line` (AUTH
    /// with an initial response excepted).
    pub fn line_limit(&self) -> usize {
        self.config.limits.max_command_line.max(MAX_SASL_LINE)
    }

    /// True while an AUTH exchange waits for a SASL response (the driver must
    /// not log the line).
    pub fn is_sasl_response_next(&self) -> bool {
        self.sasl.is_some()
    }

    /// True once the machine has asked to close.
    pub fn is_closed(&self) -> bool {
        matches!(self.waiting, Waiting::Closed)
    }

    /// The stage a pending [`Action::Check`] asks about, with its facts.
    pub fn stage(&self) -> Option<Stage<'_>> {
        let Waiting::Verdict(pending) = &self.waiting else {
            return None;
        };
        Some(match pending {
            Pending::Connect => Stage::Connect,
            Pending::Helo { name, esmtp } => Stage::Helo {
                name,
                esmtp: *esmtp,
            },
            Pending::Mail(from) => Stage::Mail { from },
            Pending::Rcpt(to) => {
                let tx = self.tx.as_ref()?;
                Stage::Rcpt {
                    from: &tx.mail,
                    to,
                    accepted: &tx.recipients,
                }
            }
            Pending::DataEnd => {
                let tx = self.tx.as_ref()?;
                Stage::DataEnd {
                    from: &tx.mail,
                    recipients: &tx.recipients,
                    octets: tx.octets,
                }
            }
        })
    }

    /// Feeds one event. Events that do not fit the state (a driver bug) are
    /// ignored; the machine never panics.
    pub fn handle(&mut self, event: Event<'_>) {
        if self.is_closed() {
            return;
        }
        match event {
            Event::Timeout => {
                self.stats.timeout = true;
                let reply = replies::timeout(&self.config.hostname);
                self.close_with(reply);
            }
            Event::Shutdown => {
                let reply = replies::shutting_down(&self.config.hostname);
                self.close_with(reply);
            }
            Event::Connected => {
                if matches!(self.waiting, Waiting::Command) && self.stats.is_empty() {
                    self.check(Pending::Connect, StageKind::Connect);
                }
            }
            Event::Line(line) => {
                if matches!(self.waiting, Waiting::Command) {
                    self.line(line);
                }
            }
            Event::LineTooLong => {
                if matches!(self.waiting, Waiting::Command) {
                    self.stats.begin(stats::Verb::Unknown);
                    if self.sasl.take().is_some() {
                        // RFC 4954 §4: a response over 12 288 octets is not a
                        // credential we accept; the exchange is over.
                        self.auth_failed(replies::auth_failed());
                    } else {
                        // Only lines over the reader's limit (12 288) get here;
                        // the reply names both limits.
                        let max = self.config.limits.max_command_line;
                        self.error(replies::line_too_long_for_reader(max));
                    }
                }
            }
            Event::BareLineFeed => {
                self.stats.begin(stats::Verb::Unknown);
                self.stats.bare_lf = true;
                self.close_with(replies::bare_line_feed());
            }
            Event::TlsEstablished(info) => {
                if matches!(self.waiting, Waiting::Tls) {
                    self.waiting = Waiting::Command;
                    self.tls_established(info);
                }
            }
            Event::Verdict(verdict) => {
                if matches!(self.waiting, Waiting::Verdict(_)) {
                    let Waiting::Verdict(pending) =
                        std::mem::replace(&mut self.waiting, Waiting::Command)
                    else {
                        return;
                    };
                    self.verdict(pending, verdict);
                }
            }
            Event::AuthResult(outcome) => {
                if matches!(self.waiting, Waiting::Auth) {
                    self.waiting = Waiting::Command;
                    self.auth_result(outcome);
                }
            }
            Event::BodyEnd(outcome) => match self.waiting {
                Waiting::Data => {
                    self.waiting = Waiting::Command;
                    self.data_end(outcome);
                }
                Waiting::Chunk { .. } => {
                    let Waiting::Chunk {
                        size,
                        last,
                        refusal,
                    } = std::mem::replace(&mut self.waiting, Waiting::Command)
                    else {
                        return;
                    };
                    self.chunk_end(size, last, refusal, outcome);
                }
                _ => {}
            },
            Event::Committed(result) => {
                if matches!(self.waiting, Waiting::Commit) {
                    self.waiting = Waiting::Command;
                    self.committed(result);
                }
            }
        }
    }

    /// Queues a reply.
    fn reply(&mut self, reply: Reply) {
        self.stats.replied(reply.code);
        self.actions.push_back(Action::Reply(reply));
    }

    /// Queues an error reply and counts it; closes after `max_errors`.
    fn error(&mut self, reply: Reply) {
        self.reply(reply);
        self.errors += 1;
        if self.errors >= self.config.max_errors {
            self.close_with(replies::too_many_errors());
        }
    }

    /// Queues `reply`, then `Close`.
    fn close_with(&mut self, reply: Reply) {
        self.reply(reply);
        self.actions.push_back(Action::Close);
        self.waiting = Waiting::Closed;
    }

    /// Stops at a policy stage.
    fn check(&mut self, pending: Pending, kind: StageKind) {
        self.waiting = Waiting::Verdict(pending);
        self.actions.push_back(Action::Check(kind));
    }

    /// Applies a verdict to the command it was asked for.
    fn verdict(&mut self, pending: Pending, verdict: Verdict) {
        match verdict {
            Verdict::Accept => match pending {
                Pending::Connect => {
                    let greeting = replies::greeting(&self.config.hostname, self.banner.as_deref());
                    self.reply(greeting);
                }
                Pending::Helo { name, esmtp } => self.helo_accepted(name, esmtp),
                Pending::Mail(from) => self.mail_accepted(from),
                Pending::Rcpt(to) => self.rcpt_accepted(to),
                Pending::DataEnd => {
                    self.waiting = Waiting::Commit;
                    self.actions.push_back(Action::Commit);
                }
            },
            Verdict::Refuse(reply) => match pending {
                // RFC 5321 §3.1: a 554 greeting, then 503 to all but QUIT; a
                // temporary refusal at connect closes (421, §3.8).
                Pending::Connect if reply.code >= 500 => {
                    self.refused = true;
                    self.reply(reply);
                }
                Pending::Connect => self.close_with(reply),
                Pending::DataEnd => {
                    // RFC 5321 §4.1.1.4: end of data ends the transaction.
                    self.tx = None;
                    self.error(reply);
                }
                Pending::Helo { .. } | Pending::Mail(_) | Pending::Rcpt(_) => self.error(reply),
            },
            Verdict::Disconnect(reply) => {
                if matches!(pending, Pending::DataEnd) {
                    self.tx = None;
                }
                self.close_with(reply);
            }
        }
    }

    /// Drops the transaction (RSET, EHLO, STARTTLS, end of data); a body
    /// arriving by BDAT is dropped with it.
    fn reset_transaction(&mut self) {
        if self.tx.take().is_some_and(|tx| tx.bdat) {
            self.actions.push_back(Action::DiscardBody);
        }
    }
}
