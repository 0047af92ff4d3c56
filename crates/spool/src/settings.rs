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
}

impl SpoolSettings {
    /// Settings with defaults for the spool rooted at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            group_commit_window: Duration::ZERO,
        }
    }
}
