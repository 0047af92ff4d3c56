//! Asking a server whether it would take a recipient, without sending a
//! message: `MAIL FROM:<>`, `RCPT TO:<addr>`, `RSET`. The SMTP call-ahead of
//! a gateway (Cisco ESA "SMTP Call-Ahead", Postfix `reject_unverified_recipient`)
//! is this probe against the internal host.
//!
//! # Security
//! The address is checked like every path we send (no control characters,
//! no brackets: no command injection). The null sender means a server that
//! would later bounce has no one to bounce to. No DATA is ever sent, so a
//! `354` can never be mistaken for a delivery.
//!
//! # Standards
//! RFC 5321 §3.3 (MAIL, RCPT), §4.1.1.5 (RSET), §4.5.5 (the null reverse
//! path), §3.5.3 (RCPT as a verification: a 250 is as good as VRFY gets).

use crate::Reply;
use crate::error::{ClientError, Stage};
use crate::session::{Session, check_path};

/// What a server said to a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientProbe {
    /// The reply to `MAIL FROM:<>`.
    pub mail: Reply,
    /// The reply to `RCPT TO:<addr>`; `None` when MAIL was refused.
    pub rcpt: Option<Reply>,
}

impl Session {
    /// `MAIL FROM:<>`, then (when MAIL got 2xx) `RCPT TO:<address>`, then
    /// `RSET` whatever the answers; 4xx/5xx replies are outcomes, not errors.
    /// Call after [`Session::ehlo`]; the session can probe again or QUIT.
    pub async fn probe_recipient(&mut self, address: &str) -> Result<RecipientProbe, ClientError> {
        check_path(Stage::Rcpt, address)?;
        if address.is_empty() {
            return Err(ClientError::Invalid {
                stage: Stage::Rcpt,
                detail: "empty recipient address".to_owned(),
            });
        }
        let timeout = self.command_timeout();
        self.send_line(Stage::Mail, "MAIL FROM:<>").await?;
        let mail = self.read_reply(Stage::Mail, timeout).await?;
        let rcpt = if mail.is_positive() {
            self.send_line(Stage::Rcpt, &format!("RCPT TO:<{address}>"))
                .await?;
            Some(self.read_reply(Stage::Rcpt, timeout).await?)
        } else {
            None
        };
        self.rset().await?;
        Ok(RecipientProbe { mail, rcpt })
    }
}
