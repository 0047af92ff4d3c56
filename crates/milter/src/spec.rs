//! What the caller supplies: which milter and how to treat it
//! ([`MilterSpec`], [`MilterAddr`], [`Timeouts`], [`OnFailure`]) and the
//! facts of the message ([`Envelope`]).
//!
//! # Security
//! [`MilterAddr::parse`] reads an operator's configuration, not peer input;
//! it still refuses what it cannot connect to rather than guessing.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::{Actions, MacroLists};

/// Where a milter listens, in the Postfix `smtpd_milters` or Sendmail
/// `X` spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MilterAddr {
    /// A TCP endpoint: `inet:host:port` (Postfix), `inet:port@host` or
    /// `inet6:port@host` (Sendmail), or bare `host:port` / `[v6]:port`.
    Tcp {
        /// A host name or IP address (no brackets).
        host: String,
        /// The port.
        port: u16,
    },
    /// A Unix socket: `unix:/path` or `local:/path`.
    Unix(PathBuf),
}

/// Why a milter address is refused (the text says what is allowed).
const ADDR_HELP: &str = "expected unix:/path, local:/path, inet:host:port, inet:port@host, \
     inet6:port@host or host:port with a port 1-65535";

impl MilterAddr {
    /// Parses an address; the error text says what is allowed.
    pub fn parse(s: &str) -> Result<MilterAddr, &'static str> {
        let s = s.trim();
        if let Some(path) = s.strip_prefix("unix:").or_else(|| s.strip_prefix("local:")) {
            if !path.starts_with('/') {
                return Err("a Unix socket path must be absolute (unix:/run/milter.sock)");
            }
            return Ok(MilterAddr::Unix(PathBuf::from(path)));
        }
        let rest = s
            .strip_prefix("inet6:")
            .or_else(|| s.strip_prefix("inet:"))
            .unwrap_or(s);
        let (host, port) = if let Some((port, host)) = rest.split_once('@') {
            (host, port)
        } else if let Some(v6) = rest.strip_prefix('[') {
            let (host, port) = v6.split_once("]:").ok_or(ADDR_HELP)?;
            (host, port)
        } else {
            rest.rsplit_once(':').ok_or(ADDR_HELP)?
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port.parse().map_err(|_| ADDR_HELP)?;
        if port == 0 || host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(ADDR_HELP);
        }
        Ok(MilterAddr::Tcp {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for MilterAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MilterAddr::Tcp { host, port } if host.contains(':') => {
                write!(f, "inet:[{host}]:{port}")
            }
            MilterAddr::Tcp { host, port } => write!(f, "inet:{host}:{port}"),
            MilterAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// How long to wait for a milter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening the socket (default 30 s, Postfix `milter_connect_timeout`).
    pub connect: Duration,
    /// Each packet we send and each reply we wait for before end of message
    /// (default 30 s, Postfix `milter_command_timeout`). `SMFIR_PROGRESS`
    /// restarts the wait.
    pub command: Duration,
    /// The whole end-of-message step: from `SMFIC_BODYEOB` to the final
    /// reply, whether the milter sends progress packets or not (default
    /// 300 s, Postfix `milter_content_timeout`). Also the most a milter can
    /// stretch one earlier reply with progress packets.
    pub end_of_message: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(30),
            command: Duration::from_secs(30),
            end_of_message: Duration::from_mins(5),
        }
    }
}

/// What the caller does with the message when the milter fails (cannot be
/// reached, times out, breaks the protocol). This crate only carries the
/// setting: [`crate::run`] returns the error and the caller applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// Go on as if the milter had accepted (log the failure).
    Accept,
    /// Answer 451 4.7.1: the client retries later (default; Postfix
    /// `milter_default_action = tempfail`).
    #[default]
    Tempfail,
    /// Answer 550 5.7.1.
    Reject,
}

impl OnFailure {
    /// The verdict to act on when the milter failed: accept, or the
    /// default tempfail (`451 4.7.1`) or reject (`550 5.7.1`) reply.
    pub fn verdict(self) -> crate::Verdict {
        match self {
            OnFailure::Accept => crate::Verdict::Accept,
            OnFailure::Tempfail => crate::Verdict::Tempfail(crate::modify::default_tempfail()),
            OnFailure::Reject => crate::Verdict::Reject(crate::modify::default_reject()),
        }
    }
}

/// Limits on what a milter can make us hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultLimits {
    /// Most modifications kept from one end-of-message reply (default 1000).
    pub max_modifications: usize,
    /// Largest replacement body (`SMFIR_REPLBODY`, all pieces; default
    /// 64 MiB). Set it to the listener's message size limit.
    pub max_body: usize,
}

impl Default for ResultLimits {
    fn default() -> ResultLimits {
        ResultLimits {
            max_modifications: 1000,
            max_body: 64 << 20,
        }
    }
}

/// One configured milter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MilterSpec {
    /// The operator's name for it (logs, errors, tracking).
    pub name: String,
    /// Where it listens.
    pub address: MilterAddr,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// What the caller does when it fails.
    pub default_action: OnFailure,
    /// Macros sent per stage when the milter does not name its own
    /// (`SMFIF_SETSYMLIST`).
    pub macros: MacroLists,
    /// The modifications we let it make (offered in negotiation; default
    /// [`Actions::ALL`]). A milter asking for more fails negotiation.
    pub actions: Actions,
    /// Bounds on its result.
    pub limits: ResultLimits,
}

impl MilterSpec {
    /// A spec with every default: timeouts, tempfail on failure, the
    /// default macro lists, all actions.
    pub fn new(name: impl Into<String>, address: MilterAddr) -> MilterSpec {
        MilterSpec {
            name: name.into(),
            address,
            timeouts: Timeouts::default(),
            default_action: OnFailure::default(),
            macros: MacroLists::default(),
            actions: Actions::ALL,
            limits: ResultLimits::default(),
        }
    }
}

/// The facts of one message, replayed to the milter. Addresses are bare
/// (`user@example.com`, no angle brackets; `""` is the null sender).
#[derive(Debug, Clone, Default)]
pub struct Envelope<'a> {
    /// Our host name (macro `j`, `{if_name}`).
    pub hostname: &'a str,
    /// The listener's name (macro `{daemon_name}`).
    pub daemon_name: &'a str,
    /// The address the client connected to (`{daemon_addr}`, `{if_addr}`).
    pub daemon_addr: Option<IpAddr>,
    /// The client's address; `None` for mail not received over TCP
    /// (pickup), sent as family `U`.
    pub client_ip: Option<IpAddr>,
    /// The client's port (0 when unknown).
    pub client_port: u16,
    /// The client's verified reverse DNS name; `None` sends `[address]`.
    pub client_name: Option<&'a str>,
    /// The HELO/EHLO argument; `None` skips the HELO step.
    pub helo: Option<&'a str>,
    /// The envelope sender, bare; `""` is `<>`.
    pub mail_from: &'a str,
    /// MAIL FROM parameters (`SIZE=1234`, `BODY=8BITMIME`, …).
    pub mail_args: &'a [String],
    /// The accepted recipients, bare.
    pub rcpts: &'a [String],
    /// Our queue id (macro `i`).
    pub queue_id: Option<&'a str>,
    /// The SASL authentication identity (`{auth_authen}`).
    pub auth_user: Option<&'a str>,
    /// The SASL mechanism (`{auth_type}`).
    pub auth_mechanism: Option<&'a str>,
    /// `TLSv1.3`, … (`{tls_version}`).
    pub tls_version: Option<&'a str>,
    /// The cipher suite name (`{cipher}`).
    pub cipher: Option<&'a str>,
    /// The cipher's key bits (`{cipher_bits}`).
    pub cipher_bits: Option<u32>,
    /// Further macros, `(name, value)` with names as the milter asks for
    /// them (`{my_macro}`); they take precedence over the built-in ones.
    pub extra_macros: &'a [(String, String)],
}
