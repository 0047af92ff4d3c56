//! The indexer: tails a growing file, waits for partial lines, follows
//! rotation and truncation, skips garbage, survives a "crash" without losing
//! or duplicating an event, reports its lag. Polls with a deadline.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::tail::{Setup, append, queued, total, wait_for};
use postern_track::MailLog;
use postern_trackdb::{Indexer, LogEntry, SearchQuery, TrackStore};

#[test]
fn tails_a_real_mail_log_as_it_grows() {
    let s = Setup::new();
    // The indexer starts before the log exists.
    let indexer = s.spawn();
    let log = MailLog::open(&s.log()).unwrap();
    let w = common::world();
    for e in &w.entries[..10] {
        match e {
            LogEntry::Mail(r) => log.record(r.clone()),
            LogEntry::Session(r) => log.session(r.clone()),
        }
    }
    log.flush();
    wait_for("the first 10 events", || total(&s.store) == 10);
    for e in &w.entries[10..] {
        match e {
            LogEntry::Mail(r) => log.record(r.clone()),
            LogEntry::Session(r) => log.session(r.clone()),
        }
    }
    log.flush();
    wait_for("every event", || total(&s.store) == w.entries.len());
    wait_for("no lag", || indexer.lag().behind_bytes == 0);
    let status = indexer.lag();
    assert_eq!(status.indexed, w.entries.len() as u64);
    assert_eq!(status.last_error, None);
    let len = std::fs::metadata(s.log()).unwrap().len();
    assert_eq!(s.store.checkpoint().unwrap().unwrap().offset, len);
    #[cfg(target_os = "linux")]
    assert_eq!(indexer_nice(), Some(postern_trackdb::INDEXER_NICE));
    indexer.stop();
}

/// logrotate's default ("create": rename, then a new file) under a running
/// server: the mail log reopens the path within a second, the indexer
/// finishes the renamed file and follows; nothing is lost or doubled.
#[test]
fn a_running_mail_log_follows_a_rename_rotation() {
    let s = Setup::new();
    let indexer = s.spawn();
    let log = MailLog::open(&s.log()).unwrap();
    let entries = queued(30);
    let send = |es: &[LogEntry]| {
        for e in es {
            match e {
                LogEntry::Mail(r) => log.record(r.clone()),
                LogEntry::Session(r) => log.session(r.clone()),
            }
        }
        log.flush();
    };
    send(&entries[..10]);
    wait_for("the first 10", || total(&s.store) == 10);
    std::fs::rename(s.log(), s.dir.path().join("mail.log.1")).unwrap();
    // Written at once: these may still land in the renamed file.
    send(&entries[10..20]);
    // The writer notices within a second; later records go to the new file.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    send(&entries[20..]);
    wait_for("the new file exists", || s.log().exists());
    wait_for("all 30, once each", || total(&s.store) == 30);
    let new_len = std::fs::metadata(s.log()).unwrap().len();
    assert!(new_len > 0, "the server writes to the new file");
    wait_for("the checkpoint on the new file", || {
        s.store
            .checkpoint()
            .unwrap()
            .is_some_and(|c| c.offset == new_len)
    });
    assert_eq!(indexer.lag().last_error, None);
    indexer.stop();
}

/// Rotated while the indexer was stopped: the checkpoint's file, still
/// beside the path as `mail.log.1`, is finished first, then the new file.
#[test]
fn a_rotation_while_stopped_finishes_the_old_file_first() {
    let s = Setup::new();
    append(&s.log(), &common::lines(&queued(5)));
    let indexer = s.spawn();
    wait_for("the first 5", || total(&s.store) == 5);
    indexer.stop();
    // Written after the stop, then rotated, then a new file begins.
    append(&s.log(), &common::lines(&queued(3)));
    std::fs::rename(s.log(), s.dir.path().join("mail.log.1")).unwrap();
    append(&s.log(), &common::lines(&queued(2)));
    let indexer = s.spawn();
    wait_for("the old file's tail and the new file", || {
        total(&s.store) == 10
    });
    indexer.stop();
}

/// The nice value of the `track-indexer` thread of this process.
#[cfg(target_os = "linux")]
fn indexer_nice() -> Option<i32> {
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() == "track-indexer" {
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            // Fields after "(comm)": state is field 3, nice field 19.
            let rest = &stat[stat.rfind(')')? + 1..];
            return rest.split_whitespace().nth(16)?.parse().ok();
        }
    }
    None
}

#[test]
fn a_partial_line_waits_for_its_end() {
    let s = Setup::new();
    let entries = queued(3);
    let text = common::lines(&entries);
    let cut = text.len() - 20;
    append(&s.log(), &text[..cut]);
    let indexer = s.spawn();
    wait_for("two complete lines", || total(&s.store) == 2);
    wait_for("lag reported", || indexer.lag().behind_bytes > 0);
    // The torn third line is not indexed, nor skipped as garbage.
    assert_eq!(indexer.lag().skipped, 0);
    assert_eq!(total(&s.store), 2);
    append(&s.log(), &text[cut..]);
    wait_for("the completed line", || total(&s.store) == 3);
    wait_for("no lag", || indexer.lag().behind_bytes == 0);
    indexer.stop();
}

#[test]
fn garbage_lines_are_skipped_and_counted() {
    let s = Setup::new();
    let entries = queued(2);
    let text = format!(
        "{}not json at all\n{{\"ts\":\"x\",\"event\":\"future_event\"}}\n\n{{\"broken\":{}\n{}\n{}",
        common::lines(&entries[..1]),
        // Longer than MAX_LINE, within one read chunk.
        "x".repeat(2 * 1024 * 1024),
        // Longer than a whole read chunk.
        "y".repeat(17 * 1024 * 1024),
        common::lines(&entries[1..]),
    );
    append(&s.log(), &text);
    let indexer = s.spawn();
    wait_for("both good lines", || total(&s.store) == 2);
    wait_for("four skipped", || indexer.lag().skipped == 4);
    wait_for("no lag", || indexer.lag().behind_bytes == 0);
    indexer.stop();
}

#[test]
fn rotation_and_truncation_start_the_new_file_at_zero() {
    let s = Setup::new();
    let first = queued(5);
    append(&s.log(), &common::lines(&first));
    let indexer = s.spawn();
    wait_for("first file", || total(&s.store) == 5);
    // Lines written just before the rotation are still read from the old file.
    let late = queued(2);
    append(&s.log(), &common::lines(&late));
    std::fs::rename(s.log(), s.dir.path().join("mail.log.1")).unwrap();
    let second = queued(3);
    append(&s.log(), &common::lines(&second));
    wait_for("old tail and new file", || total(&s.store) == 10);
    // Truncation in place (copytruncate): shorter than the offset → from 0.
    std::fs::write(s.log(), "").unwrap();
    let third = queued(1);
    append(&s.log(), &common::lines(&third));
    wait_for("the truncated file's line", || total(&s.store) == 11);
    indexer.stop();
    let cp = s.store.checkpoint().unwrap().unwrap();
    assert_eq!(cp.offset, std::fs::metadata(s.log()).unwrap().len());
}

#[test]
fn a_torn_line_left_in_a_rotated_file_is_skipped() {
    let s = Setup::new();
    let text = common::lines(&queued(3));
    let cut = text.len() - 10;
    append(&s.log(), &text[..cut]);
    let indexer = s.spawn();
    wait_for("two lines", || total(&s.store) == 2);
    // The writer died mid-line; the log is rotated and a new one begins.
    std::fs::rename(s.log(), s.dir.path().join("mail.log.1")).unwrap();
    append(&s.log(), &common::lines(&queued(4)));
    wait_for("the new file", || total(&s.store) == 6);
    wait_for("the torn line counted", || indexer.lag().skipped == 1);
    indexer.stop();
}

#[test]
fn a_crash_loses_and_duplicates_nothing() {
    // More lines than one transaction takes (BATCH_LINES): two transactions.
    const N: usize = 70_000;
    let s = Setup::new();
    let entries = queued(N);
    append(&s.log(), &common::lines(&entries));
    // "Crash": drop the indexer as soon as it has committed something, in
    // the middle of the file.
    let indexer = s.spawn();
    wait_for("a first batch", || indexer.lag().indexed > 0);
    let status = indexer.lag();
    drop(indexer);
    if status.indexed < N as u64 {
        // Mid-file: the lag says so.
        assert!(status.behind_bytes > 0, "{status:?}");
    }
    let (after_crash, _) = s.counts();
    assert!(after_crash > 0);
    // A crash between writing rows and the checkpoint cannot happen (one
    // transaction), but an older checkpoint must be harmless: rewind it.
    let cp = s.store.checkpoint().unwrap().unwrap();
    s.store
        .index(
            &[],
            &postern_trackdb::Checkpoint {
                file_id: cp.file_id,
                offset: cp.offset / 2,
            },
        )
        .unwrap();
    let more = queued(10);
    append(&s.log(), &common::lines(&more));
    let indexer = s.spawn();
    wait_for("every event", || s.counts().0 == N + 10);
    indexer.stop();
    // Exactly once: every event id once.
    assert_eq!(s.counts(), (N + 10, N + 10));
}

#[test]
fn stop_indexes_what_is_there() {
    let s = Setup::new();
    let indexer = s.spawn();
    wait_for("idle", || indexer.lag().behind_bytes == 0);
    append(&s.log(), &common::lines(&queued(50)));
    indexer.stop();
    assert_eq!(total(&s.store), 50);
}

#[test]
fn subjects_are_dropped_unless_enabled() {
    let mut s = Setup::new();
    let w = common::world();
    append(&s.log(), &common::lines(&w.entries));
    let indexer = s.spawn();
    wait_for("all", || total(&s.store) == w.entries.len());
    indexer.stop();
    let life = s.store.message(w.delivered.as_str()).unwrap().unwrap();
    assert_eq!(life.subject, None);
    assert!(
        s.store
            .search(&SearchQuery {
                subject: Some("quarterly".into()),
                ..SearchQuery::default()
            })
            .unwrap()
            .is_empty()
    );

    // With `subjects = true` they are kept.
    let s2 = Setup::new();
    s.settings.subjects = true;
    let store: Arc<dyn TrackStore> = s2.store.clone();
    let indexer = Indexer::spawn(store, s.log(), &s.settings).unwrap();
    wait_for("all", || total(&s2.store) == w.entries.len());
    indexer.stop();
    let life = s2.store.message(w.delivered.as_str()).unwrap().unwrap();
    assert_eq!(life.subject.as_deref(), Some("Quarterly Report"));
}

#[test]
fn prunes_at_start_when_retention_is_set() {
    let mut s = Setup::new();
    let w = common::world();
    let old: Vec<LogEntry> = w
        .entries
        .iter()
        .cloned()
        .map(|mut e| {
            if let LogEntry::Mail(r) = &mut e {
                r.ts = "2020-01-01T00:00:00Z".into();
            }
            e
        })
        .collect();
    s.store
        .index(
            &old,
            &postern_trackdb::Checkpoint {
                file_id: 0,
                offset: 0,
            },
        )
        .unwrap();
    s.settings.retention_days = 30;
    let indexer = s.spawn();
    // Every message event is dated 2020: gone after the pruning at start.
    wait_for("pruned", || {
        s.store
            .search(&SearchQuery {
                end: Some(common::t("2021-01-01T00:00:00Z")),
                ..SearchQuery::default()
            })
            .unwrap()
            .is_empty()
    });
    indexer.stop();
}
