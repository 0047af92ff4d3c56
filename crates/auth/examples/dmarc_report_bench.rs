//! DMARC report figures: the cost of `ReportRecorder::record` on the
//! session's path (and what a burst drops with the default queue), the
//! writer's throughput, and a day's planning (read + aggregate + XML +
//! gzip) for 100 000 records.
//!
//! `cargo run --release -p postern-auth --example dmarc_report_bench`

#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]

use std::time::Instant;

use mail_auth::MessageAuthenticator;
use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use postern_auth::report::{
    Alignment, Disposition, Published, RecorderLimits, ReportRecord, ReportRecorder,
    ReportSettings, Reporter, day_of, plan_day, same_name,
};

const N: usize = 100_000;

fn rec(i: usize, time: i64) -> ReportRecord {
    let domain = format!("d{}.example", i % 10);
    ReportRecord {
        time,
        source_ip: format!("198.51.{}.{}", (i / 250) % 4, i % 250)
            .parse()
            .unwrap(),
        header_from: domain.clone(),
        envelope_from: domain.clone(),
        envelope_to: None,
        policy_domain: domain.clone(),
        published: Published {
            adkim: Alignment::Relaxed,
            aspf: Alignment::Relaxed,
            p: Disposition::Reject,
            sp: Disposition::Reject,
            pct: 100,
        },
        rua: vec![format!("mailto:dmarc@{domain}")],
        disposition: Disposition::None,
        dkim_aligned: !i.is_multiple_of(7),
        spf_aligned: !i.is_multiple_of(3),
        override_reason: None,
        dkim: vec![(domain.clone(), "s1".into(), "pass".into())],
        spf: vec![(domain, "mfrom".into(), "pass".into())],
    }
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let records: Vec<ReportRecord> = (0..N).map(|i| rec(i, now)).collect();

    // A burst from one thread, as fast as it can: the session's cost, and
    // what the default queue (10 000) drops when the writer falls behind.
    let (recorder, handle) = ReportRecorder::open(tmp.path(), RecorderLimits::default()).unwrap();
    let t = Instant::now();
    for r in records.iter().cloned() {
        recorder.record(r);
    }
    let burst = t.elapsed();
    handle.shutdown();
    let drained = t.elapsed();
    let s = recorder.stats();
    println!(
        "record(): {N} calls in {:.1} ms = {:.2} µs/call (clone included); written {} dropped_queue_full {} in {:.1} ms",
        burst.as_secs_f64() * 1e3,
        burst.as_secs_f64() * 1e6 / N as f64,
        s.written,
        s.dropped_queue_full,
        drained.as_secs_f64() * 1e3
    );

    // Paced like real traffic (a pause every 1000 records): nothing dropped.
    let tmp2 = tempfile::tempdir().unwrap();
    let (recorder, handle) = ReportRecorder::open(tmp2.path(), RecorderLimits::default()).unwrap();
    let t = Instant::now();
    for (i, r) in records.iter().cloned().enumerate() {
        recorder.record(r);
        if i % 1000 == 999 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    handle.shutdown();
    let s = recorder.stats();
    println!(
        "paced 1000 records/ms: written {} dropped {} in {:.1} ms",
        s.written,
        s.dropped_queue_full,
        t.elapsed().as_secs_f64() * 1e3
    );

    // Planning the day (no DNS: every rua is internal).
    let mut settings = ReportSettings::new(tmp2.path());
    settings.dir = tmp2.path().to_path_buf();
    settings.reporter = Reporter {
        org_name: "Bench".into(),
        email: "dmarc@receiver.example".into(),
        contact_info: None,
    };
    let mut config = ResolverConfig::default();
    let mut ns = NameServerConfig::udp_and_tcp("127.0.0.1".parse().unwrap());
    for c in &mut ns.connections {
        c.port = 9;
    }
    config.name_servers.push(ns);
    let auth = MessageAuthenticator::new(config, ResolverOpts::default()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let t = Instant::now();
    let plan = rt
        .block_on(plan_day(
            &settings,
            day_of(now),
            &auth,
            &same_name,
            time::OffsetDateTime::now_utc(),
        ))
        .unwrap();
    let el = t.elapsed();
    let rows: usize = plan.domains.iter().map(|d| d.rows).sum();
    let xml: usize = plan.domains.iter().map(|d| d.xml.len()).sum();
    let gz: usize = plan.domains.iter().map(|d| d.gz_len).sum();
    println!(
        "plan_day: {} records, {} domains, {rows} rows, XML {xml} bytes → gzip {gz} bytes, in {:.1} ms",
        plan.domains.iter().map(|d| d.messages).sum::<u64>(),
        plan.domains.len(),
        el.as_secs_f64() * 1e3
    );
}
