//! The PROXY-protocol side of the failure-cause catalogue: why a connection on
//! a `proxy_protocol` listener was closed before SMTP began, as stable
//! `proxy.*` ids with a summary and the smallest safe fix (ADR 0007). The
//! listener (`postern-smtpd`) logs one of these for every connection it drops.
//!
//! Ids are API: add, never rename or reuse. Fix texts name configuration
//! keys as `` `[table] key` `` and commands as `` `postern …` ``, checked by
//! `crates/postern/tests/catalogues.rs`.
//!
//! # Security
//! Summaries name the peer address and the parser's own words, never octets
//! the peer sent.
//!
//! # Standards
//! HAProxy "The PROXY protocol" §2 (a receiver must drop a connection whose
//! header is missing or invalid, and never guess whether one is present).

use std::net::SocketAddr;
use std::time::Duration;

use super::ProxyError;

/// The peer is not in the listener's `trusted_proxies`.
pub const UNTRUSTED: &str = "proxy.untrusted";
/// The first octets are not a PROXY header (no header sent at all).
pub const MISSING: &str = "proxy.missing";
/// The header breaks the syntax, or is longer than allowed.
pub const MALFORMED: &str = "proxy.malformed";
/// A version, command, family or transport we do not accept.
pub const UNSUPPORTED: &str = "proxy.unsupported";
/// No complete header within the listener's `proxy_timeout`.
pub const TIMEOUT: &str = "proxy.timeout";
/// The peer closed the connection before the header was complete.
pub const CLOSED: &str = "proxy.closed";

/// Every id of this catalogue.
pub const ALL: &[&str] = &[UNTRUSTED, MISSING, MALFORMED, UNSUPPORTED, TIMEOUT, CLOSED];

/// A classified failure to read a PROXY header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyCause {
    /// Stable id.
    pub id: &'static str,
    /// What happened, in one sentence.
    pub summary: String,
    /// The smallest safe fix.
    pub fix: &'static str,
}

const FIX_SENDER: &str = "make the load balancer send the header on every connection to this \
     listener (HAProxy `send-proxy` or `send-proxy-v2` on the server line), or set \
     `[[listener]] proxy_protocol = false` if nothing in front of it speaks the PROXY protocol";

/// A connection from `peer`, which is not a trusted proxy.
pub fn untrusted(peer: SocketAddr) -> ProxyCause {
    ProxyCause {
        id: UNTRUSTED,
        summary: format!(
            "{peer} is not a trusted proxy of this PROXY-protocol listener: closed without a reply"
        ),
        fix: "none if the peer is not your load balancer (its PROXY header would be forged); \
              otherwise add its address to `[[listener]] trusted_proxies = [\"192.0.2.10\"]`",
    }
}

/// No complete header from `peer` within `limit`.
pub fn timeout(peer: SocketAddr, limit: Duration) -> ProxyCause {
    ProxyCause {
        id: TIMEOUT,
        summary: format!(
            "{peer} sent no complete PROXY header within {}s",
            limit.as_secs_f32()
        ),
        fix: FIX_SENDER,
    }
}

/// `peer` closed the connection before the header was complete.
pub fn closed(peer: SocketAddr) -> ProxyCause {
    ProxyCause {
        id: CLOSED,
        summary: format!("{peer} closed the connection before the PROXY header was complete"),
        fix: "none if it happens now and then (a health check that only opens a TCP \
              connection); if every connection ends so, check the load balancer's logs",
    }
}

impl ProxyError {
    /// The catalogue cause of this error in a header from `peer`.
    pub fn cause(&self, peer: SocketAddr) -> ProxyCause {
        let (id, fix) = match self {
            ProxyError::NotProxy => (MISSING, FIX_SENDER),
            ProxyError::TooLong { .. } | ProxyError::Malformed(_) => (
                MALFORMED,
                "none on our side: the proxy sends headers that break the PROXY protocol \
                 specification; fix or upgrade it (HAProxy's own headers always parse)",
            ),
            ProxyError::Version(_) | ProxyError::Command(_) | ProxyError::Unsupported(_) => (
                UNSUPPORTED,
                "send TCP (IPv4 or IPv6) client connections only: a PROXY-protocol listener \
                 refuses AF_UNIX and UDP headers; use `send-proxy` or `send-proxy-v2` on a \
                 `mode tcp` HAProxy backend",
            ),
        };
        ProxyCause {
            id,
            summary: format!("PROXY header from {peer} refused: {self}"),
            fix,
        }
    }
}
