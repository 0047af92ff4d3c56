//! The free-space floor and the operator's way out of a poisoned spool
//! (`docs/spool-format.md` §4): `admit` refuses below `min_free` and a `SIZE=`
//! that would cross it, `begin` refuses below it, kept files are given back when
//! space runs low, and `recheck` clears the poison only when a test write and
//! fsync succeed. Free space is set through `FaultFs`; measurements are not
//! cached (`space_check_interval` 0), so nothing here depends on time.

#[allow(dead_code)] // each test binary uses part of the support module
mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use postern_spool::{FaultFs, Spool, SpoolError, SpoolOp, SpoolSettings, StdFs};

const MIB: u64 = 1024 * 1024;

struct Setup {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    fs: FaultFs<StdFs>,
    spool: Spool,
}

fn setup(min_free: u64) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let fs = FaultFs::new(StdFs);
    let mut settings = SpoolSettings::new(&root);
    settings.min_free = min_free;
    settings.space_check_interval = Duration::ZERO;
    settings.reuse_min_age = Duration::ZERO;
    let (spool, _) = Spool::open_with_fs(&settings, Arc::new(fs.clone())).expect("open");
    Setup {
        _dir: dir,
        root,
        fs,
        spool,
    }
}

fn commit(spool: &Spool, len: usize) -> Result<postern_spool::QueueId, SpoolError> {
    let mut inc = spool.begin()?;
    inc.write_all(&common::body(1, len))?;
    Ok(inc.commit(common::envelope(1))?.queue_id)
}

fn names(root: &Path, sub: &str) -> Vec<String> {
    std::fs::read_dir(root.join(sub))
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn admit_applies_the_floor_and_the_declared_size() {
    let s = setup(100 * MIB);
    s.fs.set_free_space(Some(150 * MIB));
    s.spool.admit(None).expect("above the floor");
    s.spool
        .admit(Some(50 * MIB))
        .expect("exactly fits above the floor");
    let err = s
        .spool
        .admit(Some(50 * MIB + 1))
        .expect_err("one byte too many");
    assert!(err.is_no_space(), "452 4.3.1: {err}");
    assert!(
        matches!(
            err,
            SpoolError::LowSpace {
                free,
                floor,
                declared: Some(d),
            } if free == 150 * MIB && floor == 100 * MIB && d == 50 * MIB + 1
        ),
        "{err:?}"
    );

    s.fs.set_free_space(Some(100 * MIB - 1));
    let err = s.spool.admit(None).expect_err("below the floor");
    assert!(
        matches!(err, SpoolError::LowSpace { declared: None, .. }),
        "{err:?}"
    );
    assert!(err.is_no_space());
    assert!(err.to_string().contains("floor"), "the log says why: {err}");
    let err = commit(&s.spool, 100).expect_err("begin refuses below the floor too");
    assert!(matches!(err, SpoolError::LowSpace { .. }), "{err:?}");
    assert!(names(&s.root, "tmp").is_empty(), "nothing was created");

    s.fs.set_free_space(Some(200 * MIB));
    commit(&s.spool, 100).expect("space is back");

    // A reload lowers the floor: the same free space admits again.
    s.fs.set_free_space(Some(50 * MIB));
    s.spool.admit(None).expect_err("below 100 MiB");
    s.spool.set_min_free(10 * MIB);
    assert_eq!(s.spool.min_free(), 10 * MIB);
    s.spool.admit(None).expect("above the new floor");
}

#[test]
fn a_floor_of_zero_or_an_unknown_free_space_admits() {
    let s = setup(0);
    s.fs.set_free_space(Some(0));
    s.spool.admit(Some(u64::MAX)).expect("floor 0: off");
    // The real file system answers (statvfs): the tempdir has more than 1 byte.
    let s = setup(1);
    assert!(s.spool.free_space().is_some_and(|f| f > 1));
    s.spool
        .admit(None)
        .expect("a real disk above a 1-byte floor");
}

#[test]
fn a_poisoned_spool_is_refused_at_admit() {
    let s = setup(0);
    s.fs.fail_nth(SpoolOp::SyncFile, 1, libc::EIO);
    commit(&s.spool, 100).expect_err("fsync fails");
    assert!(s.spool.is_poisoned());
    let err = s.spool.admit(Some(10)).expect_err("poisoned");
    assert!(matches!(err, SpoolError::Poisoned), "{err:?}");
    assert!(!err.is_no_space(), "451 4.3.0, not 452");
    let info = s.spool.poison_info().expect("why");
    assert_eq!(info.op, SpoolOp::SyncFile);
    assert!(info.error.contains("Input/output error"), "{}", info.error);
}

#[test]
fn recheck_clears_the_poison_only_when_the_disk_works() {
    let s = setup(0);
    assert_eq!(s.spool.recheck().expect("healthy"), None, "not poisoned");
    s.fs.fail_from(SpoolOp::SyncDir, 1, libc::EIO);
    commit(&s.spool, 100).expect_err("directory fsync fails");
    assert!(s.spool.is_poisoned());

    // The disk is still failing: recheck says so and changes nothing.
    let err = s.spool.recheck().expect_err("fsync still fails");
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
    assert!(s.spool.is_poisoned());
    assert!(names(&s.root, "tmp").is_empty(), "the probe file is gone");

    s.fs.clear_faults();
    let was = s.spool.recheck().expect("disk works again");
    assert_eq!(was.map(|p| p.op), Some(SpoolOp::SyncDir));
    assert!(!s.spool.is_poisoned());
    assert!(s.spool.poison_info().is_none());
    let id = commit(&s.spool, 1000).expect("accepting again");
    assert_eq!(s.spool.list().expect("list").len(), 1);
    s.spool.remove(&id).expect("removal works too");
    assert!(
        names(&s.root, "tmp")
            .iter()
            .all(|n| !n.ends_with(".recheck"))
    );
}

#[test]
fn removal_near_the_floor_gives_space_back() {
    let s = setup(100 * MIB);
    s.fs.set_free_space(Some(10_000 * MIB));
    let a = commit(&s.spool, 1000).expect("a");
    let b = commit(&s.spool, 1000).expect("b");
    s.spool.remove(&a).expect("remove a");
    assert_eq!(
        names(&s.root, "tmp").len(),
        1,
        "plenty of space: a's file is kept"
    );

    // Within the pool's size of the floor: b's file is unlinked, and a's kept
    // file goes too.
    s.fs.set_free_space(Some(150 * MIB));
    s.spool.remove(&b).expect("remove b");
    assert!(
        names(&s.root, "tmp").is_empty(),
        "{:?}",
        names(&s.root, "tmp")
    );
    assert!(names(&s.root, "msg").is_empty());
}

#[test]
fn begin_below_the_floor_gives_back_kept_files_first() {
    let s = setup(100 * MIB);
    s.fs.set_free_space(Some(10_000 * MIB));
    let a = commit(&s.spool, 1000).expect("a");
    s.spool.remove(&a).expect("remove a");
    assert_eq!(names(&s.root, "tmp").len(), 1, "kept");
    s.fs.set_free_space(Some(MIB));
    s.spool.admit(None).expect_err("below the floor");
    assert_eq!(names(&s.root, "tmp").len(), 1, "admit never unlinks");
    commit(&s.spool, 100).expect_err("still below the floor");
    assert!(
        names(&s.root, "tmp").is_empty(),
        "but begin released the kept file"
    );
}
