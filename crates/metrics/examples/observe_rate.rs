//! How many mail-log records per second the metrics count, and how long a
//! render takes (`cargo run --release -p postern-metrics --example observe_rate`).
//! Each message makes the records of a typical life: received (TLS),
//! attempt (TLS), delivered, plus one session event per message.

use std::time::Instant;

use postern_metrics::{Metrics, Scrape};
use postern_spool::{QueueId, ReceiptTls};
use postern_track::{
    Attempt, MailEvent, RcptOutcome, Received, SessionEvent, SessionRecord, SmtpDecision,
    TlsOutcome, TrackRecord,
};

fn main() {
    const MESSAGES: u32 = 200_000;
    let m = Metrics::new();
    let records: Vec<(TrackRecord, TrackRecord, TrackRecord, SessionRecord)> = (0..MESSAGES)
        .map(|i| {
            let id = QueueId::generate();
            (
                TrackRecord::new(
                    id,
                    MailEvent::Received(Received {
                        listener: "smtp".into(),
                        sender_group: Some("TRUSTED".into()),
                        policy: Some("ACCEPTED".into()),
                        tls_params: Some(ReceiptTls {
                            version: "TLSv1.3".into(),
                            cipher: "TLS13_AES_256_GCM_SHA384".into(),
                            ..ReceiptTls::default()
                        }),
                        ..Received::default()
                    }),
                ),
                TrackRecord::new(
                    id,
                    MailEvent::Attempt(Box::new(Attempt {
                        outcome: "delivered".into(),
                        tls: Some(TlsOutcome {
                            version: "TLSv1.3".into(),
                            cipher: "TLS13_AES_128_GCM_SHA256".into(),
                            ..TlsOutcome::default()
                        }),
                        ..Attempt::default()
                    })),
                ),
                TrackRecord::new(id, MailEvent::Delivered(RcptOutcome::default())),
                SessionRecord::new(
                    "S",
                    i,
                    SessionEvent::Rejected(SmtpDecision {
                        stage: "rcpt".into(),
                        rule: "relay_denied".into(),
                        ..SmtpDecision::default()
                    }),
                ),
            )
        })
        .collect();
    let start = Instant::now();
    for (a, b, c, d) in &records {
        m.observe_mail(a);
        m.observe_mail(b);
        m.observe_mail(c);
        m.observe_session(d);
    }
    let took = start.elapsed();
    let n = f64::from(MESSAGES) * 4.0;
    println!(
        "{n} records in {took:?}: {:.0} records/s, {:.2} µs per record",
        n / took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / n
    );
    let start = Instant::now();
    let text = m.render(&Scrape::default());
    println!("render: {} bytes in {:?}", text.len(), start.elapsed());
}
