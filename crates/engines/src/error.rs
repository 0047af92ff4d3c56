//! [`EngineError`]: every way a call to rspamd or clamd can fail, with the
//! engine, its address and the stage. [`crate::cause`] turns each into a
//! catalogue cause for the operator; the caller applies its failure mode
//! (`tempfail` or `accept`) to any of them.

use std::fmt;
use std::io;
use std::time::Duration;

/// Which engine a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    /// rspamd's normal (or controller) worker over HTTP.
    Rspamd,
    /// ClamAV's clamd.
    Clamd,
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Rspamd => "rspamd",
            Engine::Clamd => "clamd",
        })
    }
}

/// Where in the exchange a call was when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Opening the connection.
    Connect,
    /// Sending the command and the message.
    Send,
    /// Waiting for or reading the reply.
    Reply,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "while connecting",
            Stage::Send => "while sending the message",
            Stage::Reply => "while waiting for the reply",
        })
    }
}

/// A failed call to an engine. `addr` is the configured address as text.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The connection could not be opened (refused, no such socket, no route,
    /// permission denied on a Unix socket, host name not found).
    #[error("{engine} at {addr}: cannot connect: {source}")]
    Connect {
        engine: Engine,
        addr: String,
        #[source]
        source: io::Error,
    },
    /// The deadline (connect and the whole exchange) passed.
    #[error("{engine} at {addr}: no answer in time ({stage}; timeout {timeout:?})")]
    Timeout {
        engine: Engine,
        addr: String,
        stage: Stage,
        timeout: Duration,
    },
    /// The connection failed or was closed after it was opened.
    #[error("{engine} at {addr}: connection failed {stage}: {source}")]
    Io {
        engine: Engine,
        addr: String,
        stage: Stage,
        #[source]
        source: io::Error,
    },
    /// rspamd answered with an HTTP status other than 200.
    #[error("{engine} at {addr}: HTTP status {status}: {detail}")]
    Status {
        engine: Engine,
        addr: String,
        status: u16,
        /// rspamd's `error` text, or the start of the body (one line).
        detail: String,
    },
    /// The reply is not what the protocol says (not HTTP, not JSON, missing
    /// fields, an unknown clamd answer).
    #[error("{engine} at {addr}: unreadable reply: {detail}")]
    BadReply {
        engine: Engine,
        addr: String,
        detail: String,
    },
    /// The reply exceeded our bound.
    #[error("{engine} at {addr}: reply larger than {limit} bytes")]
    ReplyTooLarge {
        engine: Engine,
        addr: String,
        limit: usize,
    },
    /// The engine answered that it failed (clamd's `... ERROR`).
    #[error("{engine} at {addr}: the engine reported an error: {message}")]
    Reported {
        engine: Engine,
        addr: String,
        /// The engine's words (one line, printable).
        message: String,
    },
    /// Reading the message to scan failed on our side (spool file, or a
    /// reader shorter than the length the caller gave).
    #[error("{engine}: reading the message to scan failed: {source}")]
    BodyRead {
        engine: Engine,
        #[source]
        source: io::Error,
    },
}

impl EngineError {
    /// The engine the failed call went to.
    pub fn engine(&self) -> Engine {
        match self {
            EngineError::Connect { engine, .. }
            | EngineError::Timeout { engine, .. }
            | EngineError::Io { engine, .. }
            | EngineError::Status { engine, .. }
            | EngineError::BadReply { engine, .. }
            | EngineError::ReplyTooLarge { engine, .. }
            | EngineError::Reported { engine, .. }
            | EngineError::BodyRead { engine, .. } => *engine,
        }
    }

    /// Whether the deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, EngineError::Timeout { .. })
    }
}
