//! `postern config check` with `[counters] backend = "redis"` reads one key
//! through the store `serve` would open: an unreachable Redis is a warning
//! (the server fails open, so it is not an error; `--strict` makes it exit
//! 1), a reachable one is named; the URL's password is never printed.
//!
//! The reachable case starts its own `redis-server` on 127.0.0.1 (skipped
//! with a message when it is not installed, unless `POSTERN_REQUIRE_TOOLS`).

#![allow(clippy::unwrap_used)]

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::BIN;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_config(dir: &Path, url: &str) -> PathBuf {
    let cfg = format!(
        "data_dir = \"{data}\"\nhostname = \"mx.test.example\"\n\n[[listener]]\nname = \"smtp\"\n\
         address = \"127.0.0.1:0\"\nkind = \"smtp\"\n\n[relay]\naccepted_domains = [\"example.com\"]\n\n\
         [counters]\nbackend = \"redis\"\nredis_url = \"{url}\"\n",
        data = dir.join("data").display()
    );
    let p = dir.join("postern.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

fn check(config: &Path, strict: bool) -> (Output, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["config", "check", "--config"]).arg(config);
    if strict {
        cmd.arg("--strict");
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

#[test]
fn unreachable_redis_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let p = write_config(dir.path(), &format!("redis://:hunter2@127.0.0.1:{port}/0"));
    let (out, text) = check(&p, false);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "warning: counters: redis at redis://:<secret>@127.0.0.1:{port}/0: "
        )),
        "{text}"
    );
    assert!(text.contains("[counters.unavailable: "), "{text}");
    assert!(text.contains("ok: "), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    let (out, text) = check(&p, true);
    assert_eq!(out.status.code(), Some(1), "{text}");
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn reachable_redis_is_named() {
    if Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        assert!(
            std::env::var_os("POSTERN_REQUIRE_TOOLS").is_none(),
            "redis-server is required (POSTERN_REQUIRE_TOOLS is set)"
        );
        eprintln!("skipped: redis-server not installed (apt-get install redis-server)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = Server(
        Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let p = write_config(dir.path(), &format!("redis://127.0.0.1:{port}/0"));
    // Ready when config check can reach it.
    let answers =
        format!("counters: redis at redis://127.0.0.1:{port}/0 answers (key prefix \"postern:\")");
    let mut last = String::new();
    for _ in 0..100 {
        let (out, text) = check(&p, false);
        assert!(out.status.success(), "{text}");
        if text.contains(&answers) {
            assert!(!text.contains("warning: counters"), "{text}");
            return;
        }
        last = text;
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("config check never reached redis-server: {last}");
}
