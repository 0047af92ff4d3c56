//! A set of named dictionaries loaded from files, with live reload: a file
//! whose modification time, size or inode changed is read again; a bad new
//! file leaves the previous contents in use and is reported once.
//!
//! # Security
//! Readers never see a half-loaded dictionary: each is replaced whole behind
//! an `Arc` (a rule evaluation that already holds the old one finishes with it).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use super::{DictError, Dictionary};

/// What a refresh did to one dictionary whose file changed.
#[derive(Debug)]
pub enum RefreshOutcome {
    /// The new file was loaded; it has this many entries.
    Reloaded { entries: usize },
    /// The new file is bad (or gone); the previous contents stay in use.
    Failed(DictError),
}

/// One dictionary's refresh result.
#[derive(Debug)]
pub struct RefreshReport {
    /// The dictionary's name.
    pub name: String,
    /// Its file.
    pub path: PathBuf,
    /// What happened.
    pub outcome: RefreshOutcome,
}

impl std::fmt::Display for RefreshReport {
    /// One log line: `dictionary NAME (PATH): reloaded, N entries` or
    /// `…: kept the previous version: ERROR`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.outcome {
            RefreshOutcome::Reloaded { entries } => write!(
                f,
                "dictionary {} ({}): reloaded, {entries} entries",
                self.name,
                self.path.display()
            ),
            RefreshOutcome::Failed(e) => write!(
                f,
                "dictionary {} ({}): kept the previous version: {e}",
                self.name,
                self.path.display()
            ),
        }
    }
}

/// What identifies one version of a file: modification time, size, inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    ino: u64,
}

fn stamp(path: &std::path::Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let ino = 0;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        ino,
    })
}

#[derive(Debug)]
struct Slot {
    dict: Arc<Dictionary>,
    path: PathBuf,
    /// The file version last tried (loaded or rejected); `None` when the
    /// file was missing at the last look.
    seen: Option<Stamp>,
}

/// A set of named dictionaries loaded from files, reloadable live.
#[derive(Debug, Default)]
pub struct Dictionaries {
    slots: RwLock<BTreeMap<String, Slot>>,
}

impl Dictionaries {
    /// Loads every `(name, path)`; a name given twice or the first bad file
    /// stops the load.
    pub fn load(specs: &[(String, PathBuf)]) -> Result<Dictionaries, DictError> {
        let mut names = std::collections::BTreeSet::new();
        if let Some((name, _)) = specs.iter().find(|(name, _)| !names.insert(name)) {
            return Err(DictError::DuplicateName { name: name.clone() });
        }
        let mut slots = BTreeMap::new();
        for (name, path) in specs {
            let seen = stamp(path);
            let dict = Dictionary::load(name, path)?;
            slots.insert(
                name.clone(),
                Slot {
                    dict: Arc::new(dict),
                    path: path.clone(),
                    seen,
                },
            );
        }
        Ok(Dictionaries {
            slots: RwLock::new(slots),
        })
    }

    /// The dictionary named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Dictionary>> {
        self.read().get(name).map(|s| Arc::clone(&s.dict))
    }

    /// The names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// Re-reads the files whose modification time, size or inode changed
    /// since the last look; reports only those. A bad new file (or a missing
    /// one) keeps the old contents and is reported once, until it changes
    /// again.
    pub fn refresh(&self) -> Vec<RefreshReport> {
        // Work out what changed under the read lock, load without any lock,
        // then swap under the write lock.
        let changed: Vec<(String, PathBuf, Option<Stamp>)> = self
            .read()
            .iter()
            .filter_map(|(name, slot)| {
                let now = stamp(&slot.path);
                (now != slot.seen).then(|| (name.clone(), slot.path.clone(), now))
            })
            .collect();
        let mut reports = Vec::with_capacity(changed.len());
        for (name, path, now) in changed {
            let loaded = Dictionary::load(&name, &path);
            let mut slots = self
                .slots
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(slot) = slots.get_mut(&name) else {
                continue;
            };
            slot.seen = now;
            let outcome = match loaded {
                Ok(dict) => {
                    let entries = dict.len();
                    slot.dict = Arc::new(dict);
                    RefreshOutcome::Reloaded { entries }
                }
                Err(e) => RefreshOutcome::Failed(e),
            };
            reports.push(RefreshReport {
                name,
                path,
                outcome,
            });
        }
        reports
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Slot>> {
        // A panic while holding the lock cannot leave a slot half-written
        // (each field is assigned whole), so a poisoned lock is still usable.
        self.slots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
