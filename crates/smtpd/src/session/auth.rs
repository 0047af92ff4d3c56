//! The AUTH dialogue (PLAIN and LOGIN) on top of `crate::auth`'s checks.
//!
//! # Security
//! Offered and accepted only after TLS (unless `[danger] allow_insecure_auth`),
//! never during a transaction, once per session. Failures are delayed by one
//! second and counted as errors, which bounds password guessing per connection.
//! Credentials are never logged (the transcript shows `[redacted]`).
//!
//! # Standards
//! RFC 4954 (SMTP AUTH), RFC 4616 (PLAIN), draft-murchison-sasl-login (LOGIN).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use postern_proto::{SaslError, decode_base64_line, decode_plain};

use super::{Flow, Session};
use crate::replies;
use crate::settings::{AuthMode, TlsMode};

/// Where an AUTH exchange stands while waiting for the client's next line.
pub(crate) enum SaslStep {
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
    pub(super) async fn auth_start(&mut self, mechanism: &str, initial: Option<String>) -> Flow {
        if self.ctx.listener.auth == AuthMode::Off {
            return self.error_reply(&replies::auth_not_enabled());
        }
        if !self.can_auth() {
            // RFC 3207 §4 / the issue: AUTH before STARTTLS gets 530 5.7.0.
            return if self.ctx.listener.tls == TlsMode::Off {
                self.error_reply(&replies::auth_not_enabled())
            } else {
                self.error_reply(&replies::starttls_first())
            };
        }
        if self.auth_user.is_some() {
            return self.error_reply(&replies::already_authenticated());
        }
        if self.tx.is_some() {
            return self.error_reply(&replies::auth_in_transaction());
        }
        match (mechanism, initial) {
            ("PLAIN", Some(resp)) => self.auth_plain(&resp).await,
            ("PLAIN", None) => {
                self.sasl = Some(SaslStep::Plain);
                self.reply(&replies::auth_challenge(""));
                Flow::Continue
            }
            ("LOGIN", Some(resp)) => match decode_base64_line(&resp) {
                Ok(user) => {
                    self.sasl = Some(SaslStep::LoginPassword(user));
                    self.reply(&replies::auth_challenge(&b64(PASSWORD_PROMPT)));
                    Flow::Continue
                }
                Err(e) => self.sasl_error(e),
            },
            ("LOGIN", None) => {
                self.sasl = Some(SaslStep::LoginUser);
                self.reply(&replies::auth_challenge(&b64(USERNAME_PROMPT)));
                Flow::Continue
            }
            _ => self.error_reply(&replies::auth_mechanism_unknown()),
        }
    }

    pub(super) async fn auth_continue(&mut self, line: &[u8]) -> Flow {
        let Some(step) = self.sasl.take() else {
            return Flow::Continue;
        };
        let text = String::from_utf8_lossy(line).into_owned();
        match step {
            SaslStep::Plain => {
                if text.trim() == "*" {
                    return self.sasl_error(SaslError::Cancelled);
                }
                self.auth_plain(&text).await
            }
            SaslStep::LoginUser => match decode_base64_line(&text) {
                Ok(user) => {
                    self.sasl = Some(SaslStep::LoginPassword(user));
                    self.reply(&replies::auth_challenge(&b64(PASSWORD_PROMPT)));
                    Flow::Continue
                }
                Err(e) => self.sasl_error(e),
            },
            SaslStep::LoginPassword(user) => match decode_base64_line(&text) {
                Ok(password) => self.auth_check(user, password).await,
                Err(e) => self.sasl_error(e),
            },
        }
    }

    async fn auth_plain(&mut self, b64: &str) -> Flow {
        match decode_plain(b64) {
            Ok(creds) => {
                // RFC 4616 §2: we do not support acting for another identity.
                if creds
                    .authzid
                    .as_deref()
                    .is_some_and(|z| !z.is_empty() && z != creds.authcid)
                {
                    return self.auth_fail(&creds.authcid).await;
                }
                self.auth_check(creds.authcid, creds.password).await
            }
            Err(e) => self.sasl_error(e),
        }
    }

    async fn auth_check(&mut self, user: String, password: String) -> Flow {
        let db = Arc::clone(&self.ctx.shared.users);
        if crate::auth::verify(db, user.clone(), password).await {
            tracing::info!(session = %self.id, peer = %self.peer, user = %user, "authenticated");
            self.event(&format!("authenticated as {user}"));
            self.auth_user = Some(user);
            self.reply(&replies::auth_ok());
            Flow::Continue
        } else {
            self.auth_fail(&user).await
        }
    }

    async fn auth_fail(&mut self, user: &str) -> Flow {
        tracing::warn!(session = %self.id, peer = %self.peer, user = %user, "authentication failed");
        self.event(&format!("authentication failed for {user}"));
        // Slow down guessing; other sessions are unaffected.
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.error_reply(&replies::auth_failed())
    }

    fn sasl_error(&mut self, err: SaslError) -> Flow {
        match err {
            SaslError::Cancelled => self.error_reply(&replies::auth_cancelled()),
            _ => self.error_reply(&replies::auth_bad_encoding()),
        }
    }
}
