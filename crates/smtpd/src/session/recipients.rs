//! The RCPT stage's recipient validation as the session runs it: asks the
//! configuration's validator (`crate::recipients`) about the recipient the
//! machine waits at, logs a refusal (operator log, transcript, and a session
//! event in the mail log: rule `unknown_recipient` or
//! `recipient_unverifiable`), and hands
//! back the typed verdict — `RecipientVerdict::Unknown` is an invalid
//! recipient, what the DHAP budget counts.
//!
//! # Security
//! Runs only after the mail-flow policy and the relay rules accepted the
//! RCPT: a refused client never learns from us whether a user exists, and
//! never makes us call the internal host.
//!
//! # Standards
//! RFC 5321 §6.1 (no backscatter: refuse at RCPT), §4.5.1 (postmaster).

use std::sync::Arc;

use postern_policy::recipients::RecipientVerdict;
use postern_proto::session::Stage;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Validates the recipient of the RCPT the machine waits at.
    pub(super) async fn rcpt_recipient_check(&mut self) -> RecipientVerdict {
        let Some(Stage::Rcpt { to, .. }) = self.machine.stage() else {
            return RecipientVerdict::NotChecked;
        };
        let to = to.forward_path.clone();
        let shared = Arc::clone(&self.ctx.shared);
        if shared.recipients.is_empty() {
            return RecipientVerdict::NotChecked;
        }
        let checked = shared
            .recipients
            .check(&to, self.ctx.resolver.as_ref())
            .await;
        let detail = checked
            .detail
            .as_deref()
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        match &checked.verdict {
            RecipientVerdict::Unknown(reply) => {
                self.in_tx(|| {
                    tracing::info!(rcpt = %to, source = %checked.source, code = reply.code,
                        detail = checked.detail.as_deref().unwrap_or(""),
                        "rcpt refused: unknown recipient");
                });
                self.event(&format!(
                    "rcpt refused: unknown recipient <{to}> ({}{detail})",
                    checked.source
                ));
                self.log_decision("rcpt", "unknown_recipient", Some(reply));
            }
            RecipientVerdict::Unverifiable(reply) => {
                self.in_tx(|| {
                    tracing::warn!(rcpt = %to, source = %checked.source, code = reply.code,
                        detail = checked.detail.as_deref().unwrap_or(""),
                        "rcpt deferred: recipient cannot be verified now");
                });
                self.event(&format!(
                    "rcpt deferred: cannot verify recipient <{to}> ({}{detail})",
                    checked.source
                ));
                self.log_decision("rcpt", "recipient_unverifiable", Some(reply));
            }
            RecipientVerdict::NotChecked if checked.detail.is_some() => {
                // on_error = "accept" after a failed check, or a call-ahead
                // not made in `postern trace`.
                self.in_tx(|| {
                    tracing::warn!(rcpt = %to, source = %checked.source,
                        detail = checked.detail.as_deref().unwrap_or(""),
                        "rcpt accepted unverified");
                });
                self.event(&format!(
                    "rcpt accepted unverified <{to}> ({}{detail})",
                    checked.source
                ));
            }
            RecipientVerdict::Valid | RecipientVerdict::NotChecked => {}
        }
        checked.verdict
    }
}
