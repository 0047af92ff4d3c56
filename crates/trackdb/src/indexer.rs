//! [`Indexer`]: tails the mail log on its own thread and indexes it in
//! batches, never touching the server's hot path (it only reads the file the
//! mail-log writer appends to).
//!
//! - Starts from the store's checkpoint (file identity + byte offset) and
//!   catches up; that is how a crash loses nothing — events are in the mail
//!   log and are indexed at the next start.
//! - Reads complete lines only: a partial last line waits for its newline.
//! - One transaction per read (the complete lines of up to [`CHUNK`] bytes,
//!   at most [`BATCH_LINES`]): fewer commits, each index page written to
//!   the WAL once per batch; polls every [`POLL`] when idle.
//! - Rotation (the path names another inode) → the old file is read to its
//!   end, then the new one from 0; truncation (the file is shorter than the
//!   offset) → from 0.
//! - Rotation while stopped → at start the checkpoint's file is looked for
//!   beside the path, renamed (`mail.log.1`, by file id) or compressed
//!   (`mail.log.2.gz`, by its [`FileHead`] fingerprint): its tail is read,
//!   then every newer rotated file, then the path ([`crate::rotated`]).
//! - Garbage lines (damaged, overlong, unknown events) are skipped and counted.
//! - Prunes once at start and every hour when `retention_days > 0`.
//! - Memory is bounded: one read buffer of [`CHUNK`] bytes and one batch
//!   (the parsed lines of one read: ≈ 30 MB at most).
//! - The thread runs at a lower CPU priority ([`NICE`]): when it catches up
//!   on a backlog, the server's sessions and deliveries go first.
//!
//! # Security
//! Lines longer than [`MAX_LINE`] are skipped whole (a damaged log cannot
//! make the indexer buffer without bound). Subjects are removed before
//! indexing unless `[tracking] subjects` is on.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::entry::{Batch, LogEntry};
use crate::error::StoreError;
use crate::rotated::{self, GzTail, Rotated};
use crate::settings::TrackingSettings;
use crate::store::TrackStore;
use crate::types::{Checkpoint, FileHead};

/// Lines per transaction at most (a 16 MiB read of the mail log holds about
/// 37 000: in practice one transaction per read).
pub const BATCH_LINES: usize = 64_000;
/// Wait between two looks at an idle mail log.
pub const POLL: Duration = Duration::from_millis(250);
/// Bytes read at once, indexed in one transaction. Large: random index
/// inserts dirty thousands of pages per transaction, each written to the
/// WAL and the database once per transaction — 16 MiB instead of 4 MiB cost
/// ≈ 12 % less CPU per event for ≈ 40 MB more memory while catching up
/// (docs/benchmarks.md "Issue 12").
pub const CHUNK: usize = 16 * 1024 * 1024;
/// Read buffer kept while idle; a larger one (a catch-up's) is freed.
const IDLE_BUF: usize = 1024 * 1024;
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
            source: None,
            file_id: 0,
            offset: 0,
            head: None,
            resumed: None,
            backlog: VecDeque::new(),
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

    /// Indexes what is in the mail log now, then stops the thread; returns
    /// how far it got (the counters include that last catch-up).
    pub fn stop(mut self) -> IndexerStatus {
        self.shared.drain.store(true, Ordering::Relaxed);
        self.join();
        self.lag()
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
pub(crate) fn file_id(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.ino() ^ meta.dev().rotate_left(40)
}

#[cfg(not(unix))]
pub(crate) fn file_id(_meta: &std::fs::Metadata) -> u64 {
    0
}

/// What the indexer reads. A rotated file read at start is finished (no
/// writer): its end moves on to the next one, then to the path.
enum Source {
    /// The mail log.
    Live(File),
    /// A rotated file read at start, not compressed.
    Rotated(File),
    /// A compressed rotated file read at start.
    Gz(Box<GzTail>),
}

impl Source {
    fn plain(&self) -> Option<&File> {
        match self {
            Source::Live(f) | Source::Rotated(f) => Some(f),
            Source::Gz(_) => None,
        }
    }
}

struct Tail {
    store: Arc<dyn TrackStore>,
    path: PathBuf,
    shared: Arc<Shared>,
    subjects: bool,
    retention_days: u32,
    source: Option<Source>,
    file_id: u64,
    offset: u64,
    /// The fingerprint of the file being read; `None` until known (taken
    /// at its first batch).
    head: Option<FileHead>,
    /// The checkpoint found at start.
    resumed: Option<Checkpoint>,
    /// Newer rotated files still to read at start, oldest first.
    backlog: VecDeque<Rotated>,
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
                match self
                    .store
                    .checkpoint()
                    .and_then(|cp| Ok((cp, self.store.checkpoint_head()?)))
                {
                    Ok((cp, head)) => {
                        resumed = true;
                        if let Some(cp) = cp {
                            self.file_id = cp.file_id;
                            self.offset = cp.offset;
                            self.head = head;
                            self.resumed = Some(cp);
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
                    // Caught up: give back a catch-up's read buffer (what it
                    // holds is consumed; a plain file is read again from
                    // the offset).
                    if self.buf.capacity() > IDLE_BUF {
                        self.buf = Vec::new();
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
        if self.source.is_none()
            && let Some(step) = self.open_next()
        {
            return step;
        }
        let read = match self.source.as_mut() {
            Some(Source::Live(f) | Source::Rotated(f)) => read_plain(f, self.offset, &mut self.buf),
            Some(Source::Gz(g)) => match g.read_chunk(&mut self.buf, CHUNK) {
                Ok(n) => Ok(n),
                Err(e) => {
                    // Once per file: the rest of it is skipped, the next one read.
                    tracing::warn!(error = %e, "tracking indexer: a rotated mail log");
                    self.end_rotated();
                    return Step::Progress;
                }
            },
            None => Ok(0),
        };
        match read {
            Ok(0) if self.catching_up() => {
                self.end_rotated();
                Step::Progress
            }
            Ok(0) => self.check_rotation(),
            Ok(_) => {
                let step = self.index_buffer();
                // While catching up, the lag moves with every chunk.
                self.update_behind();
                step
            }
            Err(e) => {
                self.fail(&e);
                self.source = None;
                Step::Failed
            }
        }
    }

    /// Opens what comes next: the newer rotated files read at start, then
    /// the path. `Some` when there is nothing to read now.
    fn open_next(&mut self) -> Option<Step> {
        if let Some(next) = self.backlog.pop_front() {
            self.open_rotated(&next, None);
            return Some(Step::Progress);
        }
        match open(&self.path) {
            Ok(Some((f, id, len))) => {
                let mut another = id != self.file_id || len < self.offset;
                if !self.rotated_looked {
                    self.rotated_looked = true;
                    // Our file, unless the inode was reused by another one.
                    let ours = id == self.file_id
                        && self.head.is_none_or(|h| rotated::plain_matches(&f, h));
                    if !ours && let Some(cp) = self.resumed {
                        // Rotated while we were stopped: finish the
                        // checkpoint's file first, then the newer ones.
                        if let Some((old, newer)) =
                            rotated::catch_up(&self.path, &cp, self.head.as_ref())
                        {
                            tracing::info!(path = %self.path.display(), rotated = %old.path.display(),
                                newer = newer.len(), "tracking: finishing the rotated mail log first");
                            self.backlog = newer.into();
                            self.open_rotated(&old, Some(cp.offset));
                            return Some(Step::Progress);
                        }
                        if cp.offset > 0 {
                            tracing::warn!(path = %self.path.display(),
                                "tracking: the mail log was rotated while the indexer was stopped and \
                                 the checkpoint's file is not beside it (renamed or gzip-compressed): \
                                 its events after the checkpoint are not indexed");
                        }
                    }
                    another |= !ours;
                }
                if another {
                    // Another file than the checkpoint's, or truncated.
                    self.file_id = id;
                    self.offset = 0;
                    self.head = None;
                    self.skip_to_newline = false;
                }
                self.source = Some(Source::Live(f));
                self.update_behind();
                None
            }
            Ok(None) => Some(Step::Idle), // not created yet
            Err(e) => {
                self.fail(&e);
                Some(Step::Failed)
            }
        }
    }

    /// Starts reading a rotated file: the checkpoint's from its offset
    /// (`Some`), a newer one from the start.
    fn open_rotated(&mut self, r: &Rotated, offset: Option<u64>) {
        if offset.is_none() {
            self.head = None;
        }
        self.offset = offset.unwrap_or(0);
        self.skip_to_newline = false;
        let opened = if r.compressed {
            GzTail::open(&r.path, self.offset).map(|(g, id)| (Source::Gz(Box::new(g)), id))
        } else {
            File::open(&r.path).and_then(|f| {
                let id = file_id(&f.metadata()?);
                Ok((Source::Rotated(f), id))
            })
        };
        match opened {
            Ok((source, id)) => {
                self.file_id = id;
                self.source = Some(source);
                self.update_behind();
            }
            Err(e) => {
                tracing::warn!(path = %r.path.display(), error = %e,
                    "tracking indexer: cannot open a rotated mail log; skipped");
                self.end_rotated();
            }
        }
    }

    /// The end of a rotated file read at start (or a damaged one): on to
    /// the next.
    fn end_rotated(&mut self) {
        self.source = None;
        self.skip_to_newline = false;
    }

    /// Reading a rotated file at start.
    fn catching_up(&self) -> bool {
        matches!(self.source, Some(Source::Rotated(_) | Source::Gz(_)))
    }

    /// The length of the file being read (0 when none is open, or a
    /// compressed one: it does not grow).
    fn file_len(&self) -> u64 {
        self.source
            .as_ref()
            .and_then(Source::plain)
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len())
    }

    /// Bytes of our file after the offset (of a compressed file: its
    /// compressed bytes not read yet).
    fn update_behind(&self) {
        let behind = match &self.source {
            Some(Source::Live(f) | Source::Rotated(f)) => match f.metadata() {
                Ok(m) => m.len().saturating_sub(self.offset),
                Err(_) => return,
            },
            Some(Source::Gz(g)) => g.behind(),
            None => return,
        };
        self.shared.behind.store(behind, Ordering::Relaxed);
    }

    /// At the end of our file: has the path moved on to another file, or
    /// was ours truncated?
    fn check_rotation(&mut self) -> Step {
        let current = std::fs::metadata(&self.path).ok();
        let ours_len = self.file_len();
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
                self.source = None;
                self.shared.behind.store(m.len(), Ordering::Relaxed);
                Step::Progress
            }
            Some(_) if ours_len < self.offset => {
                // Truncated (copytruncate): new content, a new fingerprint.
                self.offset = 0;
                self.head = None;
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

    /// Indexes the complete lines in `buf`, batch by batch, moving the
    /// offset with each committed batch.
    fn index_buffer(&mut self) -> Step {
        let buf = std::mem::take(&mut self.buf);
        let base = self.offset;
        let step = self.index_lines(&buf);
        if let Some(Source::Gz(g)) = self.source.as_mut() {
            // A compressed file cannot seek back: keep what was not consumed.
            let consumed = usize::try_from(self.offset.saturating_sub(base)).unwrap_or(usize::MAX);
            g.keep(buf.get(consumed..).unwrap_or_default());
        }
        self.buf = buf;
        step
    }

    /// The fingerprint of the file being read, from `buf` when it starts
    /// at byte 0, else read from the file (an uncompressed one).
    fn take_head(&mut self, base: u64, buf: &[u8]) {
        if self.head.is_some() {
            return;
        }
        self.head = if base == 0 {
            rotated::head_of(buf)
        } else if let Some(Source::Live(f) | Source::Rotated(f)) = self.source.as_mut() {
            let mut first = Vec::with_capacity(rotated::HEAD_MAX);
            f.seek(SeekFrom::Start(0))
                .and_then(|_| f.take(rotated::HEAD_MAX as u64).read_to_end(&mut first))
                .ok()
                .and_then(|_| rotated::head_of(&first))
        } else {
            None
        };
    }

    fn index_lines(&mut self, buf: &[u8]) -> Step {
        let base = self.offset;
        self.take_head(base, buf);
        let mut pos = 0usize;
        if self.skip_to_newline {
            let Some(i) = buf.iter().position(|b| *b == b'\n') else {
                self.offset += buf.len() as u64;
                return Step::Progress;
            };
            pos = i + 1;
            self.skip_to_newline = false;
        }
        let mut batch = Batch::default();
        let mut batch_end = pos;
        let mut lines = 0usize;
        while let Some(rel) = buf[pos..].iter().position(|b| *b == b'\n') {
            let line = &buf[pos..pos + rel];
            pos += rel + 1;
            lines += 1;
            let text = (line.len() <= MAX_LINE)
                .then(|| std::str::from_utf8(line).ok())
                .flatten();
            match text.and_then(|t| LogEntry::parse(t).map(|e| (t, e))) {
                Some((text, entry)) => {
                    // Stored as logged, unless the subject had to go.
                    let (entry, changed) = self.privacy(entry);
                    batch.push(entry, (!changed).then_some(text));
                }
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
        if self.catching_up() {
            // A rotated file read at start ends with a torn line.
            self.shared.skipped.fetch_add(1, Ordering::Relaxed);
            self.end_rotated();
            return Step::Progress;
        }
        match std::fs::metadata(&self.path) {
            Ok(m) if file_id(&m) != self.file_id => {
                self.shared.skipped.fetch_add(1, Ordering::Relaxed);
                self.source = None;
                Step::Progress
            }
            _ => {
                self.update_behind();
                Step::Idle
            }
        }
    }

    /// Commits `batch` with the checkpoint at `offset` (just after its last line).
    fn commit(&mut self, batch: &mut Batch<'_>, offset: u64) -> bool {
        let cp = Checkpoint {
            file_id: self.file_id,
            offset,
        };
        match self.store.index_batch(batch, &cp, self.head.as_ref()) {
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

    /// The entry without its subject unless `subjects` is on, and whether
    /// that changed it.
    fn privacy(&self, entry: LogEntry) -> (LogEntry, bool) {
        match entry {
            LogEntry::Mail(mut r) if !self.subjects => {
                let mut changed = false;
                if let postern_track::MailEvent::Received(x) = &mut r.event {
                    changed = x.subject.take().is_some();
                }
                (LogEntry::Mail(r), changed)
            }
            other => (other, false),
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

/// Reads up to [`CHUNK`] bytes of `f` from `offset` into `buf`.
fn read_plain(f: &mut File, offset: u64, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    f.seek(SeekFrom::Start(offset))?;
    buf.clear();
    f.take(CHUNK as u64).read_to_end(buf)
}

/// Opens the log: the file, its identity and length; `None` when absent.
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
