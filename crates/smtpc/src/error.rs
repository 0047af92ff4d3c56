//! The crate's error type and the stages of an outbound session.
//!
//! A 4xx/5xx reply to MAIL, RCPT or the end of data is an *outcome*
//! ([`crate::TransactionOutcome`]), not an error; errors are what stops the
//! session from going on: connection, timeouts, TLS, replies that make the
//! next step impossible (a 554 banner, a refused STARTTLS), a server that
//! breaks the protocol, or an envelope we refuse to send.

use std::fmt;
use std::net::SocketAddr;

use postern_proto::Reply;
use postern_tls::cause::Cause;

/// Where in the session something happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// TCP connect.
    Connect,
    /// Waiting for the 220 greeting.
    Banner,
    /// EHLO (or the HELO fallback).
    Ehlo,
    /// The STARTTLS command.
    StartTls,
    /// The TLS handshake (after STARTTLS, or implicit TLS).
    TlsHandshake,
    /// AUTH.
    Auth,
    /// MAIL FROM.
    Mail,
    /// RCPT TO.
    Rcpt,
    /// DATA (or BDAT) and sending the message.
    Data,
    /// Waiting for the reply to the end of data.
    DataEnd,
    /// RSET.
    Rset,
    /// QUIT.
    Quit,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "connect",
            Stage::Banner => "banner",
            Stage::Ehlo => "EHLO",
            Stage::StartTls => "STARTTLS",
            Stage::TlsHandshake => "TLS handshake",
            Stage::Auth => "AUTH",
            Stage::Mail => "MAIL FROM",
            Stage::Rcpt => "RCPT TO",
            Stage::Data => "DATA",
            Stage::DataEnd => "end of data",
            Stage::Rset => "RSET",
            Stage::Quit => "QUIT",
        })
    }
}

/// Why an outbound session could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TCP connection could not be made.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address tried.
        addr: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
    /// The server did not answer (or accept data) in time.
    #[error("timed out during {stage}")]
    Timeout {
        /// Where.
        stage: Stage,
    },
    /// The connection failed (closed by the server, reset, …).
    #[error("connection failed during {stage}: {source}")]
    Io {
        /// Where.
        stage: Stage,
        /// The socket error.
        source: std::io::Error,
    },
    /// The TLS handshake failed, or TLS failed after it (TLS 1.3 reports a
    /// refused client certificate at the first read, RFC 8446 §4.4.2.4); the
    /// cause comes from the shared catalogue.
    #[error("TLS handshake failed: {cause}")]
    Tls {
        /// Where: [`Stage::TlsHandshake`], or the step whose read or write
        /// met the TLS error.
        stage: Stage,
        /// The classified cause, with its fix.
        cause: Cause,
    },
    /// Reading the message to send failed (our side: the spool or a file).
    /// The connection was dropped without ending the data, so the server
    /// discards the partial message.
    #[error("reading the message to send failed: {source}")]
    Body {
        /// The read error.
        source: std::io::Error,
    },
    /// The server's reply makes the next step impossible.
    #[error("{stage}: the server replied {}", reply_text(reply))]
    UnexpectedReply {
        /// Where.
        stage: Stage,
        /// The reply.
        reply: Reply,
    },
    /// The server broke the protocol (malformed or oversized reply).
    #[error("{stage}: protocol error: {detail}")]
    Protocol {
        /// Where.
        stage: Stage,
        /// What was wrong.
        detail: String,
    },
    /// The server does not offer an extension the step needs.
    #[error("{stage}: the server does not offer {extension}")]
    NotOffered {
        /// Where.
        stage: Stage,
        /// The EHLO keyword or SASL mechanism.
        extension: String,
    },
    /// The server does not advertise AUTH with a mechanism we asked for.
    #[error(
        "AUTH: the server does not offer AUTH {mechanism}{}",
        offered_text(offered)
    )]
    AuthNotOffered {
        /// The mechanism we wanted.
        mechanism: String,
        /// The mechanisms the last EHLO advertised (empty: no AUTH at all).
        offered: Vec<String>,
        /// Whether the session was encrypted.
        tls: bool,
    },
    /// We refuse to do this step on this connection (AUTH without TLS).
    #[error("{stage}: refused: {detail}")]
    Insecure {
        /// Where.
        stage: Stage,
        /// Why, and how to allow it.
        detail: String,
    },
    /// The caller's input cannot be sent safely (a CR/LF in an address, an
    /// invalid server name, …).
    #[error("{stage}: invalid input: {detail}")]
    Invalid {
        /// Where.
        stage: Stage,
        /// What is wrong.
        detail: String,
    },
}

fn offered_text(offered: &[String]) -> String {
    if offered.is_empty() {
        " (no AUTH advertised)".to_owned()
    } else {
        format!(" (offered: {})", offered.join(" "))
    }
}

/// `550 5.7.1 text` on one line (multi-line text joined with " / ").
pub(crate) fn reply_text(reply: &Reply) -> String {
    let mut out = reply.code.to_string();
    if let Some(e) = reply.enhanced {
        out.push(' ');
        out.push_str(&e.to_string());
    }
    let text = reply
        .lines
        .iter()
        .filter(|l| !l.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join(" / ");
    if !text.is_empty() {
        out.push(' ');
        out.push_str(&text);
    }
    out
}

impl ClientError {
    /// Whether a later attempt may succeed. A 5xx reply and our own refusals
    /// (invalid input, insecure AUTH) are permanent; everything else,
    /// including anything unknown, is transient (ARCHITECTURE.md: unknown
    /// errors defer, they do not bounce).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::UnexpectedReply { reply, .. } => !reply.is_permanent(),
            ClientError::Invalid { .. } | ClientError::Insecure { .. } => false,
            ClientError::Connect { .. }
            | ClientError::Timeout { .. }
            | ClientError::Io { .. }
            | ClientError::Tls { .. }
            | ClientError::Protocol { .. }
            | ClientError::NotOffered { .. }
            | ClientError::AuthNotOffered { .. }
            | ClientError::Body { .. } => true,
        }
    }

    /// Where it happened.
    pub fn stage(&self) -> Stage {
        match self {
            ClientError::Connect { .. } => Stage::Connect,
            ClientError::AuthNotOffered { .. } => Stage::Auth,
            ClientError::Body { .. } => Stage::Data,
            ClientError::Timeout { stage }
            | ClientError::Io { stage, .. }
            | ClientError::Tls { stage, .. }
            | ClientError::UnexpectedReply { stage, .. }
            | ClientError::Protocol { stage, .. }
            | ClientError::NotOffered { stage, .. }
            | ClientError::Insecure { stage, .. }
            | ClientError::Invalid { stage, .. } => *stage,
        }
    }

    /// The TLS cause, when this is a handshake failure.
    pub fn tls_cause(&self) -> Option<&Cause> {
        match self {
            ClientError::Tls { cause, .. } => Some(cause),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_proto::EnhancedCode;

    #[test]
    fn transient_table() {
        let io = || std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let reply = |code| Reply::new(code, Some(EnhancedCode::new(4, 0, 0)), "x");
        let cases: Vec<(ClientError, bool, Stage)> = vec![
            (
                ClientError::Connect {
                    addr: "127.0.0.1:25".parse().unwrap_or_else(|_| unreachable!()),
                    source: io(),
                },
                true,
                Stage::Connect,
            ),
            (
                ClientError::Timeout {
                    stage: Stage::Banner,
                },
                true,
                Stage::Banner,
            ),
            (
                ClientError::Io {
                    stage: Stage::Data,
                    source: io(),
                },
                true,
                Stage::Data,
            ),
            (
                ClientError::UnexpectedReply {
                    stage: Stage::Banner,
                    reply: reply(554),
                },
                false,
                Stage::Banner,
            ),
            (
                ClientError::UnexpectedReply {
                    stage: Stage::StartTls,
                    reply: reply(454),
                },
                true,
                Stage::StartTls,
            ),
            (
                ClientError::Protocol {
                    stage: Stage::Ehlo,
                    detail: "x".into(),
                },
                true,
                Stage::Ehlo,
            ),
            (
                ClientError::Invalid {
                    stage: Stage::Mail,
                    detail: "x".into(),
                },
                false,
                Stage::Mail,
            ),
            (
                ClientError::Insecure {
                    stage: Stage::Auth,
                    detail: "x".into(),
                },
                false,
                Stage::Auth,
            ),
        ];
        for (err, transient, stage) in cases {
            assert_eq!(err.is_transient(), transient, "{err}");
            assert_eq!(err.stage(), stage, "{err}");
        }
    }

    #[test]
    fn reply_in_message() {
        let err = ClientError::UnexpectedReply {
            stage: Stage::Auth,
            reply: Reply::multiline(
                535,
                Some(EnhancedCode::new(5, 7, 8)),
                vec!["Authentication".into(), "failed".into()],
            ),
        };
        assert_eq!(
            err.to_string(),
            "AUTH: the server replied 535 5.7.8 Authentication / failed"
        );
    }
}
