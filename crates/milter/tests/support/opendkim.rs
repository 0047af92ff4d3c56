//! A real opendkim (Debian `opendkim` + `opendkim-tools`) started in the
//! foreground on 127.0.0.1 with a fresh key for example.com (selector
//! `test`), signing mail from 127.0.0.1 (InternalHosts) and verifying the
//! rest, with its DNS answers from a file (TestDNSData): shared by this
//! crate's tests and the server's (`crates/smtpd/tests/content_policy.rs`).

#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use postern_milter::{MilterAddr, MilterSpec};

const OPENDKIM: &str = "/usr/sbin/opendkim";

/// An `opendkim` of our own; killed on drop.
pub struct OpenDkim {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for OpenDkim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn installed() -> bool {
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
    pub async fn start() -> OpenDkim {
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

    pub fn spec(&self) -> MilterSpec {
        MilterSpec::new(
            "opendkim",
            MilterAddr::parse(&format!("inet:{}@127.0.0.1", self.port)).unwrap(),
        )
    }
}
