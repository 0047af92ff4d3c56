//! The verb handlers: what each command does to the session state and which
//! reply it earns. Order rules (RFC 5321 §4.1.4) live here; policy decisions
//! (relay, sender groups, …) are asked for at the stages.
//!
//! # Security
//! The TLS-required and AUTH-required gates are checked before MAIL; a
//! refused-at-connect session serves only QUIT (RFC 5321 §3.1). The EHLO/HELO
//! argument must be a domain or an address literal.
//!
//! # Standards
//! RFC 5321 §4.1.1 (commands), §4.1.4 (order), §3.5.3 (VRFY/EXPN), §4.1.1.8
//! (HELP), RFC 3207 §4 (530 before STARTTLS), RFC 1870 (SIZE), RFC 6531
//! (SMTPUTF8), RFC 3030 (BDAT).

use super::stats::Verb;
use super::{
    Action, AuthMode, BodyOutcome, Pending, Session, StageKind, TlsInfo, TlsMode, Transaction,
    VrfyMode, Waiting, replies,
};
use crate::address::{is_valid_address_literal, is_valid_domain};
use crate::command::{Body, Command, CommandError, MailFrom, RcptTo, parse_command};
use crate::ehlo::{Capabilities, ehlo_reply};
use crate::reply::Reply;

impl Session {
    /// One complete line in command state.
    pub(super) fn line(&mut self, line: &[u8]) {
        if self.sasl.is_some() {
            // RFC 4954 §4: a SASL response line, up to 12 288 octets.
            self.sasl_response(line);
            return;
        }
        let is_auth = line.len() > 5 && line[..5].eq_ignore_ascii_case(b"AUTH ");
        // RFC 5321 §4.5.3.1.4: the command-line limit (with CRLF); AUTH with an
        // initial response may use the SASL limit (RFC 4954 §4).
        if !is_auth && line.len().saturating_add(2) > self.config.limits.max_command_line {
            self.stats.begin(Verb::Unknown);
            let max = self.config.limits.max_command_line;
            self.error(replies::line_too_long(max));
            return;
        }
        let mut limits = self.config.limits.clone();
        limits.max_command_line = self.line_limit();
        let cmd = match parse_command(line, &limits) {
            Ok(cmd) => cmd,
            Err(err) => {
                self.stats.begin(Verb::Unknown);
                if err.is_cross_protocol() {
                    // A browser or another protocol's client (ALPACA-style
                    // cross-protocol attack): answer once and close.
                    self.close_with(err.to_reply());
                } else {
                    self.error(err.to_reply());
                }
                return;
            }
        };
        self.command(cmd);
    }

    fn command(&mut self, cmd: Command) {
        self.stats.begin(verb_of(&cmd));
        if self.refused {
            // RFC 5321 §3.1: after a 554 greeting only QUIT is served.
            if cmd == Command::Quit {
                self.close_with(replies::bye());
            } else {
                self.error(replies::no_service());
            }
            return;
        }
        match cmd {
            Command::Ehlo(name) => self.hello(name, true),
            Command::Helo(name) => self.hello(name, false),
            Command::Mail(mail) => self.mail(mail),
            Command::Rcpt(rcpt) => self.rcpt(rcpt),
            Command::Data => self.data(),
            Command::Bdat { size, last } => self.bdat(size, last),
            Command::Rset => {
                self.reset_transaction();
                self.reply(replies::reset());
            }
            Command::Noop => self.reply(replies::ok()),
            Command::Quit => self.close_with(replies::bye()),
            Command::Help => {
                let reply = replies::help(
                    self.can_starttls(),
                    self.can_auth(),
                    self.config.vrfy == VrfyMode::Ambiguous,
                );
                self.reply(reply);
            }
            Command::StartTls => self.starttls(),
            Command::Auth {
                mechanism,
                initial_response,
            } => self.auth_start(&mechanism, initial_response),
            // RFC 5321 §3.5.3 / §7.3: never confirm or deny a mailbox.
            Command::Vrfy => match self.config.vrfy {
                VrfyMode::Ambiguous => self.reply(replies::vrfy_ambiguous()),
                VrfyMode::Disabled => self.error(replies::vrfy_disabled()),
            },
            Command::Expn => self.error(replies::expn_disabled()),
        }
    }

    /// TLS can be started on this session.
    pub(super) fn can_starttls(&self) -> bool {
        self.config.tls != TlsMode::Off && self.config.tls_available && self.facts.tls.is_none()
    }

    /// AUTH may be offered now: enabled on the listener and (TLS active or the
    /// operator explicitly allowed AUTH in clear).
    pub(super) fn can_auth(&self) -> bool {
        self.config.auth != AuthMode::Off && (self.facts.tls.is_some() || self.config.auth_in_clear)
    }

    fn hello(&mut self, name: String, esmtp: bool) {
        // RFC 5321 §4.1.1.1: `Domain / address-literal`; the domain limit of
        // §4.5.3.1.2. A bad argument is a syntax error in the parameter.
        let valid = is_valid_helo_name(&name, self.config.limits.max_domain)
            || is_valid_address_literal(&name);
        if !valid {
            self.error(replies::bad_helo());
            return;
        }
        self.check(Pending::Helo { name, esmtp }, StageKind::Helo);
    }

    pub(super) fn helo_accepted(&mut self, name: String, esmtp: bool) {
        // RFC 5321 §4.1.4: EHLO/HELO resets any transaction in progress.
        self.reset_transaction();
        self.esmtp = esmtp;
        self.facts.helo = Some(name);
        let hostname = self.config.hostname.clone();
        if !esmtp {
            self.reply(replies::helo(&hostname));
            return;
        }
        let caps = Capabilities {
            size: Some(self.config.max_message_size),
            pipelining: true,
            eightbitmime: true,
            enhanced_status_codes: true,
            smtputf8: true,
            dsn: true,
            chunking: true,
            starttls: self.can_starttls(),
            auth: if self.can_auth() {
                vec!["PLAIN", "LOGIN"]
            } else {
                Vec::new()
            },
        };
        let greeting = format!("Hello [{}]", self.facts.peer);
        self.reply(ehlo_reply(&hostname, &greeting, &caps));
    }

    fn mail(&mut self, mail: MailFrom) {
        if self.facts.helo.is_none() {
            return self.error(replies::helo_first());
        }
        // RFC 3207 §4: a TLS-required listener refuses MAIL before STARTTLS.
        if self.config.tls == TlsMode::Required && self.facts.tls.is_none() {
            return self.error(replies::starttls_first());
        }
        if self.config.auth == AuthMode::Required && self.facts.auth_user.is_none() {
            return self.error(replies::auth_required());
        }
        if self.tx.is_some() {
            return self.error(replies::nested_mail());
        }
        let max = self.config.max_message_size;
        // RFC 1870 §6: refuse early when the declared size is already too big.
        if mail.size.is_some_and(|s| s > max) {
            return self.error(replies::message_too_big(max));
        }
        if matches!(mail.body, Some(Body::BinaryMime)) {
            return self.error(replies::binarymime_unsupported());
        }
        self.check(Pending::Mail(mail), StageKind::Mail);
    }

    pub(super) fn mail_accepted(&mut self, mail: MailFrom) {
        self.tx = Some(Transaction {
            mail,
            recipients: Vec::new(),
            bdat: false,
            octets: 0,
        });
        self.reply(replies::sender_ok());
    }

    fn rcpt(&mut self, rcpt: RcptTo) {
        let Some(tx) = &self.tx else {
            return self.error(replies::need_mail());
        };
        if tx.bdat {
            return self.error(replies::rcpt_after_bdat());
        }
        if tx.recipients.len() >= self.config.max_recipients {
            return self.error(replies::too_many_recipients());
        }
        // RFC 6531 §3.4: a UTF-8 recipient needs SMTPUTF8 on the MAIL command.
        if !tx.mail.smtputf8 && !rcpt.forward_path.is_ascii() {
            return self.error(CommandError::Utf8WithoutSmtputf8.to_reply());
        }
        self.check(Pending::Rcpt(rcpt), StageKind::Rcpt);
    }

    pub(super) fn rcpt_accepted(&mut self, rcpt: RcptTo) {
        if let Some(tx) = &mut self.tx {
            tx.recipients.push(rcpt);
        }
        self.reply(replies::recipient_ok());
    }

    fn data(&mut self) {
        let Some(tx) = &self.tx else {
            return self.error(replies::need_mail());
        };
        if tx.bdat {
            return self.error(replies::data_after_bdat());
        }
        if tx.recipients.is_empty() {
            return self.error(replies::no_recipients());
        }
        self.reply(replies::start_data());
        self.waiting = Waiting::Data;
        self.actions.push_back(Action::ReceiveData);
    }

    fn bdat(&mut self, size: u64, last: bool) {
        // RFC 3030 §2: the chunk is read even when the command is refused.
        let refusal = match &self.tx {
            None => Some(replies::need_mail()),
            Some(tx) if tx.recipients.is_empty() => Some(replies::no_recipients()),
            Some(_) => None,
        };
        let first = self.tx.as_ref().is_some_and(|tx| !tx.bdat);
        if refusal.is_none()
            && let Some(tx) = &mut self.tx
        {
            tx.bdat = true;
        }
        self.waiting = Waiting::Chunk {
            size,
            last,
            refusal,
        };
        let store = matches!(self.waiting, Waiting::Chunk { refusal: None, .. });
        self.actions.push_back(Action::ReceiveChunk {
            size,
            last,
            store,
            first: store && first,
        });
    }

    /// The end of a DATA body.
    pub(super) fn data_end(&mut self, outcome: BodyOutcome) {
        match outcome {
            BodyOutcome::Stored { octets } => {
                if let Some(tx) = &mut self.tx {
                    tx.octets = octets;
                }
                self.check(Pending::DataEnd, StageKind::DataEnd);
            }
            other => {
                // RFC 5321 §4.1.1.4: end of data ends the transaction.
                self.tx = None;
                self.body_refused(other);
            }
        }
    }

    /// The end of a BDAT chunk.
    pub(super) fn chunk_end(
        &mut self,
        size: u64,
        last: bool,
        refusal: Option<Reply>,
        outcome: BodyOutcome,
    ) {
        if let Some(reply) = refusal {
            return self.error(reply);
        }
        match outcome {
            BodyOutcome::Stored { octets } if last => {
                if let Some(tx) = &mut self.tx {
                    tx.octets = octets;
                }
                self.check(Pending::DataEnd, StageKind::DataEnd);
            }
            BodyOutcome::Stored { octets } => {
                if let Some(tx) = &mut self.tx {
                    tx.octets = octets;
                }
                self.reply(replies::bdat_chunk(size));
            }
            other => {
                // The transaction is over; the driver has dropped the body.
                self.tx = None;
                self.body_refused(other);
            }
        }
    }

    fn body_refused(&mut self, outcome: BodyOutcome) {
        let reply = match outcome {
            BodyOutcome::Malformed(err) => err.to_reply(),
            BodyOutcome::TooBig => replies::message_too_big(self.config.max_message_size),
            BodyOutcome::StorageFailed(reply) => reply,
            // A stored body never reaches here; a discarded one has its refusal.
            BodyOutcome::Stored { .. } | BodyOutcome::Discarded => replies::local_error(),
        };
        self.error(reply);
    }

    /// The spool's answer.
    pub(super) fn committed(&mut self, result: Result<String, Reply>) {
        // RFC 5321 §4.1.1.4: end of data ends the transaction, whatever the outcome.
        self.tx = None;
        match result {
            Ok(queue_id) => {
                self.stats.messages = self.stats.messages.saturating_add(1);
                self.reply(replies::queued(&queue_id));
            }
            Err(reply) => self.error(reply),
        }
    }

    fn starttls(&mut self) {
        if self.facts.tls.is_some() {
            return self.error(replies::already_tls());
        }
        if !self.can_starttls() {
            return self.error(replies::starttls_unavailable());
        }
        self.reply(replies::starttls_ready());
        self.waiting = Waiting::Tls;
        self.actions.push_back(Action::StartTls);
    }

    /// RFC 3207 §4.2: discard all knowledge obtained from the client before TLS.
    pub(super) fn tls_established(&mut self, info: TlsInfo) {
        self.facts.tls = Some(info);
        self.facts.helo = None;
        self.facts.auth_user = None;
        self.facts.auth_mechanism = None;
        self.esmtp = false;
        self.sasl = None;
        self.reset_transaction();
    }
}

/// An EHLO/HELO domain: RFC 5321 `Domain` syntax (U-labels allowed, RFC 6531),
/// within `max_domain` octets, with two leniencies real clients need and that
/// cannot hide anything: one trailing dot (a fully qualified name), and `_` in
/// a label (Windows host names such as `DESKTOP_4F2A`).
fn is_valid_helo_name(name: &str, max_domain: usize) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > max_domain {
        return false;
    }
    let without_underscores = name.replace('_', "u");
    is_valid_domain(&without_underscores, true)
}

fn verb_of(cmd: &Command) -> Verb {
    match cmd {
        Command::Ehlo(_) => Verb::Ehlo,
        Command::Helo(_) => Verb::Helo,
        Command::Mail(_) => Verb::Mail,
        Command::Rcpt(_) => Verb::Rcpt,
        Command::Data => Verb::Data,
        Command::Bdat { .. } => Verb::Bdat,
        Command::Rset => Verb::Rset,
        Command::Noop => Verb::Noop,
        Command::Quit => Verb::Quit,
        Command::Help => Verb::Help,
        Command::StartTls => Verb::StartTls,
        Command::Auth { .. } => Verb::Auth,
        Command::Vrfy => Verb::Vrfy,
        Command::Expn => Verb::Expn,
    }
}
