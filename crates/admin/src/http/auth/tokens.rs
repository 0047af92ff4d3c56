//! [`TokenStore`]: API tokens for scripts (`Authorization: Bearer pst_…`), a
//! JSON file of names and SHA-256 digests (`admin-tokens.json`), managed by
//! `postern admin token …` and re-read by the running server when it changes,
//! so a revoked token stops working with the next request.
//!
//! Last use is kept in a separate file (`admin-tokens.json.last-used`,
//! written by the server at most once a minute per token), so the server never
//! rewrites the token file itself and cannot undo a revocation the CLI wrote.
//!
//! # Security
//! A secret is `pst_` + 32 random bytes (base64url), shown once at creation;
//! only its SHA-256 is stored (a 256-bit random secret needs no slow hash).
//! Digests are compared in constant time (`subtle`), against every active
//! token. Revoked tokens stay listed (with the time) and never match.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use super::AuthError;
use super::files::{self, Stamp};

/// Every secret starts with this (so secret scanners can find leaked ones).
pub const TOKEN_PREFIX: &str = "pst_";
/// How often the last use of one token is written down, at most.
const LAST_USED_EVERY: std::time::Duration = std::time::Duration::from_mins(1);

/// What a token may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    /// Everything an admin can do (the default).
    #[default]
    All,
    /// Reading only: every state change is refused (403). For Prometheus,
    /// dashboards and monitoring scripts.
    Read,
}

/// One token as stored and listed (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Its name (`ci`, `prometheus`).
    pub name: String,
    /// SHA-256 of the secret, lowercase hex.
    pub sha256: String,
    /// When it was created, RFC 3339.
    pub created: String,
    /// What it may do.
    #[serde(default)]
    pub scope: TokenScope,
    /// When it was last used, RFC 3339 (to the minute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<String>,
    /// When it was revoked, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    #[serde(default)]
    tokens: Vec<TokenInfo>,
}

/// The API tokens file, cached and re-read when its stamp changes.
#[derive(Debug)]
pub struct TokenStore {
    path: PathBuf,
    cache: Mutex<(Stamp, Arc<Vec<TokenInfo>>)>,
    /// name → (last written, instant).
    used: Mutex<HashMap<String, std::time::Instant>>,
}

impl TokenStore {
    /// Opens (reads) the file; an absent file is an empty store.
    pub fn open(path: &Path) -> Result<Self, AuthError> {
        let (file, stamp): (TokenFile, Stamp) = files::read(path)?;
        files::warn_if_loose(path);
        Ok(Self {
            path: path.to_path_buf(),
            cache: Mutex::new((stamp, Arc::new(file.tokens))),
            used: Mutex::new(HashMap::new()),
        })
    }

    fn current(&self) -> Arc<Vec<TokenInfo>> {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match files::stamp(&self.path) {
            Ok(st) if st == cache.0 => {}
            Ok(_) => match files::read::<TokenFile>(&self.path) {
                Ok((f, st)) => *cache = (st, Arc::new(f.tokens)),
                // Fail closed: an unreadable file matches no token.
                Err(e) => {
                    tracing::error!(error = %e, "admin tokens: file unreadable; no token is accepted until it is fixed");
                    *cache = (None, Arc::new(Vec::new()));
                }
            },
            Err(e) => {
                tracing::error!(error = %e, "admin tokens: file unreadable; no token is accepted until it is fixed");
                *cache = (None, Arc::new(Vec::new()));
            }
        }
        Arc::clone(&cache.1)
    }

    /// Creates a token that may do everything; returns its secret (shown
    /// once, never stored).
    pub fn create(&self, name: &str) -> Result<String, AuthError> {
        self.create_scoped(name, TokenScope::All)
    }

    /// Creates a token with `scope`; returns its secret.
    pub fn create_scoped(&self, name: &str, scope: TokenScope) -> Result<String, AuthError> {
        super::users::check_name(name)?;
        let mut raw = [0u8; 32];
        aws_lc_rs::rand::fill(&mut raw).map_err(|_| AuthError::Random)?;
        let secret = format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        let digest = sha256_hex(&secret);
        self.modify(|tokens| {
            if tokens.iter().any(|t| t.name == name && t.revoked.is_none()) {
                return Err(AuthError::Exists(name.to_owned()));
            }
            // A revoked token of that name is replaced by the new one.
            tokens.retain(|t| t.name != name);
            tokens.push(TokenInfo {
                name: name.to_owned(),
                sha256: digest,
                created: files::now_rfc3339(),
                scope,
                last_used: None,
                revoked: None,
            });
            Ok(())
        })?;
        Ok(secret)
    }

    /// Revokes a token (it stays listed as revoked).
    pub fn revoke(&self, name: &str) -> Result<(), AuthError> {
        self.modify(|tokens| {
            let t = tokens
                .iter_mut()
                .find(|t| t.name == name && t.revoked.is_none())
                .ok_or_else(|| AuthError::NoSuchToken(name.to_owned()))?;
            t.revoked = Some(files::now_rfc3339());
            Ok(())
        })
    }

    /// The tokens with their last use, sorted by name.
    pub fn list(&self) -> Vec<TokenInfo> {
        let used: HashMap<String, String> =
            files::read::<HashMap<String, String>>(&self.used_path())
                .map(|(m, _)| m)
                .unwrap_or_default();
        let mut v: Vec<TokenInfo> = self
            .current()
            .iter()
            .map(|t| TokenInfo {
                last_used: used.get(&t.name).cloned().or_else(|| t.last_used.clone()),
                ..t.clone()
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The name of the active token whose secret is `secret`.
    pub fn verify(&self, secret: &str) -> Option<String> {
        self.verify_scoped(secret).map(|(name, _)| name)
    }

    /// The name and scope of the active token whose secret is `secret`.
    pub fn verify_scoped(&self, secret: &str) -> Option<(String, TokenScope)> {
        if !secret.starts_with(TOKEN_PREFIX) || secret.len() > 128 {
            return None;
        }
        let digest = sha256_hex(secret);
        let tokens = self.current();
        // Compare against every token, constant time each, no early exit.
        let mut found = None;
        for t in tokens.iter() {
            let eq: bool = t.sha256.as_bytes().ct_eq(digest.as_bytes()).into();
            if eq && t.revoked.is_none() {
                found = Some((t.name.clone(), t.scope));
            }
        }
        if let Some((name, _)) = &found {
            self.note_use(name);
        }
        found
    }

    fn used_path(&self) -> PathBuf {
        files::sibling(&self.path, ".last-used")
    }

    /// Writes the last use down, at most once a minute per token.
    fn note_use(&self, name: &str) {
        {
            let mut used = self
                .used
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = std::time::Instant::now();
            if used
                .get(name)
                .is_some_and(|t| now.duration_since(*t) < LAST_USED_EVERY)
            {
                return;
            }
            used.insert(name.to_owned(), now);
        }
        let path = self.used_path();
        let name = name.to_owned();
        let write = move || -> Result<(), AuthError> {
            let lock = files::WriteLock::take(&path)?;
            let (mut map, _): (HashMap<String, String>, Stamp) = files::read(&path)?;
            map.insert(name, files::now_rfc3339());
            files::write(&lock, &path, &map)
        };
        let write = move || {
            if let Err(e) = write() {
                tracing::warn!(error = %e, "admin tokens: could not record the last use");
            }
        };
        // In the server, off the async threads; in the CLI, inline.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(write)),
            Err(_) => write(),
        }
    }

    fn modify(
        &self,
        f: impl FnOnce(&mut Vec<TokenInfo>) -> Result<(), AuthError>,
    ) -> Result<(), AuthError> {
        let lock = files::WriteLock::take(&self.path)?;
        let (mut file, _): (TokenFile, Stamp) = files::read(&self.path)?;
        f(&mut file.tokens)?;
        files::write(&lock, &self.path, &file)?;
        drop(lock);
        let _ = self.current();
        Ok(())
    }
}

/// SHA-256 of `s`, lowercase hex.
pub(crate) fn sha256_hex(s: &str) -> String {
    use std::fmt::Write as _;
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes());
    d.as_ref()
        .iter()
        .fold(String::with_capacity(64), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn create_verify_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let server = TokenStore::open(&path).unwrap();
        let cli = TokenStore::open(&path).unwrap();
        let secret = cli.create("ci").unwrap();
        assert!(
            secret.starts_with("pst_") && secret.len() == 4 + 43,
            "{secret}"
        );
        assert!(
            !std::fs::read_to_string(&path)
                .unwrap()
                .contains(&secret[4..])
        );
        assert!(matches!(cli.create("ci"), Err(AuthError::Exists(_))));
        assert_eq!(server.verify(&secret).as_deref(), Some("ci"));
        assert_eq!(server.verify("pst_nope"), None);
        assert_eq!(server.verify(&secret.replace("pst_", "xyz_")), None);
        assert!(
            server.list()[0].last_used.is_some(),
            "recorded inline outside a runtime"
        );
        cli.revoke("ci").unwrap();
        assert_eq!(server.verify(&secret), None, "revocation seen at once");
        assert!(server.list()[0].revoked.is_some());
        assert!(matches!(cli.revoke("ci"), Err(AuthError::NoSuchToken(_))));
        let ro = cli.create_scoped("grafana", TokenScope::Read).unwrap();
        assert_eq!(
            server.verify_scoped(&ro),
            Some(("grafana".into(), TokenScope::Read))
        );
        // The name can be reused; the old secret stays dead.
        let again = cli.create("ci").unwrap();
        assert_eq!(server.verify(&secret), None);
        assert_eq!(server.verify(&again).as_deref(), Some("ci"));
    }
}
