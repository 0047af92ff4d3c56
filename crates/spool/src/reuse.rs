//! The pool of delivered messages' files kept in `tmp/` to receive new messages
//! in (`docs/spool-format.md` §3, "File reuse"): bounded in count and bytes.
//!
//! # Security
//! Only the spool's own files, named from a `QueueId`; a kept file is rewritten
//! and cut to length before it gets a name in `msg/` (see `spool.rs`).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Files of delivered messages larger than this are unlinked, not kept.
pub(crate) const REUSE_MAX_FILE_LEN: u64 = 1024 * 1024;
/// Disk space the kept files may hold in total.
pub(crate) const REUSE_MAX_BYTES: u64 = 128 * 1024 * 1024;

/// Files of delivered messages kept in `tmp/` for new messages (oldest first).
///
/// Why: unlinking a delivered message's file and creating a new one for the next
/// message frees and allocates an inode per message, and on ext4 without a
/// journal every allocation walks past all inodes freed in the last minute under
/// the directory lock (`docs/benchmarks.md`, finding 1). Rewriting a kept file
/// does neither.
pub(crate) struct Reuse {
    pub(crate) max_files: usize,
    pub(crate) min_age: Duration,
    /// Cleared when the file system cannot rewrite files (`open_rewrite` says
    /// `None`): removal then unlinks, as without reuse.
    pub(crate) supported: AtomicBool,
    pub(crate) kept: Mutex<Kept>,
}

#[derive(Default)]
pub(crate) struct Kept {
    pub(crate) files: VecDeque<KeptFile>,
    pub(crate) bytes: u64,
}

pub(crate) struct KeptFile {
    pub(crate) path: PathBuf,
    pub(crate) len: u64,
    pub(crate) since: Instant,
}

impl Reuse {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Kept> {
        // Every update keeps `files` and `bytes` consistent before it can panic.
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_on(&self) -> bool {
        self.max_files > 0 && self.supported.load(Ordering::Relaxed)
    }

    /// Is there room for one more file of `len` bytes?
    pub(crate) fn has_room(&self, len: u64) -> bool {
        let kept = self.lock();
        len <= REUSE_MAX_FILE_LEN
            && kept.files.len() < self.max_files
            && kept.bytes + len <= REUSE_MAX_BYTES
    }

    /// Keep `file`; gives it back if there is no room (any more).
    pub(crate) fn put(&self, file: KeptFile) -> Result<(), KeptFile> {
        let mut kept = self.lock();
        if kept.files.len() >= self.max_files || kept.bytes + file.len > REUSE_MAX_BYTES {
            return Err(file);
        }
        kept.bytes += file.len;
        kept.files.push_back(file);
        Ok(())
    }

    /// The oldest kept file, if it has been kept for `min_age`.
    pub(crate) fn take(&self) -> Option<KeptFile> {
        let mut kept = self.lock();
        if kept.files.front()?.since.elapsed() < self.min_age {
            return None;
        }
        let file = kept.files.pop_front()?;
        kept.bytes -= file.len;
        Some(file)
    }

    pub(crate) fn take_all(&self) -> Vec<KeptFile> {
        let mut kept = self.lock();
        kept.bytes = 0;
        kept.files.drain(..).collect()
    }
}
