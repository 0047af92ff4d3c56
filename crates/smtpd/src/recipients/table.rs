//! A recipients table file, reloaded live: its size, mtime and inode are
//! looked at no more than once a second (by the lookup that finds the last
//! look older than that), and the file is read again when they changed. A
//! reload (SIGHUP) builds a new table from the file anyway.
//!
//! # Security
//! The file is read off the async threads (`spawn_blocking`) and bounded by
//! [`MAX_TABLE_BYTES`]. A bad line is logged with file:line and skipped. A
//! file that disappears or cannot be read keeps the table last loaded (and
//! says so once); with no table at all, the domain's recipients defer
//! (`451 4.4.3`), never bounce.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use postern_policy::recipients::{RecipientTable, RecipientVerdict, replies};
use tokio::time::Instant;

use super::RecipientCheck;

/// The largest table file read (about a million addresses).
pub(crate) const MAX_TABLE_BYTES: u64 = 64 * 1024 * 1024;

/// How often the file is looked at.
pub(crate) const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What identifies a version of the file: (mtime, size, inode); `None` for
/// a file that could not be looked at.
type Stamp = Option<(Option<SystemTime>, u64, u64)>;

struct State {
    table: Option<Arc<RecipientTable>>,
    stamp: Stamp,
    checked: Instant,
    loading: bool,
}

/// A table file and what was last read from it.
pub(crate) struct LiveTable {
    path: PathBuf,
    state: Mutex<State>,
}

impl LiveTable {
    /// Reads the file now (at start or reload).
    pub(crate) fn open(path: PathBuf) -> Self {
        let (table, stamp) = match load(&path, &None) {
            Reloaded::Table(t, s) => (Some(t), s),
            Reloaded::Failed(s) => (None, s),
            Reloaded::Unchanged => (None, None),
        };
        Self {
            path,
            state: Mutex::new(State {
                table,
                stamp,
                checked: Instant::now(),
                loading: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current table, after reading the file again if it changed.
    pub(crate) async fn table(&self) -> Option<Arc<RecipientTable>> {
        let due = {
            let mut s = self.lock();
            if !s.loading && s.checked.elapsed() >= CHECK_EVERY {
                s.checked = Instant::now();
                s.loading = true;
                Some(s.stamp)
            } else {
                None
            }
        };
        if let Some(old) = due {
            // Clears `loading` however this ends (also when the session's
            // task is dropped mid-await), so the file is looked at again.
            let _loading = LoadingGuard(self);
            let path = self.path.clone();
            let loaded = tokio::task::spawn_blocking(move || load(&path, &old)).await;
            let mut s = self.lock();
            match loaded {
                // An empty table in place of a non-empty one is almost always
                // a file caught mid-rewrite (`cat > table` truncates first):
                // keep the old one and look again (remove the [[recipients]]
                // entry to stop validating a domain).
                Ok(Reloaded::Table(t, _))
                    if t.is_empty() && s.table.as_ref().is_some_and(|old| !old.is_empty()) =>
                {
                    tracing::warn!(file = %self.path.display(),
                        "recipients table is empty now; keeping the table last loaded");
                }
                Ok(Reloaded::Table(t, stamp)) => {
                    s.table = Some(t);
                    s.stamp = stamp;
                }
                Ok(Reloaded::Failed(stamp)) => s.stamp = stamp,
                Ok(Reloaded::Unchanged) | Err(_) => {}
            }
        }
        self.lock().table.clone()
    }

    /// Looks `local@domain` up.
    pub(crate) async fn check(&self, local: &str, domain: &str, addr: &str) -> RecipientCheck {
        let source = format!("table {}", self.path.display());
        match self.table().await {
            Some(t) if t.contains(local, domain) => RecipientCheck {
                verdict: RecipientVerdict::Valid,
                source,
                detail: None,
            },
            Some(_) => RecipientCheck {
                verdict: RecipientVerdict::Unknown(replies::unknown(addr)),
                source,
                detail: None,
            },
            None => RecipientCheck {
                verdict: RecipientVerdict::Unverifiable(replies::unverifiable(addr)),
                source,
                detail: Some("the table file could not be read".into()),
            },
        }
    }
}

/// Clears `State::loading` when dropped.
struct LoadingGuard<'a>(&'a LiveTable);

impl Drop for LoadingGuard<'_> {
    fn drop(&mut self) {
        self.0.lock().loading = false;
    }
}

enum Reloaded {
    /// The file changed (or was read for the first time).
    Table(Arc<RecipientTable>, Stamp),
    /// It could not be looked at or read (logged when this is news).
    Failed(Stamp),
    /// Same stamp as before.
    Unchanged,
}

fn stamp(path: &Path) -> std::io::Result<(Option<SystemTime>, u64, u64)> {
    let m = std::fs::metadata(path)?;
    Ok((m.modified().ok(), m.len(), m.ino()))
}

/// Reads the file when its stamp differs from `old`.
fn load(path: &Path, old: &Stamp) -> Reloaded {
    let now = match stamp(path) {
        Ok(s) => s,
        Err(e) => {
            if old.is_some() {
                tracing::warn!(file = %path.display(), error = %e,
                    "recipients table cannot be read; keeping the table last loaded");
            }
            return Reloaded::Failed(None);
        }
    };
    if *old == Some(now) {
        return Reloaded::Unchanged;
    }
    let text = if now.1 > MAX_TABLE_BYTES {
        Err(std::io::Error::other(format!(
            "{} octets, more than the {MAX_TABLE_BYTES} a table may have",
            now.1
        )))
    } else {
        std::fs::read_to_string(path)
    };
    let text = match text {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e,
                "recipients table cannot be read; keeping the table last loaded");
            return Reloaded::Failed(Some(now));
        }
    };
    // Changed while we read it (rewritten in place): not a table to trust;
    // the next look reads it again.
    if stamp(path).ok() != Some(now) {
        return Reloaded::Unchanged;
    }
    let (table, bad) = RecipientTable::parse(&text);
    for b in &bad {
        tracing::warn!(
            "{}:{}: recipients table line skipped: {}",
            path.display(),
            b.line,
            b.error
        );
    }
    tracing::info!(file = %path.display(), entries = table.len(), skipped = bad.len(),
        "recipients table loaded");
    Reloaded::Table(Arc::new(table), Some(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn verdict(t: &LiveTable, local: &str) -> RecipientVerdict {
        t.check(local, "example.com", &format!("{local}@example.com"))
            .await
            .verdict
    }

    #[tokio::test(start_paused = true)]
    async fn reloads_when_the_file_changes_at_most_once_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recipients.txt");
        std::fs::write(&path, "alice@example.com\n").unwrap();
        let t = LiveTable::open(path.clone());
        assert_eq!(verdict(&t, "alice").await, RecipientVerdict::Valid);
        assert!(matches!(
            verdict(&t, "bob").await,
            RecipientVerdict::Unknown(_)
        ));

        // Replaced (new inode, other size): not seen within the second...
        std::fs::write(dir.path().join("new.txt"), "alice@example.com\nbob\n").unwrap();
        std::fs::rename(dir.path().join("new.txt"), &path).unwrap();
        assert!(matches!(
            verdict(&t, "bob").await,
            RecipientVerdict::Unknown(_)
        ));
        // ... and seen after it.
        tokio::time::advance(CHECK_EVERY).await;
        assert_eq!(verdict(&t, "bob").await, RecipientVerdict::Valid);

        // Deleted: the last table stays.
        std::fs::remove_file(&path).unwrap();
        tokio::time::advance(CHECK_EVERY).await;
        assert_eq!(verdict(&t, "bob").await, RecipientVerdict::Valid);
    }

    /// `cat > table` truncates first: an empty read never replaces a loaded
    /// table (no user is refused because the file was caught mid-rewrite).
    #[tokio::test(start_paused = true)]
    async fn an_empty_rewrite_keeps_the_loaded_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recipients.txt");
        std::fs::write(&path, "alice@example.com\n").unwrap();
        let t = LiveTable::open(path.clone());
        assert_eq!(verdict(&t, "alice").await, RecipientVerdict::Valid);
        std::fs::write(&path, "").unwrap();
        tokio::time::advance(CHECK_EVERY).await;
        assert_eq!(verdict(&t, "alice").await, RecipientVerdict::Valid);
        // Once the new content is there, it is used.
        std::fs::write(&path, "bob@example.com\n").unwrap();
        tokio::time::advance(CHECK_EVERY).await;
        assert_eq!(verdict(&t, "bob").await, RecipientVerdict::Valid);
        assert!(matches!(
            verdict(&t, "alice").await,
            RecipientVerdict::Unknown(_)
        ));
    }

    #[tokio::test]
    async fn a_missing_file_defers() {
        let dir = tempfile::tempdir().unwrap();
        let t = LiveTable::open(dir.path().join("absent.txt"));
        assert!(matches!(
            verdict(&t, "alice").await,
            RecipientVerdict::Unverifiable(r) if r.code == 451
        ));
    }
}
