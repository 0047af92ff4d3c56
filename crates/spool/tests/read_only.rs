//! `postern queue list/show` reads the spool while the server commits and removes:
//! it never sees half a message and never fails the whole listing.

#[allow(dead_code)] // each test binary uses part of the support module
mod common;

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

use postern_spool::{Spool, SpoolError, SpoolReader, SpoolSettings};

#[test]
fn read_only_listing_while_another_handle_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (spool, _) = Spool::open(&SpoolSettings::new(dir.path())).expect("open");
    let reader: SpoolReader = Spool::open_read_only(dir.path()).expect("read-only");
    let done = AtomicBool::new(false);
    let total: usize = 150;

    let listings = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut ids = Vec::new();
            for m in 0..total {
                let mut inc = spool.begin().expect("begin");
                inc.write_all(&common::body(m as u64, 2000 + m * 37))
                    .expect("write");
                ids.push(inc.commit(common::envelope(1)).expect("commit").queue_id);
                // Delivery removes some while the reader reads.
                if m % 10 == 9 {
                    spool.remove(&ids[ids.len() - 5]).expect("remove");
                }
            }
            done.store(true, Ordering::SeqCst);
        });
        let mut listings = 0;
        while !done.load(Ordering::SeqCst) {
            let listing = reader.scan().expect("scan");
            assert!(
                listing.invalid.is_empty(),
                "half a message seen: {:?}",
                listing.invalid
            );
            for env in listing.envelopes.iter().take(3) {
                match reader.open_message(&env.queue_id) {
                    Ok(mut body) => {
                        let mut b = Vec::new();
                        body.read_to_end(&mut b).expect("complete body");
                        assert_eq!(b.len() as u64, env.message_size);
                    }
                    Err(SpoolError::NotFound(_)) => {} // removed meanwhile
                    Err(e) => panic!("{e}"),
                }
            }
            listings += 1;
        }
        writer.join().expect("writer");
        listings
    });
    assert!(listings > 0);
    let final_list = reader.list().expect("list");
    assert_eq!(final_list.len(), spool.list().expect("list").len());
    assert_eq!(final_list.len(), total - total / 10);
}

#[test]
fn read_only_needs_an_existing_spool_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = Spool::open_read_only(&dir.path().join("nope")).expect_err("no spool there");
    assert!(matches!(err, SpoolError::Io { .. }), "{err}");
    assert!(!dir.path().join("nope").exists(), "nothing created");

    let (spool, _) = Spool::open(&SpoolSettings::new(dir.path())).expect("open");
    // Works while the server holds the lock, and leaves tmp/ alone.
    let mut inc = spool.begin().expect("begin");
    inc.write_all(b"in flight").expect("write");
    let reader = Spool::open_read_only(dir.path()).expect("read-only");
    assert!(reader.list().expect("list").is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp"))
            .expect("tmp")
            .count(),
        1
    );
    let env = inc.commit(common::envelope(3)).expect("commit");
    assert_eq!(reader.list().expect("list"), vec![env.clone()]);
    assert_eq!(reader.envelope(&env.queue_id).expect("envelope"), env);
}
