//! The mail log: [`TrackRecord`]s as JSON lines, one per event, written by one
//! thread so callers never wait for the disk.
//!
//! Records go through a bounded channel to the writer thread (like the smtpd
//! transcript); when the channel is full the record is dropped and counted
//! ([`MailLog::dropped`]) rather than stalling a delivery. The writer drains
//! what is queued and flushes once per batch, then rests [`BATCH_INTERVAL`]
//! before the next one, so under load it wakes about 40 times a second
//! instead of once per record (each message makes 5–6 records; waking per
//! record cost as many context switches per message, `docs/benchmarks.md`).
//! A record reaches the file at most that much later; [`MailLog::flush`]
//! still returns only once everything sent before it is written. A crash
//! loses at most the last interval's records (the log is for people and the
//! tracking index, not the queue: `state/<id>` is).
//!
//! # Security
//! Writes one file named by the operator. JSON escaping keeps every record on
//! one line whatever a remote reply contains.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};

use postern_spool::QueueId;

use crate::event::{MailEvent, TrackRecord};
use crate::session::SessionRecord;

/// Records queued for the writer before new ones are dropped.
const CHANNEL: usize = 65_536;

/// Rest between two batches of the writer (at ~20 000 records/s a batch is
/// ~500 records, far below [`CHANNEL`]).
pub const BATCH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(25);

enum Msg {
    Record(Box<TrackRecord>),
    Session(Box<SessionRecord>),
    Flush(SyncSender<()>),
}

#[derive(Clone)]
enum Sink {
    Disabled,
    File(SyncSender<Msg>),
    Memory(Arc<Mutex<Vec<TrackRecord>>>, Arc<Mutex<Vec<SessionRecord>>>),
}

/// Handle to the mail log; cheap to clone.
#[derive(Clone)]
pub struct MailLog {
    sink: Sink,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for MailLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.sink {
            Sink::Disabled => "disabled",
            Sink::File(_) => "file",
            Sink::Memory(..) => "memory",
        };
        f.debug_struct("MailLog")
            .field("sink", &kind)
            .field("dropped", &self.dropped())
            .finish()
    }
}

/// Reads what a [`MailLog::memory`] log recorded (tests, the admin API's recent
/// events).
#[derive(Clone, Debug, Default)]
pub struct MemoryLog {
    records: Arc<Mutex<Vec<TrackRecord>>>,
    sessions: Arc<Mutex<Vec<SessionRecord>>>,
}

impl MemoryLog {
    /// A copy of the session events recorded so far, in order.
    pub fn session_records(&self) -> Vec<SessionRecord> {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A copy of everything recorded so far, in order.
    pub fn records(&self) -> Vec<TrackRecord> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The events about `queue_id`, in order.
    pub fn for_queue_id(&self, queue_id: &QueueId) -> Vec<MailEvent> {
        self.records()
            .into_iter()
            .filter(|r| r.queue_id == *queue_id)
            .map(|r| r.event)
            .collect()
    }

    /// The stable names of the events about `queue_id`, in order.
    pub fn names(&self, queue_id: &QueueId) -> Vec<&'static str> {
        self.for_queue_id(queue_id)
            .iter()
            .map(MailEvent::name)
            .collect()
    }
}

impl MailLog {
    /// Opens (appends to) `path`, creating its directory, and starts the writer
    /// thread.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let (tx, rx) = sync_channel(CHANNEL);
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("mail-log".into())
            .spawn(move || writer(&rx, file, &path))?;
        Ok(Self {
            sink: Sink::File(tx),
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// A log that records nothing.
    pub fn disabled() -> Self {
        Self {
            sink: Sink::Disabled,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A log kept in memory, and the handle to read it.
    pub fn memory() -> (Self, MemoryLog) {
        let mem = MemoryLog::default();
        (
            Self {
                sink: Sink::Memory(Arc::clone(&mem.records), Arc::clone(&mem.sessions)),
                dropped: Arc::new(AtomicU64::new(0)),
            },
            mem,
        )
    }

    /// Records `event` about `queue_id`, now. Never blocks.
    pub fn emit(&self, queue_id: QueueId, event: MailEvent) {
        self.record(TrackRecord::new(queue_id, event));
    }

    /// Records a prepared record. Never blocks.
    pub fn record(&self, record: TrackRecord) {
        tracing::debug!(queue_id = %record.queue_id, event = record.event.name(),
            event_id = %record.event_id, "mail event");
        match &self.sink {
            Sink::Disabled => {}
            Sink::Memory(m, _) => m
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(record),
            Sink::File(tx) => {
                if let Err(TrySendError::Full(_)) = tx.try_send(Msg::Record(Box::new(record))) {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Records a session event (a decision at SMTP time). Never blocks.
    pub fn session(&self, record: SessionRecord) {
        tracing::debug!(session = %record.session, event = record.event.name(), "session event");
        match &self.sink {
            Sink::Disabled => {}
            Sink::Memory(_, m) => m
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(record),
            Sink::File(tx) => {
                if let Err(TrySendError::Full(_)) = tx.try_send(Msg::Session(Box::new(record))) {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Waits until everything recorded before this call is written and
    /// flushed (shutdown, tests). Blocking.
    pub fn flush(&self) {
        if let Sink::File(tx) = &self.sink {
            let (done_tx, done_rx) = sync_channel(1);
            if tx.send(Msg::Flush(done_tx)).is_ok() {
                let _ = done_rx.recv();
            }
        }
    }

    /// Records dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn writer(rx: &Receiver<Msg>, file: File, path: &Path) {
    let mut out = BufWriter::new(file);
    // Block for the first message, then drain what is queued and flush once.
    while let Ok(first) = rx.recv() {
        let mut waiters = Vec::new();
        for msg in std::iter::once(first).chain(rx.try_iter()) {
            match msg {
                Msg::Session(rec) => {
                    let res = serde_json::to_writer(&mut out, &rec)
                        .map_err(std::io::Error::other)
                        .and_then(|()| out.write_all(b"\n"));
                    if let Err(err) = res {
                        tracing::error!(path = %path.display(), error = %err, "mail log write failed");
                    }
                }
                Msg::Record(rec) => {
                    let res = serde_json::to_writer(&mut out, &rec)
                        .map_err(std::io::Error::other)
                        .and_then(|()| out.write_all(b"\n"));
                    if let Err(err) = res {
                        tracing::error!(path = %path.display(), error = %err, "mail log write failed");
                    }
                }
                Msg::Flush(done) => waiters.push(done),
            }
        }
        if let Err(err) = out.flush() {
            tracing::error!(path = %path.display(), error = %err, "mail log flush failed");
        }
        let asked = !waiters.is_empty();
        for w in waiters {
            let _ = w.send(());
        }
        // Let the next records accumulate instead of waking for each one;
        // not after a flush request (shutdown and tests wait on those).
        if !asked {
            std::thread::sleep(BATCH_INTERVAL);
        }
    }
    let _ = out.flush();
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::event::{Queued, RcptOutcome};

    #[test]
    fn file_log_writes_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log").join("mail.log");
        let log = MailLog::open(&path).unwrap();
        let id = QueueId::generate();
        log.emit(
            id,
            MailEvent::Queued(Queued {
                sender: "a@example.com".into(),
                rcpt_count: 1,
                size: 10,
                origin: "smtp".into(),
            }),
        );
        log.emit(
            id,
            MailEvent::Deferred(RcptOutcome {
                rcpt: "b@example.net".into(),
                reply: Some("451 4.3.0 line1\r\n injected".into()),
                status: "4.3.0".into(),
                attempts: 1,
                ..RcptOutcome::default()
            }),
        );
        log.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(v["event"], "deferred");
        assert_eq!(v["queue_id"], id.to_string());
        assert_eq!(v["rcpt"], "b@example.net");
        assert_eq!(log.dropped(), 0);
    }

    #[test]
    fn memory_log_collects() {
        let (log, mem) = MailLog::memory();
        let id = QueueId::generate();
        log.emit(id, MailEvent::Queued(Queued::default()));
        log.emit(QueueId::generate(), MailEvent::Queued(Queued::default()));
        assert_eq!(mem.names(&id), ["queued"]);
        assert_eq!(mem.records().len(), 2);
        MailLog::disabled().emit(id, MailEvent::Queued(Queued::default()));
    }
}
