//! `[counters]`: where rate limits, harvest budgets, greylisting and bans
//! keep their counts, from the file to `postern_counters::CounterSettings`.
//!
//! ```toml
//! [counters]
//! backend = "memory"                       # default; "redis" shares counters between nodes
//! redis_url = "redis://10.0.0.5:6379/0"    # required with backend = "redis"; rediss:// for TLS
//! key_prefix = "postern:"                  # default
//! timeout = "200ms"                        # default; per Redis operation, then fail open
//! max_keys = 1000000                       # default; the memory store's bound
//! ```
//!
//! # Security
//! Parses operator input. The URL may hold a password: messages show it
//! redacted (`postern_counters::redact_url`). Warns when counters (client
//! IPs, envelope addresses) would cross the network in clear, when the
//! server's certificate is not checked (`#insecure`), and when a long
//! timeout would stall every SMTP command while Redis is down.

use std::time::Duration;

use postern_counters::{Backend, CounterSettings, check_redis_url, redact_url};
use serde::Deserialize;
use toml::Spanned;

use crate::build::Ctx;
use crate::error::ConfigError;
use crate::raw::{Choice, Count, Dur, Pick};

/// `[counters]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawCounters {
    pub backend: Option<Spanned<Pick<Backend>>>,
    pub redis_url: Option<Spanned<String>>,
    pub key_prefix: Option<Spanned<String>>,
    pub timeout: Option<Spanned<Dur>>,
    pub max_keys: Option<Spanned<Count>>,
}

impl Choice for Backend {
    const CHOICES: &'static [(&'static str, Self)] =
        &[("memory", Self::Memory), ("redis", Self::Redis)];
}

/// The longest `timeout` accepted.
const MAX_TIMEOUT: Duration = Duration::from_secs(10);
/// A `timeout` above this gets a warning.
const LONG_TIMEOUT: Duration = Duration::from_secs(1);
/// The smallest `max_keys` accepted.
const MIN_MAX_KEYS: u64 = 1000;
/// The longest `key_prefix` accepted, in bytes.
const MAX_PREFIX: usize = 64;

/// Builds the counter store settings.
pub(crate) fn build(
    raw: Option<Spanned<RawCounters>>,
    cx: &mut Ctx<'_>,
) -> Result<CounterSettings, ConfigError> {
    let mut s = CounterSettings::default();
    let r = raw.map(Spanned::into_inner).unwrap_or_default();
    if let Some(v) = &r.backend {
        s.backend = v.get_ref().0;
    }
    if let Some(v) = &r.key_prefix {
        let p = v.get_ref();
        if p.is_empty() || p.len() > MAX_PREFIX || !p.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(cx.error(
                v.span(),
                "counters.key_prefix",
                format!(
                    "must be 1 to {MAX_PREFIX} printable ASCII characters without spaces, \
                     e.g. \"postern:\""
                ),
            ));
        }
        s.key_prefix.clone_from(p);
    }
    if let Some(v) = &r.timeout {
        let d = v.get_ref().0;
        if d < Duration::from_millis(1) || d > MAX_TIMEOUT {
            return Err(cx.error(
                v.span(),
                "counters.timeout",
                "must be between \"1ms\" and \"10s\", e.g. \"200ms\"",
            ));
        }
        s.timeout = d;
    }
    if let Some(v) = &r.max_keys {
        let n = v.get_ref().0;
        if n < MIN_MAX_KEYS {
            return Err(cx.error(
                v.span(),
                "counters.max_keys",
                format!("must be at least {MIN_MAX_KEYS} (each key takes about 125 bytes)"),
            ));
        }
        s.max_keys = usize::try_from(n)
            .map_err(|_| cx.error(v.span(), "counters.max_keys", format!("{n} is too large")))?;
    }
    if let Some(v) = &r.redis_url {
        check_redis_url(v.get_ref()).map_err(|e| {
            let what = match e {
                postern_counters::CounterError::Config { what } => what,
                other => other.to_string(),
            };
            cx.error(v.span(), "counters.redis_url", what)
        })?;
        s.redis_url = Some(v.get_ref().clone());
    }

    match (s.backend, &r.redis_url) {
        (Backend::Redis, None) => {
            let span = r.backend.as_ref().map(Spanned::span).unwrap_or_default();
            return Err(cx.error(
                span,
                "counters.backend",
                "\"redis\" needs redis_url, e.g. redis_url = \"redis://10.0.0.5:6379/0\" \
                 (or rediss:// for TLS)",
            ));
        }
        (Backend::Memory, Some(v)) => cx.warn(
            Some(v.span()),
            "counters.redis_url",
            "ignored: backend is \"memory\" (the default); set backend = \"redis\" to share \
             counters between nodes",
        ),
        (Backend::Redis, Some(v)) => {
            let url = v.get_ref();
            if url.starts_with("redis://") && !is_loopback(url) {
                cx.warn(
                    Some(v.span()),
                    "counters.redis_url",
                    format!(
                        "{} sends counter keys (client IPs, envelope addresses) and any \
                         password in clear across the network; use rediss:// (TLS) or keep \
                         Redis on this host",
                        redact_url(url)
                    ),
                );
            }
            if url.starts_with("rediss://") && url.ends_with("#insecure") {
                cx.warn(
                    Some(v.span()),
                    "counters.redis_url",
                    "#insecure: the Redis server's certificate is not verified, so anyone on \
                     the path can read and forge counters; remove it and install a certificate \
                     the system trusts",
                );
            }
        }
        (Backend::Memory, None) => {}
    }
    if s.backend == Backend::Redis
        && s.timeout > LONG_TIMEOUT
        && let Some(v) = &r.timeout
    {
        cx.warn(
            Some(v.span()),
            "counters.timeout",
            "while Redis does not answer, every SMTP command that checks a limit waits this \
             long before failing open; keep it under \"1s\"",
        );
    }
    Ok(s)
}

/// Whether the URL's host is this machine (loopback or a Unix socket).
fn is_loopback(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::test_support::{MINIMAL, load};
    use std::path::Path;
    use std::time::Duration;

    use postern_counters::{Backend, CounterSettings};

    fn warnings(extra: &str) -> Vec<String> {
        load(extra)
            .unwrap()
            .warnings
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn defaults() {
        let c = load("").unwrap().config;
        assert_eq!(c.counters, CounterSettings::default());
        assert_eq!(c.counters.backend, Backend::Memory);
        assert_eq!(c.counters.key_prefix, "postern:");
        assert_eq!(c.counters.timeout, Duration::from_millis(200));
        assert_eq!(c.counters.max_keys, 1_000_000);
    }

    #[test]
    fn keys() {
        let c = load(
            "[counters]\nbackend = \"redis\"\nredis_url = \"rediss://:pw@redis.example:6380/2\"\n\
             key_prefix = \"mx1:\"\ntimeout = \"150ms\"\nmax_keys = 5000\n",
        )
        .unwrap()
        .config;
        assert_eq!(c.counters.backend, Backend::Redis);
        assert_eq!(
            c.counters.redis_url.as_deref(),
            Some("rediss://:pw@redis.example:6380/2")
        );
        assert_eq!(c.counters.key_prefix, "mx1:");
        assert_eq!(c.counters.timeout, Duration::from_millis(150));
        assert_eq!(c.counters.max_keys, 5000);
        assert!(!format!("{:?}", c.counters).contains("pw@"));
    }

    #[test]
    fn errors_name_the_place() {
        let err = |extra: &str| load(extra).unwrap_err().to_string();
        assert_eq!(
            err("[counters]\nbackend = \"redis\"\n"),
            "postern.toml:12:11: counters.backend: \"redis\" needs redis_url, e.g. \
             redis_url = \"redis://10.0.0.5:6379/0\" (or rediss:// for TLS)"
        );
        assert_eq!(
            err("[counters]\nbackend = \"etcd\"\n"),
            "postern.toml:12:11: counters.backend: unknown value \"etcd\"; allowed: \"memory\", \"redis\""
        );
        assert_eq!(
            err("[counters]\nredis_url = \"http://10.0.0.5\"\n"),
            "postern.toml:12:13: counters.redis_url: redis_url must start with redis://, \
             rediss:// (TLS), unix:// or redis+unix://"
        );
        let e = err("[counters]\nredis_url = \"redis://:hunter2@[::1\"\n");
        assert!(
            e.starts_with("postern.toml:12:13: counters.redis_url:"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        assert_eq!(
            err("[counters]\nkey_prefix = \"my prefix\"\n"),
            "postern.toml:12:14: counters.key_prefix: must be 1 to 64 printable ASCII \
             characters without spaces, e.g. \"postern:\""
        );
        assert_eq!(
            err("[counters]\ntimeout = \"0s\"\n"),
            "postern.toml:12:11: counters.timeout: must be between \"1ms\" and \"10s\", e.g. \"200ms\""
        );
        assert_eq!(
            err("[counters]\nmax_keys = 10\n"),
            "postern.toml:12:12: counters.max_keys: must be at least 1000 (each key takes about 125 bytes)"
        );
        assert!(err("[counters]\nnodes = 2\n").starts_with(
            "postern.toml:12:1: counters.nodes: unknown key; allowed: \"backend\", \
                 \"redis_url\", \"key_prefix\", \"timeout\", \"max_keys\""
        ));
    }

    #[test]
    fn risky_settings_warn() {
        let w = warnings("[counters]\nredis_url = \"redis://127.0.0.1\"\n");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("ignored: backend is \"memory\""), "{w:?}");

        let w = warnings("[counters]\nbackend = \"redis\"\nredis_url = \"redis://:pw@10.0.0.5\"\n");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("in clear"), "{w:?}");
        assert!(!w[0].contains("pw@"), "{w:?}");

        for local in [
            "redis://127.0.0.1:6379/0",
            "redis://localhost",
            "redis://u:p@[::1]:6379",
            "unix:///run/redis.sock",
            "rediss://redis.example",
        ] {
            let w = warnings(&format!(
                "[counters]\nbackend = \"redis\"\nredis_url = \"{local}\"\n"
            ));
            assert!(w.is_empty(), "{local}: {w:?}");
        }

        let w = warnings(
            "[counters]\nbackend = \"redis\"\nredis_url = \"rediss://redis.example/#insecure\"\n",
        );
        assert!(w.len() == 1 && w[0].contains("not verified"), "{w:?}");

        let w = warnings(
            "[counters]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1\"\ntimeout = \"5s\"\n",
        );
        assert!(w.len() == 1 && w[0].contains("waits this long"), "{w:?}");
    }

    #[test]
    fn config_show_hides_the_password() {
        let src = format!(
            "{MINIMAL}[counters]\nbackend = \"redis\"\nredis_url = \"redis://:hunter2@127.0.0.1:6379/0\"\n"
        );
        for non_default in [false, true] {
            let shown =
                crate::effective(&src, "postern.toml", Path::new("/etc/postern"), non_default)
                    .unwrap();
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(
                shown.contains("redis_url = \"redis://:<secret>@127.0.0.1:6379/0\""),
                "{shown}"
            );
        }
    }
}
