//! Server-side sessions of logged-in admins: a bounded map from the SHA-256
//! of a random 256-bit session id to the user, the session's CSRF token, and
//! its times; and the [`Clock`] sessions and the login limiter read (a
//! manual one in tests).
//!
//! # Security
//! Ids and CSRF tokens are 32 bytes from the system CSPRNG (aws-lc), base64url.
//! The map is keyed by the id's SHA-256, so lookups do not compare secrets
//! byte by byte. A session ends after `session_idle` unused or `session_max`
//! after login (OWASP Session Management: idle and absolute timeouts); a
//! user has at most [`PER_USER`] sessions and the server [`MAX_SESSIONS`], the
//! least recently used going first. Logout deletes the session; so does a
//! password change or removal of the user (`end_user`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::AuthError;
use super::tokens::sha256_hex;

/// Sessions at most, all users together.
pub const MAX_SESSIONS: usize = 10_000;
/// Sessions at most per user.
pub const PER_USER: usize = 16;

/// The time sessions and limits read: the system's, or a manual one that
/// tests move forward.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Option<Arc<AtomicU64>>,
}

impl Clock {
    /// The system's monotonic clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// The system's clock plus an offset that [`Clock::advance`] grows.
    pub fn manual() -> Self {
        Self {
            offset_ms: Some(Arc::new(AtomicU64::new(0))),
        }
    }

    /// Moves a manual clock forward (no effect on the system clock).
    pub fn advance(&self, by: Duration) {
        if let Some(o) = &self.offset_ms {
            o.fetch_add(
                u64::try_from(by.as_millis()).unwrap_or(u64::MAX),
                Ordering::SeqCst,
            );
        }
    }

    /// Now.
    pub fn now(&self) -> Instant {
        let now = Instant::now();
        match &self.offset_ms {
            Some(o) => now + Duration::from_millis(o.load(Ordering::SeqCst)),
            None => now,
        }
    }
}

/// 32 random bytes, base64url (43 characters).
pub(crate) fn random_token() -> Result<String, AuthError> {
    let mut raw = [0u8; 32];
    aws_lc_rs::rand::fill(&mut raw).map_err(|_| AuthError::Random)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

#[derive(Debug, Clone)]
struct Entry {
    user: String,
    tag: String,
    csrf: String,
    created: Instant,
    last_seen: Instant,
}

/// A live session as handlers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The user.
    pub user: String,
    /// The user's credential tag when the session began
    /// (`UserStore::credential_tag`).
    pub tag: String,
    /// Its CSRF token.
    pub csrf: String,
}

/// The session map.
#[derive(Debug)]
pub struct Sessions {
    map: Mutex<HashMap<String, Entry>>,
    idle: Duration,
    max: Duration,
    clock: Clock,
}

impl Sessions {
    /// An empty map with these timeouts.
    pub fn new(idle: Duration, max: Duration, clock: Clock) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            idle,
            max,
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a session for `user`: returns its id (for the cookie) and CSRF
    /// token. Evicts the least recently used session of the user past
    /// [`PER_USER`], and of everyone past [`MAX_SESSIONS`].
    pub fn create(&self, user: &str, tag: &str) -> Result<(String, SessionInfo), AuthError> {
        let id = random_token()?;
        let csrf = random_token()?;
        let now = self.clock.now();
        let mut map = self.lock();
        self.expire(&mut map, now);
        let mine = map.values().filter(|e| e.user == user).count();
        if mine >= PER_USER {
            evict_lru(&mut map, |e| e.user == user);
        }
        if map.len() >= MAX_SESSIONS {
            evict_lru(&mut map, |_| true);
        }
        map.insert(
            sha256_hex(&id),
            Entry {
                user: user.to_owned(),
                tag: tag.to_owned(),
                csrf: csrf.clone(),
                created: now,
                last_seen: now,
            },
        );
        Ok((
            id,
            SessionInfo {
                user: user.to_owned(),
                tag: tag.to_owned(),
                csrf,
            },
        ))
    }

    /// The live session with this id (its last use becomes now).
    pub fn get(&self, id: &str) -> Option<SessionInfo> {
        if id.len() > 64 {
            return None;
        }
        let key = sha256_hex(id);
        let now = self.clock.now();
        let mut map = self.lock();
        let e = map.get_mut(&key)?;
        if now.duration_since(e.last_seen) > self.idle || now.duration_since(e.created) > self.max {
            map.remove(&key);
            return None;
        }
        e.last_seen = now;
        Some(SessionInfo {
            user: e.user.clone(),
            tag: e.tag.clone(),
            csrf: e.csrf.clone(),
        })
    }

    /// Ends a session (logout).
    pub fn remove(&self, id: &str) {
        self.lock().remove(&sha256_hex(id));
    }

    /// Ends every session of `user` (password changed, user removed).
    pub fn end_user(&self, user: &str) {
        self.lock().retain(|_, e| e.user != user);
    }

    /// Live sessions.
    pub fn len(&self) -> usize {
        let now = self.clock.now();
        let mut map = self.lock();
        self.expire(&mut map, now);
        map.len()
    }

    /// No live session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn expire(&self, map: &mut HashMap<String, Entry>, now: Instant) {
        map.retain(|_, e| {
            now.duration_since(e.last_seen) <= self.idle
                && now.duration_since(e.created) <= self.max
        });
    }
}

fn evict_lru(map: &mut HashMap<String, Entry>, pick: impl Fn(&Entry) -> bool) {
    let oldest = map
        .iter()
        .filter(|(_, e)| pick(e))
        .min_by_key(|(_, e)| e.last_seen)
        .map(|(k, _)| k.clone());
    if let Some(k) = oldest {
        map.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn idle_and_absolute_expiry() {
        let clock = Clock::manual();
        let s = Sessions::new(
            Duration::from_mins(1),
            Duration::from_mins(5),
            clock.clone(),
        );
        let (id, info) = s.create("alice", "t").unwrap();
        assert_eq!(id.len(), 43);
        assert_ne!(id, info.csrf);
        clock.advance(Duration::from_secs(50));
        assert_eq!(s.get(&id).unwrap().user, "alice");
        clock.advance(Duration::from_secs(50));
        assert!(s.get(&id).is_some(), "used 50 s ago: still alive");
        clock.advance(Duration::from_secs(61));
        assert!(s.get(&id).is_none(), "idle too long");
        let (id, _) = s.create("alice", "t").unwrap();
        for _ in 0..6 {
            clock.advance(Duration::from_secs(55));
            let _ = s.get(&id);
        }
        assert!(s.get(&id).is_none(), "past the absolute limit");
    }

    #[test]
    fn bounded_per_user() {
        let clock = Clock::manual();
        let s = Sessions::new(
            Duration::from_mins(1),
            Duration::from_mins(5),
            clock.clone(),
        );
        let first = s.create("bob", "t").unwrap().0;
        for _ in 0..PER_USER {
            clock.advance(Duration::from_millis(1));
            s.create("bob", "t").unwrap();
        }
        assert_eq!(s.len(), PER_USER);
        assert!(s.get(&first).is_none(), "the oldest went");
        let other = s.create("carol", "t").unwrap().0;
        s.end_user("bob");
        assert_eq!(s.len(), 1);
        s.remove(&other);
        assert!(s.is_empty());
    }
}
