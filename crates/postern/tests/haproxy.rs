//! Interop with a real load balancer: Debian's HAProxy in `mode tcp` in front
//! of the real `postern serve`, one frontend with `send-proxy-v2` and one with
//! `send-proxy` (v1), and Python's smtplib as the client, bound to 127.0.0.2
//! and 127.0.0.3 so that each looks like a different host. Postern must see
//! those addresses (not HAProxy's 127.0.0.1) in the transcript and in the
//! `Received:` header of the delivered message.
//!
//! Skipped (with a message) when `haproxy` or `python3` is missing; CI
//! installs both and sets `POSTERN_REQUIRE_TOOLS`, which turns a skip into a
//! failure. HAProxy runs in the foreground (`-db`) from a temporary folder on
//! free 127.0.0.1 ports and is killed (by its own PID) at the end.
//!
//! # Standards
//! HAProxy "The PROXY protocol" §2.1 (v1, `send-proxy`), §2.2 (v2,
//! `send-proxy-v2`); RFC 5321 §4.4 (`Received:`).
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;
use common::{PATIENCE, Running, eventually};

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use postern_testkit::{FakeMx, MxTls};

/// `haproxy`, found on `PATH` or in `/usr/sbin` (Debian's place for it, not
/// on an ordinary user's `PATH`).
fn haproxy() -> &'static str {
    if Path::new("/usr/sbin/haproxy").exists() {
        "/usr/sbin/haproxy"
    } else {
        "haproxy"
    }
}

fn have(cmd: &str, arg: &str) -> bool {
    let ok = Command::new(cmd)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    // CI installs the tools and sets POSTERN_REQUIRE_TOOLS: there a missing
    // tool is a failure, not a silent skip.
    assert!(
        ok || std::env::var_os("POSTERN_REQUIRE_TOOLS").is_none(),
        "the {cmd} command is required (POSTERN_REQUIRE_TOOLS is set)"
    );
    if !ok {
        let package = cmd.rsplit('/').next().unwrap_or(cmd);
        eprintln!("skipped: {package} not installed (apt-get install {package})");
    }
    ok
}

/// A port free on 127.0.0.1 right now (HAProxy binds it a moment later).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_postern_config(dir: &Path, internal: SocketAddr) -> PathBuf {
    let cfg = format!(
        r#"data_dir = "{data}"
hostname = "gw.test.example"

[[listener]]
name = "smtp"
address = "127.0.0.1:0"
kind = "smtp"
tls = "off"
proxy_protocol = true
trusted_proxies = ["127.0.0.1"]

[relay]
accepted_domains = ["example.com"]

[log]
transcript = "{transcript}"

[[route]]
domains = ["example.com"]
smarthost = "{internal}"
tls = "none"
"#,
        data = dir.join("data").display(),
        transcript = dir.join("transcript.log").display(),
    );
    let p = dir.join("postern.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

/// HAProxy in the foreground; killed on drop.
struct Haproxy {
    child: Child,
    stderr: PathBuf,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Haproxy {
    /// Frontend `v2` on `v2_port` and `v1` on `v1_port`, both to `backend`.
    fn start(dir: &Path, backend: SocketAddr, v2_port: u16, v1_port: u16) -> Self {
        let cfg = format!(
            "global\n    maxconn 100\n\n\
             defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    \
             timeout server 30s\n\n\
             frontend v2\n    bind 127.0.0.1:{v2_port}\n    default_backend postern_v2\n\n\
             frontend v1\n    bind 127.0.0.1:{v1_port}\n    default_backend postern_v1\n\n\
             backend postern_v2\n    server gw {backend} send-proxy-v2\n\n\
             backend postern_v1\n    server gw {backend} send-proxy\n"
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, cfg).unwrap();
        let stderr = dir.join("haproxy.stderr");
        let child = Command::new(haproxy())
            .args(["-db", "-f"])
            .arg(&path)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut h = Self { child, stderr };
        // Ready when both frontends accept (each probe is one empty proxied
        // connection, which Postern serves and the client closes).
        let deadline = Instant::now() + PATIENCE;
        for port in [v2_port, v1_port] {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Ok(Some(status)) = h.child.try_wait() {
                    panic!("haproxy exited ({status}): {}", h.log());
                }
                assert!(
                    Instant::now() < deadline,
                    "haproxy did not start: {}",
                    h.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        h
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

/// Python's smtplib, bound to `source`, sends one message to `rcpt` through
/// 127.0.0.1:`port`.
fn smtplib_send(port: u16, source: &str, helo: &str, rcpt: &str) {
    const SCRIPT: &str = "import smtplib, sys\n\
        port, source, helo, rcpt = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]\n\
        s = smtplib.SMTP('127.0.0.1', port, local_hostname=helo, source_address=(source, 0), timeout=30)\n\
        s.sendmail('someone@outside.example', [rcpt], 'Subject: via haproxy\\r\\n\\r\\nhello\\r\\n')\n\
        s.quit()\n";
    let out = Command::new("python3")
        .args(["-c", SCRIPT, &port.to_string(), source, helo, rcpt])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "smtplib via port {port} from {source}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn received_header(mx: &FakeMx, rcpt: &str, logs: &dyn Fn() -> String) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(m) = mx.received_for(rcpt).first() {
            let text = String::from_utf8_lossy(&m.data).into_owned();
            return text
                .split("\r\n")
                .skip_while(|l| !l.starts_with("Received:"))
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
        }
        assert!(
            Instant::now() < deadline,
            "nothing delivered to {rcpt}\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn haproxy_send_proxy_v1_and_v2_reach_postern_with_the_client_address() {
    if !have(haproxy(), "-v") || !have("python3", "--version") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mx = rt.block_on(FakeMx::start(MxTls::None));
    let dir = tempfile::tempdir().unwrap();
    let gw = Running::start(&write_postern_config(dir.path(), mx.addr()));
    let (v2_port, v1_port) = (free_port(), free_port());
    let lb = Haproxy::start(dir.path(), gw.addr, v2_port, v1_port);
    let logs = || format!("postern:\n{}\nhaproxy:\n{}", gw.stderr(), lb.log());

    smtplib_send(v2_port, "127.0.0.2", "client.v2.example", "v2@example.com");
    smtplib_send(v1_port, "127.0.0.3", "client.v1.example", "v1@example.com");

    let r2 = received_header(&mx, "v2@example.com", &logs);
    assert!(r2.contains("from client.v2.example ([127.0.0.2])"), "{r2}");
    let r1 = received_header(&mx, "v1@example.com", &logs);
    assert!(r1.contains("from client.v1.example ([127.0.0.3])"), "{r1}");

    let transcript = dir.path().join("transcript.log");
    let has = |needle: &str| {
        std::fs::read_to_string(&transcript)
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains(needle))
    };
    for client in ["127.0.0.2", "127.0.0.3"] {
        let needle = format!("connect from {client}:");
        eventually(&needle, || has(&needle));
    }
    let text = std::fs::read_to_string(&transcript).unwrap();
    for l in text.lines().filter(|l| l.contains("connect from 127.0.0.")) {
        assert!(l.contains(" via proxy 127.0.0.1:"), "{l}\n{}", logs());
    }
    assert!(!gw.stderr().contains("proxy.malformed"), "{}", logs());
    drop(lb);
    gw.stop();
}
