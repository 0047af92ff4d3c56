//! Helpers of the indexer tests: a temporary directory with a store and a
//! mail log, appending lines, waiting with a deadline.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use postern_spool::QueueId;
use postern_track::{MailEvent, Queued};
use postern_trackdb::{Indexer, LogEntry, SearchQuery, SqliteStore, TrackStore, TrackingSettings};

pub const DEADLINE: Duration = Duration::from_secs(20);

pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

pub fn total(store: &SqliteStore) -> usize {
    store
        .search(&SearchQuery {
            limit: 10_000,
            ..SearchQuery::default()
        })
        .unwrap()
        .len()
}

pub fn queued(n: usize) -> Vec<LogEntry> {
    (0..n)
        .map(|i| {
            super::rec(
                QueueId::generate(),
                "2026-12-01T10:00:00.000Z",
                MailEvent::Queued(Queued {
                    sender: format!("s{i}@example.com"),
                    rcpt_count: 1,
                    size: 10,
                    origin: "smtp".into(),
                }),
            )
        })
        .collect()
}

pub struct Setup {
    pub dir: tempfile::TempDir,
    pub store: Arc<SqliteStore>,
    pub settings: TrackingSettings,
}

impl Setup {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = TrackingSettings::new(dir.path());
        settings.retention_days = 0;
        let store = Arc::new(SqliteStore::open(&settings.database).unwrap());
        Self {
            dir,
            store,
            settings,
        }
    }

    pub fn log(&self) -> std::path::PathBuf {
        self.dir.path().join("mail.log")
    }

    /// Events stored, and distinct event ids among them (SQL: not capped
    /// like a search).
    pub fn counts(&self) -> (usize, usize) {
        let conn = rusqlite::Connection::open(&self.settings.database).unwrap();
        conn.query_row(
            "SELECT count(*), count(DISTINCT event_id) FROM events",
            [],
            |r| {
                Ok((
                    usize::try_from(r.get::<_, i64>(0)?).unwrap(),
                    usize::try_from(r.get::<_, i64>(1)?).unwrap(),
                ))
            },
        )
        .unwrap()
    }

    pub fn spawn(&self) -> Indexer {
        let store: Arc<dyn TrackStore> = self.store.clone();
        Indexer::spawn(store, self.log(), &self.settings).unwrap()
    }
}
