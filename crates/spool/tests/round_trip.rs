//! The happy path on a real disk: begin, stream, commit, list, read back, remove.

#[allow(dead_code)] // each test binary uses part of the support module
mod common;

use std::collections::BTreeSet;
use std::io::Read;

use postern_spool::{QueueId, Spool, SpoolError, SpoolSettings};

fn open(dir: &std::path::Path) -> Spool {
    Spool::open(&SpoolSettings::new(dir)).expect("open spool").0
}

fn read_body(spool: &Spool, id: &QueueId) -> Vec<u8> {
    let mut out = Vec::new();
    spool
        .open_message(id)
        .expect("open message")
        .read_to_end(&mut out)
        .expect("read body");
    out
}

#[test]
fn commit_then_list_envelope_and_body() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spool = open(tmp.path());
    let body = common::body(7, 200_000);
    let mut incoming = spool.begin().expect("begin");
    let id = *incoming.queue_id();
    for chunk in body.chunks(1000) {
        incoming.write_all(chunk).expect("write");
    }
    assert_eq!(incoming.bytes_written(), body.len() as u64);
    let mut sent = common::envelope(2);
    sent.received_at = "2026-02-03T04:05:06Z".into();
    let stored = incoming.commit(sent.clone()).expect("commit");

    assert_eq!(stored.queue_id, id, "commit sets the queue id");
    assert_eq!(
        stored.message_size,
        body.len() as u64,
        "commit sets the size"
    );
    assert_eq!(stored.received_at, sent.received_at, "a given time is kept");
    assert_eq!(stored.recipients, sent.recipients);

    assert_eq!(spool.list().expect("list"), vec![stored.clone()]);
    assert_eq!(spool.envelope(&id).expect("envelope"), stored);
    assert!(read_body(&spool, &id) == body, "body differs");
    let reader = spool.open_message(&id).expect("open");
    assert_eq!(reader.len(), body.len() as u64);

    // Nothing left in tmp/, exactly one file in msg/.
    assert_eq!(
        std::fs::read_dir(tmp.path().join("tmp"))
            .expect("tmp")
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(tmp.path().join("msg"))
            .expect("msg")
            .count(),
        1
    );
    for d in ["tmp", "msg", "state", "corrupt"] {
        assert!(tmp.path().join(d).is_dir(), "{d}/ exists");
    }

    spool.remove(&id).expect("remove");
    assert!(matches!(spool.envelope(&id), Err(SpoolError::NotFound(x)) if x == id));
    assert!(matches!(
        spool.open_message(&id),
        Err(SpoolError::NotFound(_))
    ));
    assert!(matches!(spool.remove(&id), Err(SpoolError::NotFound(_))));
    assert!(spool.list().expect("list").is_empty());
}

#[test]
fn empty_body_and_received_at_default() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spool = open(tmp.path());
    let stored = spool
        .begin()
        .expect("begin")
        .commit(common::envelope(1))
        .expect("commit");
    assert_eq!(stored.message_size, 0);
    assert!(
        stored.received_at.ends_with('Z'),
        "filled in: {}",
        stored.received_at
    );
    assert!(read_body(&spool, &stored.queue_id).is_empty());
}

#[test]
fn abort_and_drop_remove_the_temporary_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spool = open(tmp.path());
    let tmp_count = || {
        std::fs::read_dir(tmp.path().join("tmp"))
            .expect("tmp")
            .count()
    };

    let mut a = spool.begin().expect("begin");
    a.write_all(&common::body(1, 100_000)).expect("write");
    let mut b = spool.begin().expect("begin");
    b.write_all(b"Subject: x\r\n\r\nhi\r\n").expect("write");
    assert_eq!(tmp_count(), 2);
    a.abort();
    assert_eq!(tmp_count(), 1);
    drop(b);
    assert_eq!(tmp_count(), 0);
    assert!(spool.list().expect("list").is_empty(), "nothing committed");
}

#[test]
fn ids_are_unique_and_sorted_across_threads() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spool = open(tmp.path());
    let per_thread: Vec<Vec<QueueId>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let spool = spool.clone();
                s.spawn(move || {
                    (0..10)
                        .map(|m| {
                            let mut inc = spool.begin().expect("begin");
                            inc.write_all(&common::body(t * 100 + m, 3000))
                                .expect("write");
                            inc.commit(common::envelope(1)).expect("commit").queue_id
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    for ids in &per_thread {
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "ids increase within a thread"
        );
    }
    let all: BTreeSet<QueueId> = per_thread.iter().flatten().copied().collect();
    assert_eq!(all.len(), 80, "unique");
    let listed: Vec<QueueId> = spool
        .list()
        .expect("list")
        .iter()
        .map(|e| e.queue_id)
        .collect();
    assert_eq!(
        listed,
        all.into_iter().collect::<Vec<_>>(),
        "list is sorted by id"
    );
    for id in &listed {
        assert_eq!(QueueId::parse(id.as_str()).expect("parse"), *id);
    }
}

#[test]
fn a_damaged_body_fails_at_the_end_of_reading() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spool = open(tmp.path());
    let mut inc = spool.begin().expect("begin");
    inc.write_all(&common::body(3, 10_000)).expect("write");
    let id = inc.commit(common::envelope(1)).expect("commit").queue_id;

    let path = tmp.path().join("msg").join(id.as_str());
    let mut bytes = std::fs::read(&path).expect("read file");
    bytes[16 + 5000] ^= 0x20;
    std::fs::write(&path, bytes).expect("write file");

    // The envelope is intact (its own CRC), but reading the body to the end fails.
    assert!(spool.envelope(&id).is_ok());
    let mut out = Vec::new();
    let err = spool
        .open_message(&id)
        .expect("open")
        .read_to_end(&mut out)
        .expect_err("checksum mismatch");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}

#[test]
fn second_writer_is_refused_by_the_lock() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spool = open(tmp.path());
    let err = Spool::open(&SpoolSettings::new(tmp.path())).expect_err("locked");
    assert!(
        matches!(
            err,
            SpoolError::Io {
                op: postern_spool::SpoolOp::Lock,
                ..
            }
        ),
        "{err}"
    );
    drop(spool);
    open(tmp.path());
}

#[test]
fn queue_id_parse_guards_paths() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let _spool = open(tmp.path());
    for bad in ["../lock", "", "msg", "cr70b7v8awtmesqesd"] {
        assert!(
            matches!(QueueId::parse(bad), Err(SpoolError::InvalidId(_))),
            "{bad}"
        );
    }
}

/// Header fields added at end of data (`Envelope::added_headers`: our
/// Authentication-Results and DKIM-Signature) are delivered before the stored
/// body, survive a reopen, and count in `wire_size`; the body on disk and its
/// CRC are unchanged.
#[test]
fn added_headers_come_before_the_body() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let added = "Authentication-Results: mx.example.net; spf=pass smtp.mailfrom=a@b.example\r\n";
    let body = b"Received: from x\r\nSubject: hi\r\n\r\nbody\r\n".to_vec();
    let id = {
        let spool = open(tmp.path());
        let mut incoming = spool.begin().expect("begin");
        incoming.write_all(&body).expect("write");
        let mut env = common::envelope(1);
        env.added_headers = added.to_owned();
        let stored = incoming.commit(env).expect("commit");
        assert_eq!(stored.message_size, body.len() as u64, "the body alone");
        assert_eq!(stored.wire_size(), (added.len() + body.len()) as u64);
        stored.queue_id
    };
    let spool = open(tmp.path());
    let env = spool.envelope(&id).expect("envelope after reopen");
    assert_eq!(env.added_headers, added);
    let mut expected = added.as_bytes().to_vec();
    expected.extend_from_slice(&body);
    assert_eq!(read_body(&spool, &id), expected);
    let reader = spool.open_message(&id).expect("open");
    assert_eq!(reader.len(), expected.len() as u64);
    // A reader that reads one byte at a time crosses the seam correctly.
    let mut one = Vec::new();
    let mut reader = spool.open_message(&id).expect("open");
    let mut byte = [0u8; 1];
    while reader.read(&mut byte).expect("read") == 1 {
        one.push(byte[0]);
    }
    assert_eq!(one, expected);
}

/// `Incoming::read_back` returns what was written so far (up to a limit),
/// buffered bytes included, and the message still commits whole.
#[test]
fn read_back_before_commit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spool = open(tmp.path());
    let body = common::body(3, 150_000);
    let mut incoming = spool.begin().expect("begin");
    incoming.write_all(&body[..100_000]).expect("write");
    assert_eq!(
        incoming.read_back(u64::MAX).expect("read back"),
        &body[..100_000]
    );
    assert_eq!(incoming.read_back(10).expect("read back"), &body[..10]);
    incoming.write_all(&body[100_000..]).expect("write");
    assert_eq!(incoming.read_back(u64::MAX).expect("read back"), body);
    let stored = incoming.commit(common::envelope(1)).expect("commit");
    assert!(read_body(&spool, &stored.queue_id) == body);
}

/// `begin_as`: the message is stored under the id chosen before; should a
/// file of that name already sit in `tmp/`, another id is used rather than
/// an error.
#[test]
fn begin_as_keeps_a_chosen_id() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spool = open(tmp.path());
    let chosen = QueueId::generate();
    let mut incoming = spool.begin_as(chosen).expect("begin");
    assert_eq!(*incoming.queue_id(), chosen);
    incoming
        .write_all(b"Subject: x\r\n\r\nbody\r\n")
        .expect("write");
    let stored = incoming.commit(common::envelope(1)).expect("commit");
    assert_eq!(stored.queue_id, chosen);
    assert_eq!(spool.envelope(&chosen).expect("envelope"), stored);

    let taken = QueueId::generate();
    std::fs::write(tmp.path().join("tmp").join(taken.as_str()), b"stale").expect("stale");
    let incoming = spool.begin_as(taken).expect("begin");
    assert_ne!(*incoming.queue_id(), taken);
}
