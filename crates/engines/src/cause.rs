//! The content engines' side of the failure-cause catalogue (ADR 0007): what
//! an [`EngineError`] means for an operator, as stable `engine.*` ids with a
//! summary naming the engine and its address, and the smallest safe fix.
//!
//! Ids are API (mail log, tracking, metrics): add ids, never rename or reuse
//! one. Fix texts name configuration keys as `` `[table] key` `` (the
//! `[rspamd]` and `[clamav]` tables) and commands in backticks.
//!
//! # Security
//! Summaries quote the configured address and the engine's own words
//! (printed, never interpreted); the rspamd password never reaches an error.

use std::io::ErrorKind;

use crate::error::{Engine, EngineError};

/// Nothing listens at the address (connection refused, no such socket).
pub const REFUSED: &str = "engine.refused";
/// A Unix socket exists but we may not open it.
pub const PERMISSION_DENIED: &str = "engine.permission_denied";
/// Another connect failure: no route, unknown host name.
pub const UNREACHABLE: &str = "engine.unreachable";
/// The engine did not answer within the timeout.
pub const TIMEOUT: &str = "engine.timeout";
/// The engine closed or reset the connection before its reply.
pub const CLOSED: &str = "engine.closed";
/// Another socket error during the exchange.
pub const IO_ERROR: &str = "engine.io_error";
/// rspamd answered with an HTTP error status.
pub const HTTP_STATUS: &str = "engine.http_status";
/// The reply does not follow the engine's protocol.
pub const BAD_REPLY: &str = "engine.bad_reply";
/// The reply is larger than our bound.
pub const REPLY_TOO_LARGE: &str = "engine.reply_too_large";
/// The engine said it failed (clamd `... ERROR`).
pub const REPORTED_ERROR: &str = "engine.reported_error";
/// We could not read the message we had to scan.
pub const BODY_READ: &str = "engine.body_read";

/// Every id of this catalogue.
pub const ALL: &[&str] = &[
    REFUSED,
    PERMISSION_DENIED,
    UNREACHABLE,
    TIMEOUT,
    CLOSED,
    IO_ERROR,
    HTTP_STATUS,
    BAD_REPLY,
    REPLY_TOO_LARGE,
    REPORTED_ERROR,
    BODY_READ,
];

/// A classified engine failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineCause {
    /// Stable id.
    pub id: &'static str,
    /// What happened, in one sentence (names the engine and its address).
    pub summary: String,
    /// The smallest safe fix.
    pub fix: &'static str,
    /// The raw error text.
    pub detail: String,
}

impl std::fmt::Display for EngineCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} (fix: {})", self.id, self.summary, self.fix)
    }
}

impl EngineError {
    /// The catalogue cause of this error.
    pub fn cause(&self) -> EngineCause {
        let detail = self.to_string();
        let (id, summary, fix) = match self {
            EngineError::Connect {
                engine,
                addr,
                source,
            } => match source.kind() {
                ErrorKind::ConnectionRefused | ErrorKind::NotFound => (
                    REFUSED,
                    format!("nothing accepts connections for {engine} at {addr}"),
                    refused_fix(*engine),
                ),
                ErrorKind::PermissionDenied => (
                    PERMISSION_DENIED,
                    format!("Postern may not open the {engine} socket {addr}"),
                    permission_fix(*engine),
                ),
                _ => (
                    UNREACHABLE,
                    format!("{engine} at {addr} cannot be reached"),
                    "check the host name and port in the address (`getent hosts NAME` resolves \
                     it as Postern does) and the network path or firewall between this node \
                     and the engine",
                ),
            },
            EngineError::Timeout {
                engine,
                addr,
                stage,
                ..
            } => (
                TIMEOUT,
                format!("{engine} at {addr} did not answer in time ({stage})"),
                timeout_fix(*engine),
            ),
            EngineError::Io {
                engine,
                addr,
                stage,
                source,
            } => match source.kind() {
                ErrorKind::UnexpectedEof
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe => (
                    CLOSED,
                    format!("{engine} at {addr} closed the connection {stage}"),
                    "the engine restarted, crashed or was stopped mid-scan: read its log \
                     (rspamd.log, clamd's LogFile) at that time; if it happens under load, \
                     the engine may be out of memory or workers",
                ),
                _ => (
                    IO_ERROR,
                    format!("the connection to {engine} at {addr} failed {stage}"),
                    "read the detail; check the network path between this node and the engine",
                ),
            },
            EngineError::Status {
                engine,
                addr,
                status,
                ..
            } => (
                HTTP_STATUS,
                format!("{engine} at {addr} refused the request with HTTP status {status}"),
                "read the detail: 401 or 403 means a wrong `[rspamd] password` (or this \
                 node's address is not in the controller's secure_ip); 404 means the address \
                 is not rspamd's normal worker (port 11333 by default) or controller (11334); \
                 5xx is an rspamd failure: see rspamd.log",
            ),
            EngineError::BadReply { engine, addr, .. } => (
                BAD_REPLY,
                format!("what answers at {addr} does not speak the {engine} protocol"),
                bad_reply_fix(*engine),
            ),
            EngineError::ReplyTooLarge {
                engine,
                addr,
                limit,
            } => (
                REPLY_TOO_LARGE,
                format!("{engine} at {addr} sent a reply above our bound of {limit} bytes"),
                "check that the address is the engine itself (not a web server or a proxy \
                 page); with rspamd, a local rule adding huge symbol options can cause it: \
                 shorten them",
            ),
            EngineError::Reported {
                engine,
                addr,
                message,
            } => (
                REPORTED_ERROR,
                format!("{engine} at {addr} could not scan the message: {message}"),
                "read the engine's words and its log (clamd's LogFile): a signature database \
                 being reloaded, a temporary directory that is full, or a limit in clamd.conf",
            ),
            EngineError::BodyRead { engine, .. } => (
                BODY_READ,
                format!("Postern could not read the message it had to pass to {engine}"),
                "a local disk or spool problem: read the detail and the server log for the \
                 same queue id",
            ),
        };
        EngineCause {
            id,
            summary,
            fix,
            detail,
        }
    }
}

fn refused_fix(engine: Engine) -> &'static str {
    match engine {
        Engine::Rspamd => {
            "start rspamd (`systemctl start rspamd`) and check that `[rspamd] address` is \
             its normal worker's bind_socket (127.0.0.1:11333 by default; \
             `rspamadm configdump worker` shows it)"
        }
        Engine::Clamd => {
            "start clamd (`systemctl start clamav-daemon`; it refuses connections while it \
             loads its signatures) and check that `[clamav] address` is clamd.conf's \
             LocalSocket (Debian: /var/run/clamav/clamd.ctl) or TCPAddr and TCPSocket \
             (TCP is off by default)"
        }
    }
}

fn permission_fix(engine: Engine) -> &'static str {
    match engine {
        Engine::Rspamd => {
            "give Postern's user access to rspamd's socket: bind_socket accepts \
             `mode=0660 owner=_rspamd group=...` after the path; or use a TCP address on \
             127.0.0.1"
        }
        Engine::Clamd => {
            "add Postern's user to clamd's socket group (LocalSocketGroup in clamd.conf, \
             clamav on Debian: `adduser postern clamav`) and keep LocalSocketMode 660; or \
             use clamd's TCPSocket on 127.0.0.1"
        }
    }
}

fn timeout_fix(engine: Engine) -> &'static str {
    match engine {
        Engine::Rspamd => {
            "rspamd looks up DNS lists for every message: a slow resolver is the usual \
             reason (give it a local caching resolver); with many sessions, add normal \
             workers (`count` in worker-normal.inc); raise `[rspamd] timeout` only above \
             rspamd's own task_timeout (8s by default)"
        }
        Engine::Clamd => {
            "clamd was busy (MaxThreads in clamd.conf), reloading its database, or scanning \
             a large archive: raise `[clamav] timeout` or lower `[clamav] max_size`, and \
             check clamd's load"
        }
    }
}

fn bad_reply_fix(engine: Engine) -> &'static str {
    match engine {
        Engine::Rspamd => {
            "point `[rspamd] address` at rspamd's normal worker (11333) or controller \
             (11334), which answer HTTP with JSON; the proxy worker (11332) speaks the \
             milter protocol and cannot be used here"
        }
        Engine::Clamd => {
            "point `[clamav] address` at clamd itself (LocalSocket, or TCPSocket 3310 by \
             convention), not at clamav-milter or another service"
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::time::Duration;

    use super::*;
    use crate::error::Stage;

    fn err(kind: ErrorKind) -> io::Error {
        io::Error::new(kind, "x")
    }

    #[test]
    fn every_id_is_rendered_for_both_engines() {
        for engine in [Engine::Rspamd, Engine::Clamd] {
            let addr = || "127.0.0.1:11333".to_owned();
            let errors = [
                EngineError::Connect {
                    engine,
                    addr: addr(),
                    source: err(ErrorKind::ConnectionRefused),
                },
                EngineError::Connect {
                    engine,
                    addr: addr(),
                    source: err(ErrorKind::PermissionDenied),
                },
                EngineError::Connect {
                    engine,
                    addr: addr(),
                    source: err(ErrorKind::HostUnreachable),
                },
                EngineError::Timeout {
                    engine,
                    addr: addr(),
                    stage: Stage::Reply,
                    timeout: Duration::from_secs(1),
                },
                EngineError::Io {
                    engine,
                    addr: addr(),
                    stage: Stage::Send,
                    source: err(ErrorKind::ConnectionReset),
                },
                EngineError::Io {
                    engine,
                    addr: addr(),
                    stage: Stage::Send,
                    source: err(ErrorKind::Other),
                },
                EngineError::Status {
                    engine,
                    addr: addr(),
                    status: 403,
                    detail: "x".into(),
                },
                EngineError::BadReply {
                    engine,
                    addr: addr(),
                    detail: "x".into(),
                },
                EngineError::ReplyTooLarge {
                    engine,
                    addr: addr(),
                    limit: 10,
                },
                EngineError::Reported {
                    engine,
                    addr: addr(),
                    message: "x".into(),
                },
                EngineError::BodyRead {
                    engine,
                    source: err(ErrorKind::UnexpectedEof),
                },
            ];
            let ids: Vec<&str> = errors.iter().map(|e| e.cause().id).collect();
            assert_eq!(ids, ALL);
            for e in &errors {
                let c = e.cause();
                assert!(c.summary.contains(&engine.to_string()), "{c}");
                assert!(!c.fix.is_empty());
                assert_eq!(c.detail, e.to_string());
                assert_eq!(e.engine(), engine);
            }
        }
    }

    #[test]
    fn every_id_is_documented() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/engines.md"
        ))
        .unwrap();
        for id in ALL {
            assert!(
                doc.contains(&format!("| `{id}` |")),
                "{id} is not in docs/engines.md §4"
            );
        }
    }

    #[test]
    fn a_missing_unix_socket_is_refused() {
        let e = EngineError::Connect {
            engine: Engine::Clamd,
            addr: "/run/clamav/clamd.ctl".into(),
            source: err(ErrorKind::NotFound),
        };
        assert_eq!(e.cause().id, REFUSED);
        assert!(e.cause().fix.contains("LocalSocket"));
    }
}
