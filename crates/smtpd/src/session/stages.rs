//! The policy stages as the server runs them: the machine stops at a stage, and
//! this asks, in order, the sender groups and the client's mail-flow policy
//! (`postern_policy::admission::decide`: behaviour, PTR requirement and
//! connection limits at connect, messages per session and sender rate at
//! MAIL, delayed rejection, DHAP and recipient rate at RCPT, with the
//! counters read here), the spool's health and free space at MAIL
//! (`Spool::admit`), then the session policy (`postern_policy::Policy`: relay
//! and sender-routing rules), and hands the first refusal back as the verdict.
//!
//! # Security
//! A poisoned spool (a failed fsync, `docs/spool-format.md`) refuses at MAIL
//! with `451 4.3.0`, and a disk under `[spool] min_free` (or a `SIZE=` over
//! what is left above it) with `452 4.3.1`, instead of taking a whole DATA it
//! cannot store (tenet 1: never `250` for what is not durable; RFC 1870 §6).
//! The client is classified again when TLS starts or AUTH succeeds (a group
//! may match `tls` or `authenticated`), never on what the client merely
//! claims. A counter that cannot be read never refuses (fail open). Every
//! refusal is logged with the rule, the group and the policy, and the session
//! id.
//!
//! # Standards
//! RFC 5321 §3.1 (refusal at connect), §3.6.2 (relay refusals), §4.2.5,
//! RFC 3463 X.3.0 / X.7.1.

use postern_policy::admission::{
    Classification, ClientFacts, ConnectCounts, Decision, FlowAction, MailFlowPolicy, RcptCounts,
    StepOutcome, at_connect, at_mail, at_rcpt,
};
use postern_proto::ReversePath;
use postern_proto::session::{Stage, StageKind, Tuning, Verdict};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use crate::counting::{self, Window};
use crate::replies;

/// The session's admission state: the client as sender groups see it and the
/// group / policy chosen for it.
pub(super) struct Gate {
    pub(super) facts: ClientFacts,
    pub(super) class: Option<Classification>,
    /// (TLS, authenticated) when `class` was chosen.
    basis: (bool, bool),
    /// Messages committed in this session.
    pub(super) messages: u64,
}

impl Gate {
    pub(super) fn new(facts: ClientFacts) -> Self {
        Self {
            facts,
            class: None,
            basis: (false, false),
            messages: 0,
        }
    }
}

/// What a stage check tells the driver.
pub(super) enum Checked {
    /// Feed this verdict to the machine.
    Verdict(Verdict),
    /// Close the connection without a word (`tcp-refuse`).
    Drop,
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// The client's mail-flow policy (the built-in default before the
    /// connect stage or without sender groups).
    pub(super) fn flow(&self) -> &MailFlowPolicy {
        let admission = &self.ctx.shared.settings.admission;
        match &self.gate.class {
            Some(c) => admission.policy(c),
            None => admission.default_policy(),
        }
    }

    /// Chooses (again) the client's sender group; logs the choice.
    async fn classify(&mut self) {
        let facts = self.machine.facts();
        self.gate.facts.tls = facts.tls.is_some();
        self.gate.facts.authenticated = facts.auth_user.is_some();
        self.gate.basis = (self.gate.facts.tls, self.gate.facts.authenticated);
        let shared = std::sync::Arc::clone(&self.ctx.shared);
        let admission = &shared.settings.admission;
        let class =
            crate::gateway::classify(admission, &mut self.gate.facts, self.ctx.resolver.as_ref())
                .await;
        let policy = admission.policy(&class);
        let by = class.steps.last().and_then(|s| match &s.outcome {
            StepOutcome::Matched { by } => Some(by.clone()),
            _ => None,
        });
        tracing::info!(
            group = class.group.as_deref().unwrap_or("(none)"),
            policy = %policy.name,
            matched_by = by.as_deref().unwrap_or(""),
            score = ?class.score,
            "sender group"
        );
        self.event(&format!(
            "sender group {} ({}), policy {}{}",
            class.group.as_deref().unwrap_or("(none)"),
            by.as_deref().map_or_else(
                || "no group matched".to_owned(),
                |b| format!("matched by {b}")
            ),
            policy.name,
            class
                .score
                .map(|s| format!(", dnsbl score {s}"))
                .unwrap_or_default(),
        ));
        self.gate.class = Some(class);
    }

    /// Turns a decision into the verdict, logging a refusal with its rule.
    fn decided(&self, stage: StageKind, decision: Decision) -> Checked {
        let Some(rule) = decision.rule() else {
            return Checked::Verdict(Verdict::Accept);
        };
        let group = self
            .gate
            .class
            .as_ref()
            .and_then(|c| c.group.as_deref())
            .unwrap_or("(none)");
        let policy = &self.flow().name;
        let code = decision.reply().map_or(0, |r| r.code);
        self.log_decision(stage.as_str(), rule, decision.reply());
        self.in_tx(|| {
            tracing::info!(stage = stage.as_str(), rule, group, policy = %policy, code,
                "refused by mail-flow policy");
        });
        self.event(&format!(
            "{} refused by policy {policy} (group {group}, {rule}){}",
            stage.as_str(),
            decision
                .reply()
                .map(|r| format!(": {}", r.code))
                .unwrap_or_default()
        ));
        match decision {
            Decision::Accept => Checked::Verdict(Verdict::Accept),
            Decision::Refuse { reply, .. } => Checked::Verdict(Verdict::Refuse(reply)),
            Decision::Disconnect { reply, .. } => Checked::Verdict(Verdict::Disconnect(reply)),
            Decision::Drop { .. } => Checked::Drop,
        }
    }

    /// The verdict for the stage the machine waits at.
    pub(super) async fn check_stage(&mut self) -> Checked {
        let Some(kind) = self.machine.stage().map(|s| s.kind()) else {
            return Checked::Verdict(Verdict::Accept);
        };
        let gateway = !self.ctx.shared.settings.admission.is_empty();
        if kind == StageKind::Connect {
            if gateway {
                let checked = self.connect_stage().await;
                if !matches!(checked, Checked::Verdict(Verdict::Accept)) {
                    return checked;
                }
            }
            let banned = self.network_ban().await;
            if let Some(v) = banned {
                return Checked::Verdict(v);
            }
            return Checked::Verdict(self.milter_stage(kind).await.unwrap_or(Verdict::Accept));
        }
        if gateway {
            // A session that started TLS or authenticated may belong to
            // another group now.
            let f = self.machine.facts();
            if self.gate.class.is_some()
                && self.gate.basis != (f.tls.is_some(), f.auth_user.is_some())
            {
                self.classify().await;
            }
            let decision = match kind {
                StageKind::Mail => self.mail_decision().await,
                StageKind::Rcpt => self.rcpt_decision().await,
                _ => Decision::Accept,
            };
            if decision != Decision::Accept {
                return self.decided(kind, decision);
            }
        }
        let verdict = self.session_policy();
        if kind == StageKind::Mail && verdict == Verdict::Accept {
            // SPF at MAIL FROM (`spf_at = "mail"`): a refusal before DATA.
            if let Some(refused) = self.spf_at_mail_check().await {
                return Checked::Verdict(refused);
            }
        }
        if kind == StageKind::Rcpt && verdict == Verdict::Accept {
            // Recipient validation (`recipients.rs`), once policy and relay
            // rules took the RCPT. `RecipientVerdict::Unknown` is an invalid
            // recipient: the one DHAP counts.
            let checked = self.rcpt_recipient_check().await;
            // DHAP: an unknown recipient spends the client's budget of
            // invalid recipients (`max_invalid_recipients_per_hour`).
            if matches!(
                checked,
                postern_policy::recipients::RecipientVerdict::Unknown(_)
            ) && gateway
                && !self.exempt()
                && self.flow().max_invalid_recipients_per_hour.is_some()
            {
                let ip = self.gate.facts.ip;
                self.ctx
                    .counters
                    .hit(&counting::key_ip("invalid", ip), Window::HOUR)
                    .await;
            }
            if let Some(reply) = checked.refusal() {
                return Checked::Verdict(Verdict::Refuse(reply.clone()));
            }
        }
        if verdict == Verdict::Accept
            && let Some(refused) = self.milter_stage(kind).await
        {
            return Checked::Verdict(refused);
        }
        if kind == StageKind::Rcpt && verdict == Verdict::Accept && gateway {
            if let Some(deferred) = self.greylist().await {
                return Checked::Verdict(deferred);
            }
            self.count_recipient().await;
        }
        Checked::Verdict(verdict)
    }

    /// Connect: the sender group, then the policy's behaviour and limits,
    /// then the session's tuning.
    async fn connect_stage(&mut self) -> Checked {
        self.classify().await;
        let ip = self.gate.facts.ip;
        let policy = self.flow().clone();
        if policy.require_ptr && !self.gate.facts.ptr.is_asked() {
            self.gate.facts.ptr = crate::gateway::ptr_of(self.ctx.resolver.as_ref(), ip).await;
        }
        let connections_last_minute = match policy.max_connections_per_minute_per_ip {
            Some(_) => {
                self.ctx
                    .counters
                    .hit(&counting::key_ip("conn", ip), Window::MINUTE)
                    .await
            }
            None => None,
        };
        let counts = ConnectCounts {
            sessions_from_ip: Some(self.ctx.ip_sessions as u64),
            connections_last_minute,
        };
        let decision = at_connect(&policy, ip, &self.gate.facts.ptr, counts);
        if decision != Decision::Accept {
            return self.decided(StageKind::Connect, decision);
        }
        self.machine.tune(Tuning {
            banner: policy.banner.clone(),
            tls: policy.tls,
            auth: policy.auth,
            max_message_size: policy.max_message_size,
            max_recipients: policy.max_recipients_per_message,
        });
        Checked::Verdict(Verdict::Accept)
    }

    /// MAIL: messages per session and the sender's hourly rate.
    async fn mail_decision(&mut self) -> Decision {
        let Some(Stage::Mail { from }) = self.machine.stage() else {
            return Decision::Accept;
        };
        let policy = self.flow();
        let sender = match &from.reverse_path {
            ReversePath::Null => None,
            ReversePath::Mailbox(m) => Some(m.to_string()),
        };
        let rate = match (&sender, policy.max_messages_per_hour_per_sender) {
            (Some(s), Some(_)) if !policy.sender_exempt(s) => {
                self.ctx
                    .counters
                    .peek(&counting::key_sender(s), Window::HOUR)
                    .await
            }
            _ => None,
        };
        at_mail(policy, self.gate.messages, sender.as_deref(), rate)
    }

    /// RCPT: delayed rejection, DHAP and the recipient rate.
    async fn rcpt_decision(&mut self) -> Decision {
        let policy = self.flow();
        let ip = self.gate.facts.ip;
        let exempt = self.exempt();
        let mut counts = RcptCounts::default();
        if !exempt {
            if policy.max_recipients_per_hour_per_ip.is_some() {
                counts.recipients = self
                    .ctx
                    .counters
                    .peek(&counting::key_ip("rcpt", ip), Window::HOUR)
                    .await;
            }
            if policy.max_invalid_recipients_per_hour.is_some() {
                counts.invalid = self
                    .ctx
                    .counters
                    .peek(&counting::key_ip("invalid", ip), Window::HOUR)
                    .await;
            }
        }
        at_rcpt(policy, ip, counts, exempt)
    }

    /// The client is trusted (relay network, authenticated, or a `relay`
    /// policy): DHAP and rates do not apply to it.
    pub(super) fn exempt(&self) -> bool {
        self.flow().action == FlowAction::Relay
            || self.ctx.shared.policy.is_trusted(self.machine.facts())
    }

    /// Counts an accepted recipient for `max_recipients_per_hour_per_ip`.
    async fn count_recipient(&mut self) {
        if self.flow().max_recipients_per_hour_per_ip.is_some() && !self.exempt() {
            let ip = self.gate.facts.ip;
            self.ctx
                .counters
                .hit(&counting::key_ip("rcpt", ip), Window::HOUR)
                .await;
        }
    }

    /// Counts a committed message for `max_messages_per_hour_per_sender`
    /// (`sender` empty: the null sender, never counted).
    pub(super) async fn count_message(&mut self, sender: &str) {
        let policy = self.flow();
        if policy.max_messages_per_hour_per_sender.is_some()
            && !sender.is_empty()
            && !policy.sender_exempt(sender)
        {
            self.ctx
                .counters
                .hit(&counting::key_sender(sender), Window::HOUR)
                .await;
        }
    }

    /// HELO, MAIL, RCPT, end of data: spool health at MAIL, then the relay
    /// and sender-routing rules.
    fn session_policy(&self) -> Verdict {
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
        let relay = self.flow().action == FlowAction::Relay;
        let (verdict, refusal) = self.ctx.shared.policy.check(&stage, facts, relay);
        if let Some(refusal) = refusal {
            if let Verdict::Refuse(r) | Verdict::Disconnect(r) = &verdict {
                self.log_decision(stage.kind().as_str(), refusal.as_str(), Some(r));
            }
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
