//! One SMTP session: the read → parse → decide → reply loop for one TCP connection.
//!
//! The loop reads bytes into `inbuf`, takes complete command lines out with the
//! limit-enforcing `LineReader`, and answers each command through the verb
//! handlers in `commands.rs`. Replies are collected in `out` and written when
//! the input holds no further complete command, so a pipelined group gets its
//! replies in one write and a multi-line reply is always one write
//! (RFC 2920 §3.2; scanners such as nmap/sslscan depend on it).
//!
//! # Security
//! Every byte comes from an untrusted peer. Memory per session is bounded by
//! the line limit and the body flush threshold; every wait has a timeout
//! (RFC 5321 §4.5.3.2); errors are counted and the session closed with `421`
//! after `max_errors` (RFC 5321 §4.3.2 allows it; it slows down probing).
//!
//! # Standards
//! RFC 5321, RFC 2920 (PIPELINING), RFC 3207 (STARTTLS), RFC 4954 (AUTH).

mod auth;
mod commands;
mod data;
mod starttls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use postern_proto::{Line, LineReader, MailFrom, Reply};
use postern_spool::{EnvelopeRecipient, Spool};
use postern_tls::facts::TlsFacts;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::conn::Conn;
use crate::replies;
use crate::server::Shared;
use crate::settings::ListenerSettings;
use crate::transcript::{Direction, Transcript};

/// Initial read buffer; it grows only while a long line or DATA is arriving.
const READ_CHUNK: usize = 4096;

/// Whether the session goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Close,
}

/// Why a read ended without data.
enum ReadEnd {
    /// The peer closed the connection (or it broke).
    Closed,
    /// No complete command within the timeout.
    Timeout,
    /// The server is shutting down.
    Shutdown,
}

/// The mail transaction in progress (MAIL … end of data).
pub(crate) struct Transaction {
    pub(crate) mail: MailFrom,
    pub(crate) recipients: Vec<EnvelopeRecipient>,
    /// BDAT has started: DATA is no longer allowed (RFC 3030 §3).
    pub(crate) bdat: Option<data::BdatState>,
}

/// What the session needs from the server, fixed for the session's lifetime.
pub(crate) struct Context {
    pub(crate) shared: Arc<Shared>,
    pub(crate) listener: ListenerSettings,
    pub(crate) spool: Spool,
    pub(crate) transcript: Option<Transcript>,
    pub(crate) on_queued: Option<crate::server::QueuedHook>,
    pub(crate) shutdown: CancellationToken,
}

pub(crate) struct Session {
    id: Arc<str>,
    ctx: Context,
    conn: Conn,
    peer: SocketAddr,
    inbuf: BytesMut,
    out: Vec<u8>,
    lines: LineReader,
    /// The EHLO/HELO argument; `None` until the client greets (and again after STARTTLS).
    helo: Option<String>,
    /// The client used EHLO (not HELO).
    esmtp: bool,
    tls: Option<TlsFacts>,
    auth_user: Option<String>,
    tx: Option<Transaction>,
    errors: usize,
    /// An AUTH exchange waiting for the client's next line.
    sasl: Option<auth::SaslStep>,
}

impl Session {
    pub(crate) fn new(id: Arc<str>, ctx: Context, tcp: TcpStream, peer: SocketAddr) -> Self {
        let max_line = ctx.listener.limits.proto.max_command_line;
        Self {
            id,
            ctx,
            conn: Conn::Plain(tcp),
            peer,
            inbuf: BytesMut::new(),
            out: Vec::new(),
            lines: LineReader::new(max_line),
            helo: None,
            esmtp: false,
            tls: None,
            auth_user: None,
            tx: None,
            errors: 0,
            sasl: None,
        }
    }

    /// Runs the session to its end.
    pub(crate) async fn run(mut self) {
        self.event(&format!(
            "connect from {} to listener {} ({:?})",
            self.peer, self.ctx.listener.name, self.ctx.listener.kind
        ));
        if self.ctx.listener.kind == crate::ListenerKind::Submissions {
            // RFC 8314 §3.3: implicit TLS, the handshake comes before the greeting.
            if self.handshake().await.is_err() {
                self.event("disconnect (TLS handshake failed)");
                return;
            }
        }
        self.reply(&replies::greeting(&self.ctx.listener.hostname));
        let end = self.command_loop().await;
        let _ = self.flush().await;
        let _ = self.conn.shutdown().await;
        self.event(&format!("disconnect ({end})"));
    }

    async fn command_loop(&mut self) -> &'static str {
        loop {
            let (line, consumed) = self.lines.next_line(&self.inbuf);
            let line = line.map(|l| match l {
                Line::Complete(bytes) => Some(bytes.to_vec()),
                Line::TooLong => None,
            });
            self.inbuf.advance(consumed);
            let flow = match line {
                Some(Some(bytes)) => self.handle_line(&bytes).await,
                Some(None) => {
                    self.record(Direction::In, "[line too long, discarded]");
                    let max = self.ctx.listener.limits.proto.max_command_line;
                    self.error_reply(&replies::line_too_long(max))
                }
                None => {
                    if self.flush().await.is_err() {
                        return "write failed";
                    }
                    match self
                        .read_more(self.ctx.listener.limits.command_timeout)
                        .await
                    {
                        Ok(()) => Flow::Continue,
                        Err(ReadEnd::Closed) => return "closed by peer",
                        Err(ReadEnd::Timeout) => {
                            self.reply(&replies::timeout(&self.ctx.listener.hostname));
                            return "command timeout";
                        }
                        Err(ReadEnd::Shutdown) => {
                            self.reply(&replies::shutting_down(&self.ctx.listener.hostname));
                            return "server shutdown";
                        }
                    }
                }
            };
            if flow == Flow::Close {
                return "closed by server";
            }
        }
    }

    /// Reads at least one more byte into `inbuf`.
    async fn read_more(&mut self, timeout: Duration) -> Result<(), ReadEnd> {
        if self.inbuf.capacity() - self.inbuf.len() < 512 {
            self.inbuf.reserve(READ_CHUNK);
        }
        let read = tokio::select! {
            biased;
            () = self.ctx.shutdown.cancelled() => return Err(ReadEnd::Shutdown),
            r = tokio::time::timeout(timeout, self.conn.read_buf(&mut self.inbuf)) => r,
        };
        match read {
            Err(_) => Err(ReadEnd::Timeout),
            Ok(Ok(0) | Err(_)) => Err(ReadEnd::Closed),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Queues a reply (and its transcript lines) for the next flush.
    pub(crate) fn reply(&mut self, reply: &Reply) {
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

    /// Queues an error reply and counts it; closes after `max_errors`.
    pub(crate) fn error_reply(&mut self, reply: &Reply) -> Flow {
        self.reply(reply);
        self.errors += 1;
        if self.errors >= self.ctx.listener.limits.max_errors {
            tracing::info!(session = %self.id, peer = %self.peer, "too many errors, closing");
            self.reply(&replies::too_many_errors());
            return Flow::Close;
        }
        Flow::Continue
    }

    /// Writes queued replies in one write.
    pub(crate) async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let res = async {
            self.conn.write_all(&self.out).await?;
            self.conn.flush().await
        }
        .await;
        self.out.clear();
        if self.out.capacity() > READ_CHUNK {
            self.out = Vec::new();
        }
        res
    }

    pub(crate) fn record(&self, dir: Direction, text: &str) {
        if let Some(t) = &self.ctx.transcript {
            t.record(&self.id, dir, text);
        }
    }

    pub(crate) fn event(&self, text: &str) {
        self.record(Direction::Event, text);
    }

    /// Drops the transaction (RSET, EHLO, STARTTLS, end of data).
    pub(crate) fn reset_transaction(&mut self) {
        self.tx = None;
    }
}

impl std::fmt::Display for ReadEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReadEnd::Closed => "closed by peer",
            ReadEnd::Timeout => "timeout",
            ReadEnd::Shutdown => "server shutdown",
        })
    }
}
