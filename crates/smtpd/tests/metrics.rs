//! The smtpd's hooks move the Prometheus metrics of a real server: the
//! connection gauge goes up while a client is connected and back down when
//! it leaves, a failed inbound TLS handshake is counted by cause, and a
//! message received over STARTTLS (its `received` event written to a real
//! mail-log file, as `postern serve` does) is counted with its TLS version.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use postern_metrics::{Metrics, Scrape};
use postern_smtpd::gateway::Services;
use postern_smtpd::{QueuedHook, Server, Transcript};
use postern_spool::Spool;
use postern_testkit::Dialogue;
use postern_track::{LogObserver, MailEvent, MailLog, Received};

async fn start(metrics: &Metrics) -> common::TestServer {
    let log = MailLog::disabled().with_observer(Arc::new(metrics.clone()) as Arc<dyn LogObserver>);
    common::start_with_services(
        |_| {},
        Services {
            mail_log: Some(log),
            ..Services::default()
        },
    )
    .await
}

/// The exposition once it contains `line` (the session task ends, and its
/// guard is dropped, just after the client sees the connection close).
async fn exposition_with(metrics: &Metrics, line: &str) -> String {
    exposition_where(metrics, line, |l| l == line).await
}

async fn exposition_where(metrics: &Metrics, line: &str, ok: impl Fn(&str) -> bool) -> String {
    for _ in 0..200 {
        let text = metrics.render(&Scrape::default());
        if text.lines().any(&ok) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "exposition never had {line:?}:\n{}",
        metrics.render(&Scrape::default())
    );
}

#[tokio::test]
async fn connection_gauge_follows_sessions() {
    let metrics = Metrics::new();
    let srv = start(&metrics).await;

    let mut a = srv.connect("smtp").await;
    let mut b = srv.connect("smtp").await;
    exposition_with(&metrics, "postern_connections_current{listener=\"smtp\"} 2").await;
    a.cmd("QUIT", 221).await;
    assert!(a.is_closed().await);
    exposition_with(&metrics, "postern_connections_current{listener=\"smtp\"} 1").await;
    b.cmd("QUIT", 221).await;
    assert!(b.is_closed().await);
    let text = exposition_with(&metrics, "postern_connections_current{listener=\"smtp\"} 0").await;
    assert!(
        text.lines()
            .any(|l| l == "postern_connections_total{listener=\"smtp\"} 2"),
        "{text}"
    );
}

#[tokio::test]
async fn failed_inbound_handshake_is_counted_by_cause() {
    let metrics = Metrics::new();
    let srv = start(&metrics).await;
    // Plaintext SMTP on the implicit-TLS listener: the handshake fails.
    let mut d = Dialogue::connect(srv.addr("submissions")).await;
    d.send_raw(b"EHLO client.test\r\n").await;
    let prefix = "postern_tls_failures_total{direction=\"in\",cause=\"tls.";
    exposition_where(&metrics, prefix, |l| l.starts_with(prefix)).await;
    drop(d);
    let text = exposition_with(
        &metrics,
        "postern_connections_current{listener=\"submissions\"} 0",
    )
    .await;
    let failures: Vec<&str> = text.lines().filter(|l| l.starts_with(prefix)).collect();
    assert_eq!(
        failures,
        [format!(
            "postern_tls_failures_total{{direction=\"in\",cause=\"{}\"}} 1",
            postern_tls::cause::NOT_TLS
        )],
        "{text}"
    );
}

#[tokio::test]
async fn message_over_starttls_is_counted_from_the_mail_log() {
    let metrics = Metrics::new();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("log").join("mail.log");
    let log = MailLog::open(&log_path)
        .unwrap()
        .with_observer(Arc::new(metrics.clone()) as Arc<dyn LogObserver>);
    // The `received` event as `postern serve` emits it from the hook.
    let received_log = log.clone();
    let hook: QueuedHook = Arc::new(move |a| {
        received_log.emit(
            a.queue_id,
            MailEvent::Received(Received::from_envelope(a.envelope)),
        );
    });
    let settings = common::settings(dir.path());
    let tls = common::tls_config(&settings.tls);
    let (spool, _) = Spool::open(&settings.spool).unwrap();
    let transcript = Transcript::open(
        settings.transcript.path.as_ref().unwrap(),
        settings.transcript.format,
    )
    .unwrap();
    let server = Server::start_with(
        settings,
        Some(tls),
        spool,
        Some(transcript),
        Some(hook),
        Services {
            mail_log: Some(log.clone()),
            ..Services::default()
        },
    )
    .await
    .unwrap();

    let mut d = Dialogue::connect(server.addr("smtp").unwrap()).await;
    d.expect(220).await;
    d.cmd("EHLO client.test", 250).await;
    d.cmd("STARTTLS", 220).await;
    let client = postern_testkit::client_config(&common::ca(), &[&rustls::version::TLS13], &[]);
    d.upgrade(common::HOST, client).await.unwrap();
    d.cmd("EHLO client.test", 250).await;
    let reply = common::send_message(
        &mut d,
        "alice@example.org",
        "bob@example.com",
        "Subject: hi\r\n\r\nhello",
    )
    .await;
    assert_eq!(reply.code, 250, "{reply:?}");
    d.cmd("QUIT", 221).await;
    log.flush();

    let text = exposition_with(
        &metrics,
        "postern_messages_received_total{listener=\"smtp\"} 1",
    )
    .await;
    let tls_in: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("postern_tls_handshakes_total{direction=\"in\""))
        .collect();
    assert_eq!(tls_in.len(), 1, "{text}");
    assert!(
        tls_in[0].starts_with(
            "postern_tls_handshakes_total{direction=\"in\",version=\"TLSv1.3\",cipher=\"TLS_AES_"
        ) && tls_in[0].ends_with("} 1"),
        "{text}"
    );
    let written = std::fs::read_to_string(&log_path).unwrap();
    assert!(written.contains("\"event\":\"received\""), "{written}");
    server.shutdown(Duration::from_secs(1)).await;
}
