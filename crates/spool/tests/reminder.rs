//! While the spool is poisoned the log says so again and again (once a minute
//! by default; a few milliseconds here), with the way out; after `recheck`
//! the committer serves commits again.
//! Its own test binary: it installs the process-wide log subscriber that the
//! committer thread writes to.

#[allow(dead_code)] // each test binary uses part of the support module
mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postern_spool::{FaultFs, Spool, SpoolOp, SpoolSettings, StdFs};

/// The log, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn reminders(&self) -> usize {
        String::from_utf8_lossy(&self.0.lock().expect("log"))
            .matches("spool still poisoned")
            .count()
    }
}

/// Polls `cond` (bounded: only a hang fails).
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_mins(1);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_poisoned_spool_is_repeated_in_the_log_until_it_is_cleared() {
    let log = Captured::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let dir = tempfile::tempdir().expect("tempdir");
    let fs = FaultFs::new(StdFs);
    let mut settings = SpoolSettings::new(dir.path());
    settings.poison_reminder = Duration::from_millis(10);
    let (spool, _) = Spool::open_with_fs(&settings, Arc::new(fs.clone())).expect("open");
    fs.fail_nth(SpoolOp::SyncFile, 1, libc::EIO);
    let mut inc = spool.begin().expect("begin");
    inc.write_all(&common::body(1, 100)).expect("write");
    inc.commit(common::envelope(1)).expect_err("fsync fails");
    assert!(spool.is_poisoned());

    eventually("two reminders", || log.reminders() >= 2);
    let text = String::from_utf8_lossy(&log.0.lock().expect("log")).into_owned();
    let line = text
        .lines()
        .find(|l| l.contains("spool still poisoned"))
        .expect("a reminder");
    assert!(line.contains("postern spool recheck"), "{line}");
    assert!(line.contains("fsync file"), "{line}");

    spool.recheck().expect("the disk works again");
    assert!(!spool.is_poisoned());
    // The committer serves commits again after waiting with a timeout.
    let mut inc = spool.begin().expect("begin");
    inc.write_all(&common::body(2, 100)).expect("write");
    inc.commit(common::envelope(1)).expect("commit");
}
