//! ARC chain validation (RFC 8617 §5.2) with `mail-auth`, mapped to an
//! [`ArcVerdict`] naming every sealer, so policy can trust a chain only when
//! a sealer it knows is in it.
//!
//! # Security
//! `pass` says the chain is intact, not that any sealer is honest: whoever
//! relies on an ARC pass (e.g. to forgive a DMARC failure from a mailing
//! list) must check the sealers against a list of trusted ones (RFC 8617
//! §7.2). More than 50 sets is a `fail` (the library's bound).
//!
//! # Standards
//! RFC 8617 §4.4 (results none/pass/fail), §5.2 (validation).

use mail_auth::{ArcOutput, AuthenticatedMessage};

use super::dkim::reason_of;
use super::results::{ArcResult, ArcVerdict};

/// The verdict for a parsed message and `mail-auth`'s output.
pub(crate) fn verdict(message: &AuthenticatedMessage<'_>, output: &ArcOutput<'_>) -> ArcVerdict {
    let sealers: Vec<String> = message
        .as_headers
        .iter()
        .map(|h| h.header.d.to_ascii_lowercase())
        .collect();
    let instances = message
        .as_headers
        .iter()
        .map(|h| h.header.i)
        .max()
        .unwrap_or(0);
    let (result, reason) = match output.result() {
        mail_auth::DkimResult::None if message.ams_headers.is_empty() && sealers.is_empty() => {
            (ArcResult::None, String::new())
        }
        mail_auth::DkimResult::None => (ArcResult::Fail, "incomplete ARC set".into()),
        mail_auth::DkimResult::Pass => (ArcResult::Pass, String::new()),
        mail_auth::DkimResult::Neutral(e)
        | mail_auth::DkimResult::Fail(e)
        | mail_auth::DkimResult::PermError(e) => (ArcResult::Fail, reason_of(e)),
        mail_auth::DkimResult::TempError(e) => {
            (ArcResult::Fail, format!("temporary: {}", reason_of(e)))
        }
    };
    ArcVerdict {
        result,
        instances,
        sealers,
        reason,
    }
}
