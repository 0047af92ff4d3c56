//! What an AUTH client can put into the operator log, through the real
//! `postern serve` (stderr log on 127.0.0.1, a temporary data directory).
//!
//! # Security
//! The AUTH user name is chosen by the client, before any check. Written raw
//! into the log, a name with a line feed forges a whole log line (for the
//! operator, and for log scanners such as fail2ban that ban or unban on it)
//! and a name with ESC sequences drives the terminal that shows the log (CWE-117).
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;
use common::Running;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use postern_testkit::Dialogue;

/// AUTH offered in clear (`[danger] allow_insecure_auth`) so that the test
/// needs no TLS client: the session rules are the same after STARTTLS.
fn write_config(dir: &Path) -> PathBuf {
    let cfg = format!(
        r#"data_dir = "{data}"
hostname = "mx.test.example"

[[listener]]
name = "smtp"
address = "127.0.0.1:0"
kind = "smtp"
tls = "off"
auth = "offered"

[relay]
accepted_domains = ["example.com"]

[log]
level = "info"

[danger]
allow_insecure_auth = true

[[route]]
domains = ["*"]
smarthost = "127.0.0.1:9"
"#,
        data = dir.join("data").display()
    );
    let p = dir.join("postern.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

/// A failed AUTH LOGIN whose user name carries LF and ESC must not forge a
/// log line nor reach the terminal raw (CWE-117): `auth_logged` in
/// `crates/smtpd/src/session/mod.rs` logs the name escaped (`Debug`).
#[test]
fn auth_user_name_cannot_forge_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let server = Running::start(&write_config(dir.path()));
    let rt = tokio::runtime::Runtime::new().unwrap();
    // base64 of "evil\x1b[31mRED\nFAKE 2026-01-01T00:00:00Z INFO authenticated user=root"
    // and of "wrong".
    let evil = "ZXZpbBtbMzFtUkVECkZBS0UgMjAyNi0wMS0wMVQwMDowMDowMFogSU5GTyBhdXRoZW50aWNhdGVkIHVzZXI9cm9vdA==";
    let wrong = "d3Jvbmc=";
    rt.block_on(async {
        let mut d = Dialogue::connect(server.addr).await;
        d.expect(220).await;
        d.cmd("EHLO client.example", 250).await;
        d.cmd("AUTH LOGIN", 334).await;
        d.cmd(evil, 334).await;
        d.cmd(wrong, 535).await;
        d.cmd("QUIT", 221).await;
    });
    // The failure is logged after the reply: wait (bounded) for it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.stderr().contains("authentication failed") {
        assert!(Instant::now() < deadline, "{}", server.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = server.stderr();
    assert!(
        !log.lines().any(|l| l.starts_with("FAKE")),
        "forged log line:\n{log}"
    );
    assert!(
        !log.contains("\u{1b}[31mRED"),
        "raw ESC from the client:\n{log}"
    );
}
