//! End of data: verify the message, decide on the verdicts, and produce the
//! header fields to add (`crate::mailauth` explains the steps).
//!
//! # Security
//! Runs before the commit, so a refused message is never stored and never
//! answered `250` (tenet 1). A verification never waits longer than its DNS
//! timeouts; a DNS failure defers (`451`), never rejects.
//!
//! # Standards
//! RFC 8601 §5 (one `Authentication-Results:` by us, at the top), RFC 7489
//! §6.6 (DMARC at the receiver), RFC 7208 §8 (SPF results).

use postern_auth::signing::Origin;
use postern_auth::verify::{
    ArcResult, ArcVerdict, AuthResults, DkimResult, DmarcPolicy, DmarcResult, DmarcVerdict,
    SpfResult, SpfVerdict, SpfVerdicts, VerifyInput,
};
use postern_policy::admission::FlowAction;
use postern_policy::authentication::{
    self as decide, AuthDisposition, AuthFacts, DmarcRequest, SpfStage,
};
use postern_proto::session::{Stage, Verdict};
use postern_proto::{Reply, ReversePath};
use postern_spool::SpoolError;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use super::data::Body;
use crate::mailauth::{facts, field, spf_outcome, summary};
use crate::replies;

/// What mail authentication does for the current transaction.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct AuthPlan {
    /// Verify (SPF, DKIM, ARC, DMARC).
    pub(super) verify: bool,
    /// Sign with our `[[dkim]]` keys.
    pub(super) sign: bool,
}

impl AuthPlan {
    pub(super) fn any(self) -> bool {
        self.verify || self.sign
    }
}

/// The verification's words for the filter rules (`dmarc is fail`): RFC
/// 8601 result names; `None` when not verified.
#[derive(Debug, Clone, Default)]
pub(super) struct Verdicts {
    pub(super) spf: Option<String>,
    pub(super) dkim: Option<String>,
    pub(super) dmarc: Option<String>,
    /// The ARC chain as it arrived, and our Authentication-Results value
    /// (for an ARC seal: RFC 8617 §5.1).
    pub(super) arc: Option<postern_auth::arc_seal::ChainValidation>,
    pub(super) ar_value: Option<String>,
}

/// The outcome for a message about to be committed.
pub(super) enum AuthStep {
    /// Store it, with these header fields prepended and, when held, the reason.
    Store {
        added_headers: String,
        hold: Option<String>,
        verdicts: Verdicts,
    },
    /// Refuse it (`4xx`/`5xx`); nothing is stored.
    Refuse(Reply),
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Our own users' mail is signed and not verified; anyone else's is
    /// verified where the policy asks.
    pub(super) fn auth_plan(&self) -> AuthPlan {
        let ma = &self.ctx.shared.mail_auth;
        if ma.verifier.is_none() && ma.signing.is_empty() {
            return AuthPlan::default();
        }
        let authenticated = self.machine.facts().auth_user.is_some();
        let flow = self.flow();
        let relay_client = flow.action == FlowAction::Relay
            || self
                .ctx
                .shared
                .policy
                .relay()
                .is_relay_client(self.peer.ip());
        let origin = if authenticated {
            Origin::Authenticated
        } else if relay_client {
            Origin::RelayClient
        } else {
            Origin::Other
        };
        let checks = flow.verify;
        AuthPlan {
            verify: ma.verifier.is_some()
                && origin == Origin::Other
                && (checks.spf || checks.dkim || checks.dmarc),
            sign: ma.signing.applies(origin),
        }
    }
}

/// The message for verification and signing.
pub(super) enum ForAuth {
    /// The whole message as stored so far (our `Received:` included when
    /// part of it is on disk).
    Full(Vec<u8>),
    /// Larger than `max_verify_size`: only its header section (DKIM cannot
    /// be verified, DMARC can pass on aligned SPF only).
    HeaderOnly(Vec<u8>),
}

/// Gives a message that was lent whole (never flushed) back to its body.
pub(super) fn restore(body: &mut Body, input: ForAuth) {
    if body.incoming.is_none()
        && body.pending.is_empty()
        && let ForAuth::Full(bytes) = input
    {
        body.pending = bytes;
    }
}

/// The header section of `bytes` with its blank line (one is added when
/// the message has none, so it still parses as a message).
pub(super) fn header_section(bytes: &[u8]) -> Vec<u8> {
    let mut head = postern_auth::canon::split_message(bytes).0.to_vec();
    if !head.ends_with(b"\r\n\r\n") && head != b"\r\n" {
        head.extend_from_slice(b"\r\n");
    }
    head
}

/// The message for authentication (whole up to `limit` octets, else its
/// header section). A free function: nothing of the session is borrowed
/// across the spool hand-off.
pub(super) async fn read_message(
    spool: postern_spool::Spool,
    body: &mut Body,
    limit: u64,
) -> Result<ForAuth, Reply> {
    let whole = body.total <= limit;
    let Some(mut incoming) = body.incoming.take() else {
        // Lent, not copied: the caller puts it back (`restore`).
        return Ok(if whole {
            ForAuth::Full(std::mem::take(&mut body.pending))
        } else {
            ForAuth::HeaderOnly(header_section(&body.pending))
        });
    };
    // The caller checked the size (`total` excludes our Received: field, so
    // the file is a little longer): read all of it, or the header section.
    let want = if whole {
        u64::MAX
    } else {
        (super::data::HEADER_HOLD_MAX + 64 * 1024) as u64
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    spool.execute(move || {
        let read = incoming.read_back(want);
        let _ = tx.send((incoming, read));
    });
    match rx.await {
        Ok((incoming, Ok(mut bytes))) => {
            body.incoming = Some(incoming);
            if whole {
                bytes.extend_from_slice(&body.pending);
                Ok(ForAuth::Full(bytes))
            } else {
                Ok(ForAuth::HeaderOnly(header_section(&bytes)))
            }
        }
        Ok((incoming, Err(e))) => {
            body.incoming = Some(incoming);
            tracing::error!(error = %e, "cannot read the message back for authentication");
            Err(replies::spool_error(&e))
        }
        Err(_) => Err(replies::spool_error(&SpoolError::Poisoned)),
    }
}

/// Takes `size` octets (in KiB, at most the whole budget) of the server's
/// verification memory, waiting at most 30 s for other sessions to finish.
pub(super) async fn reserve(
    ma: &crate::mailauth::MailAuth,
    size: u64,
) -> Result<tokio::sync::OwnedSemaphorePermit, Reply> {
    let kib = u32::try_from(size / 1024 + 1)
        .unwrap_or(u32::MAX)
        .min(ma.memory_kib);
    let wait = std::sync::Arc::clone(&ma.memory).acquire_many_owned(kib);
    if let Ok(Ok(permit)) = tokio::time::timeout(VERIFY_DEADLINE, wait).await {
        Ok(permit)
    } else {
        {
            tracing::warn!(
                size,
                "authentication memory budget ([authentication] verify_memory) exhausted for 30 s"
            );
            Err(Reply::new(
                451,
                Some(postern_proto::EnhancedCode::new(4, 3, 2)),
                "Too many messages being checked now, try again later",
            ))
        }
    }
}

/// The longest a whole verification (or SPF at MAIL FROM) may take: RFC
/// 7208 §4.6.4 asks for an overall limit of at least 20 s; past it the
/// checks count as `temperror` (a `451` or an accept, per policy).
pub(super) const VERIFY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// SPF verdicts for a check that did not finish in time.
fn spf_timed_out(helo: &str, mail_from: &str) -> SpfVerdicts {
    let v = |domain: &str| SpfVerdict {
        result: SpfResult::TempError,
        domain: domain.to_owned(),
        identity: String::new(),
        reason: "SPF evaluation did not finish within 30 s".into(),
    };
    let from_domain = mail_from.rsplit_once('@').map_or(helo, |(_, d)| d);
    SpfVerdicts {
        helo: v(helo),
        mail_from: v(from_domain),
    }
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Our authserv-id: `[authentication] authserv_id` (the configuration
    /// fills in the server's hostname when it is not set), else the
    /// listener's hostname.
    pub(super) fn authserv_id(&self) -> String {
        self.ctx
            .shared
            .settings
            .authentication
            .authserv_id
            .clone()
            .unwrap_or_else(|| self.ctx.listener.hostname.clone())
    }

    /// The greylisting identity of the client (RFC 6647 §4.2.1): the
    /// MAIL FROM domain when SPF passed for it (`spf:<domain>` — a large
    /// sender retries from any host its SPF record names, so its network
    /// would greylist it again and again), else `net` (the client's /24 or
    /// /64). SPF is checked here when verification is on and it was not yet
    /// (once per transaction: end of data reuses the verdict).
    pub(super) async fn greylist_identity(&mut self, net: String) -> String {
        let shared = std::sync::Arc::clone(&self.ctx.shared);
        let Some(verifier) = shared.mail_auth.verifier.as_ref() else {
            return net;
        };
        if !self.flow().verify.spf {
            return net;
        }
        if self.spf_at_mail.is_none() {
            let mail_from = match self.machine.transaction().map(|t| &t.mail.reverse_path) {
                Some(ReversePath::Mailbox(mb)) => mb.to_string(),
                _ => String::new(),
            };
            let helo = self.machine.facts().helo.clone().unwrap_or_default();
            let hostname = self.ctx.listener.hostname.clone();
            let spf = tokio::time::timeout(
                VERIFY_DEADLINE,
                verifier.spf(self.peer.ip(), &helo, &mail_from, &hostname),
            )
            .await
            .unwrap_or_else(|_| spf_timed_out(&helo, &mail_from));
            self.spf_at_mail = Some(spf);
        }
        match &self.spf_at_mail {
            Some(v) if v.mail_from.result == SpfResult::Pass && !v.mail_from.domain.is_empty() => {
                format!("spf:{}", v.mail_from.domain.to_ascii_lowercase())
            }
            _ => net,
        }
    }

    /// SPF at MAIL FROM time (`spf_at = "mail"`): checks now, refuses a
    /// `fail` under `spf_fail = "reject"` (or defers a DNS failure) before
    /// any data is sent, and keeps the verdicts for end of data.
    pub(super) async fn spf_at_mail_check(&mut self) -> Option<Verdict> {
        self.spf_at_mail = None;
        let flow = self.flow().clone();
        if !self.auth_plan().verify
            || !flow.verify.spf
            || flow.auth_actions.spf_at != SpfStage::Mail
        {
            return None;
        }
        let shared = std::sync::Arc::clone(&self.ctx.shared);
        let verifier = shared.mail_auth.verifier.as_ref()?;
        let mail_from = match self.machine.stage() {
            Some(Stage::Mail { from }) => match &from.reverse_path {
                ReversePath::Mailbox(mb) => mb.to_string(),
                ReversePath::Null => String::new(),
            },
            _ => return None,
        };
        let helo = self.machine.facts().helo.clone().unwrap_or_default();
        let hostname = self.ctx.listener.hostname.clone();
        let spf = tokio::time::timeout(
            VERIFY_DEADLINE,
            verifier.spf(self.peer.ip(), &helo, &mail_from, &hostname),
        )
        .await
        .unwrap_or_else(|_| spf_timed_out(&helo, &mail_from));
        let m = &spf.mail_from;
        let facts = AuthFacts {
            spf: Some(spf_outcome(m.result)),
            spf_domain: m.domain.clone(),
            dmarc: None,
            dmarc_request: DmarcRequest::None,
            from_domain: String::new(),
            mail_from_domain: m.domain.to_ascii_lowercase(),
            arc_pass: false,
            arc_last_sealer: None,
            ambiguous_author: false,
        };
        let (disposition, overridden) = decide::decide(
            flow.auth_actions,
            &shared.settings.authentication.exceptions,
            &facts,
        );
        self.event(&format!(
            "SPF at MAIL FROM: {} ({}){}",
            m.result.as_str(),
            m.domain,
            overridden
                .as_ref()
                .map(|o| format!("; accepted: {}", o.describe()))
                .unwrap_or_default()
        ));
        self.spf_at_mail = Some(spf);
        match disposition {
            AuthDisposition::Reject(reply) | AuthDisposition::TempFail(reply) => {
                self.log_decision("mail", "spf", Some(&reply));
                self.in_tx(|| tracing::info!(action = "refused", "SPF at MAIL FROM"));
                Some(Verdict::Refuse(reply))
            }
            _ => None,
        }
    }

    /// Verifies, decides and signs; the header fields to add or the refusal.
    pub(super) async fn authenticate(&mut self, plan: AuthPlan, input: &ForAuth) -> AuthStep {
        let (message, header_only) = match input {
            ForAuth::Full(m) => (Some(m.as_slice()), None),
            ForAuth::HeaderOnly(h) => (None, Some(h.as_slice())),
        };
        let shared = std::sync::Arc::clone(&self.ctx.shared);
        let ma = &shared.mail_auth;
        let settings = &shared.settings.authentication;
        let authserv_id = self.authserv_id();
        let mail_from = match self.machine.transaction().map(|t| &t.mail.reverse_path) {
            Some(ReversePath::Mailbox(mb)) => mb.to_string(),
            _ => String::new(),
        };
        let helo = self.machine.facts().helo.clone().unwrap_or_default();
        let hostname = self.ctx.listener.hostname.clone();
        let ip = self.peer.ip();
        let mut added = String::new();
        let mut hold = None;
        let mut verdicts = Verdicts::default();

        if plan.verify
            && let Some(verifier) = &ma.verifier
        {
            let verified = message.or(header_only).unwrap_or_default();
            let spf = self.spf_at_mail.take();
            let verify_input = VerifyInput {
                message: verified,
                ip,
                helo: &helo,
                mail_from: &mail_from,
                our_hostname: &hostname,
                spf,
            };
            let run = verifier.verify(&verify_input);
            let mut results = if let Ok(r) = tokio::time::timeout(VERIFY_DEADLINE, run).await {
                r
            } else {
                self.in_tx(|| tracing::warn!("authentication did not finish within 30 s"));
                timed_out(spf_timed_out(&helo, &mail_from))
            };
            if header_only.is_some() {
                // The body was not read: no DKIM signature can pass, so DMARC
                // (already computed that way) passes on aligned SPF only.
                for d in &mut results.dkim {
                    d.result = DkimResult::Policy;
                    d.reason = TOO_LARGE.into();
                }
            }
            let line = summary(&results);
            self.event(&format!("authentication: {line}"));
            verdicts = Verdicts {
                spf: Some(results.spf.mail_from.result.as_str().to_owned()),
                // The best of the signatures: one valid signature is a pass.
                dkim: Some(
                    results
                        .dkim
                        .iter()
                        .map(|d| d.result)
                        .min_by_key(|r| usize::from(*r != DkimResult::Pass))
                        .map_or("none", DkimResult::as_str)
                        .to_owned(),
                ),
                dmarc: Some(results.dmarc.result.as_str().to_owned()),
                arc: None,
                ar_value: None,
            };
            let flow = self.flow().clone();
            let mut f = facts(&results, &mail_from, Some(verified));
            if !flow.verify.spf {
                f.spf = None;
            }
            if !flow.verify.dmarc {
                f.dmarc = None;
            }
            let (disposition, overridden) =
                decide::decide(flow.auth_actions, &settings.exceptions, &f);
            self.in_tx(|| {
                tracing::info!(
                    action = disposition.as_str(),
                    overridden = overridden.as_ref().map(decide::OverrideReason::describe),
                    "authentication: {line}"
                );
            });
            if let Some(o) = &overridden {
                self.event(&format!(
                    "authentication failure accepted: {}",
                    o.describe()
                ));
            }
            record_dmarc(
                self.ctx.dmarc_reports.as_ref(),
                &results,
                &disposition,
                overridden.as_ref(),
                ip,
            );
            let ar_value = results.header_value(&authserv_id);
            let ar = format!("Authentication-Results: {ar_value}\r\n");
            verdicts.ar_value = Some(ar_value);
            verdicts.arc = Some(match results.arc.result {
                ArcResult::None => postern_auth::arc_seal::ChainValidation::None,
                ArcResult::Pass => postern_auth::arc_seal::ChainValidation::Pass,
                ArcResult::Fail => postern_auth::arc_seal::ChainValidation::Fail,
            });
            match disposition {
                AuthDisposition::Reject(reply) | AuthDisposition::TempFail(reply) => {
                    self.log_decision("data", "authentication", Some(&reply));
                    return AuthStep::Refuse(reply);
                }
                AuthDisposition::Quarantine(why) => {
                    added.push_str(&field("X-Postern-Quarantine", &why));
                    self.event(&format!("held for review: {why}"));
                    hold = Some(why);
                }
                AuthDisposition::Tag(why) => {
                    added.push_str(&field("X-Postern-Auth-Warning", &why));
                }
                AuthDisposition::Accept => {}
            }
            added.push_str(&ar);
        }
        AuthStep::Store {
            added_headers: added,
            hold,
            verdicts,
        }
    }

    /// DKIM-signs the message as it will be stored (after the content
    /// step's changes) with our `[[dkim]]` keys: the `DKIM-Signature:`
    /// fields to add. Our own user's mail goes out unsigned rather than
    /// refused when signing fails (the log says why).
    pub(super) fn sign(&mut self, message: Option<&[u8]>) -> String {
        let shared = std::sync::Arc::clone(&self.ctx.shared);
        let Some(message) = message else {
            self.event("not DKIM-signed: larger than [authentication] max_verify_size");
            self.in_tx(|| {
                tracing::warn!("not DKIM-signed: larger than [authentication] max_verify_size");
            });
            return String::new();
        };
        // An authenticated user with a sender list signs only for its own
        // domains: on a shared server one organisation's user cannot get
        // another's signature on a forged From: (which would pass DMARC).
        if let Some(user) = self.machine.facts().auth_user.clone()
            && let Some(domain) = postern_auth::signing::from_domain(message)
            && !shared.policy.senders().allows_domain(&user, &domain)
        {
            self.event(&format!(
                "not DKIM-signed: the From: domain {domain} is not one of {user}'s senders"
            ));
            self.in_tx(|| {
                tracing::warn!(%user, from_domain = %domain,
                    "not DKIM-signed: From: domain not in the user's senders");
            });
            return String::new();
        }
        match shared.mail_auth.signing.sign(message) {
            Ok((fields, signed)) => {
                for s in &signed {
                    self.event(&format!("DKIM-signed d={} s={}", s.domain, s.selector));
                }
                self.in_tx(|| {
                    if !signed.is_empty() {
                        tracing::info!(signatures = signed.len(), "DKIM-signed");
                    }
                });
                fields
            }
            Err(e) => {
                self.in_tx(|| tracing::warn!(error = %e, "DKIM signing failed; sent unsigned"));
                String::new()
            }
        }
    }
}

/// Records the DMARC result for aggregate reports (RFC 7489 §7.2): what the
/// domain's policy asked and what we did. Messages deferred (`4xx`) are not
/// recorded: they were not handled and will come back.
fn record_dmarc(
    recorder: Option<&postern_auth::report::ReportRecorder>,
    results: &AuthResults,
    disposition: &AuthDisposition,
    overridden: Option<&decide::OverrideReason>,
    source_ip: std::net::IpAddr,
) {
    use postern_auth::report::{Disposition, Evaluated, PolicyOverride, ReportRecord};
    let Some(recorder) = recorder else {
        return;
    };
    let disposition = match disposition {
        AuthDisposition::Reject(_) => Disposition::Reject,
        AuthDisposition::Quarantine(_) => Disposition::Quarantine,
        AuthDisposition::Accept | AuthDisposition::Tag(_) => Disposition::None,
        AuthDisposition::TempFail(_) => return,
    };
    let override_reason = overridden.map(|o| {
        let kind = match o {
            decide::OverrideReason::LocalPolicy { .. } => PolicyOverride::LocalPolicy,
            decide::OverrideReason::TrustedForwarder { .. } => PolicyOverride::TrustedForwarder,
        };
        (kind, o.describe())
    });
    let evaluated = Evaluated {
        time: time::OffsetDateTime::now_utc().unix_timestamp(),
        source_ip,
        envelope_to: None,
        disposition,
        override_reason,
    };
    if let Some(record) = ReportRecord::from_results(results, &evaluated) {
        recorder.record(record);
    }
}

/// Why a large message's DKIM signatures were not checked.
const TOO_LARGE: &str = "message larger than [authentication] max_verify_size: body not verified";

/// Results for a verification that did not finish in time: temporary
/// errors, which the policy defers (or accepts) as it does DNS failures.
fn timed_out(spf: SpfVerdicts) -> AuthResults {
    let why = "verification did not finish within 30 s";
    AuthResults {
        spf,
        dkim: Vec::new(),
        arc: ArcVerdict {
            result: ArcResult::None,
            instances: 0,
            sealers: Vec::new(),
            reason: why.into(),
        },
        dmarc: DmarcVerdict {
            result: DmarcResult::TempError,
            from_domain: String::new(),
            org_domain: String::new(),
            policy: DmarcPolicy::None,
            pct: 100,
            sampled: false,
            spf_aligned: false,
            dkim_aligned: false,
            rua: Vec::new(),
            reason: why.into(),
            published: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_policy::authentication::{AuthActions, AuthExceptions};

    /// The server-wide budget: a session that cannot get its share within
    /// the deadline gets `451 4.3.2`, and gets it once memory is free.
    #[tokio::test(start_paused = true)]
    async fn the_verification_memory_budget_defers_when_exhausted() {
        let ma = crate::mailauth::MailAuth::with_budget(
            None,
            postern_auth::signing::SigningTable::default(),
            64 * 1024,
        );
        let held = reserve(&ma, 64 * 1024).await.expect("the whole budget");
        let refused = reserve(&ma, 10 * 1024).await.expect_err("budget exhausted");
        assert_eq!(refused.code, 451);
        assert_eq!(
            refused.enhanced.map(|e| e.to_string()),
            Some("4.3.2".into())
        );
        drop(held);
        assert!(reserve(&ma, 10 * 1024).await.is_ok());
        // A message larger than the whole budget takes all of it, not forever.
        assert!(reserve(&ma, 10 << 20).await.is_ok());
    }

    /// A verification that runs past the deadline is a temporary error:
    /// `451`, never a rejection.
    #[test]
    fn a_timed_out_verification_defers() {
        let results = timed_out(spf_timed_out("client.example", "a@b.example"));
        let f = crate::mailauth::facts(&results, "a@b.example", None);
        let (d, _) = decide::decide(AuthActions::default(), &AuthExceptions::default(), &f);
        match d {
            AuthDisposition::TempFail(r) => assert_eq!(r.code, 451),
            other => panic!("{other:?}"),
        }
    }
}
