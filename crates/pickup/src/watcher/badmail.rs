//! The badmail folder: a file that cannot become a message is moved there
//! under a name of its own, with `<name>.reason.txt` beside it saying why —
//! never deleted (the crate documentation has the rules).
//!
//! # Security
//! Moves only regular files the watcher opened itself; names in the badmail
//! folder are made unique, so nothing there is overwritten.

use std::ffi::OsStr;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;

use super::{HoldKind, Ident, Outcome, Pickup, create_private_dir, sync_dir};

impl Pickup {
    /// Moves a file that is not a message to the badmail folder with its
    /// reason beside it.
    pub(super) fn badmail(
        &mut self,
        name: &OsStr,
        path: &Path,
        ident: Option<Ident>,
        reason: &str,
    ) -> Outcome {
        match self.move_to_badmail(name, path, reason) {
            Ok(dest) => {
                tracing::warn!(file = %path.display(), badmail = %dest.display(), %reason,
                    "pickup: not a message; moved to the badmail folder");
                Outcome::Badmail(dest)
            }
            Err(e) => {
                let ident = ident.unwrap_or(Ident {
                    dev: 0,
                    ino: 0,
                    len: 0,
                    mtime: (0, 0),
                });
                self.hold(
                    name,
                    ident,
                    HoldKind::BadmailFailed,
                    &format!(
                        "not a message ({reason}), and it cannot be moved to the badmail folder \
                         {} ({e}); left in place",
                        self.settings.badmail_dir.display()
                    ),
                );
                Outcome::Left
            }
        }
    }

    fn move_to_badmail(&self, name: &OsStr, path: &Path, reason: &str) -> io::Result<PathBuf> {
        let dir = &self.settings.badmail_dir;
        create_private_dir(dir)?;
        // Reserve a name: `<name>`, `<name>.1`, … whose reason file is new.
        let mut reserved = None;
        for n in 0..1000 {
            let mut candidate = name.to_owned();
            if n > 0 {
                candidate.push(format!(".{n}"));
            }
            let dest = dir.join(&candidate);
            if std::fs::symlink_metadata(&dest).is_ok() {
                continue;
            }
            let mut reason_name = candidate;
            reason_name.push(".reason.txt");
            let reason_path = dir.join(reason_name);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&reason_path)
            {
                Ok(f) => {
                    reserved = Some((dest, reason_path, f));
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        let Some((dest, reason_path, mut f)) = reserved else {
            return Err(io::Error::other("no free name in the badmail folder"));
        };
        let text = format!(
            "Postern did not queue this pickup file.\n\
             file: {}\n\
             moved: {}\n\
             reason: {reason}\n\
             \n\
             Fix the file and move it back into {} (write it elsewhere, then rename it in).\n",
            path.display(),
            postern_spool::rfc3339_now(),
            self.settings.dir.display(),
        );
        let written = f
            .write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .and_then(|()| move_file(path, &dest));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&reason_path);
            return Err(e);
        }
        sync_dir(dir)?;
        if let Err(e) = sync_dir(&self.settings.dir) {
            tracing::warn!(dir = %self.settings.dir.display(), error = %e,
                "pickup: fsync of the pickup folder failed");
        }
        Ok(dest)
    }
}

/// `rename`, or copy and unlink across file systems (regular files only).
fn move_file(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            let mut src = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(from)?;
            if !src.metadata()?.file_type().is_file() {
                return Err(e);
            }
            let mut dst = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(to)?;
            io::copy(&mut src, &mut dst)?;
            dst.sync_all()?;
            std::fs::remove_file(from)
        }
        other => other,
    }
}
