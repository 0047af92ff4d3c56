//! The replies the server composes outside the session machine: connection
//! admission and spool failures (the machine's own table is
//! `postern_proto::session`'s; parser and decoder errors map beside their
//! error types).
//!
//! # Standards
//! RFC 5321 §4.2 (reply codes), §3.8 (`421`), RFC 3463 (enhanced codes).

use postern_proto::{EnhancedCode, Reply};
use postern_spool::SpoolError;

fn r(code: u16, (c, s, d): (u8, u16, u16), text: impl Into<String>) -> Reply {
    Reply::new(code, Some(EnhancedCode::new(c, s, d)), text)
}

pub(crate) fn too_many_connections() -> Reply {
    r(421, (4, 7, 0), "Too many connections, try again later")
}
pub(crate) fn too_many_connections_from_ip() -> Reply {
    r(
        421,
        (4, 7, 0),
        "Too many connections from your address, try again later",
    )
}

/// Spool failures: a full disk is `452 4.3.1`, anything else `451 4.3.0`;
/// never `250` (tenet 1).
pub(crate) fn spool_error(err: &SpoolError) -> Reply {
    if err.is_no_space() {
        r(
            452,
            (4, 3, 1),
            "Insufficient system storage, try again later",
        )
    } else {
        r(451, (4, 3, 0), "Local error in processing, try again later")
    }
}

/// A reply on one line (lines joined by ` / `), for logs, events and
/// `Envelope::bounce`.
pub(crate) fn one_line(r: &Reply) -> String {
    String::from_utf8_lossy(&r.to_bytes())
        .trim_end()
        .replace("\r\n", " / ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_errors_are_transient() {
        let poisoned = spool_error(&SpoolError::Poisoned);
        assert_eq!(
            String::from_utf8(poisoned.to_bytes()).unwrap(),
            "451 4.3.0 Local error in processing, try again later\r\n"
        );
        assert_eq!(too_many_connections().code, 421);
    }
}
