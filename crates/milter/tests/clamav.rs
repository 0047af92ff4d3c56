//! The client against a second real milter: `clamav-milter` (Debian
//! `clamav-milter`, with `clamav-daemon`; CI installs both) in front of a
//! `clamd` of our own, both started by the test in the foreground in a
//! temporary directory. No signature download: the database is one `.hdb`
//! line for the EICAR test file.
//!
//! A clean message is accepted with clamav-milter's `X-Virus-Status: Clean`
//! header; a message carrying EICAR is refused with clamav-milter's reject
//! reply, which must be a 5xx.
//!
//! Without the tools each test prints "skipped: …" and passes, unless
//! `POSTERN_REQUIRE_TOOLS` is set (CI), where it fails.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use postern_milter::{Envelope, MilterAddr, MilterSpec, Modification, Verdict};

const CLAMD: &str = "/usr/sbin/clamd";
const CLAMAV_MILTER: &str = "/usr/sbin/clamav-milter";

/// The EICAR anti-virus test file (68 bytes) in base64, as an attachment
/// carries it; its MD5 is published by EICAR:
/// 44d88612fea8a8f36de82e1278abb02f. Kept encoded so this source file is not
/// itself flagged by a scanner.
const EICAR_BASE64: &str =
    "WDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVElWSVJVUy1URVNULUZJTEUhJEgrSCo=";
const EICAR_LEN: usize = 68;

/// Kills and reaps a child on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// clamd and clamav-milter; dropped in reverse order.
struct Engines {
    _milter: Killed,
    _clamd: Killed,
    port: u16,
    _dir: tempfile::TempDir,
}

fn installed() -> bool {
    let ok = Path::new(CLAMD).exists() && Path::new(CLAMAV_MILTER).exists();
    if !ok {
        assert!(
            std::env::var_os("POSTERN_REQUIRE_TOOLS").is_none(),
            "clamd and clamav-milter are required (POSTERN_REQUIRE_TOOLS is set)"
        );
        eprintln!(
            "skipped: clamav-milter not installed (apt-get install clamav-daemon clamav-milter)"
        );
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

/// Waits up to `tries` × 100 ms for `ready`, failing early when the child
/// exits. The wait only bounds a failing start; it measures nothing.
async fn wait_for(child: &mut Child, what: &str, tries: u32, ready: impl Fn() -> bool) {
    for _ in 0..tries {
        if ready() {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not become ready");
}

impl Engines {
    async fn start() -> Engines {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("db")).unwrap();
        std::fs::create_dir(d.join("tmp")).unwrap();
        // ClamAV hash signature: MD5:size:name.
        std::fs::write(
            d.join("db/postern-test.hdb"),
            format!("44d88612fea8a8f36de82e1278abb02f:{EICAR_LEN}:Postern.Test.EICAR\n"),
        )
        .unwrap();
        let clamd_sock = d.join("clamd.sock");
        std::fs::write(
            d.join("clamd.conf"),
            format!(
                "Foreground yes\nDatabaseDirectory {}\nLocalSocket {}\nTemporaryDirectory {}\n\
                 LogFile {}\nSelfCheck 0\n",
                d.join("db").display(),
                clamd_sock.display(),
                d.join("tmp").display(),
                d.join("clamd.log").display(),
            ),
        )
        .unwrap();
        let mut clamd = Command::new(CLAMD)
            .arg("-c")
            .arg(d.join("clamd.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        wait_for(&mut clamd, "clamd", 600, || {
            std::os::unix::net::UnixStream::connect(&clamd_sock).is_ok()
        })
        .await;
        let clamd = Killed(clamd);
        let port = free_port();
        std::fs::write(
            d.join("milter.conf"),
            format!(
                "Foreground yes\nMilterSocket inet:{port}@127.0.0.1\nClamdSocket unix:{}\n\
                 OnInfected Reject\nOnClean Accept\nAddHeader Replace\nLogFile {}\n\
                 PidFile {}\n",
                clamd_sock.display(),
                d.join("milter.log").display(),
                d.join("milter.pid").display(),
            ),
        )
        .unwrap();
        let mut milter = Command::new(CLAMAV_MILTER)
            .arg("-c")
            .arg(d.join("milter.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        wait_for(&mut milter, "clamav-milter", 100, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;
        Engines {
            _milter: Killed(milter),
            _clamd: clamd,
            port,
            _dir: dir,
        }
    }
}

fn headers() -> Vec<(String, String)> {
    [
        ("From", " Alice <alice@example.com>"),
        ("To", " bob@example.org"),
        ("Subject", " the file"),
        ("MIME-Version", " 1.0"),
        ("Content-Type", " multipart/mixed; boundary=\"b1\""),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
    .collect()
}

/// A multipart body with `base64` as a base64-encoded attachment.
fn body(base64: &str) -> Vec<u8> {
    format!(
        "--b1\r\nContent-Type: text/plain\r\n\r\nSee the attachment.\r\n\
         --b1\r\nContent-Type: application/octet-stream; name=\"a.com\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"a.com\"\r\n\r\n{base64}\r\n--b1--\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn clamav_milter_accepts_clean_mail_and_rejects_eicar() {
    if !installed() {
        return;
    }
    let engines = Engines::start().await;
    let spec = MilterSpec::new(
        "clamav",
        MilterAddr::parse(&format!("inet:127.0.0.1:{}", engines.port)).unwrap(),
    );
    let rcpts = vec!["bob@example.org".to_owned()];
    let env = Envelope {
        hostname: "mx.example.org",
        client_ip: Some("192.0.2.9".parse().unwrap()),
        helo: Some("mail.example.com"),
        mail_from: "alice@example.com",
        rcpts: &rcpts,
        queue_id: Some("CLAM1"),
        ..Envelope::default()
    };

    let clean = postern_milter::run(&spec, &env, &headers(), &body("aGFybWxlc3MgdGV4dAo=")[..])
        .await
        .unwrap();
    assert!(clean.verdict.is_accepted(), "{:?}", clean.verdict);
    let status = clean.modifications.iter().find_map(|m| match m {
        Modification::AddHeader { name, value }
        | Modification::InsertHeader { name, value, .. }
        | Modification::ChangeHeader { name, value, .. }
            if name.eq_ignore_ascii_case("X-Virus-Status") =>
        {
            Some(value.clone())
        }
        _ => None,
    });
    assert_eq!(
        status.as_deref(),
        Some(" Clean"),
        "{:?}",
        clean.modifications
    );

    let infected = postern_milter::run(&spec, &env, &headers(), &body(EICAR_BASE64)[..])
        .await
        .unwrap();
    let Verdict::Reject(reply) = &infected.verdict else {
        panic!("EICAR not rejected: {infected:?}");
    };
    assert!(reply.is_permanent(), "{reply:?}");
    assert!(infected.modifications.is_empty());
}
