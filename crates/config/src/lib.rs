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
mod authentication;
mod build;
mod content_policy;
mod counters;
mod delivery;
mod dmarc_reports;
mod engines;
mod error;
mod filters;
mod gateway;
mod pickup;
mod proxy;
mod quarantine;
mod raw;
mod recipients;
mod recover;
mod show;
mod spool;
#[cfg(test)]
mod test_support;
mod tls_names;
mod tracking;
mod units;

use std::path::{Path, PathBuf};

pub use admin::AdminHttp;
pub use error::{ConfigError, ErrorKind, Location, Warning};
pub use postern_smtpd::ServerSettings;
pub use show::effective;
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
    pub pickup: postern_pickup::PickupSettings,
    /// `[admin]`: the admin socket (`postern queue` verbs while the server runs).
    pub admin: postern_admin::AdminSettings,
    /// `[admin] http…`: the web console and HTTP API listener.
    pub admin_http: AdminHttp,
    /// `[counters]`: where limits, greylisting and bans keep their counts
    /// (`postern_counters::open` turns it into the store).
    pub counters: postern_counters::CounterSettings,
    /// `[dmarc_reports]`: DMARC aggregate reports.
    pub dmarc_reports: postern_auth::report::ReportSettings,
    /// `[tracking]`: the message tracking store (an index of the mail log).
    pub tracking: postern_trackdb::TrackingSettings,
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
/// to the file's directory (made absolute, so they stay right whatever the
/// current directory is later); messages name the file as `path` is written.
/// Every error of the file is reported ([`ConfigError::all`]).
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
    load_str(&src, &origin, &base_dir(Some(path)))
}

/// The directory relative paths in the file at `path` are resolved from: the
/// file's own directory, absolute; for `None` (the embedded default) the
/// current directory.
pub fn base_dir(path: Option<&Path>) -> PathBuf {
    let dir = match path.and_then(Path::parent) {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    // `absolute` keeps a trailing `.` component ("/srv/x/."): drop it.
    abs.components().collect()
}

/// Loads and checks configuration text. `origin` names it in messages;
/// relative paths inside it are joined to `base_dir`. Every error found is
/// reported ([`ConfigError::all`]), in file order.
pub fn load_str(src: &str, origin: &str, base_dir: &Path) -> Result<Loaded, ConfigError> {
    let parsed = recover::parse(src, origin)?;
    let mut cx = build::Ctx {
        src,
        origin,
        base_dir,
        warnings: Vec::new(),
        errors: Vec::new(),
    };
    let config = parsed.raw.and_then(|raw| build::build(raw, &mut cx));
    // A key taken out after a parse error leaves its value at the default,
    // which may upset a check that reads it: only errors about other keys
    // are kept.
    let build_errors = cx
        .errors
        .into_iter()
        .filter(|e| !parsed.removed.iter().any(|r| related(r, e.key())));
    let errors: Vec<ConfigError> = parsed.errors.into_iter().chain(build_errors).collect();
    if let Some(e) = ConfigError::combine(errors) {
        return Err(e);
    }
    match config {
        Some(config) => Ok(Loaded {
            config,
            warnings: cx.warnings,
        }),
        // build returns None only after recording an error.
        None => Err(ConfigError::new(
            ErrorKind::Invalid,
            origin,
            None,
            "",
            "the configuration is not valid",
        )),
    }
}

/// Whether key paths `a` and `b` name the same setting, one contains the
/// other (`route[1]` and `route[1].tls`; `tls` and `tls.cipher_suites[0]`),
/// or they end in the same key (a bad top-level `hostname` leaves
/// `listener[0].hostname` without its default).
fn related(a: &str, b: &str) -> bool {
    let leaf = |k: &str| {
        let last = k.rsplit('.').next().unwrap_or(k);
        last.split('[').next().unwrap_or(last).to_owned()
    };
    if leaf(a) == leaf(b) {
        return true;
    }
    let within = |outer: &str, inner: &str| {
        inner == outer
            || inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with(['.', '[']))
    };
    within(a, b) || within(b, a)
}

/// Loads [`DEFAULT_CONFIG`], with `./postern-data` relative to `base_dir`
/// (normally the current directory).
pub fn load_default(base_dir: &Path) -> Result<Loaded, ConfigError> {
    load_str(DEFAULT_CONFIG, DEFAULT_ORIGIN, base_dir)
}

/// serde_path_to_error's path without `toml::Spanned`'s private wrapper
/// segments, and empty at the top level.
pub(crate) fn clean_path(path: &str) -> String {
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
#[allow(clippy::unwrap_used)]
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
    fn related_keys() {
        assert!(related("route[1]", "route[1].tls"));
        assert!(related("tls.cipher_suites", "tls"));
        assert!(related("hostname", "hostname"));
        assert!(related("hostname", "listener[0].hostname"));
        assert!(!related("route[1]", "route[10].tls"));
        assert!(!related("tls", "tls_extra"));
    }

    #[test]
    fn base_dir_is_absolute_and_clean() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(base_dir(Some(Path::new("postern.toml"))), cwd);
        assert_eq!(base_dir(Some(Path::new("./x/postern.toml"))), cwd.join("x"));
        assert_eq!(
            base_dir(Some(Path::new("/etc/postern/postern.toml"))),
            Path::new("/etc/postern")
        );
        assert_eq!(base_dir(None), cwd);
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
