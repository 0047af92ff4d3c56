//! Per-recipient delivery state: `state/<queue id>`, an append-only log of JSON
//! lines written by the delivery scheduler next to the immutable message file.
//!
//! A message file never changes after commit; everything delivery learns (an
//! attempt deferred recipient 2 until 14:05, recipient 0 was delivered, a delay
//! notice went out) is appended here as one [`StateRecord`] per line.
//! [`MessageState::replay`] folds the lines back into the current state. The format
//! and its crash analysis are in `docs/spool-format.md` §10.
//!
//! This module stores and replays; it does not decide. Which records to write,
//! and when a final one must be durable before acting on it, is the scheduler's
//! business (`crates/delivery`). Writers must serialise appends to one message
//! (the scheduler holds a per-message lock).
//!
//! # Security
//! Reads and writes only `state/<id>` below the spool directory, with names built
//! from a validated [`QueueId`]. The file is our own output but is treated as
//! untrusted on read: lines are length-bounded, a line that does not parse is
//! skipped (a torn last line after a crash is expected), records naming a
//! recipient index the envelope does not have are ignored, and a final status
//! (`delivered`, `bounced`) is never undone by a later record, so a damaged or
//! replayed line can at worst delay a delivery, never repeat one. Reply texts are
//! remote-server input; they are stored, never interpreted.
//!
//! # Standards
//! None on the wire. RFC 3464 / RFC 3461 vocabulary for the DSN records.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{SpoolError, SpoolOp};
use crate::id::QueueId;
use crate::reader::parse_name;

/// Version written in every line (`"v":1`). A reader skips lines of other
/// versions (and logs them); see the version log in `docs/spool-format.md`.
pub const STATE_VERSION: u32 = 1;

/// Longest line a reader accepts; longer lines are skipped as damaged. Replies
/// are truncated well below this by the writer (RFC 5321 §4.5.3.1.5 caps a reply
/// line at 512 octets; a multi-line reply is kept to its first lines).
pub const MAX_LINE: usize = 64 * 1024;

/// Largest state file a reader loads (a message retried hourly for a year writes
/// about 9 000 lines per recipient; this is far above any lifetime we allow).
pub const MAX_STATE_FILE: u64 = 64 * 1024 * 1024;

/// Directory of state files, relative to the spool root.
pub const STATE_DIR: &str = "state";

/// Where one recipient stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RcptStatus {
    /// Not attempted yet.
    #[default]
    Pending,
    /// The last attempt failed temporarily; retried at `next_attempt_ms`.
    Deferred,
    /// Final: the next hop accepted it (2xx after end of data).
    Delivered,
    /// Final: permanent failure (5xx, null MX, expired). A failure DSN is due
    /// unless the sender is null or NOTIFY excludes FAILURE.
    Bounced,
}

impl RcptStatus {
    /// `delivered` or `bounced`: nothing more will be attempted.
    pub fn is_final(self) -> bool {
        matches!(self, RcptStatus::Delivered | RcptStatus::Bounced)
    }

    /// The snake_case name, as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            RcptStatus::Pending => "pending",
            RcptStatus::Deferred => "deferred",
            RcptStatus::Delivered => "delivered",
            RcptStatus::Bounced => "bounced",
        }
    }
}

/// Which delivery status notification was sent (RFC 3464 `Action:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DsnKind {
    /// `Action: failed` for bounced recipients.
    Failure,
    /// `Action: delayed`: the one delay warning.
    Delay,
    /// `Action: delivered` / `relayed` for NOTIFY=SUCCESS recipients.
    Success,
}

impl DsnKind {
    /// The snake_case name, as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            DsnKind::Failure => "failure",
            DsnKind::Delay => "delay",
            DsnKind::Success => "success",
        }
    }
}

/// One line of a state file (without the version field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rec", rename_all = "snake_case")]
pub enum StateRecord {
    /// The outcome of one attempt for one recipient.
    Rcpt {
        /// Index into the envelope's `recipients`.
        rcpt: u32,
        /// New status.
        status: RcptStatus,
        /// Attempts made so far, this one included.
        attempts: u32,
        /// Unix time (ms) of the next attempt, for `deferred`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_attempt_ms: Option<u64>,
        /// The remote reply, one line (`451 4.7.1 try later`), if there was one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply: Option<String>,
        /// Cause id from the delivery catalogue (`smtp.reply_transient`,
        /// `tls.out.peer_closed`, …).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cause: Option<String>,
        /// The host that gave the reply (`mx1.example.net`), if one was reached.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mx: Option<String>,
        /// Unix time (ms) of the record.
        at_ms: u64,
    },
    /// A DSN about these recipients was queued (as message `dsn_queue_id`), or
    /// absorbed (`dsn_queue_id` absent: null sender, NOTIFY=NEVER, badmail).
    Dsn {
        /// Which notification.
        kind: DsnKind,
        /// The recipients it reports on.
        rcpts: Vec<u32>,
        /// The queued DSN message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dsn_queue_id: Option<QueueId>,
        /// Unix time (ms) of the record.
        at_ms: u64,
    },
    /// The operator held (`held: true`, `postern queue hold`) or released
    /// (`held: false`) the message. A held message is not attempted, not
    /// expired and gets no delay warning until it is released; an attempt
    /// already under way when it was held still ends and is recorded.
    Hold {
        /// Held (true) or released (false).
        held: bool,
        /// Unix time (ms) of the record.
        at_ms: u64,
    },
}

/// The on-disk line: the version, then the record's fields.
#[derive(Serialize, Deserialize)]
struct Line<R> {
    v: u32,
    #[serde(flatten)]
    rec: R,
}

/// The replayed state of one recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptState {
    /// Current status.
    pub status: RcptStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Unix time (ms) of the next attempt, when deferred.
    pub next_attempt_ms: Option<u64>,
    /// The last remote reply.
    pub last_reply: Option<String>,
    /// The last cause id.
    pub last_cause: Option<String>,
    /// The host that gave the last reply.
    pub last_mx: Option<String>,
    /// Unix time (ms) of the last record about this recipient.
    pub updated_ms: Option<u64>,
    /// A failure or success DSN for this recipient was queued or absorbed.
    pub reported: bool,
}

/// The replayed state of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageState {
    /// One entry per envelope recipient, in envelope order.
    pub rcpts: Vec<RcptState>,
    /// A failure DSN was queued or absorbed (for some recipients).
    pub dsn_sent: bool,
    /// The delay warning was sent (it is sent at most once per message).
    pub delay_notice_sent: bool,
    /// Set while the operator holds the message (the last `hold` record
    /// wins): Unix time (ms) of the record that held it. Nothing is attempted
    /// until it is released; see [`MessageState::is_held`].
    pub held_at_ms: Option<u64>,
    /// Unix time (ms) of the last release (`hold` record with `held: false`):
    /// a message accepted held into a quarantine is out of it once released,
    /// even if the operator holds it again later.
    pub released_at_ms: Option<u64>,
    /// Lines applied.
    pub records: usize,
    /// Lines skipped: unparseable, other version, unknown recipient index.
    pub skipped: usize,
    /// The file did not end with a newline: its last line was torn by a crash
    /// and ignored. The next append starts a new line first.
    pub torn_tail: bool,
}

impl MessageState {
    /// The state of a message nothing has been recorded for.
    pub fn new(recipients: usize) -> Self {
        Self {
            rcpts: vec![RcptState::default(); recipients],
            ..Self::default()
        }
    }

    /// Applies one record. Final statuses stick: a later `deferred` or `pending`
    /// for a delivered or bounced recipient is ignored (returns false).
    pub fn apply(&mut self, rec: &StateRecord) -> bool {
        match rec {
            StateRecord::Rcpt {
                rcpt,
                status,
                attempts,
                next_attempt_ms,
                reply,
                cause,
                mx,
                at_ms,
            } => {
                let Some(r) = usize::try_from(*rcpt)
                    .ok()
                    .and_then(|i| self.rcpts.get_mut(i))
                else {
                    return false;
                };
                if r.status.is_final() {
                    return false;
                }
                r.status = *status;
                r.attempts = r.attempts.max(*attempts);
                r.next_attempt_ms = if *status == RcptStatus::Deferred {
                    *next_attempt_ms
                } else {
                    None
                };
                if reply.is_some() {
                    r.last_reply.clone_from(reply);
                }
                if cause.is_some() {
                    r.last_cause.clone_from(cause);
                }
                if mx.is_some() {
                    r.last_mx.clone_from(mx);
                }
                r.updated_ms = Some(*at_ms);
                true
            }
            StateRecord::Dsn { kind, rcpts, .. } => {
                match kind {
                    DsnKind::Delay => self.delay_notice_sent = true,
                    DsnKind::Failure => self.dsn_sent = true,
                    DsnKind::Success => {}
                }
                if matches!(kind, DsnKind::Failure | DsnKind::Success) {
                    for i in rcpts {
                        if let Some(r) =
                            usize::try_from(*i).ok().and_then(|i| self.rcpts.get_mut(i))
                        {
                            r.reported = true;
                        }
                    }
                }
                true
            }
            StateRecord::Hold { held, at_ms } => {
                self.held_at_ms = held.then_some(*at_ms);
                if !held {
                    self.released_at_ms = Some(*at_ms);
                }
                true
            }
        }
    }

    /// Folds the bytes of a state file into the state of a message with
    /// `recipients` recipients. Never fails: damaged lines are counted in
    /// `skipped`, a last line without its newline sets `torn_tail`.
    pub fn replay(bytes: &[u8], recipients: usize) -> Self {
        let mut state = Self::new(recipients);
        let mut rest = bytes;
        while !rest.is_empty() {
            let Some(end) = rest.iter().position(|b| *b == b'\n') else {
                // A line is complete only with its newline (written in the same
                // write(2) as the record): this is a torn append.
                state.torn_tail = true;
                break;
            };
            let line = &rest[..end];
            rest = &rest[end + 1..];
            if line.is_empty() {
                continue;
            }
            if line.len() > MAX_LINE {
                state.skipped += 1;
                continue;
            }
            match serde_json::from_slice::<Line<StateRecord>>(line) {
                Ok(l) if l.v == STATE_VERSION => {
                    if state.apply(&l.rec) {
                        state.records += 1;
                    } else {
                        state.skipped += 1;
                    }
                }
                Ok(_) | Err(_) => state.skipped += 1,
            }
        }
        state
    }

    /// Starts held (a message accepted held, `Envelope::hold`, with no
    /// state file yet).
    pub fn hold_from(&mut self, at_ms: u64) {
        self.held_at_ms = Some(at_ms);
    }

    /// Held and never released: still in the quarantine it was accepted
    /// into (with `Envelope::hold`), not merely held by the operator.
    pub fn is_quarantined(&self, accepted_held: bool) -> bool {
        accepted_held && self.is_held() && self.released_at_ms.is_none()
    }

    /// Where `max_lifetime` counts from (Unix ms): receipt, or for a message
    /// accepted held its release — time in a quarantine is not delivery
    /// time (a message released after the lifetime would otherwise bounce at
    /// its first deferral).
    pub fn lifetime_start(&self, accepted_held: bool, received_ms: u64) -> u64 {
        match (accepted_held, self.released_at_ms) {
            (true, Some(at)) => at.max(received_ms),
            _ => received_ms,
        }
    }

    /// The operator holds the message (`postern queue hold`).
    pub fn is_held(&self) -> bool {
        self.held_at_ms.is_some()
    }

    /// True when every recipient is delivered or bounced.
    pub fn is_final(&self) -> bool {
        self.rcpts.iter().all(|r| r.status.is_final())
    }

    /// The earliest next attempt of a deferred recipient.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.rcpts
            .iter()
            .filter(|r| r.status == RcptStatus::Deferred)
            .filter_map(|r| r.next_attempt_ms)
            .min()
    }
}

/// Whether an append must be on stable storage before `append` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file (and the directory, if the file is new). Required before
    /// acting on a final outcome: removing the message, queueing a DSN.
    Sync,
    /// Write only. For records whose loss is harmless (a deferral: after a
    /// crash the recipient is merely retried earlier).
    Lazy,
}

/// The `state/` directory of a spool. Cheap to clone; holds no open files (a
/// queue of 100 000 messages must not hold 100 000 descriptors), so every append
/// opens, writes and closes.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    /// The state directory of the spool rooted at `spool_dir` (the directory is
    /// created by `Spool::open`).
    pub fn new(spool_dir: &Path) -> Self {
        Self {
            dir: spool_dir.join(STATE_DIR),
        }
    }

    /// The path of one message's state file.
    pub fn path(&self, id: &QueueId) -> PathBuf {
        self.dir.join(id.as_str())
    }

    /// The state of message `id` with `recipients` recipients, or `None` when no
    /// state file exists (nothing was recorded yet: every recipient pending).
    pub fn load(
        &self,
        id: &QueueId,
        recipients: usize,
    ) -> Result<Option<MessageState>, SpoolError> {
        let path = self.path(id);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SpoolError::io(SpoolOp::Open, path, e)),
        };
        let mut bytes = Vec::new();
        (&mut file)
            .take(MAX_STATE_FILE)
            .read_to_end(&mut bytes)
            .map_err(|e| SpoolError::io(SpoolOp::Read, path.clone(), e))?;
        let state = MessageState::replay(&bytes, recipients);
        if state.skipped > 0 {
            tracing::warn!(path = %path.display(), skipped = state.skipped,
                "delivery state: skipped damaged or unknown lines");
        }
        Ok(Some(state))
    }

    /// Appends `records` to `state/<id>` in one `write(2)`, creating the file if
    /// needed. With [`Durability::Sync`] the file is fsynced, and when it was
    /// created the directory too, before returning. Callers serialise appends
    /// to one message.
    pub fn append(
        &self,
        id: &QueueId,
        records: &[StateRecord],
        durability: Durability,
    ) -> Result<(), SpoolError> {
        if records.is_empty() {
            return Ok(());
        }
        let path = self.path(id);
        let (mut file, created) = match OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => (f, true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let f = OpenOptions::new()
                    .read(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| SpoolError::io(SpoolOp::Open, path.clone(), e))?;
                (f, false)
            }
            Err(e) => return Err(SpoolError::io(SpoolOp::Create, path, e)),
        };
        if !created {
            // A crash may have torn the last line. Cut it off, so this record is
            // not glued to it and a torn record can never be completed into a
            // valid one by the newline we write (replay already ignored it).
            drop_torn_tail(&mut file)
                .map_err(|e| SpoolError::io(SpoolOp::Write, path.clone(), e))?;
        }
        let mut buf = Vec::with_capacity(160 * records.len());
        for rec in records {
            let line = Line {
                v: STATE_VERSION,
                rec,
            };
            serde_json::to_writer(&mut buf, &line).map_err(|e| SpoolError::Io {
                op: SpoolOp::Write,
                path: path.clone(),
                source: io::Error::other(e),
            })?;
            buf.push(b'\n');
        }
        file.write_all(&buf)
            .map_err(|e| SpoolError::io(SpoolOp::Write, path.clone(), e))?;
        if durability == Durability::Sync {
            file.sync_all()
                .map_err(|e| SpoolError::io(SpoolOp::SyncFile, path.clone(), e))?;
            if created {
                File::open(&self.dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| SpoolError::io(SpoolOp::SyncDir, self.dir.clone(), e))?;
            }
        }
        Ok(())
    }

    /// Removes `state/<id>` if present (orphans: the message is gone).
    pub fn remove(&self, id: &QueueId) -> Result<(), SpoolError> {
        let path = self.path(id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SpoolError::io(SpoolOp::Remove, path, e)),
        }
    }

    /// Queue ids that have a state file (sorted). Other names are ignored.
    pub fn list(&self) -> Result<Vec<QueueId>, SpoolError> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| SpoolError::io(SpoolOp::ReadDir, self.dir.clone(), e))?;
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| SpoolError::io(SpoolOp::ReadDir, self.dir.clone(), e))?;
            if let Some(id) = parse_name(&entry.file_name()) {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }
}

/// Truncates the file after its last newline if it does not end with one.
fn drop_torn_tail(file: &mut File) -> io::Result<()> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(());
    }
    // Rare (only after a crash): read back to the last newline.
    let mut keep = 0u64;
    let mut pos = 0u64;
    file.seek(SeekFrom::Start(0))?;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        if let Some(i) = chunk[..n].iter().rposition(|b| *b == b'\n') {
            keep = pos + i as u64 + 1;
        }
        pos += n as u64;
    }
    file.set_len(keep)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rcpt(i: u32, status: RcptStatus, attempts: u32, next: Option<u64>) -> StateRecord {
        StateRecord::Rcpt {
            rcpt: i,
            status,
            attempts,
            next_attempt_ms: next,
            reply: Some(format!(
                "{} x",
                if status == RcptStatus::Delivered {
                    250
                } else {
                    451
                }
            )),
            cause: None,
            mx: None,
            at_ms: 1000,
        }
    }

    #[test]
    fn line_format_is_stable() {
        let rec = rcpt(2, RcptStatus::Deferred, 1, Some(5000));
        let line = serde_json::to_string(&Line { v: 1, rec: &rec }).unwrap();
        assert_eq!(
            line,
            r#"{"v":1,"rec":"rcpt","rcpt":2,"status":"deferred","attempts":1,"next_attempt_ms":5000,"reply":"451 x","at_ms":1000}"#
        );
        let dsn = StateRecord::Dsn {
            kind: DsnKind::Delay,
            rcpts: vec![0],
            dsn_queue_id: None,
            at_ms: 7,
        };
        let line = serde_json::to_string(&Line { v: 1, rec: &dsn }).unwrap();
        assert_eq!(
            line,
            r#"{"v":1,"rec":"dsn","kind":"delay","rcpts":[0],"at_ms":7}"#
        );
        let hold = StateRecord::Hold {
            held: true,
            at_ms: 9,
        };
        let line = serde_json::to_string(&Line { v: 1, rec: &hold }).unwrap();
        assert_eq!(line, r#"{"v":1,"rec":"hold","held":true,"at_ms":9}"#);
    }

    #[test]
    fn hold_records_replay_last_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(STATE_DIR)).unwrap();
        let store = StateStore::new(dir.path());
        let id = QueueId::generate();
        let hold = |held, at_ms| StateRecord::Hold { held, at_ms };
        store
            .append(
                &id,
                &[rcpt(0, RcptStatus::Deferred, 1, Some(5000)), hold(true, 10)],
                Durability::Sync,
            )
            .unwrap();
        let st = store.load(&id, 1).unwrap().unwrap();
        assert!(st.is_held());
        assert_eq!(st.held_at_ms, Some(10));
        // Held does not change the recipient's own state.
        assert_eq!(st.rcpts[0].status, RcptStatus::Deferred);
        assert_eq!(st.next_due_ms(), Some(5000));
        store
            .append(&id, &[hold(false, 20)], Durability::Sync)
            .unwrap();
        let st = store.load(&id, 1).unwrap().unwrap();
        assert!(!st.is_held());
        assert_eq!(st.held_at_ms, None);
        assert_eq!(st.records, 3);
        // A held message without any attempt yet.
        let st = MessageState::replay(b"{\"v\":1,\"rec\":\"hold\",\"held\":true,\"at_ms\":1}\n", 2);
        assert!(st.is_held());
        assert_eq!(st.rcpts[1].status, RcptStatus::Pending);
    }

    #[test]
    fn replay_folds_and_final_sticks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(STATE_DIR)).unwrap();
        let store = StateStore::new(dir.path());
        let id = QueueId::generate();
        assert_eq!(store.load(&id, 2).unwrap(), None);
        store
            .append(
                &id,
                &[
                    rcpt(0, RcptStatus::Deferred, 1, Some(300_000)),
                    rcpt(1, RcptStatus::Deferred, 1, Some(600_000)),
                ],
                Durability::Lazy,
            )
            .unwrap();
        store
            .append(
                &id,
                &[rcpt(0, RcptStatus::Delivered, 2, None)],
                Durability::Sync,
            )
            .unwrap();
        // A stale deferral after the delivery must not make it pending again.
        store
            .append(
                &id,
                &[rcpt(0, RcptStatus::Deferred, 3, Some(1))],
                Durability::Sync,
            )
            .unwrap();
        let st = store.load(&id, 2).unwrap().unwrap();
        assert_eq!(st.rcpts[0].status, RcptStatus::Delivered);
        assert_eq!(st.rcpts[0].attempts, 2);
        assert_eq!(st.rcpts[1].status, RcptStatus::Deferred);
        assert_eq!(st.next_due_ms(), Some(600_000));
        assert_eq!(st.records, 3);
        assert_eq!(st.skipped, 1);
        assert!(!st.is_final());
        assert_eq!(store.list().unwrap(), vec![id]);
        store.remove(&id).unwrap();
        assert_eq!(store.load(&id, 2).unwrap(), None);
        store.remove(&id).unwrap();
    }

    #[test]
    fn torn_tail_is_ignored_and_next_append_starts_a_new_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(STATE_DIR)).unwrap();
        let store = StateStore::new(dir.path());
        let id = QueueId::generate();
        store
            .append(
                &id,
                &[rcpt(0, RcptStatus::Deferred, 1, Some(9))],
                Durability::Sync,
            )
            .unwrap();
        // Simulate a crash in the middle of the next append.
        let full = {
            let mut b = serde_json::to_vec(&Line {
                v: 1,
                rec: &rcpt(0, RcptStatus::Delivered, 2, None),
            })
            .unwrap();
            b.push(b'\n');
            b
        };
        for cut in 0..full.len() {
            let mut bytes = std::fs::read(store.path(&id)).unwrap();
            bytes.truncate(bytes.iter().position(|b| *b == b'\n').unwrap() + 1);
            bytes.extend_from_slice(&full[..cut]);
            std::fs::write(store.path(&id), &bytes).unwrap();
            let st = store.load(&id, 1).unwrap().unwrap();
            assert_eq!(st.rcpts[0].status, RcptStatus::Deferred, "cut {cut}");
            assert_eq!(st.torn_tail, cut > 0, "cut {cut}");
        }
        store
            .append(
                &id,
                &[rcpt(0, RcptStatus::Bounced, 2, None)],
                Durability::Sync,
            )
            .unwrap();
        let st = store.load(&id, 1).unwrap().unwrap();
        assert_eq!(st.rcpts[0].status, RcptStatus::Bounced);
        assert!(!st.torn_tail);
    }

    #[test]
    fn garbage_and_unknown_indexes_are_skipped() {
        let mut bytes = b"\0\0\0\n{\"v\":2,\"rec\":\"rcpt\"}\nnot json\n".to_vec();
        let good = serde_json::to_vec(&Line {
            v: 1,
            rec: &rcpt(5, RcptStatus::Delivered, 1, None),
        })
        .unwrap();
        bytes.extend_from_slice(&good);
        bytes.push(b'\n');
        let st = MessageState::replay(&bytes, 2);
        assert_eq!(st.records, 0);
        assert_eq!(st.skipped, 4);
        assert_eq!(st.rcpts[0].status, RcptStatus::Pending);
    }

    #[test]
    fn dsn_records_mark_reported_and_flags() {
        let mut st = MessageState::new(3);
        st.apply(&StateRecord::Dsn {
            kind: DsnKind::Failure,
            rcpts: vec![1, 9],
            dsn_queue_id: Some(QueueId::generate()),
            at_ms: 1,
        });
        st.apply(&StateRecord::Dsn {
            kind: DsnKind::Delay,
            rcpts: vec![0, 2],
            dsn_queue_id: None,
            at_ms: 2,
        });
        assert!(st.dsn_sent && st.delay_notice_sent);
        assert!(st.rcpts[1].reported);
        assert!(!st.rcpts[0].reported && !st.rcpts[2].reported);
    }
}
