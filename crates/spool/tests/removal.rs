//! Removal and file reuse (`docs/spool-format.md` §3 "Removal", "File reuse"):
//!
//! - `state/<id>` is unlinked only after the directory fsync that makes the
//!   removal of `msg/<id>` durable, and kept when that fsync fails, so a message a
//!   crash brings back comes back with its recorded outcomes (no second delivery);
//! - delivered messages' files are renamed into `tmp/` and rewritten for new
//!   messages (same inode), cut to the new length, never before they have been
//!   kept `reuse_min_age`, never more than `reuse_max_files`, never when the
//!   removal is not durable, and not at all on a file system without rewrite;
//! - the crash model: commits and removals (with reuse) cut by a crash at every
//!   operation; every acknowledged message not yet removed is recovered intact, no
//!   message whose removal returned `Ok` comes back, nothing is corrupt.

#[allow(dead_code)] // each test binary uses part of the support module
mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::MemFs;
use postern_spool::{
    FaultFs, QueueId, ReadFile, Spool, SpoolError, SpoolFs, SpoolOp, SpoolSettings, StdFs,
    WriteFile,
};

fn settings(root: &Path, min_age: Duration, max_files: usize) -> SpoolSettings {
    let mut s = SpoolSettings::new(root);
    s.reuse_min_age = min_age;
    s.reuse_max_files = max_files;
    s
}

fn commit(spool: &Spool, seed: u64, len: usize) -> QueueId {
    let mut inc = spool.begin().expect("begin");
    inc.write_all(&common::body(seed, len)).expect("write");
    inc.commit(common::envelope(1)).expect("commit").queue_id
}

fn body_of(spool: &Spool, id: &QueueId) -> Vec<u8> {
    let mut body = Vec::new();
    spool
        .open_message(id)
        .expect("open")
        .read_to_end(&mut body)
        .expect("read");
    body
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn write_state(root: &Path, id: &QueueId) -> PathBuf {
    let path = root.join("state").join(id.as_str());
    std::fs::write(&path, b"{\"v\":1}\n").expect("state file");
    path
}

/// A file system that logs what happens to which path, on the real disk, and
/// supports no rewriting (the trait's default).
#[derive(Clone, Default)]
struct Logged {
    log: Arc<Mutex<Vec<(&'static str, PathBuf)>>>,
}

impl Logged {
    fn note(&self, op: &'static str, path: &Path) {
        self.log.lock().expect("log").push((op, path.to_path_buf()));
    }
    fn position(&self, op: &str, path: &Path) -> Option<usize> {
        self.log
            .lock()
            .expect("log")
            .iter()
            .rposition(|(o, p)| *o == op && p == path)
    }
}

impl SpoolFs for Logged {
    fn create_dir_all(&self, path: &Path) -> std::io::Result<()> {
        StdFs.create_dir_all(path)
    }
    fn create_new(&self, path: &Path) -> std::io::Result<Box<dyn WriteFile>> {
        self.note("create", path);
        StdFs.create_new(path)
    }
    fn open(&self, path: &Path) -> std::io::Result<Box<dyn ReadFile>> {
        StdFs.open(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.note("rename-from", from);
        StdFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        self.note("remove", path);
        StdFs.remove_file(path)
    }
    fn read_dir(&self, path: &Path) -> std::io::Result<Vec<OsString>> {
        StdFs.read_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        self.note("sync-dir", path);
        StdFs.sync_dir(path)
    }
}

#[test]
fn state_is_removed_only_after_the_directory_fsync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let fs = Logged::default();
    for max_files in [0, 8] {
        let (spool, _) = Spool::open_with_fs(
            &settings(root, Duration::ZERO, max_files),
            Arc::new(fs.clone()),
        )
        .expect("open");
        let id = commit(&spool, 1, 500);
        let state = write_state(root, &id);
        let msg = root.join("msg").join(id.as_str());
        spool.remove(&id).expect("remove");
        assert!(!state.exists(), "state removed");
        let taken = fs
            .position("rename-from", &msg)
            .or_else(|| fs.position("remove", &msg))
            .expect("msg/<id> taken away");
        let synced = fs
            .position("sync-dir", &root.join("msg"))
            .expect("msg/ fsynced");
        let unlinked = fs.position("remove", &state).expect("state unlinked");
        assert!(
            taken < synced && synced < unlinked,
            "max_files {max_files}: msg/<id> away ({taken}), msg/ fsync ({synced}), then state ({unlinked})"
        );
    }
}

#[test]
fn state_survives_a_removal_that_is_not_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let fs = FaultFs::new(StdFs);
    let (spool, _) = Spool::open_with_fs(&settings(root, Duration::ZERO, 8), Arc::new(fs.clone()))
        .expect("open");
    let id = commit(&spool, 1, 500);
    let state = write_state(root, &id);
    fs.fail_nth(SpoolOp::SyncDir, 1, libc::EIO);
    let err = spool.remove(&id).expect_err("the directory fsync fails");
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
    assert!(spool.list().expect("list").is_empty(), "no longer listed");
    assert!(
        state.exists(),
        "a crash may bring the message back: keep its state"
    );
    assert!(
        names(&root.join("tmp")).is_empty(),
        "a file whose removal is not durable is not kept for reuse"
    );
}

#[test]
fn delivered_files_are_rewritten_for_new_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let fs = FaultFs::new(StdFs);
    let (spool, _) = Spool::open_with_fs(&settings(root, Duration::ZERO, 8), Arc::new(fs.clone()))
        .expect("open");
    // A long message, then a short one into its file (the old tail must go),
    // then a long one into the short one's.
    let mut previous = commit(&spool, 1, 300_000);
    for (seed, len) in [(2_u64, 1_000_usize), (3, 200_000), (4, 0)] {
        let inode = std::fs::metadata(root.join("msg").join(previous.as_str()))
            .expect("metadata")
            .ino();
        spool.remove(&previous).expect("remove");
        assert_eq!(
            names(&root.join("tmp")),
            vec![format!("{previous}.reuse")],
            "kept in tmp/"
        );
        let creates = fs.count(SpoolOp::Create);
        let id = commit(&spool, seed, len);
        assert_eq!(fs.count(SpoolOp::Create), creates + 1, "one open");
        assert!(
            names(&root.join("tmp")).is_empty(),
            "the kept file was used"
        );
        let path = root.join("msg").join(id.as_str());
        assert_eq!(
            std::fs::metadata(&path).expect("new").ino(),
            inode,
            "same inode"
        );
        assert_eq!(body_of(&spool, &id), common::body(seed, len));
        let listing = spool.scan().expect("scan");
        assert!(listing.invalid.is_empty(), "{:?}", listing.invalid);
        assert_eq!(listing.envelopes.len(), 1);
        previous = id;
    }
    // A restart finds exactly the last message, valid.
    drop(spool);
    let (spool, report) = Spool::open(&SpoolSettings::new(root)).expect("reopen");
    assert!(report.corrupt.is_empty());
    assert_eq!(report.recovered, 1);
    assert_eq!(body_of(&spool, &previous), common::body(4, 0));
}

#[test]
fn kept_files_wait_their_minimum_age_and_are_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    // An hour: nothing is old enough during this test, whatever the load.
    let (spool, _) = Spool::open(&settings(root, Duration::from_hours(1), 2)).expect("open");
    let ids: Vec<QueueId> = (0..4).map(|i| commit(&spool, i, 2_000)).collect();
    for id in &ids {
        spool.remove(id).expect("remove");
    }
    assert_eq!(
        names(&root.join("tmp")),
        vec![format!("{}.reuse", ids[0]), format!("{}.reuse", ids[1])],
        "at most reuse_max_files kept; the others unlinked"
    );
    let id = commit(&spool, 9, 100);
    assert_eq!(
        names(&root.join("tmp")).len(),
        2,
        "too young: a new file was made"
    );
    assert_eq!(body_of(&spool, &id), common::body(9, 100));
    // A clean shutdown leaves tmp/ empty.
    drop(spool);
    assert!(names(&root.join("tmp")).is_empty());
}

#[test]
fn reuse_off_or_unsupported_unlinks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let (spool, _) = Spool::open(&settings(root, Duration::ZERO, 0)).expect("open");
    let id = commit(&spool, 1, 100);
    spool.remove(&id).expect("remove");
    assert!(
        names(&root.join("tmp")).is_empty(),
        "reuse_max_files = 0: unlinked"
    );
    drop(spool);

    // `Logged` cannot rewrite: the first kept file is discarded at the next
    // begin, and from then on removal unlinks.
    let (spool, _) = Spool::open_with_fs(
        &settings(root, Duration::ZERO, 8),
        Arc::new(Logged::default()),
    )
    .expect("open");
    let a = commit(&spool, 1, 100);
    spool.remove(&a).expect("remove");
    let b = commit(&spool, 2, 100);
    assert_eq!(body_of(&spool, &b), common::body(2, 100));
    assert!(names(&root.join("tmp")).is_empty());
    spool.remove(&b).expect("remove");
    assert!(names(&root.join("tmp")).is_empty(), "unlinked, not kept");
}

/// The real disk, with the fsync of `msg/` held at a gate while armed: the test
/// sees the committer inside that fsync and decides when it ends.
#[derive(Clone, Default)]
struct Gated {
    gate: Arc<Gate>,
}

#[derive(Default)]
struct Gate {
    state: Mutex<(bool, bool)>, // (armed, committer waiting at the gate)
    changed: std::sync::Condvar,
}

impl Gate {
    fn arm(&self) {
        *self.state.lock().expect("gate") = (true, false);
    }
    fn wait_for_committer(&self) {
        let mut st = self.state.lock().expect("gate");
        while !st.1 {
            st = self.changed.wait(st).expect("gate");
        }
    }
    fn open(&self) {
        *self.state.lock().expect("gate") = (false, false);
        self.changed.notify_all();
    }
    fn pass(&self) {
        let mut st = self.state.lock().expect("gate");
        if st.0 {
            st.1 = true;
            self.changed.notify_all();
            while st.0 {
                st = self.changed.wait(st).expect("gate");
            }
        }
    }
}

struct OpenOnDrop<'a>(&'a Gate);

impl Drop for OpenOnDrop<'_> {
    fn drop(&mut self) {
        self.0.open();
    }
}

impl SpoolFs for Gated {
    fn create_dir_all(&self, path: &Path) -> std::io::Result<()> {
        StdFs.create_dir_all(path)
    }
    fn create_new(&self, path: &Path) -> std::io::Result<Box<dyn WriteFile>> {
        StdFs.create_new(path)
    }
    fn open(&self, path: &Path) -> std::io::Result<Box<dyn ReadFile>> {
        StdFs.open(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        StdFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        StdFs.remove_file(path)
    }
    fn read_dir(&self, path: &Path) -> std::io::Result<Vec<OsString>> {
        StdFs.read_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        if path.ends_with("msg") {
            self.gate.pass();
        }
        StdFs.sync_dir(path)
    }
    fn open_rewrite(&self, path: &Path) -> std::io::Result<Option<Box<dyn WriteFile>>> {
        StdFs.open_rewrite(path)
    }
}

#[test]
fn a_file_is_not_reused_before_its_removal_is_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let fs = Gated::default();
    let (spool, _) = Spool::open_with_fs(&settings(root, Duration::ZERO, 8), Arc::new(fs.clone()))
        .expect("open");
    let old = commit(&spool, 1, 1_000);
    fs.gate.arm();
    std::thread::scope(|s| {
        let remover = s.spawn(|| spool.remove(&old));
        // Opens the gate even if an assertion fails, so the scope can end.
        let _open = OpenOnDrop(&fs.gate);
        // The committer is inside the fsync that makes the removal durable; the
        // file is already renamed into tmp/, but must not be handed out yet.
        fs.gate.wait_for_committer();
        let incoming = spool.begin().expect("begin");
        let new = *incoming.queue_id();
        let mut expected = vec![format!("{old}.reuse"), new.to_string()];
        expected.sort();
        assert_eq!(
            names(&root.join("tmp")),
            expected,
            "a new file, not the one whose removal is not durable yet"
        );
        drop(incoming);
        fs.gate.open();
        remover.join().expect("remover").expect("remove");
    });
    // Once durable, the kept file is handed out.
    let incoming = spool.begin().expect("begin");
    assert_eq!(names(&root.join("tmp")), vec![format!("{old}.reuse")]);
    drop(incoming);
}

/// What the crash model run did: bodies by id, acknowledged commits, removals
/// started (the last one may have been cut by the crash: its message may or may
/// not come back), removals that returned `Ok`.
#[derive(Default)]
struct Run {
    bodies: BTreeMap<QueueId, Vec<u8>>,
    acked: Vec<QueueId>,
    removing: Vec<QueueId>,
    removed: Vec<QueueId>,
}

/// Commit `n` messages of varied sizes; after each, remove the message committed
/// two before (so files are kept and reused, each for a different size).
fn commit_and_remove(spool: &Spool, n: u64) -> Run {
    let mut run = Run::default();
    for m in 0..n {
        let len = [3_000, 100, 70_000, 0, 9_000][(m % 5) as usize];
        let body = common::body(m, len);
        let Ok(mut inc) = spool.begin() else {
            return run;
        };
        run.bodies.insert(*inc.queue_id(), body.clone());
        if inc.write_all(&body).is_err() {
            return run;
        }
        let Ok(env) = inc.commit(common::envelope(1)) else {
            return run;
        };
        run.acked.push(env.queue_id);
        if run.acked.len() >= 3 {
            let old = run.acked[run.acked.len() - 3];
            run.removing.push(old);
            if spool.remove(&old).is_err() {
                return run;
            }
            run.removed.push(old);
        }
    }
    run
}

/// Crash at every operation of `threads` concurrent commit-and-remove runs
/// (sharing the kept files), recover several variants of each crash image, check.
fn crash_at_every_operation(threads: usize, messages: u64, variants: u64) {
    const ROOT: &str = "/spool";
    let open = |fs: &MemFs| {
        Spool::open_with_fs(
            &settings(Path::new(ROOT), Duration::ZERO, 4),
            Arc::new(fs.clone()),
        )
    };
    let run_all = |spool: &Spool| -> Vec<Run> {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| s.spawn(|| commit_and_remove(spool, messages)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        })
    };
    let probe = MemFs::new();
    let (spool, _) = open(&probe).expect("open");
    let before = probe.ops();
    let runs = run_all(&spool);
    let total = probe.ops() - before;
    let removed: usize = runs.iter().map(|r| r.removed.len()).sum();
    assert_eq!(
        removed as u64,
        (messages - 2) * threads as u64,
        "dry run removes all but two each"
    );
    let kept = probe.names(&Path::new(ROOT).join("tmp")).len();
    drop(spool);
    assert!(kept < removed, "the dry run reused kept files");

    for k in 1..=total + 3 {
        let fs = MemFs::new();
        let (spool, _) = open(&fs).expect("open");
        fs.crash_after(k);
        let runs = run_all(&spool);
        drop(spool);
        fs.crash_now();
        for seed in 0..variants {
            let label = format!("crash at op {k}/{total}, seed {seed}");
            let (spool, report) = open(&fs.after_crash(seed))
                .unwrap_or_else(|e| panic!("{label}: recovery failed: {e}"));
            assert!(
                report.corrupt.is_empty(),
                "{label}: corrupt {:?}",
                report.corrupt
            );
            let listed: Vec<QueueId> = spool
                .list()
                .expect("list")
                .iter()
                .map(|e| e.queue_id)
                .collect();
            for run in &runs {
                for id in &run.acked {
                    if !run.removing.contains(id) {
                        assert!(listed.contains(id), "{label}: acknowledged {id} lost");
                    }
                }
                for id in &run.removed {
                    assert!(!listed.contains(id), "{label}: removed {id} came back");
                }
            }
            for id in &listed {
                let written = runs.iter().find_map(|r| r.bodies.get(id));
                assert_eq!(Some(&body_of(&spool, id)), written, "{label}: body of {id}");
            }
        }
    }
}

#[test]
fn crash_at_every_operation_of_commits_and_removals_with_reuse() {
    crash_at_every_operation(1, 8, 6);
}

#[test]
fn crash_at_every_operation_of_concurrent_commits_and_removals_with_reuse() {
    crash_at_every_operation(3, 6, 4);
}
