//! `postern dkim keygen | check | sign` end to end: the real binary, a
//! configuration whose `[dns]` points at FakeDns, the key in the default
//! place (`<data_dir>/dkim/<domain>.<selector>.key`); `check` exits 0 when
//! the published record matches and 1 with the cause and fix otherwise.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use postern_testkit::{DnsFailure, FakeDns};

fn config(dir: &Path, dns: &FakeDns) -> PathBuf {
    let ns = dns.addr();
    let cfg = format!(
        "data_dir = \"data\"\nhostname = \"mx.example.test\"\n\
         [[listener]]\nname = \"smtp\"\naddress = \"127.0.0.1:2525\"\nkind = \"smtp\"\ntls = \"off\"\n\
         [dns]\nnameservers = [\"{ns}\"]\n"
    );
    let path = dir.join("postern.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn postern(cfg: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_postern"))
        .arg("-c")
        .arg(cfg)
        .arg("dkim")
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

const NAME: &str = "s2026._domainkey.example.com";
const ARGS: &[&str] = &["--domain", "example.com", "--selector", "s2026"];

// The binary runs while this test blocks on it: FakeDns needs a thread of
// its own to answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_then_check_each_case_then_sign() {
    let dns = FakeDns::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &dns);

    let out = postern(&cfg, &[&["keygen"], ARGS].concat());
    assert!(out.status.success(), "{}", text(&out));
    let line = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        line.starts_with("s2026._domainkey.example.com. IN TXT \"v=DKIM1; k=ed25519; p="),
        "{line}"
    );
    let record = line.trim().split('"').nth(1).unwrap().to_owned();
    let key = dir.path().join("data/dkim/example.com.s2026.key");
    assert!(key.is_file(), "{}", text(&out));

    // Never overwritten.
    let again = postern(&cfg, &[&["keygen"], ARGS].concat());
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again).contains("exists already"), "{}", text(&again));

    // Nothing published yet.
    let out = postern(&cfg, &[&["check"], ARGS].concat());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("dkim.record_missing"), "{}", text(&out));

    // Published: match.
    dns.add_txt(NAME, &record);
    let out = postern(&cfg, &[&["check"], ARGS].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("OK "), "{}", text(&out));

    // Revoked.
    dns.remove(NAME);
    dns.add_txt(NAME, "v=DKIM1; k=ed25519; p=");
    let out = postern(&cfg, &[&["check"], ARGS].concat());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("dkim.key_revoked"), "{}", text(&out));

    // SERVFAIL: a lookup failure, not "missing".
    dns.fail(NAME, DnsFailure::ServFail);
    let out = postern(&cfg, &[&["check"], ARGS].concat());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("dkim.dns_error"), "{}", text(&out));

    // Sign with the key from its default place.
    let msg = dir.path().join("m.eml");
    std::fs::write(&msg, "From: a@example.com\nSubject: hi\n\nbody\n").unwrap();
    let out = postern(&cfg, &[&["sign"], ARGS, &[msg.to_str().unwrap()]].concat());
    assert!(out.status.success(), "{}", text(&out));
    let signed = String::from_utf8(out.stdout).unwrap();
    assert!(
        signed.starts_with(
            "DKIM-Signature: v=1; a=ed25519-sha256; s=s2026; d=example.com; c=relaxed/relaxed;"
        ),
        "{signed}"
    );
    assert!(
        signed.ends_with("From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n"),
        "{signed}"
    );
}

// An RSA record longer than 255 octets, published as the several strings
// keygen prints, matches; two records at the name, or k= of another
// algorithm, do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_record_in_several_strings_matches() {
    let dns = FakeDns::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &dns);
    let args = ["--domain", "example.com", "--selector", "r1"];
    let out = postern(
        &cfg,
        &[&["keygen", "--algorithm", "rsa2048"], &args[..]].concat(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let line = String::from_utf8(out.stdout).unwrap();
    let strings: Vec<&str> = line.trim().split('"').skip(1).step_by(2).collect();
    assert!(strings.len() >= 2, "{line}");
    let name = "r1._domainkey.example.com";
    dns.add_txt_strings(name, &strings);
    let out = postern(&cfg, &[&["check"], &args[..]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    dns.add_txt(name, "v=DKIM1; k=rsa; p=");
    let out = postern(&cfg, &[&["check"], &args[..]].concat());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("dkim.several_records"),
        "{}",
        text(&out)
    );

    dns.remove(name);
    dns.add_txt(name, &strings.concat().replace("k=rsa", "k=ed25519"));
    let out = postern(&cfg, &[&["check"], &args[..]].concat());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("dkim.algorithm_mismatch"),
        "{}",
        text(&out)
    );
}
