//! Plain settings for the spool.

use std::path::PathBuf;
use std::time::Duration;

/// Spool settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolSettings {
    /// Root directory of the spool (created if missing).
    pub dir: PathBuf,
    /// Longest time a commit waits for others to share one directory fsync
    /// (group commit). Default 0: share only with commits already waiting.
    pub group_commit_window: Duration,
    /// How many files of delivered messages the spool keeps (renamed into `tmp/`)
    /// to receive new messages in, instead of unlinking them and creating new
    /// files (`docs/spool-format.md` §3, "File reuse"). 0 turns reuse off.
    /// Default 4096 (and never more than 128 MiB in total, files up to 1 MiB).
    /// It should cover the swings of the queue's size (a burst accepted faster
    /// than it is delivered needs new files, and unlinks them afterwards beyond
    /// this), and at least the message rate × `reuse_min_age`.
    pub reuse_max_files: usize,
    /// A kept file is rewritten only after it has been kept this long, so a
    /// reader that opened the message just before its removal (`postern queue
    /// show`) still reads the old, complete message. Default 50 ms.
    pub reuse_min_age: Duration,
    /// Free-space floor of the spool's file system, in bytes (Postfix
    /// `queue_minfree`): below it [`crate::Spool::admit`] and
    /// [`crate::Spool::begin`] refuse new messages (`452 4.3.1`), and removal
    /// unlinks files instead of keeping them for reuse. 0 turns the check off.
    /// Default [`DEFAULT_MIN_FREE`].
    pub min_free: u64,
    /// How long a measurement of the free space is trusted before the next
    /// `statvfs(2)`. Default 1 s, so a check per `MAIL` costs nothing; tests set 0.
    pub space_check_interval: Duration,
    /// While the spool is poisoned, the log repeats it this often. Default 1 min.
    pub poison_reminder: Duration,
    /// Threads that do the spool's blocking file work for async callers
    /// ([`crate::Spool::execute`]). Default 4: enough file fsyncs in flight
    /// at once to keep the group commit's batches full, few enough that their
    /// malloc arenas stay few.
    pub io_threads: usize,
    /// Longest time a removal ([`crate::Spool::remove_then`]) waits for a
    /// commit to share its directory fsync with, when no commit is waiting.
    /// Default 10 ms. It only delays when a removal is durable (the window in
    /// which a crash brings a delivered message back); 0: fsync at once.
    pub removal_window: Duration,
}

/// Default free-space floor: 100 MiB.
pub const DEFAULT_MIN_FREE: u64 = 100 * 1024 * 1024;

impl SpoolSettings {
    /// Settings with defaults for the spool rooted at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            group_commit_window: Duration::ZERO,
            reuse_max_files: 4096,
            reuse_min_age: Duration::from_millis(50),
            min_free: DEFAULT_MIN_FREE,
            space_check_interval: Duration::from_secs(1),
            poison_reminder: Duration::from_mins(1),
            io_threads: 4,
            removal_window: Duration::from_millis(10),
        }
    }
}
