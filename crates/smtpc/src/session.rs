//! One outbound SMTP session over TCP, optionally upgraded with STARTTLS or
//! wrapped in implicit TLS. See the crate docs for the flow and `# Security`.

use std::fmt;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use postern_proto::{EhloInfo, Reply, ReplyParser, parse_ehlo};
use postern_tls::TlsVersion;
use postern_tls::cause::{Peer, classify_outbound};
use postern_tls::client::{ClientTls, client_facts};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::body::BodyEncoder;
use crate::error::{ClientError, Stage};
use crate::{
    AuthMechanism, ClientSettings, Direction, OutEnvelope, OutRecipient, TlsInfo,
    TransactionOutcome, Transcript,
};

/// Bytes read from the body per step, and the BDAT chunk size.
const CHUNK: usize = 64 * 1024;
/// Socket read buffer.
const READ_BUF: usize = 16 * 1024;

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Closed,
}

impl Stream {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => s.read(buf).await,
            Stream::Closed => Err(io::Error::from(io::ErrorKind::NotConnected)),
        }
    }

    async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(data).await,
            Stream::Tls(s) => {
                s.write_all(data).await?;
                // tokio-rustls buffers records until flushed.
                s.flush().await
            }
            Stream::Closed => Err(io::Error::from(io::ErrorKind::NotConnected)),
        }
    }

    async fn shutdown(&mut self) {
        // Best effort: TLS close_notify, then FIN. The peer may be gone.
        match self {
            Stream::Plain(s) => {
                let _ = s.shutdown().await;
            }
            Stream::Tls(s) => {
                let _ = s.shutdown().await;
            }
            Stream::Closed => {}
        }
        *self = Stream::Closed;
    }
}

/// An outbound SMTP session. Create it with [`Session::connect`] or
/// [`Session::connect_tls`]; end it with [`Session::quit`].
pub struct Session {
    stream: Stream,
    parser: ReplyParser,
    settings: ClientSettings,
    transcript: Option<Transcript>,
    ehlo: Option<EhloInfo>,
    tls: Option<TlsInfo>,
    peer: SocketAddr,
    /// The server name and the versions we offered, once TLS is attempted:
    /// a TLS error met after the handshake is classified with them.
    tls_peer: Option<(String, Vec<TlsVersion>)>,
    buf: Box<[u8]>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("peer", &self.peer)
            .field("tls", &self.tls.as_ref().map(|t| &t.facts))
            .field("ehlo", &self.ehlo)
            .finish_non_exhaustive()
    }
}

async fn tcp_connect(
    addr: SocketAddr,
    settings: &ClientSettings,
    transcript: &mut Option<Transcript>,
) -> Result<TcpStream, ClientError> {
    if let Some(t) = transcript.as_mut() {
        t(Direction::Event, &format!("connecting to {addr}"));
    }
    let stream =
        match tokio::time::timeout(settings.connect_timeout, TcpStream::connect(addr)).await {
            Err(_) => {
                return Err(ClientError::Timeout {
                    stage: Stage::Connect,
                });
            }
            Ok(Err(source)) => return Err(ClientError::Connect { addr, source }),
            Ok(Ok(s)) => s,
        };
    // Commands are batched by us (pipelining); Nagle would only add latency.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

impl Session {
    fn new(
        stream: Stream,
        peer: SocketAddr,
        settings: &ClientSettings,
        transcript: Option<Transcript>,
    ) -> Self {
        Self {
            stream,
            parser: ReplyParser::new(),
            settings: settings.clone(),
            transcript,
            ehlo: None,
            tls: None,
            peer,
            tls_peer: None,
            buf: vec![0u8; READ_BUF].into_boxed_slice(),
        }
    }

    /// Connects in plaintext and reads the greeting. A greeting other than
    /// 220 (e.g. `554 no service`) is [`ClientError::UnexpectedReply`] after a
    /// polite QUIT (RFC 5321 §3.1).
    pub async fn connect(
        addr: SocketAddr,
        settings: &ClientSettings,
        transcript: Option<Transcript>,
    ) -> Result<(Session, Reply), ClientError> {
        let mut transcript = transcript;
        let tcp = tcp_connect(addr, settings, &mut transcript).await?;
        let mut session = Session::new(Stream::Plain(tcp), addr, settings, transcript);
        session.event(&format!("connected to {addr}"));
        let banner = session.banner().await?;
        Ok((session, banner))
    }

    /// Connects with implicit TLS (RFC 8314, port 465): the handshake comes
    /// first, with SNI `server_name`, then the greeting.
    pub async fn connect_tls(
        addr: SocketAddr,
        server_name: &str,
        tls: &ClientTls,
        settings: &ClientSettings,
        transcript: Option<Transcript>,
    ) -> Result<(Session, Reply, TlsInfo), ClientError> {
        let mut transcript = transcript;
        let tcp = tcp_connect(addr, settings, &mut transcript).await?;
        let mut session = Session::new(Stream::Closed, addr, settings, transcript);
        session.event(&format!("connected to {addr}"));
        let (stream, info) = session.handshake(tcp, server_name, tls).await?;
        session.stream = Stream::Tls(Box::new(stream));
        session.tls = Some(info.clone());
        let banner = session.banner().await?;
        Ok((session, banner, info))
    }

    async fn banner(&mut self) -> Result<Reply, ClientError> {
        let reply = self
            .read_reply(Stage::Banner, self.settings.greeting_timeout)
            .await?;
        if reply.code != 220 {
            // RFC 5321 §3.1: after a 554 greeting the client sends QUIT;
            // whatever happens to it does not change the outcome.
            if self.send_line(Stage::Quit, "QUIT").await.is_ok() {
                let _ = self.read_reply(Stage::Quit, Duration::from_secs(5)).await;
            }
            self.stream.shutdown().await;
            return Err(ClientError::UnexpectedReply {
                stage: Stage::Banner,
                reply,
            });
        }
        Ok(reply)
    }

    /// Sends EHLO and records the extensions; falls back to HELO when EHLO
    /// is refused with 500, 501, 502, 504 or 550 (RFC 5321 §3.2, §4.1.4).
    /// After STARTTLS the caller must call this again (RFC 3207 §4.2).
    pub async fn ehlo(&mut self) -> Result<EhloInfo, ClientError> {
        let helo = self.settings.helo_name.clone();
        if helo.is_empty() || helo.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ClientError::Invalid {
                stage: Stage::Ehlo,
                detail: format!(
                    "helo name {helo:?} must be one word (our FQDN or an address literal)"
                ),
            });
        }
        self.send_line(Stage::Ehlo, &format!("EHLO {helo}")).await?;
        let reply = self
            .read_reply(Stage::Ehlo, self.settings.command_timeout)
            .await?;
        let info = if reply.code == 250 {
            parse_ehlo(&reply)
        } else if matches!(reply.code, 500 | 501 | 502 | 504 | 550) {
            self.event("EHLO refused; falling back to HELO (no extensions)");
            self.send_line(Stage::Ehlo, &format!("HELO {helo}")).await?;
            let reply = self
                .read_reply(Stage::Ehlo, self.settings.command_timeout)
                .await?;
            if reply.code != 250 {
                return Err(ClientError::UnexpectedReply {
                    stage: Stage::Ehlo,
                    reply,
                });
            }
            let first = reply.lines.first().map_or("", |l| l.trim());
            let (host, greeting) = first.split_once(' ').unwrap_or((first, ""));
            EhloInfo {
                hostname: host.to_owned(),
                greeting: greeting.trim().to_owned(),
                ..EhloInfo::default()
            }
        } else {
            return Err(ClientError::UnexpectedReply {
                stage: Stage::Ehlo,
                reply,
            });
        };
        self.ehlo = Some(info.clone());
        Ok(info)
    }

    /// STARTTLS, then the handshake with SNI `server_name` (the MX name).
    /// The EHLO information is forgotten: call [`Session::ehlo`] again.
    /// Refused when the last EHLO did not offer STARTTLS
    /// ([`ClientError::NotOffered`]) — the caller's policy decides whether
    /// that means plaintext or defer.
    pub async fn starttls(
        &mut self,
        server_name: &str,
        tls: &ClientTls,
    ) -> Result<TlsInfo, ClientError> {
        if self.is_tls() {
            return Err(ClientError::Protocol {
                stage: Stage::StartTls,
                detail: "the connection is already encrypted".to_owned(),
            });
        }
        if self.ehlo.as_ref().is_some_and(|e| !e.starttls) {
            return Err(ClientError::NotOffered {
                stage: Stage::StartTls,
                extension: "STARTTLS".to_owned(),
            });
        }
        self.send_line(Stage::StartTls, "STARTTLS").await?;
        let reply = self
            .read_reply(Stage::StartTls, self.settings.command_timeout)
            .await?;
        if reply.code != 220 {
            return Err(ClientError::UnexpectedReply {
                stage: Stage::StartTls,
                reply,
            });
        }
        // RFC 3207 §4.2: nothing from before the handshake may be read as a
        // reply after it (response injection by a man in the middle).
        let extra = self.parser.buffered();
        if extra > 0 {
            self.event(&format!(
                "discarded {extra} octets the server sent after its 220 to STARTTLS"
            ));
        }
        self.parser.clear();
        self.ehlo = None;
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Closed) else {
            return Err(ClientError::Protocol {
                stage: Stage::StartTls,
                detail: "the connection is closed".to_owned(),
            });
        };
        let (stream, info) = self.handshake(tcp, server_name, tls).await?;
        self.stream = Stream::Tls(Box::new(stream));
        self.tls = Some(info.clone());
        Ok(info)
    }

    async fn handshake(
        &mut self,
        tcp: TcpStream,
        server_name: &str,
        tls: &ClientTls,
    ) -> Result<(TlsStream<TcpStream>, TlsInfo), ClientError> {
        let host = server_name.trim_end_matches('.');
        let name = ServerName::try_from(host.to_owned()).map_err(|e| ClientError::Invalid {
            stage: Stage::TlsHandshake,
            detail: format!("{server_name:?} is not a valid server name: {e}"),
        })?;
        let sni = matches!(name, ServerName::DnsName(_)).then(|| host.to_owned());
        let connector = TlsConnector::from(Arc::clone(tls.config()));
        let result =
            tokio::time::timeout(self.settings.command_timeout, connector.connect(name, tcp)).await;
        let stream = match result {
            Err(_) => {
                let err = io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out");
                return Err(self.tls_failure(&err, tls, host));
            }
            Ok(Err(err)) => return Err(self.tls_failure(&err, tls, host)),
            Ok(Ok(stream)) => stream,
        };
        let (_, conn) = stream.get_ref();
        let facts = client_facts(conn, sni.as_deref()).ok_or_else(|| ClientError::Protocol {
            stage: Stage::TlsHandshake,
            detail: "the handshake completed without a negotiated version or suite".to_owned(),
        })?;
        let verdict = tls.peer_verdict(conn, host).map(|mut v| {
            v.port = Some(self.peer.port());
            v
        });
        self.tls_peer = Some((host.to_owned(), tls.offered_versions().to_vec()));
        let info = TlsInfo { facts, verdict };
        self.event(&format!("TLS: {}", info.summary()));
        Ok((stream, info))
    }

    fn tls_failure(&mut self, err: &io::Error, tls: &ClientTls, host: &str) -> ClientError {
        self.tls_peer = Some((host.to_owned(), tls.offered_versions().to_vec()));
        self.classify_tls(Stage::TlsHandshake, err)
    }

    /// A TLS error (handshake, or a later read/write that carries one) as a
    /// catalogue cause, with the advice of the settings.
    fn classify_tls(&mut self, stage: Stage, err: &io::Error) -> ClientError {
        let (host, offered) = self.tls_peer.clone().unwrap_or_default();
        let peer = Peer {
            host: &host,
            port: self.peer.port(),
            offered: &offered,
        };
        let cause = classify_outbound(err, &peer, &self.settings.advice);
        self.event(&format!("TLS failed: {}: {}", cause.id, cause.summary));
        ClientError::Tls { stage, cause }
    }

    /// A socket error; one that carries a TLS error (an alert after the
    /// handshake, e.g. a refused client certificate in TLS 1.3, RFC 8446
    /// §4.4.2.4) is classified with the TLS catalogue, not as a socket error.
    fn io_failure(&mut self, stage: Stage, source: io::Error) -> ClientError {
        let carries_tls = source
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
        if carries_tls && self.tls_peer.is_some() {
            self.classify_tls(stage, &source)
        } else {
            ClientError::Io { stage, source }
        }
    }

    /// Authenticates (RFC 4954). Refused without TLS unless
    /// `allow_plaintext_auth`, and when the mechanism is not offered. The
    /// transcript shows `[redacted]` for every credential line.
    pub async fn auth(
        &mut self,
        mechanism: AuthMechanism,
        user: &str,
        password: &str,
    ) -> Result<(), ClientError> {
        if !self.is_tls() && !self.settings.allow_plaintext_auth {
            return Err(ClientError::Insecure {
                stage: Stage::Auth,
                detail: "AUTH on a connection without TLS would send the password in clear; \
                         use STARTTLS or implicit TLS first"
                    .to_owned(),
            });
        }
        let Some(info) = &self.ehlo else {
            return Err(ClientError::Protocol {
                stage: Stage::Auth,
                detail: "EHLO must come before AUTH".to_owned(),
            });
        };
        if !info.has_auth(mechanism.as_str()) {
            return Err(ClientError::AuthNotOffered {
                mechanism: mechanism.as_str().to_owned(),
                offered: info.auth.clone(),
                tls: self.is_tls(),
            });
        }
        if user.contains('\0') || password.contains('\0') {
            return Err(ClientError::Invalid {
                stage: Stage::Auth,
                detail: "user name and password must not contain NUL".to_owned(),
            });
        }
        let reply = match mechanism {
            AuthMechanism::Plain => {
                // RFC 4616 §2: authzid NUL authcid NUL passwd; empty authzid.
                let payload = B64.encode(format!("\0{user}\0{password}"));
                self.send_secret(&format!("AUTH PLAIN {payload}"), "AUTH PLAIN [redacted]")
                    .await?;
                self.read_reply(Stage::Auth, self.settings.command_timeout)
                    .await?
            }
            AuthMechanism::Login => {
                self.send_line(Stage::Auth, "AUTH LOGIN").await?;
                for secret in [user, password] {
                    let challenge = self
                        .read_reply(Stage::Auth, self.settings.command_timeout)
                        .await?;
                    if challenge.code != 334 {
                        return Err(ClientError::UnexpectedReply {
                            stage: Stage::Auth,
                            reply: challenge,
                        });
                    }
                    self.send_secret(&B64.encode(secret), "[redacted]").await?;
                }
                self.read_reply(Stage::Auth, self.settings.command_timeout)
                    .await?
            }
        };
        if reply.code == 235 {
            Ok(())
        } else {
            Err(ClientError::UnexpectedReply {
                stage: Stage::Auth,
                reply,
            })
        }
    }

    /// Sends one transaction: MAIL (SIZE, BODY, SMTPUTF8, RET, ENVID as
    /// offered), each RCPT (NOTIFY, ORCPT when DSN is offered), then DATA (or
    /// BDAT with `prefer_chunking` and CHUNKING offered) with the body
    /// streamed through the [`BodyEncoder`]. With PIPELINING (RFC 2920) MAIL,
    /// the RCPTs and DATA go out in one write and the replies are read after.
    ///
    /// 4xx/5xx replies are outcomes, never errors. When no RCPT is accepted
    /// no data is sent (after a pipelined DATA that got 354 anyway, an empty
    /// data section is ended at once, RFC 2920 §3.1). If reading `body`
    /// fails, the connection is dropped without the terminator, so the
    /// server discards the partial message ([`ClientError::Body`]).
    pub async fn send(
        &mut self,
        envelope: &OutEnvelope,
        body: &mut (dyn AsyncRead + Unpin + Send),
    ) -> Result<TransactionOutcome, ClientError> {
        let Some(info) = self.ehlo.clone() else {
            return Err(ClientError::Protocol {
                stage: Stage::Mail,
                detail: "EHLO must come before MAIL".to_owned(),
            });
        };
        if envelope.rcpts.is_empty() {
            return Err(ClientError::Invalid {
                stage: Stage::Rcpt,
                detail: "the envelope has no recipients".to_owned(),
            });
        }
        let mail = self.mail_command(envelope, &info)?;
        let rcpts = envelope
            .rcpts
            .iter()
            .map(|r| rcpt_command(r, &info))
            .collect::<Result<Vec<_>, _>>()?;
        let bdat = self.settings.prefer_chunking && info.chunking;
        let cmd_timeout = self.settings.command_timeout;

        if info.pipelining {
            let mut batch = Vec::with_capacity(64 * (rcpts.len() + 2));
            let mut lines = vec![mail.as_str()];
            lines.extend(rcpts.iter().map(String::as_str));
            if !bdat {
                lines.push("DATA");
            }
            for line in &lines {
                self.log(Direction::Sent, line);
                batch.extend_from_slice(line.as_bytes());
                batch.extend_from_slice(b"\r\n");
            }
            self.write(Stage::Mail, &batch).await?;
            let mail_reply = self.read_reply(Stage::Mail, cmd_timeout).await?;
            let mut rcpt_replies = Vec::with_capacity(rcpts.len());
            for _ in &rcpts {
                rcpt_replies.push(self.read_reply(Stage::Rcpt, cmd_timeout).await?);
            }
            let accepted = mail_reply.is_positive() && rcpt_replies.iter().any(Reply::is_positive);
            let data = if bdat {
                if accepted {
                    Some(self.send_bdat(body).await?)
                } else {
                    None
                }
            } else {
                let data_reply = self.read_reply(Stage::Data, cmd_timeout).await?;
                if !accepted {
                    if data_reply.code == 354 {
                        // RFC 2920 §3.1: DATA was accepted although no RCPT was;
                        // end the empty data section (the server refuses it).
                        self.send_line(Stage::Data, ".").await?;
                        self.read_reply(Stage::DataEnd, self.settings.data_timeout)
                            .await?;
                    }
                    None
                } else if data_reply.code == 354 {
                    Some(self.send_data_body(body).await?)
                } else {
                    Some(data_reply)
                }
            };
            return Ok(TransactionOutcome {
                mail: mail_reply,
                rcpts: rcpt_replies,
                data,
            });
        }

        self.send_line(Stage::Mail, &mail).await?;
        let mail_reply = self.read_reply(Stage::Mail, cmd_timeout).await?;
        if !mail_reply.is_positive() {
            return Ok(TransactionOutcome {
                mail: mail_reply,
                rcpts: Vec::new(),
                data: None,
            });
        }
        let mut rcpt_replies = Vec::with_capacity(rcpts.len());
        for rcpt in &rcpts {
            self.send_line(Stage::Rcpt, rcpt).await?;
            rcpt_replies.push(self.read_reply(Stage::Rcpt, cmd_timeout).await?);
        }
        let data = if !rcpt_replies.iter().any(Reply::is_positive) {
            None
        } else if bdat {
            Some(self.send_bdat(body).await?)
        } else {
            self.send_line(Stage::Data, "DATA").await?;
            let reply = self.read_reply(Stage::Data, cmd_timeout).await?;
            if reply.code == 354 {
                Some(self.send_data_body(body).await?)
            } else {
                Some(reply)
            }
        };
        Ok(TransactionOutcome {
            mail: mail_reply,
            rcpts: rcpt_replies,
            data,
        })
    }

    fn mail_command(
        &mut self,
        envelope: &OutEnvelope,
        info: &EhloInfo,
    ) -> Result<String, ClientError> {
        check_path(Stage::Mail, &envelope.mail_from)?;
        let mut cmd = format!("MAIL FROM:<{}>", envelope.mail_from);
        if info.size.is_some()
            && let Some(size) = envelope.size
        {
            let _ = write!(cmd, " SIZE={size}");
        }
        if let Some(body) = &envelope.body {
            check_param(Stage::Mail, "BODY", body)?;
            if info.eightbitmime {
                let _ = write!(cmd, " BODY={body}");
            } else if !body.eq_ignore_ascii_case("7BIT") {
                self.event(&format!(
                    "the server does not offer 8BITMIME; BODY={body} not sent (RFC 6152 §3)"
                ));
            }
        }
        let non_ascii =
            !envelope.mail_from.is_ascii() || envelope.rcpts.iter().any(|r| !r.address.is_ascii());
        if envelope.smtputf8 || non_ascii {
            if info.smtputf8 {
                cmd.push_str(" SMTPUTF8");
            } else {
                self.event("the server does not offer SMTPUTF8 (RFC 6531)");
            }
        }
        let has_dsn = envelope.ret.is_some()
            || envelope.envid.is_some()
            || envelope
                .rcpts
                .iter()
                .any(|r| r.notify.is_some() || r.orcpt.is_some());
        if info.dsn {
            if let Some(ret) = &envelope.ret {
                check_param(Stage::Mail, "RET", ret)?;
                let _ = write!(cmd, " RET={ret}");
            }
            if let Some(envid) = &envelope.envid {
                check_param(Stage::Mail, "ENVID", envid)?;
                let _ = write!(cmd, " ENVID={envid}");
            }
        } else if has_dsn {
            self.event("the server does not offer DSN; RET/ENVID/NOTIFY/ORCPT not sent (RFC 3461)");
        }
        Ok(cmd)
    }

    async fn send_data_body(
        &mut self,
        body: &mut (dyn AsyncRead + Unpin + Send),
    ) -> Result<Reply, ClientError> {
        let mut encoder = BodyEncoder::for_data();
        let mut input = vec![0u8; CHUNK];
        let mut out = Vec::with_capacity(CHUNK + CHUNK / 16);
        let mut total: u64 = 0;
        loop {
            let n = self.read_body(body, &mut input).await?;
            if n == 0 {
                break;
            }
            // Each chunk is written once the next one is known to exist, so
            // the last one goes out in the same write as the final dot: a
            // small message is one segment, not two (one wake-up of the
            // server, one send of ours fewer).
            if !out.is_empty() {
                self.write(Stage::Data, &out).await?;
                total += out.len() as u64;
                out.clear();
            }
            encoder.encode(&input[..n], &mut out);
        }
        encoder.finish(&mut out);
        self.write(Stage::Data, &out).await?;
        total += out.len() as u64;
        self.data_event(total, &encoder);
        self.log(Direction::Sent, ".");
        self.read_reply(Stage::DataEnd, self.settings.data_timeout)
            .await
    }

    /// RFC 3030: full chunks as `BDAT n`, each acknowledged before the next;
    /// the rest (possibly empty) as `BDAT n LAST`. A refused chunk ends the
    /// transaction with that reply.
    async fn send_bdat(
        &mut self,
        body: &mut (dyn AsyncRead + Unpin + Send),
    ) -> Result<Reply, ClientError> {
        let mut encoder = BodyEncoder::for_bdat();
        let mut input = vec![0u8; CHUNK];
        let mut pending = Vec::with_capacity(CHUNK * 2);
        let mut total: u64 = 0;
        loop {
            let n = self.read_body(body, &mut input).await?;
            if n == 0 {
                encoder.finish(&mut pending);
                total += pending.len() as u64;
                self.data_event(total, &encoder);
                let cmd = format!("BDAT {} LAST", pending.len());
                self.log(Direction::Sent, &cmd);
                let mut wire = Vec::with_capacity(cmd.len() + 2 + pending.len());
                wire.extend_from_slice(cmd.as_bytes());
                wire.extend_from_slice(b"\r\n");
                wire.extend_from_slice(&pending);
                self.write(Stage::Data, &wire).await?;
                return self
                    .read_reply(Stage::DataEnd, self.settings.data_timeout)
                    .await;
            }
            encoder.encode(&input[..n], &mut pending);
            if pending.len() >= CHUNK {
                let cmd = format!("BDAT {}", pending.len());
                self.log(Direction::Sent, &cmd);
                self.write(Stage::Data, format!("{cmd}\r\n").as_bytes())
                    .await?;
                self.write(Stage::Data, &pending).await?;
                total += pending.len() as u64;
                pending.clear();
                let reply = self
                    .read_reply(Stage::Data, self.settings.command_timeout)
                    .await?;
                if !(200..300).contains(&reply.code) {
                    return Ok(reply);
                }
            }
        }
    }

    async fn read_body(
        &mut self,
        body: &mut (dyn AsyncRead + Unpin + Send),
        buf: &mut [u8],
    ) -> Result<usize, ClientError> {
        match body.read(buf).await {
            Ok(n) => Ok(n),
            Err(source) => {
                // Never send the terminator after a partial body: drop the
                // connection so the server discards what it got.
                self.event("reading the message failed; closing without ending the data");
                self.stream = Stream::Closed;
                Err(ClientError::Body { source })
            }
        }
    }

    fn data_event(&mut self, total: u64, encoder: &BodyEncoder) {
        let mut text = format!("message data: {total} octets");
        let fixed = encoder.fixed_line_ends();
        if fixed > 0 {
            let _ = write!(text, ", {fixed} bare CR/LF turned into CRLF");
        }
        self.event(&text);
    }

    /// RSET (RFC 5321 §4.1.1.5): returns the reply, whatever it is.
    pub async fn rset(&mut self) -> Result<Reply, ClientError> {
        self.send_line(Stage::Rset, "RSET").await?;
        self.read_reply(Stage::Rset, self.settings.command_timeout)
            .await
    }

    /// QUIT, wait for the reply (any, or none if the server just closes),
    /// then close (TLS close_notify first). Errs only when QUIT cannot be
    /// sent.
    pub async fn quit(mut self) -> Result<(), ClientError> {
        let sent = self.send_line(Stage::Quit, "QUIT").await;
        if sent.is_ok() {
            let _ = self
                .read_reply(Stage::Quit, self.settings.command_timeout)
                .await;
        }
        self.stream.shutdown().await;
        sent
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// The extensions of the last EHLO; `None` before EHLO and right after
    /// STARTTLS.
    pub fn ehlo_info(&self) -> Option<&EhloInfo> {
        self.ehlo.as_ref()
    }

    /// The TLS facts and verdict, once encrypted.
    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The deadline of each command reply.
    pub(crate) fn command_timeout(&self) -> Duration {
        self.settings.command_timeout
    }

    fn log(&mut self, direction: Direction, line: &str) {
        if let Some(t) = self.transcript.as_mut() {
            t(direction, line);
        }
    }

    fn event(&mut self, text: &str) {
        self.log(Direction::Event, text);
    }

    async fn write(&mut self, stage: Stage, data: &[u8]) -> Result<(), ClientError> {
        match tokio::time::timeout(self.settings.command_timeout, self.stream.write_all(data)).await
        {
            Err(_) => Err(ClientError::Timeout { stage }),
            Ok(Err(source)) => Err(self.io_failure(stage, source)),
            Ok(Ok(())) => Ok(()),
        }
    }

    pub(crate) async fn send_line(&mut self, stage: Stage, line: &str) -> Result<(), ClientError> {
        self.log(Direction::Sent, line);
        let mut wire = Vec::with_capacity(line.len() + 2);
        wire.extend_from_slice(line.as_bytes());
        wire.extend_from_slice(b"\r\n");
        self.write(stage, &wire).await
    }

    /// Sends `line` but shows `shown` in the transcript.
    async fn send_secret(&mut self, line: &str, shown: &str) -> Result<(), ClientError> {
        self.log(Direction::Sent, shown);
        let mut wire = Vec::with_capacity(line.len() + 2);
        wire.extend_from_slice(line.as_bytes());
        wire.extend_from_slice(b"\r\n");
        self.write(Stage::Auth, &wire).await
    }

    pub(crate) async fn read_reply(
        &mut self,
        stage: Stage,
        timeout: Duration,
    ) -> Result<Reply, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.parser.next_reply() {
                Ok(Some(reply)) => {
                    let wire = reply.to_bytes();
                    let text = String::from_utf8_lossy(&wire);
                    for line in text.lines() {
                        self.log(Direction::Received, line);
                    }
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(ClientError::Protocol {
                        stage,
                        detail: e.to_string(),
                    });
                }
            }
            let n = match tokio::time::timeout_at(deadline, self.stream.read(&mut self.buf)).await {
                Err(_) => return Err(ClientError::Timeout { stage }),
                Ok(Err(source)) => return Err(self.io_failure(stage, source)),
                Ok(Ok(n)) => n,
            };
            if n == 0 {
                return Err(ClientError::Io {
                    stage,
                    source: io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    ),
                });
            }
            let Some(received) = self.buf.get(..n) else {
                continue;
            };
            self.parser.feed(received);
        }
    }
}

fn rcpt_command(rcpt: &OutRecipient, info: &EhloInfo) -> Result<String, ClientError> {
    check_path(Stage::Rcpt, &rcpt.address)?;
    if rcpt.address.is_empty() {
        return Err(ClientError::Invalid {
            stage: Stage::Rcpt,
            detail: "empty recipient address".to_owned(),
        });
    }
    let mut cmd = format!("RCPT TO:<{}>", rcpt.address);
    if info.dsn {
        if let Some(notify) = &rcpt.notify {
            check_param(Stage::Rcpt, "NOTIFY", notify)?;
            let _ = write!(cmd, " NOTIFY={notify}");
        }
        if let Some(orcpt) = &rcpt.orcpt {
            check_param(Stage::Rcpt, "ORCPT", orcpt)?;
            let _ = write!(cmd, " ORCPT={orcpt}");
        }
    }
    Ok(cmd)
}

/// A path goes between angle brackets on a command line: no control
/// characters (CR/LF would inject commands), no brackets.
pub(crate) fn check_path(stage: Stage, path: &str) -> Result<(), ClientError> {
    if let Some(bad) = path
        .chars()
        .find(|c| c.is_control() || matches!(c, '<' | '>'))
    {
        return Err(ClientError::Invalid {
            stage,
            detail: format!("address {path:?} contains {bad:?}"),
        });
    }
    if path.len() > 998 {
        return Err(ClientError::Invalid {
            stage,
            detail: "address longer than a command line allows".to_owned(),
        });
    }
    Ok(())
}

/// A parameter value (xtext, keywords): one word without controls.
fn check_param(stage: Stage, name: &str, value: &str) -> Result<(), ClientError> {
    if value.is_empty() || value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ClientError::Invalid {
            stage,
            detail: format!("{name}= value {value:?} must be one word without control characters"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injection_is_refused() {
        assert!(check_path(Stage::Mail, "a@b.example").is_ok());
        assert!(check_path(Stage::Mail, "").is_ok());
        assert!(check_path(Stage::Mail, "\"john doe\"@b.example").is_ok());
        for bad in ["a@b\r\nRCPT TO:<x@y>", "a@b\n", "a>b@c", "a\0@b"] {
            let err = check_path(Stage::Rcpt, bad).err();
            assert!(
                matches!(
                    err,
                    Some(ClientError::Invalid {
                        stage: Stage::Rcpt,
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
        assert!(check_param(Stage::Mail, "ENVID", "abc+2B").is_ok());
        assert!(check_param(Stage::Mail, "ENVID", "a b").is_err());
        assert!(check_param(Stage::Mail, "ENVID", "a\r\nQUIT").is_err());
        assert!(check_param(Stage::Mail, "ENVID", "").is_err());
    }

    #[test]
    fn rcpt_parameters_only_with_dsn() {
        let rcpt = OutRecipient {
            address: "u@example.com".into(),
            notify: Some("SUCCESS,FAILURE".into()),
            orcpt: Some("rfc822;u@example.com".into()),
        };
        let plain = rcpt_command(&rcpt, &EhloInfo::default()).ok();
        assert_eq!(plain.as_deref(), Some("RCPT TO:<u@example.com>"));
        let dsn = EhloInfo {
            dsn: true,
            ..EhloInfo::default()
        };
        assert_eq!(
            rcpt_command(&rcpt, &dsn).ok().as_deref(),
            Some("RCPT TO:<u@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;u@example.com")
        );
    }
}
