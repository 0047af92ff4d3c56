//! Session events in the mail log: every refusal, deferral, throttling and
//! greylisting at SMTP time, with the rule, the sender group and the policy
//! that decided, keyed by the session id (issue 9 item 10; the tracking
//! store of the operations console indexes them).

use postern_proto::Reply;
use postern_proto::session::Stage;
use postern_track::{SessionEvent, SessionRecord, SmtpDecision};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;

/// Rules that are rate or concurrency limits (logged as `throttled`).
const THROTTLES: &[&str] = &[
    "max_concurrent_connections_per_ip",
    "max_connections_per_minute_per_ip",
    "max_messages_per_session",
    "max_recipients_per_hour_per_ip",
    "max_messages_per_hour_per_sender",
];

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Logs that the content policy discarded the message (`dropped`).
    pub(super) fn log_drop(&self, reason: &str) {
        self.log_event(
            "data",
            "content",
            None,
            Some(&format!("250 (discarded: {reason})")),
        );
    }

    /// Logs a decision taken at `stage` by `rule` with `reply` (`None`: a
    /// silent close).
    pub(super) fn log_decision(&self, stage: &str, rule: &str, reply: Option<&Reply>) {
        self.log_event(stage, rule, reply, None);
    }

    fn log_event(&self, stage: &str, rule: &str, reply: Option<&Reply>, dropped: Option<&str>) {
        let Some(log) = &self.ctx.mail_log else {
            return;
        };
        let (sender, recipient) = match self.machine.stage() {
            Some(Stage::Mail { from }) => (Some(from.reverse_path.to_string()), None),
            Some(Stage::Rcpt { from, to, .. }) => (
                Some(from.reverse_path.to_string()),
                Some(to.forward_path.to_string()),
            ),
            _ => (
                self.machine
                    .transaction()
                    .map(|t| t.mail.reverse_path.to_string()),
                None,
            ),
        };
        let class = self.gate.class.as_ref();
        let decision = SmtpDecision {
            client: self.gate.facts.ip.to_string(),
            listener: self.ctx.listener.name.clone(),
            stage: stage.to_owned(),
            rule: rule.to_owned(),
            group: class.and_then(|c| c.group.clone()),
            policy: class.map(|_| self.flow().name.clone()),
            reply: reply
                .map(crate::replies::one_line)
                .or_else(|| dropped.map(str::to_owned))
                .unwrap_or_default(),
            sender,
            recipient,
        };
        let code = reply.map_or(550, |r| r.code);
        let event = if dropped.is_some() {
            SessionEvent::Dropped(decision)
        } else if rule == "greylist" {
            SessionEvent::Greylisted(decision)
        } else if THROTTLES.contains(&rule) && code < 500 {
            SessionEvent::Throttled(decision)
        } else if code >= 500 {
            SessionEvent::Rejected(decision)
        } else {
            SessionEvent::Deferred(decision)
        };
        let n = self.events.get() + 1;
        self.events.set(n);
        log.session(SessionRecord::new(&self.id, n, event));
    }
}
