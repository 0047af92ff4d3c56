//! `postern quarantine …` as an operator runs it against a real `postern
//! serve` whose filter rule quarantines executables: the message lands in
//! the `attachments` quarantine, `list` and `show` explain it (why, until
//! when, its header fields), `release` hands it to delivery with its
//! original envelope (a `released` event, then an attempt), `delete`
//! removes another without a DSN; ordinary queued mail is refused by the
//! quarantine verbs; with the server stopped, `list` reads the spool.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;
use common::{BIN, Running, eventually};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use postern_testkit::Dialogue;

fn write_config(dir: &Path) -> PathBuf {
    std::fs::write(
        dir.join("message.rules"),
        "rule \"exe\" {\n    if attachment filename matches /\\.exe$/i\n    then quarantine \"attachments\"\n}\n",
    )
    .unwrap();
    let cfg = format!(
        r#"data_dir = "{data}"
hostname = "mx.test.example"

[[listener]]
name = "smtp"
address = "127.0.0.1:0"
kind = "smtp"
tls = "optional"
auth = "off"

[relay]
accepted_domains = ["example.com"]

[pickup]
enabled = false

# Everything to a smart host that refuses connections: mail defers and stays.
[[route]]
domains = ["*"]
smarthost = "127.0.0.1:9"

[filters]
message_rules = "message.rules"

[[quarantine]]
name = "attachments"
retention = "3d"
description = "executables from outside"
"#,
        data = dir.join("data").display()
    );
    let p = dir.join("postern.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

fn postern(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("quarantine")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

fn ok(config: &Path, args: &[&str]) -> String {
    let o = postern(config, args);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "postern quarantine {args:?}: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

fn send(addr: SocketAddr, attachment: &str) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut d = Dialogue::connect(addr).await;
        d.expect(220).await;
        d.cmd("EHLO client.test", 250).await;
        d.cmd("MAIL FROM:<alice@other.org>", 250).await;
        d.cmd("RCPT TO:<bob@example.com>", 250).await;
        d.cmd("DATA", 354).await;
        let msg = format!(
            "From: Alice <alice@other.org>\r\nTo: bob@example.com\r\nSubject: invoice\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
             --b\r\nContent-Type: application/octet-stream\r\n\
             Content-Disposition: attachment; filename=\"{attachment}\"\r\n\r\nMZ\r\n--b--\r\n.\r\n"
        );
        d.send_raw(msg.as_bytes()).await;
        let r = d.reply().await.unwrap();
        assert_eq!(r.code, 250, "{:?}", r.lines);
        r.lines[0].rsplit(' ').next().unwrap().to_owned()
    })
}

fn listed(config: &Path) -> Vec<serde_json::Value> {
    ok(config, &["list", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn quarantined_mail_is_listed_shown_released_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let server = Running::start(&cfg);

    let held = send(server.addr, "invoice.exe");
    let other = send(server.addr, "setup.EXE");
    let ordinary = send(server.addr, "notes.txt");

    let list = listed(&cfg);
    assert_eq!(list.len(), 2, "{list:?}");
    for m in &list {
        assert_eq!(m["quarantine"], "attachments");
        assert_eq!(m["state"], "held");
        assert!(m["hold_reason"].as_str().unwrap().contains("exe"), "{m}");
        assert!(m["quarantine_until"].is_string(), "{m}");
    }
    let table = ok(&cfg, &["list"]);
    assert!(
        table.contains("attachments") && table.contains("executables from outside"),
        "{table}"
    );
    assert!(table.contains("2 message(s) in quarantine"), "{table}");

    let show = ok(&cfg, &["show", &held]);
    assert!(show.contains("Subject: invoice"), "{show}");
    assert!(show.contains("quarantine:   attachments until"), "{show}");
    assert!(show.contains("content:      rule:exe"), "{show}");

    // Ordinary queued mail is not the quarantine's.
    let o = postern(&cfg, &["release", &ordinary]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not in a quarantine"));

    let out = ok(&cfg, &["release", &held]);
    assert!(out.contains("released"), "{out}");
    let out = ok(&cfg, &["delete", &other]);
    assert!(out.contains("deleted"), "{out}");
    assert!(listed(&cfg).is_empty());

    // The released message is delivery's now: it is attempted (and defers
    // against the refusing smart host), with the original envelope.
    eventually("the released message is attempted", || {
        let o = Command::new(BIN)
            .args(["queue", "show", &held, "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&o.stdout);
        s.contains("released")
            && s.contains("attempt 1")
            && s.contains("sender:       <alice@other.org>")
    });
    let log = std::fs::read_to_string(dir.path().join("data/log/mail.log")).unwrap();
    assert!(log.contains("\"event\":\"quarantined\""), "{log}");
    assert!(log.contains("\"event\":\"filtered\""), "{log}");

    // Stopped: the spool is read directly.
    let kept = send(server.addr, "again.exe");
    server.stop();
    let list = listed(&cfg);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["queue_id"], kept.as_str());
    let table = ok(&cfg, &["list"]);
    assert!(
        table.contains("the server is not running") || table.contains("data directory"),
        "{table}"
    );
}
