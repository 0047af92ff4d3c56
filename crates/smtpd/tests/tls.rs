//! TLS on the wire: STARTTLS (RFC 3207), implicit TLS (RFC 8314), AUTH after TLS
//! (RFC 4954), version and suite policy, SNI, server order, and the CVE-2011-0411
//! plaintext-injection defence. Real rustls clients and lettre.
#![allow(clippy::unwrap_used)]

mod common;

use common::{HOST, PASSWORD, USER, send_message, start, start_with};
use postern_tls::TlsVersion;
use rustls::crypto::aws_lc_rs::cipher_suite as cs;

/// CVE-2011-0411: a command pipelined behind STARTTLS in the same packet must
/// not run after the handshake; RFC 3207 §4.2: the session state is reset.
#[tokio::test]
async fn plaintext_pipelined_after_starttls_is_discarded() {
    let t = start().await;
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO c", 250).await;
    d.send_raw(b"STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n")
        .await;
    d.expect(220).await;
    d.upgrade(HOST, t.client_tls()).await.unwrap();
    // Had the MAIL been executed, this RCPT would be accepted; and the EHLO state
    // from before TLS must be gone too.
    let r = d.cmd("RCPT TO:<bob@example.com>", 503).await;
    assert!(r.lines[0].starts_with("5.5.1"), "{r:?}");
    d.cmd("MAIL FROM:<a@o.org>", 503).await; // EHLO needed again (RFC 3207 §4.2)
    let r = d.cmd("EHLO c", 250).await;
    assert!(
        !r.lines.iter().any(|l| l == "STARTTLS"),
        "STARTTLS offered twice: {r:?}"
    );
    assert!(r.lines.iter().any(|l| l == "AUTH PLAIN LOGIN"), "{r:?}");
    let log = t.transcript().await;
    assert!(log.contains("CVE-2011-0411"), "{log}");
}

/// TLS required: MAIL and AUTH before STARTTLS get 530 5.7.0.
#[tokio::test]
async fn tls_required_listener() {
    let t = start().await;
    let mut d = t.connect("submission").await;
    d.cmd("EHLO c", 250).await;
    let r = d.cmd("MAIL FROM:<a@o.org>", 530).await;
    assert_eq!(r.lines[0], "5.7.0 Must issue a STARTTLS command first");
    let r = d.cmd("AUTH PLAIN AGFsaWNlAHg=", 530).await;
    assert_eq!(r.lines[0], "5.7.0 Must issue a STARTTLS command first");
}

/// Received header and envelope carry the TLS facts.
#[tokio::test]
async fn starttls_message_records_tls_facts() {
    let t = start().await;
    let mut d = t.connect_starttls("smtp").await;
    let r = send_message(
        &mut d,
        "a@o.org",
        "bob@example.com",
        "Subject: t\r\n\r\nx\r\n",
    )
    .await;
    assert_eq!(r.code, 250);
    let (env, body) = &t.messages()[0];
    let tls = env.receipt.tls.as_ref().unwrap();
    assert_eq!(tls.version, "TLSv1.3");
    assert_eq!(tls.cipher, "TLS_AES_256_GCM_SHA384");
    assert_eq!(tls.sni.as_deref(), Some(HOST));
    assert!(tls.group.is_some());
    let body = String::from_utf8_lossy(body);
    assert!(
        body.contains("with ESMTPS (TLS1.3 TLS_AES_256_GCM_SHA384)"),
        "{body}"
    );
    let log = t.transcript().await;
    assert!(
        log.contains("*** TLS handshake: TLSv1.3 TLS_AES_256_GCM_SHA384"),
        "{log}"
    );
}

/// RFC 4954: AUTH PLAIN and LOGIN after TLS; wrong password is 535 5.7.8;
/// payloads never reach the transcript.
#[tokio::test]
async fn auth_plain_and_login() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let t = start().await;
    let mut d = t.connect_starttls("submission").await;
    d.cmd("MAIL FROM:<a@o.org>", 530).await; // AUTH required
    let r = d
        .cmd(&format!("AUTH PLAIN {}", b64("\0alice\0wrong")), 535)
        .await;
    assert_eq!(r.lines[0], "5.7.8 Authentication credentials invalid");
    d.cmd(
        &format!("AUTH PLAIN {}", b64(&format!("\0{USER}\0{PASSWORD}"))),
        235,
    )
    .await;
    d.cmd("AUTH PLAIN", 503).await; // already authenticated
    // Authenticated sessions may relay.
    let r = send_message(
        &mut d,
        "alice@example.com",
        "someone@elsewhere.net",
        "Subject: r\r\n\r\nx\r\n",
    )
    .await;
    assert_eq!(r.code, 250, "{r:?}");
    assert_eq!(t.messages()[0].0.receipt.auth_user.as_deref(), Some(USER));

    let mut d = t.connect_starttls("submission").await;
    let r = d.cmd("AUTH LOGIN", 334).await;
    assert_eq!(r.lines[0], b64("Username:"));
    d.cmd(&b64(USER), 334).await;
    d.cmd(&b64(PASSWORD), 235).await;

    let mut d = t.connect_starttls("submission").await;
    d.cmd("AUTH LOGIN", 334).await;
    d.cmd("*", 501).await; // cancelled (RFC 4954 §4)
    d.cmd("AUTH CRAM-MD5", 504).await;

    let log = t.transcript().await;
    assert!(
        !log.contains(&b64(PASSWORD)),
        "password reached the transcript"
    );
    assert!(
        !log.contains(&b64(&format!("\0{USER}\0{PASSWORD}"))),
        "AUTH PLAIN payload reached the transcript"
    );
    assert!(log.contains("AUTH PLAIN [redacted]"), "{log}");
}

/// A real client (lettre) over STARTTLS with AUTH on submission, and over implicit TLS on submissions.
#[tokio::test]
async fn lettre_submission_and_submissions() {
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let t = start().await;
    let cert = Certificate::from_pem(t.ca.cert_pem().as_bytes()).unwrap();
    let params = TlsParameters::builder(HOST.to_owned())
        .add_root_certificate(cert)
        .build_rustls()
        .unwrap();
    let msg = || {
        Message::builder()
            .from("alice@example.com".parse().unwrap())
            .to("bob@elsewhere.net".parse().unwrap())
            .subject("via lettre")
            .body(String::from("Hello from lettre"))
            .unwrap()
    };
    let creds = Credentials::new(USER.to_owned(), PASSWORD.to_owned());
    for (listener, tls) in [
        ("submission", Tls::Required(params.clone())),
        ("submissions", Tls::Wrapper(params.clone())),
    ] {
        let addr = t.addr(listener);
        let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(addr.port())
            .tls(tls)
            .credentials(creds.clone())
            .build();
        let resp = mailer
            .send(msg())
            .await
            .unwrap_or_else(|e| panic!("{listener}: {e}"));
        assert!(resp.is_positive());
    }
    let msgs = t.messages();
    assert_eq!(msgs.len(), 2);
    for (env, _) in &msgs {
        assert_eq!(env.receipt.auth_user.as_deref(), Some(USER));
        assert!(env.receipt.tls.is_some());
    }
}

/// A client limited to TLS 1.2 against a 1.3-only listener fails cleanly; the
/// server logs the cause and keeps serving.
#[tokio::test]
async fn tls12_client_vs_tls13_only_listener() {
    let t = start_with(|s| s.tls.min_version = TlsVersion::Tls13).await;
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO c", 250).await;
    d.cmd("STARTTLS", 220).await;
    let cfg = postern_testkit::client_config(&t.ca, &[&rustls::version::TLS12], &[]);
    assert!(d.upgrade(HOST, cfg).await.is_err());
    let log = t.transcript().await;
    assert!(log.contains("TLS handshake failed"), "{log}");
    // The server still serves others.
    t.connect_starttls("smtp").await;
}

/// A client offering only a suite outside our list fails.
#[tokio::test]
async fn suite_outside_list_fails() {
    let t = start_with(|s| {
        s.tls.min_version = TlsVersion::Tls13;
        s.tls.cipher_suites = vec![0x1302 /* TLS_AES_256_GCM_SHA384 */];
    })
    .await;
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO c", 250).await;
    d.cmd("STARTTLS", 220).await;
    let cfg = postern_testkit::client_config(
        &t.ca,
        &[&rustls::version::TLS13],
        &[cs::TLS13_AES_128_GCM_SHA256],
    );
    assert!(d.upgrade(HOST, cfg).await.is_err());
}

/// ignore_client_order: our order wins (TLS 1.3 and TLS 1.2).
#[tokio::test]
async fn server_order_wins() {
    let t = start_with(|s| {
        s.tls.cipher_suites = vec![0x1302, 0x1301, 0xc02c, 0xc02b];
    })
    .await;
    for (version, client_suites, want) in [
        (
            &rustls::version::TLS13,
            vec![cs::TLS13_AES_128_GCM_SHA256, cs::TLS13_AES_256_GCM_SHA384],
            "TLS13_AES_256_GCM_SHA384",
        ),
        (
            &rustls::version::TLS12,
            vec![
                cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            ],
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ),
    ] {
        let mut d = t.connect("smtp").await;
        d.cmd("EHLO c", 250).await;
        d.cmd("STARTTLS", 220).await;
        let cfg = postern_testkit::client_config(&t.ca, &[version], &client_suites);
        d.upgrade(HOST, cfg).await.unwrap();
        let got = format!(
            "{:?}",
            d.tls().unwrap().negotiated_cipher_suite().unwrap().suite()
        );
        assert_eq!(got, want);
    }
}

/// SNI picks the matching certificate; no SNI gets the default (first) one.
#[tokio::test]
async fn sni_selects_certificate() {
    let t = start_with(|s| {
        let dir = s.spool.dir.parent().unwrap().to_path_buf();
        let (c, k) = common::ca()
            .issue(&["other.test.example"])
            .write(&dir, "other");
        s.tls.certificates.push(postern_tls::CertSettings {
            cert_path: c,
            key_path: k,
            hostnames: Vec::new(),
        });
    })
    .await;
    let peer_name = |d: &postern_testkit::Dialogue| {
        let certs = d.tls().unwrap().peer_certificates().unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(certs[0].as_ref()).unwrap();
        cert.subject().to_string()
    };
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO c", 250).await;
    d.cmd("STARTTLS", 220).await;
    d.upgrade("other.test.example", t.client_tls())
        .await
        .unwrap();
    assert_eq!(peer_name(&d), "CN=other.test.example");

    // No SNI: a client that does not send it (an IP literal name sends none).
    let mut cfg = (*t.client_tls()).clone();
    cfg.enable_sni = false;
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO c", 250).await;
    d.cmd("STARTTLS", 220).await;
    d.upgrade(HOST, std::sync::Arc::new(cfg)).await.unwrap();
    assert_eq!(peer_name(&d), format!("CN={HOST}"));
}

/// RFC 4954 §4: a SASL response may be 12 288 octets whatever
/// `max_command_line` says. A long wrong credential is a failed AUTH (535),
/// not "line too long"; past the limit the exchange ends too; either way the
/// next line is a command again; the third failure closes with 421 4.7.0.
#[tokio::test]
async fn auth_responses_at_and_past_the_sasl_limit() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let t = start().await;
    let mut d = t.connect_starttls("submission").await;
    d.cmd("AUTH PLAIN", 334).await;
    // 12 284 octets of base64 (+ CRLF: 4 under the limit; base64 comes in
    // fours, so this is the longest valid response).
    let long = b64(&format!("\0alice\0{}", "q".repeat(9206)));
    assert_eq!(long.len(), 12_284);
    let r = d.cmd(&long, 535).await;
    assert_eq!(r.lines[0], "5.7.8 Authentication credentials invalid");
    d.cmd("NOOP", 250).await;
    // Past the limit: the exchange is over, the session goes on.
    d.cmd("AUTH PLAIN", 334).await;
    d.cmd(&"A".repeat(13_000), 535).await;
    d.cmd("NOOP", 250).await;
    // A refused response (not base64) ends the exchange: NOOP is a command.
    d.cmd("AUTH LOGIN", 334).await;
    d.cmd("!!not base64!!", 501).await;
    let r = d.cmd("NOOP", 421).await; // third failure already counted: closed
    assert!(r.lines[0].starts_with("4.7.0"), "{r:?}");
}

/// The failure budget: three failed AUTH attempts end the session with 421.
#[tokio::test]
async fn three_failed_auths_close_the_session() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let t = start().await;
    let mut d = t.connect_starttls("submission").await;
    let wrong = format!("AUTH PLAIN {}", b64("\0alice\0wrong"));
    d.cmd(&wrong, 535).await;
    d.cmd(&wrong, 535).await;
    d.send(&wrong).await;
    let r = d.reply().await.unwrap();
    assert_eq!(r.code, 535);
    let r = d.reply().await.unwrap();
    assert_eq!(r.code, 421, "{r:?}");
    assert!(d.is_closed().await);
}

/// `[auth_ban]`: failures per login then per network span sessions; a banned
/// login gets 454 4.7.0 even with the right password, a banned network 421 at
/// connect; a relay network is never banned.
#[tokio::test]
async fn failed_logins_ban_the_login_then_the_network() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let srv = common::start_with(|s| {
        s.admission.auth_ban.max_failures_per_login = 2;
        s.admission.auth_ban.max_failures_per_ip = 3;
    })
    .await;
    let mut d = srv.connect_starttls("submission").await;
    d.cmd(&format!("AUTH PLAIN {}", b64("\0alice\0wrong1")), 535)
        .await;
    d.cmd(&format!("AUTH PLAIN {}", b64("\0alice\0wrong2")), 535)
        .await;
    d.cmd("QUIT", 221).await;
    // The login is banned now: the right password does not help.
    let mut d = srv.connect_starttls("submission").await;
    let r = d
        .cmd(
            &format!("AUTH PLAIN {}", b64(&format!("\0{USER}\0{PASSWORD}"))),
            454,
        )
        .await;
    assert!(r.lines[0].starts_with("4.7.0"), "{r:?}");
    // A third failure (another login) bans the network.
    d.cmd(&format!("AUTH PLAIN {}", b64("\0bob\0guess")), 535)
        .await;
    d.cmd("QUIT", 221).await;
    let mut d = postern_testkit::Dialogue::connect(srv.addr("submission")).await;
    let r = d.expect(421).await;
    assert_eq!(
        r.lines[0],
        "4.7.0 Too many failed logins from [127.0.0.1], try again later"
    );
    let log = srv.transcript_with("banned for 900s").await;
    assert!(
        log.contains("login banned for 900s: 2 failed logins"),
        "{log}"
    );
}

/// A relay network is never banned, however many failures.
#[tokio::test]
async fn relay_networks_are_never_banned() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let srv = common::start_with(|s| {
        s.admission.auth_ban.max_failures_per_login = 1;
        s.admission.auth_ban.max_failures_per_ip = 1;
        s.relay.relay_networks = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let mut d = srv.connect_starttls("submission").await;
    d.cmd(&format!("AUTH PLAIN {}", b64("\0alice\0wrong")), 535)
        .await;
    d.cmd("QUIT", 221).await;
    let mut d = srv.connect_starttls("submission").await;
    d.cmd(
        &format!("AUTH PLAIN {}", b64(&format!("\0{USER}\0{PASSWORD}"))),
        235,
    )
    .await;
}
