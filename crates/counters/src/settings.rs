//! [`CounterSettings`]: which store to open and how (the `[counters]` table,
//! parsed by `postern-config`).

use std::fmt;
use std::time::Duration;

/// Which store holds the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Backend {
    /// In this process: one node, nothing to run, lost on restart.
    #[default]
    Memory,
    /// A Redis server shared by every node behind one MX.
    Redis,
}

impl Backend {
    /// The configuration spelling: `memory` or `redis`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Redis => "redis",
        }
    }
}

/// The `[counters]` table. `Debug` hides a password in `redis_url`.
#[derive(Clone, PartialEq, Eq)]
pub struct CounterSettings {
    /// Default [`Backend::Memory`].
    pub backend: Backend,
    /// `redis://[user:password@]host[:port][/db]` or `rediss://…` (TLS).
    /// Required with [`Backend::Redis`].
    pub redis_url: Option<String>,
    /// Prepended to every Redis key, so several Postern installations (or
    /// other programs) can share one server. Default `postern:`.
    pub key_prefix: String,
    /// Every Redis operation (connecting included) must finish within this,
    /// or it fails as unavailable. Default 200 ms.
    pub timeout: Duration,
    /// The memory store's bound on keys (values and counters). Default
    /// 1 000 000 (about 125 MB at worst; see docs/counters.md).
    pub max_keys: usize,
}

/// `[counters] key_prefix` default.
pub const DEFAULT_KEY_PREFIX: &str = "postern:";
/// `[counters] timeout` default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);
/// `[counters] max_keys` default.
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

impl Default for CounterSettings {
    fn default() -> Self {
        CounterSettings {
            backend: Backend::Memory,
            redis_url: None,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            max_keys: DEFAULT_MAX_KEYS,
        }
    }
}

impl fmt::Debug for CounterSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CounterSettings")
            .field("backend", &self.backend)
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .field("max_keys", &self.max_keys)
            .finish()
    }
}

/// `url` with the password of its user info (`redis://user:PASSWORD@host`)
/// replaced by `<secret>`, for logs and `postern config show`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let shown = if userinfo.contains(':') {
                format!("{user}:<secret>")
            } else {
                // `redis://TOKEN@host`: the lone user info is the password.
                "<secret>".to_owned()
            };
            format!("{scheme}://{shown}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("redis://:pw@10.0.0.5:6379/2"),
            "redis://:<secret>@10.0.0.5:6379/2"
        );
        assert_eq!(
            redact_url("rediss://postern:p@ss@redis.example/0"),
            "rediss://postern:<secret>@redis.example/0"
        );
        assert_eq!(redact_url("redis://token@h"), "redis://<secret>@h");
        assert_eq!(redact_url("redis://127.0.0.1/"), "redis://127.0.0.1/");
        let s = CounterSettings {
            redis_url: Some("redis://:hunter2@h".into()),
            ..CounterSettings::default()
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
