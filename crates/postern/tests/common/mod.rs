//! Shared harness for the tests that run the real `postern` binary: start
//! `serve` (with `--config FILE`, or any arguments in any folder), wait for
//! the `smtp` listener, read its log, reload it, stop it, kill it on drop.
#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_postern");

/// How long anything may take before a test calls it a hang.
pub const PATIENCE: Duration = Duration::from_mins(1);

/// A running `postern serve`; killed on drop.
pub struct Running {
    pub child: Child,
    /// The `smtp` listener's bound address.
    pub addr: SocketAddr,
    stderr_path: PathBuf,
}

impl Running {
    /// `postern serve --config <config>`; its stderr goes to `<config>.stderr`.
    pub fn start(config: &Path) -> Self {
        let stderr = config.with_extension("stderr");
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--config"]).arg(config);
        Self::spawn(cmd, stderr)
    }

    /// `postern <args>` started in `cwd` (no `POSTERN_CONFIG`, no `RUST_LOG`
    /// from the test's environment); its stderr goes to `stderr`.
    pub fn start_in(cwd: &Path, args: &[&str], stderr: PathBuf) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(cwd)
            .env_remove("POSTERN_CONFIG")
            .env_remove("RUST_LOG");
        Self::spawn(cmd, stderr)
    }

    fn spawn(mut cmd: Command, stderr_path: PathBuf) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let deadline = Instant::now() + PATIENCE;
        let addr = loop {
            assert!(Instant::now() < deadline, "server did not start");
            let line = lines
                .next()
                .expect("server exited before listening")
                .unwrap();
            if let Some(rest) = line.strip_prefix("postern: listener smtp on ") {
                break rest.trim().parse().unwrap();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            child,
            addr,
            stderr_path,
        }
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// The server's log (stderr) so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// `kill -HUP`, then waits for the reload's last log line; the reload
    /// must not have failed.
    pub fn hup(&self) {
        let done = |s: &str| {
            s.matches("configuration reloaded").count() + s.matches("reload failed").count()
        };
        let before = done(&self.stderr());
        signal(&self.pid(), "-HUP");
        eventually("the reload", || done(&self.stderr()) > before);
        assert!(
            !self.stderr().contains("reload failed"),
            "{}",
            self.stderr()
        );
    }

    /// SIGTERM, then wait for the process to exit (graceful shutdown).
    pub fn stop(mut self) {
        signal(&self.pid(), "-TERM");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}: {}", self.stderr());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kill <signal> <pid>`.
pub fn signal(pid: &str, signal: &str) {
    assert!(
        Command::new("kill")
            .args([signal, pid])
            .status()
            .unwrap()
            .success()
    );
}

/// Polls `cond` (bounded: only a hang fails).
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
