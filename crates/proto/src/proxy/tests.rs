//! The PROXY header parser against the specification's examples and the
//! ways a header can be broken or cut (HAProxy proxy-protocol.txt §2.1, §2.2).

#![allow(clippy::unwrap_used)]

use super::*;

fn done(src: &str, dst: &str, consumed: usize) -> ProxyHeader {
    ProxyHeader::Done {
        source: src.parse().unwrap(),
        destination: dst.parse().unwrap(),
        consumed,
    }
}

/// Every strict prefix of a valid header is `Incomplete`, never an error.
fn every_prefix_is_incomplete(h: &[u8]) {
    for n in 0..h.len() {
        assert_eq!(parse(&h[..n]), Ok(ProxyHeader::Incomplete), "prefix {n}");
    }
}

// ---------------------------------------------------------------------------
// v1 (§2.1)

#[test]
fn v1_tcp4_and_the_bytes_after_it() {
    let h = b"PROXY TCP4 198.51.100.7 192.0.2.1 56324 25\r\n";
    every_prefix_is_incomplete(h);
    let mut with_smtp = h.to_vec();
    with_smtp.extend_from_slice(b"EHLO x\r\n");
    let want = done("198.51.100.7:56324", "192.0.2.1:25", h.len());
    assert_eq!(parse(h), Ok(want));
    assert_eq!(parse(&with_smtp), Ok(want), "only the header is consumed");
}

#[test]
fn v1_tcp6() {
    let h = b"PROXY TCP6 2001:db8::7 2001:db8::1 65535 0\r\n";
    assert_eq!(
        parse(h),
        Ok(done("[2001:db8::7]:65535", "[2001:db8::1]:0", h.len()))
    );
}

#[test]
fn v1_unknown_ignores_the_rest_of_the_line() {
    for h in [
        &b"PROXY UNKNOWN\r\n"[..],
        b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
    ] {
        assert_eq!(parse(h), Ok(ProxyHeader::Unknown { consumed: h.len() }));
    }
}

#[test]
fn v1_longest_header_fits_and_one_more_octet_does_not() {
    // The spec's worst case (§2.1: 107 octets): UNKNOWN followed by two
    // full-length IPv6 addresses; the same with TCP6 is 104.
    let tcp6 = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert!(matches!(
        parse(tcp6.as_bytes()),
        Ok(ProxyHeader::Done { consumed: 104, .. })
    ));
    let unknown = tcp6.replace("TCP6", "UNKNOWN");
    assert_eq!(unknown.len(), V1_MAX);
    assert_eq!(
        parse(unknown.as_bytes()),
        Ok(ProxyHeader::Unknown { consumed: V1_MAX })
    );
    // No LF within 107 octets: refused without waiting for more.
    let long = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 93]].concat();
    assert_eq!(long.len(), V1_MAX);
    assert_eq!(parse(&long), Err(ProxyError::TooLong { limit: V1_MAX }));
    assert_eq!(parse(&long[..106]), Ok(ProxyHeader::Incomplete));
}

#[test]
fn v1_strict_syntax() {
    for bad in [
        &b"PROXY TCP4 198.51.100.7 192.0.2.1 56324 25\n"[..], // bare LF
        b"PROXY TCP4 198.51.100.7  192.0.2.1 56324 25\r\n",   // two spaces
        b"PROXY TCP4 198.51.100.7 192.0.2.1 56324 25 \r\n",   // trailing space
        b"PROXY TCP4 198.51.100.7 192.0.2.1 56324\r\n",       // a field missing
        b"PROXY TCP4 198.51.100.7 192.0.2.1 056324 25\r\n",   // leading zero
        b"PROXY TCP4 198.51.100.7 192.0.2.1 00 25\r\n",       // leading zero
        b"PROXY TCP4 198.51.100.7 192.0.2.1 65536 25\r\n",    // out of range
        b"PROXY TCP4 198.51.100.7 192.0.2.1 +1 25\r\n",       // sign
        b"PROXY TCP4 198.51.100.07 192.0.2.1 1 25\r\n",       // leading zero in an octet
        b"PROXY TCP4 2001:db8::7 192.0.2.1 1 25\r\n",         // family mismatch
        b"PROXY TCP6 198.51.100.7 2001:db8::1 1 25\r\n",      // family mismatch
        b"PROXY TCP5 198.51.100.7 192.0.2.1 1 25\r\n",        // unknown protocol
        b"PROXY tcp4 198.51.100.7 192.0.2.1 1 25\r\n",        // case
        b"PROXY TCP4 198.51.100.7 192.0.2.1 1 2\t\r\n",       // control octet
        b"PROXY TCP4 198.51.100.\xc3\xa9 192.0.2.1 1 2\r\n",  // non-ASCII
        b"PROXY \r\n",
        b"PROXY\r\n",
    ] {
        let got = parse(bad);
        assert!(
            matches!(got, Err(ProxyError::Malformed(_) | ProxyError::NotProxy)),
            "{:?} gave {got:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn v1_wrong_start_is_refused_at_once() {
    assert_eq!(parse(b"EHLO"), Err(ProxyError::NotProxy));
    assert_eq!(parse(b"PROX "), Err(ProxyError::NotProxy));
    assert_eq!(parse(b"PROXY"), Ok(ProxyHeader::Incomplete));
}

// ---------------------------------------------------------------------------
// v2 (§2.2)

/// A v2 header: version/command octet, family/transport octet, payload.
fn v2(vc: u8, ft: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.push(vc);
    h.push(ft);
    h.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn inet4(tlvs: &[u8]) -> Vec<u8> {
    let mut p = vec![198, 51, 100, 7, 192, 0, 2, 1];
    p.extend_from_slice(&56324u16.to_be_bytes());
    p.extend_from_slice(&25u16.to_be_bytes());
    p.extend_from_slice(tlvs);
    p
}

#[test]
fn v2_inet_with_tlvs() {
    // PP2_TYPE_ALPN "smtp", PP2_TYPE_AUTHORITY, a PP2_TYPE_SSL block and a
    // NOOP: framed correctly, skipped.
    let tlvs = [
        &[0x01, 0, 4][..],
        b"smtp",
        &[0x02, 0, 11],
        b"mx.example.",
        &[0x20, 0, 5, 0x07, 0, 0, 0, 0],
        &[0x04, 0, 0],
    ]
    .concat();
    let h = v2(0x21, 0x11, &inet4(&tlvs));
    every_prefix_is_incomplete(&h);
    let want = done("198.51.100.7:56324", "192.0.2.1:25", h.len());
    assert_eq!(parse(&h), Ok(want));
    let mut more = h.clone();
    more.extend_from_slice(b"EHLO x\r\n");
    assert_eq!(parse(&more), Ok(want));
}

#[test]
fn v2_inet6() {
    let src: Ipv6Addr = "2001:db8::7".parse().unwrap();
    let dst: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let mut p = src.octets().to_vec();
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&[0xdb, 0xfc, 0, 25]);
    let h = v2(0x21, 0x21, &p);
    assert_eq!(
        parse(&h),
        Ok(done("[2001:db8::7]:56316", "[2001:db8::1]:25", h.len()))
    );
}

#[test]
fn v2_local_and_unspec_use_the_real_peer() {
    // LOCAL: the address block is ignored whatever the family (§2.2).
    for (ft, payload) in [
        (0x00, &[][..]),
        (0x11, &inet4(&[])[..]),
        (0x31, &[0u8; 216][..]),
    ] {
        let h = v2(0x20, ft, payload);
        assert_eq!(parse(&h), Ok(ProxyHeader::Local { consumed: h.len() }));
    }
    let h = v2(0x21, 0x00, &[]);
    assert_eq!(parse(&h), Ok(ProxyHeader::Unknown { consumed: h.len() }));
}

#[test]
fn v2_refuses_unix_udp_and_unknown_families() {
    let unix = v2(0x21, 0x31, &[0u8; 216]);
    assert_eq!(parse(&unix), Err(ProxyError::Unsupported("AF_UNIX")));
    let udp = v2(0x21, 0x12, &inet4(&[]));
    assert!(matches!(parse(&udp), Err(ProxyError::Unsupported(_))));
    let odd = v2(0x21, 0x41, &inet4(&[]));
    assert!(matches!(parse(&odd), Err(ProxyError::Unsupported(_))));
    let unspec_transport = v2(0x21, 0x10, &inet4(&[]));
    assert!(matches!(
        parse(&unspec_transport),
        Err(ProxyError::Malformed(_))
    ));
}

#[test]
fn v2_version_and_command_are_checked_before_the_rest_arrives() {
    let mut h = V2_SIGNATURE.to_vec();
    h.push(0x11);
    assert_eq!(parse(&h), Err(ProxyError::Version(1)));
    h[12] = 0x22;
    assert_eq!(parse(&h), Err(ProxyError::Command(2)));
}

#[test]
fn v2_length_is_capped_before_the_payload_arrives() {
    let mut h = V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[0x21, 0x11]);
    h.extend_from_slice(&u16::MAX.to_be_bytes());
    assert!(matches!(parse(&h), Err(ProxyError::TooLong { .. })));
    // An INET header with more than 1 KiB of TLVs.
    let tlvs = [&[0x04, 0x04, 0x01][..], &[0u8; 0x401]].concat();
    let h = v2(0x21, 0x11, &inet4(&tlvs));
    assert!(matches!(parse(&h), Err(ProxyError::TooLong { .. })));
    // Exactly 1 KiB of TLVs is fine.
    let tlvs = [&[0x04, 0x03, 0xfd][..], &[0u8; 0x3fd]].concat();
    assert_eq!(tlvs.len(), V2_MAX_TLVS);
    let h = v2(0x21, 0x11, &inet4(&tlvs));
    assert!(matches!(parse(&h), Ok(ProxyHeader::Done { .. })));
}

#[test]
fn v2_framing_errors() {
    // Address block shorter than the family's.
    let h = v2(0x21, 0x11, &[1, 2, 3, 4]);
    assert!(matches!(parse(&h), Err(ProxyError::Malformed(_))));
    let h = v2(0x21, 0x21, &inet4(&[]));
    assert!(matches!(parse(&h), Err(ProxyError::Malformed(_))));
    // A TLV cut short, and one longer than what is left.
    for tlvs in [&[0x04, 0][..], &[0x04, 0, 9, 1, 2]] {
        let h = v2(0x21, 0x11, &inet4(tlvs));
        assert!(
            matches!(parse(&h), Err(ProxyError::Malformed(_))),
            "{tlvs:?}"
        );
    }
    // A wrong signature octet.
    let mut h = v2(0x21, 0x11, &inet4(&[]));
    h[5] = b'x';
    assert_eq!(parse(&h), Err(ProxyError::NotProxy));
    assert_eq!(parse(b"\r\nQUIT"), Err(ProxyError::NotProxy));
}

/// A v2 header split across reads at every point parses the same, and the
/// octets of the first SMTP command after it are left alone.
#[test]
fn v2_split_across_reads() {
    let h = v2(0x21, 0x11, &inet4(&[0x04, 0, 2, 0, 0]));
    let mut stream = h.clone();
    stream.extend_from_slice(b"QUIT\r\n");
    for cut in 0..h.len() {
        let mut buf = stream[..cut].to_vec();
        assert_eq!(parse(&buf), Ok(ProxyHeader::Incomplete));
        buf.extend_from_slice(&stream[cut..]);
        assert_eq!(
            parse(&buf),
            Ok(done("198.51.100.7:56324", "192.0.2.1:25", h.len()))
        );
    }
}

#[test]
fn garbage_is_refused() {
    for g in [
        &b"\x16\x03\x01\x02\x00"[..],
        b"GET / HTTP/1.1\r\n",
        b"\0",
        b"\n",
    ] {
        assert_eq!(parse(g), Err(ProxyError::NotProxy), "{g:?}");
    }
}

#[test]
fn every_error_has_a_catalogue_cause() {
    let peer: SocketAddr = "127.0.0.1:5555".parse().unwrap();
    let errors = [
        (ProxyError::NotProxy, cause::MISSING),
        (ProxyError::TooLong { limit: 107 }, cause::MALFORMED),
        (ProxyError::Malformed("x"), cause::MALFORMED),
        (ProxyError::Version(1), cause::UNSUPPORTED),
        (ProxyError::Command(3), cause::UNSUPPORTED),
        (ProxyError::Unsupported("AF_UNIX"), cause::UNSUPPORTED),
    ];
    for (e, id) in errors {
        let c = e.cause(peer);
        assert_eq!(c.id, id);
        assert!(c.summary.contains("127.0.0.1:5555"), "{}", c.summary);
        assert!(cause::ALL.contains(&c.id));
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any input: no panic, and `consumed` never exceeds the input.
        #[test]
        fn never_panics(input in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(ProxyHeader::Done { consumed, .. } | ProxyHeader::Local { consumed }
                | ProxyHeader::Unknown { consumed }) = parse(&input)
            {
                prop_assert!(consumed <= input.len());
            }
        }

        /// Every v1 header we format is read back.
        #[test]
        fn v1_round_trip(a in any::<[u8; 4]>(), b in any::<[u8; 4]>(), sp in any::<u16>(), dp in any::<u16>()) {
            let (a, b) = (Ipv4Addr::from(a), Ipv4Addr::from(b));
            let h = format!("PROXY TCP4 {a} {b} {sp} {dp}\r\n");
            prop_assert_eq!(
                parse(h.as_bytes()),
                Ok(ProxyHeader::Done {
                    source: SocketAddr::new(a.into(), sp),
                    destination: SocketAddr::new(b.into(), dp),
                    consumed: h.len(),
                })
            );
        }
    }
}
