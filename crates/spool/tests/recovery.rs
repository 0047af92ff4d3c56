//! Recovery at `Spool::open` on a real disk: `tmp/` emptied, damaged `msg/` files
//! moved to `corrupt/` with a reason, valid ones kept.

#[allow(dead_code)] // each test binary uses part of the support module
mod common;

use std::fs;
use std::path::Path;
use std::sync::Arc;

use postern_spool::{QueueId, Spool, SpoolSettings};

fn commit(spool: &Spool, seed: u64, len: usize) -> QueueId {
    let mut inc = spool.begin().expect("begin");
    inc.write_all(&common::body(seed, len)).expect("write");
    inc.commit(common::envelope(1)).expect("commit").queue_id
}

fn msg_path(root: &Path, id: &QueueId) -> std::path::PathBuf {
    root.join("msg").join(id.as_str())
}

#[test]
fn recovery_removes_tmp_and_sets_damaged_files_aside() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let (spool, report) = Spool::open(&SpoolSettings::new(root)).expect("open");
    assert_eq!(report, postern_spool::RecoveryReport::default());

    let good = commit(&spool, 1, 5_000);
    let truncated = commit(&spool, 2, 5_000);
    let body_flip = commit(&spool, 3, 5_000);
    let envelope_flip = commit(&spool, 4, 5_000);
    let trailer_flip = commit(&spool, 5, 5_000);
    drop(spool);
    // A message in flight when the "crash" happened.
    fs::write(
        root.join("tmp").join(QueueId::generate().as_str()),
        b"half a message",
    )
    .expect("in flight");

    let cut = |id: &QueueId, f: &dyn Fn(&mut Vec<u8>)| {
        let p = msg_path(root, id);
        let mut b = fs::read(&p).expect("read");
        f(&mut b);
        fs::write(&p, b).expect("write");
    };
    cut(&truncated, &|b| b.truncate(b.len() - 10));
    cut(&body_flip, &|b| b[100] ^= 1);
    cut(&envelope_flip, &|b| {
        let at = 16 + 5_000 + 3;
        b[at] ^= 0x40;
    });
    cut(&trailer_flip, &|b| {
        let at = b.len() - 40;
        b[at] ^= 1;
    });
    fs::write(root.join("msg").join("not-a-queue-id"), b"junk").expect("junk");
    fs::write(root.join("tmp").join("leftover"), b"partial").expect("leftover");

    let (spool, report) = Spool::open(&SpoolSettings::new(root)).expect("reopen");
    assert_eq!(report.recovered, 1);
    assert_eq!(report.removed_tmp, 2, "the in-flight file and the leftover");
    let reasons: std::collections::BTreeMap<String, String> =
        report.corrupt.iter().cloned().collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert!(
        reasons[truncated.as_str()].contains("end marker"),
        "{reasons:?}"
    );
    assert!(
        reasons[body_flip.as_str()].contains("body checksum"),
        "{reasons:?}"
    );
    assert!(
        reasons[envelope_flip.as_str()].contains("envelope checksum"),
        "{reasons:?}"
    );
    assert!(
        reasons[trailer_flip.as_str()].contains("trailer checksum"),
        "{reasons:?}"
    );
    assert!(
        reasons["not-a-queue-id"].contains("not a queue id"),
        "{reasons:?}"
    );

    let listed: Vec<QueueId> = spool
        .list()
        .expect("list")
        .iter()
        .map(|e| e.queue_id)
        .collect();
    assert_eq!(listed, vec![good]);
    assert_eq!(fs::read_dir(root.join("tmp")).expect("tmp").count(), 0);
    for (name, reason) in &report.corrupt {
        assert!(
            root.join("corrupt").join(name).is_file(),
            "{name} moved aside"
        );
        let written = fs::read_to_string(root.join("corrupt").join(format!("{name}.reason")))
            .expect("reason file");
        assert_eq!(written.trim_end(), reason);
        assert!(!root.join("msg").join(name).exists());
    }
    drop(spool);

    // Recovery is idempotent, and a second damaged file with a taken name gets a suffix.
    fs::write(root.join("msg").join("not-a-queue-id"), b"junk again").expect("junk");
    let (_spool, report) = Spool::open(&SpoolSettings::new(root)).expect("reopen");
    assert_eq!(report.recovered, 1);
    assert_eq!(report.corrupt.len(), 1);
    assert!(root.join("corrupt").join("not-a-queue-id.1").is_file());
    assert!(
        root.join("corrupt")
            .join("not-a-queue-id.1.reason")
            .is_file()
    );
    assert_eq!(
        fs::read(root.join("corrupt").join("not-a-queue-id")).expect("kept"),
        b"junk"
    );
}

#[test]
fn every_truncation_and_every_bit_flip_is_detected() {
    // On the in-memory file system: the same code path as the disk, without
    // hundreds of real fsyncs.
    let root = Path::new("/spool");
    let fs = common::MemFs::new();
    let (spool, _) =
        Spool::open_with_fs(&SpoolSettings::new(root), Arc::new(fs.clone())).expect("open");
    let id = commit(&spool, 9, 40);
    drop(spool);
    let path = msg_path(root, &id);
    let original = fs.contents(&path).expect("committed");

    let accepted = |bytes: Vec<u8>| {
        let fs = fs.deep_clone();
        fs.set_contents(&path, bytes);
        let (_spool, report) =
            Spool::open_with_fs(&SpoolSettings::new(root), Arc::new(fs)).expect("open");
        assert_eq!(report.recovered + report.corrupt.len(), 1);
        report.recovered == 1
    };
    assert!(accepted(original.clone()), "the original is valid");
    for len in 0..original.len() {
        assert!(
            !accepted(original[..len].to_vec()),
            "truncation to {len} accepted"
        );
    }
    for i in 0..original.len() {
        for bit in 0..8 {
            let mut b = original.clone();
            b[i] ^= 1 << bit;
            assert!(!accepted(b), "bit flip at {i}.{bit} accepted");
        }
    }
    let mut longer = original.clone();
    longer.push(b'\n');
    assert!(!accepted(longer), "trailing byte accepted");
}
