//! In → queue → out: our own smtpd accepts a message from a client in a relay
//! network, commits it to the spool and rings the delivery doorbell (the
//! `QueuedHook`), and the scheduler delivers it to a fake MX found through a
//! fake DNS — the path `postern serve` wires together. Also: a message left in
//! the spool by a previous run is delivered by the startup scan.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{drained, settings};
use postern_delivery::{SmtpTransport, SystemClock, start};
use postern_dns::{DnsSettings, Resolver};
use postern_policy::RelaySettings;
use postern_smtpd::{
    AuthMode, ListenerKind, ListenerSettings, QueuedHook, Server, ServerSettings, SessionLimits,
    TlsMode, TranscriptFormat, TranscriptSettings, VrfyMode,
};
use postern_spool::{Spool, SpoolSettings};
use postern_testkit::{Dialogue, FakeDns, FakeMx, MxTls};
use postern_tls::TlsSettings;
use postern_track::MailLog;

fn server_settings(dir: &std::path::Path) -> ServerSettings {
    ServerSettings {
        listeners: vec![ListenerSettings {
            name: "smtp".into(),
            addr: "127.0.0.1:0".parse().unwrap(),
            kind: ListenerKind::Smtp,
            hostname: "mx.postern.test".into(),
            tls: TlsMode::Off,
            auth: AuthMode::Off,
            limits: SessionLimits::default(),
            proxy_protocol: None,
        }],
        tls: TlsSettings::default(),
        spool: SpoolSettings::new(dir.join("spool")),
        relay: RelaySettings {
            accepted_domains: vec!["postern.test".into()],
            relay_networks: vec!["127.0.0.0/8".parse().unwrap()],
        },
        users: Vec::new(),
        vrfy: VrfyMode::Ambiguous,
        max_connections: 10,
        max_connections_per_ip: 10,
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
    }
}

async fn send_one(server: &Server, rcpt: &str) {
    let mut d = Dialogue::connect(server.addr("smtp").unwrap()).await;
    d.expect(220).await;
    d.cmd("EHLO client.example.org", 250).await;
    d.cmd("MAIL FROM:<alice@example.org>", 250).await;
    d.cmd(&format!("RCPT TO:<{rcpt}>"), 250).await;
    d.cmd("DATA", 354).await;
    d.send_raw(b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: relayed\r\n\r\n..leading dot\r\nbody\r\n.\r\n")
        .await;
    d.expect(250).await;
    d.cmd("QUIT", 221).await;
}

#[tokio::test]
async fn a_message_accepted_by_smtpd_is_delivered_to_its_mx() {
    let dir = tempfile::tempdir().unwrap();
    let dns = FakeDns::start().await;
    dns.add_mx("example.net", 10, "mx1.example.net");
    dns.add_a("mx1.example.net", [127, 0, 0, 1]);
    let mx = FakeMx::start(MxTls::None).await;
    let ss = server_settings(dir.path());
    let (spool, _) = Spool::open(&ss.spool).unwrap();

    let mut ds = settings(dir.path());
    ds.smtp_port = mx.port();
    let (log, mem) = MailLog::memory();
    let resolver = Resolver::new(&DnsSettings {
        nameservers: dns.nameservers(),
        ..DnsSettings::default()
    })
    .unwrap();
    let transport = SmtpTransport::new(&ds, spool.clone(), resolver, log.clone()).unwrap();
    let delivery = start(
        ds,
        spool.clone(),
        Arc::new(transport),
        log,
        Arc::new(SystemClock),
    );
    let notifier = delivery.notifier();
    let hook: QueuedHook = Arc::new(move |a| notifier.notify(a.queue_id));
    let server = Server::start_with_hook(ss, None, spool.clone(), None, Some(hook))
        .await
        .unwrap();

    send_one(&server, "bob@example.net").await;
    // The doorbell: no polling, no restart needed.
    tokio::time::timeout(Duration::from_secs(10), async {
        while mx.received_for("bob@example.net").is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("delivered within 10 s");
    drained(&delivery).await;
    let got = &mx.received_for("bob@example.net")[0];
    assert_eq!(got.mail_from, "alice@example.org");
    let text = String::from_utf8_lossy(&got.data);
    assert!(
        text.starts_with("Received: "),
        "our Received header first: {text}"
    );
    assert!(
        text.contains("\r\n.leading dot\r\n"),
        "dot-stuffing round trip: {text}"
    );
    assert!(spool.list().unwrap().is_empty(), "removed after delivery");
    let id = mem.records()[0].queue_id;
    assert_eq!(mem.names(&id), ["queued", "attempt", "delivered"]);
    server.shutdown(Duration::from_secs(5)).await;
    delivery.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn the_startup_scan_delivers_what_a_previous_run_left() {
    let dir = tempfile::tempdir().unwrap();
    let dns = FakeDns::start().await;
    dns.add_mx("example.net", 10, "mx1.example.net");
    dns.add_a("mx1.example.net", [127, 0, 0, 1]);
    let mx = FakeMx::start(MxTls::None).await;
    let ss = server_settings(dir.path());
    let (spool, _) = Spool::open(&ss.spool).unwrap();
    // A server without delivery accepts the message (delivery down).
    let server = Server::start(ss.clone(), None, spool.clone(), None)
        .await
        .unwrap();
    send_one(&server, "carol@example.net").await;
    server.shutdown(Duration::from_secs(5)).await;
    assert_eq!(spool.list().unwrap().len(), 1);

    let mut ds = settings(dir.path());
    ds.smtp_port = mx.port();
    let resolver = Resolver::new(&DnsSettings {
        nameservers: dns.nameservers(),
        ..DnsSettings::default()
    })
    .unwrap();
    let log = MailLog::disabled();
    let transport = SmtpTransport::new(&ds, spool.clone(), resolver, log.clone()).unwrap();
    let delivery = start(
        ds,
        spool.clone(),
        Arc::new(transport),
        log,
        Arc::new(SystemClock),
    );
    drained(&delivery).await;
    assert_eq!(mx.received_for("carol@example.net").len(), 1);
    assert!(spool.list().unwrap().is_empty());
    delivery.shutdown(Duration::from_secs(5)).await;
}
