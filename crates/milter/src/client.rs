//! The async driver: one milter conversation per message ([`run`],
//! [`run_on_stream`]).
//!
//! At end of data the caller hands us the message; we connect, negotiate,
//! and replay the transaction as an MTA would have sent it live: connect,
//! HELO, MAIL, each RCPT, DATA, the header fields, end of headers, the body
//! in chunks of at most 65535 bytes read from the caller's reader, end of
//! message; then we collect the modifications and the final reply, send
//! `SMFIC_QUIT` and close. A step the milter opted out of (`SMFIP_NO*`) is
//! not sent; a step it said it will not answer (`SMFIP_NR_*`) is not waited
//! for. Any reply that ends the transaction early (accept, reject, discard,
//! tempfail) ends the conversation there.
//!
//! A reject or tempfail at a RCPT step ends the whole conversation with that
//! verdict: the recipients were already accepted in the SMTP session, so the
//! caller answers the message with that reply at end of data rather than
//! bouncing (no backscatter).
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

use crate::codec::{self, Command, Family, OptNegReply, Response};
use crate::macros;
use crate::modify::{default_reject, default_tempfail};
use crate::{
    Actions, Envelope, MacroStage, MilterAddr, MilterError, MilterResult, MilterSpec, Modification,
    ProtocolError, ProtocolFlags, Stage, Verdict,
};

/// Most `SMFIR_PROGRESS` packets answering one command before end of
/// message.
const MAX_PROGRESS: usize = 1000;

/// What negotiation settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The milter's protocol version (2 to 6).
    pub version: u32,
    /// The actions it may take.
    pub actions: Actions,
    /// Its protocol flags, limited to those we offered.
    pub protocol: ProtocolFlags,
    /// Its macro list per stage, when it sent one.
    pub symlists: [Option<Vec<String>>; 7],
}

impl Negotiated {
    /// Checks the milter's answer against what we offered.
    pub fn from_reply(offered: Actions, reply: OptNegReply) -> Result<Negotiated, ProtocolError> {
        if !(codec::MIN_VERSION..=codec::PROTOCOL_VERSION).contains(&reply.version) {
            return Err(ProtocolError::Version(reply.version));
        }
        let extra = reply.actions.difference(offered);
        if !extra.is_empty() {
            return Err(ProtocolError::Actions {
                asked: reply.actions,
                offered,
            });
        }
        let mut symlists: [Option<Vec<String>>; 7] = Default::default();
        if reply.actions.contains(Actions::SET_SYMLIST) {
            for (stage, names) in reply.symlists {
                if let Some(slot) =
                    symlists.get_mut(usize::try_from(stage.number()).unwrap_or(usize::MAX))
                {
                    *slot = Some(names);
                }
            }
        }
        Ok(Negotiated {
            version: reply.version,
            actions: reply.actions,
            // Bits we did not offer (SMFIP_RCPT_REJ, SMFIP_MDS_*) are not
            // honoured; dropping them keeps every later test honest.
            protocol: reply.protocol.intersection(ProtocolFlags::OFFERED),
            symlists,
        })
    }

    fn has(&self, flag: ProtocolFlags) -> bool {
        self.protocol.contains(flag)
    }
}

/// Connects to the milter of `spec` (within `timeouts.connect`) and runs
/// one conversation for the message: `headers` as `(name, value)` with the
/// value as it follows the colon (leading space included, folds as CRLF +
/// WSP), `body` the bytes after the blank line (CRLF line ends).
pub async fn run<R>(
    spec: &MilterSpec,
    env: &Envelope<'_>,
    headers: &[(String, String)],
    body: R,
) -> Result<MilterResult, MilterError>
where
    R: AsyncRead + Unpin,
{
    let connect_err = |source| MilterError::Connect {
        name: spec.name.clone(),
        address: spec.address.to_string(),
        source,
    };
    let timed_out = || MilterError::Timeout {
        name: spec.name.clone(),
        stage: Stage::Open,
        after: spec.timeouts.connect,
    };
    match &spec.address {
        MilterAddr::Tcp { host, port } => {
            let stream = tokio::time::timeout(
                spec.timeouts.connect,
                tokio::net::TcpStream::connect((host.as_str(), *port)),
            )
            .await
            .map_err(|_| timed_out())?
            .map_err(connect_err)?;
            // Small request/response packets: do not wait for Nagle, and
            // acknowledge at once (see crate::quickack).
            let _ = stream.set_nodelay(true);
            #[cfg(target_os = "linux")]
            let stream = crate::quickack::QuickAck(stream);
            run_on_stream(spec, stream, env, headers, body).await
        }
        #[cfg(unix)]
        MilterAddr::Unix(path) => {
            let stream =
                tokio::time::timeout(spec.timeouts.connect, tokio::net::UnixStream::connect(path))
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(connect_err)?;
            run_on_stream(spec, stream, env, headers, body).await
        }
        #[cfg(not(unix))]
        MilterAddr::Unix(_) => Err(MilterError::Address {
            name: spec.name.clone(),
            address: spec.address.to_string(),
            why: "Unix sockets are not available on this platform",
        }),
    }
}

/// Runs one conversation over an already open stream (a socket, or an
/// in-memory pipe in tests). See [`run`].
pub async fn run_on_stream<S, R>(
    spec: &MilterSpec,
    stream: S,
    env: &Envelope<'_>,
    headers: &[(String, String)],
    body: R,
) -> Result<MilterResult, MilterError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
{
    let mut conv = Conversation {
        spec,
        stream,
        out: Vec::with_capacity(256),
        stage: Stage::Negotiate,
        neg: None,
    };
    let result = conv.transaction(env, headers, body).await;
    if result.is_ok() {
        // Best effort: the verdict is in; a milter that is gone by now
        // changes nothing.
        conv.stage = Stage::Quit;
        let _ = conv.send(&Command::Quit).await;
        let _ = tokio::time::timeout(spec.timeouts.command, conv.stream.shutdown()).await;
    }
    result
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

struct Conversation<'s, S> {
    spec: &'s MilterSpec,
    stream: S,
    out: Vec<u8>,
    stage: Stage,
    neg: Option<Negotiated>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conversation<'_, S> {
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

    fn negotiated(&self) -> &Negotiated {
        // Set by negotiate() before any other step runs; the fallback is
        // never used but keeps this free of a panic path.
        static NONE: Negotiated = Negotiated {
            version: codec::PROTOCOL_VERSION,
            actions: Actions(0),
            protocol: ProtocolFlags(0),
            symlists: [None, None, None, None, None, None, None],
        };
        self.neg.as_ref().unwrap_or(&NONE)
    }

    fn queue(&mut self, cmd: &Command<'_>) -> Result<(), MilterError> {
        cmd.encode(&mut self.out)
            .map_err(|source| MilterError::Encode {
                name: self.spec.name.clone(),
                stage: self.stage,
                source,
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
        let names = match self.negotiated().symlists.get(idx) {
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
                    if self.stage == Stage::Body && self.negotiated().has(ProtocolFlags::SKIP) =>
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

    async fn negotiate(&mut self) -> Result<(), MilterError> {
        self.stage = Stage::Negotiate;
        self.send(&Command::OptNeg {
            version: codec::PROTOCOL_VERSION,
            actions: self.spec.actions,
            protocol: ProtocolFlags::OFFERED,
        })
        .await?;
        let reply = self.read_packet(self.spec.timeouts.command).await?;
        let Response::OptNeg(reply) = reply else {
            return Err(self.protocol_error(ProtocolError::Unexpected {
                reply: reply.name(),
                stage: self.stage,
            }));
        };
        let neg =
            Negotiated::from_reply(self.spec.actions, reply).map_err(|e| self.protocol_error(e))?;
        self.neg = Some(neg);
        Ok(())
    }

    /// Sends the queued command of the current stage; waits for its answer
    /// unless the milter said it gives none (`nr`).
    async fn maybe_step(&mut self, nr: ProtocolFlags) -> Result<Flow, MilterError> {
        if self.negotiated().has(nr) {
            self.flush().await?;
            Ok(Flow::Next)
        } else {
            self.step().await
        }
    }

    async fn transaction<R: AsyncRead + Unpin>(
        &mut self,
        env: &Envelope<'_>,
        headers: &[(String, String)],
        mut body: R,
    ) -> Result<MilterResult, MilterError> {
        macro_rules! done_if {
            ($flow:expr) => {
                if let Flow::Done(verdict) = $flow {
                    return Ok(MilterResult {
                        verdict,
                        stage: self.stage,
                        modifications: Vec::new(),
                    });
                }
            };
        }
        self.negotiate().await?;

        self.stage = Stage::Connect;
        if !self.negotiated().has(ProtocolFlags::NO_CONNECT) {
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
            let flow = self.maybe_step(ProtocolFlags::NR_CONNECT).await?;
            done_if!(flow);
        }

        self.stage = Stage::Helo;
        if let Some(helo) = env.helo
            && !self.negotiated().has(ProtocolFlags::NO_HELO)
        {
            self.queue_macros(MacroStage::Helo, env, None)?;
            self.queue(&Command::Helo(helo))?;
            let flow = self.maybe_step(ProtocolFlags::NR_HELO).await?;
            done_if!(flow);
        }

        self.stage = Stage::Mail;
        if !self.negotiated().has(ProtocolFlags::NO_MAIL) {
            self.queue_macros(MacroStage::MailFrom, env, None)?;
            let mut args = Vec::with_capacity(1 + env.mail_args.len());
            args.push(format!("<{}>", env.mail_from));
            args.extend(env.mail_args.iter().cloned());
            self.queue(&Command::Mail(&args))?;
            let flow = self.maybe_step(ProtocolFlags::NR_MAIL).await?;
            done_if!(flow);
        }

        self.stage = Stage::Rcpt;
        if !self.negotiated().has(ProtocolFlags::NO_RCPT) {
            for rcpt in env.rcpts {
                self.queue_macros(MacroStage::Rcpt, env, Some(rcpt))?;
                self.queue(&Command::Rcpt(&[format!("<{rcpt}>")]))?;
                let flow = self.maybe_step(ProtocolFlags::NR_RCPT).await?;
                done_if!(flow);
            }
        }

        self.stage = Stage::Data;
        // SMFIC_DATA exists from protocol version 4 on.
        if self.negotiated().version >= 4 && !self.negotiated().has(ProtocolFlags::NO_DATA) {
            self.queue_macros(MacroStage::Data, env, None)?;
            self.queue(&Command::Data)?;
            let flow = self.maybe_step(ProtocolFlags::NR_DATA).await?;
            done_if!(flow);
        }

        self.stage = Stage::Header;
        if !self.negotiated().has(ProtocolFlags::NO_HEADERS) {
            let leadspc = self.negotiated().has(ProtocolFlags::HEADER_LEADING_SPACE);
            for (name, value) in headers {
                // As Sendmail and Postfix: folds as LF, and without the
                // leading white space unless SMFIP_HDR_LEADSPC.
                let value = value.replace("\r\n", "\n");
                let value = if leadspc {
                    value.as_str()
                } else {
                    value.trim_start_matches([' ', '\t'])
                };
                self.queue(&Command::Header { name, value })?;
                let flow = self.maybe_step(ProtocolFlags::NR_HEADER).await?;
                done_if!(flow);
            }
        }

        self.stage = Stage::EndOfHeaders;
        if !self.negotiated().has(ProtocolFlags::NO_EOH) {
            self.queue_macros(MacroStage::EndOfHeaders, env, None)?;
            self.queue(&Command::EndOfHeaders)?;
            let flow = self.maybe_step(ProtocolFlags::NR_EOH).await?;
            done_if!(flow);
        }

        self.stage = Stage::Body;
        if !self.negotiated().has(ProtocolFlags::NO_BODY) {
            let mut chunk = vec![0u8; codec::MAX_CHUNK];
            loop {
                let n =
                    read_full(&mut body, &mut chunk)
                        .await
                        .map_err(|source| MilterError::Body {
                            name: self.spec.name.clone(),
                            source,
                        })?;
                if n == 0 {
                    break;
                }
                self.queue(&Command::Body(&chunk[..n]))?;
                match self.maybe_step(ProtocolFlags::NR_BODY).await? {
                    Flow::Next => {}
                    Flow::Skip => break,
                    flow @ Flow::Done(_) => done_if!(flow),
                }
            }
        }

        self.stage = Stage::EndOfMessage;
        self.queue_macros(MacroStage::EndOfMessage, env, None)?;
        self.queue(&Command::EndOfBody)?;
        self.flush().await?;
        self.end_of_message().await
    }

    /// Collects modifications until the final reply, within
    /// `end_of_message` as a whole (a milter may think that long without
    /// sending progress).
    async fn end_of_message(&mut self) -> Result<MilterResult, MilterError> {
        let total = self.spec.timeouts.end_of_message;
        let deadline = Instant::now() + total;
        let limits = self.spec.limits;
        let leadspc = self.negotiated().has(ProtocolFlags::HEADER_LEADING_SPACE);
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
                if self.negotiated().actions.contains(action) {
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

/// Reads until `buf` is full or the reader ends; returns the bytes read.
async fn read_full<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = r.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}
