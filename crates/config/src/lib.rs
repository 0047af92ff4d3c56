//! The only crate that knows `postern.toml`: parses it, checks it, and turns it
//! into the plain settings the other crates take ([`ServerSettings`] and what it
//! holds), plus the security warnings the binary logs at every start.
//!
//! Every error names the place and the key, like
//! `postern.toml:12:7: listener[1].tls: unknown value "sometimes"; allowed: "off", "optional", "required"`.
//! Key paths use the file's own key names; array indexes count from 0.
//! `examples/postern.toml` documents every key with its unit, default and
//! allowed values.
//!
//! Not here: loading certificates (the binary does it with `postern-tls` at
//! `config check` and `serve`), creating directories, logging.
//!
//! # Security
//! Reads operator input only. Refuses, unless spelled out in `[danger]`, the
//! two settings that break the first tenet outright: AUTH without TLS and a
//! relay network covering the whole Internet. Every `[danger]` key set to true,
//! and every other risky-but-legal setting, comes back as a [`Warning`].
//! Password hashes are checked but never echoed.
//!
//! # Standards
//! RFC 5321 §4.5.3 (limits and timeouts), RFC 8314 (implicit TLS), RFC 8996
//! (TLS 1.0/1.1 deprecated), RFC 4954 (AUTH), TOML 1.1.

mod admin;
mod build;
mod delivery;
mod error;
mod pickup;
mod raw;
mod tls_names;
mod units;

use std::path::{Path, PathBuf};

pub use error::{ConfigError, ErrorKind, Location, Warning};
pub use postern_smtpd::ServerSettings;
pub use units::{parse_duration, parse_size};

/// The embedded default configuration, used by `postern serve` without
/// `--config`: data in `./postern-data`, hostname `localhost`, listeners on
/// 127.0.0.1 only (smtp :2525, submission :2587, submissions :2465), a
/// self-signed certificate, mail accepted for `localhost` only, no relay
/// networks, no users.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// Name used as the origin of [`DEFAULT_CONFIG`] in messages.
pub const DEFAULT_ORIGIN: &str = "<embedded default>";

/// A checked configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Everything the inbound server needs.
    pub server: ServerSettings,
    /// Root of Postern's data: `spool/`, `tls/` (generated certificates), `log/`,
    /// `pickup/`, `badmail/`.
    pub data_dir: PathBuf,
    /// Logging.
    pub log: LogSettings,
    /// The `[danger]` table, for the startup log.
    pub danger: DangerSettings,
    /// `[delivery]` and `[[route]]`: the queue, routing and outbound TLS policy.
    pub delivery: postern_delivery::DeliverySettings,
    /// `[dns]` with `[[dns.static]]` overrides, for delivery's resolver.
    pub dns: postern_dns::DnsSettings,
    /// `[pickup]`: the pickup folder.
    pub pickup: postern_delivery::pickup::PickupSettings,
    /// `[admin]`: the admin socket (`postern queue` verbs while the server runs).
    pub admin: postern_admin::AdminSettings,
    /// The file name the configuration came from, or `<embedded default>`.
    pub source: String,
}

impl Config {
    /// Where a self-signed certificate is generated when none is configured.
    pub fn tls_dir(&self) -> PathBuf {
        self.data_dir.join("tls")
    }

    /// Where logs (the default transcript) go.
    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("log")
    }
}

/// `[log]` settings other than the transcript (which is in
/// [`ServerSettings::transcript`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// `error`, `warn`, `info`, `debug` or `trace` (a tracing level / EnvFilter
    /// directive). Default `info`.
    pub level: String,
}

/// The `[danger]` table: settings that weaken security on purpose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DangerSettings {
    /// Offer AUTH on listeners without TLS.
    pub allow_insecure_auth: bool,
    /// Permit relay networks containing `0.0.0.0/0` or `::/0`.
    pub allow_open_relay: bool,
}

impl DangerSettings {
    /// The keys set to true, for the startup log (`danger.allow_open_relay`, …).
    pub fn enabled(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.allow_insecure_auth {
            v.push("danger.allow_insecure_auth");
        }
        if self.allow_open_relay {
            v.push("danger.allow_open_relay");
        }
        v
    }
}

/// A configuration and the warnings found while checking it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The settings.
    pub config: Config,
    /// Risky settings, in file order within each check; the binary logs each
    /// one at startup and `config check` prints them.
    pub warnings: Vec<Warning>,
}

/// Loads and checks the file at `path`. Relative paths inside it are relative
/// to the file's directory; messages name the file as `path` is written.
pub fn load_file(path: &Path) -> Result<Loaded, ConfigError> {
    let origin = path.display().to_string();
    let src = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            ErrorKind::Read,
            &origin,
            None,
            "",
            format!("cannot read the configuration file: {e}"),
        )
    })?;
    let base_dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    load_str(&src, &origin, base_dir)
}

/// Loads and checks configuration text. `origin` names it in messages;
/// relative paths inside it are joined to `base_dir`.
pub fn load_str(src: &str, origin: &str, base_dir: &Path) -> Result<Loaded, ConfigError> {
    let de = toml::Deserializer::parse(src).map_err(|e| {
        ConfigError::new(
            ErrorKind::Syntax,
            origin,
            e.span().map(|s| Location::of(src, s)),
            "",
            format!("TOML syntax error: {}", e.message().trim_end()),
        )
    })?;
    let raw: raw::RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = clean_path(&e.path().to_string());
        let inner = e.into_inner();
        let (key, message) = error::rewrite_serde_message(&path, inner.message());
        ConfigError::new(
            ErrorKind::Invalid,
            origin,
            inner.span().map(|s| Location::of(src, s)),
            key,
            message,
        )
    })?;
    let mut cx = build::Ctx {
        src,
        origin,
        base_dir,
        warnings: Vec::new(),
    };
    let config = build::build(raw, &mut cx)?;
    Ok(Loaded {
        config,
        warnings: cx.warnings,
    })
}

/// Loads [`DEFAULT_CONFIG`], with `./postern-data` relative to `base_dir`
/// (normally the current directory).
pub fn load_default(base_dir: &Path) -> Result<Loaded, ConfigError> {
    load_str(DEFAULT_CONFIG, DEFAULT_ORIGIN, base_dir)
}

/// serde_path_to_error's path without `toml::Spanned`'s private wrapper
/// segments, and empty at the top level.
fn clean_path(path: &str) -> String {
    const SPANNED: &str = "$__serde_spanned_private_value";
    let cleaned = path
        .replace(&format!(".{SPANNED}"), "")
        .replace(SPANNED, "");
    if cleaned == "." {
        String::new()
    } else {
        cleaned.trim_start_matches('.').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_lose_spanned_segments() {
        assert_eq!(clean_path("."), "");
        assert_eq!(
            clean_path(
                "listener[0].$__serde_spanned_private_value.tls.$__serde_spanned_private_value"
            ),
            "listener[0].tls"
        );
        assert_eq!(
            clean_path(
                "tls.cipher_suites.$__serde_spanned_private_value[0].$__serde_spanned_private_value"
            ),
            "tls.cipher_suites[0]"
        );
    }

    #[test]
    fn danger_enabled_lists_keys() {
        assert!(DangerSettings::default().enabled().is_empty());
        let d = DangerSettings {
            allow_insecure_auth: true,
            allow_open_relay: true,
        };
        assert_eq!(
            d.enabled(),
            ["danger.allow_insecure_auth", "danger.allow_open_relay"]
        );
    }
}
