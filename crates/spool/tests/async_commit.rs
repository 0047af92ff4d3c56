//! The spool's calls for async callers: work on the spool's own I/O threads
//! (`Spool::execute`), commits and removals answered by the committer
//! (`Incoming::commit_then`, `Spool::remove_then`) with the same guarantees as
//! the blocking `commit` / `remove`, and removals sharing the commits'
//! directory fsyncs (`docs/spool-format.md` §3).

#[allow(dead_code)] // each test binary uses part of the support module
mod common;

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use postern_spool::{Envelope, FaultFs, Spool, SpoolError, SpoolOp, SpoolSettings};

/// Generous: only reached if a completion is lost (the test then fails
/// instead of hanging).
const LOST: Duration = Duration::from_secs(30);

type Fs = FaultFs<common::MemFs>;

fn open(settings: &SpoolSettings) -> (Fs, Spool) {
    let fs = FaultFs::new(common::MemFs::new());
    let (spool, _) = Spool::open_with_fs(settings, Arc::new(fs.clone())).expect("open");
    (fs, spool)
}

/// Begins, writes and commits one message on an I/O thread; the result
/// arrives on `tx` from the committer (or from the I/O thread on an early
/// error).
fn commit_async(spool: &Spool, seed: u64, tx: mpsc::Sender<Result<Envelope, SpoolError>>) {
    let s = spool.clone();
    spool.execute(move || {
        let started = s
            .begin()
            .and_then(|mut inc| inc.write_all(&common::body(seed, 4096)).map(|()| inc));
        match started {
            Ok(inc) => inc.commit_then(common::envelope(1), move |r| {
                let _ = tx.send(r);
            }),
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        }
    });
}

fn commit_blocking(spool: &Spool, seed: u64) -> Envelope {
    let mut inc = spool.begin().expect("begin");
    inc.write_all(&common::body(seed, 4096)).expect("write");
    inc.commit(common::envelope(1)).expect("commit")
}

#[test]
fn async_commits_are_durable_listed_and_share_directory_fsyncs() {
    let (fs, spool) = open(&SpoolSettings::new("/spool"));
    // A slow directory fsync, so that commits queue up behind it.
    fs.set_delay(SpoolOp::SyncDir, Duration::from_millis(2));
    let (tx, rx) = mpsc::channel();
    let n = 100;
    for seed in 0..n {
        commit_async(&spool, seed, tx.clone());
    }
    let mut ids = Vec::new();
    for _ in 0..n {
        let env = rx.recv_timeout(LOST).expect("answered").expect("committed");
        ids.push(env.queue_id);
    }
    ids.sort();
    let listed: Vec<_> = spool
        .list()
        .expect("list")
        .into_iter()
        .map(|e| e.queue_id)
        .collect();
    assert_eq!(listed, ids, "every acknowledged message is listed");
    assert_eq!(fs.count(SpoolOp::SyncFile), n, "one file fsync per commit");
    let dir_syncs = fs.count(SpoolOp::SyncDir);
    assert!(
        dir_syncs * 2 <= n,
        "{dir_syncs} directory fsyncs for {n} commits"
    );
}

#[test]
fn a_failed_directory_fsync_answers_the_async_commit_with_an_error() {
    let (fs, spool) = open(&SpoolSettings::new("/spool"));
    fs.fail_nth(SpoolOp::SyncDir, 1, libc::EIO);
    let (tx, rx) = mpsc::channel();
    commit_async(&spool, 1, tx.clone());
    let err = rx
        .recv_timeout(LOST)
        .expect("answered")
        .expect_err("not durable");
    assert!(
        matches!(
            err,
            SpoolError::Io {
                op: SpoolOp::SyncDir,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(spool.list().expect("list").is_empty(), "taken back");
    assert!(spool.is_poisoned());
    // Poisoned: the next one is refused at once.
    commit_async(&spool, 2, tx);
    let err = rx
        .recv_timeout(LOST)
        .expect("answered")
        .expect_err("refused");
    assert!(matches!(err, SpoolError::Poisoned), "{err:?}");
}

#[test]
fn a_removal_rides_on_the_next_commits_directory_fsync() {
    let mut settings = SpoolSettings::new("/spool");
    // Far longer than the test: the removal is made durable by the commit.
    settings.removal_window = Duration::from_hours(1);
    let (fs, spool) = open(&settings);
    let old = commit_blocking(&spool, 1);
    let before = fs.count(SpoolOp::SyncDir);
    let (tx, rx) = mpsc::channel();
    spool.remove_then(&old.queue_id, move |r| {
        let _ = tx.send(r);
    });
    assert_eq!(
        fs.count(SpoolOp::SyncDir),
        before,
        "a removal alone does not start a directory fsync"
    );
    let new = commit_blocking(&spool, 2);
    rx.recv_timeout(LOST)
        .expect("answered")
        .expect("removal durable");
    assert_eq!(
        fs.count(SpoolOp::SyncDir),
        before + 1,
        "one directory fsync for the commit and the removal"
    );
    assert_eq!(spool.list().expect("list"), vec![new]);
}

#[test]
fn a_lone_removal_is_made_durable_after_the_window() {
    let mut settings = SpoolSettings::new("/spool");
    settings.removal_window = Duration::from_millis(20);
    let (fs, spool) = open(&settings);
    let env = commit_blocking(&spool, 1);
    let before = fs.count(SpoolOp::SyncDir);
    let (tx, rx) = mpsc::channel();
    spool.remove_then(&env.queue_id, move |r| {
        let _ = tx.send(r);
    });
    rx.recv_timeout(LOST)
        .expect("answered")
        .expect("removal durable");
    assert_eq!(fs.count(SpoolOp::SyncDir), before + 1);
    assert!(spool.list().expect("list").is_empty());
}

#[test]
fn a_removal_without_a_window_is_durable_by_itself() {
    let mut settings = SpoolSettings::new("/spool");
    settings.removal_window = Duration::ZERO;
    let (_fs, spool) = open(&settings);
    let env = commit_blocking(&spool, 1);
    let (tx, rx) = mpsc::channel();
    spool.remove_then(&env.queue_id, move |r| {
        let _ = tx.send(r);
    });
    rx.recv_timeout(LOST)
        .expect("answered")
        .expect("removal durable");
    // A second removal of the same message finds nothing.
    let (tx, rx) = mpsc::channel();
    spool.remove_then(&env.queue_id, move |r| {
        let _ = tx.send(r);
    });
    let err = rx.recv_timeout(LOST).expect("answered").expect_err("gone");
    assert!(matches!(err, SpoolError::NotFound(_)), "{err:?}");
}

#[test]
fn a_removal_on_a_poisoned_spool_is_answered_with_the_error() {
    let (fs, spool) = open(&SpoolSettings::new("/spool"));
    let env = commit_blocking(&spool, 1);
    fs.fail_nth(SpoolOp::SyncFile, 1, libc::EIO);
    let mut inc = spool.begin().expect("begin");
    inc.write_all(b"x\r\n").expect("write");
    inc.commit(common::envelope(1))
        .expect_err("file fsync fails");
    assert!(spool.is_poisoned());
    let (tx, rx) = mpsc::channel();
    spool.remove_then(&env.queue_id, move |r| {
        let _ = tx.send(r);
    });
    let err = rx
        .recv_timeout(LOST)
        .expect("answered")
        .expect_err("not known durable");
    assert!(matches!(err, SpoolError::Poisoned), "{err:?}");
    assert!(spool.list().expect("list").is_empty(), "taken away anyway");
}

#[test]
fn a_panicking_task_does_not_take_an_io_thread_with_it() {
    let mut settings = SpoolSettings::new("/spool");
    settings.io_threads = 1;
    let (_fs, spool) = open(&settings);
    spool.execute(|| panic!("a task fails"));
    let (tx, rx) = mpsc::channel();
    spool.execute(move || {
        let _ = tx.send(std::thread::current().name().map(str::to_owned));
    });
    let name = rx.recv_timeout(LOST).expect("the thread still runs tasks");
    assert_eq!(name.as_deref(), Some("spool-io-0"));
}
