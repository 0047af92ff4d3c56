//! `postern auth check` end to end: the real binary re-verifies saved
//! messages against FakeDns (`--nameserver`): verdict lines, the
//! Authentication-Results field, the client taken from the Received field
//! or absent, `--json`, stdin, LF files, and exit 1 when DMARC fails.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use postern_auth::keys::{Algorithm, generate};
use postern_auth::sign::{SignOptions, Signer};
use postern_testkit::FakeDns;

fn auth_check(dns: &FakeDns, file: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_postern"))
        .args(["auth", "check"])
        .arg(file)
        .args([
            "--nameserver",
            &dns.addr().to_string(),
            "--authserv-id",
            "mx.postern.test",
        ])
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

const MESSAGE: &str = "Received: from mail.example.com (mail.example.com [192.0.2.10])\r\n\
\tby mx.postern.test with ESMTPS; Sun, 06 Dec 2026 16:00:00 +0000\r\n\
Return-Path: <alice@example.com>\r\n\
From: Alice <alice@example.com>\r\n\
To: bob@example.net\r\n\
Subject: auth check\r\n\
Date: Sun, 06 Dec 2026 16:00:00 +0000\r\n\
Message-ID: <ac@example.com>\r\n\
\r\n\
Hello Bob.\r\n \r\n";

async fn setup() -> (FakeDns, tempfile::TempDir, Vec<u8>) {
    let dns = FakeDns::start().await;
    let (key, _) = generate(Algorithm::Rsa).unwrap();
    let text = key.record_text();
    let strings: Vec<&str> = text
        .as_bytes()
        .chunks(255)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    dns.add_txt_strings("s1._domainkey.example.com", &strings)
        .add_txt("example.com", "v=spf1 ip4:192.0.2.10 -all")
        .add_txt("mail.example.com", "v=spf1 a -all")
        .add_a("mail.example.com", [192, 0, 2, 10])
        .add_txt("_dmarc.example.com", "v=DMARC1; p=reject");
    let signed = Signer::new(&key, "example.com", "s1", &SignOptions::default())
        .unwrap()
        .sign(MESSAGE.as_bytes())
        .unwrap();
    (dns, tempfile::tempdir().unwrap(), signed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_message_passes_with_every_verdict_on_a_line() {
    let (dns, dir, signed) = setup().await;
    let file = dir.path().join("m.eml");
    std::fs::write(&file, &signed).unwrap();
    let out = auth_check(
        &dns,
        &file,
        &[
            "--ip",
            "192.0.2.10",
            "--helo",
            "mail.example.com",
            "--mail-from",
            "alice@example.com",
        ],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("spf    helo      pass      domain=mail.example.com"),
        "{t}"
    );
    assert!(
        t.contains("spf    mailfrom  pass      domain=example.com"),
        "{t}"
    );
    assert!(
        t.contains("dkim   #1        pass      d=example.com s=s1 a=rsa-sha256 b="),
        "{t}"
    );
    assert!(t.contains("arc              none"), "{t}");
    assert!(
        t.contains("dmarc            pass      from=example.com org=example.com policy=reject"),
        "{t}"
    );
    assert!(
        t.contains("Authentication-Results: mx.postern.test; spf=pass"),
        "{t}"
    );
    assert!(!t.contains("note:"), "{t}");

    // The same from stdin, with bare LF line ends (a file saved on Unix).
    let lf = String::from_utf8(signed.clone())
        .unwrap()
        .replace("\r\n", "\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_postern"))
        .args([
            "auth",
            "check",
            "-",
            "--ip",
            "192.0.2.10",
            "--nameserver",
            &dns.addr().to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lf.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("dkim   #1        pass"), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_from_received_or_none_and_json() {
    let (dns, dir, signed) = setup().await;
    let file = dir.path().join("m.eml");
    std::fs::write(&file, &signed).unwrap();

    // No options: IP and HELO from the Received field, MAIL FROM from Return-Path.
    let out = auth_check(&dns, &file, &[]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("note: client IP 192.0.2.10 taken from the topmost Received field"),
        "{t}"
    );
    assert!(
        t.contains("note: HELO mail.example.com taken from the topmost Received field"),
        "{t}"
    );
    assert!(
        t.contains("note: MAIL FROM <alice@example.com> taken from Return-Path"),
        "{t}"
    );
    assert!(t.contains("spf    mailfrom  pass"), "{t}");

    // No Received field and no --ip: SPF none, said why; DKIM still decides DMARC.
    let bare: Vec<u8> = String::from_utf8(signed.clone())
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("Received:") && !l.starts_with("\tby mx"))
        .fold(String::new(), |mut acc, l| {
            acc.push_str(l);
            acc.push('\n');
            acc
        })
        .into_bytes();
    std::fs::write(&file, &bare).unwrap();
    let out = auth_check(&dns, &file, &["--json"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["results"]["spf"]["mail_from"]["result"], "none", "{t}");
    assert!(
        doc["results"]["spf"]["mail_from"]["reason"]
            .as_str()
            .unwrap()
            .contains("no client IP given"),
        "{t}"
    );
    assert_eq!(doc["results"]["dkim"][0]["result"], "pass", "{t}");
    assert_eq!(doc["results"]["dmarc"]["result"], "pass", "{t}");
    assert!(
        doc["authentication_results"]
            .as_str()
            .unwrap()
            .starts_with("mx.postern.test;")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_message_fails_dmarc_with_exit_1() {
    let (dns, dir, signed) = setup().await;
    let file = dir.path().join("m.eml");
    let tampered = String::from_utf8(signed)
        .unwrap()
        .replace("Hello Bob.", "Pay Eve.");
    std::fs::write(&file, tampered).unwrap();
    let out = auth_check(
        &dns,
        &file,
        &[
            "--ip",
            "203.0.113.5",
            "--helo",
            "evil.example",
            "--mail-from",
            "alice@example.com",
        ],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("spf    mailfrom  fail"), "{t}");
    assert!(
        t.contains("dkim   #1        fail") && t.contains("body hash did not verify"),
        "{t}"
    );
    assert!(t.contains("dmarc            fail"), "{t}");

    // An unreadable file is a usage error.
    let out = auth_check(&dns, &dir.path().join("missing.eml"), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
