//! `postern config show [--non-default]`: the effective configuration as
//! TOML, like Postfix's `postconf` / `postconf -n`.
//!
//! The file's own keys, each table completed with the defaults of
//! `defaults.toml` (or, with `non_default`, only the keys whose value
//! differs from the default). Relative paths are shown resolved, and the
//! defaults that depend on other keys (`<data_dir>/…` paths, a listener's
//! `tls`, `auth` and `hostname`, `delivery.hostname`) are taken from the
//! checked configuration, so what is printed is what the server runs with.
//!
//! # Security
//! Never prints a secret: `[[user]] password_hash`,
//! `delivery.relayhost_password` and `[[route]] auth_password` show as
//! `"<secret>"`, and so do the password in `counters.redis_url` and
//! `rspamd.password`.

use std::path::Path;

use toml::{Table, Value};

use crate::error::{ConfigError, ErrorKind};
use crate::raw::Choice;

/// The defaults (see the file's header).
pub(crate) const DEFAULTS: &str = include_str!("defaults.toml");

/// Shown instead of a secret.
const SECRET: &str = "<secret>";

/// Keys holding a file path, relative to the configuration's folder when
/// relative (`[]` stands for any array index).
const PATH_KEYS: &[&str] = &[
    "data_dir",
    "tls.certificate[].cert",
    "tls.certificate[].key",
    "log.transcript",
    "delivery.ca_file",
    "delivery.badmail_dir",
    "delivery.mail_log",
    "delivery.mta_sts_cache",
    "delivery.outbound_tls.client_cert",
    "delivery.outbound_tls.client_key",
    "route[].ca_file",
    "route[].maildir",
    "recipients[].table",
    "pickup.dir",
    "admin.socket",
    "admin.users_file",
    "admin.tokens_file",
    "authentication.public_suffix_list",
    "dkim[].key",
    "dmarc_reports.dir",
    "tracking.database",
    "filters.message_rules",
    "filters.content_rules",
    "dictionary[].path",
];

/// Keys holding a secret.
const SECRET_KEYS: &[&str] = &[
    "user[].password_hash",
    "delivery.relayhost_password",
    "route[].auth_password",
    "rspamd.password",
];

/// The effective configuration of `src` as TOML text (see the module
/// documentation). The file must be valid: its errors are returned.
pub fn effective(
    src: &str,
    origin: &str,
    base_dir: &Path,
    non_default: bool,
) -> Result<String, ConfigError> {
    let loaded = crate::load_str(src, origin, base_dir)?;
    let cfg = &loaded.config;
    let internal = |what: String| ConfigError::new(ErrorKind::Invalid, origin, None, "", what);
    let mut file: Table = toml::from_str(src).map_err(|e| internal(e.to_string()))?;
    let defaults: Table = toml::from_str(DEFAULTS).map_err(|e| internal(e.to_string()))?;
    walk(&mut file, "", &mut |key, v| {
        if matches(key, PATH_KEYS)
            && let Value::String(s) = v
        {
            *s = crate::build::resolve(base_dir, s).display().to_string();
        }
        if matches(key, SECRET_KEYS) {
            *v = Value::String(SECRET.to_owned());
        }
        if key == "counters.redis_url"
            && let Value::String(s) = v
        {
            *s = postern_counters::redact_url(s);
        }
    });
    let table = if non_default {
        drop_defaults(&mut file, &defaults);
        file
    } else {
        let mut all = defaults;
        merge(&mut all, file);
        complete(&mut all, cfg);
        all
    };
    toml::to_string(&table).map_err(|e| internal(e.to_string()))
}

/// Whether `key` (`route[2].ca_file`) is one of `patterns` (`route[].ca_file`).
fn matches(key: &str, patterns: &[&str]) -> bool {
    let mut generic = String::with_capacity(key.len());
    let mut in_index = false;
    for c in key.chars() {
        match c {
            '[' => {
                in_index = true;
                generic.push('[');
            }
            ']' => {
                in_index = false;
                generic.push(']');
            }
            _ if in_index => {}
            _ => generic.push(c),
        }
    }
    patterns.contains(&generic.as_str())
}

/// Calls `f` with the key path of every scalar or array-of-scalars value.
fn walk(table: &mut Table, prefix: &str, f: &mut impl FnMut(&str, &mut Value)) {
    for (k, v) in table.iter_mut() {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Table(t) => walk(t, &key, f),
            Value::Array(items) if items.iter().all(Value::is_table) && !items.is_empty() => {
                for (i, item) in items.iter_mut().enumerate() {
                    if let Value::Table(t) = item {
                        walk(t, &format!("{key}[{i}]"), f);
                    }
                }
            }
            other => f(&key, other),
        }
    }
}

/// `file` over `defaults`, table by table.
fn merge(defaults: &mut Table, file: Table) {
    for (k, v) in file {
        match (defaults.get_mut(&k), v) {
            (Some(Value::Table(d)), Value::Table(f)) => merge(d, f),
            (_, v) => {
                defaults.insert(k, v);
            }
        }
    }
}

/// Takes out of `file` every key whose value is its default, and tables
/// left empty by that.
fn drop_defaults(file: &mut Table, defaults: &Table) {
    file.retain(|k, v| match (v, defaults.get(k)) {
        (Value::Table(f), Some(Value::Table(d))) => {
            drop_defaults(f, d);
            !f.is_empty()
        }
        (v, Some(d)) => !same(v, d),
        _ => true,
    });
}

/// Equal values, with sizes and durations compared by what they mean
/// (`"25MiB"` is `26214400`, `"300s"` is `"5m"`).
fn same(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    let size = |v: &Value| match v {
        Value::Integer(n) => u64::try_from(*n).ok(),
        Value::String(s) => crate::units::parse_size(s).ok(),
        _ => None,
    };
    let dur = |v: &Value| match v {
        Value::String(s) => crate::units::parse_duration(s).ok(),
        _ => None,
    };
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        _ => {
            matches!((dur(a), dur(b)), (Some(p), Some(q)) if p == q)
                || matches!((size(a), size(b)), (Some(p), Some(q)) if p == q)
        }
    }
}

/// The defaults that depend on other keys, from the checked configuration.
fn complete(t: &mut Table, cfg: &crate::Config) {
    let path = |p: &Path| Value::String(p.display().to_string());
    let path_or_false =
        |p: Option<&std::path::PathBuf>| p.map_or(Value::Boolean(false), |p| path(p));
    t.insert("data_dir".into(), path(&cfg.data_dir));
    if let Some(Value::Table(log)) = t.get_mut("log") {
        log.insert(
            "transcript".into(),
            path_or_false(cfg.server.transcript.path.as_ref()),
        );
    }
    if let Some(Value::Table(d)) = t.get_mut("delivery") {
        d.insert(
            "hostname".into(),
            Value::String(cfg.delivery.hostname.clone()),
        );
        d.insert("badmail_dir".into(), path(&cfg.delivery.badmail_dir));
        d.insert(
            "mail_log".into(),
            path_or_false(cfg.delivery.mail_log.as_ref()),
        );
        d.insert(
            "mta_sts_cache".into(),
            path_or_false(cfg.delivery.mta_sts_cache.as_ref()),
        );
    }
    if let Some(Value::Table(p)) = t.get_mut("pickup") {
        p.insert("dir".into(), path(&cfg.pickup.dir));
    }
    if let Some(Value::Table(a)) = t.get_mut("admin") {
        a.insert("socket".into(), path(&cfg.admin.socket));
    }
    if let Some(Value::Array(listeners)) = t.get_mut("listener") {
        for (item, l) in listeners.iter_mut().zip(&cfg.server.listeners) {
            if let Value::Table(lt) = item {
                lt.insert("hostname".into(), Value::String(l.hostname.clone()));
                lt.insert("tls".into(), Value::String(l.tls.name().to_owned()));
                lt.insert("auth".into(), Value::String(l.auth.name().to_owned()));
                crate::proxy::complete(lt, l.proxy_protocol.as_ref());
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_defaults() {
        let minimal = "data_dir = \"/d\"\nhostname = \"mx.example\"\n\
                       [[listener]]\nname = \"smtp\"\naddress = \"127.0.0.1:2525\"\nkind = \"smtp\"\n";
        let implicit = crate::load_str(minimal, "f", Path::new("/etc/postern")).unwrap();
        let explicit = crate::load_str(
            &format!("{minimal}{DEFAULTS}"),
            "f",
            Path::new("/etc/postern"),
        )
        .unwrap();
        assert_eq!(implicit.config, explicit.config);
    }

    /// Every key of every table in `defaults.toml` is there, or is one
    /// whose default depends on other keys (the schema's own list of keys
    /// comes from the unknown-key error).
    #[test]
    fn the_defaults_cover_every_key() {
        let minimal = "data_dir = \"/d\"\nhostname = \"mx.example\"\n\
                       [[listener]]\nname = \"smtp\"\naddress = \"127.0.0.1:2525\"\nkind = \"smtp\"\n";
        let defaults: Table = toml::from_str(DEFAULTS).unwrap();
        let no_fixed_default: &[(&str, &[&str])] = &[
            ("limits", &[]),
            ("tls", &["certificate"]),
            ("relay", &[]),
            ("smtp", &[]),
            ("log", &[]),
            (
                "delivery",
                &[
                    "hostname",
                    "ca_file",
                    "relayhost",
                    "relayhost_tls",
                    "relayhost_implicit_tls",
                    "relayhost_user",
                    "relayhost_password",
                    "badmail_dir",
                    "outbound_tls",
                ],
            ),
            ("delivery.outbound_tls", &["client_cert", "client_key"]),
            ("dns", &["static"]),
            ("pickup", &["dir"]),
            (
                "admin",
                &[
                    "socket",
                    "http",
                    "http_tls",
                    "users_file",
                    "tokens_file",
                    "http_names",
                    "http_public_url",
                    "http_trusted_proxies",
                ],
            ),
            ("tracking", &["enabled", "database"]),
            ("spool", &[]),
            ("counters", &["redis_url"]),
            ("danger", &[]),
            (
                "authentication",
                &[
                    "authserv_id",
                    "public_suffix_list",
                    "override",
                    "max_verify_size",
                    "arc_domain",
                    "arc_selector",
                ],
            ),
            (
                "dmarc_reports",
                &["dir", "org_name", "email", "contact_info"],
            ),
        ];
        for (table, dependent) in no_fixed_default {
            let src = format!("{minimal}[{table}]\nzz_probe = 1\n");
            let err = crate::load_str(&src, "f", Path::new("/")).unwrap_err();
            let msg = err.message();
            let allowed = msg.split_once("allowed: ").unwrap().1;
            let mut have = &defaults;
            for part in table.split('.') {
                have = have[part].as_table().unwrap();
            }
            for key in allowed.split(", ").map(|k| k.trim_matches('"')) {
                assert!(
                    have.contains_key(key) || dependent.contains(&key),
                    "[{table}] {key} has no default in defaults.toml"
                );
            }
        }
    }

    #[test]
    fn keys_with_indexes_match_patterns() {
        assert!(matches("route[12].ca_file", PATH_KEYS));
        assert!(matches("data_dir", PATH_KEYS));
        assert!(!matches("route[1].domains", PATH_KEYS));
    }

    #[test]
    fn sizes_and_durations_compare_by_meaning() {
        assert!(same(&Value::from("25MiB"), &Value::from(26_214_400)));
        assert!(same(&Value::from("300s"), &Value::from("5m")));
        assert!(!same(&Value::from("4m"), &Value::from("5m")));
    }
}
