//! The per-session transcript log: every line received (`<<<`) and sent (`>>>`),
//! the TLS handshake line (`***`), keyed by session id.
//!
//! Lines go through a bounded channel to one writer thread, so a slow disk never
//! stalls a session; if the channel is full the line is dropped and counted.
//!
//! # Security
//! AUTH payloads and message bodies never reach this log: the session passes
//! redacted text for those (see `session::redact_auth`). Peer-supplied text is
//! escaped so it cannot forge log lines (CR, LF and other controls become `\xNN`).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use crate::settings::TranscriptFormat;

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

/// Handle to the transcript writer; cheap to clone.
#[derive(Clone)]
pub struct Transcript {
    tx: SyncSender<Entry>,
    dropped: Arc<AtomicU64>,
}

impl Transcript {
    /// Opens (appends to) `path` and starts the writer thread.
    pub fn open(path: &Path, format: TranscriptFormat) -> std::io::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let (tx, rx) = sync_channel(65_536);
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("transcript".into())
            .spawn(move || writer(&rx, file, format, &path))?;
        Ok(Self {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
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
        if let Err(TrySendError::Full(_)) = self.tx.try_send(entry) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
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

fn writer(rx: &Receiver<Entry>, file: File, format: TranscriptFormat, path: &Path) {
    let mut out = BufWriter::new(file);
    let fmt = time::format_description::well_known::Rfc3339;
    loop {
        // Block for the first entry, then drain what is queued and flush once.
        let first = match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(e) => Some(e),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        for e in first.into_iter().chain(rx.try_iter()) {
            let ts = e.at.format(&fmt).unwrap_or_default();
            let res = match format {
                TranscriptFormat::Text => {
                    writeln!(out, "{ts} {} {} {}", e.session, e.dir.marker(), e.text)
                }
                TranscriptFormat::Json => {
                    let v = serde_json::json!({
                        "ts": ts, "session": &*e.session, "dir": e.dir.marker(), "line": e.text,
                    });
                    writeln!(out, "{v}")
                }
            };
            if let Err(err) = res {
                tracing::error!(path = %path.display(), error = %err, "transcript write failed");
            }
        }
        if let Err(err) = out.flush() {
            tracing::error!(path = %path.display(), error = %err, "transcript flush failed");
        }
    }
    let _ = out.flush();
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
        drop(t);
        std::thread::sleep(Duration::from_millis(1500));
        let body = std::fs::read_to_string(&p).unwrap();
        assert!(body.contains("S1 <<< EHLO x\\x0d\\x0a"), "{body}");
        assert!(body.contains("S1 >>> 250 ok"), "{body}");
    }
}
