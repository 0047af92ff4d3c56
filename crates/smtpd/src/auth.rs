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
//! at most [`QUEUE_WAIT`] and then gets `454 4.7.0`. The checks run on a few
//! dedicated threads, one per permit, not on tokio's blocking pool: the
//! allocator keeps each thread's freed 19 MiB block for reuse, so spreading
//! checks over hundreds of pool threads kept hundreds of blocks resident (704
//! MiB with 64 failing clients, `scripts/bench/auth-flood.py`). A failed attempt costs
//! the client [`FAILURE_DELAY`], and the session machine closes the session
//! after `max_auth_failures`.
//!
//! # Standards
//! RFC 4954 (SMTP AUTH), RFC 4616 (PLAIN), draft-murchison-sasl-login (LOGIN).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::phc::Output;
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher, Version};
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

    /// Checks `password` for `user`. Blocking (argon2): call from a verifier
    /// thread. `memory` is the thread's argon2 work area, reused from one check
    /// to the next (grown to the largest `m` cost seen).
    pub(crate) fn verify(&self, user: &str, password: &str, memory: &mut Vec<Block>) -> bool {
        if let Some(hash) = self.users.get(user) {
            verify_phc(hash, password.as_bytes(), memory)
        } else {
            // Same cost as a real check so timing does not reveal valid names.
            let _ = verify_phc(dummy_hash(), password.as_bytes(), memory);
            false
        }
    }
}

/// Verifies `password` against a PHC string (`$argon2id$v=19$m=…`) computing
/// into `memory` instead of a fresh 19 MiB allocation per check.
fn verify_phc(phc: &str, password: &[u8], memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = &mut out[..expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    if argon2
        .hash_password_into_with_memory(password, salt.as_ref(), out, &mut memory[..blocks])
        .is_err()
    {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(out).is_ok_and(|computed| computed == *expected)
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

/// One check for a verifier thread; the permit is released when it is done.
struct Job {
    db: Arc<UserDb>,
    creds: Credentials,
    permit: tokio::sync::OwnedSemaphorePermit,
    done: tokio::sync::oneshot::Sender<bool>,
}

/// The verifier threads and their permits, for the whole process (reloads
/// build a new `UserDb`; the bound stays). One thread per permit, so a job
/// sent with a permit always finds a free thread.
struct Pool {
    permits: Arc<Semaphore>,
    jobs: std::sync::mpsc::SyncSender<Job>,
}

fn pool() -> Option<&'static Pool> {
    static POOL: OnceLock<Option<Pool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(cores);
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for i in 0..cores {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name(format!("auth-verify-{i}"))
                .spawn(move || {
                    let mut memory = Vec::new();
                    loop {
                        // The lock is held only while taking a job.
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(poisoned) => poisoned.into_inner().recv(),
                        };
                        let Ok(job) = job else { return };
                        let ok = job
                            .db
                            .verify(&job.creds.user, &job.creds.password, &mut memory);
                        drop(job.permit);
                        let _ = job.done.send(ok);
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password verifier thread");
                return None;
            }
        }
        Some(Pool {
            permits: Arc::new(Semaphore::new(cores)),
            jobs: tx,
        })
    })
    .as_ref()
}

/// Verifies on a verifier thread, at most one check per core at a time,
/// waiting at most `wait` for a turn.
pub(crate) async fn verify(db: Arc<UserDb>, creds: Credentials, wait: Duration) -> AuthOutcome {
    let Some(pool) = pool() else {
        return AuthOutcome::Unavailable;
    };
    let Ok(Ok(permit)) =
        tokio::time::timeout(wait, Arc::clone(&pool.permits).acquire_owned()).await
    else {
        return AuthOutcome::Unavailable;
    };
    let (done, result) = tokio::sync::oneshot::channel();
    // Never blocks for long: a permit means a verifier thread is free.
    if pool
        .jobs
        .send(Job {
            db,
            creds,
            permit,
            done,
        })
        .is_err()
    {
        return AuthOutcome::Unavailable;
    }
    let ok = result.await.unwrap_or(false);
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
            senders: None,
        }]);
        let mut memory = Vec::new();
        assert!(db.verify("alice", "s3cret", &mut memory));
        assert!(!db.verify("alice", "wrong", &mut memory));
        assert!(!db.verify("bob", "s3cret", &mut memory));
        assert!(!db.verify("alice", "", &mut memory));
        // Other parameters (argon2i, small m) and a version-less string still verify.
        let params = Params::new(1024, 2, 1, None).unwrap();
        let salt = b"saltsaltsalt";
        let other = Argon2::new(Algorithm::Argon2i, Version::V0x10, params)
            .hash_password_with_salt(b"pw", salt)
            .unwrap()
            .to_string();
        let db = UserDb::new(&[User {
            name: "bob".into(),
            password_hash: other,
            senders: None,
        }]);
        assert!(db.verify("bob", "pw", &mut memory));
        assert!(!db.verify("bob", "pW", &mut memory));
    }
}
