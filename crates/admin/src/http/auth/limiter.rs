//! The login limiter: failed logins counted per client address (IPv6 by /64)
//! and per user name in fixed windows, and the addresses each name last logged
//! in from. Past [`MAX_FAILURES`] from one address, or past
//! [`MAX_NAME_FAILURES`] for one name from addresses it has not logged in
//! from, a login is refused with `429 Too Many Requests` and `Retry-After`
//! before any password is checked.
//!
//! # Security
//! Against password guessing (OWASP Authentication: account lockout /
//! throttling). The address limit stops one guesser; the name limit stops a
//! distributed guesser on one account (at most [`MAX_NAME_FAILURES`] guesses
//! per [`WINDOW`], about two thousand a day against a password of at least 12
//! characters hashed with argon2id). So that such a guesser cannot lock the
//! admin out, the name limit does not apply to an address the name logged in
//! from in the last [`KNOWN_FOR`] (only that address's own limit does), and
//! a success does not clear the name's count (it would hand the guesser a
//! new allowance). All maps are bounded ([`MAX_ENTRIES`]; the oldest entry
//! goes first), so random names cannot grow memory.
//!
//! # Standards
//! RFC 6585 §4 (429), RFC 9110 §10.2.3 (Retry-After).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::sessions::Clock;

/// Failures allowed per window from one address.
pub const MAX_FAILURES: u32 = 5;
/// Failures allowed per window for one name from addresses it has not
/// logged in from.
pub const MAX_NAME_FAILURES: u32 = 20;
/// The window.
pub const WINDOW: Duration = Duration::from_mins(15);
/// How long an address a name logged in from stays exempt from the name's
/// limit.
pub const KNOWN_FOR: Duration = Duration::from_hours(30 * 24);
/// Entries per map at most.
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
}

#[derive(Debug)]
struct Counter<K> {
    map: HashMap<K, Window>,
}

impl<K: Hash + Eq + Clone> Counter<K> {
    fn blocked(&mut self, k: &K, now: Instant, max: u32) -> Option<Duration> {
        let w = self.map.get(k)?;
        let end = w.start + WINDOW;
        if now >= end {
            self.map.remove(k);
            return None;
        }
        (w.failures >= max).then(|| end - now)
    }

    /// Takes back one counted failure (the attempt succeeded).
    fn undo(&mut self, k: &K) {
        if let Some(w) = self.map.get_mut(k) {
            w.failures = w.failures.saturating_sub(1);
        }
    }

    fn fail(&mut self, k: K, now: Instant) {
        if let Some(w) = self.map.get_mut(&k)
            && now < w.start + WINDOW
        {
            w.failures = w.failures.saturating_add(1);
            return;
        }
        if self.map.len() >= MAX_ENTRIES {
            self.map.retain(|_, w| now < w.start + WINDOW);
            if self.map.len() >= MAX_ENTRIES
                && let Some(old) = self
                    .map
                    .iter()
                    .min_by_key(|(_, w)| w.start)
                    .map(|(k, _)| k.clone())
            {
                self.map.remove(&old);
            }
        }
        self.map.insert(
            k,
            Window {
                start: now,
                failures: 1,
            },
        );
    }
}

/// The limiter's maps, under one lock.
#[derive(Debug)]
struct Maps {
    by_address: Counter<IpAddr>,
    by_name: Counter<String>,
    /// (name, address) → last successful login.
    known: HashMap<(String, IpAddr), Instant>,
}

impl Maps {
    fn is_known(&mut self, k: &(String, IpAddr), now: Instant) -> bool {
        match self.known.get(k) {
            Some(t) if now.duration_since(*t) < KNOWN_FOR => true,
            Some(_) => {
                self.known.remove(k);
                false
            }
            None => false,
        }
    }

    fn remember(&mut self, k: (String, IpAddr), now: Instant) {
        if !self.known.contains_key(&k) && self.known.len() >= MAX_ENTRIES {
            self.known.retain(|_, t| now.duration_since(*t) < KNOWN_FOR);
            if self.known.len() >= MAX_ENTRIES
                && let Some(old) = self
                    .known
                    .iter()
                    .min_by_key(|(_, t)| **t)
                    .map(|(k, _)| k.clone())
            {
                self.known.remove(&old);
            }
        }
        self.known.insert(k, now);
    }

    /// The wait when a login from `ip` as `name` must be refused now.
    fn blocked(&mut self, ip: IpAddr, name: &str, now: Instant) -> Option<Duration> {
        let a = self.by_address.blocked(&ip, now, MAX_FAILURES);
        let b = if self.is_known(&(name.to_owned(), ip), now) {
            None
        } else {
            self.by_name
                .blocked(&name.to_owned(), now, MAX_NAME_FAILURES)
        };
        a.max(b)
    }

    /// Counts a failure: always against the address; against the name
    /// unless the address is one the name logged in from.
    fn fail(&mut self, ip: IpAddr, name: String, now: Instant) {
        self.by_address.fail(ip, now);
        if !self.is_known(&(name.clone(), ip), now) {
            self.by_name.fail(name, now);
        }
    }
}

/// Failed logins per address and per name, and where names logged in from.
#[derive(Debug)]
pub struct LoginLimiter {
    inner: Mutex<Maps>,
    clock: Clock,
}

/// The name as counted: lowercase, at most 64 bytes (longer names cannot
/// exist; this bounds each entry).
fn name_key(user: &str) -> String {
    let mut end = user.len().min(64);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    user[..end].to_ascii_lowercase()
}

/// The address as counted: IPv4 as is, IPv6 by its /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 @ IpAddr::V4(_) => v4,
    }
}

impl LoginLimiter {
    /// Empty.
    pub fn new(clock: Clock) -> Self {
        Self {
            inner: Mutex::new(Maps {
                by_address: Counter {
                    map: HashMap::new(),
                },
                by_name: Counter {
                    map: HashMap::new(),
                },
                known: HashMap::new(),
            }),
            clock,
        }
    }

    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Some(wait)` when a login from `ip` as `user` must be refused now.
    pub fn check(&self, ip: IpAddr, user: &str) -> Option<Duration> {
        let now = self.clock.now();
        self.maps().blocked(key(ip), &name_key(user), now)
    }

    /// Starts a login attempt: refused (`Err(wait)`) when over the limit,
    /// else counted as a failure at once, in the same step — so parallel
    /// attempts cannot all pass the check before the first failure is
    /// counted (each costs an argon2 verification). [`Self::succeed`]
    /// takes the count back.
    pub fn begin(&self, ip: IpAddr, user: &str) -> Result<(), Duration> {
        let now = self.clock.now();
        let (ip, name) = (key(ip), name_key(user));
        let mut m = self.maps();
        if let Some(wait) = m.blocked(ip, &name, now) {
            return Err(wait);
        }
        m.fail(ip, name, now);
        Ok(())
    }

    /// Counts a failed login.
    pub fn fail(&self, ip: IpAddr, user: &str) {
        let now = self.clock.now();
        self.maps().fail(key(ip), name_key(user), now);
    }

    /// A successful login (begun with [`Self::begin`]): the attempt's own
    /// counts taken back, and the address remembered as the name's for
    /// [`KNOWN_FOR`]. Other failures against the name stay counted.
    pub fn succeed(&self, ip: IpAddr, user: &str) {
        let now = self.clock.now();
        let (ip, name) = (key(ip), name_key(user));
        let mut m = self.maps();
        m.by_address.undo(&ip);
        if !m.is_known(&(name.clone(), ip), now) {
            m.by_name.undo(&name);
        }
        m.remember((name, ip), now);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn five_failures_from_an_address_then_wait() {
        let clock = Clock::manual();
        let l = LoginLimiter::new(clock.clone());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(l.check(ip, "alice").is_none());
            l.fail(ip, "alice");
        }
        let wait = l.check(ip, "alice").unwrap();
        assert!(wait <= WINDOW && wait + Duration::from_secs(5) > WINDOW);
        // The address is refused for another name; another address is not
        // refused for this name (five is under the name's limit).
        assert!(l.check(ip, "bob").is_some());
        assert!(l.check("198.51.100.7".parse().unwrap(), "ALICE").is_none());
        // Same /64: same counter; IPv4-mapped is the IPv4 address.
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            l.fail(a, "x");
        }
        assert!(l.check("2001:db8::ffff".parse().unwrap(), "y").is_some());
        assert!(l.check("::ffff:192.0.2.1".parse().unwrap(), "z").is_some());
        clock.advance(WINDOW);
        assert!(l.check(ip, "alice").is_none());
    }

    fn addr(i: usize) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(
            0xC633_6400_u32 + u32::try_from(i).unwrap(),
        ))
    }

    #[test]
    fn a_distributed_guesser_is_stopped_but_cannot_lock_the_admin_out() {
        let clock = Clock::manual();
        let l = LoginLimiter::new(clock.clone());
        let home: IpAddr = "192.0.2.10".parse().unwrap();
        // The admin logs in from home.
        l.begin(home, "alice").unwrap();
        l.succeed(home, "alice");
        // Many addresses, a few guesses each, all on "alice".
        let mut refused = 0;
        for i in 0..(MAX_NAME_FAILURES as usize * 2) {
            if l.begin(addr(i), "alice").is_err() {
                refused += 1;
            }
        }
        assert_eq!(refused, MAX_NAME_FAILURES as usize);
        // A new address is refused for "alice"…
        assert!(l.check("203.0.113.5".parse().unwrap(), "alice").is_some());
        // …but home still gets in, and its success does not reset the
        // guessers' count.
        l.begin(home, "alice").unwrap();
        l.succeed(home, "alice");
        assert!(l.begin(addr(999), "alice").is_err());
        // Home's own typos count against home only.
        for _ in 0..MAX_FAILURES {
            l.begin(home, "alice").unwrap();
        }
        assert!(l.begin(home, "alice").is_err());
        // The known address is forgotten after KNOWN_FOR.
        clock.advance(WINDOW);
        assert!(l.check(home, "alice").is_none());
        clock.advance(KNOWN_FOR);
        for i in 0..(MAX_NAME_FAILURES as usize) {
            let _ = l.begin(addr(2000 + i), "alice");
        }
        assert!(l.check(home, "alice").is_some());
    }

    #[test]
    fn begin_counts_before_the_verification() {
        let l = LoginLimiter::new(Clock::manual());
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        // Parallel attempts: each begin counts, so only MAX_FAILURES start.
        let started = (0..40).filter(|_| l.begin(ip, "root").is_ok()).count();
        assert_eq!(started, MAX_FAILURES as usize);
        // A success takes its own count back.
        let l = LoginLimiter::new(Clock::manual());
        for _ in 0..10 {
            l.begin(ip, "alice").unwrap();
            l.succeed(ip, "alice");
        }
        assert!(l.check(ip, "alice").is_none());
        assert!(l.check("198.51.100.1".parse().unwrap(), "alice").is_none());
    }

    #[test]
    fn bounded() {
        let l = LoginLimiter::new(Clock::manual());
        for i in 0..(MAX_ENTRIES + 10) {
            l.fail("192.0.2.1".parse().unwrap(), &format!("user{i}"));
            l.succeed(addr(i % 50_000), &format!("user{i}"));
        }
        let m = l.inner.lock().unwrap();
        assert!(m.by_name.map.len() <= MAX_ENTRIES);
        assert!(m.known.len() <= MAX_ENTRIES);
        assert_eq!(name_key(&"é".repeat(100)).len(), 64);
    }
}
