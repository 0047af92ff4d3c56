//! The spool's one error type, and the mapping from `std::io::Error` to it.
//!
//! The variants are chosen for the smtpd's reply table: `NoSpace` and `LowSpace`
//! → `452 4.3.1`,
//! everything else on the write path → `451 4.3.0`. Nothing here is shown to a peer
//! verbatim; `Display` is for the operator's log.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::id::QueueId;

/// The file-system operation that failed, for logs and for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpoolOp {
    /// Creating a spool directory.
    CreateDir,
    /// Creating a file (`O_CREAT|O_EXCL`).
    Create,
    /// Writing or flushing a file.
    Write,
    /// `fsync` of a file.
    SyncFile,
    /// `rename(2)`.
    Rename,
    /// `fsync` of a directory.
    SyncDir,
    /// Unlinking a file.
    Remove,
    /// Listing a directory.
    ReadDir,
    /// Opening a file for reading.
    Open,
    /// Reading or seeking a file.
    Read,
    /// Taking the spool lock.
    Lock,
    /// Starting the committer thread.
    StartThread,
}

impl fmt::Display for SpoolOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpoolOp::CreateDir => "create directory",
            SpoolOp::Create => "create",
            SpoolOp::Write => "write",
            SpoolOp::SyncFile => "fsync file",
            SpoolOp::Rename => "rename",
            SpoolOp::SyncDir => "fsync directory",
            SpoolOp::Remove => "remove",
            SpoolOp::ReadDir => "read directory",
            SpoolOp::Open => "open",
            SpoolOp::Read => "read",
            SpoolOp::Lock => "lock",
            SpoolOp::StartThread => "start thread",
        })
    }
}

/// Everything that can go wrong in the spool.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The file system is full or the quota is exhausted (`ENOSPC`, `EDQUOT`).
    /// Transient: the smtpd answers `452 4.3.1`.
    #[error("no space left on the spool file system: {op} {}: {source}", path.display())]
    NoSpace {
        /// What we were doing.
        op: SpoolOp,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Any other I/O error. The smtpd answers `451 4.3.0`.
    #[error("spool I/O error: {op} {}: {source}", path.display())]
    Io {
        /// What we were doing.
        op: SpoolOp,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An earlier fsync failed; the spool accepts nothing until an operator
    /// clears it (`postern spool recheck`) or the process restarts (see
    /// `docs/spool-format.md` §4). The smtpd answers `451 4.3.0`.
    #[error(
        "spool is poisoned by an earlier fsync failure; check the disk, then run \
         `postern spool recheck` or restart"
    )]
    Poisoned,
    /// The spool's file system has less free space than the configured floor
    /// (`[spool] min_free`), or less than a declared message size above it.
    /// Transient: the smtpd answers `452 4.3.1` (RFC 3463; RFC 1870 §6.1 for
    /// `SIZE=`).
    #[error(
        "spool file system low on space: {free} bytes free, floor {floor} bytes{}",
        declared.map(|d| format!(", message declares {d} bytes")).unwrap_or_default()
    )]
    LowSpace {
        /// Bytes available to the server on the spool's file system.
        free: u64,
        /// The configured floor (`[spool] min_free`).
        floor: u64,
        /// The `SIZE=` the client declared, when that is what did not fit.
        declared: Option<u64>,
    },
    /// A message file fails validation (trailer, lengths, checksums, envelope).
    #[error("corrupt spool file {}: {reason}", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Which check failed.
        reason: String,
    },
    /// No committed message has this queue id.
    #[error("no message with queue id {0}")]
    NotFound(QueueId),
    /// The string is not a queue id (wrong length or characters).
    #[error("invalid queue id {0:?}")]
    InvalidId(String),
}

impl SpoolError {
    /// True for `NoSpace` and `LowSpace`: the condition is the disk's, and an SMTP
    /// client should be told `452 4.3.1` (insufficient system storage).
    pub fn is_no_space(&self) -> bool {
        matches!(
            self,
            SpoolError::NoSpace { .. } | SpoolError::LowSpace { .. }
        )
    }

    /// True for `Poisoned`: nothing will be accepted until a restart.
    pub fn is_poisoned(&self) -> bool {
        matches!(self, SpoolError::Poisoned)
    }

    /// Classify an I/O error: out-of-space conditions become `NoSpace`, the rest `Io`.
    pub(crate) fn io(op: SpoolOp, path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        if is_no_space_io(&source) {
            SpoolError::NoSpace { op, path, source }
        } else {
            SpoolError::Io { op, path, source }
        }
    }
}

/// `ENOSPC` or `EDQUOT`, however the error reached us.
pub(crate) fn is_no_space_io(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || matches!(err.raw_os_error(), Some(code) if code == libc::ENOSPC || code == libc::EDQUOT)
}

/// A copy of an `io::Error` that several waiters can each turn back into one
/// (`io::Error` is not `Clone`).
#[derive(Debug, Clone)]
pub(crate) struct StoredIoError {
    raw: Option<i32>,
    kind: io::ErrorKind,
    message: String,
}

impl StoredIoError {
    pub(crate) fn new(err: &io::Error) -> Self {
        Self {
            raw: err.raw_os_error(),
            kind: err.kind(),
            message: err.to_string(),
        }
    }

    pub(crate) fn to_io_error(&self) -> io::Error {
        match self.raw {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(self.kind, self.message.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_and_edquot_are_no_space() {
        for code in [libc::ENOSPC, libc::EDQUOT] {
            let err = SpoolError::io(SpoolOp::Write, "x", io::Error::from_raw_os_error(code));
            assert!(err.is_no_space(), "{err}");
        }
        let err = SpoolError::io(SpoolOp::Write, "x", io::Error::from_raw_os_error(libc::EIO));
        assert!(!err.is_no_space());
        assert!(matches!(
            err,
            SpoolError::Io {
                op: SpoolOp::Write,
                ..
            }
        ));
    }

    #[test]
    fn stored_error_round_trips() {
        let e = io::Error::from_raw_os_error(libc::EIO);
        let back = StoredIoError::new(&e).to_io_error();
        assert_eq!(back.raw_os_error(), Some(libc::EIO));
        let e = io::Error::other("boom");
        let back = StoredIoError::new(&e).to_io_error();
        assert_eq!(back.kind(), io::ErrorKind::Other);
        assert!(back.to_string().contains("boom"));
    }
}
