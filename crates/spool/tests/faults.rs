//! Fault injection at each step of the commit protocol (on a real disk, through
//! `FaultFs`): the right error, nothing acknowledged or listed, nothing left in
//! `tmp/`, and the spool poisoned after an fsync failure — and only then.

#[allow(dead_code)] // each test binary uses part of the support module
mod common;

use std::path::Path;
use std::sync::Arc;

use postern_spool::{FaultFs, Spool, SpoolError, SpoolOp, SpoolSettings, StdFs};

struct Setup {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    fs: FaultFs<StdFs>,
    spool: Spool,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let fs = FaultFs::new(StdFs);
    let (spool, _) =
        Spool::open_with_fs(&SpoolSettings::new(&root), Arc::new(fs.clone())).expect("open");
    Setup {
        _dir: dir,
        root,
        fs,
        spool,
    }
}

fn count(root: &Path, sub: &str) -> usize {
    std::fs::read_dir(root.join(sub)).expect("read_dir").count()
}

/// Begin, write `len` bytes, commit.
fn try_commit(spool: &Spool, len: usize) -> Result<postern_spool::Envelope, SpoolError> {
    let mut inc = spool.begin()?;
    inc.write_all(&common::body(1, len))?;
    inc.commit(common::envelope(1))
}

fn assert_nothing_kept(s: &Setup) {
    assert_eq!(count(&s.root, "tmp"), 0, "tmp/ cleaned up");
    assert_eq!(count(&s.root, "msg"), 0, "nothing in msg/");
    assert!(s.spool.list().expect("list").is_empty(), "nothing listed");
}

fn assert_still_usable(s: &Setup) {
    assert!(!s.spool.is_poisoned());
    let env = try_commit(&s.spool, 1000).expect("a later commit succeeds");
    assert_eq!(s.spool.list().expect("list"), vec![env]);
}

fn assert_poisoned(s: &Setup) {
    assert!(s.spool.is_poisoned());
    assert!(matches!(s.spool.begin(), Err(SpoolError::Poisoned)));
    assert!(matches!(
        try_commit(&s.spool, 10),
        Err(SpoolError::Poisoned)
    ));
    assert_eq!(count(&s.root, "tmp"), 0);
}

#[test]
fn write_error_in_the_middle_of_the_body() {
    let s = setup();
    s.fs.fail_nth(SpoolOp::Write, 2, libc::EIO);
    let mut inc = s.spool.begin().expect("begin");
    // The first 64 KiB buffer flush succeeds, the second fails.
    let body = common::body(1, 300_000);
    let err = body
        .chunks(10_000)
        .find_map(|c| inc.write_all(c).err())
        .expect("a write fails");
    assert!(
        matches!(
            err,
            SpoolError::Io {
                op: SpoolOp::Write,
                ..
            }
        ),
        "{err}"
    );
    // Once failed, always failed.
    assert!(inc.write_all(b"more").is_err());
    let err = inc
        .commit(common::envelope(1))
        .expect_err("commit after a write error");
    assert!(
        matches!(
            err,
            SpoolError::Io {
                op: SpoolOp::Write,
                ..
            }
        ),
        "{err}"
    );
    assert_nothing_kept(&s);
    assert_still_usable(&s);
}

#[test]
fn write_error_at_commit_of_a_small_message() {
    let s = setup();
    // A small body stays in the buffer: the first write reaches the file at commit.
    s.fs.fail_nth(SpoolOp::Write, 1, libc::EIO);
    let err = try_commit(&s.spool, 500).expect_err("commit fails");
    assert!(
        matches!(
            err,
            SpoolError::Io {
                op: SpoolOp::Write,
                ..
            }
        ),
        "{err}"
    );
    assert_nothing_kept(&s);
    assert_still_usable(&s);
}

#[test]
fn enospc_on_write_is_no_space_and_not_sticky() {
    let s = setup();
    s.fs.fail_nth(SpoolOp::Write, 1, libc::ENOSPC);
    let err = try_commit(&s.spool, 200_000).expect_err("no space");
    assert!(err.is_no_space(), "{err}");
    assert!(
        matches!(
            err,
            SpoolError::NoSpace {
                op: SpoolOp::Write,
                ..
            }
        ),
        "{err}"
    );
    assert_nothing_kept(&s);
    assert_still_usable(&s);
}

#[test]
fn edquot_on_create_is_no_space() {
    let s = setup();
    s.fs.fail_nth(SpoolOp::Create, 1, libc::EDQUOT);
    let err = s.spool.begin().expect_err("quota");
    assert!(
        matches!(
            err,
            SpoolError::NoSpace {
                op: SpoolOp::Create,
                ..
            }
        ),
        "{err}"
    );
    assert_nothing_kept(&s);
    assert_still_usable(&s);
}

#[test]
fn file_fsync_failure_poisons() {
    let s = setup();
    s.fs.fail_nth(SpoolOp::SyncFile, 1, libc::EIO);
    let err = try_commit(&s.spool, 5000).expect_err("fsync fails");
    assert!(
        matches!(
            err,
            SpoolError::Io {
                op: SpoolOp::SyncFile,
                ..
            }
        ),
        "{err}"
    );
    assert_nothing_kept(&s);
    assert_poisoned(&s);
}

#[test]
fn enospc_on_file_fsync_is_no_space_and_poisons() {
    let s = setup();
    s.fs.fail_nth(SpoolOp::SyncFile, 1, libc::ENOSPC);
    let err = try_commit(&s.spool, 5000).expect_err("fsync fails");
    assert!(
        matches!(
            err,
            SpoolError::NoSpace {
                op: SpoolOp::SyncFile,
                ..
            }
        ),
        "{err}"
    );
    assert_nothing_kept(&s);
    assert_poisoned(&s);
}

#[test]
fn rename_failure_is_not_sticky() {
    let s = setup();
    s.fs.fail_nth(SpoolOp::Rename, 1, libc::EIO);
    let err = try_commit(&s.spool, 5000).expect_err("rename fails");
    assert!(
        matches!(
            err,
            SpoolError::Io {
                op: SpoolOp::Rename,
                ..
            }
        ),
        "{err}"
    );
    assert_nothing_kept(&s);
    assert_still_usable(&s);
}

#[test]
fn dir_fsync_failure_poisons_and_takes_the_message_back() {
    let s = setup();
    let good = try_commit(&s.spool, 100).expect("first commit");
    s.fs.fail_nth(SpoolOp::SyncDir, 1, libc::EIO);
    let err = try_commit(&s.spool, 5000).expect_err("dir fsync fails");
    assert!(
        matches!(
            err,
            SpoolError::Io {
                op: SpoolOp::SyncDir,
                ..
            }
        ),
        "{err}"
    );
    // Only the acknowledged message is listed.
    assert_eq!(s.spool.list().expect("list"), vec![good.clone()]);
    assert_eq!(count(&s.root, "msg"), 1);
    assert_eq!(count(&s.root, "tmp"), 0);
    assert_poisoned(&s);
    // Removal still unlinks, but says it is not known to be durable.
    assert!(matches!(
        s.spool.remove(&good.queue_id),
        Err(SpoolError::Poisoned)
    ));
    assert!(s.spool.list().expect("list").is_empty());
    // Reads keep working on a poisoned spool.
    assert!(s.spool.scan().is_ok());

    // A restart recovers and accepts mail again.
    let Setup {
        _dir, root, spool, ..
    } = s;
    drop(spool);
    let (spool, report) = Spool::open(&SpoolSettings::new(&root)).expect("restart");
    assert!(report.corrupt.is_empty());
    assert!(!spool.is_poisoned());
    try_commit(&spool, 10).expect("commit after restart");
}

#[test]
fn every_concurrent_waiter_of_a_failed_batch_gets_an_error() {
    // Deterministic under any load: one commit is acknowledged first; then every
    // directory fsync fails, so whichever batches the 16 concurrent commits fall
    // into, every waiter of a failed batch must get an error and none an ack.
    let s = setup();
    let first = try_commit(&s.spool, 2000).expect("first commit");
    s.fs.set_delay(SpoolOp::SyncDir, std::time::Duration::from_millis(20));
    s.fs.fail_from(SpoolOp::SyncDir, 1, libc::EIO);
    let results: Vec<Result<postern_spool::Envelope, SpoolError>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..16)
            .map(|_| sc.spawn(|| try_commit(&s.spool, 2000)))
            .collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    for r in &results {
        match r {
            Ok(env) => panic!(
                "{} acknowledged although its directory fsync failed",
                env.queue_id
            ),
            Err(e) => assert!(
                matches!(
                    e,
                    SpoolError::Io {
                        op: SpoolOp::SyncDir,
                        ..
                    } | SpoolError::Poisoned
                ),
                "{e}"
            ),
        }
    }
    let listed = s.spool.list().expect("list");
    assert_eq!(
        listed,
        vec![first],
        "only the acknowledged message is listed"
    );
    assert!(s.spool.is_poisoned());
}

#[test]
fn io_error_during_recovery_stops_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (spool, _) = Spool::open(&SpoolSettings::new(dir.path())).expect("open");
        try_commit(&spool, 100).expect("commit");
    }
    let fs = FaultFs::new(StdFs);
    fs.fail_nth(SpoolOp::Open, 1, libc::EIO);
    let err = Spool::open_with_fs(&SpoolSettings::new(dir.path()), Arc::new(fs))
        .expect_err("EIO is not evidence of damage");
    assert!(
        matches!(
            err,
            SpoolError::Io {
                op: SpoolOp::Open,
                ..
            }
        ),
        "{err}"
    );
    let (spool, report) = Spool::open(&SpoolSettings::new(dir.path())).expect("open");
    assert_eq!(report.recovered, 1, "the file was not moved aside");
    assert!(report.corrupt.is_empty());
    drop(spool);
}

/// A file system whose directory fsync panics once armed.
struct PanickingDirSync {
    armed: std::sync::atomic::AtomicBool,
}

impl postern_spool::SpoolFs for PanickingDirSync {
    fn create_dir_all(&self, path: &Path) -> std::io::Result<()> {
        StdFs.create_dir_all(path)
    }
    fn create_new(&self, path: &Path) -> std::io::Result<Box<dyn postern_spool::WriteFile>> {
        StdFs.create_new(path)
    }
    fn open(&self, path: &Path) -> std::io::Result<Box<dyn postern_spool::ReadFile>> {
        StdFs.open(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        StdFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        StdFs.remove_file(path)
    }
    fn read_dir(&self, path: &Path) -> std::io::Result<Vec<std::ffi::OsString>> {
        StdFs.read_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        assert!(
            !self.armed.load(std::sync::atomic::Ordering::SeqCst),
            "injected panic in sync_dir"
        );
        StdFs.sync_dir(path)
    }
}

#[test]
fn a_panicking_committer_poisons_instead_of_hanging() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fs = Arc::new(PanickingDirSync {
        armed: std::sync::atomic::AtomicBool::new(false),
    });
    let (spool, _) =
        Spool::open_with_fs(&SpoolSettings::new(dir.path()), fs.clone()).expect("open");
    fs.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let (tx, rx) = std::sync::mpsc::channel();
    let s2 = spool.clone();
    std::thread::spawn(move || {
        let _ = tx.send(try_commit(&s2, 100));
    });
    let result = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("commit returns instead of hanging");
    assert!(result.is_err(), "not acknowledged");
    assert!(spool.is_poisoned());
    assert!(spool.list().expect("list").is_empty());
}
