//! Records of a small day of mail go in (built with the track crate's own
//! constructors, through a real `MailLog` with the metrics as observer);
//! the exposition comes out and is read by the reference Prometheus text
//! parser: families, types, units (name suffixes), label sets and values.
#![allow(clippy::unwrap_used, clippy::float_cmp)]

mod common;

use std::sync::Arc;

use postern_metrics::{Metrics, Scrape};
use postern_spool::{QueueId, ReceiptTls};
use postern_track::{
    Attempt, CauseInfo, DsnSent, Expired, LogObserver, MailEvent, MailLog, Quarantined,
    RcptOutcome, Received, SessionEvent, SessionRecord, SmtpDecision, TlsOutcome, TrackRecord,
};

fn received(listener: &str, tls: Option<(&str, &str)>) -> MailEvent {
    MailEvent::Received(Received {
        sender: "alice@example.com".into(),
        rcpts: vec!["bob@example.net".into()],
        size: 1000,
        listener: listener.into(),
        peer: "192.0.2.7:40000".into(),
        helo: "client.example".into(),
        tls: tls.map(|(v, c)| format!("{v} {c}")),
        sender_group: Some("TRUSTED".into()),
        policy: Some("ACCEPTED".into()),
        tls_params: tls.map(|(v, c)| ReceiptTls {
            version: v.into(),
            cipher: c.into(),
            group: Some("X25519MLKEM768".into()),
            sni: None,
        }),
        ..Received::default()
    })
}

fn attempt(outcome: &str, tls: bool, cause: Option<&str>, downgraded: bool) -> MailEvent {
    MailEvent::Attempt(Box::new(Attempt {
        rcpts: vec!["bob@example.net".into()],
        destination: "example.net".into(),
        route: "mx".into(),
        mx: "mx.example.net".into(),
        ip: "192.0.2.25:25".into(),
        policy: "opportunistic".into(),
        policy_reason: "default".into(),
        starttls_offered: Some(true),
        tls: tls.then(|| TlsOutcome {
            version: "TLSv1.2".into(),
            cipher: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into(),
            verified: false,
            verification: "unknown issuer".into(),
            peer_cert: None,
        }),
        downgraded,
        outcome: outcome.into(),
        cause: cause.map(|id| CauseInfo {
            id: id.into(),
            summary: "it failed".into(),
            ..CauseInfo::default()
        }),
        attempt: 1,
        ..Attempt::default()
    }))
}

fn decision(stage: &str, rule: &str) -> SmtpDecision {
    SmtpDecision {
        client: "198.51.100.7".into(),
        listener: "smtp".into(),
        stage: stage.into(),
        rule: rule.into(),
        group: Some("SUSPECT".into()),
        policy: Some("THROTTLED".into()),
        reply: "452 4.5.3 Too many recipients".into(),
        sender: Some("a@b.example".into()),
        recipient: Some("u@example.com".into()),
    }
}

fn at(mut r: TrackRecord, ts: &str) -> TrackRecord {
    r.ts = ts.into();
    r
}

/// Feeds a day of mail through a real (disabled-file) mail log with the
/// metrics as its observer.
fn day() -> Metrics {
    let metrics = Metrics::new();
    metrics.register_listener("submission");
    let log = MailLog::disabled().with_observer(Arc::new(metrics.clone()) as Arc<dyn LogObserver>);

    let (a, b, c) = (
        QueueId::generate(),
        QueueId::generate(),
        QueueId::generate(),
    );
    // a: received over TLS 1.3, deferred once, delivered 30 s later (age
    // from the remembered receipt time).
    log.record(at(
        TrackRecord::new(
            a,
            received("smtp", Some(("TLSv1.3", "TLS13_AES_256_GCM_SHA384"))),
        ),
        "2026-12-06T10:00:00.000Z",
    ));
    log.emit(a, attempt("deferred", true, None, false));
    log.emit(a, MailEvent::Deferred(RcptOutcome::default()));
    log.emit(
        a,
        attempt("failed", false, Some("tls.out.peer_closed"), false),
    );
    log.emit(a, attempt("delivered", false, None, true));
    log.record(at(
        TrackRecord::new(a, MailEvent::Delivered(RcptOutcome::default())),
        "2026-12-06T10:00:30.000Z",
    ));
    // b: plaintext, delivered; the record carries its age (2 s).
    log.emit(b, received("smtp", None));
    log.emit(
        b,
        MailEvent::Delivered(RcptOutcome {
            age_ms: Some(2000),
            ..RcptOutcome::default()
        }),
    );
    // c: quarantined, then bounced with a failure DSN, and expired.
    log.emit(c, received("submission", None));
    log.emit(
        c,
        MailEvent::Quarantined(Quarantined {
            quarantine: "spam".into(),
            reason: "rspamd".into(),
        }),
    );
    log.emit(c, MailEvent::Bounced(RcptOutcome::default()));
    log.emit(
        c,
        MailEvent::DsnSent(DsnSent {
            kind: "failure".into(),
            ..DsnSent::default()
        }),
    );
    log.emit(
        c,
        MailEvent::DsnSent(DsnSent {
            kind: "failure".into(),
            suppressed: Some("null sender".into()),
            ..DsnSent::default()
        }),
    );
    log.emit(c, MailEvent::Expired(Expired::default()));
    // Session decisions.
    log.session(SessionRecord::new(
        "S1",
        1,
        SessionEvent::Rejected(decision("rcpt", "relay_denied")),
    ));
    log.session(SessionRecord::new(
        "S1",
        2,
        SessionEvent::Rejected(decision("rcpt", "relay_denied")),
    ));
    log.session(SessionRecord::new(
        "S2",
        1,
        SessionEvent::Throttled(decision("rcpt", "max_recipients_per_hour_per_ip")),
    ));
    log.session(SessionRecord::new(
        "S3",
        1,
        SessionEvent::Greylisted(SmtpDecision {
            group: None,
            policy: None,
            ..decision("rcpt", "greylist")
        }),
    ));
    // Connections: two opened on smtp, one closed; a failed inbound handshake.
    let g1 = log.connection("smtp");
    let g2 = log.connection("smtp");
    drop(g1);
    log.tls_failed_inbound("submissions", "tls.no_shared_version");
    log.flush();
    drop(g2);
    metrics
}

#[test]
fn a_day_of_mail_reads_back_through_the_reference_parser() {
    let metrics = day();
    let text = metrics.render(&Scrape {
        queue_by_state: vec![("active".into(), 2), ("deferred".into(), 5)],
        oldest_age_seconds: Some(125.5),
        spool_poisoned: Some(false),
        delivery_running: Some(true),
        mail_log_dropped: 3,
        tracking_behind_bytes: Some(4096),
    });
    let Some(p) = common::parse(&text) else {
        return;
    };

    assert_eq!(p.kind("postern_build_info"), "gauge");
    assert_eq!(
        p.value(
            "postern_build_info",
            "postern_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );

    // Connections: gauge and counter, per listener; a registered listener at 0.
    assert_eq!(p.kind("postern_connections_current"), "gauge");
    assert_eq!(p.kind("postern_connections"), "counter");
    let smtp = [("listener", "smtp")];
    assert_eq!(
        p.value(
            "postern_connections_current",
            "postern_connections_current",
            &smtp
        ),
        0.0
    );
    assert_eq!(
        p.value("postern_connections", "postern_connections_total", &smtp),
        2.0
    );
    assert_eq!(
        p.value(
            "postern_connections",
            "postern_connections_total",
            &[("listener", "submission")]
        ),
        0.0
    );

    // Messages.
    for (name, v) in [
        ("postern_messages_delivered", 2.0),
        ("postern_messages_deferred", 1.0),
        ("postern_messages_bounced", 1.0),
        ("postern_messages_expired", 1.0),
        ("postern_messages_badmail", 0.0),
        ("postern_plaintext_retries", 1.0),
    ] {
        assert_eq!(p.kind(name), "counter", "{name}");
        assert_eq!(p.value(name, &format!("{name}_total"), &[]), v, "{name}");
    }
    assert_eq!(
        p.value(
            "postern_messages_received",
            "postern_messages_received_total",
            &smtp
        ),
        2.0
    );
    assert_eq!(
        p.value(
            "postern_messages_received",
            "postern_messages_received_total",
            &[("listener", "submission")]
        ),
        1.0
    );
    assert_eq!(
        p.value(
            "postern_messages_quarantined",
            "postern_messages_quarantined_total",
            &[("quarantine", "spam")]
        ),
        1.0
    );
    assert_eq!(
        p.value(
            "postern_dsn_sent",
            "postern_dsn_sent_total",
            &[("kind", "failure")]
        ),
        1.0
    );
    assert_eq!(
        p.value(
            "postern_dsn_sent",
            "postern_dsn_sent_total",
            &[("kind", "delay")]
        ),
        0.0
    );
    assert_eq!(
        p.value(
            "postern_dsn_suppressed",
            "postern_dsn_suppressed_total",
            &[("kind", "failure")]
        ),
        1.0
    );

    // Latency histogram, in seconds: 2 s (age_ms) and 30 s (receipt time).
    let lat = "postern_delivery_latency_seconds";
    assert_eq!(p.kind(lat), "histogram");
    assert_eq!(p.value(lat, &format!("{lat}_count"), &[]), 2.0);
    assert_eq!(p.value(lat, &format!("{lat}_sum"), &[]), 32.0);
    assert_eq!(p.value(lat, &format!("{lat}_bucket"), &[("le", "1")]), 0.0);
    assert_eq!(
        p.value(lat, &format!("{lat}_bucket"), &[("le", "2.5")]),
        1.0
    );
    assert_eq!(p.value(lat, &format!("{lat}_bucket"), &[("le", "30")]), 2.0);
    assert_eq!(
        p.value(lat, &format!("{lat}_bucket"), &[("le", "+Inf")]),
        2.0
    );

    // Attempts and TLS.
    let att = "postern_delivery_attempts_total";
    for (outcome, v) in [
        ("deferred", 1.0),
        ("failed", 1.0),
        ("delivered", 1.0),
        ("bounced", 0.0),
    ] {
        assert_eq!(
            p.value("postern_delivery_attempts", att, &[("outcome", outcome)]),
            v,
            "{outcome}"
        );
    }
    let hs = "postern_tls_handshakes_total";
    assert_eq!(
        p.value(
            "postern_tls_handshakes",
            hs,
            &[
                ("direction", "in"),
                ("version", "TLSv1.3"),
                ("cipher", "TLS13_AES_256_GCM_SHA384")
            ]
        ),
        1.0
    );
    assert_eq!(
        p.value(
            "postern_tls_handshakes",
            hs,
            &[
                ("direction", "out"),
                ("version", "TLSv1.2"),
                ("cipher", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
            ]
        ),
        1.0
    );
    assert_eq!(
        p.samples("postern_tls_handshakes"),
        2,
        "plaintext is no handshake"
    );
    let tf = "postern_tls_failures_total";
    assert_eq!(
        p.value(
            "postern_tls_failures",
            tf,
            &[("direction", "out"), ("cause", "tls.out.peer_closed")]
        ),
        1.0
    );
    assert_eq!(
        p.value(
            "postern_tls_failures",
            tf,
            &[("direction", "in"), ("cause", "tls.no_shared_version")]
        ),
        1.0
    );

    // Session decisions and policies.
    let relay = [("stage", "rcpt"), ("rule", "relay_denied")];
    assert_eq!(
        p.value(
            "postern_sessions_rejected",
            "postern_sessions_rejected_total",
            &relay
        ),
        2.0
    );
    assert_eq!(p.samples("postern_sessions_rejected"), 1, "only `rejected`");
    let sd = "postern_session_decisions_total";
    assert_eq!(
        p.value(
            "postern_session_decisions",
            sd,
            &[
                ("event", "throttled"),
                ("stage", "rcpt"),
                ("rule", "max_recipients_per_hour_per_ip")
            ]
        ),
        1.0
    );
    assert_eq!(
        p.value(
            "postern_session_decisions",
            sd,
            &[
                ("event", "greylisted"),
                ("stage", "rcpt"),
                ("rule", "greylist")
            ]
        ),
        1.0
    );
    let pd = "postern_policy_decisions_total";
    assert_eq!(
        p.value(
            "postern_policy_decisions",
            pd,
            &[
                ("group", "SUSPECT"),
                ("policy", "THROTTLED"),
                ("event", "rejected")
            ]
        ),
        2.0
    );
    assert_eq!(
        p.value(
            "postern_policy_decisions",
            pd,
            &[
                ("group", "TRUSTED"),
                ("policy", "ACCEPTED"),
                ("event", "received")
            ]
        ),
        3.0
    );
    assert_eq!(
        p.samples("postern_policy_decisions"),
        3,
        "greylisting without group or policy is no policy decision"
    );

    // Scrape-time gauges.
    let q = "postern_queue_messages";
    assert_eq!(p.kind(q), "gauge");
    assert_eq!(p.value(q, q, &[("state", "deferred")]), 5.0);
    assert_eq!(p.value(q, q, &[("state", "active")]), 2.0);
    let age = "postern_queue_oldest_age_seconds";
    assert_eq!(p.kind(age), "gauge");
    assert_eq!(p.value(age, age, &[]), 125.5);
    assert_eq!(
        p.value("postern_spool_poisoned", "postern_spool_poisoned", &[]),
        0.0
    );
    assert_eq!(
        p.value("postern_delivery_running", "postern_delivery_running", &[]),
        1.0
    );
    assert_eq!(p.kind("postern_mail_log_dropped"), "counter");
    assert_eq!(
        p.value(
            "postern_mail_log_dropped",
            "postern_mail_log_dropped_total",
            &[]
        ),
        3.0
    );
    let behind = "postern_tracking_behind_bytes";
    assert_eq!(p.value(behind, behind, &[]), 4096.0);
}

#[test]
fn unknown_scrape_facts_are_left_out_not_zero() {
    let text = Metrics::new().render(&Scrape::default());
    let Some(p) = common::parse(&text) else {
        return;
    };
    for absent in [
        "postern_queue_oldest_age_seconds",
        "postern_spool_poisoned",
        "postern_delivery_running",
        "postern_tracking_behind_bytes",
    ] {
        assert!(!p.has(absent), "{absent} should be absent: {text}");
    }
    assert_eq!(
        p.value(
            "postern_mail_log_dropped",
            "postern_mail_log_dropped_total",
            &[]
        ),
        0.0
    );
    assert!(text.is_ascii());
    assert_eq!(
        postern_metrics::CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8"
    );
}

#[test]
fn two_servers_in_one_process_do_not_share_metrics() {
    let a = Metrics::new();
    let b = Metrics::new();
    a.connection_opened("smtp");
    let text = b.render(&Scrape::default());
    assert!(!text.contains("listener=\"smtp\""), "{text}");
    let Some(p) = common::parse(&a.render(&Scrape::default())) else {
        return;
    };
    assert_eq!(
        p.value(
            "postern_connections_current",
            "postern_connections_current",
            &[("listener", "smtp")]
        ),
        1.0
    );
}
