//! `postern trace` end to end: the real binary, a configuration with sender
//! groups and a DNS list served by FakeDns; the JSON names the DNS answers,
//! the group and why, the policy, and the replies the session would give —
//! and the trace changes no counter (a second run answers the same).
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;

use std::process::Command;

use postern_testkit::FakeDns;

fn config(dir: &std::path::Path, dns: &FakeDns) -> std::path::PathBuf {
    let ns = dns.addr();
    let cfg = format!(
        r#"data_dir = "data"
hostname = "mx.example.test"
[[listener]]
name = "smtp"
address = "127.0.0.1:2525"
kind = "smtp"
tls = "off"
[relay]
accepted_domains = ["example.test"]
[dns]
nameservers = ["{ns}"]
[[dns_list]]
zone = "bl.test"
weight = 2
[[sender_group]]
name = "BLOCKLIST"
match = ["dnsbl:bl.test=127.0.0.2"]
policy = "BLOCKED"
[[sender_group]]
name = "SUSPECT"
match = ["dnsbl-score>=1"]
policy = "THROTTLED"
[[sender_group]]
name = "ALL"
match = ["all"]
policy = "ACCEPTED"
[[mail_flow_policy]]
name = "BLOCKED"
action = "reject"
[[mail_flow_policy]]
name = "THROTTLED"
action = "accept"
max_recipients_per_message = 1
max_recipients_per_hour_per_ip = 5
[[mail_flow_policy]]
name = "ACCEPTED"
action = "accept"
"#
    );
    let path = dir.join("postern.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn trace(cfg: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_postern"))
        .arg("-c")
        .arg(cfg)
        .arg("trace")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn lines(v: &serde_json::Value) -> Vec<String> {
    v["dialogue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{} {}",
                d["dir"].as_str().unwrap(),
                d["text"].as_str().unwrap()
            )
        })
        .collect()
}

// The binary runs while this test blocks on it: FakeDns needs a thread of
// its own to answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_shows_lists_groups_policy_and_replies() {
    let dns = FakeDns::start().await;
    dns.add_a(
        "7.100.51.198.bl.test",
        "127.0.0.2".parse::<std::net::Ipv4Addr>().unwrap(),
    );
    dns.add_a(
        "8.100.51.198.bl.test",
        "127.0.0.4".parse::<std::net::Ipv4Addr>().unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &dns);

    let v = trace(
        &cfg,
        &[
            "--ip",
            "198.51.100.7",
            "--from",
            "a@b.example",
            "--rcpt",
            "u@example.test",
        ],
    );
    assert_eq!(v["group"], "BLOCKLIST");
    assert_eq!(v["policy"], "BLOCKED");
    assert_eq!(v["dns_lists"][0]["answer"], "127.0.0.2");
    assert_eq!(v["score"], 2);
    let l = lines(&v);
    assert!(
        l.contains(&"S 554 5.7.1 Access denied for [198.51.100.7]".to_owned()),
        "{l:#?}"
    );
    assert!(l.iter().any(|x| x.starts_with("S 503 ")), "{l:#?}");

    // Listed with another code: only the score counts → SUSPECT, and the
    // session's replies show its limit (one recipient per message).
    let args = [
        "--ip",
        "198.51.100.8",
        "--from",
        "a@b.example",
        "--rcpt",
        "u@example.test",
        "--rcpt",
        "v@example.test",
    ];
    let v = trace(&cfg, &args);
    assert_eq!(v["group"], "SUSPECT");
    assert_eq!(v["groups"][0], "BLOCKLIST: no match");
    assert_eq!(v["groups"][1], "SUSPECT: matched by dnsbl-score>=1");
    let l = lines(&v);
    assert!(l.iter().any(|x| x.starts_with("S 250 2.1.5")), "{l:#?}");
    assert!(l.iter().any(|x| x.starts_with("S 452 4.5.3")), "{l:#?}");
    // Nothing was counted: the same trace answers the same.
    assert_eq!(lines(&trace(&cfg, &args)), l);

    // Not listed anywhere → ALL; no data directory was created.
    let v = trace(&cfg, &["--ip", "192.0.2.1"]);
    assert_eq!(v["group"], "ALL");
    assert_eq!(v["dns_lists"][0]["answer"], "not listed");
    assert!(!dir.path().join("data").exists());
}

/// Against the running server: the trace reads its live counters (memory
/// store) through the admin socket — after two recipients the budget of two
/// per hour is spent — and still changes nothing.
#[test]
fn trace_reads_the_running_servers_counters() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("postern.toml");
    std::fs::write(
        &cfg,
        r#"data_dir = "data"
hostname = "mx.example.test"
[[listener]]
name = "smtp"
address = "127.0.0.1:0"
kind = "smtp"
tls = "off"
[relay]
accepted_domains = ["example.test"]
[[route]]
domains = ["example.test"]
maildir = "vmail/{user}"
create = true
[[sender_group]]
name = "ALL"
match = ["all"]
policy = "LIMITED"
[[mail_flow_policy]]
name = "LIMITED"
action = "accept"
max_recipients_per_hour_per_ip = 2
"#,
    )
    .unwrap();
    let running = common::Running::start(&cfg);
    let args = [
        "--ip",
        "127.0.0.1",
        "--from",
        "a@b.example",
        "--rcpt",
        "u3@example.test",
    ];
    // Two traces before any mail: accepted, and counted nowhere …
    for _ in 0..2 {
        let v = trace(&cfg, &args);
        assert_eq!(v["source"], "server", "{v:#}");
        assert!(
            lines(&v).iter().any(|x| x.starts_with("S 250 2.1.5")),
            "{v:#}"
        );
    }
    // … so a real client still has its two recipients …
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut d = postern_testkit::Dialogue::connect(running.addr).await;
        d.expect(220).await;
        d.cmd("EHLO client.test", 250).await;
        d.cmd("MAIL FROM:<a@b.example>", 250).await;
        d.cmd("RCPT TO:<u1@example.test>", 250).await;
        d.cmd("RCPT TO:<u2@example.test>", 250).await;
        d.cmd("RSET", 250).await;
        d.cmd("QUIT", 221).await;
    });
    // … and the trace now reads the server's live count: spent.
    let l = lines(&trace(&cfg, &args));
    assert!(
        l.iter()
            .any(|x| x.starts_with("S 452 4.5.3 Too many recipients this hour")),
        "{l:#?}"
    );
    running.stop();
}
