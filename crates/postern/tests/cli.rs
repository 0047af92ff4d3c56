//! The `postern` binary as a user runs it: real processes, real signals, real
//! sockets on 127.0.0.1, a temporary data directory.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;
use common::{BIN, Running};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use postern_testkit::Dialogue;

fn write_config(dir: &Path, domains: &[&str]) -> PathBuf {
    let domains = domains
        .iter()
        .map(|d| format!("\"{d}\""))
        .collect::<Vec<_>>()
        .join(", ");
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
accepted_domains = [{domains}]

[log]
level = "info"

# Delivery runs inside `serve`: send everything to a smart host that refuses
# connections, so messages defer and stay in the spool these tests inspect.
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

fn queue_ids(config: &Path) -> Vec<(String, u64)> {
    let out = Command::new(BIN)
        .args(["queue", "list", "--json", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["queue_id"].as_str().unwrap().to_owned(),
                v["message_size"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// A bad configuration exits 2 and names file:line:column and the key.
#[test]
fn config_check_reports_location() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, "hostname = \"x\"\n[tls]\nmin_version = \"1.0\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["config", "check"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:3:15"), "{err}");
    assert!(err.contains("tls.min_version"), "{err}");
}

/// A good configuration passes `config check` and prints a summary.
#[test]
fn config_check_ok() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_config(dir.path(), &["example.com"]);
    let out = Command::new(BIN)
        .args(["config", "check"])
        .arg(&p)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ok:"), "{stdout}");
    assert!(stdout.contains("self-signed"), "{stdout}");
}

/// `config check` asks each content engine and milter whether it answers:
/// a wrong address is a warning with the cause and its fix, not an error.
#[test]
fn config_check_asks_the_engines() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_config(dir.path(), &["example.com"]);
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = std::fs::read_to_string(&p).unwrap();
    let text = text
        + &format!(
            "\n[rspamd]\naddress = \"127.0.0.1:{port}\"\n\n[[milter]]\nname = \"m1\"\naddress = \"inet:127.0.0.1:{port}\"\n"
        );
    std::fs::write(&p, text).unwrap();
    let out = Command::new(BIN)
        .args(["config", "check"])
        .arg(&p)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("warning: rspamd:") && stdout.contains("[engine.refused]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("warning: milter m1:") && stdout.contains("[milter.connect]"),
        "{stdout}"
    );
}

/// `postern user hash` prints an argon2id PHC string.
#[test]
fn user_hash() {
    use std::io::Write as _;
    let mut child = Command::new(BIN)
        .args(["user", "hash"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hunter2\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("$argon2id$"));
}

async fn send_one(addr: SocketAddr, n: usize) -> Option<String> {
    let mut d = Dialogue::connect(addr).await;
    d.reply().await?;
    d.send("EHLO crash.test").await;
    d.reply().await?;
    d.send("MAIL FROM:<load@other.org>").await;
    d.reply().await?;
    d.send("RCPT TO:<bob@example.com>").await;
    d.reply().await?;
    d.send("DATA").await;
    d.reply().await?;
    let line = format!("{}\r\n", "x".repeat(78));
    let body = format!(
        "Subject: crash {n}\r\n\r\n{}END-OF-MESSAGE {n}\r\n.\r\n",
        line.repeat(100)
    );
    d.send_raw(body.as_bytes()).await;
    let r = d.reply().await?;
    (r.code == 250).then(|| r.lines[0].rsplit(' ').next().unwrap().to_owned())
}

/// kill -9 while 8 clients send: every message that got 250 is in the spool
/// after the crash, complete (the spool validates each file's trailer and CRCs;
/// we also check the sizes), and a restart recovers the same set.
#[test]
fn kill_9_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &["example.com"]);
    let server = Running::start(&cfg);
    let addr = server.addr;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let acked = rt.block_on(async move {
        let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for w in 0..8 {
            let acked = std::sync::Arc::clone(&acked);
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let Ok(Some(id)) = tokio::time::timeout(
                        Duration::from_secs(5),
                        send_one(addr, w * 10_000 + i),
                    )
                    .await
                    else {
                        break;
                    };
                    acked.lock().unwrap().push(id);
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        acked
    });
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL, mid-traffic
    server.child.wait().unwrap();
    let acked: Vec<String> = acked.lock().unwrap().clone();
    drop(rt);
    assert!(
        acked.len() > 10,
        "too few messages acknowledged before the kill: {}",
        acked.len()
    );
    let listed = queue_ids(&cfg);
    let listed_ids: std::collections::HashSet<_> =
        listed.iter().map(|(id, _)| id.clone()).collect();
    for id in &acked {
        assert!(
            listed_ids.contains(id),
            "acknowledged {id} missing after kill -9"
        );
    }
    for (id, size) in &listed {
        assert!(*size > 8000, "{id} listed with a partial size {size}");
    }
    // Restart: recovery keeps them all and cleans tmp/.
    let again = Running::start(&cfg);
    let after: std::collections::HashSet<_> =
        queue_ids(&cfg).into_iter().map(|(id, _)| id).collect();
    assert!(acked.iter().all(|id| after.contains(id)));
    assert!(
        again.stderr().contains("spool opened"),
        "{}",
        again.stderr()
    );
    let tmp = dir.path().join("data/spool/tmp");
    assert_eq!(
        std::fs::read_dir(tmp).unwrap().count(),
        0,
        "tmp/ not cleaned at recovery"
    );
}

/// SIGHUP reloads the configuration for new sessions; a bad configuration is
/// refused and the old one stays.
#[test]
fn sighup_reloads_and_keeps_old_config_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &["a.example"]);
    let server = Running::start(&cfg);
    let addr = server.addr;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rcpt = |domain: &'static str| async move {
        let mut d = Dialogue::connect(addr).await;
        d.expect(220).await;
        d.cmd("EHLO c", 250).await;
        d.cmd("MAIL FROM:<x@o.org>", 250).await;
        d.send(&format!("RCPT TO:<u@{domain}>")).await;
        d.reply().await.unwrap().code
    };
    assert_eq!(rt.block_on(rcpt("b.example")), 554);
    write_config(dir.path(), &["a.example", "b.example"]);
    let hup = || {
        assert!(
            Command::new("kill")
                .args(["-HUP", &server.pid()])
                .status()
                .unwrap()
                .success()
        );
        std::thread::sleep(Duration::from_millis(700));
    };
    hup();
    assert_eq!(rt.block_on(rcpt("b.example")), 250, "{}", server.stderr());
    std::fs::write(&cfg, "this is = = not toml").unwrap();
    hup();
    assert_eq!(rt.block_on(rcpt("b.example")), 250);
    assert!(
        server
            .stderr()
            .contains("reload failed, keeping the running configuration"),
        "{}",
        server.stderr()
    );
}

/// A certificate that does not cover a TLS listener's hostname is an error that
/// names the hostname (cf. MailSite: "No certificates were found matching the
/// Subject 'smtp.yourcorp.com'").
#[test]
fn config_check_names_uncovered_hostname() {
    let dir = tempfile::tempdir().unwrap();
    let ca = postern_testkit::TestCa::new();
    let (cert, key) = ca.issue(&["other.test.example"]).write(dir.path(), "other");
    let p = write_config(dir.path(), &["example.com"]);
    let mut cfg = std::fs::read_to_string(&p).unwrap();
    let extra = format!(
        "\n[[tls.certificate]]\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    );
    cfg.push_str(&extra);
    std::fs::write(&p, cfg).unwrap();
    let out = Command::new(BIN)
        .args(["config", "check"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("No certificates were found matching the Subject 'mx.test.example'"),
        "{err}"
    );
}

/// `cert check --config`: every listener's hostname and the PTR name of its
/// listening IP are checked against the certificates (the MailSite rule).
#[test]
fn cert_check_config_checks_hostname_and_ptr() {
    let dir = tempfile::tempdir().unwrap();
    let ca = postern_testkit::TestCa::new();
    let (cert, key) = ca.issue(&["mx.test.example"]).write(dir.path(), "mx");
    let p = write_config(dir.path(), &["example.com"]);
    let mut cfg = std::fs::read_to_string(&p).unwrap();
    let extra = format!(
        "\n[[tls.certificate]]\ncert = \"{}\"\nkey = \"{}\"\n\n[[dns.static]]\nname = \"ptr.other.example\"\na = [\"127.0.0.1\"]\n",
        cert.display(),
        key.display()
    );
    cfg.push_str(&extra);
    std::fs::write(&p, cfg).unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let out = Command::new(BIN)
        .args(["cert", "check", "--config"])
        .arg(&p)
        .arg("--ca")
        .arg(&ca_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("hostname mx.test.example is covered"),
        "{stdout}"
    );
    assert!(
        stdout.contains("PTR of 127.0.0.1 is ptr.other.example, which no certificate covers"),
        "{stdout}"
    );
}

/// The mail log's events for `queue_id`, once `want` are all there (JSON
/// objects, in order).
fn mail_log_events(data: &Path, queue_id: &str, want: &[&str]) -> Vec<serde_json::Value> {
    let log = data.join("log/mail.log");
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let events: Vec<serde_json::Value> = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|v: &serde_json::Value| v["queue_id"] == queue_id)
            .collect();
        let names: Vec<&str> = events.iter().filter_map(|v| v["event"].as_str()).collect();
        if want.iter().all(|w| names.contains(w)) {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "events for {queue_id}: {names:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The pickup folder: a file renamed into <data_dir>/pickup is queued (it
/// shows in `postern queue list`), removed, and logged as `received` (listener
/// `pickup`) then `queued` (origin `pickup`). A message over SMTP with
/// STARTTLS is logged as `received` with its peer, HELO and TLS version and
/// cipher.
#[test]
fn pickup_file_and_smtp_message_are_logged_as_received() {
    let dir = tempfile::tempdir().unwrap();
    let ca = postern_testkit::TestCa::new();
    let (cert, key) = ca.issue(&["mx.test.example"]).write(dir.path(), "mx");
    let cfg = write_config(dir.path(), &["example.com"]);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    let extra = format!(
        "\n[[tls.certificate]]\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    );
    text.push_str(&extra);
    std::fs::write(&cfg, text).unwrap();
    let data = dir.path().join("data");
    let server = Running::start(&cfg);

    // Written elsewhere (a .tmp name is skipped), then renamed in.
    let pickup = data.join("pickup");
    let tmp = pickup.join("hello.eml.tmp");
    std::fs::write(
        &tmp,
        "X-Sender: app@example.com\nX-Receiver: bob@example.com\n\
         From: App <app@example.com>\nTo: bob@example.com\nSubject: from pickup\n\nHello.\n",
    )
    .unwrap();
    let file = pickup.join("hello.eml");
    std::fs::rename(&tmp, &file).unwrap();
    let deadline = Instant::now() + Duration::from_mins(1);
    while file.exists() {
        assert!(
            Instant::now() < deadline,
            "not picked up: {}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let listed = queue_ids(&cfg);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let id = &listed[0].0;
    let events = mail_log_events(&data, id, &["received", "queued"]);
    assert_eq!(events[0]["event"], "received", "{events:?}");
    assert_eq!(events[0]["listener"], "pickup");
    assert_eq!(events[0]["sender"], "app@example.com");
    assert_eq!(events[0]["rcpts"], serde_json::json!(["bob@example.com"]));
    let queued = events.iter().find(|e| e["event"] == "queued").unwrap();
    assert_eq!(queued["origin"], "pickup", "{events:?}");

    // SMTP with STARTTLS.
    let addr = server.addr;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let smtp_id = rt.block_on(async move {
        let mut d = Dialogue::connect(addr).await;
        d.expect(220).await;
        d.cmd("EHLO client.test", 250).await;
        d.cmd("STARTTLS", 220).await;
        d.upgrade(
            "mx.test.example",
            postern_testkit::client_config(&ca, &[&rustls::version::TLS13], &[]),
        )
        .await
        .unwrap();
        d.cmd("EHLO client.test", 250).await;
        d.cmd("MAIL FROM:<alice@other.org>", 250).await;
        d.cmd("RCPT TO:<bob@example.com>", 250).await;
        d.cmd("DATA", 354).await;
        d.send_raw(b"Subject: over smtp\r\n\r\nHi.\r\n.\r\n").await;
        let r = d.expect(250).await;
        r.lines[0].rsplit(' ').next().unwrap().to_owned()
    });
    let events = mail_log_events(&data, &smtp_id, &["received", "queued"]);
    let received = &events[0];
    assert_eq!(received["event"], "received", "{events:?}");
    assert_eq!(received["listener"], "smtp");
    assert_eq!(received["sender"], "alice@other.org");
    assert_eq!(received["helo"], "client.test");
    let peer: SocketAddr = received["peer"].as_str().unwrap().parse().unwrap();
    assert!(peer.ip().is_loopback() && peer.port() != 0, "{peer}");
    let tls = received["tls"].as_str().unwrap();
    assert!(tls.starts_with("TLSv1.3 TLS_"), "{tls}");
    let queued = events.iter().find(|e| e["event"] == "queued").unwrap();
    assert_eq!(queued["origin"], "smtp", "{events:?}");
}
