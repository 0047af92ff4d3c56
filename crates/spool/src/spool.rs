//! The writable spool: recovery at open, the commit protocol, removal, and the
//! reuse of delivered messages' files.
//! `docs/spool-format.md` §3 (commit, removal, file reuse), §4 (errors), §6
//! (recovery).
//!
//! # Security
//! Writes only below `SpoolSettings::dir`, to paths built from a `QueueId`.
//! Files are created `0600` in directories created `0700`: bodies are private.
//! A reused file held another (delivered) message; it is overwritten and cut to
//! the new length before it gets a name in `msg/`, so nothing of the old message
//! is ever read as part of the new one (the trailer and CRCs would reject it).
//!
//! # Standards
//! None (our own format, `docs/spool-format.md`).

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::envelope::{Envelope, rfc3339_now};
use crate::error::{SpoolError, SpoolOp};
use crate::format::{self, MAX_ENVELOPE_LEN, MessageReader, Trailer};
use crate::fs::{HeldDirs, SpoolFs, StdFs, WriteFile};
use crate::group::{Group, PoisonInfo};
use crate::id::QueueId;
use crate::io::IoPool;
use crate::reader::{Listing, MSG_DIR, SpoolReader, Store, map_read_error, parse_name};
use crate::reuse::{Kept, KeptFile, REUSE_MAX_BYTES, Reuse};
use crate::settings::SpoolSettings;
use crate::space::Space;

const TMP_DIR: &str = "tmp";
const STATE_DIR: &str = "state";
const CORRUPT_DIR: &str = "corrupt";
const LOCK_FILE: &str = "lock";
/// Write buffer per incoming message.
const WRITE_BUFFER: usize = 64 * 1024;
/// Attempts to find a fresh id if `tmp/<id>` exists (another process, or a clock
/// gone backwards across a restart).
const CREATE_ATTEMPTS: usize = 8;
/// Suffix of a kept file's name in `tmp/`: `tmp/<queue id of the delivered
/// message>.reuse`.
const REUSE_SUFFIX: &str = ".reuse";

/// What recovery found at `Spool::open`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Valid committed messages in `msg/`.
    pub recovered: usize,
    /// Files deleted from `tmp/` (never acknowledged, or kept for reuse after
    /// their message was delivered).
    pub removed_tmp: usize,
    /// Files moved to `corrupt/`: (file name in `msg/`, reason).
    pub corrupt: Vec<(String, String)>,
}

struct Inner {
    fs: Arc<dyn SpoolFs>,
    dir: PathBuf,
    tmp_dir: PathBuf,
    state_dir: PathBuf,
    store: Store,
    group: Arc<Group>,
    committer: Mutex<Option<JoinHandle<()>>>,
    io: IoPool,
    reuse: Reuse,
    space: Space,
    _lock: Box<dyn Send + Sync>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Kept files are garbage after a stop (recovery would delete them too);
        // leave `tmp/` empty after a clean shutdown.
        for file in self.reuse.take_all() {
            discard_file(self.fs.as_ref(), &file.path);
        }
        // Queued tasks run first (they may still take tickets), then the
        // committer serves what is left and stops. The last reference may be
        // dropped on one of these threads (by a task or a completion): that
        // thread is not joined, and ends by itself. On the committer, the I/O
        // threads are not joined either: a task may be waiting for it.
        let handle = self
            .committer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let on_committer = handle
            .as_ref()
            .is_some_and(|h| h.thread().id() == std::thread::current().id());
        self.io.shutdown(!on_committer);
        self.group.shutdown();
        if let Some(handle) = handle
            && !on_committer
            && handle.join().is_err()
        {
            tracing::error!("spool committer thread panicked");
        }
    }
}

/// The message spool. Cheap to clone; all clones share one committer thread.
#[derive(Clone)]
pub struct Spool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.inner.dir)
            .field("poisoned", &self.is_poisoned())
            .finish_non_exhaustive()
    }
}

impl Spool {
    /// Open (creating if needed) the spool, run recovery, start the committer.
    pub fn open(settings: &SpoolSettings) -> Result<(Spool, RecoveryReport), SpoolError> {
        Self::open_with_fs(settings, Arc::new(StdFs))
    }

    /// `open` through a chosen file system (tests: fault injection, crash model).
    pub fn open_with_fs(
        settings: &SpoolSettings,
        fs: Arc<dyn SpoolFs>,
    ) -> Result<(Spool, RecoveryReport), SpoolError> {
        let dir = settings.dir.clone();
        let tmp_dir = dir.join(TMP_DIR);
        let msg_dir = dir.join(MSG_DIR);
        let state_dir = dir.join(STATE_DIR);
        let corrupt_dir = dir.join(CORRUPT_DIR);
        for d in [&dir, &tmp_dir, &msg_dir, &state_dir, &corrupt_dir] {
            fs.create_dir_all(d)
                .map_err(|e| SpoolError::io(SpoolOp::CreateDir, d.clone(), e))?;
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock = fs
            .lock(&lock_path)
            .map_err(|e| SpoolError::io(SpoolOp::Lock, lock_path, e))?;
        // The spool directory and its subdirectories must exist after a crash, or
        // committed messages would go with them.
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        sync_dir(fs.as_ref(), &parent)?;
        sync_dir(fs.as_ref(), &dir)?;

        let report = recover(fs.as_ref(), &tmp_dir, &msg_dir, &corrupt_dir)?;

        let group = Arc::new(Group::new(
            settings.poison_reminder,
            settings.removal_window,
        ));
        let committer = {
            let group = Arc::clone(&group);
            // `msg/` stays open for the committer's fsyncs.
            let fs: Arc<dyn SpoolFs> = Arc::new(
                HeldDirs::open(Arc::clone(&fs), &[&msg_dir])
                    .map_err(|e| SpoolError::io(SpoolOp::Open, msg_dir.clone(), e))?,
            );
            let msg_dir = msg_dir.clone();
            let window = settings.group_commit_window;
            std::thread::Builder::new()
                .name("spool-committer".into())
                .spawn(move || group.run_committer(&fs, &msg_dir, window))
                .map_err(|e| SpoolError::io(SpoolOp::StartThread, dir.clone(), e))?
        };
        let io = IoPool::start(settings.io_threads)
            .map_err(|e| SpoolError::io(SpoolOp::StartThread, dir.clone(), e))?;
        let inner = Inner {
            io,
            store: Store {
                fs: Arc::clone(&fs),
                msg_dir,
            },
            fs,
            dir,
            tmp_dir,
            state_dir,
            group,
            committer: Mutex::new(Some(committer)),
            reuse: Reuse {
                max_files: settings.reuse_max_files,
                min_age: settings.reuse_min_age,
                supported: AtomicBool::new(true),
                kept: Mutex::new(Kept::default()),
            },
            space: Space::new(settings.min_free, settings.space_check_interval),
            _lock: lock,
        };
        Ok((
            Spool {
                inner: Arc::new(inner),
            },
            report,
        ))
    }

    /// Read-only access to the spool at `dir` while a server may be running: no
    /// lock, no recovery, no writes.
    pub fn open_read_only(dir: &Path) -> Result<SpoolReader, SpoolError> {
        SpoolReader::open(dir)
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// True once an fsync failed: nothing is accepted until [`Spool::recheck`]
    /// succeeds or the process restarts.
    pub fn is_poisoned(&self) -> bool {
        self.inner.group.is_poisoned()
    }

    /// Why and since when the spool is poisoned, if it is.
    pub fn poison_info(&self) -> Option<PoisonInfo> {
        self.inner.group.poison_info()
    }

    /// The operator's way out of the poisoned state, after checking the disk
    /// (`postern spool recheck`): write a test file in `tmp/`, fsync it, remove
    /// it, and fsync `tmp/` and `msg/`. If every step succeeds the poison is
    /// cleared and the spool accepts messages again; returns what it was
    /// poisoned by (`None`: it was not). Any failure leaves the spool as it was
    /// and is returned. Blocking.
    ///
    /// Why this is safe: a poisoned spool acknowledged nothing whose fsync
    /// failed (the commit that hit the failure answered an error and removed
    /// its file), so the only question is whether the disk works now.
    pub fn recheck(&self) -> Result<Option<PoisonInfo>, SpoolError> {
        let inner = &self.inner;
        let fs = inner.fs.as_ref();
        let probe = inner
            .tmp_dir
            .join(format!("{}.recheck", QueueId::generate()));
        let mut file = fs
            .create_new(&probe)
            .map_err(|e| SpoolError::io(SpoolOp::Create, probe.clone(), e))?;
        let written = file
            .write_all(&[0u8; 4096])
            .and_then(|()| file.flush())
            .map_err(|e| SpoolError::io(SpoolOp::Write, probe.clone(), e))
            .and_then(|()| {
                file.sync()
                    .map_err(|e| SpoolError::io(SpoolOp::SyncFile, probe.clone(), e))
            });
        drop(file);
        let removed = fs
            .remove_file(&probe)
            .map_err(|e| SpoolError::io(SpoolOp::Remove, probe.clone(), e));
        written?;
        removed?;
        sync_dir(fs, &inner.tmp_dir)?;
        sync_dir(fs, &inner.store.msg_dir)?;
        inner.space.forget();
        let was = inner.group.clear_poison();
        if let Some(p) = &was {
            tracing::warn!(op = %p.op, path = %p.path.display(), error = %p.error,
                "spool recheck: a test write and fsync succeeded; poison cleared, accepting messages again");
        }
        Ok(was)
    }

    /// Can a new message be taken now? Cheap enough for every `MAIL`, and
    /// safe on an async task: an atomic load, and a cached `statvfs(2)` at most
    /// once per `space_check_interval` (1 s by default); it never writes or
    /// unlinks. `declared_size` is the client's `SIZE=` (RFC 1870), if any.
    ///
    /// The smtpd answers the errors as [`SpoolError::is_no_space`] says:
    /// - [`SpoolError::Poisoned`] → `451 4.3.0` (local error; an fsync failed
    ///   earlier, see [`Spool::recheck`]);
    /// - [`SpoolError::LowSpace`] → `452 4.3.1` (insufficient system storage):
    ///   the free space is below `min_free`, or `declared_size` is more than the
    ///   free space above `min_free` (RFC 1870 §6.1 allows `452` for a `SIZE=`
    ///   that cannot be taken now).
    pub fn admit(&self, declared_size: Option<u64>) -> Result<(), SpoolError> {
        if self.is_poisoned() {
            return Err(SpoolError::Poisoned);
        }
        let inner = &self.inner;
        inner
            .space
            .check(inner.fs.as_ref(), &inner.dir, declared_size)
    }

    /// Unlink every file kept for reuse (the disk is running low); returns how
    /// many there were.
    fn release_kept(&self) -> usize {
        let files = self.inner.reuse.take_all();
        for file in &files {
            discard_file(self.inner.fs.as_ref(), &file.path);
        }
        if !files.is_empty() {
            tracing::info!(
                files = files.len(),
                "spool: low on space, gave back the files kept for reuse"
            );
        }
        files.len()
    }

    /// The free-space floor in bytes (`[spool] min_free`; 0: off).
    pub fn min_free(&self) -> u64 {
        self.inner.space.floor()
    }

    /// Changes the free-space floor of the running spool (`SIGHUP`), from the
    /// next [`Spool::admit`] on.
    pub fn set_min_free(&self, bytes: u64) {
        self.inner.space.set_floor(bytes);
    }

    /// Bytes free on the spool's file system (measured at most once per
    /// `space_check_interval`); `None` if the file system cannot say.
    pub fn free_space(&self) -> Option<u64> {
        self.inner
            .space
            .free(self.inner.fs.as_ref(), &self.inner.dir)
    }

    /// Directory fsyncs done by the group committer since open (for metrics).
    pub fn dir_syncs(&self) -> u64 {
        self.inner.group.dir_syncs()
    }

    /// Runs `task` on one of the spool's I/O threads (`SpoolSettings::io_threads`),
    /// for async callers: the blocking spool calls (`begin`, `write_all`,
    /// `Incoming::commit_then`) belong there rather than on tokio's blocking
    /// pool (`io.rs` says why). The task must
    /// only do disk work and must not wait for anything else; it reports back
    /// itself (a channel, a callback). If it panics it is dropped, and whatever
    /// it owned with it.
    pub fn execute(&self, task: impl FnOnce() + Send + 'static) {
        self.inner.io.submit(Box::new(task));
    }

    /// Start receiving a message: into a kept file of a delivered message if one
    /// is ready, else into a new `tmp/<new id>`. Blocking. Refuses like
    /// [`Spool::admit`] (without a size) when poisoned or below the free-space
    /// floor — after giving back the files kept for reuse and measuring again.
    pub fn begin(&self) -> Result<Incoming, SpoolError> {
        self.begin_as(QueueId::generate())
    }

    /// [`Spool::begin`] under a queue id chosen before (the server tells
    /// content engines the id while the message is still in memory). Should
    /// a file of that name exist in `tmp/` already (a clock that went back
    /// across a restart), a new id is used: see [`Incoming::queue_id`].
    pub fn begin_as(&self, id: QueueId) -> Result<Incoming, SpoolError> {
        match self.admit(None) {
            Err(SpoolError::LowSpace { .. }) if self.release_kept() > 0 => {
                self.inner.space.forget();
                self.admit(None)?;
            }
            other => other?,
        }
        let fs = &self.inner.fs;
        if let Some(kept) = self.inner.reuse.take() {
            match fs.open_rewrite(&kept.path) {
                Ok(Some(file)) => return self.start(id, kept.path, file, true),
                Ok(None) => self.inner.reuse.supported.store(false, Ordering::Relaxed),
                Err(e) => tracing::warn!(path = %kept.path.display(), error = %e,
                    "spool: cannot reopen a kept file; creating a new one"),
            }
            discard_file(fs.as_ref(), &kept.path);
        }
        let mut attempt = 0;
        let mut next = Some(id);
        let (id, path, file) = loop {
            let id = next.take().unwrap_or_else(QueueId::generate);
            let path = self.inner.tmp_dir.join(id.as_str());
            match fs.create_new(&path) {
                Ok(file) => break (id, path, file),
                Err(e)
                    if e.kind() == io::ErrorKind::AlreadyExists
                        && attempt + 1 < CREATE_ATTEMPTS =>
                {
                    attempt += 1;
                }
                Err(e) => return Err(SpoolError::io(SpoolOp::Create, path, e)),
            }
        };
        self.start(id, path, file, false)
    }

    fn start(
        &self,
        id: QueueId,
        tmp_path: PathBuf,
        file: Box<dyn WriteFile>,
        rewrite: bool,
    ) -> Result<Incoming, SpoolError> {
        let mut incoming = Incoming {
            id,
            tmp_path,
            writer: Some(BufWriter::with_capacity(WRITE_BUFFER, file)),
            hasher: crc32fast::Hasher::new(),
            body_len: 0,
            written: 0,
            rewrite,
            spool: Arc::clone(&self.inner),
            finished: false,
        };
        incoming.write_raw(&format::header())?;
        Ok(incoming)
    }

    /// Envelopes of all valid committed messages, sorted by queue id. Files that
    /// fail validation are skipped and logged; see [`Spool::scan`].
    pub fn list(&self) -> Result<Vec<Envelope>, SpoolError> {
        self.inner.store.list()
    }

    /// Like `list`, but also reports the files it skipped and why.
    pub fn scan(&self) -> Result<Listing, SpoolError> {
        self.inner.store.scan()
    }

    /// The envelope of one committed message.
    pub fn envelope(&self, id: &QueueId) -> Result<Envelope, SpoolError> {
        self.inner.store.envelope(id)
    }

    /// The body of one committed message: bounded to its length; the last read
    /// fails with `InvalidData` if the body CRC does not match.
    pub fn open_message(&self, id: &QueueId) -> Result<MessageReader, SpoolError> {
        self.inner.store.open_message(id)
    }

    /// Remove a message whose delivery is final: take `msg/<id>` away (rename it
    /// into `tmp/` to be reused, or unlink it), wait for the directory fsync, and
    /// only then unlink `state/<id>` (if present). An error means the removal may
    /// not survive a crash (a duplicate, never a loss): the message is no longer
    /// listed either way, and its state file is kept, so that if a crash brings the
    /// message back its recorded outcomes come back with it.
    pub fn remove(&self, id: &QueueId) -> Result<(), SpoolError> {
        let path = self.inner.store.path(id);
        let kept = self.take_away(id, &path)?;
        let durable = self.inner.group.wait_durable();
        finish_removal(&self.inner, id, kept, &durable);
        durable
    }

    /// [`Spool::remove`] without blocking: the committer thread takes
    /// `msg/<id>` away before its next directory fsync, and `done` runs there
    /// once the removal is durable, with what `remove` would have returned.
    /// The removal is *lazy*: it shares the next commit's directory fsync, or
    /// is done after `SpoolSettings::removal_window` if no commit comes; until
    /// then the message is still listed, and a crash may bring it back (a
    /// duplicate, never a loss: `docs/spool-format.md` §3). `done` must be
    /// short and must not block (send a message, no more).
    pub fn remove_then(
        &self,
        id: &QueueId,
        done: impl FnOnce(Result<(), SpoolError>) + Send + 'static,
    ) {
        let spool = self.clone();
        let id = *id;
        self.inner.group.run_step(Box::new(move || {
            let path = spool.inner.store.path(&id);
            let kept = match spool.take_away(&id, &path) {
                Ok(kept) => kept,
                Err(e) => return done(Err(e)),
            };
            let inner = Arc::clone(&spool.inner);
            spool.inner.group.when_durable(
                false,
                Box::new(move |durable| {
                    finish_removal(&inner, &id, kept, &durable);
                    done(durable);
                }),
            );
        }));
    }

    /// Take `msg/<id>` out of `msg/`: renamed to `tmp/<id>.reuse` if reuse is on
    /// and there is room (returned), else unlinked.
    fn take_away(&self, id: &QueueId, path: &Path) -> Result<Option<KeptFile>, SpoolError> {
        let inner = &self.inner;
        let not_found = |e: &io::Error| e.kind() == io::ErrorKind::NotFound;
        // Near the floor, a removed message gives its space back, and so do the
        // files kept so far.
        if inner.reuse.is_on()
            && inner
                .space
                .is_low(inner.fs.as_ref(), &inner.dir, REUSE_MAX_BYTES)
        {
            self.release_kept();
        } else if inner.reuse.is_on() && !self.is_poisoned() {
            let len = match inner.fs.file_len(path) {
                Ok(len) => Some(len),
                Err(e) if not_found(&e) => return Err(SpoolError::NotFound(*id)),
                Err(_) => None,
            };
            if let Some(len) = len.filter(|&len| inner.reuse.has_room(len)) {
                let kept = inner.tmp_dir.join(format!("{id}{REUSE_SUFFIX}"));
                match inner.fs.rename(path, &kept) {
                    Ok(()) => {
                        return Ok(Some(KeptFile {
                            path: kept,
                            len,
                            since: Instant::now(),
                        }));
                    }
                    Err(e) if not_found(&e) => return Err(SpoolError::NotFound(*id)),
                    // Unlink instead, and report that if it fails too.
                    Err(_) => {}
                }
            }
        }
        match inner.fs.remove_file(path) {
            Ok(()) => Ok(None),
            Err(e) if not_found(&e) => Err(SpoolError::NotFound(*id)),
            Err(e) => Err(SpoolError::io(SpoolOp::Remove, path.to_path_buf(), e)),
        }
    }
}

/// The steps of a removal after its directory fsync (or its failure):
/// hand a kept file to the reuse list, unlink `state/<id>`.
fn finish_removal(
    inner: &Inner,
    id: &QueueId,
    kept: Option<KeptFile>,
    durable: &Result<(), SpoolError>,
) {
    if let Some(file) = kept {
        if durable.is_ok() {
            // The name in `msg/` is durably gone: nothing can find this inode
            // as message `id` again, so it may be rewritten.
            if let Err(file) = inner.reuse.put(file) {
                discard_file(inner.fs.as_ref(), &file.path);
            }
        } else {
            // A crash may bring `msg/<id>` back, naming this inode: never
            // rewrite it. Recovery deletes the `tmp/` name if this fails.
            discard_file(inner.fs.as_ref(), &file.path);
        }
    }
    if durable.is_ok() {
        let state = inner.state_dir.join(id.as_str());
        match inner.fs.remove_file(&state) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %state.display(), error = %e, "spool: could not remove delivery state");
            }
        }
    }
}

/// Best-effort unlink of a file in `tmp/` (recovery deletes what is left).
fn discard_file(fs: &dyn SpoolFs, path: &Path) {
    match fs.remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e,
            "spool: could not remove a temporary file (recovery will)"),
    }
}

/// A message being received into `tmp/`. Dropping it (or `abort`) removes the
/// temporary file; only `commit` makes it a queued message.
pub struct Incoming {
    id: QueueId,
    tmp_path: PathBuf,
    /// `None` after a write error: the file's content is unknown, only cleanup is left.
    writer: Option<BufWriter<Box<dyn WriteFile>>>,
    hasher: crc32fast::Hasher,
    body_len: u64,
    /// Bytes written so far (header, body, envelope, trailer).
    written: u64,
    /// The file is a kept one being rewritten: its old content may be longer.
    rewrite: bool,
    spool: Arc<Inner>,
    /// The tmp file no longer exists under `tmp_path` (renamed or removed).
    finished: bool,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("queue_id", &self.id)
            .field("bytes_written", &self.body_len)
            .finish_non_exhaustive()
    }
}

/// Drop a buffered writer without flushing what it holds (after an error, or on
/// abort, the bytes are unwanted and the flush could block or fail again).
fn discard(writer: BufWriter<Box<dyn WriteFile>>) {
    let (_file, _unflushed) = writer.into_parts();
}

impl Incoming {
    /// The queue id this message will have.
    pub fn queue_id(&self) -> &QueueId {
        &self.id
    }

    /// Body bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.body_len
    }

    fn write_raw(&mut self, data: &[u8]) -> Result<(), SpoolError> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(self.earlier_failure());
        };
        if let Err(e) = writer.write_all(data) {
            if let Some(w) = self.writer.take() {
                discard(w);
            }
            return Err(SpoolError::io(SpoolOp::Write, self.tmp_path.clone(), e));
        }
        self.written += data.len() as u64;
        Ok(())
    }

    fn earlier_failure(&self) -> SpoolError {
        SpoolError::Io {
            op: SpoolOp::Write,
            path: self.tmp_path.clone(),
            source: io::Error::other("an earlier write to this message failed"),
        }
    }

    /// Append body bytes (blocking, buffered). After an error the message can only
    /// be dropped.
    pub fn write_all(&mut self, data: &[u8]) -> Result<(), SpoolError> {
        self.write_raw(data)?;
        self.hasher.update(data);
        self.body_len += data.len() as u64;
        Ok(())
    }

    /// Reads back the first `limit` body bytes written so far (blocking): the
    /// smtpd verifies DKIM over the whole message at end of data, after most
    /// of a large body was already streamed here. Flushes the buffer first;
    /// the file stays open for more writes and the commit.
    pub fn read_back(&mut self, limit: u64) -> Result<Vec<u8>, SpoolError> {
        use std::io::{Read as _, Seek as _, SeekFrom};
        let Some(writer) = self.writer.as_mut() else {
            return Err(self.earlier_failure());
        };
        let read_err =
            |path: &std::path::Path, e| SpoolError::io(SpoolOp::Read, path.to_path_buf(), e);
        writer
            .flush()
            .map_err(|e| SpoolError::io(SpoolOp::Write, self.tmp_path.clone(), e))?;
        let mut file = self
            .spool
            .fs
            .open(&self.tmp_path)
            .map_err(|e| read_err(&self.tmp_path, e))?;
        file.seek(SeekFrom::Start(crate::format::HEADER_LEN))
            .map_err(|e| read_err(&self.tmp_path, e))?;
        let want = self.body_len.min(limit);
        let mut out = Vec::with_capacity(usize::try_from(want).unwrap_or(0));
        file.take(want)
            .read_to_end(&mut out)
            .map_err(|e| read_err(&self.tmp_path, e))?;
        Ok(out)
    }

    /// Make the message durable and queued. Blocking: returns only after the file
    /// fsync, the rename and the (group) directory fsync, i.e. when it is safe to
    /// answer `250`. Sets `queue_id` and `message_size`, and `received_at` if
    /// empty; returns the envelope as stored.
    pub fn commit(mut self, envelope: Envelope) -> Result<Envelope, SpoolError> {
        let (envelope, msg_path) = self.write_out(envelope)?;
        let durable = self.spool.group.wait_durable();
        settle_commit(&self.spool, &msg_path, durable).map(|()| envelope)
    }

    /// [`Incoming::commit`] without waiting for the shared directory fsync:
    /// the file is written, fsynced and renamed into `msg/` on the calling
    /// thread (blocking: an I/O thread, [`Spool::execute`]), then `done` runs on
    /// the committer thread once the directory fsync covered the rename — with
    /// exactly what `commit` would have returned; only `Ok` allows a `250`.
    /// Errors before the rename are given to `done` on the calling thread.
    /// `done` must be short and must not block (send a message, no more).
    pub fn commit_then(
        mut self,
        envelope: Envelope,
        done: impl FnOnce(Result<Envelope, SpoolError>) + Send + 'static,
    ) {
        let (envelope, msg_path) = match self.write_out(envelope) {
            Ok(x) => x,
            Err(e) => return done(Err(e)),
        };
        let spool = Arc::clone(&self.spool);
        drop(self);
        let group = Arc::clone(&spool.group);
        group.when_durable(
            true,
            Box::new(move |durable| {
                done(settle_commit(&spool, &msg_path, durable).map(|()| envelope));
            }),
        );
    }

    /// Steps 3–5 of the commit protocol: envelope and trailer written, the
    /// file fsynced and renamed into `msg/`. Returns the stored envelope and
    /// the message's path; the caller waits for the directory fsync.
    fn write_out(&mut self, mut envelope: Envelope) -> Result<(Envelope, PathBuf), SpoolError> {
        let group = Arc::clone(&self.spool.group);
        if group.is_poisoned() {
            return Err(SpoolError::Poisoned);
        }
        envelope.queue_id = self.id;
        envelope.message_size = self.body_len;
        if envelope.received_at.is_empty() {
            envelope.received_at = rfc3339_now();
        }
        let json = serde_json::to_vec(&envelope).map_err(|e| SpoolError::Io {
            op: SpoolOp::Write,
            path: self.tmp_path.clone(),
            source: io::Error::other(e),
        })?;
        if json.len() as u64 > MAX_ENVELOPE_LEN {
            return Err(SpoolError::Io {
                op: SpoolOp::Write,
                path: self.tmp_path.clone(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "envelope too large"),
            });
        }
        let trailer = Trailer::new(self.body_len, self.hasher.clone().finalize(), &json);
        self.write_raw(&json)?;
        self.write_raw(&trailer.encode())?;

        let Some(writer) = self.writer.take() else {
            return Err(self.earlier_failure());
        };
        let mut file = match writer.into_inner() {
            Ok(file) => file,
            Err(e) => {
                let (source, writer) = e.into_parts();
                discard(writer);
                return Err(SpoolError::io(
                    SpoolOp::Write,
                    self.tmp_path.clone(),
                    source,
                ));
            }
        };

        // A rewritten file ends where the new message ends (its trailer must be
        // the last bytes), before the fsync makes the length durable.
        if self.rewrite
            && let Err(e) = file.set_len(self.written)
        {
            return Err(SpoolError::io(SpoolOp::Write, self.tmp_path.clone(), e));
        }

        // 1. The file's bytes are durable.
        if let Err(e) = file.sync() {
            group.poison(SpoolOp::SyncFile, &self.tmp_path, &e);
            return Err(SpoolError::io(SpoolOp::SyncFile, self.tmp_path.clone(), e));
        }
        drop(file);

        // 2. It gets its name in msg/ (atomically; only complete files get one).
        let msg_path = self.spool.store.path(&self.id);
        self.spool
            .fs
            .rename(&self.tmp_path, &msg_path)
            .map_err(|e| SpoolError::io(SpoolOp::Rename, msg_path.clone(), e))?;
        self.finished = true;
        Ok((envelope, msg_path))
    }

    /// Give up on this message; removes the temporary file.
    pub fn abort(self) {}
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if let Some(w) = self.writer.take() {
            discard(w);
        }
        if self.finished {
            return;
        }
        discard_file(self.spool.fs.as_ref(), &self.tmp_path);
    }
}

/// The last step of a commit: the name is durable (shared directory fsync),
/// or not — then the message is not acknowledged, and taken back so this
/// process does not list it; a crash may still resurrect it (a duplicate,
/// never a loss).
fn settle_commit(
    inner: &Inner,
    msg_path: &Path,
    durable: Result<(), SpoolError>,
) -> Result<(), SpoolError> {
    if durable.is_err()
        && let Err(e) = inner.fs.remove_file(msg_path)
    {
        tracing::warn!(path = %msg_path.display(), error = %e,
            "spool: could not remove unacknowledged message after a failed commit");
    }
    durable
}

fn sync_dir(fs: &dyn SpoolFs, dir: &Path) -> Result<(), SpoolError> {
    fs.sync_dir(dir)
        .map_err(|e| SpoolError::io(SpoolOp::SyncDir, dir.to_path_buf(), e))
}

/// Recovery (`docs/spool-format.md` §6): empty `tmp/`, validate `msg/`, move
/// damaged files to `corrupt/`.
fn recover(
    fs: &dyn SpoolFs,
    tmp_dir: &Path,
    msg_dir: &Path,
    corrupt_dir: &Path,
) -> Result<RecoveryReport, SpoolError> {
    let mut report = RecoveryReport::default();
    let read_dir = |d: &Path| {
        fs.read_dir(d)
            .map_err(|e| SpoolError::io(SpoolOp::ReadDir, d.to_path_buf(), e))
    };

    for name in read_dir(tmp_dir)? {
        let path = tmp_dir.join(&name);
        fs.remove_file(&path)
            .map_err(|e| SpoolError::io(SpoolOp::Remove, path, e))?;
        report.removed_tmp += 1;
    }
    sync_dir(fs, tmp_dir)?;

    let mut taken: HashSet<OsString> = read_dir(corrupt_dir)?.into_iter().collect();
    let mut names = read_dir(msg_dir)?;
    names.sort();
    for name in names {
        let path = msg_dir.join(&name);
        let verdict = match parse_name(&name) {
            None => Err("file name is not a queue id".to_string()),
            Some(id) => check_file(fs, &path, &id)?,
        };
        match verdict {
            Ok(()) => report.recovered += 1,
            Err(reason) => {
                tracing::error!(file = %path.display(), %reason,
                    "spool recovery: damaged message file moved to corrupt/");
                move_aside(fs, &path, &name, &reason, corrupt_dir, &mut taken)?;
                report
                    .corrupt
                    .push((name.to_string_lossy().into_owned(), reason));
            }
        }
    }
    if !report.corrupt.is_empty() {
        sync_dir(fs, corrupt_dir)?;
    }
    sync_dir(fs, msg_dir)?;
    tracing::info!(
        recovered = report.recovered,
        removed_tmp = report.removed_tmp,
        corrupt = report.corrupt.len(),
        "spool recovered"
    );
    Ok(report)
}

/// `Ok(Ok(()))` valid, `Ok(Err(reason))` damaged, `Err` an I/O error (not evidence
/// of damage: recovery stops rather than move a possibly good file).
fn check_file(
    fs: &dyn SpoolFs,
    path: &Path,
    id: &QueueId,
) -> Result<Result<(), String>, SpoolError> {
    let mut file = fs
        .open(path)
        .map_err(|e| SpoolError::io(SpoolOp::Open, path.to_path_buf(), e))?;
    let result = format::read_meta(file.as_mut(), id)
        .and_then(|(trailer, _)| format::verify_body(file.as_mut(), &trailer));
    match result {
        Ok(()) => Ok(Ok(())),
        Err(e) => match map_read_error(path, e) {
            SpoolError::Corrupt { reason, .. } => Ok(Err(reason)),
            other => Err(other),
        },
    }
}

/// Write `corrupt/<target>.reason` (fsynced), then rename the file to
/// `corrupt/<target>`; `<target>` is `name`, or `name.N` if taken.
fn move_aside(
    fs: &dyn SpoolFs,
    path: &Path,
    name: &OsStr,
    reason: &str,
    corrupt_dir: &Path,
    taken: &mut HashSet<OsString>,
) -> Result<(), SpoolError> {
    let with_suffix = |base: &OsStr, suffix: &str| {
        let mut s = base.to_os_string();
        s.push(suffix);
        s
    };
    let mut target = name.to_os_string();
    let mut n = 0u32;
    while taken.contains(&target) || taken.contains(&with_suffix(&target, ".reason")) {
        n += 1;
        target = with_suffix(name, &format!(".{n}"));
    }
    let reason_name = with_suffix(&target, ".reason");
    let reason_path = corrupt_dir.join(&reason_name);
    let mut file = fs
        .create_new(&reason_path)
        .map_err(|e| SpoolError::io(SpoolOp::Create, reason_path.clone(), e))?;
    file.write_all(format!("{reason}\n").as_bytes())
        .map_err(|e| SpoolError::io(SpoolOp::Write, reason_path.clone(), e))?;
    file.sync()
        .map_err(|e| SpoolError::io(SpoolOp::SyncFile, reason_path.clone(), e))?;
    drop(file);
    let target_path = corrupt_dir.join(&target);
    fs.rename(path, &target_path)
        .map_err(|e| SpoolError::io(SpoolOp::Rename, target_path, e))?;
    taken.insert(reason_name);
    taken.insert(target);
    Ok(())
}
