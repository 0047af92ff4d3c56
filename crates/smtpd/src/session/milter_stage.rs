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

/// What a milter is told about the session, owned (an [`Envelope`] borrows
/// it): the same at every stage and at end of data.
pub(super) struct MilterFacts {
    hostname: String,
    listener: String,
    daemon_addr: Option<std::net::IpAddr>,
    client: std::net::SocketAddr,
    /// The forward-confirmed name: never the HELO or an unconfirmed PTR.
    client_name: Option<String>,
    helo: Option<String>,
    auth_user: Option<String>,
    auth_mechanism: Option<&'static str>,
    /// TLS version and cipher.
    tls: Option<(String, String)>,
}

impl MilterFacts {
    /// The milter envelope for `mail_from` and `rcpts` (no queue id, no MAIL
    /// parameters: the end-of-data step adds them).
    pub(super) fn envelope<'a>(&'a self, mail_from: &'a str, rcpts: &'a [String]) -> Envelope<'a> {
        let tls = self.tls.as_ref();
        Envelope {
            hostname: &self.hostname,
            daemon_name: &self.listener,
            daemon_addr: self.daemon_addr,
            client_ip: Some(self.client.ip()),
            client_port: self.client.port(),
            client_name: self.client_name.as_deref(),
            helo: self.helo.as_deref(),
            mail_from,
            rcpts,
            auth_user: self.auth_user.as_deref(),
            auth_mechanism: self.auth_mechanism,
            tls_version: tls.map(|t| t.0.as_str()),
            cipher: tls.map(|t| t.1.as_str()),
            cipher_bits: tls.and_then(|t| super::content::cipher_bits(&t.1)),
            ..Envelope::default()
        }
    }
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// The session's facts for a milter ([`MilterFacts`]).
    pub(super) fn milter_facts(&self) -> MilterFacts {
        let facts = self.machine.facts();
        MilterFacts {
            hostname: self.ctx.listener.hostname.clone(),
            listener: self.ctx.listener.name.clone(),
            // The listener's address when bound to one ({daemon_addr}, {if_addr}).
            daemon_addr: Some(self.ctx.listener.addr.ip()).filter(|ip| !ip.is_unspecified()),
            client: self.peer,
            client_name: self.gate.facts.verified.first().cloned(),
            helo: facts.helo.clone(),
            auth_user: facts.auth_user.clone(),
            auth_mechanism: facts.auth_mechanism,
            tls: self
                .tls
                .as_ref()
                .map(|t| (t.version.clone(), t.cipher.clone())),
        }
    }

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
        let session = self.milter_facts();
        let env = session.envelope(&mail_from, &rcpts);
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
