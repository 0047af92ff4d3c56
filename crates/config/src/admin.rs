//! `[admin]`: the admin socket, from the file to `postern_admin::AdminSettings`.
//!
//! ```toml
//! [admin]
//! enabled = true                          # default
//! socket = "/var/lib/postern/admin.sock"  # default <data_dir>/admin.sock
//! ```
//!
//! # Security
//! Parses operator input. The socket's file permissions (created `0600`) are
//! the admin API's access control; the path is checked here only for length
//! (a Unix socket address holds 107 bytes), so the server fails at
//! `config check`, not at start.

use std::path::Path;

use postern_admin::AdminSettings;
use serde::Deserialize;
use toml::Spanned;

use crate::build::Ctx;
use crate::error::ConfigError;

/// `[admin]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawAdmin {
    pub enabled: Option<Spanned<bool>>,
    pub socket: Option<Spanned<String>>,
}

/// Builds the admin settings.
pub(crate) fn build(
    raw: Option<Spanned<RawAdmin>>,
    data_dir: &Path,
    data_dir_span: std::ops::Range<usize>,
    cx: &Ctx<'_>,
) -> Result<AdminSettings, ConfigError> {
    let mut s = AdminSettings::new(data_dir);
    let r = raw.map(Spanned::into_inner).unwrap_or_default();
    if let Some(v) = &r.enabled {
        s.enabled = *v.get_ref();
    }
    if let Some(v) = &r.socket {
        if v.get_ref().trim().is_empty() {
            return Err(cx.error(v.span(), "admin.socket", "must not be empty"));
        }
        s.socket = crate::build::resolve(cx.base_dir, v.get_ref());
    }
    // The same check as `serve` makes (postern_admin::check_socket_path),
    // for the default <data_dir>/admin.sock too.
    if s.enabled
        && let Err(e) = postern_admin::check_socket_path(&s.socket)
    {
        let (span, why) = match &r.socket {
            Some(v) => (v.span(), e.to_string()),
            None => (
                data_dir_span,
                format!("{e} (the default, <data_dir>/admin.sock; or a shorter data_dir)"),
            ),
        };
        return Err(cx.error(span, "admin.socket", why));
    }
    Ok(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::test_support::{MINIMAL, load};
    use std::path::Path;

    #[test]
    fn default_is_in_the_data_dir() {
        let c = load("").unwrap().config;
        assert!(c.admin.enabled);
        assert_eq!(c.admin.socket, Path::new("/var/lib/postern/admin.sock"));
    }

    #[test]
    fn keys() {
        let c = load("[admin]\nenabled = false\nsocket = \"run/a.sock\"\n")
            .unwrap()
            .config;
        assert!(!c.admin.enabled);
        assert_eq!(c.admin.socket, Path::new("/etc/postern/run/a.sock"));
    }

    #[test]
    fn errors_name_the_place() {
        let err = |extra: &str| load(extra).unwrap_err().to_string();
        assert_eq!(
            err("[admin]\nsocket = \"\"\n"),
            "postern.toml:12:10: admin.socket: must not be empty"
        );
        let long = format!("/{}/admin.sock", "d".repeat(100));
        assert!(
            err(&format!("[admin]\nsocket = \"{long}\"\n")).starts_with(&format!(
                "postern.toml:12:10: admin.socket: the admin socket path {long} is 112 bytes \
                 long; at most 95 fit"
            )),
        );
        // The server's own limit, to the byte: 95 fits, 96 does not.
        let fits = format!("/{}.sock", "d".repeat(89));
        assert_eq!(fits.len(), 95);
        assert!(load(&format!("[admin]\nsocket = \"{fits}\"\n")).is_ok());
        assert!(load(&format!("[admin]\nsocket = \"/d{fits}\"\n")).is_err());
        // The default path is checked as well.
        let deep = MINIMAL.replace("/var/lib/postern", &format!("/{}", "d".repeat(90)));
        let e = crate::load_str(&deep, "postern.toml", Path::new("/etc"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("postern.toml:1:12: admin.socket: the admin socket path /ddd"),
            "{e}"
        );
        assert_eq!(
            err("[admin]\nport = 8080\n"),
            "postern.toml:12:1: admin.port: unknown key; allowed: \"enabled\", \"socket\""
        );
        assert!(
            err("[admin]\nenabled = \"yes\"\n").starts_with("postern.toml:12:11: admin.enabled:")
        );
    }
}
