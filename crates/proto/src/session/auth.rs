//! The AUTH exchange (PLAIN and LOGIN): prompts, SASL responses, and the
//! failure budget. The password check itself is the driver's
//! ([`super::Action::Authenticate`]): it is slow on purpose and bounded there.
//!
//! # Security
//! Offered and accepted only after TLS (unless `[danger] allow_insecure_auth`),
//! never during a transaction, once per session. When a response is refused
//! for any reason the exchange is over: the next line is a command again (a
//! `NOOP` is never eaten as a credential). `*` cancels (`501 5.0.0`). After
//! `max_auth_failures` failures the session ends with `421 4.7.0`. Credentials
//! are never logged; [`super::Credentials`] redacts its password in `Debug`. The
//! user name is the client's text: whoever logs it must escape it (CWE-117,
//! log injection; the driver logs it with `Debug`, the transcript escapes it).
//!
//! # Standards
//! RFC 4954 (SMTP AUTH: §4 responses and `*`, §6 reply codes), RFC 4616
//! (PLAIN), draft-murchison-sasl-login (LOGIN).

use base64::Engine as _;

use super::{Action, AuthMode, AuthOutcome, Credentials, Session, TlsMode, Waiting, replies};
use crate::sasl::{SaslError, decode_base64_line, decode_plain};

/// Where an AUTH exchange stands while waiting for the client's next line.
#[derive(Debug)]
pub(super) enum SaslStep {
    /// `AUTH PLAIN` without initial response: waiting for the credentials.
    Plain,
    /// `AUTH LOGIN`: waiting for the user name.
    LoginUser,
    /// `AUTH LOGIN`: waiting for the password of this user.
    LoginPassword(String),
}

const USERNAME_PROMPT: &str = "Username:";
const PASSWORD_PROMPT: &str = "Password:";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

impl Session {
    pub(super) fn auth_start(&mut self, mechanism: &str, initial: Option<String>) {
        if self.config.auth == AuthMode::Off {
            return self.error(replies::auth_not_enabled());
        }
        if !self.can_auth() {
            // RFC 3207 §4: AUTH before STARTTLS gets 530 5.7.0.
            let reply = if self.config.tls == TlsMode::Off {
                replies::auth_not_enabled()
            } else {
                replies::starttls_first()
            };
            return self.error(reply);
        }
        if self.facts.auth_user.is_some() {
            return self.error(replies::already_authenticated());
        }
        if self.tx.is_some() {
            return self.error(replies::auth_in_transaction());
        }
        self.pending_mechanism = match mechanism {
            "PLAIN" => Some("PLAIN"),
            "LOGIN" => Some("LOGIN"),
            _ => None,
        };
        match (mechanism, initial) {
            ("PLAIN", Some(resp)) => self.auth_plain(resp.as_bytes()),
            ("PLAIN", None) => self.prompt(SaslStep::Plain, ""),
            ("LOGIN", Some(resp)) => match decode(resp.as_bytes()) {
                Ok(user) => self.prompt(SaslStep::LoginPassword(user), PASSWORD_PROMPT),
                Err(e) => self.sasl_error(e),
            },
            ("LOGIN", None) => self.prompt(SaslStep::LoginUser, USERNAME_PROMPT),
            _ => self.error(replies::auth_mechanism_unknown()),
        }
    }

    fn prompt(&mut self, step: SaslStep, text: &str) {
        self.sasl = Some(step);
        let challenge = if text.is_empty() {
            String::new()
        } else {
            b64(text)
        };
        self.reply(replies::auth_challenge(&challenge));
    }

    /// A line while an exchange waits for a response. Whatever happens, the
    /// step is taken: only a new prompt puts the exchange back in place.
    pub(super) fn sasl_response(&mut self, line: &[u8]) {
        let Some(step) = self.sasl.take() else {
            return;
        };
        // RFC 4954 §4: "*" cancels the exchange at any step.
        if line == b"*" {
            return self.sasl_error(SaslError::Cancelled);
        }
        match step {
            SaslStep::Plain => self.auth_plain(line),
            SaslStep::LoginUser => match decode(line) {
                Ok(user) => self.prompt(SaslStep::LoginPassword(user), PASSWORD_PROMPT),
                Err(e) => self.sasl_error(e),
            },
            SaslStep::LoginPassword(user) => match decode(line) {
                Ok(password) => self.authenticate(user, password),
                Err(e) => self.sasl_error(e),
            },
        }
    }

    fn auth_plain(&mut self, response: &[u8]) {
        let Ok(text) = std::str::from_utf8(response) else {
            return self.sasl_error(SaslError::InvalidBase64);
        };
        match decode_plain(text) {
            Ok(creds) => {
                // RFC 4616 §2: we do not support acting for another identity.
                if creds
                    .authzid
                    .as_deref()
                    .is_some_and(|z| !z.is_empty() && z != creds.authcid)
                {
                    return self.auth_failed(replies::auth_failed());
                }
                self.authenticate(creds.authcid, creds.password);
            }
            Err(e) => self.sasl_error(e),
        }
    }

    fn authenticate(&mut self, user: String, password: String) {
        self.waiting = Waiting::Auth;
        self.pending_user = Some(user.clone());
        self.actions
            .push_back(Action::Authenticate(Credentials { user, password }));
    }

    pub(super) fn auth_result(&mut self, outcome: AuthOutcome) {
        let user = self.pending_user.take();
        let mechanism = self.pending_mechanism.take();
        match outcome {
            AuthOutcome::Success => {
                self.facts.auth_user = user;
                self.facts.auth_mechanism = mechanism;
                self.reply(replies::auth_ok());
            }
            AuthOutcome::Invalid => self.auth_failed(replies::auth_failed()),
            AuthOutcome::Unavailable => self.error(replies::auth_temporary_failure()),
        }
    }

    /// A failed attempt: counted against the AUTH budget and the error budget.
    pub(super) fn auth_failed(&mut self, reply: crate::reply::Reply) {
        self.auth_failures += 1;
        if self.auth_failures >= self.config.max_auth_failures {
            self.reply(reply);
            self.close_with(replies::too_many_auth_failures());
        } else {
            self.error(reply);
        }
    }

    fn sasl_error(&mut self, err: SaslError) {
        match err {
            SaslError::Cancelled => self.error(replies::auth_cancelled()),
            _ => self.auth_failed(replies::auth_bad_encoding()),
        }
    }
}

/// One base64 line of AUTH LOGIN.
fn decode(line: &[u8]) -> Result<String, SaslError> {
    let text = std::str::from_utf8(line).map_err(|_| SaslError::InvalidBase64)?;
    decode_base64_line(text)
}
