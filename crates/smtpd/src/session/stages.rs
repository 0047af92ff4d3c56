//! The policy stages as the server runs them: the machine stops at a stage, and
//! this asks, in order, the sender groups and the client's mail-flow policy
//! (connect: behaviour, PTR requirement, connection limits, the session's
//! tuning; MAIL: messages per session; RCPT: delayed rejection, relay
//! right), the spool's health and free space at MAIL (`Spool::admit`), then
//! the session policy (`postern_policy::Policy`: relay and sender-routing
//! rules), and hands the first refusal back as the verdict.
//!
//! # Security
//! A poisoned spool (a failed fsync, `docs/spool-format.md`) refuses at MAIL
//! with `451 4.3.0`, and a disk under `[spool] min_free` (or a `SIZE=` over
//! what is left above it) with `452 4.3.1`, instead of taking a whole DATA it
//! cannot store (tenet 1: never `250` for what is not durable; RFC 1870 §6).
//! The client is classified again when TLS starts or AUTH succeeds (a group
//! may match `tls` or `authenticated`), never on what the client merely
//! claims. Every refusal is logged with its reason, the group and the
//! policy, and the session id.
//!
//! # Standards
//! RFC 5321 §3.1 (refusal at connect), §3.6.2 (relay refusals), §4.2.5,
//! RFC 3463 X.3.0 / X.7.1.

use postern_policy::admission::{
    Classification, ClientFacts, FlowAction, MailFlowPolicy, RejectAt, flow,
};
use postern_proto::session::{Stage, Tuning, Verdict};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
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

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// The client's mail-flow policy (the built-in default before the
    /// connect stage or without sender groups).
    fn flow(&self) -> &MailFlowPolicy {
        let admission = &self.ctx.shared.settings.admission;
        match &self.gate.class {
            Some(c) => admission.policy(c),
            None => admission.policy(&Classification {
                group: None,
                policy: None,
                steps: Vec::new(),
                score: None,
            }),
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
            postern_policy::admission::StepOutcome::Matched { by } => Some(by.clone()),
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

    /// Logs a refusal by the mail-flow policy.
    fn refused(&self, stage: &str, rule: &str, reply: &postern_proto::Reply) {
        let group = self
            .gate
            .class
            .as_ref()
            .and_then(|c| c.group.as_deref())
            .unwrap_or("(none)");
        let policy = &self.flow().name;
        self.in_tx(|| {
            tracing::info!(stage, rule, group, policy = %policy, code = reply.code,
                "refused by mail-flow policy");
        });
        self.event(&format!(
            "{stage} refused by policy {policy} (group {group}, {rule}): {}",
            reply.code
        ));
    }

    /// The verdict for the stage the machine waits at; `None`: close the
    /// connection without a word (a `tcp-refuse` policy).
    pub(super) async fn check_stage(&mut self) -> Option<Verdict> {
        let Some(stage) = self.machine.stage() else {
            return Some(Verdict::Accept);
        };
        let kind = stage.kind();
        if kind == postern_proto::session::StageKind::Connect {
            return self.connect_stage().await;
        }
        // A session that started TLS or authenticated may belong to another
        // group now.
        if !self.ctx.shared.settings.admission.is_empty() {
            let f = self.machine.facts();
            if self.gate.class.is_some()
                && self.gate.basis != (f.tls.is_some(), f.auth_user.is_some())
            {
                self.classify().await;
            }
        }
        Some(self.command_stage())
    }

    /// Connect: the sender group, then the policy's behaviour and limits.
    async fn connect_stage(&mut self) -> Option<Verdict> {
        if self.ctx.shared.settings.admission.is_empty() {
            return Some(Verdict::Accept);
        }
        self.classify().await;
        let ip = self.gate.facts.ip;
        let policy = self.flow().clone();
        match (policy.action, policy.reject_at) {
            (FlowAction::TcpRefuse, _) => {
                self.refused(
                    "connect",
                    "tcp-refuse",
                    &flow::replies::too_many_connections(ip),
                );
                return None;
            }
            (FlowAction::Reject | FlowAction::TempFail, RejectAt::Connect) => {
                let reply = policy.refusal(RejectAt::Connect, ip);
                self.refused("connect", policy.action.as_str(), &reply);
                return Some(if reply.code >= 500 {
                    Verdict::Refuse(reply)
                } else {
                    Verdict::Disconnect(reply)
                });
            }
            _ => {}
        }
        if policy.require_ptr {
            if !self.gate.facts.ptr.is_asked() {
                self.gate.facts.ptr = crate::gateway::ptr_of(self.ctx.resolver.as_ref(), ip).await;
            }
            let refusal = match &self.gate.facts.ptr {
                postern_policy::admission::Lookup::Done(names) if names.is_empty() => {
                    Some(Verdict::Refuse(flow::replies::no_ptr(ip)))
                }
                postern_policy::admission::Lookup::Done(_) => None,
                _ => Some(Verdict::Disconnect(flow::replies::ptr_unavailable(ip))),
            };
            if let Some(v) = refusal {
                if let Verdict::Refuse(r) | Verdict::Disconnect(r) = &v {
                    self.refused("connect", "require_ptr", r);
                }
                return Some(v);
            }
        }
        if let Some(max) = policy.max_concurrent_connections_per_ip
            && self.ctx.ip_sessions as u64 > max
        {
            let reply = flow::replies::too_many_connections(ip);
            self.refused("connect", "max_concurrent_connections_per_ip", &reply);
            return Some(Verdict::Disconnect(reply));
        }
        self.machine.tune(Tuning {
            banner: policy.banner.clone(),
            tls: policy.tls,
            auth: policy.auth,
            max_message_size: policy.max_message_size,
            max_recipients: policy.max_recipients_per_message,
        });
        Some(Verdict::Accept)
    }

    /// HELO, MAIL, RCPT, end of data.
    fn command_stage(&self) -> Verdict {
        let Some(stage) = self.machine.stage() else {
            return Verdict::Accept;
        };
        let facts = self.machine.facts();
        let policy = self.flow();
        let ip = facts.peer;
        match stage {
            Stage::Mail { from } => {
                if let Some(max) = policy.max_messages_per_session
                    && self.gate.messages >= max
                {
                    let reply = flow::replies::messages_per_session();
                    self.refused("mail", "max_messages_per_session", &reply);
                    return Verdict::Disconnect(reply);
                }
                // The spool's health before a transaction starts: poisoned (a failed
                // fsync, 451 4.3.0) or under `[spool] min_free`, or a declared SIZE
                // larger than the free space above the floor (452 4.3.1). Cheap: an
                // atomic and a statvfs cached for a second.
                if let Err(e) = self.ctx.spool.admit(from.size) {
                    tracing::warn!(error = %e, "MAIL refused: the spool cannot take a message now");
                    self.event(&format!("MAIL refused: {e}"));
                    return Verdict::Refuse(replies::spool_error(&e));
                }
            }
            Stage::Rcpt { .. }
                if matches!(policy.action, FlowAction::Reject | FlowAction::TempFail)
                    && policy.reject_at == RejectAt::Rcpt =>
            {
                let reply = policy.refusal(RejectAt::Rcpt, ip);
                self.refused("rcpt", policy.action.as_str(), &reply);
                return Verdict::Refuse(reply);
            }
            _ => {}
        }
        let relay = policy.action == FlowAction::Relay;
        let (verdict, refusal) = self.ctx.shared.policy.check(&stage, facts, relay);
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
