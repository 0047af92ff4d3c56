//! The smtpd's hooks move the Prometheus metrics of a real server: the
//! connection gauge goes up while a client is connected and back down when
//! it leaves, and a failed inbound TLS handshake is counted by cause.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use postern_metrics::{Metrics, Scrape};
use postern_smtpd::gateway::Services;
use postern_testkit::Dialogue;
use postern_track::{LogObserver, MailLog};

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
