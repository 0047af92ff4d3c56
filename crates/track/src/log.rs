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
//! An observer ([`LogObserver`], e.g. the Prometheus metrics) sees every
//! record on the writer thread, after it is written, so counting never runs
//! on the caller's path; with a [`MailLog::disabled`] file sink the thread
//! runs for the observer alone, and a [`MailLog::memory`] log calls it at
//! once. Connection events ([`MailLog::connection`],
//! [`MailLog::tls_failed_inbound`]) go to the observer directly: they are
//! cheap (a lookup and an atomic add) and a gauge must not lag behind.
//!
//! # Security
//! Writes one file named by the operator. JSON escaping keeps every record on
//! one line whatever a remote reply contains.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use postern_spool::QueueId;

use crate::event::{MailEvent, TrackRecord};
use crate::session::SessionRecord;

/// Records queued for the writer before new ones are dropped.
const CHANNEL: usize = 65_536;

/// Rest between two batches of the writer (at ~20 000 records/s a batch is
/// ~500 records, far below [`CHANNEL`]).
pub const BATCH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(25);

/// Sees what the mail log records (the metrics registry). Called on the
/// writer thread for a file (or disabled) log, in the caller for a memory
/// log: keep it quick and never block.
pub trait LogObserver: Send + Sync {
    /// A message event.
    fn mail(&self, r: &TrackRecord);
    /// A session event.
    fn session(&self, r: &SessionRecord);
    /// A connection on `listener` was admitted (called in the accepting task).
    fn connection_opened(&self, _listener: &str) {}
    /// That connection ended.
    fn connection_closed(&self, _listener: &str) {}
    /// An inbound TLS handshake on `listener` failed with the cause `cause_id`
    /// (`postern_tls::cause` catalogue).
    fn tls_failed_inbound(&self, _listener: &str, _cause_id: &str) {}
}

/// The observer, shared by every clone of one log and its writer thread.
type Observer = Arc<OnceLock<Arc<dyn LogObserver>>>;

enum Msg {
    Record(Box<TrackRecord>),
    Session(Box<SessionRecord>),
    Flush(SyncSender<()>),
}

#[derive(Clone)]
enum Sink {
    Disabled,
    /// The writer thread (with a file, or for the observer alone).
    Thread(SyncSender<Msg>),
    Memory(Arc<Mutex<Vec<TrackRecord>>>, Arc<Mutex<Vec<SessionRecord>>>),
}

/// Handle to the mail log; cheap to clone.
#[derive(Clone)]
pub struct MailLog {
    sink: Sink,
    dropped: Arc<AtomicU64>,
    observer: Observer,
}

/// An admitted connection, counted while it lives: made by
/// [`MailLog::connection`], it tells the observer `connection_closed` when
/// dropped (also when the session task panics).
#[must_use = "the connection counts as closed when this is dropped"]
pub struct ConnectionGuard {
    observer: Option<Arc<dyn LogObserver>>,
    listener: String,
}

impl std::fmt::Debug for ConnectionGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionGuard")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if let Some(o) = &self.observer {
            o.connection_closed(&self.listener);
        }
    }
}

impl std::fmt::Debug for MailLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.sink {
            Sink::Disabled => "disabled",
            Sink::Thread(_) => "thread",
            Sink::Memory(..) => "memory",
        };
        f.debug_struct("MailLog")
            .field("sink", &kind)
            .field("dropped", &self.dropped())
            .field("observer", &self.observer.get().is_some())
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
        let observer = Observer::default();
        let tx = spawn_writer(Some((file, path.to_path_buf())), Arc::clone(&observer))?;
        Ok(Self {
            sink: Sink::Thread(tx),
            dropped: Arc::new(AtomicU64::new(0)),
            observer,
        })
    }

    /// A log that records nothing.
    pub fn disabled() -> Self {
        Self {
            sink: Sink::Disabled,
            dropped: Arc::new(AtomicU64::new(0)),
            observer: Observer::default(),
        }
    }

    /// Lets `observer` see every record from now on (and connection events).
    /// One observer per log: a second call keeps the first (and logs a
    /// warning). Best called before cloning the log: a disabled log starts a
    /// thread here for the observer, and earlier clones (which share the
    /// observer, not the thread) call it in the caller instead — as happens
    /// when that thread cannot start (logged).
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn LogObserver>) -> Self {
        if self.observer.set(observer).is_err() {
            tracing::warn!("mail log already has an observer; keeping the first");
            return self;
        }
        if matches!(self.sink, Sink::Disabled) {
            match spawn_writer(None, Arc::clone(&self.observer)) {
                Ok(tx) => self.sink = Sink::Thread(tx),
                Err(err) => {
                    tracing::error!(error = %err, "cannot start the mail log observer thread; observing in the caller");
                }
            }
        }
        self
    }

    /// Counts an admitted connection on `listener` until the guard is dropped.
    pub fn connection(&self, listener: &str) -> ConnectionGuard {
        let observer = self.observer.get().cloned();
        if let Some(o) = &observer {
            o.connection_opened(listener);
        }
        ConnectionGuard {
            observer,
            listener: listener.to_owned(),
        }
    }

    /// Tells the observer an inbound TLS handshake failed (`cause_id` from
    /// the `postern_tls::cause` catalogue).
    pub fn tls_failed_inbound(&self, listener: &str, cause_id: &str) {
        if let Some(o) = self.observer.get() {
            o.tls_failed_inbound(listener, cause_id);
        }
    }

    /// A log kept in memory, and the handle to read it.
    pub fn memory() -> (Self, MemoryLog) {
        let mem = MemoryLog::default();
        (
            Self {
                sink: Sink::Memory(Arc::clone(&mem.records), Arc::clone(&mem.sessions)),
                dropped: Arc::new(AtomicU64::new(0)),
                observer: Observer::default(),
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
            Sink::Disabled => {
                if let Some(o) = self.observer.get() {
                    o.mail(&record);
                }
            }
            Sink::Memory(m, _) => {
                if let Some(o) = self.observer.get() {
                    o.mail(&record);
                }
                m.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(record);
            }
            Sink::Thread(tx) => {
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
            Sink::Disabled => {
                if let Some(o) = self.observer.get() {
                    o.session(&record);
                }
            }
            Sink::Memory(_, m) => {
                if let Some(o) = self.observer.get() {
                    o.session(&record);
                }
                m.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(record);
            }
            Sink::Thread(tx) => {
                if let Err(TrySendError::Full(_)) = tx.try_send(Msg::Session(Box::new(record))) {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Waits until everything recorded before this call is written and
    /// flushed (shutdown, tests). Blocking.
    pub fn flush(&self) {
        if let Sink::Thread(tx) = &self.sink {
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

/// Starts the writer thread: it writes to `file` (when given) and shows
/// each record to the observer.
fn spawn_writer(
    file: Option<(File, std::path::PathBuf)>,
    observer: Observer,
) -> std::io::Result<SyncSender<Msg>> {
    let (tx, rx) = sync_channel(CHANNEL);
    std::thread::Builder::new()
        .name("mail-log".into())
        .spawn(move || writer(&rx, file, &observer))?;
    Ok(tx)
}

/// The file side of the writer thread.
struct Out {
    file: BufWriter<File>,
    path: std::path::PathBuf,
    /// When the path was last compared with the open file.
    checked: std::time::Instant,
}

/// How often the writer looks whether the mail log was rotated.
const ROTATION_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

impl Out {
    /// Reopens the path when the file we write is no longer there under it
    /// (logrotate's default: rename, then a new file, or none yet): the
    /// records go to the file the tracking indexer and the operator read
    /// from now on. Checked at most once per [`ROTATION_CHECK`].
    fn follow_rotation(&mut self) {
        use std::os::unix::fs::MetadataExt as _;
        if self.checked.elapsed() < ROTATION_CHECK {
            return;
        }
        self.checked = std::time::Instant::now();
        let ours = self
            .file
            .get_ref()
            .metadata()
            .ok()
            .map(|m| (m.dev(), m.ino()));
        let named = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if ours.is_some() && ours == named {
            return;
        }
        self.flush();
        match OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            Ok(file) => {
                tracing::info!(path = %self.path.display(), "mail log rotated: writing to the new file");
                self.file = BufWriter::new(file);
            }
            Err(err) => {
                tracing::error!(path = %self.path.display(), error = %err, "mail log: cannot reopen after rotation; writing to the old file");
            }
        }
    }

    fn line<T: serde::Serialize>(&mut self, rec: &T) {
        let res = serde_json::to_writer(&mut self.file, rec)
            .map_err(std::io::Error::other)
            .and_then(|()| self.file.write_all(b"\n"));
        if let Err(err) = res {
            tracing::error!(path = %self.path.display(), error = %err, "mail log write failed");
        }
    }

    fn flush(&mut self) {
        if let Err(err) = self.file.flush() {
            tracing::error!(path = %self.path.display(), error = %err, "mail log flush failed");
        }
    }
}

fn writer(rx: &Receiver<Msg>, file: Option<(File, std::path::PathBuf)>, observer: &Observer) {
    let mut out = file.map(|(file, path)| Out {
        file: BufWriter::new(file),
        path,
        checked: std::time::Instant::now(),
    });
    // Block for the first message, then drain what is queued and flush once.
    while let Ok(first) = rx.recv() {
        if let Some(out) = &mut out {
            out.follow_rotation();
        }
        let mut waiters = Vec::new();
        for msg in std::iter::once(first).chain(rx.try_iter()) {
            match msg {
                Msg::Session(rec) => {
                    if let Some(out) = &mut out {
                        out.line(&rec);
                    }
                    if let Some(o) = observer.get() {
                        o.session(&rec);
                    }
                }
                Msg::Record(rec) => {
                    if let Some(out) = &mut out {
                        out.line(&rec);
                    }
                    if let Some(o) = observer.get() {
                        o.mail(&rec);
                    }
                }
                Msg::Flush(done) => waiters.push(done),
            }
        }
        if let Some(out) = &mut out {
            out.flush();
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
    if let Some(out) = &mut out {
        out.flush();
    }
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

    #[derive(Default)]
    struct Seen {
        mail: Mutex<Vec<&'static str>>,
        session: Mutex<Vec<&'static str>>,
        conns: Mutex<Vec<String>>,
    }

    impl LogObserver for Seen {
        fn mail(&self, r: &TrackRecord) {
            self.mail.lock().unwrap().push(r.event.name());
        }
        fn session(&self, r: &SessionRecord) {
            self.session.lock().unwrap().push(r.event.name());
        }
        fn connection_opened(&self, listener: &str) {
            self.conns.lock().unwrap().push(format!("+{listener}"));
        }
        fn connection_closed(&self, listener: &str) {
            self.conns.lock().unwrap().push(format!("-{listener}"));
        }
        fn tls_failed_inbound(&self, listener: &str, cause_id: &str) {
            self.conns
                .lock()
                .unwrap()
                .push(format!("!{listener} {cause_id}"));
        }
    }

    fn feed(log: &MailLog) {
        log.emit(QueueId::generate(), MailEvent::Queued(Queued::default()));
        log.session(SessionRecord::new(
            "S1",
            1,
            crate::session::SessionEvent::Rejected(crate::session::SmtpDecision::default()),
        ));
        let guard = log.connection("smtp");
        log.tls_failed_inbound("smtp", "tls.timeout");
        drop(guard);
        log.flush();
    }

    fn check(seen: &Seen) {
        assert_eq!(*seen.mail.lock().unwrap(), ["queued"]);
        assert_eq!(*seen.session.lock().unwrap(), ["rejected"]);
        assert_eq!(
            *seen.conns.lock().unwrap(),
            ["+smtp", "!smtp tls.timeout", "-smtp"]
        );
    }

    #[test]
    fn observer_sees_file_log_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mail.log");
        let seen = Arc::new(Seen::default());
        let log = MailLog::open(&path)
            .unwrap()
            .with_observer(Arc::clone(&seen) as Arc<dyn LogObserver>);
        feed(&log);
        check(&seen);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    }

    #[test]
    fn observer_sees_disabled_and_memory_logs() {
        let seen = Arc::new(Seen::default());
        let log = MailLog::disabled().with_observer(Arc::clone(&seen) as Arc<dyn LogObserver>);
        assert!(format!("{log:?}").contains("thread"), "{log:?}");
        feed(&log);
        check(&seen);

        let seen = Arc::new(Seen::default());
        let (log, mem) = MailLog::memory();
        let log = log.with_observer(Arc::clone(&seen) as Arc<dyn LogObserver>);
        feed(&log);
        check(&seen);
        assert_eq!(mem.records().len(), 1);
        // A second observer is refused; the first keeps counting.
        let log = log.with_observer(Arc::new(Seen::default()));
        log.emit(QueueId::generate(), MailEvent::Queued(Queued::default()));
        assert_eq!(seen.mail.lock().unwrap().len(), 2);
    }

    #[test]
    fn earlier_clones_of_a_disabled_log_reach_the_observer_too() {
        let seen = Arc::new(Seen::default());
        let log = MailLog::disabled();
        let early = log.clone();
        let _log = log.with_observer(Arc::clone(&seen) as Arc<dyn LogObserver>);
        feed(&early);
        check(&seen);
    }

    #[test]
    fn connection_without_observer_is_a_no_op() {
        let log = MailLog::disabled();
        let g = log.connection("smtp");
        log.tls_failed_inbound("smtp", "tls.timeout");
        drop(g);
    }
}
