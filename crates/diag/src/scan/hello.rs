//! The hand-built ClientHello: the one message the scanner sends. rustls cannot
//! offer SSLv3, TLS 1.0/1.1, CBC, RC4, 3DES, DHE or static RSA, so the probes
//! write the bytes themselves and read the answer with tls-parser (`wire`).
//!
//! Layout written here (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2, RFC 6101 §5.6.1.2):
//! record header (type 22, record version, length), handshake header (type 1,
//! 24-bit length), client_version, 32 random bytes, a 32-byte session id,
//! cipher suites, compression (null only), then extensions — none for SSLv3:
//! server_name, supported_groups, ec_point_formats, signature_algorithms,
//! extended_master_secret, renegotiation_info, and for TLS 1.3
//! supported_versions and key_share; a padding extension keeps the handshake
//! out of the 256–511 byte range some old stacks hang on (RFC 7685 §3).
//!
//! # Security
//! Writes only what the caller asks for; reads nothing from the network.
//!
//! # Standards
//! RFC 8446, RFC 5246, RFC 4346, RFC 2246, RFC 6101 (SSLv3), RFC 6066 §3 (SNI),
//! RFC 8422 §5.1 (supported_groups, ec_point_formats), RFC 5746 (renegotiation_info),
//! RFC 7627 (extended_master_secret), RFC 7685 (padding).

use super::ProtocolVersion;

/// What one ClientHello offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloSpec {
    /// The protocol version probed. TLS 1.3 is offered through supported_versions
    /// only (legacy_version 0x0303), so a TLS 1.2 server cannot answer with 1.2.
    pub version: ProtocolVersion,
    /// Cipher suite ids, in the order offered.
    pub suites: Vec<u16>,
    /// supported_groups, in the order offered (omitted when empty).
    pub groups: Vec<u16>,
    /// TLS 1.3 key_share entries: (group, public key bytes). May be empty: the
    /// server then has to answer with a HelloRetryRequest naming its group.
    pub key_shares: Vec<(u16, Vec<u8>)>,
    /// server_name to send (a DNS name, never an IP address literal: RFC 6066 §3).
    pub sni: Option<String>,
}

/// signature_algorithms offered (RFC 8446 §4.2.3 code points): every scheme a
/// server may sign with, modern first, SHA-1 and DSA last so old servers can
/// still answer.
pub const SIGNATURE_ALGORITHMS: &[u16] = &[
    0x0403, 0x0503, 0x0603, // ecdsa_secp256r1_sha256, secp384r1_sha384, secp521r1_sha512
    0x0807, 0x0808, // ed25519, ed448
    0x0804, 0x0805, 0x0806, // rsa_pss_rsae_sha256/384/512
    0x0809, 0x080a, 0x080b, // rsa_pss_pss_sha256/384/512
    0x0401, 0x0501, 0x0601, // rsa_pkcs1_sha256/384/512
    0x0303, 0x0301, // ecdsa_sha224, rsa_sha224
    0x0203, 0x0201, // ecdsa_sha1, rsa_pkcs1_sha1
    0x0402, 0x0202, // dsa_sha256, dsa_sha1
];

/// TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746 §3.3): SSLv3 hellos carry no
/// extensions, so the renegotiation signal goes in the suite list.
pub const EMPTY_RENEGOTIATION_INFO_SCSV: u16 = 0x00ff;

const HANDSHAKE: u8 = 22;
const CLIENT_HELLO: u8 = 1;

/// The whole record, ready to write to the socket. `random` and `session_id`
/// are the caller's (fresh random bytes in a real probe, fixed in tests).
pub fn build(spec: &HelloSpec, random: &[u8; 32], session_id: &[u8; 32]) -> Vec<u8> {
    let tls13 = spec.version == ProtocolVersion::Tls13;
    let legacy_version = if tls13 { 0x0303 } else { spec.version.wire() };

    let mut body = Vec::with_capacity(512);
    put_u16(&mut body, legacy_version);
    body.extend_from_slice(random);
    body.push(32);
    body.extend_from_slice(session_id);
    let mut suites: Vec<u16> = spec.suites.clone();
    if spec.version == ProtocolVersion::Ssl3 && !suites.contains(&EMPTY_RENEGOTIATION_INFO_SCSV) {
        suites.push(EMPTY_RENEGOTIATION_INFO_SCSV);
    }
    put_u16(&mut body, len16(suites.len() * 2));
    for s in &suites {
        put_u16(&mut body, *s);
    }
    body.extend_from_slice(&[1, 0]); // one compression method: null

    if spec.version != ProtocolVersion::Ssl3 {
        let mut ext = extensions(spec, tls13);
        // Handshake = 4 (header) + body + 2 (extensions length) + ext.
        let hs_len = 4 + body.len() + 2 + ext.len();
        if (256..512).contains(&hs_len) {
            // RFC 7685: pad to at least 512 bytes (the padding extension's
            // own 4-byte header counts too).
            let pad = (512 - 4usize).saturating_sub(hs_len);
            put_u16(&mut ext, 21);
            put_u16(&mut ext, len16(pad));
            ext.resize(ext.len() + pad, 0);
        }
        put_u16(&mut body, len16(ext.len()));
        body.extend_from_slice(&ext);
    }

    let mut hs = Vec::with_capacity(body.len() + 4);
    hs.push(CLIENT_HELLO);
    put_u24(&mut hs, body.len());
    hs.extend_from_slice(&body);

    let record_version = if spec.version == ProtocolVersion::Ssl3 {
        0x0300
    } else {
        0x0301
    };
    let mut rec = Vec::with_capacity(hs.len() + 5);
    rec.push(HANDSHAKE);
    put_u16(&mut rec, record_version);
    put_u16(&mut rec, len16(hs.len()));
    rec.extend_from_slice(&hs);
    rec
}

fn extensions(spec: &HelloSpec, tls13: bool) -> Vec<u8> {
    let mut ext = Vec::with_capacity(256);
    if let Some(name) = &spec.sni {
        let name = name.trim_end_matches('.').as_bytes();
        let mut list = Vec::with_capacity(name.len() + 3);
        list.push(0); // host_name
        put_u16(&mut list, len16(name.len()));
        list.extend_from_slice(name);
        let mut data = Vec::with_capacity(list.len() + 2);
        put_u16(&mut data, len16(list.len()));
        data.extend_from_slice(&list);
        put_ext(&mut ext, 0, &data);
    }
    if !spec.groups.is_empty() {
        let mut data = Vec::with_capacity(spec.groups.len() * 2 + 2);
        put_u16(&mut data, len16(spec.groups.len() * 2));
        for g in &spec.groups {
            put_u16(&mut data, *g);
        }
        put_ext(&mut ext, 10, &data);
        put_ext(&mut ext, 11, &[1, 0]); // ec_point_formats: uncompressed
    }
    let mut sig = Vec::with_capacity(SIGNATURE_ALGORITHMS.len() * 2 + 2);
    put_u16(&mut sig, len16(SIGNATURE_ALGORITHMS.len() * 2));
    for s in SIGNATURE_ALGORITHMS {
        put_u16(&mut sig, *s);
    }
    put_ext(&mut ext, 13, &sig);
    put_ext(&mut ext, 23, &[]); // extended_master_secret
    if tls13 {
        put_ext(&mut ext, 43, &[2, 0x03, 0x04]); // supported_versions: TLS 1.3 only
        let mut shares = Vec::new();
        for (group, key) in &spec.key_shares {
            put_u16(&mut shares, *group);
            put_u16(&mut shares, len16(key.len()));
            shares.extend_from_slice(key);
        }
        let mut data = Vec::with_capacity(shares.len() + 2);
        put_u16(&mut data, len16(shares.len()));
        data.extend_from_slice(&shares);
        put_ext(&mut ext, 51, &data);
        // psk_key_exchange_modes (psk_dhe_ke), as common clients send it; no
        // pre_shared_key follows, so it changes nothing (RFC 8446 §4.2.9).
        put_ext(&mut ext, 45, &[1, 1]);
    }
    put_ext(&mut ext, 0xff01, &[0]); // renegotiation_info, empty
    ext
}

fn put_ext(out: &mut Vec<u8>, ty: u16, data: &[u8]) {
    put_u16(out, ty);
    put_u16(out, len16(data.len()));
    out.extend_from_slice(data);
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u24(out: &mut Vec<u8>, v: usize) {
    let v = u32::try_from(v).unwrap_or(u32::MAX).min(0x00ff_ffff);
    out.extend_from_slice(&v.to_be_bytes()[1..]);
}

/// Every length written here is bounded by the catalogue sizes (a few hundred
/// suites, a few KiB of key shares), far below 65535; saturate rather than wrap
/// should that ever change.
fn len16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tls_parser::{
        TlsExtension, TlsMessage, TlsMessageHandshake, parse_tls_extensions, parse_tls_plaintext,
    };

    fn spec(version: ProtocolVersion) -> HelloSpec {
        HelloSpec {
            version,
            suites: vec![0xc02c, 0xc030, 0x009f, 0x0035],
            groups: vec![0x001d, 0x0017],
            key_shares: Vec::new(),
            sni: Some("mx.example.com.".into()),
        }
    }

    fn parse(bytes: &[u8]) -> (u16, u16, Vec<u16>, Vec<TlsExtension<'_>>) {
        let (rest, rec) = parse_tls_plaintext(bytes).unwrap();
        assert!(rest.is_empty());
        assert_eq!(rec.msg.len(), 1);
        let TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)) = &rec.msg[0] else {
            panic!("not a ClientHello: {:?}", rec.msg[0]);
        };
        assert_eq!(ch.random.len(), 32);
        assert_eq!(ch.session_id.map(<[u8]>::len), Some(32));
        assert_eq!(ch.comp.len(), 1);
        assert_eq!(ch.comp[0].0, 0);
        let exts = match ch.ext {
            Some(e) => {
                let (rest, v) = parse_tls_extensions(e).unwrap();
                assert!(rest.is_empty());
                v
            }
            None => Vec::new(),
        };
        (
            rec.hdr.version.0,
            ch.version.0,
            ch.ciphers.iter().map(|c| c.0).collect(),
            exts,
        )
    }

    #[test]
    fn tls12_hello_parses_back() {
        let bytes = build(&spec(ProtocolVersion::Tls12), &[7; 32], &[9; 32]);
        let (rec_v, v, suites, exts) = parse(&bytes);
        assert_eq!(rec_v, 0x0301);
        assert_eq!(v, 0x0303);
        assert_eq!(suites, vec![0xc02c, 0xc030, 0x009f, 0x0035]);
        let mut seen = Vec::new();
        for e in &exts {
            match e {
                TlsExtension::SNI(names) => {
                    assert_eq!(names.len(), 1);
                    assert_eq!(names[0].1, b"mx.example.com");
                    seen.push("sni");
                }
                TlsExtension::EllipticCurves(g) => {
                    assert_eq!(g.iter().map(|g| g.0).collect::<Vec<_>>(), vec![0x1d, 0x17]);
                    seen.push("groups");
                }
                TlsExtension::EcPointFormats(f) => {
                    assert_eq!(*f, &[0][..]);
                    seen.push("ecpf");
                }
                TlsExtension::SignatureAlgorithms(s) => {
                    assert_eq!(s, SIGNATURE_ALGORITHMS);
                    seen.push("sigalgs");
                }
                TlsExtension::RenegotiationInfo(r) => {
                    assert!(r.is_empty());
                    seen.push("reneg");
                }
                TlsExtension::ExtendedMasterSecret => seen.push("ems"),
                TlsExtension::Padding(_) => seen.push("padding"),
                TlsExtension::SupportedVersions(_) | TlsExtension::KeyShare(_) => {
                    panic!("TLS 1.2 hello must not carry TLS 1.3 extensions")
                }
                other => panic!("unexpected extension {other:?}"),
            }
        }
        for want in ["sni", "groups", "ecpf", "sigalgs", "reneg", "ems"] {
            assert!(seen.contains(&want), "{want} missing: {seen:?}");
        }
    }

    #[test]
    fn tls13_hello_offers_only_13_with_key_shares() {
        let mut s = spec(ProtocolVersion::Tls13);
        s.suites = vec![0x1302, 0x1301];
        s.key_shares = vec![(0x001d, vec![0x42; 32])];
        let bytes = build(&s, &[1; 32], &[2; 32]);
        let (_, v, suites, exts) = parse(&bytes);
        assert_eq!(v, 0x0303, "legacy_version stays TLS 1.2 (RFC 8446 §4.1.2)");
        assert_eq!(suites, vec![0x1302, 0x1301]);
        let versions: Vec<u16> = exts
            .iter()
            .find_map(|e| match e {
                TlsExtension::SupportedVersions(v) => Some(v.iter().map(|v| v.0).collect()),
                _ => None,
            })
            .unwrap();
        assert_eq!(versions, vec![0x0304]);
        let ks = exts
            .iter()
            .find_map(|e| match e {
                TlsExtension::KeyShare(k) => Some(*k),
                _ => None,
            })
            .unwrap();
        // client_shares length 36 = group(2) + len(2) + 32 bytes.
        assert_eq!(&ks[..6], &[0, 36, 0, 0x1d, 0, 32]);
        assert_eq!(ks.len(), 38);
    }

    #[test]
    fn empty_key_share_list_is_well_formed() {
        let mut s = spec(ProtocolVersion::Tls13);
        s.suites = vec![0x1301];
        let bytes = build(&s, &[1; 32], &[2; 32]);
        let (_, _, _, exts) = parse(&bytes);
        assert!(
            exts.iter()
                .any(|e| matches!(e, TlsExtension::KeyShare(k) if *k == [0, 0]))
        );
    }

    #[test]
    fn ssl3_hello_has_no_extensions_and_the_scsv() {
        let bytes = build(&spec(ProtocolVersion::Ssl3), &[0; 32], &[0; 32]);
        assert_eq!(&bytes[..3], &[22, 3, 0]);
        let (rec_v, v, suites, exts) = parse(&bytes);
        assert_eq!((rec_v, v), (0x0300, 0x0300));
        assert_eq!(suites.last(), Some(&EMPTY_RENEGOTIATION_INFO_SCSV));
        assert!(exts.is_empty());
    }

    #[test]
    fn tls10_and_11_versions() {
        for (ver, wire) in [
            (ProtocolVersion::Tls10, 0x0301),
            (ProtocolVersion::Tls11, 0x0302),
        ] {
            let (_, v, _, _) = parse(&build(&spec(ver), &[0; 32], &[0; 32]));
            assert_eq!(v, wire);
        }
    }

    #[test]
    fn padding_avoids_256_to_511() {
        for n in 0..200u16 {
            let mut s = spec(ProtocolVersion::Tls12);
            s.suites = (1..=n).collect();
            let bytes = build(&s, &[0; 32], &[0; 32]);
            let hs_len = bytes.len() - 5;
            assert!(!(256..512).contains(&hs_len), "n={n}: {hs_len}");
            parse(&bytes);
        }
    }
}
