//! The outbound session against our own server (postern-smtpd on loopback)
//! and against scripted fake servers for the failures our server never shows.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;

use std::time::Duration;

use common::{HOST, PASSWORD, USER};
use postern_smtpc::{
    AuthMechanism, ClientError, Direction, OutEnvelope, OutRecipient, Session, Stage,
};
use postern_tls::TlsVersion;
use postern_tls::client::{self as tls_client, ClientTlsSettings, Verify};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn envelope(rcpts: &[&str]) -> OutEnvelope {
    OutEnvelope {
        mail_from: "sender@client.test.example".into(),
        rcpts: rcpts.iter().map(|r| OutRecipient::new(*r)).collect(),
        ..OutEnvelope::default()
    }
}

#[tokio::test]
async fn plaintext_send() {
    let srv = common::start().await;
    let (mut s, banner) = Session::connect(srv.addr("smtp"), &common::settings(), None)
        .await
        .unwrap();
    assert_eq!(banner.code, 220);
    let info = s.ehlo().await.unwrap();
    assert_eq!(info.hostname, HOST);
    assert!(info.pipelining && info.starttls && info.chunking && info.dsn);
    assert!(info.auth.is_empty(), "no AUTH before TLS: {info:?}");
    let body = common::message("plain", "hello\r\n");
    let outcome = s
        .send(&envelope(&["bob@example.com"]), &mut body.as_slice())
        .await
        .unwrap();
    assert_eq!(outcome.mail.code, 250);
    assert_eq!(outcome.rcpts.len(), 1);
    assert!(outcome.is_accepted(), "{outcome:?}");
    assert!(!s.is_tls());
    s.quit().await.unwrap();
    let msgs = srv.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].0, vec!["bob@example.com"]);
    assert!(
        msgs[0].1.ends_with(&body),
        "{}",
        String::from_utf8_lossy(&msgs[0].1)
    );
}

#[tokio::test]
async fn starttls_send_with_facts_and_verdict() {
    let srv = common::start().await;
    let tls = common::client_tls(Verify::Record);
    let (transcript, lines) = common::recorder();
    let (mut s, _) = Session::connect(srv.addr("smtp"), &common::settings(), Some(transcript))
        .await
        .unwrap();
    s.ehlo().await.unwrap();
    let info = s.starttls(HOST, &tls).await.unwrap();
    assert!(s.is_tls());
    assert!(
        s.ehlo_info().is_none(),
        "EHLO must be repeated after STARTTLS"
    );
    assert_eq!(info.facts.version, "TLSv1.3");
    assert_eq!(info.facts.cipher, "TLS_AES_256_GCM_SHA384");
    assert_eq!(info.facts.group.as_deref(), Some("X25519MLKEM768"));
    assert_eq!(info.facts.sni.as_deref(), Some(HOST));
    let verdict = info.verdict.as_ref().unwrap();
    assert!(verdict.is_verified(), "{verdict:?}");
    assert_eq!(verdict.chain.len(), 1);
    assert_eq!(verdict.summary(), "yes");
    assert!(info.summary().starts_with(
        "TLSv1.3 TLS_AES_256_GCM_SHA384 group X25519MLKEM768, certificate CN=mx.test.example verified: yes"
    ), "{}", info.summary());
    let again = s.ehlo().await.unwrap();
    assert!(!again.starttls, "no STARTTLS offered inside TLS");
    let outcome = s
        .send(
            &envelope(&["bob@example.com"]),
            &mut common::message("tls", "x\r\n").as_slice(),
        )
        .await
        .unwrap();
    assert!(outcome.is_accepted());
    s.quit().await.unwrap();
    let lines = lines.lock().unwrap();
    assert!(
        lines
            .iter()
            .any(|(d, l)| *d == Direction::Event && l.starts_with("TLS: TLSv1.3"))
    );
    // The trace header records TLS.
    let msgs = srv.messages();
    assert!(
        common::contains(&msgs[0].1, b"ESMTPS"),
        "{}",
        String::from_utf8_lossy(&msgs[0].1)
    );
}

#[tokio::test]
async fn record_mode_reports_name_mismatch_but_connects() {
    let srv = common::start().await;
    let tls = common::client_tls(Verify::Record);
    let (mut s, _) = Session::connect(srv.addr("smtp"), &common::settings(), None)
        .await
        .unwrap();
    s.ehlo().await.unwrap();
    let info = s.starttls("mx1.fabrikam.example", &tls).await.unwrap();
    let v = info.verdict.unwrap();
    assert!(v.pkix.is_ok());
    assert!(!v.name_matches);
    assert_eq!(v.summary(), "no (name mismatch for mx1.fabrikam.example)");
    let cause = v.cause().unwrap();
    assert_eq!(cause.id, tls_client::CERT_NAME_MISMATCH);
    assert_eq!(
        cause.summary,
        "certificate name mismatch: cert is for mx.test.example, MX is mx1.fabrikam.example"
    );
    s.quit().await.unwrap();
}

#[tokio::test]
async fn pkix_mode_refuses_an_untrusted_certificate() {
    let srv = common::start().await;
    // Trust another anchor only (a different name: a same-named CA would
    // fail on the signature instead).
    let other = postern_testkit::TestCa::new().issue(&["other-anchor.example"]);
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(other.cert_der))
        .unwrap();
    let tls = postern_tls::client::ClientTls::new(
        &ClientTlsSettings::default(),
        Verify::Pkix,
        std::sync::Arc::new(roots),
    )
    .unwrap();
    let (mut s, _) = Session::connect(srv.addr("smtp"), &common::settings(), None)
        .await
        .unwrap();
    s.ehlo().await.unwrap();
    let err = s.starttls(HOST, &tls).await.unwrap_err();
    assert_eq!(err.stage(), Stage::TlsHandshake);
    assert!(err.is_transient());
    let cause = err.tls_cause().unwrap();
    // Issued by a CA we do not trust and did not receive: named as such.
    assert_eq!(cause.id, tls_client::CHAIN_INCOMPLETE, "{cause}");
    assert!(
        cause.summary.contains("issued by 'CN=Postern Test CA'"),
        "{cause}"
    );
    // And the trusted CA passes in PKIX mode.
    let good = common::client_tls(Verify::Pkix);
    let (mut s, _) = Session::connect(srv.addr("smtp"), &common::settings(), None)
        .await
        .unwrap();
    s.ehlo().await.unwrap();
    let info = s.starttls(HOST, &good).await.unwrap();
    assert!(info.verdict.unwrap().is_verified());
    s.quit().await.unwrap();
}

#[tokio::test]
async fn implicit_tls_with_auth_plain() {
    let srv = common::start().await;
    let tls = common::client_tls(Verify::Record);
    let (transcript, lines) = common::recorder();
    let (mut s, banner, info) = Session::connect_tls(
        srv.addr("submissions"),
        HOST,
        &tls,
        &common::settings(),
        Some(transcript),
    )
    .await
    .unwrap();
    assert_eq!(banner.code, 220);
    assert!(s.is_tls());
    assert_eq!(info.facts.sni.as_deref(), Some(HOST));
    let ehlo = s.ehlo().await.unwrap();
    assert!(ehlo.has_auth("PLAIN"), "{ehlo:?}");
    s.auth(AuthMechanism::Plain, USER, PASSWORD).await.unwrap();
    let outcome = s
        .send(
            &envelope(&["someone@elsewhere.example"]),
            &mut common::message("submitted", "hi\r\n").as_slice(),
        )
        .await
        .unwrap();
    assert!(outcome.is_accepted(), "{outcome:?}");
    s.quit().await.unwrap();
    let lines = lines.lock().unwrap();
    assert!(
        lines
            .iter()
            .any(|(d, l)| *d == Direction::Sent && l == "AUTH PLAIN [redacted]")
    );
    let secret = base64_plain(USER, PASSWORD);
    assert!(
        lines
            .iter()
            .all(|(_, l)| !l.contains(PASSWORD) && !l.contains(&secret)),
        "credentials leaked into the transcript"
    );
}

fn base64_plain(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}

#[tokio::test]
async fn auth_login_after_starttls_and_wrong_password() {
    let srv = common::start().await;
    let tls = common::client_tls(Verify::Record);
    let (transcript, lines) = common::recorder();
    let (mut s, _) = Session::connect(
        srv.addr("submission"),
        &common::settings(),
        Some(transcript),
    )
    .await
    .unwrap();
    s.ehlo().await.unwrap();
    // AUTH before TLS is refused by us, whatever the server offers.
    let err = s
        .auth(AuthMechanism::Login, USER, PASSWORD)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Insecure { .. }), "{err}");
    assert!(!err.is_transient());
    s.starttls(HOST, &tls).await.unwrap();
    s.ehlo().await.unwrap();
    let err = s
        .auth(AuthMechanism::Login, USER, "wrong")
        .await
        .unwrap_err();
    match &err {
        ClientError::UnexpectedReply { stage, reply } => {
            assert_eq!(*stage, Stage::Auth);
            assert_eq!(reply.code, 535);
        }
        other => panic!("{other}"),
    }
    assert!(!err.is_transient());
    s.auth(AuthMechanism::Login, USER, PASSWORD).await.unwrap();
    s.quit().await.unwrap();
    let lines = lines.lock().unwrap();
    let sent: Vec<&str> = lines
        .iter()
        .filter(|(d, _)| *d == Direction::Sent)
        .map(|(_, l)| l.as_str())
        .collect();
    assert!(sent.contains(&"AUTH LOGIN"));
    assert_eq!(sent.iter().filter(|l| **l == "[redacted]").count(), 4);
    assert!(lines.iter().all(|(_, l)| !l.contains(PASSWORD)));
}

#[tokio::test]
async fn pipelining_sends_the_whole_envelope_before_reading() {
    let srv = common::start().await;
    let (transcript, lines) = common::recorder();
    let (mut s, _) = Session::connect(srv.addr("smtp"), &common::settings(), Some(transcript))
        .await
        .unwrap();
    s.ehlo().await.unwrap();
    let outcome = s
        .send(
            &envelope(&["a@example.com", "b@example.com", "c@example.com"]),
            &mut common::message("pipelined", "x\r\n").as_slice(),
        )
        .await
        .unwrap();
    assert!(outcome.is_accepted());
    s.quit().await.unwrap();
    let lines = lines.lock().unwrap();
    let mail = lines
        .iter()
        .position(|(_, l)| l.starts_with("MAIL FROM:"))
        .unwrap();
    let seq: Vec<&(Direction, String)> = lines[mail..mail + 5].iter().collect();
    let dirs: Vec<Direction> = seq.iter().map(|(d, _)| *d).collect();
    assert_eq!(
        dirs,
        vec![Direction::Sent; 5],
        "MAIL, 3×RCPT and DATA go out before any reply is read: {seq:?}"
    );
    assert_eq!(seq[4].1, "DATA");
}

#[tokio::test]
async fn dot_stuffing_round_trip() {
    let srv = common::start().await;
    let (mut s, _) = Session::connect(srv.addr("smtp"), &common::settings(), None)
        .await
        .unwrap();
    s.ehlo().await.unwrap();
    let body = common::message("dots", ".x\r\n..y\r\n.\r\nend\r\n");
    let outcome = s
        .send(&envelope(&["bob@example.com"]), &mut body.as_slice())
        .await
        .unwrap();
    assert!(outcome.is_accepted());
    s.quit().await.unwrap();
    let stored = &srv.messages()[0].1;
    assert!(
        stored.ends_with(b"\r\n\r\n.x\r\n..y\r\n.\r\nend\r\n"),
        "{}",
        String::from_utf8_lossy(stored)
    );
}

#[tokio::test]
async fn bare_line_ends_are_normalised() {
    let srv = common::start().await;
    let (transcript, lines) = common::recorder();
    let (mut s, _) = Session::connect(srv.addr("smtp"), &common::settings(), Some(transcript))
        .await
        .unwrap();
    s.ehlo().await.unwrap();
    // Our server rejects bare LF (554 5.6.0): acceptance proves the fix.
    let body = b"Subject: lf\n\nline1\nline2\rline3".to_vec();
    let outcome = s
        .send(&envelope(&["bob@example.com"]), &mut body.as_slice())
        .await
        .unwrap();
    assert!(outcome.is_accepted(), "{outcome:?}");
    s.quit().await.unwrap();
    let stored = &srv.messages()[0].1;
    assert!(
        stored.ends_with(b"Subject: lf\r\n\r\nline1\r\nline2\r\nline3\r\n"),
        "{}",
        String::from_utf8_lossy(stored)
    );
    let lines = lines.lock().unwrap();
    assert!(
        lines
            .iter()
            .any(|(_, l)| l.contains("4 bare CR/LF turned into CRLF")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn one_refused_recipient_of_three() {
    let srv = common::start().await;
    let (mut s, _) = Session::connect(srv.addr("smtp"), &common::settings(), None)
        .await
        .unwrap();
    s.ehlo().await.unwrap();
    let outcome = s
        .send(
            &envelope(&["a@example.com", "x@not-ours.example", "c@example.com"]),
            &mut common::message("three", "x\r\n").as_slice(),
        )
        .await
        .unwrap();
    let codes: Vec<u16> = outcome.rcpts.iter().map(|r| r.code).collect();
    assert_eq!(codes[0], 250);
    assert!(outcome.rcpts[1].is_permanent(), "{:?}", outcome.rcpts[1]);
    assert_eq!(codes[2], 250);
    assert!(outcome.is_accepted());
    assert_eq!(outcome.rcpt_result(1).unwrap().code, codes[1]);
    assert_eq!(outcome.rcpt_result(0).unwrap().code, 250);
    s.quit().await.unwrap();
    assert_eq!(
        srv.messages()[0].0,
        vec!["a@example.com".to_owned(), "c@example.com".to_owned()]
    );
}

#[tokio::test]
async fn no_accepted_recipient_sends_no_data_and_the_session_goes_on() {
    let srv = common::start().await;
    let (mut s, _) = Session::connect(srv.addr("smtp"), &common::settings(), None)
        .await
        .unwrap();
    s.ehlo().await.unwrap();
    let outcome = s
        .send(
            &envelope(&["x@not-ours.example"]),
            &mut common::message("none", "x\r\n").as_slice(),
        )
        .await
        .unwrap();
    assert!(outcome.data.is_none());
    assert!(!outcome.is_accepted());
    assert_eq!(s.rset().await.unwrap().code, 250);
    let outcome = s
        .send(
            &envelope(&["bob@example.com"]),
            &mut common::message("second", "x\r\n").as_slice(),
        )
        .await
        .unwrap();
    assert!(outcome.is_accepted(), "{outcome:?}");
    s.quit().await.unwrap();
    assert_eq!(srv.messages().len(), 1);
}

#[tokio::test]
async fn bdat_in_chunks_with_a_large_body() {
    let srv = common::start().await;
    let settings = postern_smtpc::ClientSettings {
        prefer_chunking: true,
        ..common::settings()
    };
    let (transcript, lines) = common::recorder();
    let (mut s, _) = Session::connect(srv.addr("smtp"), &settings, Some(transcript))
        .await
        .unwrap();
    s.ehlo().await.unwrap();
    let line = ".starts with a dot and is long enough to fill chunks quickly......\n";
    let text: String = line.repeat(3000);
    let body = common::message("bdat", &text);
    let outcome = s
        .send(&envelope(&["bob@example.com"]), &mut body.as_slice())
        .await
        .unwrap();
    assert!(outcome.is_accepted(), "{outcome:?}");
    s.quit().await.unwrap();
    let sent: Vec<String> = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|(d, l)| *d == Direction::Sent && l.starts_with("BDAT"))
        .map(|(_, l)| l.clone())
        .collect();
    assert!(sent.len() >= 3, "{sent:?}");
    assert!(sent.last().unwrap().ends_with(" LAST"));
    let stored = &srv.messages()[0].1;
    let want = text.replace('\n', "\r\n");
    assert!(
        stored.ends_with(want.as_bytes()),
        "no stuffing with BDAT, CRLF only"
    );
}

#[tokio::test]
async fn session_resumption_with_one_config() {
    let srv = common::start().await;
    let tls = common::client_tls(Verify::Record);
    let mut resumed = Vec::new();
    for _ in 0..2 {
        let (mut s, _) = Session::connect(srv.addr("smtp"), &common::settings(), None)
            .await
            .unwrap();
        s.ehlo().await.unwrap();
        let info = s.starttls(HOST, &tls).await.unwrap();
        // Reading after the handshake processes the server's tickets.
        s.ehlo().await.unwrap();
        s.quit().await.unwrap();
        resumed.push(info.facts.resumed);
        // A resumed session still knows the chain (from the stored session).
        assert!(info.verdict.unwrap().is_verified());
    }
    assert_eq!(resumed, vec![false, true]);
}

/// A scripted fake server: answers the banner, EHLO (with `ehlo` lines) and
/// STARTTLS, then runs `after_starttls` on the socket.
async fn fake_server(
    ehlo: &'static str,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        sock.write_all(b"220 fake.example ESMTP\r\n").await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = match tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => n,
                _ => break,
            };
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with("EHLO") {
                sock.write_all(ehlo.as_bytes()).await.unwrap();
            } else if text.starts_with("HELO") {
                sock.write_all(b"250 fake.example\r\n").await.unwrap();
            } else if text.starts_with("STARTTLS") {
                sock.write_all(b"220 2.0.0 go ahead\r\n").await.unwrap();
                // Read the ClientHello, then hang up without a word: what a
                // TLS-1.0-only peer (old Kerio, old IIS) does.
                let _ = sock.read(&mut buf).await;
                break;
            } else if text.starts_with("QUIT") {
                let _ = sock.write_all(b"221 bye\r\n").await;
                break;
            } else {
                sock.write_all(b"502 5.5.1 not here\r\n").await.unwrap();
            }
        }
        seen
    });
    (addr, task)
}

#[tokio::test]
async fn peer_closing_after_client_hello_is_classified() {
    let (addr, task) = fake_server("250-fake.example\r\n250 STARTTLS\r\n").await;
    let tls = common::client_tls(Verify::Record);
    let (mut s, _) = Session::connect(addr, &common::settings(), None)
        .await
        .unwrap();
    assert!(s.ehlo().await.unwrap().starttls);
    let err = s.starttls("fake.example", &tls).await.unwrap_err();
    assert!(err.is_transient());
    assert_eq!(err.stage(), Stage::TlsHandshake);
    let cause = err.tls_cause().unwrap();
    assert_eq!(cause.id, postern_tls::cause::NO_SHARED_VERSION);
    assert_eq!(
        cause.summary,
        "fake.example closed the connection after our ClientHello offering TLS 1.2–1.3, \
         without an alert: it most likely supports only TLS 1.0/1.1"
    );
    // No recipient domain in the default advice: the route is a template,
    // never the MX host; the scan keeps the port we used.
    assert!(
        cause
            .fix
            .contains("`[[route]] domains = [\"RECIPIENT-DOMAIN\"], tls = \"opportunistic\"`"),
        "{cause}"
    );
    assert!(
        cause
            .fix
            .contains(&format!("`postern tls scan fake.example:{}`", addr.port())),
        "{cause}"
    );
    task.await.unwrap();
}

#[tokio::test]
async fn tls13_only_offer_is_named_in_the_cause() {
    let (addr, task) = fake_server("250-fake.example\r\n250 STARTTLS\r\n").await;
    let tls = common::client_tls_with(
        &ClientTlsSettings {
            min_version: TlsVersion::Tls13,
            ..ClientTlsSettings::default()
        },
        Verify::Record,
    );
    let (mut s, _) = Session::connect(addr, &common::settings(), None)
        .await
        .unwrap();
    s.ehlo().await.unwrap();
    let cause = s
        .starttls("fake.example", &tls)
        .await
        .unwrap_err()
        .tls_cause()
        .cloned()
        .unwrap();
    assert!(cause.summary.contains("offering TLS 1.3 only"), "{cause}");
    assert!(cause.fix.contains("min_version = \"1.2\""), "{cause}");
    task.await.unwrap();
}

#[tokio::test]
async fn no_starttls_offered() {
    let (addr, task) = fake_server("250-fake.example\r\n250 PIPELINING\r\n").await;
    let tls = common::client_tls(Verify::Record);
    let (mut s, _) = Session::connect(addr, &common::settings(), None)
        .await
        .unwrap();
    let info = s.ehlo().await.unwrap();
    assert!(!info.starttls && info.pipelining);
    let err = s.starttls("fake.example", &tls).await.unwrap_err();
    match &err {
        ClientError::NotOffered { stage, extension } => {
            assert_eq!(*stage, Stage::StartTls);
            assert_eq!(extension, "STARTTLS");
        }
        other => panic!("{other}"),
    }
    s.quit().await.unwrap();
    let seen = String::from_utf8(task.await.unwrap()).unwrap();
    assert!(
        !seen.contains("STARTTLS"),
        "STARTTLS must not be sent: {seen}"
    );
}

/// A relay host that advertises no AUTH is `smtp.auth_not_offered`, not a
/// wrong password (issue 8 §3): the fix points at STARTTLS and port 587.
#[tokio::test]
async fn relay_without_auth_is_not_a_wrong_password() {
    let (addr, task) = fake_server("250-fake.example\r\n250 PIPELINING\r\n").await;
    let settings = postern_smtpc::ClientSettings {
        allow_plaintext_auth: true,
        ..common::settings()
    };
    let (mut s, _) = Session::connect(addr, &settings, None).await.unwrap();
    s.ehlo().await.unwrap();
    let err = s
        .auth(AuthMechanism::Login, "user", "secret")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::AuthNotOffered { offered, tls: false, .. } if offered.is_empty()),
        "{err}"
    );
    let cause = err.cause("fake.example");
    assert_eq!(cause.id, postern_smtpc::cause::AUTH_NOT_OFFERED);
    assert!(!cause.fix.contains("password"), "{cause}");
    s.quit().await.unwrap();
    let seen = String::from_utf8(task.await.unwrap()).unwrap();
    assert!(!seen.contains("AUTH"), "AUTH must not be sent: {seen}");
}

#[tokio::test]
async fn helo_fallback() {
    let (addr, task) = fake_server("502 5.5.1 EHLO not implemented\r\n").await;
    let (mut s, _) = Session::connect(addr, &common::settings(), None)
        .await
        .unwrap();
    let info = s.ehlo().await.unwrap();
    assert_eq!(info.hostname, "fake.example");
    assert!(!info.pipelining && !info.starttls);
    s.quit().await.unwrap();
    let seen = String::from_utf8(task.await.unwrap()).unwrap();
    assert!(seen.contains("HELO client.test.example\r\n"), "{seen}");
}

#[tokio::test]
async fn refusing_banner_is_an_error_after_quit() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        sock.write_all(b"554 5.7.1 no service for you\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let n = sock.read(&mut buf).await.unwrap();
        let _ = sock.write_all(b"221 bye\r\n").await;
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    let err = Session::connect(addr, &common::settings(), None)
        .await
        .unwrap_err();
    match &err {
        ClientError::UnexpectedReply { stage, reply } => {
            assert_eq!(*stage, Stage::Banner);
            assert_eq!(reply.code, 554);
        }
        other => panic!("{other}"),
    }
    assert!(!err.is_transient());
    assert_eq!(task.await.unwrap(), "QUIT\r\n");
}

#[tokio::test]
async fn injected_addresses_are_refused_before_sending() {
    let srv = common::start().await;
    let (mut s, _) = Session::connect(srv.addr("smtp"), &common::settings(), None)
        .await
        .unwrap();
    s.ehlo().await.unwrap();
    let err = s
        .send(
            &envelope(&["bob@example.com>\r\nRCPT TO:<evil@elsewhere.example"]),
            &mut common::message("x", "x\r\n").as_slice(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Invalid {
                stage: Stage::Rcpt,
                ..
            }
        ),
        "{err}"
    );
    // Nothing was sent: the session is still in a clean state.
    assert_eq!(s.rset().await.unwrap().code, 250);
    s.quit().await.unwrap();
    assert!(srv.messages().is_empty());
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = Session::connect(addr, &common::settings(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err}");
    assert_eq!(err.stage(), Stage::Connect);
    assert!(err.is_transient());
}

#[tokio::test]
async fn pkix_mode_names_both_sides_of_a_name_mismatch() {
    let srv = common::start().await;
    let tls = common::client_tls(Verify::Pkix);
    let (mut s, _) = Session::connect(srv.addr("smtp"), &common::settings(), None)
        .await
        .unwrap();
    s.ehlo().await.unwrap();
    let err = s.starttls("mx1.fabrikam.example", &tls).await.unwrap_err();
    let cause = err.tls_cause().unwrap();
    assert_eq!(cause.id, tls_client::CERT_NAME_MISMATCH, "{cause}");
    assert_eq!(
        cause.summary,
        "certificate name mismatch: cert is for mx.test.example, MX is mx1.fabrikam.example"
    );
}

/// RFC 3207 §4.2: replies a man in the middle appends to the 220 before the
/// handshake must never be read as replies inside TLS.
#[tokio::test]
async fn bytes_after_starttls_220_are_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = common::ca().issue(&[HOST]).write(dir.path(), "mx");
    let settings = postern_tls::TlsSettings {
        certificates: vec![postern_tls::CertSettings {
            cert_path,
            key_path,
            hostnames: Vec::new(),
        }],
        ..postern_tls::TlsSettings::default()
    };
    let loaded =
        postern_tls::certs::load(&settings.certificates, time::OffsetDateTime::now_utc()).unwrap();
    let config = postern_tls::server::server_config(&settings, &loaded.store).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        sock.write_all(b"220 fake.example ESMTP\r\n").await.unwrap();
        let mut buf = [0u8; 512];
        let _ = sock.read(&mut buf).await.unwrap(); // EHLO
        sock.write_all(b"250-fake.example\r\n250 STARTTLS\r\n")
            .await
            .unwrap();
        let _ = sock.read(&mut buf).await.unwrap(); // STARTTLS
        // The 220 and an injected EHLO reply in one segment.
        sock.write_all(b"220 go ahead\r\n250-injected.example\r\n250 AUTH PLAIN\r\n")
            .await
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let mut tls = acceptor.accept(sock).await.unwrap();
        let n = tls.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"EHLO "));
        tls.write_all(b"250-real.example\r\n250 PIPELINING\r\n")
            .await
            .unwrap();
        let _ = tls.read(&mut buf).await; // QUIT
        let _ = tls.write_all(b"221 bye\r\n").await;
        let _ = tls.shutdown().await;
    });
    let tls = common::client_tls(Verify::Record);
    let (transcript, lines) = common::recorder();
    let (mut s, _) = Session::connect(addr, &common::settings(), Some(transcript))
        .await
        .unwrap();
    s.ehlo().await.unwrap();
    s.starttls(HOST, &tls).await.unwrap();
    let info = s.ehlo().await.unwrap();
    assert_eq!(info.hostname, "real.example");
    assert!(info.auth.is_empty() && info.pipelining);
    s.quit().await.unwrap();
    task.await.unwrap();
    let lines = lines.lock().unwrap();
    assert!(
        lines
            .iter()
            .any(|(d, l)| *d == Direction::Event && l.starts_with("discarded ")),
        "{lines:?}"
    );
}
