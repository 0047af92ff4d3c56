//! The file-system seam: every byte the spool reads or writes goes through
//! [`SpoolFs`], so tests can inject faults and simulate crashes.
//!
//! [`StdFs`] is the real implementation (`std::fs`). [`FaultFs`] wraps any
//! implementation, counts operations and fails chosen ones with a chosen `errno`
//! (for the spool's tests and for other crates' tests, e.g. the smtpd's
//! `452 4.3.1` on `ENOSPC`).
//!
//! Two optional capabilities have defaults that every implementation gets for
//! free: a directory held open for repeated fsyncs ([`SpoolFs::open_dir`]; the
//! default fsyncs by path) and rewriting an existing file
//! ([`SpoolFs::open_rewrite`]; the default says "unsupported" and the spool
//! creates a new file instead).
//!
//! # Security
//! Paths handed to this trait are built by the spool from its root directory and a
//! validated `QueueId`; implementations need not sanitise them.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::error::SpoolOp;

/// A file being written: `io::Write` plus `fsync`.
pub trait WriteFile: Write + Send {
    /// Make the file's data and size durable (`fsync(2)`).
    fn sync(&mut self) -> io::Result<()>;

    /// Cut (or extend) the file to `len` bytes (`ftruncate(2)`). Only called on
    /// files from [`SpoolFs::open_rewrite`], whose old content may be longer than
    /// the new; an implementation that supports `open_rewrite` must support this.
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let _ = len;
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// A directory opened once for repeated fsyncs ([`SpoolFs::open_dir`]).
#[derive(Debug)]
pub struct DirHandle {
    path: PathBuf,
    /// `None`: the implementation fsyncs by path.
    file: Option<File>,
}

impl DirHandle {
    /// A handle that only remembers the path (the default of `open_dir`).
    pub fn by_path(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            file: None,
        }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A file being read.
pub trait ReadFile: io::Read + io::Seek + Send {}
impl<T: io::Read + io::Seek + Send> ReadFile for T {}

/// Everything the spool does to the file system. Paths are absolute or relative to
/// the process's working directory, as given in `SpoolSettings::dir`.
pub trait SpoolFs: Send + Sync + 'static {
    /// `mkdir -p`.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Create a new file for writing; fail if it exists (`O_CREAT|O_EXCL`).
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WriteFile>>;
    /// Open an existing file for reading.
    fn open(&self, path: &Path) -> io::Result<Box<dyn ReadFile>>;
    /// `rename(2)`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// `unlink(2)`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// The names in a directory (not `.`/`..`), in no particular order.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>>;
    /// Make the directory's entries durable (`fsync(2)` on the directory).
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Open a directory for repeated [`SpoolFs::sync_dir_handle`] calls (the group
    /// committer's `msg/`). The default keeps the path only; [`StdFs`] keeps a
    /// descriptor open, which saves an `open` and a `close` per fsync.
    fn open_dir(&self, path: &Path) -> io::Result<DirHandle> {
        Ok(DirHandle::by_path(path))
    }
    /// `fsync(2)` on a directory from `open_dir`: the same guarantee as
    /// `sync_dir(dir.path())`.
    fn sync_dir_handle(&self, dir: &DirHandle) -> io::Result<()> {
        self.sync_dir(&dir.path)
    }
    /// Open an existing file to write it again from offset 0, neither creating
    /// nor truncating it; the writer sets the final length with
    /// [`WriteFile::set_len`] before `sync`. Lets the spool reuse the files of
    /// delivered messages (`docs/spool-format.md` §3, "File reuse"). `Ok(None)`:
    /// not supported (the default); the spool then removes the file and creates
    /// a new one.
    fn open_rewrite(&self, path: &Path) -> io::Result<Option<Box<dyn WriteFile>>> {
        let _ = path;
        Ok(None)
    }
    /// The length of a file in bytes. The default opens it and seeks to the end.
    fn file_len(&self, path: &Path) -> io::Result<u64> {
        self.open(path)?.seek(SeekFrom::End(0))
    }
    /// Take an exclusive lock on `path` (created if missing) for as long as the
    /// returned guard lives. Fails with `WouldBlock` if another process holds it.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn Send + Sync>> {
        let _ = path;
        Ok(Box::new(()))
    }
    /// Bytes available to an unprivileged writer on the file system holding
    /// `path` (`statvfs(2)`: `f_bavail × f_frsize`). `Ok(None)`: unknown (the
    /// default); the spool then applies no free-space floor.
    fn free_space(&self, path: &Path) -> io::Result<Option<u64>> {
        let _ = path;
        Ok(None)
    }
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdFs;

struct StdWriteFile(File);

impl Write for StdWriteFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl WriteFile for StdWriteFile {
    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_all()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

impl SpoolFs for StdFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        // Message bodies are private: owner only.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        Ok(Box::new(StdWriteFile(file)))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn ReadFile>> {
        Ok(Box::new(File::open(path)?))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        fs::read_dir(path)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect()
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn open_dir(&self, path: &Path) -> io::Result<DirHandle> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(path)?;
        Ok(DirHandle {
            path: path.to_path_buf(),
            file: Some(file),
        })
    }

    fn sync_dir_handle(&self, dir: &DirHandle) -> io::Result<()> {
        match &dir.file {
            Some(file) => file.sync_all(),
            None => self.sync_dir(&dir.path),
        }
    }

    fn open_rewrite(&self, path: &Path) -> io::Result<Option<Box<dyn WriteFile>>> {
        // No O_CREAT, no O_TRUNC: the old blocks are overwritten in place, and
        // the inode is not freed and allocated again (see `docs/benchmarks.md`,
        // ext4 without a journal). O_NOFOLLOW: our own paths hold no symlinks.
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        Ok(Some(Box::new(StdWriteFile(file))))
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::symlink_metadata(path)?.len())
    }

    fn free_space(&self, path: &Path) -> io::Result<Option<u64>> {
        let st = rustix::fs::statvfs(path)?;
        Ok(Some(st.f_bavail.saturating_mul(st.f_frsize)))
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn Send + Sync>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(file)),
            Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "the spool is in use by another process",
            )),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// One armed fault: fail the `nth` next call of `op` (1 = the very next), and, if
/// `sticky`, every call of `op` after it.
#[derive(Debug, Clone)]
struct Fault {
    op: SpoolOp,
    countdown: u64,
    errno: i32,
    sticky: bool,
}

#[derive(Default)]
struct FaultState {
    faults: Mutex<Vec<Fault>>,
    counts: [AtomicU64; 12],
    delays: Mutex<Vec<(SpoolOp, Duration)>>,
    /// `free_space` answers this instead of asking the inner file system.
    free_space: Mutex<Option<u64>>,
}

fn op_index(op: SpoolOp) -> usize {
    match op {
        SpoolOp::CreateDir => 0,
        SpoolOp::Create => 1,
        SpoolOp::Write => 2,
        SpoolOp::SyncFile => 3,
        SpoolOp::Rename => 4,
        SpoolOp::SyncDir => 5,
        SpoolOp::Remove => 6,
        SpoolOp::ReadDir => 7,
        SpoolOp::Open => 8,
        SpoolOp::Read => 9,
        SpoolOp::Lock => 10,
        SpoolOp::StartThread => 11,
    }
}

impl FaultState {
    /// Count one call of `op`, sleep if a delay is set, and return the error to
    /// inject, if any.
    fn enter(&self, op: SpoolOp) -> io::Result<()> {
        self.counts[op_index(op)].fetch_add(1, Ordering::SeqCst);
        let delay = self
            .delays
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(o, _)| *o == op)
            .map(|(_, d)| *d);
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        let mut faults = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        let mut result = Ok(());
        faults.retain_mut(|f| {
            if f.op != op || result.is_err() {
                return true;
            }
            f.countdown = f.countdown.saturating_sub(1);
            if f.countdown == 0 {
                result = Err(io::Error::from_raw_os_error(f.errno));
                f.sticky
            } else {
                true
            }
        });
        result
    }
}

/// A fault-injecting, operation-counting wrapper around another [`SpoolFs`].
///
/// Counted operations: `CreateDir`, `Create` (also `open_rewrite`: both open the
/// file a message is received into), `Write` (each `write` call reaching the
/// file, after the spool's buffering; also `set_len`), `SyncFile`, `Rename`,
/// `SyncDir` (also `sync_dir_handle`), `Remove`, `ReadDir`, `Open`, `Lock`.
/// `open_dir`, `file_len` and `free_space` are not counted; `free_space` can be
/// set ([`FaultFs::set_free_space`]).
#[derive(Clone)]
pub struct FaultFs<F> {
    inner: Arc<F>,
    state: Arc<FaultState>,
}

impl<F: SpoolFs> FaultFs<F> {
    /// Wrap `inner`; no faults armed.
    pub fn new(inner: F) -> Self {
        Self {
            inner: Arc::new(inner),
            state: Arc::new(FaultState::default()),
        }
    }

    /// Fail the `nth` next call of `op` (1 = the very next one) with `errno`.
    pub fn fail_nth(&self, op: SpoolOp, nth: u64, errno: i32) {
        self.arm(op, nth, errno, false);
    }

    /// Fail the `nth` next call of `op` and every call of `op` after it.
    pub fn fail_from(&self, op: SpoolOp, nth: u64, errno: i32) {
        self.arm(op, nth, errno, true);
    }

    fn arm(&self, op: SpoolOp, nth: u64, errno: i32, sticky: bool) {
        self.state
            .faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Fault {
                op,
                countdown: nth.max(1),
                errno,
                sticky,
            });
    }

    /// Disarm every fault.
    pub fn clear_faults(&self) {
        self.state
            .faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Sleep `delay` in every call of `op` (to simulate a slow disk).
    pub fn set_delay(&self, op: SpoolOp, delay: Duration) {
        let mut delays = self
            .state
            .delays
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        delays.retain(|(o, _)| *o != op);
        delays.push((op, delay));
    }

    /// Pretend the file system has `bytes` free (`free_space`); `None` asks the
    /// inner file system again.
    pub fn set_free_space(&self, bytes: Option<u64>) {
        *self
            .state
            .free_space
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = bytes;
    }

    /// How many calls of `op` were made so far (including failed ones).
    pub fn count(&self, op: SpoolOp) -> u64 {
        self.state.counts[op_index(op)].load(Ordering::SeqCst)
    }
}

struct FaultWriteFile {
    inner: Box<dyn WriteFile>,
    state: Arc<FaultState>,
}

impl Write for FaultWriteFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.state.enter(SpoolOp::Write)?;
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl WriteFile for FaultWriteFile {
    fn sync(&mut self) -> io::Result<()> {
        self.state.enter(SpoolOp::SyncFile)?;
        self.inner.sync()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.state.enter(SpoolOp::Write)?;
        self.inner.set_len(len)
    }
}

impl<F: SpoolFs> SpoolFs for FaultFs<F> {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.state.enter(SpoolOp::CreateDir)?;
        self.inner.create_dir_all(path)
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        self.state.enter(SpoolOp::Create)?;
        let inner = self.inner.create_new(path)?;
        Ok(Box::new(FaultWriteFile {
            inner,
            state: Arc::clone(&self.state),
        }))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn ReadFile>> {
        self.state.enter(SpoolOp::Open)?;
        self.inner.open(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.state.enter(SpoolOp::Rename)?;
        self.inner.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.state.enter(SpoolOp::Remove)?;
        self.inner.remove_file(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        self.state.enter(SpoolOp::ReadDir)?;
        self.inner.read_dir(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.state.enter(SpoolOp::SyncDir)?;
        self.inner.sync_dir(path)
    }

    fn open_dir(&self, path: &Path) -> io::Result<DirHandle> {
        self.inner.open_dir(path)
    }

    fn sync_dir_handle(&self, dir: &DirHandle) -> io::Result<()> {
        self.state.enter(SpoolOp::SyncDir)?;
        self.inner.sync_dir_handle(dir)
    }

    fn open_rewrite(&self, path: &Path) -> io::Result<Option<Box<dyn WriteFile>>> {
        self.state.enter(SpoolOp::Create)?;
        Ok(self.inner.open_rewrite(path)?.map(|inner| {
            Box::new(FaultWriteFile {
                inner,
                state: Arc::clone(&self.state),
            }) as Box<dyn WriteFile>
        }))
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        self.inner.file_len(path)
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn Send + Sync>> {
        self.state.enter(SpoolOp::Lock)?;
        self.inner.lock(path)
    }

    fn free_space(&self, path: &Path) -> io::Result<Option<u64>> {
        let set = *self
            .state
            .free_space
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match set {
            Some(bytes) => Ok(Some(bytes)),
            None => self.inner.free_space(path),
        }
    }
}

/// Another [`SpoolFs`] with some directories held open: `sync_dir` of one of them
/// goes through its [`DirHandle`] (`sync_dir_handle`), everything else straight
/// to the inner file system. The group committer gets one with `msg/`, so its
/// fsync of every batch is one `fsync(2)`, not `open` + `fsync` + `close`.
pub(crate) struct HeldDirs {
    inner: Arc<dyn SpoolFs>,
    dirs: Vec<DirHandle>,
}

impl HeldDirs {
    /// Open `dirs` through `inner` and hold them.
    pub(crate) fn open(inner: Arc<dyn SpoolFs>, dirs: &[&Path]) -> io::Result<Self> {
        let dirs = dirs
            .iter()
            .map(|d| inner.open_dir(d))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Self { inner, dirs })
    }
}

impl SpoolFs for HeldDirs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        self.inner.create_new(path)
    }
    fn open(&self, path: &Path) -> io::Result<Box<dyn ReadFile>> {
        self.inner.open(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        self.inner.read_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        match self.dirs.iter().find(|d| d.path == path) {
            Some(dir) => self.inner.sync_dir_handle(dir),
            None => self.inner.sync_dir(path),
        }
    }
    fn open_dir(&self, path: &Path) -> io::Result<DirHandle> {
        self.inner.open_dir(path)
    }
    fn sync_dir_handle(&self, dir: &DirHandle) -> io::Result<()> {
        self.inner.sync_dir_handle(dir)
    }
    fn open_rewrite(&self, path: &Path) -> io::Result<Option<Box<dyn WriteFile>>> {
        self.inner.open_rewrite(path)
    }
    fn file_len(&self, path: &Path) -> io::Result<u64> {
        self.inner.file_len(path)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn Send + Sync>> {
        self.inner.lock(path)
    }
    fn free_space(&self, path: &Path) -> io::Result<Option<u64>> {
        self.inner.free_space(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_is_exclusive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lock");
        let guard = StdFs.lock(&path).expect("first lock");
        let err = StdFs.lock(&path).err().expect("second lock must fail");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        drop(guard);
        StdFs.lock(&path).expect("lock again after release");
    }

    #[test]
    fn held_dirs_sync_through_their_handle() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (held, other) = (dir.path().join("msg"), dir.path().join("tmp"));
        for d in [&held, &other] {
            StdFs.create_dir_all(d).expect("mkdir");
        }
        // A handle that is not a directory is refused up front.
        let file = dir.path().join("f");
        fs::write(&file, b"x").expect("file");
        assert!(StdFs.open_dir(&file).is_err());

        let fault = FaultFs::new(StdFs);
        let fs = HeldDirs::open(Arc::new(fault.clone()), &[&held]).expect("open");
        fs.sync_dir(&held).expect("held");
        fs.sync_dir(&other).expect("other");
        assert_eq!(
            fault.count(SpoolOp::SyncDir),
            2,
            "both counted (and fault-injectable)"
        );
        fault.fail_nth(SpoolOp::SyncDir, 1, libc::EIO);
        let err = fs.sync_dir(&held).expect_err("a held dir's fsync can fail");
        assert_eq!(err.raw_os_error(), Some(libc::EIO));
        fs.sync_dir(&held).expect("the descriptor stays usable");
    }

    #[test]
    fn fault_fires_on_nth_call_once_or_sticky() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fs = FaultFs::new(StdFs);
        fs.fail_nth(SpoolOp::SyncDir, 2, libc::EIO);
        assert!(fs.sync_dir(dir.path()).is_ok());
        let err = fs.sync_dir(dir.path()).expect_err("second fails");
        assert_eq!(err.raw_os_error(), Some(libc::EIO));
        assert!(fs.sync_dir(dir.path()).is_ok());
        fs.fail_from(SpoolOp::SyncDir, 1, libc::EIO);
        assert!(fs.sync_dir(dir.path()).is_err());
        assert!(fs.sync_dir(dir.path()).is_err());
        assert_eq!(fs.count(SpoolOp::SyncDir), 5);
        fs.clear_faults();
        assert!(fs.sync_dir(dir.path()).is_ok());
    }
}
