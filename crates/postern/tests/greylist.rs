//! Greylisting against a real retrying MTA: a second Postern (its delivery
//! engine, unmodified) relays to the gateway, is deferred with `450 4.7.1`,
//! retries on its own schedule and gets through once the delay has passed;
//! the gateway then delivers to the internal server (a FakeMx). Both mail
//! logs tell the story: `greylisted` on the gateway, `deferred` then
//! `delivered` on the sender.
//!
//! # Standards
//! RFC 6647 §2.1, §4 (450 4.7.1, a retrying client passes).
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;
use common::Running;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use postern_testkit::{Dialogue, FakeMx, MxTls};

fn write(dir: &Path, body: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("postern.toml");
    std::fs::write(&p, body).unwrap();
    p
}

fn gateway(dir: &Path, internal: SocketAddr) -> PathBuf {
    write(
        dir,
        &format!(
            r#"data_dir = "data"
hostname = "gw.test.example"
[[listener]]
name = "smtp"
address = "127.0.0.1:0"
kind = "smtp"
tls = "off"
[relay]
accepted_domains = ["example.com"]
[log]
transcript = true
[[route]]
domains = ["example.com"]
smarthost = "{internal}"
tls = "none"
[greylist]
delay = "2s"
[[sender_group]]
name = "ALL"
match = ["all"]
policy = "GREY"
[[mail_flow_policy]]
name = "GREY"
action = "accept"
greylist = true
"#
        ),
    )
}

fn sender(dir: &Path, gateway: SocketAddr) -> PathBuf {
    write(
        dir,
        &format!(
            r#"data_dir = "data"
hostname = "out.test.example"
[[listener]]
name = "smtp"
address = "127.0.0.1:0"
kind = "smtp"
tls = "off"
[relay]
relay_networks = ["127.0.0.1/32"]
[delivery]
retry_schedule = ["1s"]
[[route]]
domains = ["example.com"]
smarthost = "{gateway}"
tls = "none"
"#
        ),
    )
}

#[test]
fn a_real_mta_retries_through_greylisting() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mx = rt.block_on(FakeMx::start(MxTls::None));
    let dir = tempfile::tempdir().unwrap();
    let gw = Running::start(&gateway(&dir.path().join("gw"), mx.addr()));
    let out = Running::start(&sender(&dir.path().join("out"), gw.addr));

    rt.block_on(async {
        let mut d = Dialogue::connect(out.addr).await;
        d.expect(220).await;
        d.cmd("EHLO client.test", 250).await;
        d.cmd("MAIL FROM:<alice@out.test.example>", 250).await;
        d.cmd("RCPT TO:<bob@example.com>", 250).await;
        d.cmd("DATA", 354).await;
        d.send_raw(b"Subject: greylisted\r\n\r\nhello\r\n.\r\n")
            .await;
        d.expect(250).await;
        d.cmd("QUIT", 221).await;
    });

    let deadline = Instant::now() + Duration::from_mins(1);
    while mx.received_for("bob@example.com").is_empty() {
        assert!(
            Instant::now() < deadline,
            "not delivered through the greylisting gateway\ngateway: {}\nsender: {}",
            gw.stderr(),
            out.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    common::eventually("the sender's mail log shows the retry", || {
        let log = read(dir.path().join("out/data/log/mail.log"));
        log.contains("\"event\":\"deferred\"") && log.contains("\"event\":\"delivered\"")
    });
    let sent = read(dir.path().join("out/data/log/mail.log"));
    assert!(sent.contains("450 4.7.1 Greylisted"), "{sent}");
    let gw_log = read(dir.path().join("gw/data/log/mail.log"));
    assert!(gw_log.contains("\"event\":\"greylisted\""), "{gw_log}");
    let transcript = read(dir.path().join("gw/data/log/transcript.log"));
    assert!(transcript.contains("greylisting passed"), "{transcript}");
}
