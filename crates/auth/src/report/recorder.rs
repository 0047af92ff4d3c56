//! The recorder: sessions hand it one [`ReportRecord`] per evaluated message
//! and go on at once. A bounded channel feeds one writer thread that appends
//! the records, in batches, as JSON lines to one file per UTC day
//! (`records-YYYY-MM-DD.jsonl` in the reports directory).
//!
//! [`ReportRecorder::record`] never blocks and never fails: when the channel
//! is full the record is dropped and counted; the writer logs the drop
//! counters at most once a minute. The writer also caps what one policy
//! domain may add in one day (records and bytes), how many domains a day
//! may hold and how large a day's file may grow, and counts what the caps
//! dropped ([`RecorderStats`]).
//!
//! Appends are not fsynced: a crash may lose the last batch of records, which
//! only makes a report slightly incomplete (reports are statistics, not
//! mail).
//!
//! # Security
//! Records carry peer-controlled strings; they are written with serde_json
//! (escaped), into files named only from the UTC date. The caps bound the
//! disk a flood of forged `From:` domains can take.
//!
//! # Standards
//! RFC 7489 §7.2 (what an aggregate report needs per message).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use time::Date;

use super::ReportError;
use super::days::{day_name, day_of};
use super::record::ReportRecord;

/// Most records one write gathers.
const BATCH: usize = 1024;
/// How often the writer wakes when idle (to see a shutdown).
const IDLE_WAKE: Duration = Duration::from_millis(250);
/// Drop counters are logged at most this often.
const LOG_EVERY: Duration = Duration::from_mins(1);

/// Bounds of the recorder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderLimits {
    /// Records waiting for the writer; past this, records are dropped.
    pub queue_len: usize,
    /// Records one policy domain may add to one day.
    pub max_records_per_domain_per_day: u32,
    /// Bytes (JSON lines) one policy domain may add to one day.
    pub max_bytes_per_domain_per_day: u64,
    /// Policy domains one day may hold.
    pub max_domains_per_day: usize,
    /// Bytes one day's file may hold, all domains together.
    pub max_bytes_per_day: u64,
}

impl Default for RecorderLimits {
    fn default() -> Self {
        RecorderLimits {
            queue_len: 10_000,
            max_records_per_domain_per_day: 100_000,
            max_bytes_per_domain_per_day: 64 * 1024 * 1024,
            max_domains_per_day: 50_000,
            max_bytes_per_day: 1024 * 1024 * 1024,
        }
    }
}

/// What the recorder did so far (since it was opened).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// Records written to a day file.
    pub written: u64,
    /// Records dropped because the channel was full (or the writer stopped).
    pub dropped_queue_full: u64,
    /// Records dropped by the per-day caps.
    pub dropped_over_cap: u64,
    /// Records lost to a write error.
    pub write_errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    written: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_over_cap: AtomicU64,
    write_errors: AtomicU64,
}

impl Counters {
    fn stats(&self) -> RecorderStats {
        RecorderStats {
            written: self.written.load(Ordering::Relaxed),
            dropped_queue_full: self.dropped_queue_full.load(Ordering::Relaxed),
            dropped_over_cap: self.dropped_over_cap.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
        }
    }
}

/// The sessions' handle: cheap to clone, never blocks.
#[derive(Clone, Debug)]
pub struct ReportRecorder {
    tx: SyncSender<ReportRecord>,
    counters: Arc<Counters>,
}

/// The receiving end of the channel before its writer runs
/// ([`RecordQueue::start`]).
#[derive(Debug)]
pub struct RecordQueue {
    rx: Receiver<ReportRecord>,
    counters: Arc<Counters>,
    limits: RecorderLimits,
}

/// The running writer thread. [`RecorderHandle::shutdown`] writes what is
/// queued and stops it; dropping the handle does the same.
#[derive(Debug)]
pub struct RecorderHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ReportRecorder {
    /// Opens the recorder on `dir` (created if needed) and starts its writer.
    pub fn open(
        dir: &Path,
        limits: RecorderLimits,
    ) -> Result<(ReportRecorder, RecorderHandle), ReportError> {
        let (recorder, queue) = Self::channel(limits);
        let handle = queue.start(dir)?;
        Ok((recorder, handle))
    }

    /// The channel alone: records queue (up to `limits.queue_len`) until
    /// [`RecordQueue::start`] starts the writer.
    pub fn channel(limits: RecorderLimits) -> (ReportRecorder, RecordQueue) {
        let (tx, rx) = mpsc::sync_channel(limits.queue_len);
        let counters = Arc::new(Counters::default());
        (
            ReportRecorder {
                tx,
                counters: Arc::clone(&counters),
            },
            RecordQueue {
                rx,
                counters,
                limits,
            },
        )
    }

    /// Queues one record. Never blocks, never fails: a record without `rua=`
    /// is ignored, and one that finds the channel full is dropped and
    /// counted.
    pub fn record(&self, record: ReportRecord) {
        if !record.wants_report() {
            return;
        }
        match self.tx.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters
                    .dropped_queue_full
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The counters.
    pub fn stats(&self) -> RecorderStats {
        self.counters.stats()
    }
}

impl RecordQueue {
    /// Starts the writer thread on `dir` (created 0700 if needed). The
    /// per-domain counts of today's and yesterday's files are read back
    /// first, so a restart does not reset the caps.
    pub fn start(self, dir: &Path) -> Result<RecorderHandle, ReportError> {
        create_dir(dir)?;
        let mut writer = Writer {
            dir: dir.to_path_buf(),
            limits: self.limits,
            counters: self.counters,
            per_domain: HashMap::new(),
            domains: HashMap::new(),
            day_bytes: HashMap::new(),
            last_log: Instant::now(),
            logged: RecorderStats::default(),
        };
        let today = super::days::today();
        for day in [today.previous_day(), Some(today)].into_iter().flatten() {
            writer.recount(day);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let rx = self.rx;
        let thread = std::thread::Builder::new()
            .name("dmarc-recorder".into())
            .spawn(move || writer.run(&rx, &stop2))
            .map_err(|e| ReportError::Io {
                path: dir.to_path_buf(),
                source: e,
            })?;
        Ok(RecorderHandle {
            stop,
            thread: Some(thread),
        })
    }
}

impl RecorderHandle {
    /// Writes what is queued, then stops the writer.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the DMARC report recorder thread panicked");
        }
    }
}

impl Drop for RecorderHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Creates the reports directory owner-only.
pub(crate) fn create_dir(dir: &Path) -> Result<(), ReportError> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| ReportError::Io {
            path: dir.to_path_buf(),
            source: e,
        })
}

/// `<dir>/records-YYYY-MM-DD.jsonl`.
pub fn day_file(dir: &Path, day: Date) -> PathBuf {
    dir.join(format!("records-{}.jsonl", day_name(day)))
}

#[derive(Debug, Default, Clone, Copy)]
struct DomainDay {
    records: u32,
    bytes: u64,
}

struct Writer {
    dir: PathBuf,
    limits: RecorderLimits,
    counters: Arc<Counters>,
    /// (day, policy domain) → what it added; only the latest two days kept.
    per_domain: HashMap<(Date, String), DomainDay>,
    /// Day → how many policy domains it holds.
    domains: HashMap<Date, usize>,
    /// Day → bytes in its file.
    day_bytes: HashMap<Date, u64>,
    last_log: Instant,
    logged: RecorderStats,
}

impl Writer {
    fn run(mut self, rx: &Receiver<ReportRecord>, stop: &AtomicBool) {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            match rx.recv_timeout(IDLE_WAKE) {
                Ok(r) => batch.push(r),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.log_drops(true);
                    return;
                }
            }
            let mut closed = false;
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            let busy = !batch.is_empty();
            if busy {
                self.write(&mut batch);
            }
            self.log_drops(false);
            if busy {
                continue;
            }
            if closed || stop.load(Ordering::Relaxed) {
                self.log_drops(true);
                return;
            }
        }
    }

    /// Counts what today's (or another day's) file already holds per domain.
    fn recount(&mut self, day: Date) {
        #[derive(serde::Deserialize)]
        struct Domain {
            policy_domain: String,
        }
        let Ok(text) = std::fs::read_to_string(day_file(&self.dir, day)) else {
            return;
        };
        for line in text.lines() {
            if let Ok(d) = serde_json::from_str::<Domain>(line) {
                let key = (day, d.policy_domain);
                if !self.per_domain.contains_key(&key) {
                    *self.domains.entry(day).or_default() += 1;
                }
                let e = self.per_domain.entry(key).or_default();
                e.records = e.records.saturating_add(1);
                e.bytes += line.len() as u64 + 1;
                *self.day_bytes.entry(day).or_default() += line.len() as u64 + 1;
            }
        }
    }

    fn write(&mut self, batch: &mut Vec<ReportRecord>) {
        let mut files: Vec<(Date, Vec<u8>, u64)> = Vec::new();
        let mut newest = None;
        for mut r in batch.drain(..) {
            r.normalize();
            let day = day_of(r.time);
            newest = newest.max(Some(day));
            let Ok(mut line) = serde_json::to_vec(&r) else {
                self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            line.push(b'\n');
            let key = (day, r.policy_domain);
            let known = self.per_domain.contains_key(&key);
            let per_day = self.domains.get(&day).copied().unwrap_or(0);
            let e = self.per_domain.get(&key).copied().unwrap_or_default();
            let day_bytes = self.day_bytes.get(&day).copied().unwrap_or(0);
            let over = (!known && per_day >= self.limits.max_domains_per_day)
                || day_bytes + line.len() as u64 > self.limits.max_bytes_per_day
                || e.records >= self.limits.max_records_per_domain_per_day
                || e.bytes + line.len() as u64 > self.limits.max_bytes_per_domain_per_day;
            if over {
                self.counters
                    .dropped_over_cap
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if !known {
                *self.domains.entry(day).or_default() += 1;
            }
            *self.day_bytes.entry(day).or_default() += line.len() as u64;
            let entry = self.per_domain.entry(key).or_default();
            entry.records += 1;
            entry.bytes += line.len() as u64;
            match files.iter_mut().find(|(d, _, _)| *d == day) {
                Some((_, buf, n)) => {
                    buf.extend_from_slice(&line);
                    *n += 1;
                }
                None => files.push((day, line, 1)),
            }
        }
        for (day, buf, n) in files {
            let path = day_file(&self.dir, day);
            match append(&path, &buf) {
                Ok(()) => {
                    self.counters.written.fetch_add(n, Ordering::Relaxed);
                }
                Err(e) => {
                    self.counters.write_errors.fetch_add(n, Ordering::Relaxed);
                    tracing::warn!(file = %path.display(), error = %e,
                        "dmarc reports: cannot append records");
                }
            }
        }
        // Keep the caps of the two newest days only (bounded map).
        if let Some(newest) = newest {
            let keep_from = newest.previous_day().unwrap_or(newest);
            self.per_domain.retain(|(d, _), _| *d >= keep_from);
            self.domains.retain(|d, _| *d >= keep_from);
            self.day_bytes.retain(|d, _| *d >= keep_from);
        }
    }

    /// Logs the drop counters when they changed, at most once a minute
    /// (or now, when `force`).
    fn log_drops(&mut self, force: bool) {
        if !force && self.last_log.elapsed() < LOG_EVERY {
            return;
        }
        let now = self.counters.stats();
        if now.dropped_queue_full != self.logged.dropped_queue_full
            || now.dropped_over_cap != self.logged.dropped_over_cap
            || now.write_errors != self.logged.write_errors
        {
            tracing::warn!(
                dropped_queue_full = now.dropped_queue_full,
                dropped_over_cap = now.dropped_over_cap,
                write_errors = now.write_errors,
                written = now.written,
                "dmarc reports: records dropped (totals since start)"
            );
            self.logged = now;
        }
        self.last_log = Instant::now();
    }
}

fn append(path: &Path, buf: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(buf)
}
