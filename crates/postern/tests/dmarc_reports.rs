//! DMARC aggregate reports end to end with the real binary: `postern dmarc
//! report --dry-run --out DIR` (what would be sent, XML written, nothing
//! queued), `postern dmarc report` (queued through the pickup folder,
//! marked sent, not again), and `postern serve` catching up a due day at
//! start-up through its spool — delivered to a FakeMx standing for the
//! domain's mail server, read back with mail-auth's report parser — once
//! across a restart. `[dns]` points at FakeDns (RFC 7489 §7.1
//! authorisation of an external destination).
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Running, eventually};
use postern_testkit::{FakeDns, FakeMx, MxTls};

fn config(dir: &Path, dns: &FakeDns) -> PathBuf {
    config_with(dir, dns, "")
}

fn config_with(dir: &Path, dns: &FakeDns, extra: &str) -> PathBuf {
    let ns = dns.addr();
    let cfg = format!(
        "data_dir = \"data\"\nhostname = \"mx.receiver.example\"\n\
         [[listener]]\nname = \"smtp\"\naddress = \"127.0.0.1:0\"\nkind = \"smtp\"\ntls = \"off\"\n\
         [relay]\naccepted_domains = [\"receiver.example\"]\n\
         [dns]\nnameservers = [\"{ns}\"]\n\
         [dmarc_reports]\nenabled = true\norg_name = \"Receiver Example\"\n\
         email = \"dmarc-noreply@receiver.example\"\nsend_at = \"00:00\"\n{extra}"
    );
    let path = dir.join("postern.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn record(day_noon: i64) -> String {
    format!(
        r#"{{"time":{day_noon},"source_ip":"192.0.2.7","header_from":"a.example","envelope_from":"a.example","policy_domain":"a.example","published":{{"adkim":"relaxed","aspf":"relaxed","p":"reject","sp":"reject","pct":100}},"rua":["mailto:dmarc@a.example","mailto:agg@reports.example.net","mailto:victim@third.example.org"],"disposition":"reject","dkim_aligned":false,"spf_aligned":false,"dkim":[],"spf":[["a.example","mfrom","fail"]]}}"#
    )
}

fn write_day(dir: &Path, day: &str, noon: i64, n: usize) {
    let reports = dir.join("data/dmarc");
    std::fs::create_dir_all(&reports).unwrap();
    let line = record(noon) + "\n";
    std::fs::write(reports.join(format!("records-{day}.jsonl")), line.repeat(n)).unwrap();
}

fn postern(cfg: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_postern"))
        .arg("-c")
        .arg(cfg)
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn pickup_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("data/pickup"))
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

// The binary runs while this test blocks on it: FakeDns needs a thread of
// its own to answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_then_send_through_pickup_once() {
    let dns = FakeDns::start().await;
    dns.add_txt("a.example._report._dmarc.reports.example.net", "v=DMARC1");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &dns);
    write_day(dir.path(), "2026-12-05", 1_796_472_000, 3);

    let xml_dir = dir.path().join("xml");
    let out = postern(
        &cfg,
        &[
            "dmarc",
            "report",
            "--day",
            "2026-12-05",
            "--dry-run",
            "--out",
            xml_dir.to_str().unwrap(),
        ],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("a.example: 3 message(s) in 1 row(s), report id 20261205.a.example.receiver.example, attachment receiver.example!a.example!1796428800!1796515199.xml.gz"), "{t}");
    assert!(
        t.contains("  mailto:dmarc@a.example -> send to dmarc@a.example ("),
        "{t}"
    );
    assert!(
        t.contains("  mailto:agg@reports.example.net -> send to agg@reports.example.net ("),
        "{t}"
    );
    assert!(t.contains("  mailto:victim@third.example.org -> skip: external destination not authorised: no v=DMARC1 record at a.example._report._dmarc.third.example.org (RFC 7489 §7.1)"), "{t}");
    let xml = std::fs::read_to_string(
        xml_dir.join("receiver.example!a.example!1796428800!1796515199.xml"),
    )
    .unwrap();
    assert!(xml.contains("<count>3</count>"), "{xml}");
    assert!(
        pickup_files(dir.path()).is_empty(),
        "dry run queued something"
    );

    let out = postern(&cfg, &["dmarc", "report", "--day", "2026-12-05"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("2 report(s) dropped into the pickup folder"),
        "{t}"
    );
    let files = pickup_files(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    let first = std::fs::read_to_string(&files[0]).unwrap();
    let second = std::fs::read_to_string(&files[1]).unwrap();
    let mut receivers: Vec<&str> = [&first, &second]
        .iter()
        .map(|m| {
            assert!(m.starts_with("X-Sender: dmarc-noreply@receiver.example\r\nX-Receiver: "));
            m.lines().nth(1).unwrap().trim_start_matches("X-Receiver: ")
        })
        .collect();
    receivers.sort_unstable();
    assert_eq!(receivers, ["agg@reports.example.net", "dmarc@a.example"]);
    assert!(first.contains("filename=\"receiver.example!a.example!1796428800!1796515199.xml.gz\""));
    assert!(
        dir.path()
            .join("data/dmarc/sent/2026-12-05/a.example")
            .exists()
    );

    // Again: already sent, nothing new.
    let out = postern(&cfg, &["dmarc", "report", "--day", "2026-12-05"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("already sent"), "{t}");
    assert!(t.contains("0 report(s) dropped"), "{t}");
    assert_eq!(pickup_files(dir.path()).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_catches_up_a_due_day_once() {
    let dns = FakeDns::start().await;
    let mx = FakeMx::start(MxTls::None).await;
    let dir = tempfile::tempdir().unwrap();
    let route = format!(
        "[[route]]\ndomains = [\"a.example\"]\nsmarthost = \"{}\"\ntls = \"none\"\n",
        mx.addr()
    );
    let cfg = config_with(dir.path(), &dns, &route);
    // Yesterday (UTC): due today at send_at = 00:00, so at start-up.
    let now = time::OffsetDateTime::now_utc();
    let yesterday = now.date().previous_day().unwrap();
    let noon = yesterday.midnight().assume_utc().unix_timestamp() + 43_200;
    let name = format!(
        "{:04}-{:02}-{:02}",
        yesterday.year(),
        u8::from(yesterday.month()),
        yesterday.day()
    );
    write_day(dir.path(), &name, noon, 2);
    let marker = dir.path().join(format!("data/dmarc/sent/{name}/a.example"));

    let server = Running::start(&cfg);
    eventually("the day reported", || marker.exists());
    let log = server.stderr();
    // Only the internal destination: the others are not authorised (no
    // record in FakeDns).
    assert_eq!(log.matches("dmarc report queued").count(), 1, "{log}");
    assert!(log.contains("dmarc report destination skipped"), "{log}");
    let text = std::fs::read_to_string(&marker).unwrap();
    let queue_id = text.trim().split(' ').nth(1).unwrap().to_owned();
    assert!(text.starts_with("dmarc@a.example "), "{text}");
    assert!(log.contains(&queue_id), "{log}");

    // Delivered like any message, and it is a report.
    eventually("the report delivered", || {
        !mx.received_for("dmarc@a.example").is_empty()
    });
    let got = &mx.received_for("dmarc@a.example")[0];
    assert_eq!(got.mail_from, "dmarc-noreply@receiver.example");
    let report = mail_auth::report::Report::parse_rfc5322(&got.data, 1 << 20).unwrap();
    assert_eq!(report.domain(), "a.example");
    assert_eq!(report.records().len(), 1);
    assert_eq!(report.records()[0].count(), 2);
    // Its life in the mail log starts like any message's: received (from the
    // report generator), then queued and delivered.
    let log = std::fs::read_to_string(dir.path().join("data/log/mail.log")).unwrap();
    let received = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "received" && v["queue_id"] == queue_id.as_str());
    let received = received.unwrap_or_else(|| panic!("no received event for {queue_id}:\n{log}"));
    assert_eq!(received["listener"], "dmarc-report", "{received}");
    assert_eq!(
        received["sender"], "dmarc-noreply@receiver.example",
        "{received}"
    );
    server.stop();

    // A restart does not send the day again.
    let server = Running::start(&cfg);
    eventually("the start-up run", || {
        server.stderr().contains("dmarc reports: recording")
    });
    // The job's start-up run always completes: shutdown cancels only the
    // wait after it, and waits for the job.
    server.stop();
    let log = std::fs::read_to_string(cfg.with_extension("stderr")).unwrap();
    assert_eq!(log.matches("dmarc report queued").count(), 0, "{log}");
}
