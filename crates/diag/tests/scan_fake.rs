//! `tls scan` against fake servers that answer ClientHellos with hand-made
//! ServerHello flights, to cover what no server on this machine offers any
//! more: SSLv3, RC4, EXPORT, 3DES, 512-bit DH. Also a server that always sends
//! the same canned bytes (it "chooses" a suite that was not offered) and one
//! that does not speak TLS at all: the scan must stay finite and say so.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::net::SocketAddr;
use std::sync::Arc;

use postern_diag::scan::{self, Grade, ProtocolVersion, ScanOptions, ScanTarget, StartTls};
use tls_parser::{
    TlsExtension, TlsMessage, TlsMessageHandshake, parse_tls_extensions, parse_tls_plaintext,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// How a fake server behaves.
#[derive(Clone)]
enum Behaviour {
    /// Negotiates like a real server: highest accepted version not above the
    /// client's, first suite of `suites` (server order) the client offered.
    Negotiate {
        versions: Vec<u16>,
        suites: Vec<u16>,
        dh_bytes: usize,
        cert: Vec<u8>,
        smtp: bool,
    },
    /// Answers every connection with the same bytes.
    Canned(Vec<u8>),
}

async fn spawn(b: Behaviour) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let b = Arc::new(b);
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let b = Arc::clone(&b);
            tokio::spawn(async move {
                let _ = serve(s, &b).await;
            });
        }
    });
    addr
}

async fn serve(mut s: TcpStream, b: &Behaviour) -> std::io::Result<()> {
    let (versions, suites, dh_bytes, cert, smtp) = match b {
        Behaviour::Canned(bytes) => {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await?;
            s.write_all(bytes).await?;
            return Ok(());
        }
        Behaviour::Negotiate {
            versions,
            suites,
            dh_bytes,
            cert,
            smtp,
        } => (versions, suites, *dh_bytes, cert, *smtp),
    };
    if smtp {
        s.write_all(b"220-fake.test ESMTP\r\n220 legacy box\r\n")
            .await?;
        let mut line = Vec::new();
        read_line(&mut s, &mut line).await?;
        assert!(line.starts_with(b"EHLO "));
        s.write_all(b"250-fake.test\r\n250-8BITMIME\r\n250 STARTTLS\r\n")
            .await?;
        read_line(&mut s, &mut line).await?;
        assert_eq!(line, b"STARTTLS\r\n");
        s.write_all(b"220 2.0.0 Ready to start TLS\r\n").await?;
    }
    // The ClientHello record.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if buf.len() >= 5 {
            let len = usize::from(u16::from_be_bytes([buf[3], buf[4]]));
            if buf.len() >= 5 + len {
                break;
            }
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let (_, rec) = parse_tls_plaintext(&buf).unwrap();
    let TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)) = &rec.msg[0] else {
        panic!("not a ClientHello")
    };
    let offers_13 = ch
        .ext
        .and_then(|e| parse_tls_extensions(e).ok())
        .is_some_and(|(_, exts)| {
            exts.iter()
                .any(|e| matches!(e, TlsExtension::SupportedVersions(_)))
        });
    let client_version = ch.version.0;
    let Some(version) = versions
        .iter()
        .copied()
        .filter(|v| *v <= client_version && !offers_13)
        .max()
    else {
        s.write_all(&record(0x0301, 21, &[2, 70])).await?;
        return Ok(());
    };
    let offered: Vec<u16> = ch.ciphers.iter().map(|c| c.0).collect();
    let Some(suite) = suites.iter().copied().find(|s| offered.contains(s)) else {
        s.write_all(&record(version, 21, &[2, 40])).await?;
        return Ok(());
    };
    let mut flight = server_hello(version, suite);
    flight.extend(certificate(cert));
    let kx = postern_tls::suites::by_id(suite).unwrap().kx;
    if kx == "DHE" {
        let p = {
            let mut p = vec![0xc3; dh_bytes];
            p[0] = 0xff;
            p
        };
        let mut b = Vec::new();
        for part in [&p[..], &[2][..], &p[..]] {
            b.extend(u16::try_from(part.len()).unwrap().to_be_bytes());
            b.extend(part);
        }
        b.extend([0, 2, 0xaa, 0xbb]); // signature (TLS ≤ 1.1: no algorithm ids)
        flight.extend(handshake(12, &b));
    }
    flight.extend(handshake(14, &[]));
    s.write_all(&record(version, 22, &flight)).await?;
    // Wait for the scanner to close.
    let _ = s.read(&mut chunk).await;
    Ok(())
}

async fn read_line(s: &mut TcpStream, line: &mut Vec<u8>) -> std::io::Result<()> {
    line.clear();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\n") {
        if s.read(&mut b).await? == 0 {
            break;
        }
        line.push(b[0]);
    }
    Ok(())
}

fn record(version: u16, ty: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![ty];
    v.extend(version.to_be_bytes());
    v.extend(u16::try_from(payload.len()).unwrap().to_be_bytes());
    v.extend(payload);
    v
}

fn handshake(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ty];
    v.extend(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
    v.extend(body);
    v
}

fn server_hello(version: u16, suite: u16) -> Vec<u8> {
    let mut b = version.to_be_bytes().to_vec();
    b.extend([0x42; 32]);
    b.push(0); // no session id
    b.extend(suite.to_be_bytes());
    b.push(0);
    if version > 0x0300 {
        // renegotiation_info, as a patched server would send.
        b.extend([0, 5, 0xff, 0x01, 0, 1, 0]);
    }
    handshake(2, &b)
}

fn certificate(der: &[u8]) -> Vec<u8> {
    let mut list = u32::try_from(der.len()).unwrap().to_be_bytes()[1..].to_vec();
    list.extend(der);
    let mut b = u32::try_from(list.len()).unwrap().to_be_bytes()[1..].to_vec();
    b.extend(list);
    handshake(11, &b)
}

fn rsa_cert() -> Vec<u8> {
    postern_testkit::TestCa::new()
        .issue_with(&["fake.test"], postern_testkit::KeyKind::Rsa2048, None)
        .cert_der
}

async fn scan(addr: SocketAddr, starttls: StartTls) -> scan::ScanReport {
    let target = ScanTarget::parse(&addr.to_string(), Some(starttls)).unwrap();
    let opts = ScanOptions {
        timeout: std::time::Duration::from_secs(3),
        ..ScanOptions::default()
    };
    let r = scan::scan(&target, &opts, &|_| {}).await.unwrap();
    eprintln!("{}", scan::render_text(&r));
    r
}

#[tokio::test]
async fn scan_sslv3_rc4_export_3des_and_512_bit_dh_over_starttls() {
    let order = vec![0x0005, 0x000a, 0x0003, 0x0033];
    let addr = spawn(Behaviour::Negotiate {
        versions: vec![0x0300, 0x0301],
        suites: order.clone(),
        dh_bytes: 64,
        cert: rsa_cert(),
        smtp: true,
    })
    .await;
    let r = scan(addr, StartTls::Smtp).await;
    assert_eq!(r.banner.as_deref(), Some("fake.test ESMTP"));
    let accepted: Vec<ProtocolVersion> = r
        .protocols
        .iter()
        .filter(|p| p.accepted)
        .map(|p| p.version)
        .collect();
    assert_eq!(
        accepted,
        vec![ProtocolVersion::Ssl3, ProtocolVersion::Tls10]
    );
    for v in [ProtocolVersion::Ssl3, ProtocolVersion::Tls10] {
        assert_eq!(r.suite_ids(v), order, "{v}");
        let p = r.protocol(v).unwrap();
        assert_eq!(p.server_order_enforced, Some(true));
        let by = |id: u16| p.suites.iter().find(|s| s.id == id).unwrap();
        let rc4 = by(0x0005);
        assert!(rc4.flags.insecure, "{rc4:?}");
        assert!(rc4.flags.issues.iter().any(|i| i.contains("RFC 7465")));
        assert_eq!(rc4.kx_detail, "RSA 2048");
        let des3 = by(0x000a);
        assert!(des3.flags.weak && !des3.flags.insecure, "{des3:?}");
        assert!(des3.flags.issues.iter().any(|i| i.contains("Sweet32")));
        assert!(by(0x0003).flags.insecure);
        let dhe = by(0x0033);
        assert_eq!(dhe.kx_detail, "DH 512");
        assert!(dhe.flags.insecure && dhe.flags.forward_secrecy);
    }
    // The TLS 1.2 probe was answered with TLS 1.0: not accepted, and said so.
    assert_eq!(
        r.protocol(ProtocolVersion::Tls12).unwrap().note.as_deref(),
        Some("refused: the server answered with TLS 1.0")
    );
    assert_eq!(r.grade, Grade::F);
    let texts: Vec<&str> = r.reasons.iter().map(|x| x.text.as_str()).collect();
    for want in [
        "SSLv3 accepted (POODLE",
        "RC4 (prohibited by RFC 7465): SSLv3 RC4-SHA",
        "EXPORT-grade cryptography",
        "DH parameters below 1024 bits (Logjam",
        "64-bit block cipher (Sweet32",
    ] {
        assert!(
            texts.iter().any(|t| t.starts_with(want)),
            "missing {want:?}: {texts:#?}"
        );
    }
    let text = scan::render_text(&r);
    assert!(text.contains("INSECURE"));
    assert!(text.contains("0x0005      5"), "{text}");
}

#[tokio::test]
async fn scan_canned_answer_with_a_suite_not_offered_stops_enumeration() {
    // Always TLS 1.2 with DES-CBC3-SHA, whatever was offered.
    let mut flight = server_hello(0x0303, 0x000a);
    flight.extend(certificate(&rsa_cert()));
    flight.extend(handshake(14, &[]));
    let addr = spawn(Behaviour::Canned(record(0x0303, 22, &flight))).await;
    let r = scan(addr, StartTls::None).await;
    let t12 = r.protocol(ProtocolVersion::Tls12).unwrap();
    assert_eq!(r.suite_ids(ProtocolVersion::Tls12), vec![0x000a]);
    assert!(
        t12.note
            .as_deref()
            .unwrap()
            .contains("which was not offered; enumeration stopped"),
        "{t12:?}"
    );
    for v in [
        ProtocolVersion::Ssl3,
        ProtocolVersion::Tls10,
        ProtocolVersion::Tls13,
    ] {
        assert!(!r.protocol(v).unwrap().accepted, "{v}");
    }
    assert_eq!(r.grade, Grade::C, "{:#?}", r.reasons);
}

#[tokio::test]
async fn scan_not_tls_at_all() {
    let addr = spawn(Behaviour::Canned(
        b"HTTP/1.0 400 Bad Request\r\n\r\n".to_vec(),
    ))
    .await;
    let r = scan(addr, StartTls::None).await;
    assert!(r.protocols.iter().all(|p| !p.accepted));
    assert_eq!(r.grade, Grade::F);
    let note = r
        .protocol(ProtocolVersion::Tls12)
        .unwrap()
        .note
        .clone()
        .unwrap();
    assert!(
        note.contains("not TLS") && note.contains("HTTP/1.0 400"),
        "{note}"
    );
}
