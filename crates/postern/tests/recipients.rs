//! Recipient validation end to end with the real `postern serve` as the
//! gateway in front of an internal server (a [`FakeMx`] that knows some
//! users): an unknown user of an accepted domain gets `550 5.1.1` at RCPT —
//! by SMTP call-ahead to the route's internal host, or by a recipients table
//! — so no message for it is queued and no DSN (backscatter) is ever made;
//! a known user's mail is delivered; SIGHUP re-reads the table.
//!
//! # Standards
//! RFC 5321 §6.1 (refuse rather than bounce), §3.5.3; Postfix
//! `reject_unverified_recipient`, Cisco ESA "SMTP Call-Ahead".
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;
use common::{Running, eventually};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use postern_testkit::{Dialogue, FakeMx, MxTls};

fn write_config(dir: &Path, internal: SocketAddr) -> PathBuf {
    std::fs::write(dir.join("recipients.txt"), "dave@tab.example\n").unwrap();
    let cfg = format!(
        r#"data_dir = "{data}"
hostname = "gw.test.example"

[[listener]]
name = "smtp"
address = "127.0.0.1:0"
kind = "smtp"
tls = "optional"
auth = "off"

[relay]
accepted_domains = ["example.com", "tab.example"]

[log]
level = "info"

[[route]]
domains = ["example.com", "tab.example"]
smarthost = "{internal}"
tls = "none"

[[recipients]]
domains = ["example.com"]
call_ahead = "route"
timeout = "10s"

[[recipients]]
domains = ["tab.example"]
table = "recipients.txt"
"#,
        data = dir.join("data").display()
    );
    let p = dir.join("postern.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

async fn rcpt(d: &mut Dialogue, address: &str) -> String {
    d.send(&format!("RCPT TO:<{address}>")).await;
    let r = d.reply().await.expect("connection closed at RCPT");
    format!("{} {}", r.code, r.text())
}

#[test]
fn unknown_users_are_refused_at_rcpt_and_never_bounced() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mx = rt.block_on(FakeMx::start(MxTls::None));
    mx.known_recipients(&["alice@example.com", "dave@tab.example", "erin@tab.example"]);
    let dir = tempfile::tempdir().unwrap();
    let gw = Running::start(&write_config(dir.path(), mx.addr()));

    let replies = rt.block_on(async {
        let mut d = Dialogue::connect(gw.addr).await;
        d.expect(220).await;
        d.cmd("EHLO client.outside.example", 250).await;
        d.cmd("MAIL FROM:<forged@victim.example>", 250).await;
        let mut r = Vec::new();
        for a in [
            "bob@example.com",
            "erin@tab.example",
            "alice@example.com",
            "dave@tab.example",
        ] {
            r.push(rcpt(&mut d, a).await);
        }
        d.cmd("DATA", 354).await;
        d.send_raw(b"Subject: hello\r\n\r\nhello\r\n.\r\n").await;
        d.expect(250).await;
        d.cmd("QUIT", 221).await;
        r
    });
    assert_eq!(
        replies[0],
        "550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown"
    );
    assert_eq!(
        replies[1],
        "550 5.1.1 <erin@tab.example>: Recipient address rejected: User unknown"
    );
    assert!(replies[2].starts_with("250"), "{}", replies[2]);
    assert!(replies[3].starts_with("250"), "{}", replies[3]);

    // Delivered for the two known users only.
    eventually("delivery", || {
        mx.received_for("alice@example.com").len() == 1
            && mx.received_for("dave@tab.example").len() == 1
    });
    let msgs: Vec<_> = mx
        .received()
        .into_iter()
        .filter(|m| !m.rcpts.is_empty())
        .collect();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0].mail_from, "forged@victim.example");
    // No DSN: the log has no bounce and no notification, and never names the
    // refused users; the queue is empty once delivered.
    let log_path = dir.path().join("data/log/mail.log");
    eventually("the delivered events", || {
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .matches("\"delivered\"")
            .count()
            >= 1
    });
    let log = std::fs::read_to_string(&log_path).unwrap();
    for bad in ["\"bounced\"", "\"dsn_sent\""] {
        assert!(!log.contains(bad), "{bad} in the mail log:\n{log}");
    }
    // The refused users appear only in the session events of the refusals.
    for user in ["bob@example.com", "erin@tab.example"] {
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(user)).collect();
        assert_eq!(lines.len(), 1, "{user}: {lines:#?}");
        assert!(lines[0].contains("unknown_recipient"), "{}", lines[0]);
        assert!(lines[0].contains("rejected"), "{}", lines[0]);
    }
    let stderr = gw.stderr();
    assert!(
        stderr.contains("rcpt refused: unknown recipient"),
        "{stderr}"
    );

    // SIGHUP re-reads the table.
    std::fs::write(
        dir.path().join("recipients.txt"),
        "dave@tab.example\nerin@tab.example\n",
    )
    .unwrap();
    gw.hup();
    let r = rt.block_on(async {
        let mut d = Dialogue::connect(gw.addr).await;
        d.expect(220).await;
        d.cmd("EHLO client.outside.example", 250).await;
        d.cmd("MAIL FROM:<someone@outside.example>", 250).await;
        rcpt(&mut d, "erin@tab.example").await
    });
    assert!(r.starts_with("250"), "{r}");
    gw.stop();
}

/// `postern trace` answers from the table (550 for an unknown user) but makes
/// no call-ahead: a dry run sends nothing, so the internal host sees no
/// connection and the call-ahead domain's recipient is not checked.
#[test]
fn trace_reads_the_table_and_makes_no_call_ahead() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mx = rt.block_on(FakeMx::start(MxTls::None));
    mx.known_recipients(&[]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), mx.addr());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_postern"))
        .arg("-c")
        .arg(&cfg)
        .args([
            "trace",
            "--ip",
            "192.0.2.1",
            "--from",
            "a@outside.example",
            "--rcpt",
            "nobody@tab.example",
            "--rcpt",
            "dave@tab.example",
            "--rcpt",
            "anyone@example.com",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let replies: Vec<String> = v["dialogue"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["dir"] == "S")
        .map(|d| d["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        replies.iter().any(
            |r| r == "550 5.1.1 <nobody@tab.example>: Recipient address rejected: User unknown"
        ),
        "{replies:#?}"
    );
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.starts_with("250 2.1.5"))
            .count(),
        2,
        "{replies:#?}"
    );
    assert_eq!(mx.connections(), 0, "a trace made a call-ahead");
}
