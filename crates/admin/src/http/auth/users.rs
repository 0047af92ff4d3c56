//! [`UserStore`]: the admin users, a JSON file of names and argon2id PHC
//! hashes (`admin-users.json`), managed by `postern admin user …` and read by
//! the running server, which re-reads it when it changes on disk.
//!
//! ```json
//! { "users": [ { "name": "alice", "hash": "$argon2id$v=19$m=19456,t=2,p=1$…", "created": "2026-12-06T23:00:00Z" } ] }
//! ```
//!
//! # Security
//! Only argon2id hashes are stored (argon2's default parameters, OWASP's
//! minimum: m=19 MiB, t=2, p=1). Verification of an unknown name hashes a
//! dummy password with the same cost, so timing does not tell which names
//! exist. The file is `0600` (see `files`). Passwords are never logged.
//!
//! # Standards
//! RFC 9106 (Argon2); the PHC string format.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use serde::{Deserialize, Serialize};

use super::AuthError;
use super::files::{self, Stamp};

/// Shortest password accepted by [`UserStore::add`].
pub const MIN_PASSWORD: usize = 10;
/// Longest password accepted (argon2 takes any length; this bounds the work
/// one request can ask for).
pub const MAX_PASSWORD: usize = 1024;

/// One stored user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredUser {
    /// The login name.
    pub name: String,
    /// argon2id PHC string.
    pub hash: String,
    /// When it was added, RFC 3339.
    pub created: String,
}

/// A user as listed (no hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The login name.
    pub name: String,
    /// When it was added, RFC 3339.
    pub created: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct UserFile {
    #[serde(default)]
    users: Vec<StoredUser>,
}

/// The admin users file, cached and re-read when its stamp changes.
#[derive(Debug)]
pub struct UserStore {
    path: PathBuf,
    cache: Mutex<(Stamp, std::sync::Arc<Vec<StoredUser>>)>,
}

impl UserStore {
    /// Opens (reads) the file; an absent file is an empty store.
    pub fn open(path: &Path) -> Result<Self, AuthError> {
        let (file, stamp): (UserFile, Stamp) = files::read(path)?;
        files::warn_if_loose(path);
        Ok(Self {
            path: path.to_path_buf(),
            cache: Mutex::new((stamp, std::sync::Arc::new(file.users))),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The users now (re-read if the file changed). A file that cannot be
    /// read or parsed lets nobody in (logged): a removal the server could
    /// not read (the file rewritten by root with mode 0600, a half-edited
    /// file) must not leave the removed user able to log in — the token
    /// store fails the same way.
    fn current(&self) -> std::sync::Arc<Vec<StoredUser>> {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match files::stamp(&self.path) {
            Ok(st) if st == cache.0 => {}
            Ok(st) => match files::read::<UserFile>(&self.path) {
                Ok((f, st)) => *cache = (st, std::sync::Arc::new(f.users)),
                Err(e) => {
                    tracing::error!(error = %e, path = %self.path.display(),
                        "admin users: cannot read the file; nobody can log in until it is fixed");
                    *cache = (st, std::sync::Arc::new(Vec::new()));
                }
            },
            Err(e) => {
                tracing::error!(error = %e, path = %self.path.display(),
                    "admin users: cannot read the file; nobody can log in until it is fixed");
                *cache = (None, std::sync::Arc::new(Vec::new()));
            }
        }
        std::sync::Arc::clone(&cache.1)
    }

    /// The users, sorted by name.
    pub fn list(&self) -> Vec<UserInfo> {
        let mut v: Vec<UserInfo> = self
            .current()
            .iter()
            .map(|u| UserInfo {
                name: u.name.clone(),
                created: u.created.clone(),
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Whether any user exists (`config check` warns when none does).
    pub fn is_empty(&self) -> bool {
        self.current().is_empty()
    }

    /// Adds a user. Blocking (argon2).
    pub fn add(&self, name: &str, password: &str) -> Result<(), AuthError> {
        check_name(name)?;
        let hash = hash_password(password)?;
        self.modify(|users| {
            if users.iter().any(|u| u.name == name) {
                return Err(AuthError::Exists(name.to_owned()));
            }
            users.push(StoredUser {
                name: name.to_owned(),
                hash,
                created: files::now_rfc3339(),
            });
            Ok(())
        })
    }

    /// Replaces a user's password. Blocking (argon2).
    pub fn set_password(&self, name: &str, password: &str) -> Result<(), AuthError> {
        let hash = hash_password(password)?;
        self.modify(|users| {
            let u = users
                .iter_mut()
                .find(|u| u.name == name)
                .ok_or_else(|| AuthError::NoSuchUser(name.to_owned()))?;
            u.hash = hash;
            Ok(())
        })
    }

    /// Removes a user.
    pub fn remove(&self, name: &str) -> Result<(), AuthError> {
        self.modify(|users| {
            let before = users.len();
            users.retain(|u| u.name != name);
            if users.len() == before {
                return Err(AuthError::NoSuchUser(name.to_owned()));
            }
            Ok(())
        })
    }

    /// Read, change and write the file under its lock.
    fn modify(
        &self,
        f: impl FnOnce(&mut Vec<StoredUser>) -> Result<(), AuthError>,
    ) -> Result<(), AuthError> {
        let lock = files::WriteLock::take(&self.path)?;
        let (mut file, _): (UserFile, Stamp) = files::read(&self.path)?;
        f(&mut file.users)?;
        files::write(&lock, &self.path, &file)?;
        drop(lock);
        // Refresh the cache now.
        let _ = self.current();
        Ok(())
    }

    /// A tag of `name`'s current credential (SHA-256 of its hash string), or
    /// `None` when the user does not exist: a session remembers the tag it was
    /// created with and ends when it changes (password changed or user
    /// removed by the CLI, seen at the next request).
    pub fn credential_tag(&self, name: &str) -> Option<String> {
        self.current()
            .iter()
            .find(|u| u.name == name)
            .map(|u| super::tokens::sha256_hex(&u.hash))
    }

    /// Checks `password` for `name`: the canonical name on success. Blocking
    /// (argon2, ~19 MiB and tens of milliseconds): run on the blocking pool.
    /// An unknown name costs the same as a wrong password.
    pub fn verify(&self, name: &str, password: &str) -> Option<String> {
        let users = self.current();
        let found = users.iter().find(|u| u.name == name);
        let hash: &str = match found {
            Some(u) => &u.hash,
            None => dummy_hash(),
        };
        let ok = password.len() <= MAX_PASSWORD
            && Argon2::default()
                .verify_password(password.as_bytes(), hash)
                .is_ok();
        found.filter(|_| ok).map(|u| u.name.clone())
    }
}

/// A user name: 1–64 of `A–Z a–z 0–9 . _ @ -`.
pub fn check_name(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(AuthError::BadName(name.to_owned()))
    }
}

/// The argon2id PHC hash of `password` (random salt). Blocking.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD || password.len() > MAX_PASSWORD {
        return Err(AuthError::BadPassword);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// A hash of a random password, computed once, for unknown names.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut pw = [0u8; 24];
        let _ = aws_lc_rs::rand::fill(&mut pw);
        let pw = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, pw);
        hash_password(&pw).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    /// A file the server cannot read or parse lets nobody in (a removal it
    /// could not read must not leave the removed user valid).
    #[test]
    fn an_unreadable_file_lets_nobody_in() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let store = UserStore::open(&path).unwrap();
        store.add("bob", "a long enough password").unwrap();
        assert!(store.verify("bob", "a long enough password").is_some());
        std::fs::write(&path, "{ not json").unwrap();
        assert!(store.verify("bob", "a long enough password").is_none());
        assert!(store.is_empty());
    }

    #[test]
    fn add_verify_change_remove() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let store = UserStore::open(&path).unwrap();
        assert!(store.is_empty());
        assert!(matches!(
            store.add("alice", "short"),
            Err(AuthError::BadPassword)
        ));
        assert!(matches!(
            store.add("a b", "long enough pw"),
            Err(AuthError::BadName(_))
        ));
        store.add("alice", "correct horse").unwrap();
        assert!(matches!(
            store.add("alice", "correct horse"),
            Err(AuthError::Exists(_))
        ));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("$argon2id$")
        );
        assert_eq!(
            store.verify("alice", "correct horse").as_deref(),
            Some("alice")
        );
        assert_eq!(store.verify("alice", "wrong horse"), None);
        assert_eq!(store.verify("mallory", "correct horse"), None);
        // Another process (the CLI) changes the file: this store sees it.
        let other = UserStore::open(&path).unwrap();
        other.set_password("alice", "battery staple").unwrap();
        assert_eq!(store.verify("alice", "correct horse"), None);
        assert!(store.verify("alice", "battery staple").is_some());
        other.remove("alice").unwrap();
        assert!(store.list().is_empty());
        assert!(matches!(
            other.remove("alice"),
            Err(AuthError::NoSuchUser(_))
        ));
    }
}
