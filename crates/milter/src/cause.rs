//! The milter client's side of the failure-cause catalogue (ADR 0007): what
//! a [`MilterError`] means for an operator, as stable `milter.*` ids with a
//! summary and the smallest safe fix.
//!
//! Ids are API: add, never rename or reuse.
//!
//! # Security
//! Summaries name the milter, its address and the stage; never message
//! content.

use std::io::ErrorKind;

use crate::{MilterError, ProtocolError};

/// The address in the configuration cannot be used.
pub const ADDRESS: &str = "milter.address";
/// The milter refused the connection or its socket does not exist.
pub const CONNECT: &str = "milter.connect";
/// No answer within a timeout.
pub const TIMEOUT: &str = "milter.timeout";
/// The milter closed the connection or it broke mid-conversation.
pub const CLOSED: &str = "milter.closed";
/// The milter speaks a protocol version or asks for actions we do not
/// offer.
pub const NEGOTIATION: &str = "milter.negotiation";
/// The milter sent a packet that breaks the protocol or our bounds.
pub const PROTOCOL: &str = "milter.protocol";
/// Our data could not be sent (a NUL byte in a field).
pub const ENCODE: &str = "milter.encode";
/// Reading the message body failed.
pub const BODY: &str = "milter.body";

/// Every id of this catalogue.
pub const ALL: &[&str] = &[
    ADDRESS,
    CONNECT,
    TIMEOUT,
    CLOSED,
    NEGOTIATION,
    PROTOCOL,
    ENCODE,
    BODY,
];

/// A classified milter failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MilterCause {
    /// Stable id.
    pub id: &'static str,
    /// What happened, in one sentence.
    pub summary: String,
    /// The smallest safe fix.
    pub fix: &'static str,
    /// The raw error text.
    pub detail: String,
}

impl MilterError {
    /// The catalogue cause of this error.
    pub fn cause(&self) -> MilterCause {
        let detail = self.to_string();
        let (id, summary, fix) = match self {
            MilterError::Address { name, .. } => (
                ADDRESS,
                format!("the address of milter {name} cannot be used"),
                "write it as unix:/path, inet:host:port or inet:port@host and run \
                 `postern config check`",
            ),
            MilterError::Connect { name, address, .. } => (
                CONNECT,
                format!("milter {name} at {address} refused the connection or is not there"),
                "start the milter and check that it listens where the configuration says \
                 (`ss -ltnx`); for a Unix socket, that Postern may open it (owner, mode, \
                 and a path inside a chroot as the milter sees it)",
            ),
            MilterError::Timeout { name, stage, .. } => (
                TIMEOUT,
                format!("milter {name} did not answer in time at stage {stage}"),
                "check the milter's load and its own logs; if it is only slow (large \
                 messages, virus scans), raise the milter's `command_timeout` or \
                 `end_of_message_timeout`",
            ),
            MilterError::Io {
                name,
                stage,
                source,
            } => (
                CLOSED,
                if source.kind() == ErrorKind::UnexpectedEof {
                    format!("milter {name} closed the connection at stage {stage}")
                } else {
                    format!("the connection to milter {name} broke at stage {stage}")
                },
                "read the milter's own log for the same time: it usually says why it \
                 dropped the connection (crash, configuration error, a limit)",
            ),
            MilterError::Protocol {
                name,
                source: ProtocolError::Version(_) | ProtocolError::Actions { .. },
                ..
            } => (
                NEGOTIATION,
                format!("milter {name} wants a protocol version or actions Postern does not offer"),
                "allow the actions the milter needs in its `actions` setting, or configure \
                 the milter to need fewer; Postern speaks milter protocol versions 2 to 6",
            ),
            MilterError::Protocol { name, stage, .. } => (
                PROTOCOL,
                format!("milter {name} sent a malformed or unexpected packet at stage {stage}"),
                "a bug or misconfiguration in the milter (the detail names the packet and \
                 the fault); check that the address is a milter and not another service",
            ),
            MilterError::Encode { name, .. } => (
                ENCODE,
                format!("a field of the message could not be sent to milter {name}"),
                "the message holds a NUL byte in a header or envelope field; nothing to \
                 configure: the failure action applies",
            ),
            MilterError::Body { name, .. } => (
                BODY,
                format!("reading the spooled message for milter {name} failed"),
                "check the spool disk (`dmesg`, free space) and the message file",
            ),
        };
        MilterCause {
            id,
            summary,
            fix,
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::Stage;

    #[test]
    fn each_error_maps_to_a_catalogue_id() {
        let name = || "dkim".to_owned();
        let cases = [
            (
                MilterError::Timeout {
                    name: name(),
                    stage: Stage::EndOfMessage,
                    after: Duration::from_secs(1),
                },
                TIMEOUT,
            ),
            (
                MilterError::Protocol {
                    name: name(),
                    stage: Stage::Negotiate,
                    source: ProtocolError::Version(1),
                },
                NEGOTIATION,
            ),
            (
                MilterError::Protocol {
                    name: name(),
                    stage: Stage::Rcpt,
                    source: ProtocolError::UnknownReply('z'),
                },
                PROTOCOL,
            ),
            (
                MilterError::Io {
                    name: name(),
                    stage: Stage::Body,
                    source: std::io::Error::from(ErrorKind::UnexpectedEof),
                },
                CLOSED,
            ),
        ];
        for (err, id) in cases {
            let cause = err.cause();
            assert_eq!(cause.id, id);
            assert!(ALL.contains(&cause.id));
            assert!(cause.summary.contains("dkim"));
        }
    }
}
