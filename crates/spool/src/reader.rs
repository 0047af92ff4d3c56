//! Reading committed messages: listing, envelopes, bodies. Shared by the server's
//! [`Spool`](crate::Spool) and the read-only [`SpoolReader`] used by
//! `postern queue list/show` while the server runs.
//!
//! Only `msg/` is read, and files there are immutable and complete once named, so
//! a concurrent reader never sees half a message; a file that vanishes between
//! listing and opening (delivered meanwhile) is skipped.
//!
//! # Security
//! Every file is validated (`format`) before its envelope is returned; ids from
//! outside come in as `QueueId`, so no path outside `msg/` can be named.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::envelope::Envelope;
use crate::error::{SpoolError, SpoolOp};
use crate::format::{self, MessageReader, ReadError};
use crate::fs::{ReadFile, SpoolFs, StdFs};
use crate::id::QueueId;

/// Name of the directory of committed messages.
pub(crate) const MSG_DIR: &str = "msg";

/// The result of a listing that does not stop at damaged files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// Valid messages, sorted by queue id (acceptance order).
    pub envelopes: Vec<Envelope>,
    /// Files that could not be read: (file name, reason).
    pub invalid: Vec<(String, String)>,
}

/// Read access to `msg/`.
pub(crate) struct Store {
    pub(crate) fs: Arc<dyn SpoolFs>,
    pub(crate) msg_dir: PathBuf,
}

impl Store {
    pub(crate) fn path(&self, id: &QueueId) -> PathBuf {
        self.msg_dir.join(id.as_str())
    }

    fn open_file(&self, id: &QueueId) -> Result<(PathBuf, Box<dyn ReadFile>), SpoolError> {
        let path = self.path(id);
        match self.fs.open(&path) {
            Ok(f) => Ok((path, f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(SpoolError::NotFound(*id)),
            Err(e) => Err(SpoolError::io(SpoolOp::Open, path, e)),
        }
    }

    pub(crate) fn envelope(&self, id: &QueueId) -> Result<Envelope, SpoolError> {
        let (path, mut file) = self.open_file(id)?;
        read_meta(&path, file.as_mut(), id).map(|(_, env)| env)
    }

    pub(crate) fn open_message(&self, id: &QueueId) -> Result<MessageReader, SpoolError> {
        let (path, mut file) = self.open_file(id)?;
        let (trailer, env) = read_meta(&path, file.as_mut(), id)?;
        MessageReader::new(file, &trailer)
            .map(|r| r.with_prefix(env.added_headers.into_bytes()))
            .map_err(|e| SpoolError::io(SpoolOp::Read, path, e))
    }

    pub(crate) fn scan(&self) -> Result<Listing, SpoolError> {
        let names = self
            .fs
            .read_dir(&self.msg_dir)
            .map_err(|e| SpoolError::io(SpoolOp::ReadDir, self.msg_dir.clone(), e))?;
        let mut listing = Listing::default();
        for name in names {
            let Some(id) = parse_name(&name) else {
                listing.invalid.push((
                    name.to_string_lossy().into_owned(),
                    "file name is not a queue id".into(),
                ));
                continue;
            };
            match self.envelope(&id) {
                Ok(env) => listing.envelopes.push(env),
                // Removed (delivered) between read_dir and open.
                Err(SpoolError::NotFound(_)) => {}
                Err(SpoolError::Corrupt { reason, .. }) => {
                    listing.invalid.push((id.to_string(), reason));
                }
                Err(e) => listing.invalid.push((id.to_string(), e.to_string())),
            }
        }
        listing.envelopes.sort_by_key(|e| e.queue_id);
        listing.invalid.sort();
        Ok(listing)
    }

    pub(crate) fn list(&self) -> Result<Vec<Envelope>, SpoolError> {
        let listing = self.scan()?;
        for (name, reason) in &listing.invalid {
            tracing::warn!(file = %name, %reason, "spool: skipping unreadable message file");
        }
        Ok(listing.envelopes)
    }
}

/// A valid queue id as a file name, or `None`.
pub(crate) fn parse_name(name: &OsStr) -> Option<QueueId> {
    name.to_str().and_then(|s| QueueId::parse(s).ok())
}

/// `format::read_meta` with errors mapped to `SpoolError`.
pub(crate) fn read_meta(
    path: &Path,
    file: &mut dyn ReadFile,
    id: &QueueId,
) -> Result<(format::Trailer, Envelope), SpoolError> {
    format::read_meta(file, id).map_err(|e| map_read_error(path, e))
}

pub(crate) fn map_read_error(path: &Path, e: ReadError) -> SpoolError {
    match e {
        ReadError::Invalid(reason) => SpoolError::Corrupt {
            path: path.to_path_buf(),
            reason,
        },
        // A directory where a file should be is damage, not an I/O problem.
        ReadError::Io(e) if e.raw_os_error() == Some(libc::EISDIR) => SpoolError::Corrupt {
            path: path.to_path_buf(),
            reason: "not a regular file".into(),
        },
        ReadError::Io(e) => SpoolError::io(SpoolOp::Read, path, e),
    }
}

/// Read-only access to a spool another process may be writing: no lock, no
/// recovery, no writes. For `postern queue list/show`.
#[derive(Clone)]
pub struct SpoolReader {
    store: Arc<Store>,
    dir: PathBuf,
}

impl SpoolReader {
    /// Open the spool at `dir` for reading with the real file system.
    pub fn open(dir: &Path) -> Result<Self, SpoolError> {
        Self::open_with_fs(dir, Arc::new(StdFs))
    }

    /// Open the spool at `dir` for reading through `fs`.
    pub fn open_with_fs(dir: &Path, fs: Arc<dyn SpoolFs>) -> Result<Self, SpoolError> {
        let msg_dir = dir.join(MSG_DIR);
        // Fail early, with a clear path, if this is not a spool.
        fs.read_dir(&msg_dir)
            .map_err(|e| SpoolError::io(SpoolOp::ReadDir, msg_dir.clone(), e))?;
        Ok(Self {
            store: Arc::new(Store { fs, msg_dir }),
            dir: dir.to_path_buf(),
        })
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Envelopes of all valid messages, sorted by queue id. Unreadable files are
    /// skipped (and logged); use [`SpoolReader::scan`] to see them.
    pub fn list(&self) -> Result<Vec<Envelope>, SpoolError> {
        self.store.list()
    }

    /// Like `list`, but also reports the files it skipped and why.
    pub fn scan(&self) -> Result<Listing, SpoolError> {
        self.store.scan()
    }

    /// The envelope of one message.
    pub fn envelope(&self, id: &QueueId) -> Result<Envelope, SpoolError> {
        self.store.envelope(id)
    }

    /// The body of one message, bounded to its length and CRC-checked at the end.
    pub fn open_message(&self, id: &QueueId) -> Result<MessageReader, SpoolError> {
        self.store.open_message(id)
    }
}

impl std::fmt::Debug for SpoolReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpoolReader")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}
