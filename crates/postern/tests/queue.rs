//! `postern queue …` as an operator runs it against a real `postern serve`:
//! real processes, the real admin socket, a temporary data directory. Delivery
//! goes to a smart host that refuses connections (127.0.0.1:9), so messages
//! defer and stay queued with an attempt and its cause in the mail log.
//! Postfix's `mailq`/`postqueue`/`postsuper` are the model: verbs reach the
//! running queue manager; with the server stopped, hold/release/delete act on
//! the spool under its lock and retry/flush refuse.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;
use common::{BIN, Running};

use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use postern_testkit::Dialogue;

fn write_config(dir: &Path, extra: &str) -> PathBuf {
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
accepted_domains = ["example.com"]

[pickup]
enabled = false

# Everything to a smart host that refuses connections: mail defers and stays.
[[route]]
domains = ["*"]
smarthost = "127.0.0.1:9"
{extra}"#,
        data = dir.join("data").display()
    );
    let p = dir.join("postern.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

fn postern(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("queue")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a command that must succeed; returns its stdout.
fn ok(config: &Path, args: &[&str]) -> String {
    let o = postern(config, args);
    assert!(
        o.status.success(),
        "postern queue {args:?} failed: {}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// Runs a command that must exit 1; returns its stderr.
fn refused(config: &Path, args: &[&str]) -> String {
    let o = postern(config, args);
    assert_eq!(
        o.status.code(),
        Some(1),
        "postern queue {args:?}: {}{}",
        stdout(&o),
        stderr(&o)
    );
    stderr(&o)
}

/// Sends one message to `rcpts` and returns its queue id.
fn send(addr: SocketAddr, rcpts: &[&str]) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut d = Dialogue::connect(addr).await;
        d.expect(220).await;
        d.cmd("EHLO client.test", 250).await;
        d.cmd("MAIL FROM:<alice@other.org>", 250).await;
        for r in rcpts {
            d.cmd(&format!("RCPT TO:<{r}>"), 250).await;
        }
        d.cmd("DATA", 354).await;
        d.send_raw(b"Subject: queue test\r\n\r\nhello\r\n.\r\n")
            .await;
        let r = d.reply().await.unwrap();
        assert_eq!(r.code, 250);
        r.lines[0].rsplit(' ').next().unwrap().to_owned()
    })
}

/// The `--json` listing: (queue id, state) per message.
fn listed(config: &Path, filter: &[&str]) -> Vec<(String, String)> {
    let mut args = vec!["list", "--json"];
    args.extend_from_slice(filter);
    ok(config, &args)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["queue_id"].as_str().unwrap().to_owned(),
                v["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Polls until `id` is listed as deferred (its first attempt failed). Bounded:
/// only a hang fails.
fn wait_deferred(config: &Path, id: &str) {
    let deadline = Instant::now() + Duration::from_mins(1);
    while !listed(config, &["--state", "deferred"])
        .iter()
        .any(|(i, _)| i == id)
    {
        assert!(Instant::now() < deadline, "{id} never deferred");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn verbs_go_through_the_admin_socket_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let server = Running::start(&cfg);
    let socket = dir.path().join("data/admin.sock");
    let md = std::fs::symlink_metadata(&socket).unwrap();
    assert!(md.file_type().is_socket());
    assert_eq!(md.permissions().mode() & 0o777, 0o600);

    let id = send(server.addr, &["bob@example.com"]);
    wait_deferred(&cfg, &id);
    let table = ok(&cfg, &["list"]);
    assert!(table.contains(&id) && table.contains("deferred"), "{table}");
    assert!(table.contains("from the running server"), "{table}");
    assert!(listed(&cfg, &["--state", "held"]).is_empty());
    assert_eq!(listed(&cfg, &["--domain", "EXAMPLE.com"]).len(), 1);
    assert!(listed(&cfg, &["--domain", "example.org"]).is_empty());
    assert!(listed(&cfg, &["--older-than", "1h"]).is_empty());

    // show: envelope, recipient state, and the attempt with its cause and fix.
    let show = ok(&cfg, &["show", &id]);
    assert!(show.contains("sender:       <alice@other.org>"), "{show}");
    assert!(
        show.contains("<bob@example.com>  deferred, 1 attempt(s)"),
        "{show}"
    );
    assert!(
        show.contains("attempt 1 to 127.0.0.1 [127.0.0.1:9]: failed"),
        "{show}"
    );
    assert!(show.contains("policy: opportunistic"), "{show}");
    assert!(show.contains("cause: conn.refused"), "{show}");
    assert!(show.contains("fix: "), "{show}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&cfg, &["show", &id, "--json"])).unwrap();
    let attempt = json["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "attempt")
        .unwrap();
    assert_eq!(attempt["cause"]["id"], "conn.refused");
    assert_eq!(json["message"]["recipients"][0]["state"], "deferred");

    // hold → listed as held, not retried; retry refuses until released.
    assert_eq!(
        ok(&cfg, &["hold", &id]).trim(),
        format!("held {id} (1 recipient)")
    );
    assert_eq!(
        ok(&cfg, &["hold", &id]).trim(),
        format!("already held: {id}")
    );
    assert_eq!(
        listed(&cfg, &["--state", "held"]),
        [(id.clone(), "held".into())]
    );
    assert!(refused(&cfg, &["retry", &id]).contains("release it first"));
    assert!(ok(&cfg, &["show", &id]).contains("held since:"));
    assert!(ok(&cfg, &["release", &id]).starts_with(&format!("released {id}")));
    // The mail log names who gave the command over the socket: the CLI's
    // user (SO_PEERCRED).
    let json: serde_json::Value =
        serde_json::from_str(&ok(&cfg, &["show", &id, "--json"])).unwrap();
    let held = json["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "held")
        .cloned()
        .unwrap();
    let by = held["by"].as_str().unwrap_or_default();
    assert!(by.starts_with("uid ") && by.contains("(pid "), "{held}");
    let show = ok(&cfg, &["show", &id]);
    assert!(
        show.contains(&format!(
            "held      by the operator (via admin, {by}; 1 recipient(s))"
        )),
        "{show}"
    );
    assert_eq!(
        ok(&cfg, &["release", &id]).trim(),
        format!("not held: {id}")
    );
    assert!(listed(&cfg, &["--state", "held"]).is_empty());

    // retry and flush schedule now.
    let r = postern(&cfg, &["retry", &id]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(stdout(&r).contains(&id), "{}", stdout(&r));
    assert!(ok(&cfg, &["retry", "--all"]).starts_with("retrying"));
    assert!(ok(&cfg, &["flush", "example.com"]).starts_with("flushing example.com:"));

    // delete → gone, no DSN (the sender's domain is not ours: a DSN would be
    // queued as a new message and listed).
    let out = ok(&cfg, &["delete", &id]);
    assert!(
        out.starts_with(&format!("deleting {id}")) || out.starts_with(&format!("deleted {id}")),
        "{out}"
    );
    let deadline = Instant::now() + Duration::from_mins(1);
    while !listed(&cfg, &[]).is_empty() {
        assert!(
            Instant::now() < deadline,
            "not deleted: {:?}",
            listed(&cfg, &[])
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(refused(&cfg, &["delete", &id]).starts_with(&format!("not found: {id}")));
    // The history stays readable after the message is gone (the mail log is
    // written in batches: wait for the `deleted` line, bounded).
    let deadline = Instant::now() + Duration::from_mins(1);
    let show = loop {
        let show = ok(&cfg, &["show", &id]);
        if show.contains("deleted   by the operator") || Instant::now() > deadline {
            break show;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(show.contains("no longer queued"), "{show}");
    assert!(
        show.contains("deleted   by the operator (via admin"),
        "{show}"
    );
    // Usage errors exit 2.
    assert_eq!(postern(&cfg, &["hold", "not-an-id"]).status.code(), Some(2));
    assert_eq!(
        postern(&cfg, &["list", "--state", "frozen"]).status.code(),
        Some(2)
    );
    server.stop();
    assert!(!socket.exists(), "the socket is removed at shutdown");
}

#[test]
fn with_the_server_stopped_verbs_act_on_the_spool_and_a_hold_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let server = Running::start(&cfg);
    let id = send(server.addr, &["bob@example.com", "carol@example.com"]);
    let other = send(server.addr, &["dave@example.com"]);
    wait_deferred(&cfg, &id);
    wait_deferred(&cfg, &other);
    server.stop();

    let out = ok(&cfg, &["hold", &id]);
    assert_eq!(
        out.trim(),
        format!("held {id} (2 recipients) — on the spool (the server is not running)")
    );
    let table = ok(&cfg, &["list"]);
    assert!(
        table.contains("from the spool ")
            && table.contains(&format!(
                "(the data directory {}",
                dir.path().join("data").display()
            ))
            && table.contains(" — the server is not running"),
        "{table}"
    );
    assert_eq!(
        listed(&cfg, &["--state", "held"]),
        [(id.clone(), "held".into())]
    );
    for args in [
        vec!["retry", id.as_str()],
        vec!["retry", "--all"],
        vec!["flush", "example.com"],
    ] {
        let err = refused(&cfg, &args);
        assert!(err.starts_with("the server is not running"), "{err}");
    }
    assert!(ok(&cfg, &["delete", &other]).starts_with(&format!("deleted {other}")));
    assert!(refused(&cfg, &["delete", &other]).starts_with("not found"));
    let show = ok(&cfg, &["show", &id]);
    assert!(show.contains("state:        held"), "{show}");
    assert!(
        show.contains("held      by the operator (via spool"),
        "{show}"
    );

    // Restart: still held (the hold is in state/<id>), the deleted one gone.
    let server = Running::start(&cfg);
    let all = listed(&cfg, &[]);
    assert_eq!(all, [(id.clone(), "held".into())]);
    assert!(ok(&cfg, &["list"]).contains("from the running server"));
    assert!(ok(&cfg, &["release", &id]).starts_with(&format!("released {id}")));
    let out = ok(&cfg, &["delete", &id]);
    assert!(out.contains(&id), "{out}");
    server.stop();
}

#[test]
fn without_the_admin_socket_verbs_refuse_to_race_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "\n[admin]\nenabled = false\n");
    let server = Running::start(&cfg);
    assert!(!dir.path().join("data/admin.sock").exists());
    let id = send(server.addr, &["bob@example.com"]);
    wait_deferred(&cfg, &id);
    let err = refused(&cfg, &["hold", &id]);
    assert!(err.contains("locked by a running server"), "{err}");
    assert!(ok(&cfg, &["list"]).contains("from the spool"));
    drop(server);
}

#[test]
fn a_stopped_spool_lists_damaged_files_and_spool_recheck_asks_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let recheck = || {
        Command::new(BIN)
            .args(["spool", "recheck", "--config"])
            .arg(&cfg)
            .output()
            .unwrap()
    };
    let server = Running::start(&cfg);
    let id = send(server.addr, &["bob@example.com"]);
    let o = recheck();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("a test write and fsync succeeded; the spool was not poisoned"),
        "{}",
        stdout(&o)
    );
    let o = postern(&cfg, &["list"]);
    assert!(
        stderr(&o).is_empty(),
        "a healthy spool: no warning: {}",
        stderr(&o)
    );
    server.stop();

    // A file in msg/ that is not a message: reported, not skipped silently.
    let bad = postern_spool::QueueId::generate().to_string();
    std::fs::write(dir.path().join("data/spool/msg").join(&bad), b"garbage").unwrap();
    let o = postern(&cfg, &["list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("warning: cannot read queued message {bad}: ")),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains(&id), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("-- 1 queued file(s) cannot be read"),
        "{}",
        stdout(&o)
    );
    // --json stays one message per line on stdout; the warning is on stderr.
    assert_eq!(listed(&cfg, &[]), [(id.clone(), "deferred".into())]);

    let o = recheck();
    assert!(o.status.success());
    assert!(
        stdout(&o).starts_with("the server is not running"),
        "{}",
        stdout(&o)
    );
}

/// `postern spool status` reports the floor and the queue, and exits 1 while
/// new mail is refused; below `[spool] min_free` a message is refused with
/// `452 4.3.1` (here at the spool, before anything is stored).
#[test]
fn below_the_free_space_floor_mail_is_refused_and_spool_status_says_why() {
    let status = |cfg: &Path| {
        Command::new(BIN)
            .args(["spool", "status", "--config"])
            .arg(cfg)
            .output()
            .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let server = Running::start(&cfg);
    let o = status(&cfg);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("state:    accepting mail"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("floor [spool] min_free: 100 MiB"),
        "{}",
        stdout(&o)
    );
    server.stop();

    // A floor no test machine has free.
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "\n[spool]\nmin_free = \"100000GiB\"\n");
    let server = Running::start(&cfg);
    let o = status(&cfg);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("low on space"), "{}", stdout(&o));
    assert!(stdout(&o).contains("452 4.3.1"), "{}", stdout(&o));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let refused = rt.block_on(async {
        let mut d = Dialogue::connect(server.addr).await;
        d.expect(220).await;
        d.cmd("EHLO client.test", 250).await;
        d.send("MAIL FROM:<alice@other.org>").await;
        let mut last = d.reply().await.unwrap();
        if last.code == 250 {
            d.cmd("RCPT TO:<bob@example.com>", 250).await;
            d.send("DATA").await;
            last = d.reply().await.unwrap();
            if last.code == 354 {
                d.send_raw(b"Subject: x\r\n\r\nx\r\n.\r\n").await;
                last = d.reply().await.unwrap();
            }
        }
        last
    });
    assert_eq!(refused.code, 452, "{refused:?}");
    assert!(refused.lines[0].starts_with("4.3.1"), "{refused:?}");
    assert!(listed(&cfg, &[]).is_empty(), "nothing stored");
    let list = postern(&cfg, &["list"]);
    assert!(stderr(&list).contains("low on space"), "{}", stderr(&list));
    server.stop();
}
