//! Milters asked before end of data (`[[milter]] stage = "connect" | "helo"
//! | "mail" | "rcpt"`): at that stage the conversation is replayed up to it
//! (connect, HELO, MAIL, this RCPT) on a fresh connection, and the milter's
//! reject or tempfail refuses the command — one recipient at RCPT, as
//! Sendmail and Postfix do with a live milter — before any data is sent.
//! Every milter still sees the whole message at end of data
//! (`session/content.rs`), where its changes are applied.
//!
//! # Security
//! Each consultation is bounded by the milter's timeouts and by
//! [`STAGE_DEADLINE`]; a failure follows the milter's `default_action`
//! (`tempfail` by default: `451 4.7.1`, never a silent accept unless the
//! operator chose `accept`). A milter's verdict is a reply it chose: the
//! milter crate checked its code (4xx/5xx only, enhanced code class).
//!
//! # Standards
//! Sendmail milter protocol v6 (the steps); RFC 5321 §3.1 (a `5xx` at
//! connect), §4.2.5 (a `4xx`/`5xx` to RCPT refuses that recipient only).

use postern_milter::{
    Envelope, MilterSpec, Session as MilterSession, Step, Verdict as MilterVerdict,
};
use postern_proto::session::{Stage, StageKind, Verdict};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;

/// The most one early consultation may take (each step is also bounded by
/// the milter's `command_timeout`).
pub(super) const STAGE_DEADLINE: std::time::Duration = std::time::Duration::from_mins(1);

/// One replay up to `kind`: the milter's decision, if it made one.
async fn replay(
    spec: &MilterSpec,
    env: &Envelope<'_>,
    kind: StageKind,
    rcpt: Option<(&str, &[String])>,
) -> Result<Option<MilterVerdict>, postern_milter::MilterError> {
    let stream = postern_milter::open(spec).await?;
    let mut s = MilterSession::negotiate(spec, stream).await?;
    let mut steps = vec![StageKind::Connect];
    if kind != StageKind::Connect {
        steps.push(StageKind::Helo);
    }
    if matches!(kind, StageKind::Mail | StageKind::Rcpt) {
        steps.push(StageKind::Mail);
    }
    if kind == StageKind::Rcpt {
        steps.push(StageKind::Rcpt);
    }
    for step in steps {
        let answer = match step {
            StageKind::Connect => s.connect(env).await?,
            StageKind::Helo => s.helo(env).await?,
            StageKind::Mail => s.mail(env).await?,
            _ => match rcpt {
                Some((to, args)) => s.rcpt(env, to, args).await?,
                None => Step::Continue,
            },
        };
        if let Step::Decided(v) = answer {
            s.quit().await;
            return Ok(Some(v));
        }
    }
    s.quit().await;
    Ok(None)
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Asks the milters configured for this stage; the first refusal wins.
    pub(super) async fn milter_stage(&mut self, kind: StageKind) -> Option<Verdict> {
        let shared = std::sync::Arc::clone(&self.ctx.shared);
        let content = &shared.content;
        if kind == StageKind::DataEnd
            || !content.settings.milter_stages.contains(&kind)
            || !self.flow().content.milters
        {
            return None;
        }
        let facts = self.machine.facts().clone();
        let (mail_from, rcpt) = match self.machine.stage() {
            Some(Stage::Mail { from }) => (from.reverse_path.to_string(), None),
            Some(Stage::Rcpt { from, to, .. }) => (
                from.reverse_path.to_string(),
                Some(to.forward_path.to_string()),
            ),
            _ => (String::new(), None),
        };
        let mail_from = mail_from
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned();
        let rcpt = rcpt.map(|r| r.trim_start_matches('<').trim_end_matches('>').to_owned());
        let rcpts: Vec<String> = rcpt.iter().cloned().collect();
        let hostname = self.ctx.listener.hostname.clone();
        let listener = self.ctx.listener.name.clone();
        let tls = self
            .tls
            .as_ref()
            .map(|t| (t.version.clone(), t.cipher.clone()));
        let client_name = self.gate.facts.verified.first().cloned();
        let env = Envelope {
            hostname: &hostname,
            daemon_name: &listener,
            daemon_addr: self.daemon_addr(),
            client_ip: Some(self.peer.ip()),
            client_port: self.peer.port(),
            client_name: client_name.as_deref(),
            helo: facts.helo.as_deref(),
            mail_from: &mail_from,
            rcpts: &rcpts,
            auth_user: facts.auth_user.as_deref(),
            auth_mechanism: facts.auth_mechanism,
            tls_version: tls.as_ref().map(|t| t.0.as_str()),
            cipher: tls.as_ref().map(|t| t.1.as_str()),
            cipher_bits: tls.as_ref().and_then(|t| super::content::cipher_bits(&t.1)),
            ..Envelope::default()
        };
        for (spec, stage) in content
            .settings
            .milters
            .iter()
            .zip(&content.settings.milter_stages)
        {
            if *stage != kind {
                continue;
            }
            let by = format!("milter:{}", spec.name);
            let asked = replay(spec, &env, kind, rcpt.as_deref().map(|r| (r, &[][..])));
            let verdict = match tokio::time::timeout(STAGE_DEADLINE, asked).await {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => {
                    let cause = e.cause();
                    self.in_tx(|| tracing::warn!(milter = %spec.name, cause = cause.id, error = %e, "milter failed"));
                    Some(spec.default_action.verdict())
                }
                Err(_) => {
                    self.in_tx(|| tracing::warn!(milter = %spec.name, stage = kind.as_str(), "milter did not answer in time"));
                    Some(spec.default_action.verdict())
                }
            };
            // Accept, continue, or a discard (about a message that does not
            // exist yet): go on; end of data asks it again.
            if let Some(MilterVerdict::Reject(reply) | MilterVerdict::Tempfail(reply)) = verdict {
                self.event(&format!(
                    "{by} at {}: {}",
                    kind.as_str(),
                    crate::replies::one_line(&reply)
                ));
                self.log_decision(kind.as_str(), &by, Some(&reply));
                return Some(Verdict::Refuse(reply));
            }
        }
        None
    }
}
