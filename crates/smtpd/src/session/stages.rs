//! The policy stages as the server runs them: the machine stops at a stage, and
//! this asks the checks that need the server's state — the spool's health and
//! free space at MAIL (`Spool::admit`) — then the session policy (`postern_policy::Policy`: relay and
//! sender-routing rules), and hands the first refusal back as the verdict.
//!
//! # Security
//! A poisoned spool (a failed fsync, `docs/spool-format.md`) refuses at MAIL
//! with `451 4.3.0`, and a disk under `[spool] min_free` (or a `SIZE=` over
//! what is left above it) with `452 4.3.1`, instead of taking a whole DATA it
//! cannot store (tenet 1: never `250` for what is not durable; RFC 1870 §6). Every refusal is logged with its
//! reason and the session id.
//!
//! # Standards
//! RFC 5321 §3.6.2 (relay refusals), §4.2.5, RFC 3463 X.3.0 / X.7.1.

use postern_proto::session::{Stage, Verdict};
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
        // The spool's health before a transaction starts: poisoned (a failed
        // fsync, 451 4.3.0) or under `[spool] min_free`, or a declared SIZE
        // larger than the free space above the floor (452 4.3.1). Cheap: an
        // atomic and a statvfs cached for a second.
        if let Stage::Mail { from } = stage
            && let Err(e) = self.ctx.spool.admit(from.size)
        {
            tracing::warn!(error = %e, "MAIL refused: the spool cannot take a message now");
            self.event(&format!("MAIL refused: {e}"));
            return Verdict::Refuse(replies::spool_error(&e));
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
