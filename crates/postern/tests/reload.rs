//! `SIGHUP` reloads the whole configuration (issue 8 §2), tried as an operator
//! does it against a real `postern serve`: edit the file, `kill -HUP`, and see
//! the change take effect without a restart — a new route, `[delivery]`,
//! `[dns]` and `[pickup]` — and a key that cannot change live named in the log
//! as needing a restart, its running value kept.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;
use common::{BIN, Running, eventually};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use postern_testkit::{Dialogue, FakeMx, MxTls};

/// The configuration with `extra` appended; mail to the accepted domains goes
/// to a smart host that refuses connections unless a route says otherwise
/// (`routes` come first: first match wins).
fn write_config(dir: &Path, routes: &str, extra: &str) -> PathBuf {
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
accepted_domains = ["a.example", "b.example"]

{routes}

[[route]]
domains = ["*"]
smarthost = "127.0.0.1:9"

{extra}
"#,
        data = dir.join("data").display()
    );
    let p = dir.join("postern.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

fn postern(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

/// `postern queue list --json`, one JSON object per message.
fn queue(config: &Path) -> Vec<serde_json::Value> {
    let o = postern(config, &["queue", "list", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Sends one message to `rcpt`; returns its queue id.
fn send(rt: &tokio::runtime::Runtime, addr: SocketAddr, rcpt: &str) -> String {
    rt.block_on(async {
        let mut d = Dialogue::connect(addr).await;
        d.expect(220).await;
        d.cmd("EHLO client.test", 250).await;
        d.cmd("MAIL FROM:<alice@other.org>", 250).await;
        d.cmd(&format!("RCPT TO:<{rcpt}>"), 250).await;
        d.cmd("DATA", 354).await;
        d.send_raw(b"Subject: reload test\r\n\r\nhello\r\n.\r\n")
            .await;
        let r = d.reply().await.unwrap();
        assert_eq!(r.code, 250);
        r.lines[0].rsplit(' ').next().unwrap().to_owned()
    })
}

/// Waits until `id` is deferred (its first attempt failed).
fn wait_deferred(config: &Path, id: &str) {
    eventually("the first deferral", || {
        queue(config)
            .iter()
            .any(|m| m["queue_id"] == id && m["state"] == "deferred")
    });
}

fn retry_all(config: &Path) {
    let o = postern(config, &["queue", "retry", "--all"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Issue 8: "a route added and reloaded was ignored and the next message
/// bounced 5.1.2". Now the next attempt takes the new route.
#[test]
fn a_route_added_by_a_reload_is_used_by_the_next_attempt() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mx = rt.block_on(FakeMx::start(MxTls::None));
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "", "");
    let server = Running::start(&cfg);
    let id = send(&rt, server.addr, "bob@b.example");
    wait_deferred(&cfg, &id);

    let route = format!(
        "[[route]]\ndomains = [\"b.example\"]\nsmarthost = \"127.0.0.1:{}\"\n",
        mx.port()
    );
    write_config(dir.path(), &route, "");
    server.hup();
    retry_all(&cfg);
    eventually("delivery over the new route", || {
        !mx.received_for("bob@b.example").is_empty()
    });
    eventually("an empty queue", || queue(&cfg).is_empty());
}

/// `[delivery]`: a new `max_lifetime` moves the expiry of queued mail.
#[test]
fn a_reload_applies_delivery_settings() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "", "[delivery]\nmax_lifetime = \"120h\"\n");
    let server = Running::start(&cfg);
    let id = send(&rt, server.addr, "bob@b.example");
    wait_deferred(&cfg, &id);
    let expires = |cfg: &Path| {
        let q = queue(cfg);
        q[0]["expires_at"].as_str().unwrap().to_owned()
    };
    let before = expires(&cfg);
    write_config(dir.path(), "", "[delivery]\nmax_lifetime = \"24h\"\n");
    server.hup();
    let after = expires(&cfg);
    assert!(after < before, "{after} should be 4 days before {before}");
}

/// `[dns]`: a static entry added by a reload resolves the smart host's name
/// for the next attempt.
#[test]
fn a_reload_applies_dns_settings() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mx = rt.block_on(FakeMx::start(MxTls::None));
    let dir = tempfile::tempdir().unwrap();
    let route = format!(
        "[[route]]\ndomains = [\"b.example\"]\nsmarthost = \"relay.reload.test:{}\"\n",
        mx.port()
    );
    // No DNS server answers: the name cannot be resolved.
    let dns = "[dns]\nnameservers = [\"127.0.0.1:9\"]\ntimeout = \"1s\"\nattempts = 1\n";
    let cfg = write_config(dir.path(), &route, dns);
    let server = Running::start(&cfg);
    let id = send(&rt, server.addr, "bob@b.example");
    wait_deferred(&cfg, &id);
    assert!(mx.received().is_empty());

    let dns = format!("{dns}\n[[dns.static]]\nname = \"relay.reload.test\"\na = [\"127.0.0.1\"]\n");
    write_config(dir.path(), &route, &dns);
    server.hup();
    retry_all(&cfg);
    eventually("delivery to the host the new entry names", || {
        !mx.received_for("bob@b.example").is_empty()
    });
}

/// `[pickup]`: the running watcher moves to the new folder.
#[test]
fn a_reload_applies_pickup_settings() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("pickup1");
    let second = dir.path().join("pickup2");
    let pickup = |d: &Path| {
        format!(
            "[pickup]\ndir = \"{}\"\ninterval = \"100ms\"\n",
            d.display()
        )
    };
    let cfg = write_config(dir.path(), "", &pickup(&first));
    let server = Running::start(&cfg);
    write_config(dir.path(), "", &pickup(&second));
    server.hup();
    let file = second.join("m.eml");
    std::fs::write(
        &file,
        "X-Sender: app@a.example\r\nX-Receiver: bob@b.example\r\n\r\nSubject: hi\r\n\r\nhello\r\n",
    )
    .unwrap();
    eventually("the file picked up from the new folder", || !file.exists());
    assert_eq!(queue(&cfg).len(), 1);
}

/// A key that cannot change live is named in the log, and the running value
/// stays (the listener still answers on its old port).
#[test]
fn a_restart_only_key_is_named_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "", "[log]\nlevel = \"info\"\n");
    let server = Running::start(&cfg);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("127.0.0.1:0", "127.0.0.1:1")
        .replace("level = \"info\"", "level = \"debug\"");
    std::fs::write(&cfg, text).unwrap();
    server.hup();
    let log = server.stderr();
    for key in ["listener.smtp.address", "log.level"] {
        assert!(
            log.contains(&format!(
                "{key} changed: needs a restart; keeping the running value"
            )),
            "{key}: {log}"
        );
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let id = send(&rt, server.addr, "bob@a.example");
    assert!(!id.is_empty(), "the old listener still takes mail");
}

/// `[spool] min_free`: a floor lowered by a reload lets mail in again.
#[test]
fn a_reload_applies_the_spool_floor() {
    let dir = tempfile::tempdir().unwrap();
    let spool = |floor: &str| format!("[spool]\nmin_free = \"{floor}\"\n");
    // A floor no test machine has free: mail is refused.
    let cfg = write_config(dir.path(), "", &spool("100000GiB"));
    let server = Running::start(&cfg);
    assert_eq!(postern(&cfg, &["spool", "status"]).status.code(), Some(1));
    write_config(dir.path(), "", &spool("1MiB"));
    server.hup();
    let o = postern(&cfg, &["spool", "status"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let rt = tokio::runtime::Runtime::new().unwrap();
    send(&rt, server.addr, "bob@a.example");
}

/// Sender groups and mail-flow policies are live: a reload that blocks the
/// client's address applies to its next connection.
#[test]
fn a_reload_applies_sender_groups() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "", "");
    let server = Running::start(&cfg);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let greeting = |rt: &tokio::runtime::Runtime| {
        rt.block_on(async {
            let mut d = postern_testkit::Dialogue::connect(server.addr).await;
            d.reply().await.map(|r| r.code)
        })
    };
    assert_eq!(greeting(&rt), Some(220));
    write_config(
        dir.path(),
        "",
        "[[sender_group]]\nname = \"LOCAL\"\nmatch = [\"127.0.0.0/8\"]\npolicy = \"BLOCKED\"\n\
         [[sender_group]]\nname = \"ALL\"\nmatch = [\"all\"]\npolicy = \"ACCEPTED\"\n\
         [[mail_flow_policy]]\nname = \"BLOCKED\"\naction = \"reject\"\n\
         [[mail_flow_policy]]\nname = \"ACCEPTED\"\naction = \"accept\"\n",
    );
    server.hup();
    common::eventually("the reload blocks 127.0.0.1", || greeting(&rt) == Some(554));
}
