//! SMTP AUTH credential checks against the configured users (argon2 PHC hashes).
//!
//! # Security
//! Passwords arrive from the network; they are compared only through argon2's
//! verifier, never logged, and dropped after the check. An unknown user costs the
//! same argon2 work as a known one, so response time does not reveal which
//! names exist. Verification runs on the blocking pool (argon2 is deliberately
//! slow and must not stall other sessions).
//!
//! # Standards
//! RFC 4954 (SMTP AUTH), RFC 4616 (PLAIN), draft-murchison-sasl-login (LOGIN).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

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

/// Verifies on the blocking pool.
pub(crate) async fn verify(db: Arc<UserDb>, user: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || db.verify(&user, &password))
        .await
        .unwrap_or(false)
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
