//! [`Indexer`]: tails the mail log on its own thread and indexes it in
//! batches, never touching the server's hot path (it only reads the file the
//! mail-log writer appends to).
//!
//! - Starts from the store's checkpoint (file identity + byte offset) and
//!   catches up; that is how a crash loses nothing — events are in the mail
//!   log and are indexed at the next start.
//! - Reads complete lines only: a partial last line waits for its newline.
//! - Batches up to [`BATCH_LINES`] lines per transaction; polls every
//!   [`POLL`] when idle.
//! - Rotation (the path names another inode) → the old file is read to its
//!   end, then the new one from 0; truncation (the file is shorter than the
//!   offset) → from 0.
//! - Garbage lines (damaged, overlong, unknown events) are skipped and counted.
//! - Prunes once at start and every hour when `retention_days > 0`.
//! - Memory is bounded: one read buffer of [`CHUNK`] bytes and one batch.
//! - The thread runs at a lower CPU priority ([`NICE`]): when it catches up
//!   on a backlog, the server's sessions and deliveries go first.
//!
//! # Security
//! Lines longer than [`MAX_LINE`] are skipped whole (a damaged log cannot
//! make the indexer buffer without bound). Subjects are removed before
//! indexing unless `[tracking] subjects` is on.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::entry::LogEntry;
use crate::error::StoreError;
use crate::settings::TrackingSettings;
use crate::store::TrackStore;
use crate::types::Checkpoint;

/// Lines per transaction at most.
pub const BATCH_LINES: usize = 2_000;
/// Wait between two looks at an idle mail log.
pub const POLL: Duration = Duration::from_millis(250);
/// Bytes read at once.
pub const CHUNK: usize = 4 * 1024 * 1024;
/// Longest line indexed (as `postern_track::read`'s limit).
pub const MAX_LINE: usize = 1024 * 1024;
/// The indexer thread's nice value (Linux: `setpriority(2)` applies to one thread).
pub const NICE: i32 = 10;
/// Pruning period.
const PRUNE_EVERY: Duration = Duration::from_hours(1);
/// Wait after a failed batch before trying again.
const RETRY: Duration = Duration::from_secs(1);
/// While the mail log grows, each batch is followed by a rest this many
/// times as long as the batch took: the indexer uses at most a tenth of a
/// thread during a burst (the "never able to slow acceptance";
/// `docs/benchmarks.md` "Issue 12" for the cost without it).
const PACE: u32 = 9;
/// Directory entries looked at for a file rotated while we were stopped.
const ROTATED_SCAN: usize = 1000;
/// How long the rotated file must stay unchanged before the indexer moves
/// to the new one (the server reopens within a second: `MailLog`).
const ROTATION_SETTLE: Duration = Duration::from_secs(3);

/// How far the indexer is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexerStatus {
    /// Events indexed since start (lines re-read after a crash count again).
    pub indexed: u64,
    /// Bytes of the mail log not indexed yet.
    pub behind_bytes: u64,
    /// The last error, while the indexer cannot make progress.
    pub last_error: Option<String>,
    /// Lines skipped since start (damaged, overlong, unknown events).
    #[serde(default)]
    pub skipped: u64,
}

#[derive(Default)]
struct Shared {
    indexed: AtomicU64,
    behind: AtomicU64,
    skipped: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// `stop()`: read what is there, then end.
    drain: AtomicBool,
    /// Drop: end after the current batch.
    abandon: AtomicBool,
    wake: Condvar,
    wake_lock: Mutex<()>,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.drain.load(Ordering::Relaxed) || self.abandon.load(Ordering::Relaxed)
    }

    fn sleep(&self, d: Duration) {
        let guard = self
            .wake_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !self.stopping() {
            let _ = self.wake.wait_timeout(guard, d);
        }
    }

    fn set_error(&self, e: Option<String>) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = e;
    }
}

/// The indexer thread; [`Indexer::stop`] ends it after indexing what is
/// there, dropping it ends it after the current batch.
pub struct Indexer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    mail_log: PathBuf,
}

impl std::fmt::Debug for Indexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Indexer")
            .field("mail_log", &self.mail_log)
            .field("status", &self.lag())
            .finish_non_exhaustive()
    }
}

impl Indexer {
    /// Starts the indexer thread on `mail_log` (which need not exist yet).
    pub fn spawn(
        store: Arc<dyn TrackStore>,
        mail_log: PathBuf,
        settings: &TrackingSettings,
    ) -> Result<Indexer, StoreError> {
        let shared = Arc::new(Shared::default());
        let mut tail = Tail {
            store,
            path: mail_log.clone(),
            shared: Arc::clone(&shared),
            subjects: settings.subjects,
            retention_days: settings.retention_days,
            file: None,
            file_id: 0,
            offset: 0,
            skip_to_newline: false,
            buf: Vec::new(),
            rotation_seen: None,
            seen_len: 0,
            rotated_looked: false,
        };
        let thread = std::thread::Builder::new()
            .name("track-indexer".into())
            .spawn(move || tail.run())
            .map_err(|e| StoreError::Thread(e.to_string()))?;
        Ok(Indexer {
            shared,
            thread: Some(thread),
            mail_log,
        })
    }

    /// How far it is.
    pub fn lag(&self) -> IndexerStatus {
        IndexerStatus {
            indexed: self.shared.indexed.load(Ordering::Relaxed),
            behind_bytes: self.shared.behind.load(Ordering::Relaxed),
            last_error: self
                .shared
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            skipped: self.shared.skipped.load(Ordering::Relaxed),
        }
    }

    /// Indexes what is in the mail log now, then stops the thread.
    pub fn stop(mut self) {
        self.shared.drain.store(true, Ordering::Relaxed);
        self.join();
    }

    fn join(&mut self) {
        {
            let _g = self
                .shared
                .wake_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.shared.wake.notify_all();
        }
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("tracking indexer thread panicked");
        }
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shared.abandon.store(true, Ordering::Relaxed);
            self.join();
        }
    }
}

/// The identity of a file: inode, with the device folded into the high bits.
#[cfg(unix)]
fn file_id(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.ino() ^ meta.dev().rotate_left(40)
}

#[cfg(not(unix))]
fn file_id(_meta: &std::fs::Metadata) -> u64 {
    0
}

struct Tail {
    store: Arc<dyn TrackStore>,
    path: PathBuf,
    shared: Arc<Shared>,
    subjects: bool,
    retention_days: u32,
    file: Option<File>,
    file_id: u64,
    offset: u64,
    /// Inside an overlong line: discard up to the next newline.
    skip_to_newline: bool,
    buf: Vec<u8>,
    /// Since when (and at which length of ours) the path names another
    /// file: the rotation is followed once ours stays still.
    rotation_seen: Option<(std::time::Instant, u64)>,
    /// The mail log's length after the last step: growing means the server
    /// is taking mail now, and the indexer paces itself ([`PACE`]).
    seen_len: u64,
    /// A rotated file already looked for (or drained) at start: not again.
    rotated_looked: bool,
}

enum Step {
    /// Read and indexed something; look again at once.
    Progress,
    /// Nothing new.
    Idle,
    /// A failure; wait and retry.
    Failed,
}

impl Tail {
    fn run(&mut self) {
        lower_priority();
        let mut last_prune = None;
        let mut resumed = false;
        loop {
            if self.retention_days > 0
                && last_prune.is_none_or(|t: Instant| t.elapsed() >= PRUNE_EVERY)
            {
                self.prune();
                last_prune = Some(Instant::now());
            }
            if !resumed {
                match self.store.checkpoint() {
                    Ok(cp) => {
                        resumed = true;
                        if let Some(cp) = cp {
                            self.file_id = cp.file_id;
                            self.offset = cp.offset;
                        }
                    }
                    Err(e) => {
                        self.fail(&e);
                        if self.shared.stopping() {
                            return;
                        }
                        self.shared.sleep(RETRY);
                        continue;
                    }
                }
            }
            if self.shared.abandon.load(Ordering::Relaxed) {
                return;
            }
            let started = Instant::now();
            match self.step() {
                Step::Progress => {
                    // While mail is arriving, the indexer takes at most
                    // 1/(PACE+1) of a thread: on a busy machine acceptance
                    // comes first (on shared cores even an idle-priority
                    // thread costs the server); the events wait in the mail
                    // log and the index catches up when the burst is over.
                    let len = self.file_len();
                    let growing = len > self.seen_len;
                    self.seen_len = len;
                    if growing && !self.shared.stopping() {
                        self.shared.sleep(started.elapsed().saturating_mul(PACE));
                    }
                }
                Step::Idle => {
                    if self.shared.stopping() {
                        return;
                    }
                    self.shared.sleep(POLL);
                }
                Step::Failed => {
                    if self.shared.stopping() {
                        return;
                    }
                    self.shared.sleep(RETRY);
                }
            }
        }
    }

    fn prune(&self) {
        let before =
            time::OffsetDateTime::now_utc() - time::Duration::days(i64::from(self.retention_days));
        match self.store.prune(before) {
            Ok(n) if n > 0 => tracing::info!(pruned = n, "tracking: pruned old events"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "tracking: pruning failed"),
        }
    }

    fn fail(&self, e: &dyn std::fmt::Display) {
        tracing::warn!(path = %self.path.display(), error = %e, "tracking indexer");
        self.shared.set_error(Some(e.to_string()));
    }

    /// Opens the mail log (or notices rotation / truncation), reads a chunk
    /// and indexes its complete lines.
    fn step(&mut self) -> Step {
        if self.file.is_none() {
            match open(&self.path) {
                Ok(Some((f, id, len))) => {
                    // The log was rotated while we were stopped: finish the
                    // checkpoint's file first, if it is still beside the path
                    // (`mail.log.1`, `mail.log-20261207`, …); at its end the
                    // rotation is followed as usual.
                    if id != self.file_id && self.file_id != 0 && !self.rotated_looked {
                        self.rotated_looked = true;
                        if let Some(old) = find_rotated(&self.path, self.file_id) {
                            tracing::info!(path = %self.path.display(),
                                "tracking: finishing the rotated mail log first");
                            self.file = Some(old);
                            self.update_behind();
                            return Step::Progress;
                        }
                    }
                    self.rotated_looked = true;
                    if id != self.file_id || len < self.offset {
                        // Another file than the checkpoint's, or truncated.
                        self.file_id = id;
                        self.offset = 0;
                        self.skip_to_newline = false;
                    }
                    self.file = Some(f);
                    self.update_behind();
                }
                Ok(None) => return Step::Idle, // not created yet
                Err(e) => {
                    self.fail(&e);
                    return Step::Failed;
                }
            }
        }
        match self.read_chunk() {
            Ok(0) => self.check_rotation(),
            Ok(_) => {
                let step = self.index_buffer();
                // While catching up, the lag moves with every chunk.
                if let Some(len) = self
                    .file
                    .as_ref()
                    .and_then(|f| f.metadata().ok())
                    .map(|m| m.len())
                {
                    self.shared
                        .behind
                        .store(len.saturating_sub(self.offset), Ordering::Relaxed);
                }
                step
            }
            Err(e) => {
                self.fail(&e);
                self.file = None;
                Step::Failed
            }
        }
    }

    /// The length of the file being read (0 when none is open).
    fn file_len(&self) -> u64 {
        self.file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len())
    }

    /// Bytes of our file after the offset.
    fn update_behind(&self) {
        if let Some(len) = self
            .file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| m.len())
        {
            self.shared
                .behind
                .store(len.saturating_sub(self.offset), Ordering::Relaxed);
        }
    }

    /// At the end of our file: has the path moved on to another file, or
    /// was ours truncated?
    fn check_rotation(&mut self) -> Step {
        let current = std::fs::metadata(&self.path).ok();
        let ours_len = self
            .file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        match current {
            Some(m) if file_id(&m) != self.file_id => {
                // Rotated. The server notices within a second and reopens
                // the path (`MailLog`); until then it may still append to
                // ours: keep reading ours until it has been still for
                // ROTATION_SETTLE, then start the new one at 0.
                let settled = match self.rotation_seen {
                    Some((t, len)) if len == ours_len => t.elapsed() >= ROTATION_SETTLE,
                    _ => {
                        self.rotation_seen = Some((std::time::Instant::now(), ours_len));
                        false
                    }
                };
                if !settled {
                    return Step::Idle;
                }
                self.rotation_seen = None;
                self.file = None;
                self.shared.behind.store(m.len(), Ordering::Relaxed);
                Step::Progress
            }
            Some(_) if ours_len < self.offset => {
                self.offset = 0;
                self.skip_to_newline = false;
                self.shared.behind.store(ours_len, Ordering::Relaxed);
                Step::Progress
            }
            _ => {
                self.shared
                    .behind
                    .store(ours_len.saturating_sub(self.offset), Ordering::Relaxed);
                Step::Idle
            }
        }
    }

    /// Reads up to [`CHUNK`] bytes from the offset into `buf`.
    fn read_chunk(&mut self) -> std::io::Result<usize> {
        let Some(f) = self.file.as_mut() else {
            return Ok(0);
        };
        f.seek(SeekFrom::Start(self.offset))?;
        self.buf.clear();
        let n = f.take(CHUNK as u64).read_to_end(&mut self.buf)?;
        Ok(n)
    }

    /// Indexes the complete lines in `buf`, batch by batch, moving the
    /// offset with each committed batch.
    fn index_buffer(&mut self) -> Step {
        let buf = std::mem::take(&mut self.buf);
        let step = self.index_lines(&buf);
        self.buf = buf;
        step
    }

    fn index_lines(&mut self, buf: &[u8]) -> Step {
        let base = self.offset;
        let mut pos = 0usize;
        if self.skip_to_newline {
            let Some(i) = buf.iter().position(|b| *b == b'\n') else {
                self.offset += buf.len() as u64;
                return Step::Progress;
            };
            pos = i + 1;
            self.skip_to_newline = false;
        }
        let mut batch: Vec<LogEntry> = Vec::new();
        let mut batch_end = pos;
        let mut lines = 0usize;
        while let Some(rel) = buf[pos..].iter().position(|b| *b == b'\n') {
            let line = &buf[pos..pos + rel];
            pos += rel + 1;
            lines += 1;
            match (line.len() <= MAX_LINE)
                .then(|| std::str::from_utf8(line).ok())
                .flatten()
                .and_then(LogEntry::parse)
            {
                Some(entry) => batch.push(self.privacy(entry)),
                None => {
                    if !line.iter().all(u8::is_ascii_whitespace) {
                        self.shared.skipped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            batch_end = pos;
            if lines >= BATCH_LINES {
                if !self.commit(&mut batch, base + batch_end as u64) {
                    return Step::Failed;
                }
                lines = 0;
                if self.shared.abandon.load(Ordering::Relaxed) {
                    return Step::Progress;
                }
            }
        }
        if lines > 0 {
            if !self.commit(&mut batch, base + batch_end as u64) {
                return Step::Failed;
            }
        } else {
            // Only the end of a skipped overlong line: no checkpoint needed
            // (a restart skips it again).
            self.offset = base + batch_end as u64;
        }
        let consumed_any = batch_end > 0;
        if !consumed_any && buf.len() >= CHUNK {
            // No newline in a whole chunk: an overlong line; skip it.
            self.shared.skipped.fetch_add(1, Ordering::Relaxed);
            self.offset += buf.len() as u64;
            self.skip_to_newline = true;
            return Step::Progress;
        }
        if consumed_any {
            Step::Progress
        } else {
            // Only a partial last line: wait for the rest.
            self.check_rotation_partial()
        }
    }

    /// A partial line at the end: idle, unless the log was rotated (the
    /// writer will never finish that line: skip it).
    fn check_rotation_partial(&mut self) -> Step {
        match std::fs::metadata(&self.path) {
            Ok(m) if file_id(&m) != self.file_id => {
                self.shared.skipped.fetch_add(1, Ordering::Relaxed);
                self.file = None;
                Step::Progress
            }
            _ => {
                let len = self
                    .file
                    .as_ref()
                    .and_then(|f| f.metadata().ok())
                    .map_or(0, |m| m.len());
                self.shared
                    .behind
                    .store(len.saturating_sub(self.offset), Ordering::Relaxed);
                Step::Idle
            }
        }
    }

    /// Commits `batch` with the checkpoint at `offset` (just after its last line).
    fn commit(&mut self, batch: &mut Vec<LogEntry>, offset: u64) -> bool {
        let cp = Checkpoint {
            file_id: self.file_id,
            offset,
        };
        match self.store.index(batch, &cp) {
            Ok(()) => {
                self.shared
                    .indexed
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                batch.clear();
                self.offset = cp.offset;
                self.shared.set_error(None);
                // While catching up, the lag moves with every batch.
                self.update_behind();
                true
            }
            Err(e) => {
                self.fail(&e);
                false
            }
        }
    }

    fn privacy(&self, entry: LogEntry) -> LogEntry {
        match entry {
            LogEntry::Mail(mut r) if !self.subjects => {
                if let postern_track::MailEvent::Received(x) = &mut r.event {
                    x.subject = None;
                }
                LogEntry::Mail(r)
            }
            other => other,
        }
    }
}

/// Lowers this thread's CPU priority to [`NICE`] (best effort).
#[cfg(target_os = "linux")]
fn lower_priority() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), NICE) {
        tracing::debug!(error = %e, "tracking indexer: cannot lower its priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// Opens the log: the file, its identity and length; `None` when absent.
/// Files beside `path` whose name starts with its name (logrotate's
/// `mail.log.1`, `mail.log-20261207`; compressed ones cannot be ours) with
/// the identity `id`. At most [`ROTATED_SCAN`] directory entries are looked at.
fn find_rotated(path: &Path, id: u64) -> Option<File> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty())?;
    let name = path.file_name()?.to_str()?;
    for entry in std::fs::read_dir(dir).ok()?.take(ROTATED_SCAN).flatten() {
        let file_name = entry.file_name();
        let Some(other) = file_name.to_str() else {
            continue;
        };
        if other == name || !other.starts_with(name) {
            continue;
        }
        if let Ok(f) = File::open(entry.path())
            && f.metadata().is_ok_and(|m| file_id(&m) == id)
        {
            return Some(f);
        }
    }
    None
}

fn open(path: &Path) -> std::io::Result<Option<(File, u64, u64)>> {
    match File::open(path) {
        Ok(f) => {
            let m = f.metadata()?;
            Ok(Some((f, file_id(&m), m.len())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
