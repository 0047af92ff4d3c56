//! Reads the server's answer to a hand-built ClientHello: TLS records are
//! reassembled, handshake messages are cut out of the record stream (a
//! Certificate may span several records) and parsed with tls-parser. Sans-I/O:
//! the probe feeds bytes in, [`FlightParser::push`] says when it has enough.
//!
//! What is kept: the ServerHello (version — from supported_versions for TLS 1.3
//! — suite, HelloRetryRequest or not, the TLS 1.3 key_share group), and for
//! TLS ≤ 1.2 the cleartext Certificate chain and ServerKeyExchange (DH prime
//! size or ECDHE curve). Reading stops at ServerHelloDone, at the ServerHello
//! for TLS 1.3 (the rest is encrypted), at an alert, or at end of stream.
//!
//! # Security
//! Parses untrusted bytes from the network. Every length is bounded: records by
//! the TLS maximum, the whole flight by [`MAX_FLIGHT`]; parse errors become
//! [`WireError`], never panics.
//!
//! # Standards
//! RFC 8446 §4.1.3–4.1.4 (ServerHello, HelloRetryRequest), RFC 5246 §6.2 and
//! §7.4 (records, handshake messages), RFC 4492 / RFC 8422 §5.4 (ECDHE
//! ServerKeyExchange), RFC 5246 §7.4.3 (DH ServerKeyExchange).

use tls_parser::{
    ECParametersContent, TlsExtension, TlsMessage, TlsMessageHandshake, parse_dh_params,
    parse_ecdh_params, parse_tls_message_handshake, parse_tls_server_hello_extensions,
};

/// Largest flight read (the chain of a large RSA deployment is ~10 KiB).
pub const MAX_FLIGHT: usize = 256 * 1024;
/// TLS record payload limit with room for compression/expansion (RFC 5246 §6.2.3).
const MAX_RECORD: usize = 16384 + 2048;

/// RFC 8446 §4.1.3: a HelloRetryRequest is a ServerHello with this random.
pub const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// What the server said about one ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A ServerHello (or HelloRetryRequest) and what followed it.
    Hello(ServerFlight),
    /// A TLS alert before any ServerHello (description code, RFC 8446 §6).
    Alert(u8),
    /// The connection closed before a ServerHello.
    Closed,
    /// No complete answer within the time limit.
    Timeout,
}

/// The parts of a server flight the report needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerFlight {
    /// Negotiated version: supported_versions for TLS 1.3, else server_version.
    pub version: u16,
    /// The chosen suite.
    pub suite: u16,
    /// The chosen compression method (0 = null; anything else is CRIME-prone).
    pub compression: u8,
    /// A TLS 1.3 HelloRetryRequest rather than a ServerHello.
    pub hrr: bool,
    /// The key-exchange group: TLS 1.3 key_share (ServerHello) or selected_group
    /// (HelloRetryRequest), or the named curve of an ECDHE ServerKeyExchange.
    pub group: Option<u16>,
    /// Bits of the DH prime of a DHE ServerKeyExchange.
    pub dh_bits: Option<u32>,
    /// The ECDHE ServerKeyExchange used explicit curve parameters.
    pub explicit_curve: bool,
    /// Certificates of a cleartext (TLS ≤ 1.2) Certificate message, leaf first.
    pub certs: Vec<Vec<u8>>,
}

/// The answer was not a TLS server flight.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not TLS at all (e.g. an SMTP reply after a refused STARTTLS).
    #[error("the server answered with something that is not TLS: {0:?}")]
    NotTls(String),
    /// TLS records whose content does not parse.
    #[error("malformed TLS from the server: {0}")]
    Malformed(String),
    /// More than [`MAX_FLIGHT`] bytes before the end of the flight.
    #[error("the server's handshake flight is larger than {MAX_FLIGHT} bytes")]
    TooLarge,
}

/// Incremental parser of one server flight.
#[derive(Debug)]
pub struct FlightParser {
    buf: Vec<u8>,
    hs: Vec<u8>,
    total: usize,
    flight: Option<ServerFlight>,
    stop_after_hello: bool,
}

impl FlightParser {
    /// `stop_after_hello`: done as soon as the ServerHello is in (TLS 1.3
    /// probes; a TLS 1.3 ServerHello always ends the cleartext part anyway).
    pub fn new(stop_after_hello: bool) -> Self {
        Self {
            buf: Vec::new(),
            hs: Vec::new(),
            total: 0,
            flight: None,
            stop_after_hello,
        }
    }

    /// Feeds bytes; `Some` once the answer is complete.
    pub fn push(&mut self, data: &[u8]) -> Result<Option<Reply>, WireError> {
        self.total += data.len();
        if self.total > MAX_FLIGHT {
            return Err(WireError::TooLarge);
        }
        self.buf.extend_from_slice(data);
        loop {
            if self.buf.len() < 5 {
                return Ok(None);
            }
            let ty = self.buf[0];
            let len = usize::from(u16::from_be_bytes([self.buf[3], self.buf[4]]));
            if !(20..=24).contains(&ty) || self.buf[1] != 3 {
                return Err(WireError::NotTls(preview(&self.buf)));
            }
            if len > MAX_RECORD {
                return Err(WireError::Malformed(format!("record of {len} bytes")));
            }
            if self.buf.len() < 5 + len {
                return Ok(None);
            }
            let payload: Vec<u8> = self.buf.drain(..5 + len).skip(5).collect();
            match ty {
                21 => {
                    // Alert: level, description. After a ServerHello an alert
                    // ends the flight with what we have.
                    if payload.len() < 2 {
                        return Err(WireError::Malformed("short alert".into()));
                    }
                    return Ok(Some(match self.flight.take() {
                        Some(f) => Reply::Hello(f),
                        None => Reply::Alert(payload[1]),
                    }));
                }
                22 => {
                    self.hs.extend_from_slice(&payload);
                    if let Some(reply) = self.handshake_messages()? {
                        return Ok(Some(reply));
                    }
                }
                // ChangeCipherSpec (TLS 1.3 middlebox compatibility) carries nothing.
                20 => {}
                _ => {
                    // Application data or heartbeat before the end of the
                    // cleartext flight: take what we have, if anything.
                    return match self.flight.take() {
                        Some(f) => Ok(Some(Reply::Hello(f))),
                        None => Err(WireError::Malformed(format!(
                            "record type {ty} before the ServerHello"
                        ))),
                    };
                }
            }
        }
    }

    /// End of stream: the flight so far, or [`Reply::Closed`].
    pub fn eof(&mut self) -> Reply {
        self.flight.take().map_or(Reply::Closed, Reply::Hello)
    }

    /// A ServerHello was seen (for a timeout mid-flight).
    pub fn partial(&mut self) -> Option<ServerFlight> {
        self.flight.take()
    }

    fn handshake_messages(&mut self) -> Result<Option<Reply>, WireError> {
        loop {
            if self.hs.len() < 4 {
                return Ok(None);
            }
            let len = (usize::from(self.hs[1]) << 16)
                | (usize::from(self.hs[2]) << 8)
                | usize::from(self.hs[3]);
            if self.hs.len() < 4 + len {
                return Ok(None);
            }
            let msg: Vec<u8> = self.hs.drain(..4 + len).collect();
            let ty = msg[0];
            if self.flight.is_none() && ty != 2 {
                return Err(WireError::Malformed(format!(
                    "handshake message type {ty} before the ServerHello"
                )));
            }
            match ty {
                2 => {
                    if self.flight.is_some() {
                        return Err(WireError::Malformed("second ServerHello".into()));
                    }
                    let flight = server_hello(&msg)?;
                    let done = flight.hrr || flight.version >= 0x0304 || self.stop_after_hello;
                    self.flight = Some(flight);
                    if done {
                        return Ok(self.flight.take().map(Reply::Hello));
                    }
                }
                11 => {
                    let certs = certificates(&msg)?;
                    if let Some(f) = self.flight.as_mut() {
                        f.certs = certs;
                    }
                }
                12 => {
                    if let Some(f) = self.flight.as_mut() {
                        server_key_exchange(&msg, f);
                    }
                }
                // ServerHelloDone.
                14 => return Ok(self.flight.take().map(Reply::Hello)),
                // CertificateStatus, CertificateRequest, …: not needed.
                _ => {}
            }
        }
    }
}

fn server_hello(msg: &[u8]) -> Result<ServerFlight, WireError> {
    let bad = |e: &dyn std::fmt::Debug| WireError::Malformed(format!("ServerHello: {e:?}"));
    let (_, parsed) = parse_tls_message_handshake(msg).map_err(|e| bad(&e))?;
    let TlsMessage::Handshake(TlsMessageHandshake::ServerHello(sh)) = parsed else {
        return Err(WireError::Malformed(
            "ServerHello of an unknown version".into(),
        ));
    };
    let mut flight = ServerFlight {
        version: sh.version.0,
        suite: sh.cipher.0,
        compression: sh.compression.0,
        hrr: sh.random == HRR_RANDOM,
        ..ServerFlight::default()
    };
    if let Some(ext) = sh.ext {
        let (_, exts) = parse_tls_server_hello_extensions(ext).map_err(|e| bad(&e))?;
        for e in exts {
            match e {
                TlsExtension::SupportedVersions(v) => {
                    if let Some(v) = v.first() {
                        flight.version = v.0;
                    }
                }
                TlsExtension::KeyShare(k) if k.len() >= 2 => {
                    flight.group = Some(u16::from_be_bytes([k[0], k[1]]));
                }
                _ => {}
            }
        }
    }
    Ok(flight)
}

fn certificates(msg: &[u8]) -> Result<Vec<Vec<u8>>, WireError> {
    let (_, parsed) = parse_tls_message_handshake(msg)
        .map_err(|e| WireError::Malformed(format!("Certificate: {e:?}")))?;
    match parsed {
        TlsMessage::Handshake(TlsMessageHandshake::Certificate(c)) => {
            Ok(c.cert_chain.iter().map(|c| c.data.to_vec()).collect())
        }
        _ => Err(WireError::Malformed("Certificate".into())),
    }
}

/// DH prime size or ECDHE curve, by the kind of key exchange of the chosen suite.
fn server_key_exchange(msg: &[u8], flight: &mut ServerFlight) {
    let Some(params) = msg.get(4..) else { return };
    let kx = postern_tls::suites::by_id(flight.suite).map_or("", |s| s.kx);
    if kx.starts_with("ECDHE") {
        let params = if kx == "ECDHE-PSK" {
            skip_psk_hint(params)
        } else {
            Some(params)
        };
        if let Some(Ok((_, ecdh))) = params.map(parse_ecdh_params) {
            match ecdh.curve_params.params_content {
                ECParametersContent::NamedGroup(g) => flight.group = Some(g.0),
                ECParametersContent::ExplicitPrime(_) => {
                    flight.explicit_curve = true;
                }
            }
        }
    } else if kx.starts_with("DHE") {
        let params = if kx == "DHE-PSK" {
            skip_psk_hint(params)
        } else {
            Some(params)
        };
        if let Some(Ok((_, dh))) = params.map(parse_dh_params) {
            flight.dh_bits = Some(significant_bits(dh.dh_p));
        }
    }
}

/// PSK key exchanges prefix the parameters with a psk_identity_hint<0..2^16-1>.
fn skip_psk_hint(params: &[u8]) -> Option<&[u8]> {
    let len = usize::from(u16::from_be_bytes([*params.first()?, *params.get(1)?]));
    params.get(2 + len..)
}

/// Bits of a big-endian unsigned integer, leading zeros not counted.
pub fn significant_bits(be: &[u8]) -> u32 {
    let Some(pos) = be.iter().position(|b| *b != 0) else {
        return 0;
    };
    let rest = &be[pos..];
    let bytes = u32::try_from(rest.len()).unwrap_or(u32::MAX / 8);
    bytes * 8 - rest.first().map_or(0, |b| b.leading_zeros())
}

fn preview(buf: &[u8]) -> String {
    let text: String = buf
        .iter()
        .take(80)
        .map(|b| {
            if b.is_ascii_graphic() || *b == b' ' {
                char::from(*b)
            } else {
                '.'
            }
        })
        .collect();
    text.trim_end_matches('.').to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::scan::testbytes::{
        alert, certificate, record, server_hello, server_hello_done, ske_dh, ske_ecdh,
    };

    #[test]
    fn tls12_flight_with_dhe() {
        let mut bytes = record(22, &server_hello(0x0303, 0x0033, &[]));
        bytes.extend(record(22, &certificate(&[b"leaf", b"inter"])));
        bytes.extend(record(
            22,
            &[ske_dh(&[0x80; 128], &[2]), server_hello_done()].concat(),
        ));
        let mut p = FlightParser::new(false);
        // Byte by byte: reassembly across reads.
        let mut out = None;
        for b in &bytes {
            if let Some(r) = p.push(std::slice::from_ref(b)).unwrap() {
                out = Some(r);
            }
        }
        let Some(Reply::Hello(f)) = out else {
            panic!("{out:?}")
        };
        assert_eq!((f.version, f.suite, f.hrr), (0x0303, 0x0033, false));
        assert_eq!(f.dh_bits, Some(1024));
        assert_eq!(f.certs, vec![b"leaf".to_vec(), b"inter".to_vec()]);
    }

    #[test]
    fn certificate_split_over_records() {
        let big = vec![0x30u8; 40000];
        let cert = certificate(&[&big]);
        let mut bytes = record(22, &server_hello(0x0303, 0xc02f, &[]));
        for chunk in cert.chunks(16384) {
            bytes.extend(record(22, chunk));
        }
        bytes.extend(record(
            22,
            &[ske_ecdh(0x0017), server_hello_done()].concat(),
        ));
        let mut p = FlightParser::new(false);
        let Some(Reply::Hello(f)) = p.push(&bytes).unwrap() else {
            panic!()
        };
        assert_eq!(f.certs[0].len(), 40000);
        assert_eq!(f.group, Some(0x0017));
    }

    #[test]
    fn tls13_server_hello_and_hrr() {
        // supported_versions = 0x0304, key_share = x25519 + 32 bytes.
        let mut ks = vec![0x00, 0x1d, 0x00, 0x20];
        ks.extend([0x11; 32]);
        let exts = [ext(43, &[3, 4]), ext(51, &ks)].concat();
        let bytes = record(22, &server_hello(0x0303, 0x1302, &exts));
        let mut p = FlightParser::new(true);
        let Some(Reply::Hello(f)) = p.push(&bytes).unwrap() else {
            panic!()
        };
        assert_eq!(
            (f.version, f.suite, f.group, f.hrr),
            (0x0304, 0x1302, Some(0x1d), false)
        );

        let exts = [ext(43, &[3, 4]), ext(51, &[0x11, 0xec])].concat();
        let mut sh = server_hello(0x0303, 0x1301, &exts);
        sh[6..38].copy_from_slice(&HRR_RANDOM);
        let mut p = FlightParser::new(false);
        let Some(Reply::Hello(f)) = p.push(&record(22, &sh)).unwrap() else {
            panic!()
        };
        assert!(f.hrr);
        assert_eq!(
            (f.version, f.suite, f.group),
            (0x0304, 0x1301, Some(0x11ec))
        );
    }

    #[test]
    fn alerts_close_and_garbage() {
        let mut p = FlightParser::new(false);
        assert_eq!(p.push(&alert(40)).unwrap(), Some(Reply::Alert(40)));
        let mut p = FlightParser::new(false);
        assert_eq!(p.push(&[22, 3]).unwrap(), None);
        assert_eq!(p.eof(), Reply::Closed);
        let mut p = FlightParser::new(false);
        let e = p.push(b"454 4.7.0 TLS not available\r\n").unwrap_err();
        assert_eq!(e, WireError::NotTls("454 4.7.0 TLS not available".into()));
        let mut p = FlightParser::new(false);
        assert!(matches!(
            p.push(&record(22, &server_hello_done())),
            Err(WireError::Malformed(_))
        ));
        let mut p = FlightParser::new(false);
        assert!(p.push(&vec![22; MAX_FLIGHT + 1]).is_err());
    }

    #[test]
    fn ssl3_server_hello() {
        let bytes = record(22, &server_hello(0x0300, 0x0005, &[]));
        let mut p = FlightParser::new(true);
        let Some(Reply::Hello(f)) = p.push(&bytes).unwrap() else {
            panic!()
        };
        assert_eq!((f.version, f.suite), (0x0300, 0x0005));
    }

    fn ext(ty: u16, data: &[u8]) -> Vec<u8> {
        let mut v = ty.to_be_bytes().to_vec();
        v.extend(u16::try_from(data.len()).unwrap().to_be_bytes());
        v.extend(data);
        v
    }
}
