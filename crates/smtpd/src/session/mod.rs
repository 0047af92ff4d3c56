//! One SMTP session's I/O: the thin async loop around the sans-I/O machine
//! (`postern_proto::session::Session`).
//!
//! The loop reads bytes into `inbuf`, takes complete lines out with the
//! limit-enforcing `LineReader`, feeds them to the machine and carries out the
//! actions it asks for: replies (collected in `out` and written when the input
//! holds no further complete command, so a pipelined group gets its replies in
//! one write and a multi-line reply is always one write — RFC 2920 §3.2;
//! scanners such as nmap/sslscan depend on it), policy stages (`stages.rs`),
//! credential checks (`crate::auth`), STARTTLS (`starttls.rs`), message bodies
//! and the spool commit (`data.rs`). Every decision is the machine's; this
//! module only moves bytes and waits.
//!
//! Generic over the byte stream (`AsyncRead + AsyncWrite`): the server passes
//! a `TcpStream`, tests an in-memory duplex pipe.
//!
//! # Security
//! Every byte comes from an untrusted peer. Memory per session is bounded by
//! the line limit and the body flush threshold. Every wait has a deadline: a
//! whole command line within `command_timeout` (not reset by each byte, so a
//! trickling client is cut off), a body within a budget that grows only with
//! `min_data_rate`, each write within `write_timeout` (a client that stops
//! reading cannot hold its slot), the TLS handshake within its timeout. A
//! deadline closes the session with `421 4.4.2`, counted on the disconnect
//! line.
//!
//! # Standards
//! RFC 5321 §4.5.3.2 (timeouts), RFC 2920 (PIPELINING), RFC 3207 (STARTTLS),
//! RFC 4954 (AUTH).

mod bans;
mod commit;
mod content;
mod data;
mod events;
#[cfg(test)]
mod gateway_tests;
mod greylist;
mod mailauth;
mod milter_stage;
mod notify;
mod recipients;
#[cfg(test)]
mod review_tests;
mod stages;
mod starttls;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use postern_proto::session::{Action, Event, Session as Machine, SessionConfig};
use postern_proto::{Line, LineReader, Reply};
use postern_spool::Spool;
use postern_tls::facts::TlsFacts;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::conn::Conn;
use crate::server::Shared;
use crate::settings::{ListenerKind, ListenerSettings};
use crate::transcript::{Direction, Transcript};

/// Initial read buffer; it grows only while a long line or DATA is arriving.
const READ_CHUNK: usize = 4096;

/// Why a read ended without data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadEnd {
    /// The peer closed the connection (or it broke).
    Closed,
    /// The deadline passed.
    Timeout,
    /// The server is shutting down.
    Shutdown,
}

/// Why the session ended (the disconnect line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    ClosedByPeer,
    ClosedByServer,
    WriteTimeout,
    WriteFailed,
    TlsFailed,
    PolicyRefused,
}

impl End {
    fn as_str(self) -> &'static str {
        match self {
            End::ClosedByPeer => "closed by peer",
            End::ClosedByServer => "closed by server",
            End::WriteTimeout => "write timeout",
            End::WriteFailed => "write failed",
            End::TlsFailed => "TLS handshake failed",
            End::PolicyRefused => "connection refused by mail-flow policy",
        }
    }
}

/// What the session needs from the server, fixed for the session's lifetime.
pub(crate) struct Context {
    pub(crate) shared: Arc<Shared>,
    pub(crate) listener: ListenerSettings,
    pub(crate) spool: Spool,
    pub(crate) transcript: Option<Transcript>,
    pub(crate) on_queued: Option<crate::server::QueuedHook>,
    pub(crate) shutdown: CancellationToken,
    /// The resolver sender groups ask (PTR, FCrDNS, DNS lists).
    pub(crate) resolver: Option<postern_dns::Resolver>,
    /// Rate, DHAP and greylisting counters (shared by all sessions).
    pub(crate) counters: crate::counting::Counters,
    /// Where session events go (`None`: nowhere).
    pub(crate) mail_log: Option<postern_track::MailLog>,
    /// DMARC aggregate-report recorder (`None`: reports off).
    pub(crate) dmarc_reports: Option<postern_auth::report::ReportRecorder>,
    /// Sessions open from the client's address, this one included.
    pub(crate) ip_sessions: usize,
    /// The load balancer the client came through (PROXY protocol), if any.
    pub(crate) proxy: Option<SocketAddr>,
}

pub(crate) struct Session<S> {
    id: Arc<str>,
    ctx: Context,
    conn: Conn<S>,
    peer: SocketAddr,
    inbuf: BytesMut,
    out: Vec<u8>,
    lines: LineReader,
    machine: Machine,
    /// The full facts of the handshake (the machine keeps version and cipher).
    tls: Option<TlsFacts>,
    /// The deadline of the command line being received.
    line_deadline: Option<Instant>,
    /// The message body in progress (BDAT between chunks, or complete and
    /// waiting for the data-end stage and the commit).
    body: Option<data::Body>,
    /// One span per transaction (MAIL … end of data), child of the session's;
    /// gains `queue_id` at the commit.
    tx_span: Option<tracing::Span>,
    /// Sender group and mail-flow policy state.
    gate: stages::Gate,
    /// SPF checked at MAIL FROM (`spf_at = "mail"`), reused at end of data.
    spf_at_mail: Option<postern_auth::verify::SpfVerdicts>,
    /// Notifications a rule asked for on a message it then dropped or
    /// refused (`session/notify.rs`), with what happened.
    refused_notify: Vec<(postern_filter::Notify, String)>,
    /// Session events logged so far (numbers their event ids).
    events: std::cell::Cell<u32>,
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    pub(crate) fn new(id: Arc<str>, ctx: Context, stream: S, peer: SocketAddr) -> Self {
        let config = session_config(&ctx);
        let machine = Machine::new(config, peer.ip(), ctx.listener.name.clone(), None);
        let lines = LineReader::new(machine.line_limit());
        let gate = stages::Gate::new(postern_policy::admission::ClientFacts::new(
            peer.ip(),
            ctx.listener.name.clone(),
        ));
        Self {
            id,
            ctx,
            conn: Conn::Plain(stream),
            peer,
            inbuf: BytesMut::new(),
            out: Vec::new(),
            lines,
            machine,
            tls: None,
            line_deadline: None,
            body: None,
            tx_span: None,
            gate,
            spf_at_mail: None,
            refused_notify: Vec::new(),
            events: std::cell::Cell::new(0),
        }
    }

    /// A session whose connection is already encrypted as far as policy is
    /// concerned (`postern trace --tls`).
    pub(crate) fn new_for_trace(
        id: Arc<str>,
        ctx: Context,
        stream: S,
        peer: SocketAddr,
        tls: Option<postern_proto::session::TlsInfo>,
    ) -> Self {
        let mut s = Self::new(id, ctx, stream, peer);
        if tls.is_some() {
            let config = session_config(&s.ctx);
            s.machine = Machine::new(config, peer.ip(), s.ctx.listener.name.clone(), tls);
        }
        s
    }

    /// Runs the session to its end.
    pub(crate) async fn run(mut self) {
        let via = self
            .ctx
            .proxy
            .map(|p| format!(" via proxy {p}"))
            .unwrap_or_default();
        self.event(&format!(
            "connect from {}{via} to listener {} ({:?})",
            self.peer, self.ctx.listener.name, self.ctx.listener.kind
        ));
        if self.ctx.listener.kind == ListenerKind::Submissions {
            // RFC 8314 §3.3: implicit TLS, the handshake comes before the greeting.
            if self.handshake().await.is_err() {
                self.event("disconnect (TLS handshake failed)");
                return;
            }
            if let Some(info) = self.tls.as_ref().map(tls_info) {
                let config = session_config(&self.ctx);
                self.machine = Machine::new(
                    config,
                    self.peer.ip(),
                    self.ctx.listener.name.clone(),
                    Some(info),
                );
            }
        }
        self.machine.handle(Event::Connected);
        let end = self.drive().await;
        if !matches!(end, End::WriteTimeout | End::WriteFailed) {
            let _ = self.flush().await;
        }
        let _ = tokio::time::timeout(self.ctx.listener.limits.write_timeout, self.conn.shutdown())
            .await;
        let stats = self.machine.stats();
        let reason = if stats.timeout {
            tracing::info!("session deadline passed, closed with 421 4.4.2");
            "deadline passed, 421 4.4.2"
        } else if stats.bare_lf {
            "bare LF, 500 5.5.2"
        } else {
            end.as_str()
        };
        self.event(&format!("disconnect ({reason}) {stats}"));
    }

    /// Carries out the machine's actions and feeds it input until it closes.
    async fn drive(&mut self) -> End {
        loop {
            while let Some(action) = self.machine.poll_action() {
                if let Err(end) = self.act(action).await {
                    return end;
                }
                self.track_transaction();
            }
            if self.machine.is_closed() {
                return End::ClosedByServer;
            }
            if let Err(end) = self.next_input().await {
                return end;
            }
        }
    }

    /// One action.
    async fn act(&mut self, action: Action) -> Result<(), End> {
        match action {
            Action::Reply(reply) => self.reply(&reply),
            Action::Close => {
                self.flush().await?;
                return Err(End::ClosedByServer);
            }
            Action::Check(_) => match self.check_stage().await {
                stages::Checked::Verdict(verdict) => self.machine.handle(Event::Verdict(verdict)),
                stages::Checked::Drop => return Err(End::PolicyRefused),
            },
            Action::Authenticate(creds) => {
                let user = creds.user.clone();
                let outcome = if self.login_banned(&user).await {
                    postern_proto::session::AuthOutcome::Unavailable
                } else {
                    let db = Arc::clone(&self.ctx.shared.users);
                    let outcome = crate::auth::verify(db, creds, crate::auth::QUEUE_WAIT).await;
                    self.auth_logged(&user, outcome);
                    self.count_auth(&user, outcome).await;
                    outcome
                };
                self.machine.handle(Event::AuthResult(outcome));
            }
            Action::StartTls => self.starttls().await?,
            Action::ReceiveData => self.receive_data().await?,
            Action::ReceiveChunk {
                size,
                last,
                store,
                first,
            } => self.receive_chunk(size, last, store, first).await?,
            Action::DiscardBody => self.body = None,
            Action::Commit => self.commit().await,
        }
        Ok(())
    }

    /// Opens the transaction span when the machine has a transaction and the
    /// driver none, and closes it when the transaction is over.
    fn track_transaction(&mut self) {
        match (self.machine.transaction(), &self.tx_span) {
            (Some(tx), None) => {
                let from = tx.mail.reverse_path.to_string();
                self.tx_span = Some(tracing::info_span!(
                    "transaction",
                    from = %from,
                    queue_id = tracing::field::Empty
                ));
            }
            (None, Some(_)) => self.tx_span = None,
            _ => {}
        }
    }

    /// Runs `f` inside the transaction's span (or the session's, between
    /// transactions): log lines about a message carry its sender and queue id.
    fn in_tx<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.tx_span {
            Some(span) => span.in_scope(f),
            None => f(),
        }
    }

    /// Hands the machine the next line, reading more when none is complete.
    async fn next_input(&mut self) -> Result<(), End> {
        loop {
            let Self {
                inbuf,
                lines,
                machine,
                ctx,
                id,
                ..
            } = self;
            let (line, consumed) = lines.next_line(inbuf);
            let Some(line) = line else {
                inbuf.advance(consumed);
                // Nothing complete: write what is queued, then wait.
                self.flush().await?;
                match self.read_line_bytes().await {
                    Ok(()) => continue,
                    Err(ReadEnd::Closed) => return Err(End::ClosedByPeer),
                    Err(ReadEnd::Timeout) => self.machine.handle(Event::Timeout),
                    Err(ReadEnd::Shutdown) => self.machine.handle(Event::Shutdown),
                }
                return Ok(());
            };
            let sasl = machine.is_sasl_response_next();
            match line {
                Line::Complete(bytes) => {
                    if let Some(t) = ctx.transcript.as_ref() {
                        t.record(id, Direction::In, &transcript_text(bytes, sasl));
                    }
                    machine.handle(Event::Line(bytes));
                }
                Line::BareLineFeed(bytes) => {
                    if let Some(t) = ctx.transcript.as_ref() {
                        let text = transcript_text(bytes, sasl);
                        t.record(id, Direction::In, &format!("{text} [ended by bare LF]"));
                    }
                    tracing::info!("bare LF in a command line (RFC 5321 §2.3.8), closing");
                    machine.handle(Event::BareLineFeed);
                }
                Line::TooLong => {
                    if let Some(t) = ctx.transcript.as_ref() {
                        t.record(id, Direction::In, "[line too long, discarded]");
                    }
                    machine.handle(Event::LineTooLong);
                }
            }
            inbuf.advance(consumed);
            self.line_deadline = None;
            return Ok(());
        }
    }

    /// Reads at least one more byte of a command line, within the line's
    /// deadline (set when the line's wait began: RFC 5321 §4.5.3.2.7 as a
    /// whole-line deadline).
    async fn read_line_bytes(&mut self) -> Result<(), ReadEnd> {
        let deadline = *self
            .line_deadline
            .get_or_insert_with(|| Instant::now() + self.ctx.listener.limits.command_timeout);
        if self.inbuf.capacity() - self.inbuf.len() < 512 {
            self.inbuf.reserve(READ_CHUNK);
        }
        let read = tokio::select! {
            biased;
            () = self.ctx.shutdown.cancelled() => return Err(ReadEnd::Shutdown),
            r = tokio::time::timeout_at(deadline, self.conn.read_buf(&mut self.inbuf)) => r,
        };
        match read {
            Err(_) => Err(ReadEnd::Timeout),
            Ok(Ok(0) | Err(_)) => Err(ReadEnd::Closed),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Queues a reply (and its transcript lines) for the next flush.
    fn reply(&mut self, reply: &Reply) {
        let bytes = reply.to_bytes();
        if let Some(t) = &self.ctx.transcript {
            for line in String::from_utf8_lossy(&bytes)
                .split("\r\n")
                .filter(|l| !l.is_empty())
            {
                t.record(&self.id, Direction::Out, line);
            }
        }
        self.out.extend_from_slice(&bytes);
    }

    /// Writes queued replies in one write, within `write_timeout`.
    async fn flush(&mut self) -> Result<(), End> {
        if self.out.is_empty() {
            return Ok(());
        }
        let timeout = self.ctx.listener.limits.write_timeout;
        let res = tokio::time::timeout(timeout, async {
            self.conn.write_all(&self.out).await?;
            self.conn.flush().await
        })
        .await;
        self.out.clear();
        if self.out.capacity() > READ_CHUNK {
            self.out = Vec::new();
        }
        match res {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::WriteFailed),
            Err(_) => {
                tracing::info!("client did not read our replies within the write timeout, closing");
                Err(End::WriteTimeout)
            }
        }
    }

    fn record(&self, dir: Direction, text: &str) {
        if let Some(t) = &self.ctx.transcript {
            t.record(&self.id, dir, text);
        }
    }

    fn event(&self, text: &str) {
        self.record(Direction::Event, text);
    }

    fn auth_logged(&self, user: &str, outcome: postern_proto::session::AuthOutcome) {
        use postern_proto::session::AuthOutcome;
        match outcome {
            AuthOutcome::Success => {
                tracing::info!(user = ?user, "authenticated");
                self.event(&format!("authenticated as {user}"));
            }
            AuthOutcome::Invalid => {
                tracing::warn!(user = ?user, "authentication failed");
                self.event(&format!("authentication failed for {user}"));
            }
            AuthOutcome::Unavailable => {
                tracing::warn!(user = ?user,
                    "authentication not checked: every verifier busy for too long");
                self.event(&format!(
                    "authentication not checked for {user}: verifiers busy"
                ));
            }
        }
    }
}

/// The machine's configuration from the listener and server settings.
fn session_config(ctx: &Context) -> SessionConfig {
    let l = &ctx.listener;
    SessionConfig {
        hostname: l.hostname.clone(),
        limits: l.limits.proto.clone(),
        max_message_size: l.limits.max_message_size,
        max_recipients: l.limits.max_recipients,
        max_errors: l.limits.max_errors,
        max_auth_failures: l.limits.max_auth_failures,
        tls: l.tls,
        tls_available: ctx.shared.tls.is_some(),
        auth: l.auth,
        auth_in_clear: ctx.shared.settings.allow_insecure_auth,
        vrfy: ctx.shared.settings.vrfy,
    }
}

/// The TLS facts the machine and policy see.
fn tls_info(f: &TlsFacts) -> postern_proto::session::TlsInfo {
    postern_proto::session::TlsInfo {
        version: f.version.clone(),
        cipher: f.cipher.clone(),
    }
}

/// The transcript text of a line: a SASL response is never logged (RFC 4954
/// §4), nor the initial response of an AUTH command.
fn transcript_text(line: &[u8], sasl_response: bool) -> String {
    if sasl_response {
        "[AUTH response redacted]".to_owned()
    } else {
        redact_auth(line)
    }
}

/// The transcript text of a command line: anything after the mechanism of an
/// AUTH line is redacted, parsed or not (it carries the password in base64,
/// RFC 4616).
fn redact_auth(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut words = text.splitn(3, ' ');
    let verb = words.next().unwrap_or_default();
    if verb.eq_ignore_ascii_case("AUTH") {
        let mech = words.next().unwrap_or_default();
        return if words.next().is_some() {
            format!("{verb} {mech} [redacted]")
        } else {
            format!("{verb} {mech}")
        };
    }
    text.into_owned()
}

#[cfg(test)]
mod redact_tests {
    use super::redact_auth;

    #[test]
    fn auth_payloads_never_logged() {
        assert_eq!(
            redact_auth(b"AUTH PLAIN AGFsaWNlAHNlY3JldA=="),
            "AUTH PLAIN [redacted]"
        );
        assert_eq!(
            redact_auth(b"auth login YWxpY2U= junk"),
            "auth login [redacted]"
        );
        assert_eq!(redact_auth(b"AUTH LOGIN"), "AUTH LOGIN");
        assert_eq!(redact_auth(b"MAIL FROM:<a@b>"), "MAIL FROM:<a@b>");
    }
}
