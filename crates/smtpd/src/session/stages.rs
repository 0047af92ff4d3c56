//! The policy stages as the server runs them: the machine stops at a stage, and
//! this asks the checks that need the server's state — the spool's health at
//! MAIL — then the session policy (`postern_policy::Policy`: relay and
//! sender-routing rules), and hands the first refusal back as the verdict.
//!
//! # Security
//! A poisoned spool (a failed fsync, `docs/spool-format.md`) refuses at MAIL
//! with `451 4.3.0` instead of taking a whole DATA it cannot store (tenet 1:
//! never `250` for what is not durable). Every refusal is logged with its
//! reason and the session id.
//!
//! # Standards
//! RFC 5321 §3.6.2 (relay refusals), §4.2.5, RFC 3463 X.3.0 / X.7.1.

use postern_proto::session::{Stage, Verdict};
use postern_spool::SpoolError;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use crate::replies;

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// The verdict for the stage the machine waits at.
    pub(super) fn check_stage(&self) -> Verdict {
        let Some(stage) = self.machine.stage() else {
            return Verdict::Accept;
        };
        let facts = self.machine.facts();
        if matches!(stage, Stage::Mail { .. }) && self.ctx.spool.is_poisoned() {
            tracing::warn!("MAIL refused: the spool is poisoned by an earlier write/fsync failure");
            self.event("MAIL refused: spool unavailable (poisoned)");
            return Verdict::Refuse(replies::spool_error(&SpoolError::Poisoned));
        }
        let (verdict, refusal) = self.ctx.shared.policy.check(&stage, facts);
        if let Some(refusal) = refusal {
            let rcpt = match stage {
                Stage::Rcpt { to, .. } => to.forward_path.to_string(),
                _ => String::new(),
            };
            self.in_tx(|| {
                tracing::info!(stage = stage.kind().as_str(), reason = refusal.as_str(),
                    rcpt = %rcpt, "refused by policy");
            });
            self.event(&format!(
                "{} refused: {} {rcpt}",
                stage.kind().as_str(),
                refusal.as_str()
            ));
        }
        verdict
    }
}
