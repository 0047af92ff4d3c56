//! `postern config check [--strict]` and `postern config show [--non-default]`.
//!
//! Both read the configuration every command reads (`--config FILE`,
//! `POSTERN_CONFIG`, the default paths; see `config_file`). `check` prints
//! every error of the file in file order (exit 2), then the security
//! warnings (exit 1 with `--strict`), loads the certificates, and with
//! `[counters] backend = "redis"` reads one key through the store `serve`
//! would open (an unreachable Redis is a warning: the server fails open).
//!
//! # Security
//! `show` prints the effective settings, never a password (`[[user]]`
//! hashes and relay-host passwords are replaced by `"<secret>"`; so is the
//! password of `[counters] redis_url`, here and in `check`'s output).

use std::path::Path;
use std::process::ExitCode;

use postern_config::{Config, ConfigError};
use postern_counters::{Backend, CounterError, CounterSettings, redact_url};

use crate::cli::{CheckArgs, ShowArgs};
use crate::config_file::{HOW_TO_CHOOSE, choose, load};
use crate::out::outln;
use crate::tls_setup;

/// Prints every error of a configuration, one `error:` line each.
pub(crate) fn print_errors(e: &ConfigError) {
    for one in e.all() {
        eprintln!("error: {}", one.line());
    }
    let n = e.all().count();
    if n > 1 {
        eprintln!("{n} errors");
    }
}

/// `postern config check`.
pub(crate) fn check(config: Option<&Path>, args: &CheckArgs) -> ExitCode {
    if args.file.is_some() {
        eprintln!(
            "warning: `postern config check FILE` is deprecated; write `postern config check --config FILE`"
        );
    }
    let chosen = choose(args.file.as_deref().or(config));
    let mut loaded = match load(chosen.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            print_errors(&e);
            return ExitCode::from(2);
        }
    };
    let mut warnings = loaded.warnings.len();
    for w in &loaded.warnings {
        outln!("warning: {w}");
    }
    match tls_setup::build(&mut loaded.config, false) {
        Ok(tls) => {
            warnings += tls.warnings.len();
            for w in &tls.warnings {
                outln!("warning: {w}");
            }
            for s in &tls.summaries {
                outln!("certificate: {s}");
            }
            warnings += check_admin_http(&loaded.config, tls.config);
        }
        Err(e) => {
            eprintln!(
                "error: {}: {}",
                loaded.config.source,
                crate::config_file::chain_anyhow(&e)
            );
            return ExitCode::from(2);
        }
    }
    warnings += check_counters(&loaded.config.counters);
    warnings += check_engines(&loaded.config.server.content);
    print_summary(&loaded.config, chosen.is_none());
    if args.strict && warnings > 0 {
        eprintln!("error: {warnings} security warning(s), and --strict was given");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// `[admin] http`: a listener nobody can log in to (no admin user),
/// credential files others can read. Returns the number printed.
fn check_admin_http(
    cfg: &postern_config::Config,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
) -> usize {
    // Without a configured certificate `serve` generates one: the TLS the
    // listener asks for will be there.
    let pending_self_signed = cfg.admin_http.tls && tls.is_none();
    let settings = cfg.admin_http.settings(tls);
    let mut n = 0;
    for w in postern_admin::http::config_warnings(&settings) {
        if pending_self_signed && w.ends_with("(the server will not start)") {
            continue;
        }
        outln!("warning: [admin] http: {w}");
        n += 1;
    }
    n
}

/// With `backend = "redis"`: one read through the store `serve` would open
/// (within `[counters] timeout`), so a wrong address, password or firewall
/// shows now rather than as `counters.unavailable` in the log. Returns the
/// number of warnings printed (0 or 1).
fn check_counters(s: &CounterSettings) -> usize {
    if s.backend != Backend::Redis {
        return 0;
    }
    let url = redact_url(s.redis_url.as_deref().unwrap_or_default());
    let probe = || -> Result<(), CounterError> {
        let store = postern_counters::open(s)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CounterError::Unavailable {
                backend: "redis",
                reason: format!("cannot start the runtime: {e}"),
            })?;
        rt.block_on(store.get("config-check")).map(|_| ())
    };
    match probe() {
        Ok(()) => {
            outln!(
                "counters: redis at {url} answers (key prefix {:?})",
                s.key_prefix
            );
            0
        }
        Err(e) => {
            let c = e.cause();
            outln!(
                "warning: counters: redis at {url}: {} [{}: {}]; fix: {}",
                c.summary,
                c.id,
                c.detail,
                c.fix
            );
            1
        }
    }
}

/// `[rspamd]`, `[clamav]`, `[[milter]]`: does each answer? rspamd `/ping`,
/// clamd `PING` and `VERSION`, a TCP/Unix connect to each milter — so a
/// wrong address shows now, not as deferred mail (`on_failure`). Returns
/// the number of warnings printed.
fn check_engines(c: &postern_smtpd::ContentSettings) -> usize {
    if c.rspamd.is_none() && c.clamav.is_none() && c.milters.is_empty() {
        return 0;
    }
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return 0;
    };
    let mut warnings = 0;
    let mut warn = |what: &str, id: &str, summary: &str, fix: &str| {
        outln!("warning: {what}: {summary} [{id}]; fix: {fix}");
        warnings += 1;
    };
    if let Some((s, _)) = &c.rspamd {
        let client = postern_engines::RspamdClient::new(s.clone());
        match rt.block_on(client.ping()) {
            Ok(()) => outln!("rspamd: {} answers", s.address),
            Err(e) => {
                let c = e.cause();
                warn("rspamd", c.id, &c.summary, c.fix);
            }
        }
    }
    if let Some((s, _)) = &c.clamav {
        let client = postern_engines::ClamdClient::new(s.clone());
        match rt.block_on(async { client.ping().await.map(|()| client.version()) }) {
            Ok(version) => {
                let v = rt.block_on(version).unwrap_or_default();
                outln!("clamav: {} answers ({})", s.address, v.trim());
            }
            Err(e) => {
                let c = e.cause();
                warn("clamav", c.id, &c.summary, c.fix);
            }
        }
    }
    for m in &c.milters {
        let reach = rt.block_on(async {
            let t = m.timeouts.connect.min(std::time::Duration::from_secs(5));
            match &m.address {
                postern_milter::MilterAddr::Tcp { host, port } => {
                    tokio::time::timeout(t, tokio::net::TcpStream::connect((host.as_str(), *port)))
                        .await
                        .map_err(|_| "timed out".to_owned())?
                        .map(drop)
                        .map_err(|e| e.to_string())
                }
                postern_milter::MilterAddr::Unix(path) => {
                    tokio::time::timeout(t, tokio::net::UnixStream::connect(path))
                        .await
                        .map_err(|_| "timed out".to_owned())?
                        .map(drop)
                        .map_err(|e| e.to_string())
                }
            }
        });
        match reach {
            Ok(()) => outln!("milter {}: {} accepts connections", m.name, m.address),
            Err(why) => warn(
                &format!("milter {}", m.name),
                "milter.connect",
                &format!("cannot connect to {}: {why}", m.address),
                "start the milter, or point [[milter]] address at its socket",
            ),
        }
    }
    warnings
}

fn print_summary(cfg: &Config, embedded: bool) {
    outln!(
        "ok: {} is valid: {} listener(s), {} accepted domain(s), {} relay network(s), {} user(s)",
        cfg.source,
        cfg.server.listeners.len(),
        cfg.server.relay.accepted_domains.len(),
        cfg.server.relay.relay_networks.len(),
        cfg.server.users.len()
    );
    if embedded {
        outln!(
            "note: no configuration file was given and none exists at {} or ./{}; {HOW_TO_CHOOSE}",
            crate::config_file::SYSTEM_PATH,
            crate::config_file::LOCAL_PATH
        );
    }
}

/// `postern config show`.
pub(crate) fn show(config: Option<&Path>, args: &ShowArgs) -> ExitCode {
    let chosen = choose(config);
    let text = match chosen.as_deref() {
        Some(p) => std::fs::read_to_string(p).map_err(|e| {
            eprintln!(
                "error: {}: cannot read the configuration file: {e}",
                p.display()
            );
        }),
        None => Ok(postern_config::DEFAULT_CONFIG.to_owned()),
    };
    let Ok(text) = text else {
        return ExitCode::from(2);
    };
    let origin = chosen.as_deref().map_or_else(
        || postern_config::DEFAULT_ORIGIN.to_owned(),
        |p| p.display().to_string(),
    );
    let base = postern_config::base_dir(chosen.as_deref());
    match postern_config::effective(&text, &origin, &base, args.non_default) {
        Ok(toml) => {
            outln!("# effective configuration of {origin}");
            crate::out::out!("{toml}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            print_errors(&e);
            ExitCode::from(2)
        }
    }
}
