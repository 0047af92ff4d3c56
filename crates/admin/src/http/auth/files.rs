//! The small JSON files behind [`super::UserStore`] and [`super::TokenStore`]:
//! read with a change stamp (so the running server re-reads them when the CLI
//! changes them), written whole under an exclusive lock, to a temporary file
//! created `0600`, fsynced, then renamed into place.
//!
//! # Security
//! The files hold password hashes and token digests: they are created `0600`
//! (never looser, not even for a moment: the temporary file is opened with
//! that mode) and replaced atomically, so a reader never sees half a file.
//! Writers serialise on `<file>.lock` (`flock(2)` through `File::lock`), so two
//! CLI commands cannot lose each other's change.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::AuthError;

/// What identifies one version of a file: device, inode, size, mtime (ns).
/// Writes replace the file by rename, so each write gives a new inode.
pub(crate) type Stamp = Option<(u64, u64, u64, i64, i64)>;

/// The stamp of `path` now (`None`: absent).
pub(crate) fn stamp(path: &Path) -> Result<Stamp, AuthError> {
    match std::fs::metadata(path) {
        Ok(md) => Ok(Some((
            md.dev(),
            md.ino(),
            md.size(),
            md.mtime(),
            md.mtime_nsec(),
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AuthError::Io(path.to_path_buf(), e)),
    }
}

/// Warns when `path` is readable or writable by group or others (the files
/// are written `0600`; someone loosened them).
pub(crate) fn warn_if_loose(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(md) = std::fs::metadata(path)
        && md.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", md.permissions().mode() & 0o777),
            "admin credentials file is accessible to other users; chmod 600 it"
        );
    }
}

/// Reads `path` as JSON; an absent file is `T::default()`.
pub(crate) fn read<T: DeserializeOwned + Default>(path: &Path) -> Result<(T, Stamp), AuthError> {
    // Stamp first: a change between the two reads is seen at the next check.
    let st = stamp(path)?;
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(|v| (v, st))
            .map_err(|e| AuthError::Parse(path.to_path_buf(), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((T::default(), None)),
        Err(e) => Err(AuthError::Io(path.to_path_buf(), e)),
    }
}

/// Holds `<path>.lock` exclusively while alive.
pub(crate) struct WriteLock(File);

impl WriteLock {
    /// Waits for the lock on `path`'s lock file.
    pub(crate) fn take(path: &Path) -> Result<Self, AuthError> {
        let lock = sibling(path, ".lock");
        let io = |e| AuthError::Io(lock.clone(), e);
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock)
            .map_err(io)?;
        f.lock().map_err(io)?;
        Ok(Self(f))
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Writes `value` as `path` (pretty JSON): a `0600` temporary file, fsync,
/// rename, directory fsync. Call with the [`WriteLock`] held.
pub(crate) fn write<T: Serialize>(
    _lock: &WriteLock,
    path: &Path,
    value: &T,
) -> Result<(), AuthError> {
    let tmp = sibling(path, &format!(".{}.tmp", std::process::id()));
    let io = |e| AuthError::Io(path.to_path_buf(), e);
    let mut bytes =
        serde_json::to_vec_pretty(value).map_err(|e| AuthError::Parse(path.to_path_buf(), e))?;
    bytes.push(b'\n');
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut f = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// `path` with `suffix` appended to its file name.
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Now, RFC 3339 UTC (seconds).
pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
