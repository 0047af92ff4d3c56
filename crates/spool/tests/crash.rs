//! Crash consistency (ARCHITECTURE.md "Tests"; `docs/spool-format.md` §5): with a
//! simulated file system, concurrent commits are cut by a crash at every operation
//! index in turn; the image a reboot would find (several random variants of the
//! undecided parts) is recovered, and we check:
//!
//! - recovered ⊇ acknowledged: every commit that returned `Ok` is listed;
//! - nothing half: every listed message has exactly the body and envelope written;
//! - recovery finds nothing corrupt (only complete files ever get a `msg/` name).

#[allow(dead_code)] // each test binary uses part of the support module
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::MemFs;
use postern_spool::{Envelope, QueueId, Spool, SpoolSettings};

const ROOT: &str = "/spool";

struct Written {
    body: Vec<u8>,
    /// The envelope `commit` returned (`None` if it did not return `Ok`).
    acked: Option<Envelope>,
    rcpts: usize,
}

/// Run `threads × per_thread` commits on `fs`, body sizes varied (some span several
/// write buffers). Returns what each id was given.
fn run_commits(spool: &Spool, threads: usize, per_thread: usize) -> BTreeMap<QueueId, Written> {
    let written = Arc::new(Mutex::new(BTreeMap::new()));
    std::thread::scope(|s| {
        for t in 0..threads {
            let spool = spool.clone();
            let written = Arc::clone(&written);
            s.spawn(move || {
                for m in 0..per_thread {
                    let seed = (t * 1000 + m) as u64;
                    let len = [0, 300, 5_000, 70_000, 150_000][(t + m) % 5];
                    let body = common::body(seed, len);
                    let rcpts = 1 + (t + m) % 3;
                    let Ok(mut incoming) = spool.begin() else {
                        continue;
                    };
                    let id = *incoming.queue_id();
                    written.lock().expect("lock").insert(
                        id,
                        Written {
                            body: body.clone(),
                            acked: None,
                            rcpts,
                        },
                    );
                    let mut ok = true;
                    for chunk in body.chunks(4096 + t * 17) {
                        if incoming.write_all(chunk).is_err() {
                            ok = false;
                            break;
                        }
                    }
                    if !ok {
                        continue;
                    }
                    if let Ok(env) = incoming.commit(common::envelope(rcpts)) {
                        written
                            .lock()
                            .expect("lock")
                            .get_mut(&id)
                            .expect("inserted")
                            .acked = Some(env);
                    }
                }
            });
        }
    });
    Arc::try_unwrap(written)
        .ok()
        .expect("threads joined")
        .into_inner()
        .expect("lock")
}

/// Recover every crash variant and check the invariants. Returns how many acked
/// messages the run had.
fn check_after_crash(fs: &MemFs, written: &BTreeMap<QueueId, Written>, variants: u64, label: &str) {
    for seed in 0..variants {
        let rebooted = fs.after_crash(seed);
        let (spool, report) = Spool::open_with_fs(&SpoolSettings::new(ROOT), Arc::new(rebooted))
            .unwrap_or_else(|e| panic!("{label} seed {seed}: recovery failed: {e}"));
        assert!(
            report.corrupt.is_empty(),
            "{label} seed {seed}: recovery found corrupt files {:?}",
            report.corrupt
        );
        let listed = spool.list().expect("list");
        assert_eq!(listed.len(), report.recovered, "{label}");
        let listed_ids: BTreeSet<QueueId> = listed.iter().map(|e| e.queue_id).collect();
        for (id, w) in written {
            if w.acked.is_some() {
                assert!(
                    listed_ids.contains(id),
                    "{label} seed {seed}: acknowledged message {id} lost"
                );
            }
        }
        for env in &listed {
            let w = written
                .get(&env.queue_id)
                .unwrap_or_else(|| panic!("{label} seed {seed}: unknown message {}", env.queue_id));
            let mut body = Vec::new();
            spool
                .open_message(&env.queue_id)
                .expect("open")
                .read_to_end(&mut body)
                .expect("read body");
            assert!(
                body == w.body,
                "{label} seed {seed}: body of {} differs",
                env.queue_id
            );
            assert_eq!(env.message_size, w.body.len() as u64);
            assert_eq!(env.recipients.len(), w.rcpts);
            if let Some(acked) = &w.acked {
                assert_eq!(env, acked, "{label} seed {seed}: envelope differs");
            }
        }
        assert!(
            spool.scan().expect("scan").invalid.is_empty(),
            "{label}: invalid files listed"
        );
        assert!(
            spool.begin().is_ok(),
            "{label}: a recovered spool accepts mail"
        );
    }
}

fn crash_at_every_index(threads: usize, per_thread: usize, variants: u64) {
    // A dry run to learn how many operations a run takes (it varies a little with
    // scheduling; the loop goes past it).
    let probe = MemFs::new();
    let (spool, _) =
        Spool::open_with_fs(&SpoolSettings::new(ROOT), Arc::new(probe.clone())).expect("open");
    let before = probe.ops();
    let written = run_commits(&spool, threads, per_thread);
    drop(spool);
    let total = probe.ops() - before;
    assert!(
        written.values().all(|w| w.acked.is_some()),
        "dry run commits all"
    );
    probe.crash_now();
    check_after_crash(&probe, &written, 2, "no crash");

    let mut acked_total = 0;
    let mut partial_runs = 0;
    for k in 1..=total + 3 {
        let fs = MemFs::new();
        let (spool, _) =
            Spool::open_with_fs(&SpoolSettings::new(ROOT), Arc::new(fs.clone())).expect("open");
        fs.crash_after(k);
        let written = run_commits(&spool, threads, per_thread);
        drop(spool);
        fs.crash_now();
        let acked = written.values().filter(|w| w.acked.is_some()).count();
        acked_total += acked;
        if acked > 0 && acked < threads * per_thread {
            partial_runs += 1;
        }
        check_after_crash(&fs, &written, variants, &format!("crash at op {k}/{total}"));
    }
    // The test must exercise crashes between acknowledged and unacknowledged work.
    assert!(
        acked_total > 0 && partial_runs > 0,
        "crash points never split a run"
    );
}

#[test]
fn crash_at_every_operation_single_thread() {
    crash_at_every_index(1, 6, 6);
}

#[test]
fn crash_at_every_operation_concurrent_commits() {
    crash_at_every_index(6, 3, 4);
}

#[test]
fn crash_during_recovery_of_a_damaged_spool() {
    // Commit two messages, damage one, then crash recovery at every operation; a
    // second recovery must still keep the good one and set the bad one aside.
    let fs = MemFs::new();
    let (spool, _) =
        Spool::open_with_fs(&SpoolSettings::new(ROOT), Arc::new(fs.clone())).expect("open");
    let written = run_commits(&spool, 1, 2);
    drop(spool);
    let ids: Vec<QueueId> = written.keys().copied().collect();
    let bad = Path::new(ROOT).join("msg").join(ids[1].as_str());
    let mut bytes = fs.contents(&bad).expect("exists");
    let cut = bytes.len() / 2;
    bytes.truncate(cut);
    fs.set_contents(&bad, bytes);
    fs.crash_now();
    let image = fs.after_crash(0);

    for k in 1..30 {
        let fs = image.deep_clone();
        fs.crash_after(k);
        let crashed = Spool::open_with_fs(&SpoolSettings::new(ROOT), Arc::new(fs.clone())).is_err();
        fs.crash_now();
        for seed in 0..4 {
            let again = fs.after_crash(seed);
            let (spool, report) =
                Spool::open_with_fs(&SpoolSettings::new(ROOT), Arc::new(again.clone()))
                    .expect("second recovery");
            let listed: Vec<QueueId> = spool
                .list()
                .expect("list")
                .iter()
                .map(|e| e.queue_id)
                .collect();
            assert_eq!(listed, vec![ids[0]], "k={k} seed={seed}");
            let in_corrupt = again.names(&Path::new(ROOT).join("corrupt"));
            let moved: Vec<&String> = in_corrupt
                .iter()
                .filter(|n| n.starts_with(ids[1].as_str()) && !n.ends_with(".reason"))
                .collect();
            // Usually once; twice if a crash kept both halves of the move (the
            // new name in corrupt/ and the old one in msg/) and the second
            // recovery moved it again. Never zero, always with its reason.
            assert!(
                !moved.is_empty(),
                "k={k} crashed={crashed}: damaged file kept in corrupt/: {in_corrupt:?}, report {report:?}"
            );
            for m in moved {
                assert!(
                    in_corrupt.contains(&format!("{m}.reason")),
                    "k={k}: reason file next to {m}: {in_corrupt:?}"
                );
            }
        }
    }
}
