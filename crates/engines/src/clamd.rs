//! The ClamAV clamd client: `INSTREAM` scans, `PING` and `VERSION`, over TCP
//! or a Unix socket, one connection per call, under one deadline.
//!
//! `INSTREAM` (clamd(8)): the command `zINSTREAM\0` (the `z` form: replies
//! end with NUL), then chunks `<u32 big-endian length><bytes>`, then a
//! zero-length chunk. clamd answers `stream: OK`, `stream: <name> FOUND`,
//! or `INSTREAM size limit exceeded. ERROR` when the stream passes its
//! `StreamMaxLength` (25M by default; clamd then closes the connection,
//! possibly while we still write: we read its answer anyway). Other
//! failures end with ` ERROR`.
//!
//! # Security
//! The message is the attacker's; it only flows out, chunked, and is bounded
//! by our own [`ClamdSettings::max_size`] as well as clamd's limit (a message
//! above either is [`VirusVerdict::TooLarge`], which callers must not treat
//! as clean without deciding to). The reply is bounded ([`MAX_REPLY`]) and
//! signature names are reduced to printable ASCII before anyone logs them.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::{Instant, timeout_at};

use crate::addr::{EngineAddr, Io, connect};
use crate::error::{Engine, EngineError, Stage};
use crate::sanitize;

/// Debian's clamd `LocalSocket`.
pub const DEFAULT_SOCKET: &str = "/var/run/clamav/clamd.ctl";
/// Default deadline for one call (archives can take a while).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default size bound: clamd's default `StreamMaxLength` (25M).
pub const DEFAULT_MAX_SIZE: u64 = 25 * 1024 * 1024;
/// Default chunk size.
pub const DEFAULT_CHUNK_SIZE: usize = 64 * 1024;
/// Chunk sizes are kept within these bounds.
pub const CHUNK_SIZE_RANGE: (usize, usize) = (1024, 1024 * 1024);
/// The longest reply we read (a reply is one short line).
pub const MAX_REPLY: usize = 4096;

/// How to reach clamd and how much to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClamdSettings {
    /// clamd's `LocalSocket` path or `TCPAddr:TCPSocket`.
    pub address: EngineAddr,
    /// Deadline for the connect and the whole exchange.
    pub timeout: Duration,
    /// Messages larger than this are not scanned ([`VirusVerdict::TooLarge`]).
    pub max_size: u64,
    /// Bytes per `INSTREAM` chunk (kept within [`CHUNK_SIZE_RANGE`]).
    pub chunk_size: usize,
}

impl Default for ClamdSettings {
    fn default() -> Self {
        ClamdSettings {
            address: EngineAddr::Unix(PathBuf::from(DEFAULT_SOCKET)),
            timeout: DEFAULT_TIMEOUT,
            max_size: DEFAULT_MAX_SIZE,
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

/// Which bound a too-large message met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeLimit {
    /// Our `max_size` (the message was not sent whole).
    Ours(u64),
    /// clamd's `StreamMaxLength`.
    Clamd,
}

impl fmt::Display for SizeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeLimit::Ours(n) => write!(f, "our scanning limit of {n} bytes"),
            SizeLimit::Clamd => f.write_str("clamd's StreamMaxLength"),
        }
    }
}

/// What clamd said about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VirusVerdict {
    /// No signature matched.
    Clean,
    /// A signature matched (`Eicar-Signature`, `Win.Trojan.X-1`, …).
    Infected {
        /// The signature name (printable ASCII).
        name: String,
    },
    /// Not scanned whole: above a size bound.
    TooLarge {
        /// Whose bound.
        limit: SizeLimit,
    },
}

/// A client for one clamd; cheap to clone, holds no connection.
#[derive(Debug, Clone)]
pub struct ClamdClient {
    settings: ClamdSettings,
    addr: String,
}

/// How sending the stream ended, when it did not end well.
enum SendFailure {
    /// Our reader failed.
    Body(io::Error),
    /// The socket failed (clamd may have answered and closed).
    Socket(io::Error),
    /// Above our `max_size`.
    TooLarge,
}

impl ClamdClient {
    /// A client with these settings (the chunk size is clamped into
    /// [`CHUNK_SIZE_RANGE`]).
    pub fn new(mut settings: ClamdSettings) -> Self {
        settings.chunk_size = settings
            .chunk_size
            .clamp(CHUNK_SIZE_RANGE.0, CHUNK_SIZE_RANGE.1);
        let addr = settings.address.to_string();
        ClamdClient { settings, addr }
    }

    /// The settings in force.
    pub fn settings(&self) -> &ClamdSettings {
        &self.settings
    }

    /// Scans the message read from `message` with `INSTREAM`.
    pub async fn scan<R>(&self, mut message: R) -> Result<VirusVerdict, EngineError>
    where
        R: AsyncRead + Unpin + Send,
    {
        let deadline = Instant::now() + self.settings.timeout;
        let mut stream = self.connect(deadline).await?;
        let sent = timeout_at(deadline, self.send_stream(&mut stream, &mut message))
            .await
            .map_err(|_| self.timeout(Stage::Send))?;
        match sent {
            Ok(()) => {}
            Err(SendFailure::TooLarge) => {
                return Ok(VirusVerdict::TooLarge {
                    limit: SizeLimit::Ours(self.settings.max_size),
                });
            }
            Err(SendFailure::Body(source)) => {
                return Err(EngineError::BodyRead {
                    engine: Engine::Clamd,
                    source,
                });
            }
            Err(SendFailure::Socket(source)) => {
                // clamd stops reading and closes at StreamMaxLength: its
                // answer may be waiting for us.
                return match self.read_reply(&mut stream, deadline).await {
                    Ok(reply) if !reply.is_empty() => self.verdict(&reply),
                    _ => Err(EngineError::Io {
                        engine: Engine::Clamd,
                        addr: self.addr.clone(),
                        stage: Stage::Send,
                        source,
                    }),
                };
            }
        }
        let reply = self.read_reply(&mut stream, deadline).await?;
        self.verdict(&reply)
    }

    /// [`scan`](Self::scan) for a message already in memory.
    pub async fn scan_bytes(&self, message: &[u8]) -> Result<VirusVerdict, EngineError> {
        self.scan(message).await
    }

    /// `PING`: `Ok` when clamd answers `PONG` (a health check).
    pub async fn ping(&self) -> Result<(), EngineError> {
        let reply = self.command(b"zPING\0").await?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(self.bad_reply(format!("expected PONG, got {reply:?}")))
        }
    }

    /// `VERSION`: clamd's version line, e.g. `ClamAV 1.4.6/27480/Sat Dec 5
    /// 09:27:02 2026` (engine / signature database version / its date).
    pub async fn version(&self) -> Result<String, EngineError> {
        let reply = self.command(b"zVERSION\0").await?;
        if reply.starts_with("ClamAV ") {
            Ok(reply)
        } else {
            Err(self.bad_reply(format!("expected a version, got {reply:?}")))
        }
    }

    /// A command without data, and its one-line reply.
    async fn command(&self, command: &[u8]) -> Result<String, EngineError> {
        let deadline = Instant::now() + self.settings.timeout;
        let mut stream = self.connect(deadline).await?;
        timeout_at(deadline, stream.write_all(command))
            .await
            .map_err(|_| self.timeout(Stage::Send))?
            .map_err(|source| self.io(Stage::Send, source))?;
        self.read_reply(&mut stream, deadline).await
    }

    async fn connect(&self, deadline: Instant) -> Result<Box<dyn Io>, EngineError> {
        timeout_at(deadline, connect(&self.settings.address))
            .await
            .map_err(|_| self.timeout(Stage::Connect))?
            .map_err(|source| EngineError::Connect {
                engine: Engine::Clamd,
                addr: self.addr.clone(),
                source,
            })
    }

    /// `zINSTREAM\0`, the chunks, the end chunk.
    async fn send_stream<R>(
        &self,
        stream: &mut Box<dyn Io>,
        message: &mut R,
    ) -> Result<(), SendFailure>
    where
        R: AsyncRead + Unpin + Send,
    {
        let chunk = self.settings.chunk_size;
        stream
            .write_all(b"zINSTREAM\0")
            .await
            .map_err(SendFailure::Socket)?;
        // One buffer: 4 bytes of length, then the chunk (one write each).
        let mut buf = vec![0u8; 4 + chunk];
        let mut total: u64 = 0;
        loop {
            let n = fill(message, &mut buf[4..])
                .await
                .map_err(SendFailure::Body)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > self.settings.max_size {
                return Err(SendFailure::TooLarge);
            }
            // Invariant: n ≤ chunk ≤ CHUNK_SIZE_RANGE.1, far below u32::MAX.
            let len = u32::try_from(n).unwrap_or(u32::MAX);
            buf[..4].copy_from_slice(&len.to_be_bytes());
            stream
                .write_all(&buf[..4 + n])
                .await
                .map_err(SendFailure::Socket)?;
        }
        stream
            .write_all(&0u32.to_be_bytes())
            .await
            .map_err(SendFailure::Socket)?;
        stream.flush().await.map_err(SendFailure::Socket)
    }

    /// The reply up to its NUL (or the end of the stream), at most
    /// [`MAX_REPLY`] bytes, as one printable line.
    async fn read_reply(
        &self,
        stream: &mut Box<dyn Io>,
        deadline: Instant,
    ) -> Result<String, EngineError> {
        let mut reply = Vec::with_capacity(64);
        let mut buf = [0u8; 512];
        loop {
            let n = timeout_at(deadline, stream.read(&mut buf))
                .await
                .map_err(|_| self.timeout(Stage::Reply))?
                .map_err(|source| self.io(Stage::Reply, source))?;
            if n == 0 {
                break;
            }
            if let Some(end) = buf[..n].iter().position(|&b| b == 0) {
                reply.extend_from_slice(&buf[..end]);
                break;
            }
            reply.extend_from_slice(&buf[..n]);
            if reply.len() > MAX_REPLY {
                return Err(EngineError::ReplyTooLarge {
                    engine: Engine::Clamd,
                    addr: self.addr.clone(),
                    limit: MAX_REPLY,
                });
            }
        }
        if reply.is_empty() {
            return Err(self.io(
                Stage::Reply,
                io::Error::new(io::ErrorKind::UnexpectedEof, "closed without a reply"),
            ));
        }
        let text = String::from_utf8_lossy(&reply);
        Ok(sanitize::reply_text(text.trim_end(), MAX_REPLY))
    }

    /// Reads an `INSTREAM` reply.
    fn verdict(&self, reply: &str) -> Result<VirusVerdict, EngineError> {
        match parse_reply(reply) {
            Reply::Clean => Ok(VirusVerdict::Clean),
            Reply::Found(name) => Ok(VirusVerdict::Infected {
                name: sanitize::reply_text(name, 200),
            }),
            Reply::SizeLimit => Ok(VirusVerdict::TooLarge {
                limit: SizeLimit::Clamd,
            }),
            Reply::Error(message) => Err(EngineError::Reported {
                engine: Engine::Clamd,
                addr: self.addr.clone(),
                message: message.to_owned(),
            }),
            Reply::Unknown => Err(self.bad_reply(format!("unexpected reply {reply:?}"))),
        }
    }

    fn timeout(&self, stage: Stage) -> EngineError {
        EngineError::Timeout {
            engine: Engine::Clamd,
            addr: self.addr.clone(),
            stage,
            timeout: self.settings.timeout,
        }
    }

    fn io(&self, stage: Stage, source: io::Error) -> EngineError {
        EngineError::Io {
            engine: Engine::Clamd,
            addr: self.addr.clone(),
            stage,
            source,
        }
    }

    fn bad_reply(&self, detail: String) -> EngineError {
        EngineError::BadReply {
            engine: Engine::Clamd,
            addr: self.addr.clone(),
            detail,
        }
    }
}

/// Reads until `buf` is full or the reader ends; returns the count.
async fn fill<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]).await? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// An `INSTREAM` reply, classified.
#[derive(Debug, PartialEq, Eq)]
enum Reply<'a> {
    Clean,
    Found(&'a str),
    SizeLimit,
    Error(&'a str),
    Unknown,
}

fn parse_reply(reply: &str) -> Reply<'_> {
    if let Some(rest) = reply.strip_prefix("stream: ") {
        if rest == "OK" {
            return Reply::Clean;
        }
        if let Some(name) = rest.strip_suffix(" FOUND") {
            return Reply::Found(name);
        }
    }
    if reply.contains("size limit exceeded") {
        return Reply::SizeLimit;
    }
    if reply.ends_with(" ERROR") {
        return Reply::Error(reply);
    }
    Reply::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instream_replies() {
        let cases = [
            ("stream: OK", Reply::Clean),
            (
                "stream: Postern.Test.EICAR.UNOFFICIAL FOUND",
                Reply::Found("Postern.Test.EICAR.UNOFFICIAL"),
            ),
            ("INSTREAM size limit exceeded. ERROR", Reply::SizeLimit),
            (
                "stream: Can't allocate memory ERROR",
                Reply::Error("stream: Can't allocate memory ERROR"),
            ),
            ("UNKNOWN COMMAND", Reply::Unknown),
            ("stream: FOUND", Reply::Unknown),
        ];
        for (reply, want) in cases {
            assert_eq!(parse_reply(reply), want, "{reply}");
        }
    }

    #[test]
    fn chunk_size_is_clamped() {
        let c = ClamdClient::new(ClamdSettings {
            chunk_size: 0,
            ..ClamdSettings::default()
        });
        assert_eq!(c.settings().chunk_size, CHUNK_SIZE_RANGE.0);
        let c = ClamdClient::new(ClamdSettings {
            chunk_size: usize::MAX,
            ..ClamdSettings::default()
        });
        assert_eq!(c.settings().chunk_size, CHUNK_SIZE_RANGE.1);
    }
}
