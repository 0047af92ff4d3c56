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

/// Longest socket path: `sun_path` is 108 bytes with its NUL (Linux `unix(7)`);
/// the server also binds a temporary name 16 bytes longer at most.
const MAX_SOCKET_PATH: usize = 90;

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
        s.socket = cx.base_dir.join(v.get_ref());
        let len = s.socket.as_os_str().len();
        if s.enabled && len > MAX_SOCKET_PATH {
            return Err(cx.error(
                v.span(),
                "admin.socket",
                format!(
                    "{} is {len} bytes long; a Unix socket path may have at most \
                     {MAX_SOCKET_PATH} here: choose a shorter path",
                    s.socket.display()
                ),
            ));
        }
    }
    Ok(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    const MINIMAL: &str = "data_dir = \"/var/lib/postern\"\nhostname = \"mx.example.com\"\n\n[[listener]]\nname = \"smtp\"\naddress = \"127.0.0.1:25\"\nkind = \"smtp\"\n\n[relay]\naccepted_domains = [\"example.com\"]\n";

    fn load(extra: &str) -> Result<crate::Loaded, crate::ConfigError> {
        crate::load_str(
            &format!("{MINIMAL}{extra}"),
            "postern.toml",
            Path::new("/etc/postern"),
        )
    }

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
            err(&format!("[admin]\nsocket = \"{long}\"\n"))
                .starts_with("postern.toml:12:10: admin.socket: /ddd"),
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
