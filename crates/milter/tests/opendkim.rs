//! The client against a real milter: `opendkim` (Debian `opendkim` and
//! `opendkim-tools`; CI installs them), started by the test in the
//! foreground on 127.0.0.1 with a free port, a temporary key from
//! `opendkim-genkey` and its public record served through `TestDNSData`
//! (no DNS needed).
//!
//! One round trip: a message from an internal client (127.0.0.1) comes back
//! with a `DKIM-Signature` (signing mode); the same message, signature
//! applied with [`apply`], sent again from an outside client comes back
//! with `Authentication-Results: …; dkim=pass` (verifying mode). So the
//! headers, folds and body we send are exactly what opendkim signs, and the
//! modifications we return are exactly what it verifies.
//!
//! A third test drives one live [`Session`] through two messages, as a
//! server would during one SMTP session.
//!
//! Without opendkim each test prints "skipped: opendkim not installed" and
//! passes, unless `POSTERN_REQUIRE_TOOLS` is set (CI), where it fails.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use postern_milter::{Envelope, MilterAddr, MilterSpec, Modification, Session, Step, apply};

const OPENDKIM: &str = "/usr/sbin/opendkim";

/// An `opendkim` of our own; killed on drop.
struct OpenDkim {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for OpenDkim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn installed() -> bool {
    let ok = Path::new(OPENDKIM).exists()
        && Command::new("opendkim-genkey")
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
    if !ok {
        assert!(
            std::env::var_os("POSTERN_REQUIRE_TOOLS").is_none(),
            "opendkim and opendkim-tools are required (POSTERN_REQUIRE_TOOLS is set)"
        );
        eprintln!("skipped: opendkim not installed (apt-get install opendkim opendkim-tools)");
    }
    ok
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl OpenDkim {
    /// Signs for example.com from 127.0.0.1, verifies everything else.
    async fn start() -> OpenDkim {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("opendkim-genkey")
            .args(["-b", "2048", "-d", "example.com", "-s", "test", "-D"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "opendkim-genkey failed");
        // test.txt: `test._domainkey IN TXT ( "v=DKIM1; h=sha256; k=rsa; "
        // "p=MIIB..." "...")`: join the quoted strings into one record.
        let zone = std::fs::read_to_string(dir.path().join("test.txt")).unwrap();
        let record: String = zone
            .split('"')
            .skip(1)
            .step_by(2)
            .collect::<Vec<_>>()
            .concat();
        assert!(record.contains("p="), "{zone}");
        std::fs::write(
            dir.path().join("dns"),
            format!("test._domainkey.example.com {record}\n"),
        )
        .unwrap();
        for _ in 0..5 {
            let port = free_port();
            let conf = dir.path().join("opendkim.conf");
            std::fs::write(
                &conf,
                format!(
                    "Syslog no\n\
                     Mode sv\n\
                     Domain example.com\n\
                     Selector test\n\
                     KeyFile {key}\n\
                     RequireSafeKeys no\n\
                     Canonicalization relaxed/simple\n\
                     InternalHosts 127.0.0.1\n\
                     AuthservID mx.example.org\n\
                     AlwaysAddARHeader yes\n\
                     TestDNSData file:{dns}\n\
                     Socket inet:{port}@127.0.0.1\n\
                     PidFile {pid}\n",
                    key = dir.path().join("test.private").display(),
                    dns = dir.path().join("dns").display(),
                    pid = dir.path().join("pid").display(),
                ),
            )
            .unwrap();
            let mut child = Command::new(OPENDKIM)
                .args(["-f", "-x"])
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            // Up to 10 s for it to listen (the wait only ends the test early
            // when opendkim fails; it measures nothing).
            for _ in 0..100 {
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    return OpenDkim {
                        child,
                        port,
                        _dir: dir,
                    };
                }
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("opendkim did not start on five free ports");
    }

    fn spec(&self) -> MilterSpec {
        MilterSpec::new(
            "opendkim",
            MilterAddr::parse(&format!("inet:{}@127.0.0.1", self.port)).unwrap(),
        )
    }
}

fn headers() -> Vec<(String, String)> {
    [
        ("From", " Alice <alice@example.com>"),
        ("To", " Bob <bob@example.org>"),
        ("Subject", " A folded\r\n subject line"),
        ("Date", " Sun, 06 Dec 2026 20:00:00 +0000"),
        ("Message-ID", " <milter-test-1@example.com>"),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
    .collect()
}

const BODY: &[u8] = b"Hello Bob,\r\n\r\nthis message goes through opendkim.\r\n";

#[tokio::test]
async fn opendkim_signs_and_then_verifies_what_we_applied() {
    if !installed() {
        return;
    }
    let dkim = OpenDkim::start().await;
    let spec = dkim.spec();
    let rcpts = vec!["bob@example.org".to_owned()];

    // 1. Signing: an internal client.
    let env = Envelope {
        hostname: "mx.example.org",
        daemon_name: "submission",
        client_ip: Some("127.0.0.1".parse().unwrap()),
        client_port: 50000,
        client_name: Some("localhost"),
        helo: Some("localhost"),
        mail_from: "alice@example.com",
        rcpts: &rcpts,
        queue_id: Some("SIGN1"),
        ..Envelope::default()
    };
    let signed = postern_milter::run(&spec, &env, &headers(), BODY)
        .await
        .unwrap();
    assert!(signed.verdict.is_accepted(), "{:?}", signed.verdict);
    let signature = signed
        .modifications
        .iter()
        .find_map(|m| match m {
            Modification::InsertHeader { name, value, .. }
            | Modification::AddHeader { name, value }
                if name.eq_ignore_ascii_case("DKIM-Signature") =>
            {
                Some(value.clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no DKIM-Signature in {:?}", signed.modifications));
    assert!(signature.contains("d=example.com"), "{signature}");
    assert!(signature.contains("s=test"), "{signature}");
    let applied = apply(&headers(), &rcpts, &signed.modifications);
    assert!(
        applied
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("DKIM-Signature"))
    );

    // 2. Verifying: the signed message from an outside client.
    let env = Envelope {
        client_ip: Some("192.0.2.7".parse().unwrap()),
        client_name: Some("mail.example.com"),
        helo: Some("mail.example.com"),
        queue_id: Some("VERIFY1"),
        ..env
    };
    let verified = postern_milter::run(&spec, &env, &applied.headers, BODY)
        .await
        .unwrap();
    assert!(verified.verdict.is_accepted(), "{:?}", verified.verdict);
    let results = ar(&verified.modifications);
    assert!(results.contains("mx.example.org"), "{results}");
    assert!(results.contains("dkim=pass"), "{results}");

    // 3. The same message with its body changed fails verification
    // (opendkim's default On-BadSignature is to accept and record it).
    let tampered = postern_milter::run(&spec, &env, &applied.headers, &b"Hello Eve\r\n"[..])
        .await
        .unwrap();
    assert!(tampered.verdict.is_accepted(), "{:?}", tampered.verdict);
    let results = ar(&tampered.modifications);
    assert!(results.contains("dkim=fail"), "{results}");
}

/// The value of the `Authentication-Results` field the milter added.
fn ar(mods: &[Modification]) -> String {
    mods.iter()
        .find_map(|m| match m {
            Modification::InsertHeader { name, value, .. }
            | Modification::AddHeader { name, value }
                if name.eq_ignore_ascii_case("Authentication-Results") =>
            {
                Some(value.clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Authentication-Results in {mods:?}"))
}

#[tokio::test]
async fn opendkim_unsigned_mail_gets_dkim_none() {
    if !installed() {
        return;
    }
    let dkim = OpenDkim::start().await;
    let rcpts = vec!["bob@example.org".to_owned()];
    let env = Envelope {
        hostname: "mx.example.org",
        client_ip: Some("192.0.2.8".parse().unwrap()),
        helo: Some("mail.example.net"),
        mail_from: "carol@example.net",
        rcpts: &rcpts,
        queue_id: Some("NONE1"),
        ..Envelope::default()
    };
    let mut hdrs = headers();
    hdrs[0].1 = " Carol <carol@example.net>".to_owned();
    let result = postern_milter::run(&dkim.spec(), &env, &hdrs, BODY)
        .await
        .unwrap();
    assert!(result.verdict.is_accepted());
    let results = ar(&result.modifications);
    assert!(results.contains("dkim=none"), "{results}");
    assert!(
        !result.modifications.iter().any(|m| matches!(m,
            Modification::InsertHeader { name, .. } | Modification::AddHeader { name, .. }
                if name.eq_ignore_ascii_case("DKIM-Signature"))),
        "signed mail of a foreign domain"
    );
}

#[tokio::test]
async fn opendkim_signs_two_messages_in_one_live_session() {
    if !installed() {
        return;
    }
    let dkim = OpenDkim::start().await;
    let spec = dkim.spec();
    let rcpts = vec!["bob@example.org".to_owned()];
    let env = Envelope {
        hostname: "mx.example.org",
        client_ip: Some("127.0.0.1".parse().unwrap()),
        helo: Some("localhost"),
        mail_from: "alice@example.com",
        rcpts: &rcpts,
        ..Envelope::default()
    };
    let stream = postern_milter::open(&spec).await.unwrap();
    let mut s = Session::negotiate(&spec, stream).await.unwrap();
    assert_eq!(s.connect(&env).await.unwrap(), Step::Continue);
    assert_eq!(s.helo(&env).await.unwrap(), Step::Continue);
    for queue_id in ["LIVE1", "LIVE2"] {
        let env = Envelope {
            queue_id: Some(queue_id),
            ..env.clone()
        };
        assert_eq!(s.mail(&env).await.unwrap(), Step::Continue);
        assert_eq!(s.rcpt(&env, &rcpts[0], &[]).await.unwrap(), Step::Continue);
        assert_eq!(s.data(&env).await.unwrap(), Step::Continue);
        for (name, value) in headers() {
            assert_eq!(s.header(&name, &value).await.unwrap(), Step::Continue);
        }
        assert_eq!(s.end_of_headers(&env).await.unwrap(), Step::Continue);
        // opendkim may answer the body with SKIP (it has what it needs).
        let step = s.body(BODY).await.unwrap();
        assert!(matches!(step, Step::Continue | Step::SkipBody), "{step:?}");
        let result = s.end_of_message(&env).await.unwrap();
        assert!(
            result.verdict.is_accepted(),
            "{queue_id}: {:?}",
            result.verdict
        );
        assert!(
            result.modifications.iter().any(|m| matches!(m,
                Modification::InsertHeader { name, .. } | Modification::AddHeader { name, .. }
                    if name == "DKIM-Signature")),
            "{queue_id}: {:?}",
            result.modifications
        );
    }
    s.quit().await;
}
