//! ARC sealing (RFC 8617) checked by code nobody here wrote: dkimpy's
//! `arc_verify` (Debian python3-dkim, installed by `.ci/run`) validates the
//! chains we seal — one instance, then a second on top — and refuses a
//! message changed after sealing.

#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::process::{Command, Stdio};

use postern_auth::arc_seal::{ChainValidation, Sealer, seal};
use postern_auth::{Algorithm, generate};

const PY: &str = "/usr/bin/python3";

/// dkimpy's verdict on `message` with `record` at `s1._domainkey.forwarder.example`:
/// `(cv, reason)`, or `None` when dkimpy is not installed.
fn arc_verify(message: &[u8], record: &str) -> Option<(String, String)> {
    let ok = Command::new(PY)
        .args(["-c", "import dkim"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("POSTERN_REQUIRE_TOOLS").is_none(),
            "python3-dkim is required (POSTERN_REQUIRE_TOOLS is set)"
        );
        eprintln!("skipped: python3-dkim not installed");
        return None;
    }
    let script = format!(
        r#"
import sys, dkim
record = {record:?}.encode()
def dns(name, timeout=5):
    return record if name.startswith(b"s1._domainkey.forwarder.example") else None
cv, results, reason = dkim.arc_verify(sys.stdin.buffer.read(), dnsfunc=dns)
print(cv.decode(), reason)
"#
    );
    let mut child = Command::new(PY)
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (cv, reason) = text.split_once(' ').unwrap_or((&text, ""));
    Some((cv.to_owned(), reason.to_owned()))
}

const MESSAGE: &str = "From: Alice <alice@sender.example>\r\nTo: list@forwarder.example\r\n\
Subject: [list] hello   there\r\nDate: Sun, 06 Dec 2026 21:00:00 +0000\r\n\
Message-ID: <arc-1@sender.example>\r\n\r\nHello,  list.\r\n \r\n\t\r\n";

#[test]
fn dkimpy_validates_our_seals_and_sees_a_change() {
    let (key, pem) = generate(Algorithm::Rsa).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    postern_auth::write_key(&path, &pem).unwrap();
    let signing = postern_auth::load_key(&path)
        .unwrap()
        .signing_key()
        .unwrap();
    let record = key.record_text();
    let sealer = Sealer {
        domain: "forwarder.example",
        selector: "s1",
        key: &signing,
    };
    let ar = "mx.forwarder.example; spf=pass smtp.mailfrom=sender.example;\r\n\tdkim=none; dmarc=pass header.from=sender.example";
    let fields = seal(
        MESSAGE.as_bytes(),
        ar,
        ChainValidation::None,
        &sealer,
        1_765_000_000,
    )
    .unwrap();
    assert!(
        fields.starts_with("ARC-Seal: i=1; a=rsa-sha256; cv=none;"),
        "{fields}"
    );
    let once = format!("{fields}{MESSAGE}");
    let Some((cv, reason)) = arc_verify(once.as_bytes(), &record) else {
        return;
    };
    assert_eq!(cv, "pass", "{reason}\n{once}");

    // A second hop seals on top: i=2, cv=pass.
    let fields = seal(
        once.as_bytes(),
        ar,
        ChainValidation::Pass,
        &sealer,
        1_765_000_100,
    )
    .unwrap();
    assert!(fields.contains("i=2; a=rsa-sha256; cv=pass;"), "{fields}");
    let twice = format!("{fields}{once}");
    let (cv, reason) = arc_verify(twice.as_bytes(), &record).unwrap();
    assert_eq!(cv, "pass", "{reason}\n{twice}");

    // Changed after sealing: the chain fails.
    let tampered = twice.replace("Hello,  list.", "Hello, world.");
    let (cv, _) = arc_verify(tampered.as_bytes(), &record).unwrap();
    assert_eq!(cv, "fail");
}

#[test]
fn ed25519_keys_and_failed_chains_are_not_sealed() {
    let (_, pem) = generate(Algorithm::Ed25519).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    postern_auth::write_key(&path, &pem).unwrap();
    let signing = postern_auth::load_key(&path)
        .unwrap()
        .signing_key()
        .unwrap();
    let sealer = Sealer {
        domain: "forwarder.example",
        selector: "s1",
        key: &signing,
    };
    assert_eq!(
        seal(
            MESSAGE.as_bytes(),
            "x; none",
            ChainValidation::None,
            &sealer,
            1
        ),
        Err(postern_auth::arc_seal::ArcSealError::NotRsa)
    );
}
