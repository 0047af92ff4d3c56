//! Times the real [`Indexer`] catching up on a mail log (e.g. one written
//! by `gen_events --log`) into a new database: the events/s the server's
//! indexer thread reaches on a backlog.
//!
//! ```text
//! cargo run --release -p postern-trackdb --example index_log -- /tmp/trackbench/mail.log /tmp/trackbench/indexed.db
//! ```
#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use postern_trackdb::{Indexer, SqliteStore, TrackStore, TrackingSettings};

fn main() {
    let mut args = std::env::args().skip(1);
    let log = std::path::PathBuf::from(args.next().expect("usage: index_log MAIL_LOG NEW_DB"));
    let db = std::path::PathBuf::from(args.next().expect("usage: index_log MAIL_LOG NEW_DB"));
    let _ = std::fs::remove_file(&db);
    let mut settings = TrackingSettings::new(db.parent().unwrap());
    settings.database.clone_from(&db);
    settings.retention_days = 0;
    let store: Arc<dyn TrackStore> = Arc::new(SqliteStore::open(&db).unwrap());
    let size = std::fs::metadata(&log).unwrap().len();
    let t0 = Instant::now();
    let indexer = Indexer::spawn(store, log, &settings).unwrap();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let s = indexer.lag();
        if s.behind_bytes == 0 && s.indexed > 0 {
            break;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let s = indexer.lag();
    indexer.stop();
    println!(
        "{} events ({size} bytes) in {secs:.1} s: {:.0} events/s, {} lines skipped",
        s.indexed,
        s.indexed as f64 / secs,
        s.skipped
    );
}
