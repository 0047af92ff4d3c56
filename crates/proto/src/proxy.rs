//! The HAProxy PROXY protocol header (v1 text and v2 binary), sans I/O: a load
//! balancer in front of a listener sends it first on each connection to say
//! which client it is relaying. [`parse`] takes the octets received so far and
//! says whether the header is incomplete, complete (and how many octets it
//! took), or broken. The failure-cause catalogue of the header ([`cause`]:
//! `proxy.*` ids, a summary and the smallest safe fix) is here too, beside the
//! error it classifies (ADR 0007).
//!
//! # Security
//! Every octet comes from the network. A header is believed only from the
//! addresses in `trusted_proxies` (the caller checks that before calling
//! [`parse`]): anyone else could claim any source address and walk past every
//! per-IP limit and sender group. The parser is strict (exact single spaces,
//! decimal ports without leading zeros, addresses of the announced family,
//! CRLF), bounded (v1: [`V1_MAX`] octets; v2: at most [`V2_MAX_PAYLOAD`]
//! octets after the fixed 16, refused as soon as the length field is read),
//! never allocates, and never panics (fuzzed: `fuzz/fuzz_targets/proxy.rs`).
//! TLVs are checked for framing and skipped: `PP2_TYPE_SSL`,
//! `PP2_TYPE_AUTHORITY` and the CRC32C checksum are not interpreted.
//! `AF_UNIX` and datagram transports are refused (an SMTP listener serves
//! TCP clients).
//!
//! # Standards
//! HAProxy "The PROXY protocol", versions 1 and 2 (doc/proxy-protocol.txt,
//! HAProxy 2.9): §2.1 (v1), §2.2 (v2), §2.2.1–2.2.8 (TLVs).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub mod cause;

/// The longest v1 header, CRLF included (spec §2.1: 107 octets).
pub const V1_MAX: usize = 107;
/// The v2 signature (spec §2.2).
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The fixed part of a v2 header: signature, version/command, family, length.
pub const V2_FIXED: usize = 16;
/// The largest v2 address block: two `AF_UNIX` paths of 108 octets.
const V2_MAX_ADDRESS: usize = 216;
/// TLV octets accepted after the address block (1 KiB): enough for the TLVs
/// load balancers send (ALPN, authority, SSL, unique id, CRC32C, AWS/Azure ids).
pub const V2_MAX_TLVS: usize = 1024;
/// The largest v2 length field accepted: the largest address block plus
/// [`V2_MAX_TLVS`]. The protocol allows 65535; a longer header is refused as
/// soon as its length is known.
pub const V2_MAX_PAYLOAD: usize = V2_MAX_ADDRESS + V2_MAX_TLVS;

/// What the octets received so far amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// A valid beginning: read more and call [`parse`] again with everything.
    Incomplete,
    /// A PROXY header for a TCP connection: `source` is the real client,
    /// `destination` the address it connected to on the load balancer.
    Done {
        /// The client's address and port.
        source: SocketAddr,
        /// The address and port the client connected to.
        destination: SocketAddr,
        /// Octets of the header; what follows is the client's.
        consumed: usize,
    },
    /// A v2 `LOCAL` header: the proxy's own connection (a health check); use
    /// the real peer address (spec §2.2).
    Local {
        /// Octets of the header.
        consumed: usize,
    },
    /// A v1 `UNKNOWN` header, or v2 `PROXY` with `AF_UNSPEC`: the proxy does not
    /// know the client; use the real peer address (spec §2.1, §2.2).
    Unknown {
        /// Octets of the header.
        consumed: usize,
    },
}

/// Why a header is refused. The connection is closed; nothing is replied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// The first octets are neither `PROXY ` (v1) nor the v2 signature.
    #[error("not a PROXY protocol header (neither \"PROXY \" nor the v2 signature)")]
    NotProxy,
    /// v1: no CRLF within 107 octets; v2: the length field exceeds the cap.
    #[error("PROXY header longer than {limit} octets")]
    TooLong {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The header breaks the syntax; the text says where.
    #[error("malformed PROXY header: {0}")]
    Malformed(&'static str),
    /// A v2 header with a version other than 2.
    #[error("PROXY protocol v2 header with version {0} (only 2 exists)")]
    Version(u8),
    /// A v2 header with a command other than `LOCAL` (0) or `PROXY` (1).
    #[error("PROXY protocol v2 header with unknown command {0}")]
    Command(u8),
    /// A family or transport this listener cannot use (`AF_UNIX`, UDP, an
    /// undefined one).
    #[error("PROXY header for an unsupported address family or transport: {0}")]
    Unsupported(&'static str),
}

/// Reads a PROXY header (v1 or v2) from the start of `input`.
///
/// Call again with the whole input each time more octets arrive, until it
/// returns something other than [`ProxyHeader::Incomplete`].
///
/// # Errors
/// [`ProxyError`] as soon as the octets cannot start a valid header.
pub fn parse(input: &[u8]) -> Result<ProxyHeader, ProxyError> {
    match input.first() {
        None => Ok(ProxyHeader::Incomplete),
        Some(b'P') => parse_v1(input),
        Some(b'\r') => parse_v2(input),
        Some(_) => Err(ProxyError::NotProxy),
    }
}

// ---------------------------------------------------------------------------
// v1: "PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\n" (spec §2.1)

fn parse_v1(input: &[u8]) -> Result<ProxyHeader, ProxyError> {
    const PREFIX: &[u8] = b"PROXY ";
    let n = input.len().min(PREFIX.len());
    if input[..n] != PREFIX[..n] {
        return Err(ProxyError::NotProxy);
    }
    let window = &input[..input.len().min(V1_MAX)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return if input.len() >= V1_MAX {
            Err(ProxyError::TooLong { limit: V1_MAX })
        } else {
            Ok(ProxyHeader::Incomplete)
        };
    };
    let consumed = lf + 1;
    let Some(line) = input[..lf].strip_suffix(b"\r") else {
        return Err(ProxyError::Malformed("v1 line not ended by CRLF"));
    };
    let rest = line
        .get(PREFIX.len()..)
        .ok_or(ProxyError::Malformed("v1 line too short"))?;
    if !rest.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        return Err(ProxyError::Malformed(
            "v1 line holds a control or non-ASCII octet",
        ));
    }
    // Only printable ASCII is left: the conversion cannot fail.
    let rest = std::str::from_utf8(rest).map_err(|_| ProxyError::Malformed("v1 not ASCII"))?;
    // Spec §2.1: after UNKNOWN the receiver ignores the rest of the line.
    if rest == "UNKNOWN" || rest.starts_with("UNKNOWN ") {
        return Ok(ProxyHeader::Unknown { consumed });
    }
    let mut fields = rest.split(' ');
    let (Some(proto), Some(src), Some(dst), Some(sport), Some(dport), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(ProxyError::Malformed(
            "v1 needs exactly: protocol, source, destination, source port, destination port, \
             separated by single spaces",
        ));
    };
    let (source, destination) = match proto {
        "TCP4" => (IpAddr::V4(v4(src)?), IpAddr::V4(v4(dst)?)),
        "TCP6" => (IpAddr::V6(v6(src)?), IpAddr::V6(v6(dst)?)),
        _ => {
            return Err(ProxyError::Malformed(
                "v1 protocol must be TCP4, TCP6 or UNKNOWN",
            ));
        }
    };
    Ok(ProxyHeader::Done {
        source: SocketAddr::new(source, port(sport)?),
        destination: SocketAddr::new(destination, port(dport)?),
        consumed,
    })
}

/// Dotted-quad IPv4 (the standard parser refuses leading zeros and anything
/// but four decimal octets).
fn v4(s: &str) -> Result<Ipv4Addr, ProxyError> {
    s.parse()
        .map_err(|_| ProxyError::Malformed("v1 TCP4 address is not a dotted-quad IPv4 address"))
}

/// RFC 4291 §2.2 text form.
fn v6(s: &str) -> Result<Ipv6Addr, ProxyError> {
    s.parse()
        .map_err(|_| ProxyError::Malformed("v1 TCP6 address is not an IPv6 address"))
}

/// A decimal port 0–65535 without leading zeros (spec §2.1).
fn port(s: &str) -> Result<u16, ProxyError> {
    let bad = ProxyError::Malformed("v1 port must be decimal 0-65535 without leading zeros");
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(bad);
    }
    s.parse().map_err(|_| bad)
}

// ---------------------------------------------------------------------------
// v2: signature, ver/cmd, fam/transport, length, addresses, TLVs (spec §2.2)

/// `AF_UNSPEC`, `AF_INET`, `AF_INET6`, `AF_UNIX` (high nibble of octet 13).
const FAMILY_UNSPEC: u8 = 0;
const FAMILY_INET: u8 = 1;
const FAMILY_INET6: u8 = 2;
const FAMILY_UNIX: u8 = 3;
/// `UNSPEC`, `STREAM`, `DGRAM` (low nibble of octet 13).
const TRANSPORT_UNSPEC: u8 = 0;
const TRANSPORT_STREAM: u8 = 1;
const TRANSPORT_DGRAM: u8 = 2;

fn parse_v2(input: &[u8]) -> Result<ProxyHeader, ProxyError> {
    let n = input.len().min(V2_SIGNATURE.len());
    if input[..n] != V2_SIGNATURE[..n] {
        return Err(ProxyError::NotProxy);
    }
    let Some(fixed) = input.get(..V2_FIXED) else {
        // The version and command are checked as soon as they arrive.
        return match input.get(12) {
            Some(&vc) => version_command(vc).map(|_| ProxyHeader::Incomplete),
            None => Ok(ProxyHeader::Incomplete),
        };
    };
    let local = version_command(fixed[12])?;
    let family = fixed[13] >> 4;
    let transport = fixed[13] & 0x0f;
    let len = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    if len > V2_MAX_PAYLOAD {
        return Err(ProxyError::TooLong {
            limit: V2_FIXED + V2_MAX_PAYLOAD,
        });
    }
    let consumed = V2_FIXED + len;
    let Some(payload) = input.get(V2_FIXED..consumed) else {
        return Ok(ProxyHeader::Incomplete);
    };
    if local {
        // Spec §2.2: with LOCAL the receiver must ignore the address block
        // whatever the family says, and use the real connection endpoints.
        return Ok(ProxyHeader::Local { consumed });
    }
    let (source, destination, used) = match (family, transport) {
        (FAMILY_UNSPEC, _) => {
            // Spec §2.2: the proxy does not know the client; like v1 UNKNOWN.
            return Ok(ProxyHeader::Unknown { consumed });
        }
        (FAMILY_INET | FAMILY_INET6, TRANSPORT_STREAM) => addresses(family, payload)?,
        (FAMILY_INET | FAMILY_INET6, TRANSPORT_DGRAM) => {
            return Err(ProxyError::Unsupported("UDP (DGRAM)"));
        }
        (FAMILY_INET | FAMILY_INET6, TRANSPORT_UNSPEC) => {
            return Err(ProxyError::Malformed(
                "v2 INET/INET6 address with UNSPEC transport",
            ));
        }
        (FAMILY_UNIX, _) => return Err(ProxyError::Unsupported("AF_UNIX")),
        _ => return Err(ProxyError::Unsupported("undefined family or transport")),
    };
    let tlvs = &payload[used..];
    if tlvs.len() > V2_MAX_TLVS {
        return Err(ProxyError::TooLong {
            limit: V2_FIXED + used + V2_MAX_TLVS,
        });
    }
    check_tlvs(tlvs)?;
    Ok(ProxyHeader::Done {
        source,
        destination,
        consumed,
    })
}

/// Octet 12: version 2 in the high nibble, command in the low one. True for
/// `LOCAL`, false for `PROXY`.
fn version_command(vc: u8) -> Result<bool, ProxyError> {
    if vc >> 4 != 2 {
        return Err(ProxyError::Version(vc >> 4));
    }
    match vc & 0x0f {
        0 => Ok(true),
        1 => Ok(false),
        c => Err(ProxyError::Command(c)),
    }
}

/// The INET (12 octets) or INET6 (36 octets) address block: source address,
/// destination address, source port, destination port, in network order.
fn addresses(family: u8, p: &[u8]) -> Result<(SocketAddr, SocketAddr, usize), ProxyError> {
    let too_short = ProxyError::Malformed("v2 length shorter than the address block of its family");
    if family == FAMILY_INET {
        let b: &[u8; 12] = p
            .get(..12)
            .and_then(|s| s.try_into().ok())
            .ok_or(too_short)?;
        let src = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
        let dst = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
        let sport = u16::from_be_bytes([b[8], b[9]]);
        let dport = u16::from_be_bytes([b[10], b[11]]);
        Ok((
            SocketAddr::new(src.into(), sport),
            SocketAddr::new(dst.into(), dport),
            12,
        ))
    } else {
        let b: &[u8; 36] = p
            .get(..36)
            .and_then(|s| s.try_into().ok())
            .ok_or(too_short)?;
        let mut src = [0u8; 16];
        let mut dst = [0u8; 16];
        src.copy_from_slice(&b[..16]);
        dst.copy_from_slice(&b[16..32]);
        let sport = u16::from_be_bytes([b[32], b[33]]);
        let dport = u16::from_be_bytes([b[34], b[35]]);
        Ok((
            SocketAddr::new(Ipv6Addr::from(src).into(), sport),
            SocketAddr::new(Ipv6Addr::from(dst).into(), dport),
            36,
        ))
    }
}

/// TLVs (spec §2.2.1): type, 16-bit length, value; each must fit exactly in
/// what is left. Their contents are not interpreted.
fn check_tlvs(mut tlvs: &[u8]) -> Result<(), ProxyError> {
    while !tlvs.is_empty() {
        let Some(&[_kind, hi, lo]) = tlvs.get(..3) else {
            return Err(ProxyError::Malformed("v2 TLV header cut short"));
        };
        let end = 3 + usize::from(u16::from_be_bytes([hi, lo]));
        tlvs = tlvs
            .get(end..)
            .ok_or(ProxyError::Malformed("v2 TLV longer than the header"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
