//! Real rustls handshakes against `server::server_config`, in memory (and over a
//! tokio duplex for the LazyConfigAcceptor path smtpd uses). No network.
//!
//! Each test names the rule it checks: server order (RFC 9325 §4.2 / RFC 8446
//! §4.1.1), SNI with a default certificate (RFC 6066 §3), version and suite
//! negotiation failures and their classification (cause catalogue).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{ClientOpts, client_config, handshake};
use postern_tls::cause::{self, classify_inbound};
use postern_tls::certs::{self, CertStore};
use postern_tls::server::server_config;
use postern_tls::{CertSettings, ClientHelloSummary, TlsFacts, TlsSettings, TlsVersion};
use rustls::crypto::aws_lc_rs::{cipher_suite as cs, kx_group};
use rustls::{ServerConfig, SignatureScheme};

fn store(certs: &[CertSettings]) -> CertStore {
    certs::load(certs, common::now()).unwrap().store
}

fn build(settings: &TlsSettings, certs: &[CertSettings]) -> Arc<ServerConfig> {
    server_config(settings, &store(certs)).unwrap()
}

/// One ECDSA and one RSA certificate for mx.example.com (RSA first = default).
fn dual_key_certs(dir: &std::path::Path) -> (Vec<CertSettings>, common::Leaf, common::Leaf) {
    let ca = common::root("Dual Root");
    let rsa = common::rsa_leaf(&["mx.example.com"], &ca);
    let ec = common::leaf(&["mx.example.com"], &ca);
    let certs = vec![
        common::write_pair(dir, "rsa", &[&rsa.cert_pem], &rsa.key_pem),
        common::write_pair(dir, "ec", &[&ec.cert_pem], &ec.key_pem),
    ];
    (certs, rsa, ec)
}

#[test]
fn default_settings_negotiate_tls13_with_facts() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = common::simple_chain(dir.path(), "mx", &["mx.example.com"]);
    let server = build(&TlsSettings::default(), &[c]);
    let client = client_config(ClientOpts {
        groups: Some(vec![kx_group::X25519MLKEM768, kx_group::X25519]),
        ..ClientOpts::default()
    });
    let out = handshake(client, "mx.example.com", server);
    assert!(out.ok(), "{:?} / {:?}", out.server_err, out.client_err);
    let facts = TlsFacts::from_connection(out.server.as_ref().unwrap()).unwrap();
    assert_eq!(
        facts,
        TlsFacts {
            version: "TLSv1.3".into(),
            cipher: "TLS_AES_256_GCM_SHA384".into(),
            group: Some("X25519MLKEM768".into()),
            sni: Some("mx.example.com".into()),
            resumed: false,
        }
    );
    assert_eq!(facts.received_clause(), "TLS1.3 TLS_AES_256_GCM_SHA384");
    // What the client offered was captured from the ClientHello.
    let offered = out.offered.unwrap();
    assert_eq!(offered.sni.as_deref(), Some("mx.example.com"));
    assert_eq!(
        offered.suite_versions,
        vec![TlsVersion::Tls12, TlsVersion::Tls13]
    );
    assert!(offered.cipher_suites.contains(&0x1302));
    assert_eq!(offered.groups, vec![0x11ec, 0x001d]);
    assert!(!offered.signature_schemes.is_empty());
}

#[test]
fn tls12_facts_and_group() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = common::simple_chain(dir.path(), "mx", &["mx.example.com"]);
    let server = build(&TlsSettings::default(), &[c]);
    let client = client_config(ClientOpts {
        versions: vec![&rustls::version::TLS12],
        ..ClientOpts::default()
    });
    let out = handshake(client, "mx.example.com", server);
    assert!(out.ok(), "{:?} / {:?}", out.server_err, out.client_err);
    let facts = TlsFacts::from_connection(out.server.as_ref().unwrap()).unwrap();
    assert_eq!(facts.version, "TLSv1.2");
    assert_eq!(facts.cipher, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384");
    // MLKEM hybrids are TLS 1.3 only; X25519 is our next preference.
    assert_eq!(facts.group.as_deref(), Some("x25519"));
    assert_eq!(
        facts.received_clause(),
        "TLS1.2 TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
    );
}

/// A TLS 1.2-only client against a TLS 1.3-only listener fails, and the cause
/// says so in the operator's terms.
#[test]
fn tls12_client_vs_tls13_only_server_is_no_shared_version() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = common::simple_chain(dir.path(), "mx", &["mx.example.com"]);
    let settings = TlsSettings {
        min_version: TlsVersion::Tls13,
        ..TlsSettings::default()
    };
    let server = build(&settings, &[c]);
    let client = client_config(ClientOpts {
        versions: vec![&rustls::version::TLS12],
        ..ClientOpts::default()
    });
    let out = handshake(client, "mx.example.com", server);
    let err = out.server_err.expect("server must refuse");
    // rustls clients offer TLS 1.3 suites even with TLS 1.3 disabled, which is
    // why classification reads the rustls error, not `suite_versions`.
    assert!(out.offered.as_ref().unwrap().has_tls13_suites());
    let c = classify_inbound(&err, out.offered.as_ref(), &settings);
    assert_eq!(c.id, cause::NO_SHARED_VERSION);
    assert_eq!(
        c.summary,
        "client offered only TLS 1.2; this listener accepts TLS 1.3 only"
    );
    assert_eq!(
        c.fix,
        "set `[tls] min_version = \"1.2\"` if you must accept it"
    );
    // The client heard a protocol_version alert.
    assert!(
        matches!(
            out.client_err,
            Some(rustls::Error::AlertReceived(
                rustls::AlertDescription::ProtocolVersion
            ))
        ),
        "{:?}",
        out.client_err
    );
}

#[test]
fn tls13_client_vs_tls12_only_server_is_no_shared_version() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = common::simple_chain(dir.path(), "mx", &["mx.example.com"]);
    let settings = TlsSettings {
        max_version: TlsVersion::Tls12,
        ..TlsSettings::default()
    };
    let server = build(&settings, &[c]);
    let client = client_config(ClientOpts {
        versions: vec![&rustls::version::TLS13],
        ..ClientOpts::default()
    });
    let out = handshake(client, "mx.example.com", server);
    let err = out.server_err.expect("server must refuse");
    let c = classify_inbound(&err, out.offered.as_ref(), &settings);
    assert_eq!(c.id, cause::NO_SHARED_VERSION);
    assert_eq!(
        c.summary,
        "client offered only TLS 1.3; this listener accepts TLS 1.2 only"
    );
    assert!(c.fix.contains("`[tls] max_version = \"1.3\"`"), "{c}");
}

/// A TLS 1.0 client (hand-built ClientHello: legacy_version 3.1, one CBC suite,
/// no extensions) is told apart from a TLS 1.2 one.
#[test]
fn tls10_client_is_older_than_we_speak() {
    let settings = TlsSettings::default();
    let mut body = vec![0x03, 0x01]; // client_version TLS 1.0
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x02, 0x00, 0x2f]); // TLS_RSA_WITH_AES_128_CBC_SHA
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut hs = vec![0x01, 0x00, 0x00, u8::try_from(body.len()).unwrap()];
    hs.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01, 0x00, u8::try_from(hs.len()).unwrap()];
    record.extend_from_slice(&hs);

    // Without signature_algorithms (TLS 1.2+ only) rustls refuses it while
    // reading the ClientHello, so nothing was captured.
    let err = common::accept_raw(&record).expect("TLS 1.0 must be refused");
    let c = classify_inbound(&err, None, &settings);
    assert_eq!(c.id, cause::NO_SHARED_VERSION, "{err:?}");
    assert_eq!(
        c.summary,
        "client offered only TLS 1.1 or older; this listener accepts TLS 1.2 and 1.3"
    );
    assert!(c.fix.contains("RFC 8996"), "{c}");
}

/// A client offering only a suite outside the server's list fails; the cause
/// names both sides and the suite to add.
#[test]
fn suite_outside_server_list_is_no_shared_cipher() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = common::simple_chain(dir.path(), "mx", &["mx.example.com"]);
    let settings = TlsSettings {
        cipher_suites: vec![0x1302, 0xc02c],
        ..TlsSettings::default()
    };
    let server = build(&settings, &[c]);
    let client = client_config(ClientOpts {
        versions: vec![&rustls::version::TLS13],
        suites: Some(vec![cs::TLS13_AES_128_GCM_SHA256]),
        ..ClientOpts::default()
    });
    let out = handshake(client, "mx.example.com", server);
    let err = out.server_err.expect("server must refuse");
    assert!(
        matches!(
            err,
            rustls::Error::PeerIncompatible(rustls::PeerIncompatible::NoCipherSuitesInCommon)
        ),
        "{err:?}"
    );
    let c = classify_inbound(&err, out.offered.as_ref(), &settings);
    assert_eq!(c.id, cause::NO_SHARED_CIPHER);
    assert_eq!(
        c.summary,
        "no cipher suite in common: the client offered TLS_AES_128_GCM_SHA256; this listener \
         accepts TLS_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
    );
    assert!(
        c.fix
            .starts_with("add TLS_AES_128_GCM_SHA256 to `[tls] cipher_suites`"),
        "{c}"
    );
}

/// The client prefers AES-128; the server's order (AES-256 first) wins.
#[test]
fn server_order_wins_tls13() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = common::simple_chain(dir.path(), "mx", &["mx.example.com"]);
    let server = build(&TlsSettings::default(), &[c]);
    let client = client_config(ClientOpts {
        suites: Some(vec![
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS13_CHACHA20_POLY1305_SHA256,
            cs::TLS13_AES_256_GCM_SHA384,
        ]),
        versions: vec![&rustls::version::TLS13],
        ..ClientOpts::default()
    });
    let out = handshake(client, "mx.example.com", server);
    assert!(out.ok());
    assert_eq!(
        out.client.negotiated_cipher_suite().unwrap().suite(),
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384
    );
    assert_eq!(
        out.offered.unwrap().cipher_suites,
        vec![0x1301, 0x1303, 0x1302]
    );
}

#[test]
fn server_order_wins_tls12() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = common::simple_chain(dir.path(), "mx", &["mx.example.com"]);
    let server = build(&TlsSettings::default(), &[c]);
    let client = client_config(ClientOpts {
        suites: Some(vec![
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ]),
        versions: vec![&rustls::version::TLS12],
        ..ClientOpts::default()
    });
    let out = handshake(client, "mx.example.com", server);
    assert!(out.ok());
    assert_eq!(
        out.client.negotiated_cipher_suite().unwrap().suite(),
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
    );
}

/// A custom server order is honoured too (ChaCha20 first).
#[test]
fn configured_order_is_the_server_order() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = common::simple_chain(dir.path(), "mx", &["mx.example.com"]);
    let settings = TlsSettings {
        cipher_suites: vec![0x1303, 0x1302, 0x1301, 0xcca9],
        ..TlsSettings::default()
    };
    let server = build(&settings, &[c]);
    let out = handshake(
        client_config(ClientOpts::default()),
        "mx.example.com",
        server,
    );
    assert!(out.ok());
    assert_eq!(
        out.client.negotiated_cipher_suite().unwrap().suite(),
        rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
    );
}

/// SNI: exact name, then wildcard, then the default (first) certificate.
#[test]
fn sni_picks_the_right_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::root("SNI Root");
    let a = common::leaf(&["a.example.com"], &ca);
    let b = common::leaf(&["b.example.com"], &ca);
    let w = common::leaf(&["*.wild.example.net"], &ca);
    let certs = vec![
        common::write_pair(dir.path(), "a", &[&a.cert_pem], &a.key_pem),
        common::write_pair(dir.path(), "b", &[&b.cert_pem], &b.key_pem),
        common::write_pair(dir.path(), "w", &[&w.cert_pem], &w.key_pem),
    ];
    let server = build(&TlsSettings::default(), &certs);
    for (name, want) in [
        ("a.example.com", &a.der),
        ("B.Example.Com", &b.der),
        ("mx.wild.example.net", &w.der),
        ("other.example.org", &a.der),
        ("wild.example.net", &a.der),
    ] {
        let out = handshake(
            client_config(ClientOpts::default()),
            name,
            Arc::clone(&server),
        );
        assert!(out.ok(), "{name}: {:?}", out.server_err);
        assert_eq!(&out.presented_leaf(), want, "{name}");
    }
}

/// Clients without SNI (many MTAs) get the default certificate, not a failure.
#[test]
fn no_sni_gets_the_default_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::root("SNI Root");
    let a = common::leaf(&["a.example.com"], &ca);
    let b = common::leaf(&["b.example.com"], &ca);
    let certs = vec![
        common::write_pair(dir.path(), "a", &[&a.cert_pem], &a.key_pem),
        common::write_pair(dir.path(), "b", &[&b.cert_pem], &b.key_pem),
    ];
    let server = build(&TlsSettings::default(), &certs);
    let client = client_config(ClientOpts {
        sni: false,
        ..ClientOpts::default()
    });
    let out = handshake(client, "b.example.com", server);
    assert!(out.ok(), "{:?}", out.server_err);
    assert_eq!(out.presented_leaf(), a.der);
    assert_eq!(out.offered.unwrap().sni, None);
    let facts = TlsFacts::from_connection(out.server.as_ref().unwrap()).unwrap();
    assert_eq!(facts.sni, None);
}

/// Two certificates for one name: each client gets the key type it can verify.
#[test]
fn key_type_follows_client_signature_schemes() {
    let dir = tempfile::tempdir().unwrap();
    let (certs, rsa, ec) = dual_key_certs(dir.path());
    let server = build(&TlsSettings::default(), &certs);

    let ecdsa_only = client_config(ClientOpts {
        schemes: Some(vec![SignatureScheme::ECDSA_NISTP256_SHA256]),
        ..ClientOpts::default()
    });
    let out = handshake(ecdsa_only, "mx.example.com", Arc::clone(&server));
    assert!(out.ok(), "{:?} {:?}", out.server_err, out.client_err);
    assert_eq!(out.presented_leaf(), ec.der);

    let rsa_only = client_config(ClientOpts {
        schemes: Some(vec![SignatureScheme::RSA_PSS_SHA256]),
        ..ClientOpts::default()
    });
    let out = handshake(rsa_only, "mx.example.com", Arc::clone(&server));
    assert!(out.ok(), "{:?} {:?}", out.server_err, out.client_err);
    assert_eq!(out.presented_leaf(), rsa.der);

    // TLS 1.2 with only ECDHE_ECDSA suites: rustls narrows the schemes, ECDSA wins.
    let tls12_ecdsa = client_config(ClientOpts {
        versions: vec![&rustls::version::TLS12],
        suites: Some(vec![cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]),
        ..ClientOpts::default()
    });
    let out = handshake(tls12_ecdsa, "mx.example.com", Arc::clone(&server));
    assert!(out.ok(), "{:?} {:?}", out.server_err, out.client_err);
    assert_eq!(out.presented_leaf(), ec.der);

    // Without SNI the same choice applies among all certificates.
    let no_sni_ecdsa = client_config(ClientOpts {
        sni: false,
        schemes: Some(vec![SignatureScheme::ECDSA_NISTP256_SHA256]),
        ..ClientOpts::default()
    });
    let out = handshake(no_sni_ecdsa, "mx.example.com", server);
    assert!(out.ok());
    assert_eq!(out.presented_leaf(), ec.der);
}

/// The named certificate has a key the client cannot verify: a certificate it
/// can verify (here the default) beats a certain failure.
#[test]
fn verifiable_key_beats_name_fit() {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::root("Root");
    let ec_default = common::leaf(&["default.example.com"], &ca);
    let rsa_named = common::rsa_leaf(&["mx.example.com"], &ca);
    let certs = vec![
        common::write_pair(
            dir.path(),
            "ec",
            &[&ec_default.cert_pem],
            &ec_default.key_pem,
        ),
        common::write_pair(
            dir.path(),
            "rsa",
            &[&rsa_named.cert_pem],
            &rsa_named.key_pem,
        ),
    ];
    let server = build(&TlsSettings::default(), &certs);
    let any = handshake(
        client_config(ClientOpts::default()),
        "mx.example.com",
        Arc::clone(&server),
    );
    assert_eq!(any.presented_leaf(), rsa_named.der);
    let ecdsa_only = client_config(ClientOpts {
        schemes: Some(vec![SignatureScheme::ECDSA_NISTP256_SHA256]),
        ..ClientOpts::default()
    });
    let out = handshake(ecdsa_only, "mx.example.com", server);
    assert!(out.ok(), "{:?} {:?}", out.server_err, out.client_err);
    assert_eq!(out.presented_leaf(), ec_default.der);
}

/// With tickets on, a second connection resumes; with them off, it does not.
#[test]
fn session_tickets_enable_resumption() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = common::simple_chain(dir.path(), "mx", &["mx.example.com"]);
    for tickets in [true, false] {
        let settings = TlsSettings {
            session_tickets: tickets,
            ..TlsSettings::default()
        };
        let server = build(&settings, std::slice::from_ref(&c));
        let client = client_config(ClientOpts::default());
        let first = handshake(Arc::clone(&client), "mx.example.com", Arc::clone(&server));
        assert!(first.ok());
        let second = handshake(client, "mx.example.com", server);
        assert!(second.ok());
        let facts = TlsFacts::from_connection(second.server.as_ref().unwrap()).unwrap();
        assert_eq!(facts.resumed, tickets, "session_tickets = {tickets}");
    }
}

/// A client that verifies against other roots refuses our certificate; the
/// server sees its alert and the cause says the client does not trust us.
#[test]
fn client_rejecting_our_certificate_is_classified() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = common::simple_chain(dir.path(), "mx", &["mx.example.com"]);
    let settings = TlsSettings::default();
    let server = build(&settings, &[c]);
    let other_root = common::root("Some Other Root");
    let client = client_config(ClientOpts {
        roots: Some(vec![other_root.der().clone()]),
        ..ClientOpts::default()
    });
    let out = handshake(client, "mx.example.com", server);
    let err = out
        .server_err
        .expect("the client's alert reaches the server");
    let c = classify_inbound(&err, out.offered.as_ref(), &settings);
    assert_eq!(c.id, cause::CLIENT_REJECTED_CERTIFICATE, "{err:?}");
    assert!(
        c.summary
            .starts_with("the client does not trust our certificate"),
        "{c}"
    );
}

/// Plaintext SMTP on a TLS port is recognised as "not TLS".
#[test]
fn plaintext_is_not_tls() {
    let err = common::accept_raw(b"EHLO client.example.com\r\n").expect("refused");
    let c = classify_inbound(&err, None, &TlsSettings::default());
    assert_eq!(c.id, cause::NOT_TLS, "{err:?}");
}

/// The smtpd path: tokio-rustls LazyConfigAcceptor reads the ClientHello, then
/// the handshake completes over a duplex pipe.
#[tokio::test]
async fn lazy_acceptor_over_tokio_duplex() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().unwrap();
    let (c, _) = common::simple_chain(dir.path(), "mx", &["mx.example.com"]);
    let server_cfg = build(&TlsSettings::default(), &[c]);
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);

    let server = tokio::spawn(async move {
        let start =
            tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), server_io)
                .await
                .unwrap();
        let offered = ClientHelloSummary::from_client_hello(&start.client_hello());
        let mut tls = start.into_stream(server_cfg).await.unwrap();
        let facts = TlsFacts::from_connection(tls.get_ref().1).unwrap();
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.unwrap();
        (offered, facts, buf)
    });
    let connector = tokio_rustls::TlsConnector::from(client_config(ClientOpts::default()));
    let name = rustls::pki_types::ServerName::try_from("mx.example.com").unwrap();
    let mut tls = connector.connect(name, client_io).await.unwrap();
    tls.write_all(b"EHLO").await.unwrap();
    tls.flush().await.unwrap();
    let (offered, facts, buf) = server.await.unwrap();
    assert_eq!(&buf, b"EHLO");
    assert_eq!(offered.sni.as_deref(), Some("mx.example.com"));
    assert_eq!(facts.version, "TLSv1.3");
    assert_eq!(facts.cipher, "TLS_AES_256_GCM_SHA384");
}

/// A client that hangs up mid-ClientHello: tokio-rustls reports EOF, the cause
/// is "peer closed".
#[tokio::test]
async fn peer_closing_during_handshake_is_classified() {
    use tokio::io::AsyncWriteExt;

    let (mut client_io, server_io) = tokio::io::duplex(1024);
    let server = tokio::spawn(async move {
        tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), server_io)
            .await
            .err()
    });
    // The first bytes of a TLS handshake record, then hang up.
    client_io
        .write_all(&[0x16, 0x03, 0x01, 0x00, 0x80, 0x01])
        .await
        .unwrap();
    drop(client_io);
    let err = server.await.unwrap().expect("acceptor fails");
    let c = classify_inbound(&err, None, &TlsSettings::default());
    assert_eq!(c.id, cause::PEER_CLOSED, "{err:?}");
}
