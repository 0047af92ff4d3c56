//! `tls scan` against our own server (postern-smtpd on 127.0.0.1:0) in several
//! TLS configurations: the scanner must report exactly the versions and suites
//! the server was configured with, in the configured order, and say that the
//! server enforces it (rustls `ignore_client_order`, ARCHITECTURE "Decisions").
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::net::SocketAddr;

use postern_diag::scan::{
    self, Grade, ProtocolVersion, ScanOptions, ScanReport, ScanTarget, StartTls,
};
use postern_policy::RelaySettings;
use postern_smtpd::{
    AuthMode, ListenerKind, ListenerSettings, Server, ServerSettings, SessionLimits, TlsMode,
    TranscriptFormat, TranscriptSettings, VrfyMode,
};
use postern_spool::{Spool, SpoolSettings};
use postern_testkit::{KeyKind, TestCa};
use postern_tls::{CertSettings, TlsSettings, TlsVersion};

const HOST: &str = "mx.test.example";

struct Running {
    server: Server,
    _dir: tempfile::TempDir,
}

impl Running {
    fn addr(&self, name: &str) -> SocketAddr {
        self.server.addr(name).unwrap()
    }
}

async fn start(key: KeyKind, customize: impl FnOnce(&mut TlsSettings)) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let (cert_path, key_path) = ca.issue_with(&[HOST], key, None).write(dir.path(), "mx");
    let mut tls = TlsSettings {
        certificates: vec![CertSettings {
            cert_path,
            key_path,
            hostnames: Vec::new(),
        }],
        ..TlsSettings::default()
    };
    customize(&mut tls);
    let listener = |name: &str, kind, tls| ListenerSettings {
        name: name.into(),
        addr: "127.0.0.1:0".parse().unwrap(),
        kind,
        hostname: HOST.into(),
        tls,
        auth: AuthMode::Off,
        limits: SessionLimits::default(),
        proxy_protocol: None,
    };
    let settings = ServerSettings {
        listeners: vec![
            listener("smtp", ListenerKind::Smtp, TlsMode::Optional),
            listener("submissions", ListenerKind::Submissions, TlsMode::Required),
            listener("plain", ListenerKind::Smtp, TlsMode::Off),
        ],
        tls: tls.clone(),
        spool: SpoolSettings::new(dir.path().join("spool")),
        relay: RelaySettings {
            accepted_domains: vec!["example.com".into()],
            relay_networks: Vec::new(),
        },
        users: Vec::new(),
        vrfy: VrfyMode::Ambiguous,
        max_connections: 100,
        max_connections_per_ip: 50,
        transcript: TranscriptSettings {
            path: None,
            format: TranscriptFormat::Text,
        },
        allow_insecure_auth: false,
        authentication: postern_smtpd::AuthenticationSettings::default(),
        content: postern_smtpd::ContentSettings::default(),
        record_subjects: false,
        admission: postern_policy::admission::Admission::default(),
        recipients: Vec::new(),
    };
    let loaded =
        postern_tls::certs::load(&tls.certificates, time::OffsetDateTime::now_utc()).unwrap();
    let config = postern_tls::server::server_config(&tls, &loaded.store).unwrap();
    let (spool, _) = Spool::open(&settings.spool).unwrap();
    let server = Server::start(settings, Some(config), spool, None)
        .await
        .unwrap();
    Running { server, _dir: dir }
}

async fn scan_addr(addr: SocketAddr, starttls: StartTls) -> ScanReport {
    let mut target = ScanTarget::parse(&addr.to_string(), Some(starttls)).unwrap();
    target.sni = Some(HOST.into());
    let report = scan::scan(&target, &ScanOptions::default(), &|_| {})
        .await
        .unwrap();
    eprintln!("{}", scan::render_text(&report));
    report
}

fn accepted(r: &ScanReport) -> Vec<ProtocolVersion> {
    r.protocols
        .iter()
        .filter(|p| p.accepted)
        .map(|p| p.version)
        .collect()
}

#[tokio::test]
async fn scan_tls13_only() {
    let s = start(KeyKind::EcdsaP256, |t| {
        t.min_version = TlsVersion::Tls13;
        t.max_version = TlsVersion::Tls13;
    })
    .await;
    let r = scan_addr(s.addr("smtp"), StartTls::Smtp).await;
    assert_eq!(accepted(&r), vec![ProtocolVersion::Tls13]);
    assert_eq!(
        r.suite_ids(ProtocolVersion::Tls13),
        vec![0x1302, 0x1303, 0x1301],
        "the built-in order"
    );
    let p = r.protocol(ProtocolVersion::Tls13).unwrap();
    assert_eq!(p.server_order_enforced, Some(true));
    for s in &p.suites {
        assert!(
            s.flags.forward_secrecy && s.flags.aead && !s.flags.weak,
            "{s:?}"
        );
        assert_eq!(s.kx_detail, "ECDH x25519");
    }
    // Refusals are explained.
    let t12 = r.protocol(ProtocolVersion::Tls12).unwrap();
    assert!(
        t12.note.as_deref().unwrap().starts_with("refused"),
        "{t12:?}"
    );

    // Groups: what rustls implements in the built-in list, found through
    // HelloRetryRequests. rustls picks groups in the client's order.
    let g = &r.groups[0];
    assert_eq!(g.version, ProtocolVersion::Tls13);
    let mut ids: Vec<u16> = g.groups.iter().map(|g| g.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![0x0017, 0x0018, 0x001d, 0x11ec]);
    assert_eq!(g.server_order_enforced, Some(false));

    // The certificate, read through a real TLS 1.3 handshake.
    assert_eq!(r.chains.len(), 1);
    let leaf = &r.chains[0].certs[0];
    assert_eq!(leaf.subject, format!("CN={HOST}"));
    assert_eq!(leaf.key_type, "ECDSA P-256");
    assert!(
        r.chains[0].seen_with.starts_with("TLS 1.3"),
        "{:?}",
        r.chains[0]
    );

    assert_eq!(r.grade, Grade::APlus, "{:?}", r.reasons);
    assert!(r.banner.as_deref().unwrap().contains(HOST));
    let text = scan::render_text(&r);
    assert!(text.contains(
        "TLS 1.3 cipher suites in server-preferred order (3), server order enforced: yes"
    ));
    assert!(text.contains("TLS_AES_256_GCM_SHA384"));
    assert!(text.contains("0x1302   4866"), "{text}");
    assert!(text.contains("Grade: A+"));
}

#[tokio::test]
async fn scan_tls12_only_with_a_chosen_order_ecdsa() {
    // A non-default order, with an RSA suite the ECDSA certificate can never
    // use: the scan must show the order the server really applies.
    let s = start(KeyKind::EcdsaP256, |t| {
        t.min_version = TlsVersion::Tls12;
        t.max_version = TlsVersion::Tls12;
        t.cipher_suites = vec![0xc02b, 0xc030, 0xcca9, 0xc02c];
    })
    .await;
    let r = scan_addr(s.addr("smtp"), StartTls::Smtp).await;
    assert_eq!(accepted(&r), vec![ProtocolVersion::Tls12]);
    assert_eq!(
        r.suite_ids(ProtocolVersion::Tls12),
        vec![0xc02b, 0xcca9, 0xc02c]
    );
    let p = r.protocol(ProtocolVersion::Tls12).unwrap();
    assert_eq!(p.server_order_enforced, Some(true));
    let first = &p.suites[0];
    assert_eq!(first.iana, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
    assert_eq!(
        first.openssl.as_deref(),
        Some("ECDHE-ECDSA-AES128-GCM-SHA256")
    );
    assert_eq!(first.hex, "0xc02b");
    assert_eq!(first.id, 49195);
    assert_eq!(first.kx_detail, "ECDH x25519");
    assert_eq!(first.bits, 128);
    // The chain came in cleartext with TLS 1.2.
    assert_eq!(r.chains.len(), 1);
    assert!(r.chains[0].seen_with.starts_with("TLS 1.2"));
    // TLS 1.2 groups from the ServerKeyExchange.
    let g = &r.groups[0];
    assert_eq!(g.version, ProtocolVersion::Tls12);
    let mut ids: Vec<u16> = g.groups.iter().map(|g| g.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![0x0017, 0x0018, 0x001d]);
    assert_eq!(r.grade, Grade::A, "{:?}", r.reasons);
    assert!(r.reasons.iter().any(|x| x.text == "TLS 1.3 not accepted"));
}

#[tokio::test]
async fn scan_tls12_and_13_rsa_on_implicit_tls() {
    let s = start(KeyKind::Rsa2048, |t| {
        t.cipher_suites = vec![0x1301, 0x1302, 0xc030, 0xc02f, 0xcca8];
    })
    .await;
    let r = scan_addr(s.addr("submissions"), StartTls::None).await;
    assert_eq!(
        accepted(&r),
        vec![ProtocolVersion::Tls12, ProtocolVersion::Tls13]
    );
    assert_eq!(r.suite_ids(ProtocolVersion::Tls13), vec![0x1301, 0x1302]);
    assert_eq!(
        r.suite_ids(ProtocolVersion::Tls12),
        vec![0xc030, 0xc02f, 0xcca8]
    );
    for v in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
        assert_eq!(r.protocol(v).unwrap().server_order_enforced, Some(true));
    }
    assert!(r.banner.is_none());
    assert_eq!(r.chains.len(), 1, "one certificate, seen with 1.2 and 1.3");
    assert_eq!(r.chains[0].certs[0].key_type, "RSA");
    assert_eq!(r.chains[0].certs[0].key_bits, 2048);
    assert_eq!(r.grade, Grade::APlus, "{:?}", r.reasons);
    // JSON carries the same.
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["grade"], "A+");
    assert_eq!(json["protocols"][3]["version"], "TLS 1.2");
    assert_eq!(json["protocols"][3]["suites"][0]["hex"], "0xc030");
    assert_eq!(json["protocols"][3]["suites"][0]["id"], 49200);
}

#[tokio::test]
async fn scan_no_starttls_and_unreachable_are_errors() {
    let s = start(KeyKind::EcdsaP256, |_| {}).await;
    let target = ScanTarget::parse(&s.addr("plain").to_string(), None).unwrap();
    let e = scan::scan(&target, &ScanOptions::default(), &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(e, scan::ScanError::NoStartTls { .. }), "{e}");
    assert!(e.to_string().contains("does not offer STARTTLS"), "{e}");

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let target = ScanTarget::parse(&closed.to_string(), None).unwrap();
    let e = scan::scan(&target, &ScanOptions::default(), &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(e, scan::ScanError::Connect { .. }), "{e}");
}
