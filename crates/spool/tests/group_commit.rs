//! Group commit: concurrent commits share directory fsyncs, and each commit still
//! returns only after one that started after its rename.

#[allow(dead_code)] // each test binary uses part of the support module
mod common;

use std::sync::Arc;
use std::time::Duration;

use postern_spool::{FaultFs, Spool, SpoolOp, SpoolSettings, StdFs};

/// Commit `threads × per_thread` messages concurrently; return (commits, dir fsyncs).
fn concurrent<F: postern_spool::SpoolFs>(
    fs: &FaultFs<F>,
    spool: &Spool,
    threads: usize,
    per_thread: usize,
) -> (u64, u64) {
    let before = fs.count(SpoolOp::SyncDir);
    let spool_before = spool.dir_syncs();
    std::thread::scope(|s| {
        for t in 0..threads {
            let spool = spool.clone();
            s.spawn(move || {
                for m in 0..per_thread {
                    let mut inc = spool.begin().expect("begin");
                    inc.write_all(&common::body((t * 100 + m) as u64, 10 * 1024))
                        .expect("write");
                    inc.commit(common::envelope(1)).expect("commit");
                }
            });
        }
    });
    let dir_syncs = fs.count(SpoolOp::SyncDir) - before;
    assert_eq!(
        dir_syncs,
        spool.dir_syncs() - spool_before,
        "the committer counts what it does"
    );
    assert_eq!(spool.list().expect("list").len(), threads * per_thread);
    ((threads * per_thread) as u64, dir_syncs)
}

#[test]
fn fifty_sessions_share_directory_fsyncs_on_a_slow_disk() {
    // 2 ms per directory fsync, like cloud block storage.
    let fs = FaultFs::new(common::MemFs::new());
    fs.set_delay(SpoolOp::SyncDir, Duration::from_millis(2));
    let (spool, _) =
        Spool::open_with_fs(&SpoolSettings::new("/spool"), Arc::new(fs.clone())).expect("open");
    let (commits, dir_syncs) = concurrent(&fs, &spool, 50, 4);
    eprintln!("{commits} commits, {dir_syncs} directory fsyncs");
    assert!(
        dir_syncs * 3 < commits,
        "{dir_syncs} dir fsyncs for {commits} commits"
    );
    assert_eq!(
        fs.count(SpoolOp::SyncFile),
        commits,
        "one file fsync per commit"
    );
}

#[test]
fn concurrent_commits_share_directory_fsyncs_on_real_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fs = FaultFs::new(StdFs);
    let (spool, _) =
        Spool::open_with_fs(&SpoolSettings::new(dir.path()), Arc::new(fs.clone())).expect("open");
    let (commits, dir_syncs) = concurrent(&fs, &spool, 16, 5);
    eprintln!("{commits} commits, {dir_syncs} directory fsyncs");
    assert!(
        dir_syncs < commits,
        "{dir_syncs} dir fsyncs for {commits} commits"
    );
}

#[test]
fn a_single_session_gets_one_directory_fsync_per_commit() {
    // No one to share with: each commit waits for its own directory fsync (the
    // committer never acknowledges a rename with an fsync that started before it).
    let fs = FaultFs::new(common::MemFs::new());
    let (spool, _) =
        Spool::open_with_fs(&SpoolSettings::new("/spool"), Arc::new(fs.clone())).expect("open");
    let (commits, dir_syncs) = concurrent(&fs, &spool, 1, 20);
    assert_eq!(dir_syncs, commits);
}

#[test]
fn a_commit_window_batches_more() {
    let fs = FaultFs::new(common::MemFs::new());
    let mut settings = SpoolSettings::new("/spool");
    settings.group_commit_window = Duration::from_millis(5);
    let (spool, _) = Spool::open_with_fs(&settings, Arc::new(fs.clone())).expect("open");
    let (commits, dir_syncs) = concurrent(&fs, &spool, 8, 5);
    eprintln!("{commits} commits, {dir_syncs} directory fsyncs with a 5 ms window");
    assert!(
        dir_syncs * 2 <= commits,
        "{dir_syncs} dir fsyncs for {commits} commits"
    );
}
