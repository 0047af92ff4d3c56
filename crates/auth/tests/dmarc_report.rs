//! DMARC aggregate reports (RFC 7489 §7.2): the recorder under a full
//! channel and its per-day caps, aggregation counts, the XML read back by
//! mail-auth's parser and by Python's `xml.etree` against Appendix C, the
//! report message queued into a real spool, `!size`, and no double send
//! after a restart. §7.1 against FakeDns is in `dmarc_report_dns.rs`.

#![allow(clippy::unwrap_used)]

use std::io::Read as _;
use std::net::IpAddr;
use std::path::Path;

use base64::Engine as _;
use mail_auth::MessageAuthenticator;
use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::report::Report;
use postern_auth::report::{
    Aggregate, Alignment, Disposition, Outcome, PolicyOverride, Published, RecorderLimits,
    ReportRecord, ReportRecorder, ReportSettings, Reporter, Skip, SpoolSink, day_file, day_of,
    execute, parse_day, plan_day, prune, same_name,
};
use postern_spool::{Envelope, Spool, SpoolSettings};
use postern_testkit::FakeDns;

const DAY: &str = "2026-12-05";
const NOON: i64 = 1_796_515_200 - 86_400 + 43_200; // 2026-12-05T12:00:00Z

fn rec(domain: &str, ip: &str, time: i64) -> ReportRecord {
    ReportRecord {
        time,
        source_ip: ip.parse().unwrap(),
        header_from: format!("news@{domain}"),
        envelope_from: format!("bounce@{domain}"),
        envelope_to: None,
        policy_domain: domain.to_owned(),
        published: Published {
            adkim: Alignment::Relaxed,
            aspf: Alignment::Strict,
            p: Disposition::Reject,
            sp: Disposition::Quarantine,
            pct: 100,
        },
        rua: vec![format!("mailto:dmarc@{domain}")],
        disposition: Disposition::None,
        dkim_aligned: true,
        spf_aligned: false,
        override_reason: None,
        dkim: vec![(domain.to_owned(), "s1".into(), "pass".into())],
        spf: vec![
            (format!("mx.{domain}"), "helo".into(), "pass".into()),
            (domain.to_owned(), "mfrom".into(), "softfail".into()),
        ],
    }
}

fn settings(dir: &Path) -> ReportSettings {
    let mut s = ReportSettings::new(dir);
    s.enabled = true;
    s.dir = dir.join("dmarc");
    s.reporter = Reporter {
        org_name: "Example Receiver".into(),
        email: "dmarc-noreply@receiver.example".into(),
        contact_info: Some("https://receiver.example/dmarc".into()),
    };
    s
}

/// A resolver that answers nothing (every name NXDOMAIN): internal
/// destinations need no lookup.
fn authenticator(dns: &FakeDns) -> MessageAuthenticator {
    let mut config = ResolverConfig::default();
    let addr = dns.addr();
    let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
    for c in &mut ns.connections {
        c.port = addr.port();
    }
    config.name_servers.push(ns);
    MessageAuthenticator::new(config, ResolverOpts::default()).unwrap()
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

#[test]
fn full_channel_drops_and_counts_never_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let limits = RecorderLimits {
        queue_len: 4,
        ..RecorderLimits::default()
    };
    // No writer yet: the channel fills and every further record is dropped
    // at once (this test would hang if record() blocked).
    let (recorder, queue) = ReportRecorder::channel(limits);
    for i in 0..10 {
        recorder.record(rec("a.example", &format!("192.0.2.{i}"), NOON));
    }
    // A record without rua= is not wanted and not counted.
    let mut no_rua = rec("b.example", "192.0.2.1", NOON);
    no_rua.rua.clear();
    recorder.record(no_rua);
    assert_eq!(recorder.stats().dropped_queue_full, 6);
    let handle = queue.start(tmp.path()).unwrap();
    handle.shutdown();
    let day = parse_day(DAY).unwrap();
    assert_eq!(lines(&day_file(tmp.path(), day)), 4);
    let s = recorder.stats();
    assert_eq!((s.written, s.dropped_over_cap, s.write_errors), (4, 0, 0));
    // The writer has stopped: a record now is dropped and counted, not a hang.
    recorder.record(rec("a.example", "192.0.2.1", NOON));
    assert_eq!(recorder.stats().dropped_queue_full, 7);
}

#[test]
fn per_domain_cap_holds_across_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let limits = RecorderLimits {
        max_records_per_domain_per_day: 3,
        ..RecorderLimits::default()
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (recorder, handle) = ReportRecorder::open(tmp.path(), limits.clone()).unwrap();
    for _ in 0..5 {
        recorder.record(rec("a.example", "192.0.2.1", now));
    }
    for _ in 0..2 {
        recorder.record(rec("b.example", "192.0.2.1", now));
    }
    handle.shutdown();
    let s = recorder.stats();
    assert_eq!((s.written, s.dropped_over_cap), (5, 2));
    let file = day_file(tmp.path(), day_of(now));
    assert_eq!(lines(&file), 5);

    // A restart reads today's counts back: a.example is still full.
    let (recorder, handle) = ReportRecorder::open(tmp.path(), limits).unwrap();
    recorder.record(rec("a.example", "192.0.2.1", now));
    recorder.record(rec("b.example", "192.0.2.1", now));
    handle.shutdown();
    let s = recorder.stats();
    assert_eq!((s.written, s.dropped_over_cap), (1, 1));
    assert_eq!(lines(&file), 6);
}

#[test]
fn too_many_domains_or_bytes_in_a_day_are_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let limits = RecorderLimits {
        max_domains_per_day: 2,
        ..RecorderLimits::default()
    };
    let (recorder, handle) = ReportRecorder::open(tmp.path(), limits).unwrap();
    for d in ["a.example", "b.example", "c.example", "a.example"] {
        recorder.record(rec(d, "192.0.2.1", NOON));
    }
    handle.shutdown();
    let s = recorder.stats();
    assert_eq!((s.written, s.dropped_over_cap), (3, 1));

    // The day's file is capped too, all domains together.
    let tmp = tempfile::tempdir().unwrap();
    let mut one = rec("a.example", "192.0.2.1", NOON);
    one.normalize();
    let line = serde_json::to_string(&one).unwrap().len() as u64 + 1;
    let limits = RecorderLimits {
        max_bytes_per_day: 2 * line + line / 2,
        ..RecorderLimits::default()
    };
    let (recorder, handle) = ReportRecorder::open(tmp.path(), limits).unwrap();
    for d in ["a.example", "b.example", "c.example"] {
        recorder.record(rec(d, "192.0.2.1", NOON));
    }
    handle.shutdown();
    let s = recorder.stats();
    assert_eq!((s.written, s.dropped_over_cap), (2, 1));
}

#[test]
fn aggregation_counts_rows() {
    let mut recs = Vec::new();
    for _ in 0..3 {
        recs.push(rec("a.example", "192.0.2.1", NOON));
    }
    recs.push(rec("a.example", "192.0.2.2", NOON)); // other IP
    let mut q = rec("a.example", "192.0.2.1", NOON + 60);
    q.disposition = Disposition::Quarantine;
    q.dkim_aligned = false;
    recs.push(q);
    let mut upper = rec("a.example", "192.0.2.1", NOON);
    upper.header_from = "News@A.Example".into(); // same domain after normalising
    recs.push(upper);
    recs.push(rec("b.example", "2001:db8::1", NOON));
    let agg = Aggregate::of(recs);
    assert_eq!(agg.domains.len(), 2);
    let a = &agg.domains["a.example"];
    assert_eq!(a.messages, 6);
    let mut counts: Vec<u32> = a.rows.values().copied().collect();
    counts.sort_unstable();
    assert_eq!(counts, vec![1, 1, 4]);
    let b = &agg.domains["b.example"];
    assert_eq!(b.messages, 1);
    assert_eq!(
        b.rows.keys().next().unwrap().source_ip,
        "2001:db8::1".parse::<IpAddr>().unwrap()
    );
}

fn write_day(dir: &Path, recs: &[ReportRecord]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut text = String::new();
    for r in recs {
        text.push_str(&serde_json::to_string(r).unwrap());
        text.push('\n');
    }
    text.push_str("{not json\n");
    std::fs::write(day_file(dir, parse_day(DAY).unwrap()), text).unwrap();
}

fn day_records() -> Vec<ReportRecord> {
    let mut recs = vec![rec("a.example", "192.0.2.1", NOON); 3];
    let mut fwd = rec("a.example", "198.51.100.7", NOON + 5);
    fwd.disposition = Disposition::None;
    fwd.dkim_aligned = false;
    fwd.override_reason = Some((PolicyOverride::MailingList, "list <x> & co".into()));
    fwd.envelope_to = Some("Rcpt@Receiver.Example".into());
    recs.push(fwd);
    recs
}

#[tokio::test]
async fn xml_parses_back_with_mail_auth_and_python() {
    let tmp = tempfile::tempdir().unwrap();
    let s = settings(tmp.path());
    write_day(&s.dir, &day_records());
    let dns = FakeDns::start().await;
    let auth = authenticator(&dns);
    let now = time::OffsetDateTime::now_utc();
    let plan = plan_day(&s, parse_day(DAY).unwrap(), &auth, &same_name, now)
        .await
        .unwrap();
    assert_eq!(plan.bad_lines, 1);
    assert_eq!(plan.domains.len(), 1);
    let d = &plan.domains[0];
    assert_eq!((d.messages, d.rows), (4, 2));
    assert!(
        dns.queries().is_empty(),
        "internal rua needs no DNS: {:?}",
        dns.queries()
    );

    let report = Report::parse_xml(d.xml.as_bytes()).unwrap();
    assert_eq!(report.domain(), "a.example");
    assert_eq!(report.org_name(), "Example Receiver");
    assert_eq!(report.email(), "dmarc-noreply@receiver.example");
    assert_eq!(
        report.extra_contact_info(),
        Some("https://receiver.example/dmarc")
    );
    assert_eq!(report.report_id(), "20261205.a.example.receiver.example");
    assert_eq!(report.date_range_begin(), 1_796_428_800);
    assert_eq!(report.date_range_end(), 1_796_428_800 + 86_399);
    assert_eq!(report.p(), mail_auth::report::Disposition::Reject);
    assert_eq!(report.sp(), mail_auth::report::Disposition::Quarantine);
    assert_eq!(report.aspf(), mail_auth::report::Alignment::Strict);
    let total: u32 = report
        .records()
        .iter()
        .map(mail_auth::report::Record::count)
        .sum();
    assert_eq!(total, 4);
    let listed = report.records().iter().find(|r| r.count() == 1).unwrap();
    assert_eq!(listed.source_ip(), Some("198.51.100.7".parse().unwrap()));
    assert_eq!(listed.envelope_to(), Some("receiver.example"));
    assert_eq!(listed.header_from(), "a.example");
    // Escaped in the XML; mail-auth's reader trims the text around entities.
    assert!(
        d.xml.contains("<comment>list &lt;x&gt; &amp; co</comment>"),
        "{}",
        d.xml
    );
    assert_eq!(
        listed.policy_override_reason()[0].comment(),
        Some("list<x>&co")
    );
    assert_eq!(
        listed.spf_auth_result().len(),
        1,
        "one spf: the mfrom check"
    );
    assert_eq!(
        listed.spf_auth_result()[0].result(),
        mail_auth::report::SpfResult::SoftFail
    );

    // Python's own parser, against the element names of Appendix C.
    let xml_path = tmp.path().join("report.xml");
    std::fs::write(&xml_path, &d.xml).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/dmarc_report_names.py");
    match std::process::Command::new("python3")
        .arg(script)
        .arg(&xml_path)
        .output()
    {
        Err(e) => {
            // CI installs python3 (.ci/run) and sets POSTERN_REQUIRE_TOOLS.
            assert!(
                std::env::var_os("POSTERN_REQUIRE_TOOLS").is_none(),
                "python3: {e}"
            );
            println!("skipped: python3 not installed");
        }
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(text.trim(), "ok 2 records");
        }
    }
}

fn attachment(message: &str) -> (String, Vec<u8>) {
    let name = message
        .split("filename=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let after = message
        .split("Content-Transfer-Encoding: base64\r\n\r\n")
        .nth(1)
        .unwrap();
    let b64: String = after
        .split("\r\n\r\n--")
        .next()
        .unwrap()
        .split("\r\n")
        .collect();
    let gz = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let mut xml = Vec::new();
    mail_auth::flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut xml)
        .unwrap();
    (name, xml)
}

fn read_queued(spool: &Spool, env: &Envelope) -> String {
    let mut body = String::new();
    spool
        .open_message(&env.queue_id)
        .unwrap()
        .read_to_string(&mut body)
        .unwrap();
    body
}

#[tokio::test]
async fn report_queued_into_the_spool_once() {
    let tmp = tempfile::tempdir().unwrap();
    let s = settings(tmp.path());
    let mut recs = day_records();
    // A second destination with a !size too small for the report, one
    // that is not mailto:, and the first one again.
    for r in &mut recs {
        r.rua = vec![
            "mailto:dmarc@a.example".into(),
            "mailto:tiny@a.example!1k".into(),
            "https://a.example/dmarc".into(),
            "mailto:DMARC@a.example".into(),
        ];
    }
    write_day(&s.dir, &recs);
    let (spool, _) = Spool::open(&SpoolSettings::new(tmp.path().join("spool"))).unwrap();
    let dns = FakeDns::start().await;
    let auth = authenticator(&dns);
    let day = parse_day(DAY).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let plan = plan_day(&s, day, &auth, &same_name, now).await.unwrap();
    let outs: Vec<&Outcome> = plan.domains[0]
        .destinations
        .iter()
        .map(|d| &d.outcome)
        .collect();
    assert!(matches!(outs[0], Outcome::Send { address, .. } if address == "dmarc@a.example"));
    assert!(
        matches!(outs[1], Outcome::Skip(Skip::TooLarge { limit: 1024, size }) if *size > 1024),
        "{:?}",
        outs[1]
    );
    assert!(matches!(outs[2], Outcome::Skip(Skip::Uri(_))));
    assert!(matches!(outs[3], Outcome::Skip(Skip::Duplicate)));

    let notified = std::sync::Mutex::new(Vec::new());
    let on_queued = |e: &Envelope| notified.lock().unwrap().push(e.queue_id);
    let sink = SpoolSink {
        spool: &spool,
        hostname: "mx.receiver.example",
        on_queued: &on_queued,
    };
    let sent = execute(&s, &plan, &sink).unwrap();
    assert_eq!(sent.len(), 1);
    let queued = spool.list().unwrap();
    assert_eq!(queued.len(), 1);
    let env = &queued[0];
    assert_eq!(notified.lock().unwrap().as_slice(), &[env.queue_id]);
    assert_eq!(sent[0].id, env.queue_id.to_string());
    assert_eq!(env.reverse_path, "dmarc-noreply@receiver.example");
    assert_eq!(env.recipients.len(), 1);
    assert_eq!(env.recipients[0].address, "dmarc@a.example");

    let body = read_queued(&spool, env);
    assert!(
        body.contains(
            // Folded (RFC 5322 §2.2.3): the one-line form is longer than 78.
            "\r\nSubject: Report Domain: a.example\r\n Submitter: receiver.example\r\n \
         Report-ID: <20261205.a.example.receiver.example>\r\n"
        ),
        "{body}"
    );
    assert!(body.starts_with("From: \"Example Receiver\" <dmarc-noreply@receiver.example>\r\nTo: <dmarc@a.example>\r\nDate: "));
    assert!(body.contains("\r\nMessage-ID: <20261205.a.example.receiver.example."));
    let (name, xml) = attachment(&body);
    assert_eq!(
        name,
        "receiver.example!a.example!1796428800!1796515199.xml.gz"
    );
    assert_eq!(String::from_utf8(xml).unwrap(), plan.domains[0].xml);
    // mail-auth finds and reads the report in the message too.
    let parsed = Report::parse_rfc5322(body.as_bytes(), 1 << 20).unwrap();
    assert_eq!(
        parsed,
        Report::parse_xml(plan.domains[0].xml.as_bytes()).unwrap()
    );

    // Again (same process, or after a restart: the marker is on disk).
    let s2 = settings(tmp.path());
    let plan2 = plan_day(&s2, day, &auth, &same_name, now).await.unwrap();
    assert!(plan2.domains[0].already_sent);
    assert!(execute(&s2, &plan2, &sink).unwrap().is_empty());
    assert_eq!(spool.list().unwrap().len(), 1);
    let marker =
        std::fs::read_to_string(postern_auth::report::marker(&s.dir, day, "a.example")).unwrap();
    assert_eq!(marker, format!("dmarc@a.example {}\n", env.queue_id));
}

#[test]
fn retention_prunes_old_days() {
    let tmp = tempfile::tempdir().unwrap();
    let s = settings(tmp.path());
    std::fs::create_dir_all(s.dir.join("sent/2026-11-20")).unwrap();
    std::fs::create_dir_all(s.dir.join("sent/2026-12-01")).unwrap();
    for d in ["2026-11-20", "2026-11-28", "2026-11-29", "2026-12-05"] {
        std::fs::write(day_file(&s.dir, parse_day(d).unwrap()), "").unwrap();
    }
    // today 2026-12-06, 7 days kept: 2026-11-29 and later stay.
    let removed = prune(&s, parse_day("2026-12-06").unwrap()).unwrap();
    assert_eq!(removed, 3);
    let mut left: Vec<String> = std::fs::read_dir(&s.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "records-2026-11-29.jsonl",
            "records-2026-12-05.jsonl",
            "sent"
        ]
    );
    assert!(s.dir.join("sent/2026-12-01").exists());
    let days = postern_auth::report::days_to_report(&s, parse_day("2026-12-06").unwrap()).unwrap();
    assert_eq!(
        days,
        vec![
            parse_day("2026-11-29").unwrap(),
            parse_day("2026-12-05").unwrap()
        ]
    );
}
