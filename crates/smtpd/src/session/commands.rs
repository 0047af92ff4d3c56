//! The verb handlers: what each command does to the session state and which
//! reply it earns. Order rules (RFC 5321 §4.1.4) live here.
//!
//! # Security
//! The relay decision (`postern-policy`) is taken per RCPT; the TLS-required and
//! AUTH-required gates are checked before MAIL and AUTH.
//!
//! # Standards
//! RFC 5321 §4.1.1 (commands), §4.1.4 (order), §3.5.3 (VRFY/EXPN), RFC 3207
//! §4 (530 before STARTTLS), RFC 1870 (SIZE), RFC 6531 (SMTPUTF8), RFC 3461 (DSN).

use postern_policy::RcptDecision;
use postern_proto::{
    Body, Capabilities, Command, CommandError, ForwardPath, MailFrom, RcptTo, parse_command,
};
use postern_spool::EnvelopeRecipient;

use super::{Flow, Session, Transaction};
use crate::replies;
use crate::settings::{AuthMode, TlsMode, VrfyMode};
use crate::transcript::Direction;

impl Session {
    /// Handles one complete line from the client.
    pub(super) async fn handle_line(&mut self, line: &[u8]) -> Flow {
        if self.sasl.is_some() {
            // RFC 4954 §4: a SASL response line, never logged.
            self.record(Direction::In, "[AUTH response redacted]");
            return self.auth_continue(line).await;
        }
        let limits = self.ctx.listener.limits.proto.clone();
        let parsed = parse_command(line, &limits);
        self.record(Direction::In, &redact_auth(line));
        let cmd = match parsed {
            Ok(cmd) => cmd,
            Err(err) => {
                let flow = self.error_reply(&err.to_reply());
                if err.is_cross_protocol() {
                    // A browser or another protocol's client (ALPACA-style cross-protocol
                    // attack): answer once and close, never interpret further lines.
                    tracing::info!(session = %self.id, peer = %self.peer, "cross-protocol command, closing");
                    return Flow::Close;
                }
                return flow;
            }
        };
        match cmd {
            Command::Ehlo(domain) => self.ehlo(domain, true),
            Command::Helo(domain) => self.ehlo(domain, false),
            Command::Mail(mail) => self.mail(mail),
            Command::Rcpt(rcpt) => self.rcpt(rcpt),
            Command::Data => self.data().await,
            Command::Bdat { size, last } => self.bdat(size, last).await,
            Command::Rset => {
                self.reset_transaction();
                self.reply(&replies::reset());
                Flow::Continue
            }
            Command::Noop => {
                self.reply(&replies::ok());
                Flow::Continue
            }
            Command::Quit => {
                self.reply(&replies::bye());
                Flow::Close
            }
            Command::Help => {
                self.reply(&replies::help());
                Flow::Continue
            }
            Command::StartTls => self.starttls().await,
            Command::Auth {
                mechanism,
                initial_response,
            } => self.auth_start(&mechanism, initial_response).await,
            // RFC 5321 §3.5.3 / §7.3: never confirm or deny a mailbox.
            Command::Vrfy => match self.ctx.shared.settings.vrfy {
                VrfyMode::Ambiguous => {
                    self.reply(&replies::vrfy_ambiguous());
                    Flow::Continue
                }
                VrfyMode::Disabled => self.error_reply(&replies::vrfy_disabled()),
            },
            Command::Expn => self.error_reply(&replies::expn_disabled()),
        }
    }

    /// TLS can be started on this session.
    pub(super) fn can_starttls(&self) -> bool {
        self.ctx.listener.tls != TlsMode::Off
            && self.ctx.shared.tls.is_some()
            && !self.conn.is_tls()
    }

    /// AUTH may be offered now: enabled on the listener and (TLS active or the
    /// operator explicitly allowed AUTH in clear).
    pub(super) fn can_auth(&self) -> bool {
        self.ctx.listener.auth != AuthMode::Off
            && (self.conn.is_tls() || self.ctx.shared.settings.allow_insecure_auth)
    }

    fn ehlo(&mut self, domain: String, esmtp: bool) -> Flow {
        // RFC 5321 §4.1.4: EHLO/HELO resets any transaction in progress.
        self.reset_transaction();
        self.esmtp = esmtp;
        self.helo = Some(domain);
        let hostname = self.ctx.listener.hostname.clone();
        if !esmtp {
            self.reply(&replies::helo(&hostname));
            return Flow::Continue;
        }
        let caps = Capabilities {
            size: Some(self.ctx.listener.limits.max_message_size),
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
        let greeting = format!("Hello [{}]", self.peer.ip());
        self.reply(&postern_proto::ehlo_reply(&hostname, &greeting, &caps));
        Flow::Continue
    }

    fn mail(&mut self, mail: MailFrom) -> Flow {
        if self.helo.is_none() {
            return self.error_reply(&replies::helo_first());
        }
        // RFC 3207 §4: a TLS-required listener refuses MAIL before STARTTLS.
        if self.ctx.listener.tls == TlsMode::Required && !self.conn.is_tls() {
            return self.error_reply(&replies::starttls_first());
        }
        if self.ctx.listener.auth == AuthMode::Required && self.auth_user.is_none() {
            return self.error_reply(&replies::auth_required());
        }
        if self.tx.is_some() {
            return self.error_reply(&replies::nested_mail());
        }
        let max = self.ctx.listener.limits.max_message_size;
        // RFC 1870 §6: refuse early when the declared size is already too big.
        if mail.size.is_some_and(|s| s > max) {
            return self.error_reply(&replies::message_too_big(max));
        }
        if matches!(mail.body, Some(Body::BinaryMime)) {
            return self.error_reply(&replies::binarymime_unsupported());
        }
        self.tx = Some(Transaction {
            mail,
            recipients: Vec::new(),
            bdat: None,
        });
        self.reply(&replies::sender_ok());
        Flow::Continue
    }

    fn rcpt(&mut self, rcpt: RcptTo) -> Flow {
        let max = self.ctx.listener.limits.max_recipients;
        let Some(tx) = &self.tx else {
            return self.error_reply(&replies::need_mail());
        };
        if tx.recipients.len() >= max {
            return self.error_reply(&replies::too_many_recipients());
        }
        // RFC 6531 §3.4: a UTF-8 recipient needs SMTPUTF8 on the MAIL command.
        if !tx.mail.smtputf8 && !rcpt.forward_path.is_ascii() {
            return self.error_reply(&CommandError::Utf8WithoutSmtputf8.to_reply());
        }
        let authenticated = self.auth_user.is_some();
        let address = match &rcpt.forward_path {
            // RFC 5321 §4.5.1: postmaster must always be accepted.
            ForwardPath::Postmaster => "postmaster".to_owned(),
            ForwardPath::Mailbox(mb) => {
                let decision =
                    self.ctx
                        .shared
                        .relay
                        .decide(&mb.domain, self.peer.ip(), authenticated);
                if decision == RcptDecision::RejectRelay {
                    tracing::info!(session = %self.id, peer = %self.peer, rcpt = %mb, "relay denied");
                    return self.error_reply(&replies::relay_denied());
                }
                mb.to_string()
            }
        };
        let recipient = EnvelopeRecipient {
            address,
            notify: rcpt.notify.map(|n| n.to_string()),
            orcpt: rcpt.orcpt,
        };
        if let Some(tx) = &mut self.tx {
            tx.recipients.push(recipient);
        }
        self.reply(&replies::recipient_ok());
        Flow::Continue
    }
}

/// The transcript text of a command line: anything after the mechanism of an
/// AUTH line is redacted, parsed or not (it carries the password in base64,
/// RFC 4616).
fn redact_auth(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut words = text.splitn(3, ' ');
    let verb = words.next().unwrap_or_default();
    if verb.eq_ignore_ascii_case("AUTH") {
        let mech = words.next().unwrap_or_default();
        return if words.next().is_some() {
            format!("{verb} {mech} [redacted]")
        } else {
            format!("{verb} {mech}")
        };
    }
    text.into_owned()
}

#[cfg(test)]
mod tests {
    use super::redact_auth;

    #[test]
    fn auth_payloads_never_logged() {
        assert_eq!(
            redact_auth(b"AUTH PLAIN AGFsaWNlAHNlY3JldA=="),
            "AUTH PLAIN [redacted]"
        );
        assert_eq!(
            redact_auth(b"auth login YWxpY2U= junk"),
            "auth login [redacted]"
        );
        assert_eq!(redact_auth(b"AUTH LOGIN"), "AUTH LOGIN");
        assert_eq!(redact_auth(b"MAIL FROM:<a@b>"), "MAIL FROM:<a@b>");
    }
}
