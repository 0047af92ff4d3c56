//! Where an engine listens: `host:port` over TCP, or a Unix socket path, and
//! the one function that connects to it.
//!
//! # Security
//! The address comes from the operator's configuration, never from a peer.
//! Host names are resolved by the system resolver at each connection (an
//! engine that moves is followed without a restart).

use std::fmt;
use std::io;
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::str::FromStr;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

/// Where an engine listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EngineAddr {
    /// TCP: a host name, an IPv4 address or an IPv6 address (without
    /// brackets here), and a port.
    Tcp {
        /// Host name or address.
        host: String,
        /// Port, never 0.
        port: u16,
    },
    /// A Unix socket path (absolute).
    Unix(PathBuf),
}

/// A text that is not an [`EngineAddr`]; the message says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not an engine address ({reason}): write host:port (127.0.0.1:11333, \
     [::1]:3310, scanner.example.net:11333) or an absolute Unix socket path \
     (/run/clamav/clamd.ctl)"
)]
pub struct AddrError {
    /// The text as given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for EngineAddr {
    type Err = AddrError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| AddrError {
            input: input.to_owned(),
            reason,
        };
        let path = input.strip_prefix("unix:").unwrap_or(input);
        if path.starts_with('/') {
            if path.chars().any(char::is_control) {
                return Err(err("a control character in the path"));
            }
            return Ok(EngineAddr::Unix(PathBuf::from(path)));
        }
        if input.starts_with("unix:") {
            return Err(err("a Unix socket path must be absolute"));
        }
        let Some((host, port)) = input.rsplit_once(':') else {
            return Err(err("no port"));
        };
        let host = if let Some(inner) = host.strip_prefix('[') {
            let Some(inner) = inner.strip_suffix(']') else {
                return Err(err("an unclosed '['"));
            };
            if inner.parse::<Ipv6Addr>().is_err() {
                return Err(err("not an IPv6 address between the brackets"));
            }
            inner
        } else {
            if host.contains(':') {
                return Err(err("an IPv6 address needs brackets: [::1]:3310"));
            }
            if host.is_empty() {
                return Err(err("no host"));
            }
            if !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            {
                return Err(err("the host is not a name or an address"));
            }
            host
        };
        let port = match port.parse::<u16>() {
            Ok(0) | Err(_) => return Err(err("the port is not a number from 1 to 65535")),
            Ok(p) => p,
        };
        Ok(EngineAddr::Tcp {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for EngineAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineAddr::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            EngineAddr::Tcp { host, port } => write!(f, "{host}:{port}"),
            EngineAddr::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A connected byte stream, TCP or Unix.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Opens a connection to `addr` (the caller bounds it with its deadline).
pub(crate) async fn connect(addr: &EngineAddr) -> io::Result<Box<dyn Io>> {
    match addr {
        EngineAddr::Tcp { host, port } => {
            let stream = TcpStream::connect((host.as_str(), *port)).await?;
            // Small request heads and chunk headers: do not wait for more.
            stream.set_nodelay(true)?;
            Ok(Box::new(stream))
        }
        EngineAddr::Unix(path) => Ok(Box::new(UnixStream::connect(path).await?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcp_and_unix_addresses() {
        let ok = [
            ("127.0.0.1:11333", "127.0.0.1:11333"),
            ("localhost:3310", "localhost:3310"),
            ("[::1]:3310", "[::1]:3310"),
            ("scanner-1.example.net:11333", "scanner-1.example.net:11333"),
            ("/run/clamav/clamd.ctl", "/run/clamav/clamd.ctl"),
            ("unix:/run/rspamd/normal.sock", "/run/rspamd/normal.sock"),
        ];
        for (input, shown) in ok {
            let addr: EngineAddr = input.parse().unwrap();
            assert_eq!(addr.to_string(), shown, "{input}");
        }
        assert_eq!(
            "[::1]:3310".parse::<EngineAddr>().unwrap(),
            EngineAddr::Tcp {
                host: "::1".into(),
                port: 3310
            }
        );
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        let bad = [
            ("127.0.0.1", "no port"),
            (":3310", "no host"),
            ("::1:3310", "an IPv6 address needs brackets: [::1]:3310"),
            ("[::1:3310", "an unclosed '['"),
            ("[example]:3310", "not an IPv6 address between the brackets"),
            ("host:0", "the port is not a number from 1 to 65535"),
            ("host:99999", "the port is not a number from 1 to 65535"),
            ("ho st:3310", "the host is not a name or an address"),
            ("unix:clamd.ctl", "a Unix socket path must be absolute"),
            ("/run/x\n", "a control character in the path"),
        ];
        for (input, reason) in bad {
            let err = input.parse::<EngineAddr>().unwrap_err();
            assert_eq!(err.reason, reason, "{input}");
            assert!(err.to_string().contains("host:port"), "{err}");
        }
    }
}
