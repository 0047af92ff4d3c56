//! The on-disk MTA-STS policy cache: one JSON file per domain in a
//! directory, holding the policy id, when it was fetched and the policy
//! (whose `max_age` says how long it may be used).
//!
//! Delivery keeps policies across restarts with it (RFC 8461 §5.1: a cached
//! policy protects against an attacker who blocks the TXT lookup or the
//! HTTPS fetch); `tls verify` bypasses it.
//!
//! # Security
//! File names come only from validated domain names (LDH labels), so no
//! path can leave the directory. Files are written to a temporary name,
//! synced and renamed, so a crash leaves the old entry or the new one. A
//! corrupt or unreadable entry is treated as absent (and logged), never as
//! a policy.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::fetch::is_domain;
use super::policy::Policy;

/// One cached policy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CachedPolicy {
    /// The policy domain (lower case, no trailing dot).
    pub domain: String,
    /// The id from the TXT record the policy was fetched under.
    pub id: String,
    /// When it was fetched, in seconds since the Unix epoch.
    pub fetched_at: u64,
    /// The policy.
    pub policy: Policy,
}

impl CachedPolicy {
    /// Seconds since the epoch at which the policy stops being usable.
    pub fn expires_at(&self) -> u64 {
        self.fetched_at.saturating_add(self.policy.max_age)
    }

    /// `max_age` has passed since the fetch.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        unix(now) >= self.expires_at()
    }
}

/// Seconds since the epoch (0 before it).
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Cache errors (I/O on the directory or a file).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The domain cannot name a file.
    #[error("{0:?} is not a valid domain name")]
    InvalidDomain(String),
    /// An I/O error on `path`.
    #[error("MTA-STS cache {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// A directory of cached policies.
#[derive(Debug, Clone)]
pub struct PolicyCache {
    dir: PathBuf,
}

impl PolicyCache {
    /// Uses `dir`, creating it if needed.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, CacheError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| CacheError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Self { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, domain: &str) -> Result<PathBuf, CacheError> {
        let d = domain.trim_end_matches('.').to_ascii_lowercase();
        if !is_domain(&d) {
            return Err(CacheError::InvalidDomain(domain.to_owned()));
        }
        Ok(self.dir.join(format!("{d}.json")))
    }

    /// The entry for `domain`, expired or not; `None` when there is none or
    /// it cannot be read as an entry for that domain.
    pub fn get(&self, domain: &str) -> Result<Option<CachedPolicy>, CacheError> {
        let path = self.path(domain)?;
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CacheError::Io { path, source }),
        };
        match serde_json::from_slice::<CachedPolicy>(&bytes) {
            Ok(entry)
                if entry
                    .domain
                    .eq_ignore_ascii_case(domain.trim_end_matches('.')) =>
            {
                Ok(Some(entry))
            }
            Ok(_) => {
                tracing::warn!(path = %path.display(), "MTA-STS cache entry is for another domain; ignoring it");
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "corrupt MTA-STS cache entry; ignoring it");
                Ok(None)
            }
        }
    }

    /// The entry for `domain` if it has not expired at `now`.
    pub fn get_fresh(
        &self,
        domain: &str,
        now: SystemTime,
    ) -> Result<Option<CachedPolicy>, CacheError> {
        Ok(self.get(domain)?.filter(|e| !e.is_expired(now)))
    }

    /// Stores `entry` (replacing any older one) durably.
    pub fn put(&self, entry: &CachedPolicy) -> Result<(), CacheError> {
        let path = self.path(&entry.domain)?;
        let tmp = path.with_extension("json.tmp");
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |source| CacheError::Io { path, source }
        };
        let json = serde_json::to_vec_pretty(entry).map_err(|e| CacheError::Io {
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        let mut f = fs::File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(&json).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        Ok(())
    }

    /// Forgets `domain`.
    pub fn remove(&self, domain: &str) -> Result<(), CacheError> {
        let path = self.path(domain)?;
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(CacheError::Io { path, source: e })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::mta_sts::policy::Mode;
    use std::time::Duration;

    fn entry(domain: &str, max_age: u64) -> CachedPolicy {
        CachedPolicy {
            domain: domain.to_owned(),
            id: "abc".to_owned(),
            fetched_at: 1_000_000,
            policy: Policy {
                version: "STSv1".into(),
                mode: Mode::Enforce,
                mx: vec!["mx.example.com".into()],
                max_age,
                warnings: Vec::new(),
            },
        }
    }

    #[test]
    fn put_get_expire_remove() {
        let dir = tempfile::tempdir().unwrap();
        let cache = PolicyCache::open(dir.path().join("sts")).unwrap();
        assert_eq!(cache.get("example.com").unwrap(), None);
        let e = entry("example.com", 100);
        cache.put(&e).unwrap();
        assert_eq!(cache.get("Example.COM.").unwrap(), Some(e.clone()));
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        assert!(
            cache
                .get_fresh("example.com", at(1_000_099))
                .unwrap()
                .is_some()
        );
        assert!(
            cache
                .get_fresh("example.com", at(1_000_100))
                .unwrap()
                .is_none()
        );
        cache.remove("example.com").unwrap();
        cache.remove("example.com").unwrap();
        assert_eq!(cache.get("example.com").unwrap(), None);
    }

    #[test]
    fn refuses_path_like_domains_and_ignores_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let cache = PolicyCache::open(dir.path()).unwrap();
        for bad in ["../etc", "a/b", "", "x..y"] {
            assert!(
                matches!(cache.get(bad), Err(CacheError::InvalidDomain(_))),
                "{bad}"
            );
        }
        fs::write(dir.path().join("example.org.json"), b"{not json").unwrap();
        assert_eq!(cache.get("example.org").unwrap(), None);
        // An entry stored under another domain's name is not used.
        let mut e = entry("example.net", 100);
        cache.put(&e).unwrap();
        fs::rename(
            dir.path().join("example.net.json"),
            dir.path().join("example.org.json"),
        )
        .unwrap();
        assert_eq!(cache.get("example.org").unwrap(), None);
        e.domain = "example.org".into();
        cache.put(&e).unwrap();
        assert_eq!(cache.get("example.org").unwrap(), Some(e));
    }
}
