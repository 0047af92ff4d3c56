//! The per-session transcript log: every line received (`<<<`) and sent (`>>>`),
//! the TLS handshake line (`***`), keyed by session id.
//!
//! Lines go through a bounded channel to one writer thread, so a slow disk never
//! stalls a session; if the channel is full the line is dropped and counted.
//!
//! **Batching.** A session records about nine lines per message. The writer does
//! not wake for each: after the first line of a quiet spell it sleeps
//! [`FLUSH_INTERVAL`], then formats everything queued meanwhile and hands it to
//! the kernel in one `write(2)` (a large buffer). Senders never wake it while it
//! sleeps (the channel only signals a receiver that is blocked in `recv`), so under
//! load the cost is one wake-up and one write per interval instead of one wake-up,
//! one futex call and one small write per line.
//!
//! **Guarantees.** Lines of one session appear in the order recorded (one channel,
//! one writer). At a clean shutdown nothing is lost: when the last handle is
//! dropped the writer drains the channel, writes, and the drop waits for it (at
//! most [`CLOSE_WAIT`], so a hung disk cannot hang the shutdown). A crash loses
//! the lines recorded in the last interval that were not written yet; the file is
//! never fsynced, so an operating-system crash may lose what the kernel had not
//! written back. The transcript is diagnostics; the queue's durability does not
//! depend on it.
//!
//! # Security
//! AUTH payloads and message bodies never reach this log: the session passes
//! redacted text for those (see `session::redact_auth`). Peer-supplied text is
//! escaped so it cannot forge log lines (CR, LF and other controls become `\xNN`).
//!
//! # Standards
//! None: the format is ours (`Text`: `<RFC 3339 time> <session> <marker> <line>`;
//! `Json`: one object per line).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::Thread;
use std::time::Duration;

use crate::settings::TranscriptFormat;

/// How long the writer lets lines gather after the first one before writing.
const FLUSH_INTERVAL: Duration = Duration::from_millis(25);
/// How long dropping the last handle waits for the writer to finish.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Lines queued at most; beyond that lines are dropped (and counted).
const QUEUE_LINES: usize = 65_536;
/// Write buffer: a batch of a busy interval goes out in one `write(2)`.
const WRITE_BUFFER: usize = 256 * 1024;

/// Direction or kind of a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received from the client.
    In,
    /// Sent to the client.
    Out,
    /// An event: connect, handshake, disconnect.
    Event,
}

impl Direction {
    fn marker(self) -> &'static str {
        match self {
            Direction::In => "<<<",
            Direction::Out => ">>>",
            Direction::Event => "***",
        }
    }
}

struct Entry {
    at: time::OffsetDateTime,
    session: Arc<str>,
    dir: Direction,
    text: String,
}

/// What goes through the channel: a line, or a request to confirm that every
/// line sent before it is in the file.
enum Msg {
    Line(Entry),
    Flush(std::sync::mpsc::Sender<()>),
}

/// Handle to the transcript writer; cheap to clone.
#[derive(Clone)]
pub struct Transcript {
    // Field order matters: every clone drops its sender before its share of the
    // writer (held only for its `Drop`), so when the last `Writer` is dropped the channel is disconnected
    // and the writer thread can drain it and stop.
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
    writer: Arc<Writer>,
}

/// The writer thread, seen from the handles: woken and waited for by the drop of
/// the last one.
struct Writer {
    thread: Thread,
    /// Disconnected when the writer thread has written everything and stopped.
    finished: Mutex<Receiver<()>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        // All senders are gone: cut the writer's nap short and wait for the last
        // batch to reach the file.
        self.thread.unpark();
        let finished = self
            .finished
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Err(RecvTimeoutError::Timeout) = finished.recv_timeout(CLOSE_WAIT) {
            tracing::warn!(
                "transcript writer did not finish in time; the last lines may be missing"
            );
        }
    }
}

impl Transcript {
    /// Opens (appends to) `path` and starts the writer thread.
    pub fn open(path: &Path, format: TranscriptFormat) -> std::io::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let (tx, rx) = sync_channel(QUEUE_LINES);
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let path = path.to_path_buf();
        let handle = std::thread::Builder::new()
            .name("transcript".into())
            .spawn(move || {
                writer(&rx, file, format, &path);
                drop(done_tx);
            })?;
        Ok(Self {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            writer: Arc::new(Writer {
                thread: handle.thread().clone(),
                finished: Mutex::new(done_rx),
            }),
        })
    }

    /// Records one line. Never blocks.
    pub fn record(&self, session: &Arc<str>, dir: Direction, text: &str) {
        let entry = Entry {
            at: time::OffsetDateTime::now_utc(),
            session: Arc::clone(session),
            dir,
            text: escape(text),
        };
        if let Err(TrySendError::Full(_)) = self.tx.try_send(Msg::Line(entry)) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Blocks until every line recorded before the call is written to the
    /// file (at most [`CLOSE_WAIT`]); false if the writer did not confirm.
    /// For tests and tools that read the file right after a dialogue.
    pub fn flush(&self) -> bool {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        if self.tx.send(Msg::Flush(done_tx)).is_err() {
            return false;
        }
        self.thread().unpark();
        done_rx.recv_timeout(CLOSE_WAIT).is_ok()
    }

    fn thread(&self) -> &Thread {
        &self.writer.thread
    }

    /// Lines dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Escapes controls so one transcript line is always one log line.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            use std::fmt::Write as _;
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

fn writer(rx: &Receiver<Msg>, file: File, format: TranscriptFormat, path: &Path) {
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
    // Block for the first line of a batch; `Err` once every handle is gone and
    // the channel is empty.
    while let Ok(first) = rx.recv() {
        // Let the batch gather. Senders do not wake a thread that is not in
        // `recv`; the drop of the last handle does (unpark), so shutdown does not
        // wait out the interval. A spurious early wake-up only makes a smaller batch.
        if matches!(first, Msg::Line(_)) {
            std::thread::park_timeout(FLUSH_INTERVAL);
        }
        let mut waiting = Vec::new();
        for msg in std::iter::once(first).chain(rx.try_iter()) {
            match msg {
                Msg::Line(e) => {
                    if let Err(err) = write_entry(&mut out, format, &e) {
                        tracing::error!(path = %path.display(), error = %err, "transcript write failed");
                    }
                }
                Msg::Flush(done) => waiting.push(done),
            }
        }
        if let Err(err) = out.flush() {
            tracing::error!(path = %path.display(), error = %err, "transcript flush failed");
        }
        for done in waiting {
            let _ = done.send(());
        }
    }
    if let Err(err) = out.flush() {
        tracing::error!(path = %path.display(), error = %err, "transcript flush failed");
    }
}

fn write_entry(out: &mut impl Write, format: TranscriptFormat, e: &Entry) -> std::io::Result<()> {
    let ts =
        e.at.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
    match format {
        TranscriptFormat::Text => {
            writeln!(out, "{ts} {} {} {}", e.session, e.dir.marker(), e.text)
        }
        TranscriptFormat::Json => {
            let v = serde_json::json!({
                "ts": ts, "session": &*e.session, "dir": e.dir.marker(), "line": e.text,
            });
            writeln!(out, "{v}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_makes_one_line() {
        assert_eq!(escape("a\r\nb\x00"), "a\\x0d\\x0ab\\x00");
    }

    #[test]
    fn writes_text_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        let t = Transcript::open(&p, TranscriptFormat::Text).unwrap();
        let s: Arc<str> = Arc::from("S1");
        t.record(&s, Direction::In, "EHLO x\r\n");
        t.record(&s, Direction::Out, "250 ok");
        // No sleep: dropping the last handle waits for the writer.
        drop(t);
        let body = std::fs::read_to_string(&p).unwrap();
        assert!(body.contains("S1 <<< EHLO x\\x0d\\x0a"), "{body}");
        assert!(body.contains("S1 >>> 250 ok"), "{body}");
    }

    #[test]
    fn writes_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.jsonl");
        let t = Transcript::open(&p, TranscriptFormat::Json).unwrap();
        let s: Arc<str> = Arc::from("S2");
        t.record(&s, Direction::Event, "TLS \"x\"");
        drop(t);
        let body = std::fs::read_to_string(&p).unwrap();
        let v: serde_json::Value = serde_json::from_str(body.trim_end()).unwrap();
        assert_eq!(v["session"], "S2");
        assert_eq!(v["dir"], "***");
        assert_eq!(v["line"], "TLS \"x\"");
    }

    /// Batching must not lose or reorder anything: several sessions on several
    /// threads, each through its own clone; after the last handle is dropped
    /// (clean shutdown) every line is in the file, each session's in order.
    #[test]
    fn clean_shutdown_keeps_every_line_in_session_order() {
        const SESSIONS: usize = 4;
        const LINES: usize = 5_000;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.log");
        let t = Transcript::open(&p, TranscriptFormat::Text).unwrap();
        std::thread::scope(|scope| {
            for n in 0..SESSIONS {
                let t = t.clone();
                scope.spawn(move || {
                    let s: Arc<str> = Arc::from(format!("S{n}"));
                    for i in 0..LINES {
                        t.record(&s, Direction::In, &format!("line {i}"));
                    }
                });
            }
        });
        assert_eq!(t.dropped(), 0, "the queue holds more than this test sends");
        drop(t);
        let body = std::fs::read_to_string(&p).unwrap();
        let mut next = [0usize; SESSIONS];
        for line in body.lines() {
            let mut parts = line.split(' ');
            let (_ts, session, marker) = (parts.next(), parts.next().unwrap(), parts.next());
            assert_eq!(marker, Some("<<<"), "{line}");
            let n: usize = session[1..].parse().unwrap();
            let i: usize = line.rsplit(' ').next().unwrap().parse().unwrap();
            assert_eq!(i, next[n], "session {session} out of order: {line}");
            next[n] += 1;
        }
        assert_eq!(next, [LINES; SESSIONS], "every line written");
    }
}
