//! SMTP AUTH credential checks against the configured users (argon2 PHC hashes).
//!
//! # Security
//! Passwords arrive from the network; they are compared only through argon2's
//! verifier, never logged, and dropped after the check. An unknown user costs the
//! same argon2 work as a known one, so response time does not reveal which
//! names exist. Verification runs on the blocking pool (argon2 is deliberately
//! slow and must not stall other sessions).
//!
//! Each argon2 verification takes ~19 MiB and a core for tens of
//! milliseconds: unbounded, parallel failing AUTHs were a memory and CPU bomb
//! (8 clients × 12 rounds reached 1.3 GB RSS). At most one verification per
//! core runs at once (a process-wide semaphore); a session waits its turn for
//! at most [`QUEUE_WAIT`] and then gets `454 4.7.0`. A failed attempt costs
//! the client [`FAILURE_DELAY`], and the session machine closes the session
//! after `max_auth_failures`.
//!
//! # Standards
//! RFC 4954 (SMTP AUTH), RFC 4616 (PLAIN), draft-murchison-sasl-login (LOGIN).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use postern_proto::session::{AuthOutcome, Credentials};
use tokio::sync::Semaphore;

use crate::settings::User;

/// The users that may authenticate.
#[derive(Default)]
pub(crate) struct UserDb {
    users: HashMap<String, String>,
}

impl UserDb {
    pub(crate) fn new(users: &[User]) -> Self {
        Self {
            users: users
                .iter()
                .map(|u| (u.name.clone(), u.password_hash.clone()))
                .collect(),
        }
    }

    /// Checks `password` for `user`. Blocking (argon2): call from `spawn_blocking`.
    pub(crate) fn verify(&self, user: &str, password: &str) -> bool {
        if let Some(hash) = self.users.get(user) {
            Argon2::default()
                .verify_password(password.as_bytes(), hash.as_str())
                .is_ok()
        } else {
            // Same cost as a real check so timing does not reveal valid names.
            let _ = Argon2::default().verify_password(password.as_bytes(), dummy_hash());
            false
        }
    }
}

/// A hash of a random password, computed once, for the unknown-user path.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let pw: [u8; 16] = rand::random();
        Argon2::default()
            .hash_password(&pw)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// How long a session waits for a free verifier before `454 4.7.0`.
pub(crate) const QUEUE_WAIT: Duration = Duration::from_secs(30);
/// What a failed attempt costs the client (other sessions are unaffected).
pub(crate) const FAILURE_DELAY: Duration = Duration::from_secs(1);

/// One permit per core, for the whole process (reloads build a new `UserDb`,
/// the bound stays).
fn permits() -> &'static Arc<Semaphore> {
    static PERMITS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Arc::new(Semaphore::new(cores))
    })
}

/// Verifies on the blocking pool, at most one check per core at a time,
/// waiting at most `wait` for a turn.
pub(crate) async fn verify(db: Arc<UserDb>, creds: Credentials, wait: Duration) -> AuthOutcome {
    let Ok(Ok(permit)) = tokio::time::timeout(wait, Arc::clone(permits()).acquire_owned()).await
    else {
        return AuthOutcome::Unavailable;
    };
    let ok = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        db.verify(&creds.user, &creds.password)
    })
    .await
    .unwrap_or(false);
    if ok {
        AuthOutcome::Success
    } else {
        tokio::time::sleep(FAILURE_DELAY).await;
        AuthOutcome::Invalid
    }
}

/// Hashes a password into a PHC string (for `postern user hash` and tests).
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_known_and_unknown() {
        let hash = hash_password("s3cret").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        let db = UserDb::new(&[User {
            name: "alice".into(),
            password_hash: hash,
        }]);
        assert!(db.verify("alice", "s3cret"));
        assert!(!db.verify("alice", "wrong"));
        assert!(!db.verify("bob", "s3cret"));
    }
}
