//! A milter conversation driven step by step ([`Session`]): the MTA calls
//! one method per SMTP step, live or replayed, and acts on each [`Step`].
//!
//! [`crate::run`] is the whole-message replay built on it. A server that
//! wants a milter's verdict at the step itself (a reject at RCPT for that
//! recipient only, as Postfix's `smtpd_milters` do) drives a `Session`
//! during the SMTP session instead: [`Session::negotiate`] once per SMTP
//! session, then `connect`, `helo`, and per transaction `mail`, `rcpt`…,
//! `end_of_message` (or [`Session::abort`]), and [`Session::quit`] at the
//! end. A step the milter opted out of (`SMFIP_NO*`) answers
//! [`Step::Continue`] without sending anything; a step it will not answer
//! (`SMFIP_NR_*`) is sent and not waited for.
//!
//! # Security
//! Every reply is read with a timeout, bounded in size ([`crate::codec`]) and
//! checked field by field ([`crate::fields`]); modifications are only taken
//! at end of message and only those negotiated; their number and the size of
//! a replacement body are bounded ([`crate::ResultLimits`]); progress
//! packets cannot hold us past [`crate::Timeouts::end_of_message`].
//!
//! # Standards
//! Sendmail libmilter protocol version 6; header values without their
//! leading space unless `SMFIP_HDR_LEADSPC` (as Sendmail and Postfix send
//! them), folds as LF.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::codec::{self, Command, Family, Response};
use crate::macros;
use crate::modify::{default_reject, default_tempfail};
use crate::{
    Actions, Envelope, MacroStage, MilterError, MilterResult, MilterSpec, Modification, Negotiated,
    ProtocolError, ProtocolFlags, Stage, Verdict,
};

/// Most `SMFIR_PROGRESS` packets answering one command before end of
/// message.
const MAX_PROGRESS: usize = 1000;

/// The milter's answer to one step before end of message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Go on (`SMFIR_CONTINUE`, or nothing asked or awaited).
    Continue,
    /// Send no more body chunks; go to end of message (`SMFIR_SKIP`).
    SkipBody,
    /// The milter decided. At RCPT a reject or tempfail is about that
    /// recipient in a live session (Sendmail, Postfix); accept and discard
    /// are about the message: send it no more steps for this message
    /// ([`Session::abort`], then the next `mail`, or [`Session::quit`]).
    Decided(Verdict),
}

/// What a reply means for the transaction.
enum Flow {
    /// Go on with the next step.
    Next,
    /// Stop sending body chunks (`SMFIR_SKIP`).
    Skip,
    /// The milter decided.
    Done(Verdict),
}

impl From<Flow> for Step {
    fn from(flow: Flow) -> Step {
        match flow {
            Flow::Next => Step::Continue,
            Flow::Skip => Step::SkipBody,
            Flow::Done(v) => Step::Decided(v),
        }
    }
}

/// One negotiated connection to a milter. After an error the connection
/// is in an unknown state: drop the session (and apply the failure action).
pub struct Session<'s, S> {
    spec: &'s MilterSpec,
    stream: S,
    out: Vec<u8>,
    stage: Stage,
    neg: Negotiated,
}

impl<'s, S: AsyncRead + AsyncWrite + Unpin> Session<'s, S> {
    fn protocol_error(&self, source: ProtocolError) -> MilterError {
        MilterError::Protocol {
            name: self.spec.name.clone(),
            stage: self.stage,
            source,
        }
    }

    fn timeout(&self, after: Duration) -> MilterError {
        MilterError::Timeout {
            name: self.spec.name.clone(),
            stage: self.stage,
            after,
        }
    }

    fn io(&self, source: std::io::Error) -> MilterError {
        MilterError::Io {
            name: self.spec.name.clone(),
            stage: self.stage,
            source,
        }
    }

    /// What negotiation settled.
    pub fn negotiated(&self) -> &Negotiated {
        &self.neg
    }

    /// The milter this session talks to.
    pub fn spec(&self) -> &MilterSpec {
        self.spec
    }

    /// The step the session is at (the last one sent).
    pub fn stage(&self) -> Stage {
        self.stage
    }

    fn queue(&mut self, cmd: &Command<'_>) -> Result<(), MilterError> {
        cmd.encode(&mut self.out).map_err(|source| {
            // Never send the half of a step (its macros without its command).
            self.out.clear();
            MilterError::Encode {
                name: self.spec.name.clone(),
                stage: self.stage,
                source,
            }
        })
    }

    async fn flush(&mut self) -> Result<(), MilterError> {
        let after = self.spec.timeouts.command;
        let write = async {
            self.stream.write_all(&self.out).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(after, write).await {
            Ok(Ok(())) => {
                self.out.clear();
                Ok(())
            }
            Ok(Err(e)) => Err(self.io(e)),
            Err(_) => Err(self.timeout(after)),
        }
    }

    async fn send(&mut self, cmd: &Command<'_>) -> Result<(), MilterError> {
        self.queue(cmd)?;
        self.flush().await
    }

    /// Queues the macros of `stage` (the milter's list or the spec's).
    fn queue_macros(
        &mut self,
        stage: MacroStage,
        env: &Envelope<'_>,
        rcpt: Option<&str>,
    ) -> Result<(), MilterError> {
        let idx = usize::try_from(stage.number()).unwrap_or(usize::MAX);
        let names = match self.neg.symlists.get(idx) {
            Some(Some(list)) => list.clone(),
            _ => self.spec.macros.stage(stage).to_vec(),
        };
        let pairs = macros::pairs(env, rcpt, &names);
        if pairs.is_empty() {
            return Ok(());
        }
        self.queue(&Command::Macro {
            stage,
            pairs: &pairs,
        })
    }

    /// Reads one packet within `wait`.
    async fn read_packet(&mut self, wait: Duration) -> Result<Response, MilterError> {
        let read = async {
            let mut prefix = [0u8; 4];
            self.stream.read_exact(&mut prefix).await?;
            Ok::<_, std::io::Error>(prefix)
        };
        let prefix = match tokio::time::timeout(wait, read).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return Err(self.io(e)),
            Err(_) => return Err(self.timeout(wait)),
        };
        let len = codec::packet_len(prefix).map_err(|e| self.protocol_error(e))?;
        let mut packet = vec![0u8; len];
        match tokio::time::timeout(wait, self.stream.read_exact(&mut packet)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(self.io(e)),
            Err(_) => return Err(self.timeout(wait)),
        }
        Response::parse(&packet).map_err(|e| self.protocol_error(e))
    }

    /// Sends what is queued and waits for the answer to a step before end
    /// of message: each read within `command`, progress restarting it, the
    /// whole wait within `end_of_message`.
    async fn step(&mut self) -> Result<Flow, MilterError> {
        self.flush().await?;
        let command = self.spec.timeouts.command;
        let deadline = Instant::now() + self.spec.timeouts.end_of_message;
        for _ in 0..=MAX_PROGRESS {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timeout(self.spec.timeouts.end_of_message));
            }
            let reply = self.read_packet(command.min(left)).await?;
            match reply {
                Response::Progress => {}
                Response::Skip
                    if self.stage == Stage::Body && self.neg.has(ProtocolFlags::SKIP) =>
                {
                    return Ok(Flow::Skip);
                }
                other => return self.decide(other),
            }
        }
        Err(self.protocol_error(ProtocolError::TooMuch {
            what: "progress replies to one command",
            max: MAX_PROGRESS,
        }))
    }

    /// The meaning of a non-progress reply outside end of message.
    fn decide(&self, reply: Response) -> Result<Flow, MilterError> {
        Ok(match reply {
            Response::Continue => Flow::Next,
            Response::Accept => Flow::Done(Verdict::Accept),
            Response::Discard => Flow::Done(Verdict::Discard),
            Response::Reject => Flow::Done(Verdict::Reject(default_reject())),
            Response::Tempfail | Response::ConnFail | Response::Shutdown => {
                Flow::Done(Verdict::Tempfail(default_tempfail()))
            }
            Response::ReplyCode(reply) if reply.is_permanent() => {
                Flow::Done(Verdict::Reject(reply))
            }
            Response::ReplyCode(reply) => Flow::Done(Verdict::Tempfail(reply)),
            other => {
                return Err(self.protocol_error(ProtocolError::Unexpected {
                    reply: other.name(),
                    stage: self.stage,
                }));
            }
        })
    }

    /// Sends the queued command of the current stage; waits for its answer
    /// unless the milter said it gives none (`nr`).
    async fn maybe_step(&mut self, nr: ProtocolFlags) -> Result<Flow, MilterError> {
        if self.neg.has(nr) {
            self.flush().await?;
            Ok(Flow::Next)
        } else {
            self.step().await
        }
    }

    /// Negotiates on an open stream (`SMFIC_OPTNEG`): protocol version 6,
    /// the spec's actions, every protocol step we can skip.
    pub async fn negotiate(spec: &'s MilterSpec, stream: S) -> Result<Session<'s, S>, MilterError> {
        let mut session = Session {
            spec,
            stream,
            out: Vec::with_capacity(256),
            stage: Stage::Negotiate,
            // Replaced below before any step can use it.
            neg: Negotiated {
                version: codec::PROTOCOL_VERSION,
                actions: Actions(0),
                protocol: ProtocolFlags(0),
                symlists: Default::default(),
            },
        };
        session
            .send(&Command::OptNeg {
                version: codec::PROTOCOL_VERSION,
                actions: spec.actions,
                protocol: ProtocolFlags::OFFERED,
            })
            .await?;
        let reply = session.read_packet(spec.timeouts.command).await?;
        let Response::OptNeg(reply) = reply else {
            return Err(session.protocol_error(ProtocolError::Unexpected {
                reply: reply.name(),
                stage: session.stage,
            }));
        };
        session.neg =
            Negotiated::from_reply(spec.actions, reply).map_err(|e| session.protocol_error(e))?;
        Ok(session)
    }

    /// `SMFIC_CONNECT` with the client of `env` (its macros first).
    pub async fn connect(&mut self, env: &Envelope<'_>) -> Result<Step, MilterError> {
        self.stage = Stage::Connect;
        if self.neg.has(ProtocolFlags::NO_CONNECT) {
            return Ok(Step::Continue);
        }
        self.queue_macros(MacroStage::Connect, env, None)?;
        let ip = env.client_ip.map(|ip| ip.to_string());
        let hostname = env.client_name.map_or_else(
            || {
                ip.as_ref()
                    .map_or_else(|| "localhost".to_owned(), |ip| format!("[{ip}]"))
            },
            str::to_owned,
        );
        let family = match env.client_ip {
            None => Family::Unknown,
            Some(std::net::IpAddr::V4(_)) => Family::Inet4,
            Some(std::net::IpAddr::V6(_)) => Family::Inet6,
        };
        self.queue(&Command::Connect {
            hostname: &hostname,
            family,
            port: env.client_port,
            address: ip.as_deref().unwrap_or(""),
        })?;
        Ok(self.maybe_step(ProtocolFlags::NR_CONNECT).await?.into())
    }

    /// `SMFIC_HELO` with `env.helo` (nothing is sent when it is `None`).
    pub async fn helo(&mut self, env: &Envelope<'_>) -> Result<Step, MilterError> {
        self.stage = Stage::Helo;
        let Some(helo) = env.helo else {
            return Ok(Step::Continue);
        };
        if self.neg.has(ProtocolFlags::NO_HELO) {
            return Ok(Step::Continue);
        }
        self.queue_macros(MacroStage::Helo, env, None)?;
        self.queue(&Command::Helo(helo))?;
        Ok(self.maybe_step(ProtocolFlags::NR_HELO).await?.into())
    }

    /// `SMFIC_MAIL` with `env.mail_from` and `env.mail_args`.
    pub async fn mail(&mut self, env: &Envelope<'_>) -> Result<Step, MilterError> {
        self.stage = Stage::Mail;
        if self.neg.has(ProtocolFlags::NO_MAIL) {
            return Ok(Step::Continue);
        }
        self.queue_macros(MacroStage::MailFrom, env, None)?;
        let mut args = Vec::with_capacity(1 + env.mail_args.len());
        args.push(format!("<{}>", env.mail_from));
        args.extend(env.mail_args.iter().cloned());
        self.queue(&Command::Mail(&args))?;
        Ok(self.maybe_step(ProtocolFlags::NR_MAIL).await?.into())
    }

    /// `SMFIC_RCPT` for one recipient (bare address) and its parameters.
    pub async fn rcpt(
        &mut self,
        env: &Envelope<'_>,
        rcpt: &str,
        rcpt_args: &[String],
    ) -> Result<Step, MilterError> {
        self.stage = Stage::Rcpt;
        if self.neg.has(ProtocolFlags::NO_RCPT) {
            return Ok(Step::Continue);
        }
        self.queue_macros(MacroStage::Rcpt, env, Some(rcpt))?;
        let mut args = Vec::with_capacity(1 + rcpt_args.len());
        args.push(format!("<{rcpt}>"));
        args.extend(rcpt_args.iter().cloned());
        self.queue(&Command::Rcpt(&args))?;
        Ok(self.maybe_step(ProtocolFlags::NR_RCPT).await?.into())
    }

    /// `SMFIC_DATA` (milters of protocol version 4 and later).
    pub async fn data(&mut self, env: &Envelope<'_>) -> Result<Step, MilterError> {
        self.stage = Stage::Data;
        if self.neg.version < 4 || self.neg.has(ProtocolFlags::NO_DATA) {
            return Ok(Step::Continue);
        }
        self.queue_macros(MacroStage::Data, env, None)?;
        self.queue(&Command::Data)?;
        Ok(self.maybe_step(ProtocolFlags::NR_DATA).await?.into())
    }

    /// `SMFIC_HEADER`: one field, `value` as it follows the colon (leading
    /// space kept, folds as CRLF + WSP). Sent as Sendmail and Postfix send
    /// it: folds as LF, and without the leading white space unless the
    /// milter negotiated `SMFIP_HDR_LEADSPC`.
    pub async fn header(&mut self, name: &str, value: &str) -> Result<Step, MilterError> {
        self.stage = Stage::Header;
        if self.neg.has(ProtocolFlags::NO_HEADERS) {
            return Ok(Step::Continue);
        }
        let value = value.replace("\r\n", "\n");
        let value = if self.neg.has(ProtocolFlags::HEADER_LEADING_SPACE) {
            value.as_str()
        } else {
            value.trim_start_matches([' ', '\t'])
        };
        self.queue(&Command::Header { name, value })?;
        Ok(self.maybe_step(ProtocolFlags::NR_HEADER).await?.into())
    }

    /// `SMFIC_EOH`.
    pub async fn end_of_headers(&mut self, env: &Envelope<'_>) -> Result<Step, MilterError> {
        self.stage = Stage::EndOfHeaders;
        if self.neg.has(ProtocolFlags::NO_EOH) {
            return Ok(Step::Continue);
        }
        self.queue_macros(MacroStage::EndOfHeaders, env, None)?;
        self.queue(&Command::EndOfHeaders)?;
        Ok(self.maybe_step(ProtocolFlags::NR_EOH).await?.into())
    }

    /// Whether the milter wants the body (`SMFIP_NOBODY` not negotiated).
    pub fn wants_body(&self) -> bool {
        !self.neg.has(ProtocolFlags::NO_BODY)
    }

    /// `SMFIC_BODY`: one chunk of at most 65535 bytes (CRLF line ends, as
    /// stored). After [`Step::SkipBody`] send no more chunks.
    pub async fn body(&mut self, chunk: &[u8]) -> Result<Step, MilterError> {
        self.stage = Stage::Body;
        if !self.wants_body() || chunk.is_empty() {
            return Ok(Step::Continue);
        }
        self.queue(&Command::Body(chunk))?;
        Ok(self.maybe_step(ProtocolFlags::NR_BODY).await?.into())
    }

    /// `SMFIC_BODYEOB`: the modifications and the final verdict.
    pub async fn end_of_message(
        &mut self,
        env: &Envelope<'_>,
    ) -> Result<MilterResult, MilterError> {
        self.stage = Stage::EndOfMessage;
        self.queue_macros(MacroStage::EndOfMessage, env, None)?;
        self.queue(&Command::EndOfBody)?;
        self.flush().await?;
        self.collect_end_of_message().await
    }

    /// `SMFIC_ABORT`: forget the current message (no answer); the session
    /// may go on with another `mail`.
    pub async fn abort(&mut self) -> Result<(), MilterError> {
        self.send(&Command::Abort).await
    }

    /// `SMFIC_QUIT` and close, best effort: the verdicts are in, a milter
    /// that is gone by now changes nothing.
    pub async fn quit(mut self) {
        self.stage = Stage::Quit;
        let _ = self.send(&Command::Quit).await;
        let _ = tokio::time::timeout(self.spec.timeouts.command, self.stream.shutdown()).await;
    }

    /// Collects modifications until the final reply, within
    /// `end_of_message` as a whole (a milter may think that long without
    /// sending progress).
    async fn collect_end_of_message(&mut self) -> Result<MilterResult, MilterError> {
        let total = self.spec.timeouts.end_of_message;
        let deadline = Instant::now() + total;
        let limits = self.spec.limits;
        let leadspc = self.neg.has(ProtocolFlags::HEADER_LEADING_SPACE);
        let mut mods: Vec<Modification> = Vec::new();
        let mut body: Option<Vec<u8>> = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timeout(total));
            }
            let reply = match self.read_packet(left).await {
                Err(MilterError::Timeout { .. }) => return Err(self.timeout(total)),
                other => other?,
            };
            let need = |action: Actions, name: &'static str| -> Result<(), MilterError> {
                if self.neg.actions.contains(action) {
                    Ok(())
                } else {
                    Err(self.protocol_error(ProtocolError::NotNegotiated {
                        reply: reply.name(),
                        action: name,
                    }))
                }
            };
            let with_space = |value: String| {
                if leadspc || value.is_empty() {
                    value
                } else {
                    format!(" {value}")
                }
            };
            let m = match reply {
                Response::Progress => continue,
                Response::AddHeader {
                    ref name,
                    ref value,
                } => {
                    need(Actions::ADD_HEADERS, "add_headers")?;
                    Modification::AddHeader {
                        name: name.clone(),
                        value: with_space(value.clone()),
                    }
                }
                Response::InsertHeader {
                    index,
                    ref name,
                    ref value,
                } => {
                    need(Actions::ADD_HEADERS, "add_headers")?;
                    Modification::InsertHeader {
                        index,
                        name: name.clone(),
                        value: with_space(value.clone()),
                    }
                }
                Response::ChangeHeader {
                    index,
                    ref name,
                    ref value,
                } => {
                    need(Actions::CHANGE_HEADERS, "change_headers")?;
                    Modification::ChangeHeader {
                        name: name.clone(),
                        index,
                        value: with_space(value.clone()),
                    }
                }
                Response::AddRcpt(ref rcpt) => {
                    need(Actions::ADD_RCPT, "add_rcpt")?;
                    Modification::AddRcpt {
                        rcpt: rcpt.clone(),
                        args: Vec::new(),
                    }
                }
                Response::AddRcptPar { ref rcpt, ref args } => {
                    need(Actions::ADD_RCPT_PAR, "add_rcpt_par")?;
                    Modification::AddRcpt {
                        rcpt: rcpt.clone(),
                        args: args.clone(),
                    }
                }
                Response::DelRcpt(ref rcpt) => {
                    need(Actions::DELETE_RCPT, "delete_rcpt")?;
                    Modification::DelRcpt(rcpt.clone())
                }
                Response::ChangeFrom { ref from, ref args } => {
                    need(Actions::CHANGE_FROM, "change_from")?;
                    Modification::ChangeFrom {
                        from: from.clone(),
                        args: args.clone(),
                    }
                }
                Response::Quarantine(ref reason) => {
                    need(Actions::QUARANTINE, "quarantine")?;
                    Modification::Quarantine {
                        reason: reason.clone(),
                    }
                }
                Response::ReplaceBody(ref piece) => {
                    need(Actions::CHANGE_BODY, "change_body")?;
                    let acc = body.get_or_insert_with(Vec::new);
                    if acc.len() + piece.len() > limits.max_body {
                        return Err(self.protocol_error(ProtocolError::TooMuch {
                            what: "replacement body",
                            max: limits.max_body,
                        }));
                    }
                    acc.extend_from_slice(piece);
                    continue;
                }
                final_reply => {
                    let verdict = match final_reply {
                        Response::Continue => Verdict::Continue,
                        other => match self.decide(other)? {
                            Flow::Done(v) => v,
                            Flow::Next | Flow::Skip => Verdict::Continue,
                        },
                    };
                    if verdict.is_accepted() {
                        if let Some(b) = body {
                            mods.push(Modification::ReplaceBody(crate::fields::crlf_body(&b)));
                        }
                    } else {
                        mods.clear();
                    }
                    return Ok(MilterResult {
                        verdict,
                        stage: self.stage,
                        modifications: mods,
                    });
                }
            };
            if mods.len() >= limits.max_modifications {
                return Err(self.protocol_error(ProtocolError::TooMuch {
                    what: "modifications",
                    max: limits.max_modifications,
                }));
            }
            mods.push(m);
        }
    }
}
