//! The mail log rotated and gzip-compressed by logrotate (`compress`, with
//! or without `delaycompress`, `dateext`) while the indexer was stopped or
//! running: the checkpoint's tail is indexed exactly once, newer rotated
//! files in order, then the path; a corrupt gzip or a decompression bomb is
//! skipped with a warning, never a crash or a hang. Real files, real gzip
//! (flate2).
#![allow(clippy::unwrap_used)]
#![cfg(unix)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::tail::{Setup, append, queued, total, wait_for};
use postern_trackdb::{Batch, Checkpoint, FileHead, SqliteStore, TrackStore};

/// `gzip FILE`: `FILE.gz` (the original removed), as logrotate's `compress`.
fn gzip(path: &Path) -> PathBuf {
    let gz = PathBuf::from(format!("{}.gz", path.display()));
    let data = std::fs::read(path).unwrap();
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(&data).unwrap();
    enc.finish().unwrap();
    std::fs::remove_file(path).unwrap();
    gz
}

/// Runs the indexer until it has caught up and stopped; returns how many
/// events it indexed (a line read twice counts twice) and skipped.
fn run_once(s: &Setup) -> (u64, u64) {
    let indexer = s.spawn();
    wait_for("caught up", || {
        let l = indexer.lag();
        l.behind_bytes == 0 && s.log().exists() && checkpoint_on_path(s)
    });
    let l = indexer.stop();
    assert_eq!(l.last_error, None);
    (l.indexed, l.skipped)
}

/// The checkpoint is at the end of the file the path names.
fn checkpoint_on_path(s: &Setup) -> bool {
    let m = std::fs::metadata(s.log()).unwrap();
    s.store
        .checkpoint()
        .unwrap()
        .is_some_and(|c| c.offset == m.len() && c.file_id == file_id(&m))
}

/// The indexer's file id (inode, device in the high bits).
fn file_id(m: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    m.ino() ^ m.dev().rotate_left(40)
}

/// Indexes `n` events into a fresh mail log and stops: the checkpoint is in it.
fn first_run(s: &Setup, n: usize) {
    append(&s.log(), &common::lines(&queued(n)));
    let (indexed, _) = run_once(s);
    assert_eq!(indexed, n as u64);
    assert!(s.store.checkpoint_head().unwrap().is_some());
}

fn rotated(s: &Setup, suffix: &str) -> PathBuf {
    s.dir.path().join(format!("mail.log{suffix}"))
}

/// logrotate `compress` without `delaycompress`, server stopped: the tail
/// written after the last checkpoint is read from `mail.log.1.gz`, once.
#[test]
fn stop_rotate_compress_start_indexes_the_tail_exactly_once() {
    let s = Setup::new();
    first_run(&s, 5);
    append(&s.log(), &common::lines(&queued(3)));
    std::fs::rename(s.log(), rotated(&s, ".1")).unwrap();
    gzip(&rotated(&s, ".1"));
    append(&s.log(), &common::lines(&queued(2)));
    let (indexed, skipped) = run_once(&s);
    // 3 from the compressed tail (not its first 5 again) + 2 new.
    assert_eq!((indexed, skipped), (5, 0));
    assert_eq!(total(&s.store), 10);
}

/// Two rotations while stopped, `delaycompress`: the checkpoint's file is
/// now `mail.log.2.gz`, the next one `mail.log.1`; both in order, then the path.
#[test]
fn two_rotations_while_stopped() {
    let s = Setup::new();
    first_run(&s, 4);
    append(&s.log(), &common::lines(&queued(3)));
    std::fs::rename(s.log(), rotated(&s, ".1")).unwrap();
    append(&s.log(), &common::lines(&queued(6)));
    // The second rotation: .1 → .2, compressed; the path → .1.
    std::fs::rename(rotated(&s, ".1"), rotated(&s, ".2")).unwrap();
    gzip(&rotated(&s, ".2"));
    std::fs::rename(s.log(), rotated(&s, ".1")).unwrap();
    append(&s.log(), &common::lines(&queued(2)));
    // An older compressed file, long indexed: not read again.
    std::fs::write(rotated(&s, ".3"), common::lines(&queued(7))).unwrap();
    gzip(&rotated(&s, ".3"));
    let (indexed, skipped) = run_once(&s);
    assert_eq!((indexed, skipped), (3 + 6 + 2, 0));
    assert_eq!(total(&s.store), 4 + 3 + 6 + 2);
}

/// `dateext`: `mail.log-20261206.gz` is the checkpoint's, the newer
/// `mail.log-20261207.gz` and an uncompressed `mail.log-20261208` follow.
#[test]
fn dateext_names() {
    let s = Setup::new();
    first_run(&s, 2);
    append(&s.log(), &common::lines(&queued(1)));
    std::fs::rename(s.log(), rotated(&s, "-20261206")).unwrap();
    gzip(&rotated(&s, "-20261206"));
    std::fs::write(rotated(&s, "-20261207"), common::lines(&queued(4))).unwrap();
    gzip(&rotated(&s, "-20261207"));
    std::fs::write(rotated(&s, "-20261208"), common::lines(&queued(5))).unwrap();
    append(&s.log(), &common::lines(&queued(3)));
    let (indexed, _) = run_once(&s);
    assert_eq!(indexed, 1 + 4 + 5 + 3);
    assert_eq!(total(&s.store), 2 + 1 + 4 + 5 + 3);
}

/// The checkpoint's compressed file is damaged after its head: what
/// decompresses before the damage is indexed, the rest skipped with a
/// warning; a `.gz` that is not gzip at all is not taken for it; the newer
/// file and the path are still read.
#[test]
fn a_corrupt_gzip_is_skipped() {
    let s = Setup::new();
    first_run(&s, 3);
    append(&s.log(), &common::lines(&queued(400)));
    std::fs::rename(s.log(), rotated(&s, ".2")).unwrap();
    let gz = gzip(&rotated(&s, ".2"));
    let mut bytes = std::fs::read(&gz).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&gz, &bytes).unwrap();
    std::fs::write(rotated(&s, ".3.gz"), b"this is not gzip\n").unwrap();
    std::fs::write(rotated(&s, ".1"), common::lines(&queued(4))).unwrap();
    append(&s.log(), &common::lines(&queued(2)));
    let (indexed, _) = run_once(&s);
    // Some of the 400 (up to the damage), then all of .1 and the path.
    assert!((6..400 + 6).contains(&indexed), "{indexed}");
    assert_eq!(total(&s.store) as u64, 3 + indexed);
}

/// A decompression bomb beside the log (1 MiB of zeros compressed, the
/// member repeated: 512 MiB from ≈ 0.5 MiB): read up to 100× its size, then
/// skipped; one read buffer of memory; the files around it are indexed.
#[test]
fn a_decompression_bomb_is_bounded() {
    let s = Setup::new();
    first_run(&s, 2);
    append(&s.log(), &common::lines(&queued(3)));
    std::fs::rename(s.log(), rotated(&s, ".2")).unwrap();
    gzip(&rotated(&s, ".2"));
    let member = {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 1024 * 1024]).unwrap();
        enc.finish().unwrap()
    };
    let mut bomb = std::fs::File::create(rotated(&s, ".1.gz")).unwrap();
    for _ in 0..512 {
        bomb.write_all(&member).unwrap();
    }
    drop(bomb);
    append(&s.log(), &common::lines(&queued(2)));
    let started = std::time::Instant::now();
    let (indexed, skipped) = run_once(&s);
    assert_eq!(indexed, 3 + 2);
    // The bomb is one endless line without a newline: skipped.
    assert!(skipped >= 1, "{skipped}");
    assert_eq!(total(&s.store), 2 + 3 + 2);
    // Bounded: far less than decompressing 512 MiB in a debug build.
    assert!(started.elapsed() < common::tail::DEADLINE);
}

/// `compress` without `delaycompress` under a running indexer: the file is
/// renamed, a new one created, and the renamed one compressed and deleted
/// while the indexer still holds it open — it reads the rest from its open
/// descriptor, then follows the path.
#[test]
fn compressed_and_deleted_while_held_open() {
    let s = Setup::new();
    append(&s.log(), &common::lines(&queued(10)));
    let indexer = s.spawn();
    wait_for("the first 10", || total(&s.store) == 10);
    append(&s.log(), &common::lines(&queued(5)));
    std::fs::rename(s.log(), rotated(&s, ".1")).unwrap();
    append(&s.log(), &common::lines(&queued(3)));
    gzip(&rotated(&s, ".1"));
    wait_for("all 18", || total(&s.store) == 18);
    wait_for("on the new file", || checkpoint_on_path(&s));
    let l = indexer.lag();
    indexer.stop();
    assert_eq!((l.indexed, l.skipped, l.last_error), (18, 0, None));
}

/// The path's file has the checkpoint's file id but not its fingerprint
/// (the inode was reused by a new file): read from the start.
#[test]
fn a_reused_inode_is_read_from_the_start() {
    let s = Setup::new();
    append(&s.log(), &common::lines(&queued(6)));
    let m = std::fs::metadata(s.log()).unwrap();
    let id = file_id(&m);
    s.store
        .index_batch(
            &Batch::default(),
            &Checkpoint {
                file_id: id,
                offset: m.len() / 2,
            },
            Some(&FileHead { len: 100, crc32: 1 }),
        )
        .unwrap();
    let (indexed, _) = run_once(&s);
    assert_eq!(indexed, 6);
}

/// A database of schema version 1 (no fingerprint column) is migrated in
/// place: its checkpoint kept, the fingerprint filled at the next batch.
#[test]
fn a_version_1_database_is_migrated() {
    let s = Setup::new();
    append(&s.log(), &common::lines(&queued(4)));
    let len = std::fs::metadata(s.log()).unwrap().len();
    let path = s.dir.path().join("v1.db");
    drop(SqliteStore::open(&path).unwrap());
    {
        // Back to version 1: the checkpoint without its fingerprint.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "ALTER TABLE checkpoint DROP COLUMN head_len;
             ALTER TABLE checkpoint DROP COLUMN head_crc;
             PRAGMA user_version = 1;",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO checkpoint (id, file_id, offset) VALUES (1, 42, ?1)",
            [i64::try_from(len).unwrap()],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.checkpoint().unwrap(),
        Some(Checkpoint {
            file_id: 42,
            offset: len
        })
    );
    assert_eq!(store.checkpoint_head().unwrap(), None);
    let head = FileHead { len: 9, crc32: 7 };
    store
        .index_batch(
            &Batch::default(),
            &Checkpoint {
                file_id: 42,
                offset: len,
            },
            Some(&head),
        )
        .unwrap();
    // Without a fingerprint: kept for the same file, forgotten for another.
    store
        .index(
            &[],
            &Checkpoint {
                file_id: 42,
                offset: len + 1,
            },
        )
        .unwrap();
    assert_eq!(store.checkpoint_head().unwrap(), Some(head));
    store
        .index(
            &[],
            &Checkpoint {
                file_id: 43,
                offset: 0,
            },
        )
        .unwrap();
    assert_eq!(store.checkpoint_head().unwrap(), None);
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2);
}

/// logrotate's `copytruncate` under a running indexer: the file is copied
/// to `mail.log.1` and truncated in place; the indexer reads it again from
/// the start and takes the new content's fingerprint, so the next start
/// does not take the copy for its file (and reads nothing twice).
#[test]
fn copytruncate_takes_a_new_fingerprint() {
    let s = Setup::new();
    append(&s.log(), &common::lines(&queued(5)));
    let indexer = s.spawn();
    wait_for("the first 5", || total(&s.store) == 5);
    std::fs::copy(s.log(), rotated(&s, ".1")).unwrap();
    std::fs::write(s.log(), common::lines(&queued(2))).unwrap();
    wait_for("the truncated file's lines", || total(&s.store) == 7);
    wait_for("the checkpoint on it", || checkpoint_on_path(&s));
    indexer.stop();
    assert_eq!(run_once(&s), (0, 0));
    assert_eq!(total(&s.store), 7);
}

/// `copytruncate` while the server was stopped: the copy (`mail.log.1`,
/// the same fingerprint) holds the tail after the checkpoint; it is read
/// first, then the truncated file from its start.
#[test]
fn copytruncate_while_stopped_reads_the_copy_first() {
    let s = Setup::new();
    first_run(&s, 5);
    append(&s.log(), &common::lines(&queued(3)));
    std::fs::copy(s.log(), rotated(&s, ".1")).unwrap();
    std::fs::write(s.log(), common::lines(&queued(2))).unwrap();
    assert_eq!(run_once(&s), (3 + 2, 0));
    assert_eq!(total(&s.store), 10);
}
