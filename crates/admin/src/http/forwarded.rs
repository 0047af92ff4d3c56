//! The client's address: the connection's peer, or — when the peer is a
//! trusted reverse proxy (`[admin] http_trusted_proxies`) — the address the
//! proxy names in `X-Forwarded-For`. The login limiter, the audit trail
//! (`by` in the mail log) and the logs use it.
//!
//! Follow a request: [`resolve`] runs first (outermost but for the security
//! headers); with the peer in the trusted list it reads every
//! `X-Forwarded-For` header as one comma-separated list and walks it from
//! the right, skipping trusted proxies: the first address that is not one is
//! the client (what the nearest untrusted hop said). The result goes into the
//! request as [`ClientAddr`].
//!
//! # Security
//! `X-Forwarded-For` is believed only from a trusted peer, and only as far as
//! the chain of trusted proxies reaches: a client's own forged entries sit to
//! the left of what its proxy appended and are never chosen. An unparsable
//! entry ends the walk at the last trusted hop (fail towards the proxy's
//! address, which shares limits, never towards a forged one). At most
//! [`MAX_HOPS`] entries are read.
//!
//! # Standards
//! `X-Forwarded-For` (de facto; RFC 7239 §5.2 describes the same `for=`
//! semantics for `Forwarded`, which is not read).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;

use super::HttpState;

/// Entries of `X-Forwarded-For` read at most.
pub const MAX_HOPS: usize = 16;

/// The client's address as resolved for this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The client address behind `peer`, given the request's headers.
pub fn client_addr(peer: IpAddr, forwarded_for: &[&str], trusted: &[ipnet::IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(&ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for
        .iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev().take(MAX_HOPS) {
        let Some(ip) = parse_hop(hop) else {
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// `192.0.2.1`, `2001:db8::1`, `[2001:db8::1]`, `192.0.2.1:4711`,
/// `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = hop.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
}

/// Puts [`ClientAddr`] into the request (see the module documentation).
pub(crate) async fn resolve(
    axum::extract::State(s): axum::extract::State<HttpState>,
    mut req: Request,
    next: Next,
) -> Response {
    if let Some(peer) = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
    {
        let headers: Vec<&str> = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let ip = client_addr(peer, &headers, &s.settings.trusted_proxies);
        req.extensions_mut().insert(ClientAddr(ip));
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_trusted_peers_are_believed() {
        let trusted: Vec<ipnet::IpNet> = vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
        // Not a proxy: its header is ignored.
        assert_eq!(
            client_addr(ip("198.51.100.7"), &["192.0.2.1"], &trusted),
            ip("198.51.100.7")
        );
        // The proxy appended the client's address.
        assert_eq!(
            client_addr(ip("127.0.0.1"), &["192.0.2.1"], &trusted),
            ip("192.0.2.1")
        );
        // The client forged an entry on the left: never chosen.
        assert_eq!(
            client_addr(ip("127.0.0.1"), &["203.0.113.66, 192.0.2.1"], &trusted),
            ip("192.0.2.1")
        );
        // Two trusted hops; several headers form one list.
        assert_eq!(
            client_addr(ip("127.0.0.1"), &["192.0.2.1", "10.1.2.3"], &trusted),
            ip("192.0.2.1")
        );
        // Ports and brackets; IPv4-mapped.
        assert_eq!(
            client_addr(ip("::ffff:127.0.0.1"), &["[2001:db8::1]:4711"], &trusted),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_addr(ip("127.0.0.1"), &["192.0.2.1:4711"], &trusted),
            ip("192.0.2.1")
        );
        // Garbage ends the walk at the last trusted hop.
        assert_eq!(
            client_addr(ip("127.0.0.1"), &["192.0.2.1, unknown"], &trusted),
            ip("127.0.0.1")
        );
        // No header: the proxy itself.
        assert_eq!(client_addr(ip("127.0.0.1"), &[], &trusted), ip("127.0.0.1"));
        // Nothing trusted (the default): the peer, always.
        assert_eq!(
            client_addr(ip("127.0.0.1"), &["192.0.2.1"], &[]),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn hops_are_bounded() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let chain: Vec<String> = std::iter::once("192.0.2.1".to_owned())
            .chain((0..40).map(|i| format!("10.0.0.{i}")))
            .collect();
        let chain = chain.join(", ");
        // All within MAX_HOPS are trusted: the walk stops at the bound, on a
        // proxy's address, not on the far-left entry.
        let got = client_addr(ip("10.9.9.9"), &[&chain], &trusted);
        assert!(trusted[0].contains(&got), "{got}");
    }
}
