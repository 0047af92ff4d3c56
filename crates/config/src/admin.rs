//! `[admin]`: the admin socket, from the file to `postern_admin::AdminSettings`.
//!
//! ```toml
//! [admin]
//! enabled = true                          # default
//! socket = "/var/lib/postern/admin.sock"  # default <data_dir>/admin.sock
//! http = "127.0.0.1:8025"                 # the web console and HTTP API; default: none
//! http_tls = false                        # default: false on loopback, true elsewhere
//! users_file = "admin-users.json"         # default <data_dir>/admin-users.json
//! tokens_file = "admin-tokens.json"       # default <data_dir>/admin-tokens.json
//! session_idle = "30m"                    # default
//! session_max = "12h"                     # default
//! public_metrics = false                  # default: /metrics needs a token or a session
//! http_names = ["console.example.com"]    # names browsers use, besides IP addresses,
//!                                         # localhost and `hostname` (DNS rebinding guard)
//! http_public_url = "https://console.example.com"  # behind a TLS-ending reverse proxy
//! http_trusted_proxies = ["127.0.0.1"]    # whose X-Forwarded-For names the client
//! ```
//!
//! The HTTP listener carries passwords and session cookies: on an address
//! other than loopback it must use TLS (the server's certificate), and
//! `http_tls = false` there is refused.
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
    pub http: Option<Spanned<String>>,
    pub http_tls: Option<Spanned<bool>>,
    pub users_file: Option<Spanned<String>>,
    pub tokens_file: Option<Spanned<String>>,
    pub session_idle: Option<Spanned<String>>,
    pub session_max: Option<Spanned<String>>,
    pub public_metrics: Option<Spanned<bool>>,
    pub http_names: Option<Spanned<Vec<Spanned<String>>>>,
    pub http_public_url: Option<Spanned<String>>,
    pub http_trusted_proxies: Option<Spanned<Vec<Spanned<String>>>>,
}

/// The admin HTTP listener's settings as configured (`[admin] http…`); the
/// binary adds the TLS configuration ([`AdminHttp::settings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminHttp {
    /// Where the web console and HTTP API listen; `None`: not served.
    pub listen: Option<std::net::SocketAddr>,
    /// Serve HTTPS with the server's certificate.
    pub tls: bool,
    /// Admin users (argon2id hashes), `0600`.
    pub users_file: std::path::PathBuf,
    /// API tokens (SHA-256 of each secret), `0600`.
    pub tokens_file: std::path::PathBuf,
    /// A session ends after this long without a request.
    pub session_idle: std::time::Duration,
    /// A session ends this long after the login, whatever happens.
    pub session_max: std::time::Duration,
    /// `/metrics` without a token or session.
    pub public_metrics: bool,
    /// Names the listener answers to besides IP literals and `localhost`:
    /// the top-level `hostname`, `http_names`, the public URL's host.
    pub names: Vec<String>,
    /// `http_public_url`: where a reverse proxy serves the console.
    pub public_url: Option<postern_admin::http::PublicUrl>,
    /// `http_trusted_proxies`: whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl AdminHttp {
    /// The defaults under `data_dir` (no listener).
    pub fn new(data_dir: &Path) -> Self {
        let d = postern_admin::HttpSettings::new(data_dir);
        Self {
            listen: d.listen,
            tls: false,
            users_file: d.users_file,
            tokens_file: d.tokens_file,
            session_idle: d.session_idle,
            session_max: d.session_max,
            public_metrics: d.public_metrics,
            names: Vec::new(),
            public_url: None,
            trusted_proxies: Vec::new(),
        }
    }

    /// The admin crate's settings, with `tls` when [`AdminHttp::tls`].
    pub fn settings(
        &self,
        tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    ) -> postern_admin::HttpSettings {
        postern_admin::HttpSettings {
            listen: self.listen,
            tls: if self.tls { tls } else { None },
            users_file: self.users_file.clone(),
            tokens_file: self.tokens_file.clone(),
            session_idle: self.session_idle,
            session_max: self.session_max,
            public_metrics: self.public_metrics,
            names: postern_admin::http::HostNames::new(&self.names),
            public_url: self.public_url.clone(),
            trusted_proxies: self.trusted_proxies.clone(),
        }
    }
}

/// `http_trusted_proxies` entries at most.
const MAX_TRUSTED_PROXIES: usize = 64;

/// Shortest and longest session lifetimes accepted.
const SESSION_MIN: std::time::Duration = std::time::Duration::from_mins(1);
const SESSION_MAX: std::time::Duration = std::time::Duration::from_hours(7 * 24);

/// Builds the admin HTTP settings.
pub(crate) fn build_http(
    raw: Option<&Spanned<RawAdmin>>,
    data_dir: &Path,
    hostname: Option<&str>,
    cx: &mut Ctx<'_>,
) -> Result<AdminHttp, ConfigError> {
    let mut s = AdminHttp::new(data_dir);
    s.names.extend(hostname.map(str::to_owned));
    let Some(r) = raw.map(Spanned::get_ref) else {
        return Ok(s);
    };
    if let Some(v) = &r.http {
        let addr: std::net::SocketAddr = v.get_ref().trim().parse().map_err(|_| {
            cx.error(
                v.span(),
                "admin.http",
                "not an address; allowed: IP:PORT, such as \"127.0.0.1:8025\" or \"[::1]:8025\"",
            )
        })?;
        s.listen = Some(addr);
        s.tls = !addr.ip().is_loopback();
    }
    if let Some(v) = &r.http_tls {
        s.tls = *v.get_ref();
        if let Some(addr) = s.listen
            && !s.tls
            && !addr.ip().is_loopback()
        {
            return Err(cx.error(
                v.span(),
                "admin.http_tls",
                format!(
                    "false on {addr}, which is not a loopback address: passwords and session \
                     cookies would cross the network in clear; allowed: true, or a loopback \
                     address in admin.http (then a TLS reverse proxy in front)"
                ),
            ));
        }
    }
    for (v, key, field) in [
        (&r.users_file, "admin.users_file", &mut s.users_file),
        (&r.tokens_file, "admin.tokens_file", &mut s.tokens_file),
    ] {
        if let Some(v) = v {
            if v.get_ref().trim().is_empty() {
                return Err(cx.error(v.span(), key, "must not be empty"));
            }
            *field = crate::build::resolve(cx.base_dir, v.get_ref());
        }
    }
    for (v, key, field) in [
        (&r.session_idle, "admin.session_idle", &mut s.session_idle),
        (&r.session_max, "admin.session_max", &mut s.session_max),
    ] {
        if let Some(v) = v {
            let d = crate::units::parse_duration(v.get_ref().trim())
                .map_err(|e| cx.error(v.span(), key, format!("{e}; allowed: 1m to 7d")))?;
            if !(SESSION_MIN..=SESSION_MAX).contains(&d) {
                return Err(cx.error(v.span(), key, "allowed: 1m to 7d"));
            }
            *field = d;
        }
    }
    if s.session_idle > s.session_max {
        let span = r
            .session_idle
            .as_ref()
            .or(r.session_max.as_ref())
            .map(Spanned::span);
        cx.warn(
            span,
            "admin.session_idle",
            "longer than admin.session_max: sessions end at session_max",
        );
    }
    if let Some(list) = &r.http_names {
        // Room for `hostname` and the public URL's host besides.
        let max = postern_admin::http::host::MAX_NAMES - 2;
        if list.get_ref().len() > max {
            return Err(cx.error(
                list.span(),
                "admin.http_names",
                format!("at most {max} names"),
            ));
        }
        for (i, v) in list.get_ref().iter().enumerate() {
            if !postern_admin::http::host::valid_name(v.get_ref()) {
                return Err(cx.error(
                    v.span(),
                    format!("admin.http_names[{i}]"),
                    "not a host name; allowed: DNS names such as \"console.example.com\" (IP \
                     addresses and localhost are always accepted)",
                ));
            }
            s.names.push(v.get_ref().trim().to_owned());
        }
    }
    if let Some(v) = &r.http_public_url {
        let u = postern_admin::http::PublicUrl::parse(v.get_ref()).map_err(|e| {
            cx.error(
                v.span(),
                "admin.http_public_url",
                format!(
                    "{e}; allowed: https://HOST[:PORT], such as \"https://console.example.com\""
                ),
            )
        })?;
        if !u.https() {
            cx.warn(
                Some(v.span()),
                "admin.http_public_url",
                "http://: passwords and session cookies cross the network between browsers and the \
                 proxy in clear; use https://",
            );
        }
        if u.host().parse::<std::net::IpAddr>().is_err() {
            s.names.push(u.host().to_owned());
        }
        s.public_url = Some(u);
    }
    if let Some(list) = &r.http_trusted_proxies {
        if list.get_ref().len() > MAX_TRUSTED_PROXIES {
            return Err(cx.error(
                list.span(),
                "admin.http_trusted_proxies",
                format!("at most {MAX_TRUSTED_PROXIES} entries"),
            ));
        }
        for (i, v) in list.get_ref().iter().enumerate() {
            let key = format!("admin.http_trusted_proxies[{i}]");
            let net = crate::build::parse_network(v.get_ref().trim())
                .map_err(|e| cx.error(v.span(), key.as_str(), e))?;
            if net.prefix_len() == 0 {
                return Err(cx.error(
                    v.span(),
                    key.as_str(),
                    "trusts every address: anyone could name any client in X-Forwarded-For and \
                     dodge the login limits; allowed: the proxy's own address or network",
                ));
            }
            s.trusted_proxies.push(net);
        }
    }
    if let Some(v) = &r.public_metrics {
        s.public_metrics = *v.get_ref();
        if s.public_metrics && s.listen.is_some_and(|a| !a.ip().is_loopback()) {
            cx.warn(
                Some(v.span()),
                "admin.public_metrics",
                "/metrics answers anyone who can reach the listener (queue sizes, sender groups, \
                 TLS failure causes); prefer a read-only token (`postern admin token create prometheus --read-only`)",
            );
        }
    }
    Ok(s)
}

/// Builds the admin settings.
pub(crate) fn build(
    raw: Option<&Spanned<RawAdmin>>,
    data_dir: &Path,
    data_dir_span: std::ops::Range<usize>,
    cx: &Ctx<'_>,
) -> Result<AdminSettings, ConfigError> {
    let mut s = AdminSettings::new(data_dir);
    let default = RawAdmin::default();
    let r = raw.map_or(&default, Spanned::get_ref);
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
    fn http_keys() {
        let c = load("").unwrap().config;
        assert_eq!(c.admin_http.listen, None);
        assert_eq!(
            c.admin_http.users_file,
            Path::new("/var/lib/postern/admin-users.json")
        );
        let c = load(
            "[admin]\nhttp = \"127.0.0.1:8025\"\nsession_idle = \"10m\"\ntokens_file = \"t.json\"\n",
        )
        .unwrap()
        .config;
        assert_eq!(c.admin_http.listen, Some("127.0.0.1:8025".parse().unwrap()));
        assert!(!c.admin_http.tls, "loopback: plain HTTP by default");
        assert_eq!(
            c.admin_http.session_idle,
            std::time::Duration::from_mins(10)
        );
        assert_eq!(c.admin_http.tokens_file, Path::new("/etc/postern/t.json"));
        let c = load("[admin]\nhttp = \"192.0.2.1:8443\"\n").unwrap().config;
        assert!(c.admin_http.tls, "elsewhere: TLS by default");
        let err = |extra: &str| load(extra).unwrap_err().to_string();
        let e = err("[admin]\nhttp = \"192.0.2.1:8443\"\nhttp_tls = false\n");
        assert!(
            e.starts_with("postern.toml:13:12: admin.http_tls: false on 192.0.2.1:8443"),
            "{e}"
        );
        let e = err("[admin]\nhttp = \"localhost\"\n");
        assert!(
            e.starts_with("postern.toml:12:8: admin.http: not an address"),
            "{e}"
        );
        let e = err("[admin]\nsession_max = \"30d\"\n");
        assert!(e.contains("admin.session_max: allowed: 1m to 7d"), "{e}");
        let e = err("[admin]\nhttp_names = [\"ok.example\", \"bad name\"]\n");
        assert!(
            e.starts_with("postern.toml:12:29: admin.http_names[1]: not a host name"),
            "{e}"
        );
        let e = err("[admin]\nhttp_public_url = \"https://c.example/console\"\n");
        assert!(
            e.starts_with("postern.toml:12:19: admin.http_public_url: only scheme, host and port"),
            "{e}"
        );
        let c = load(
            "[admin]\nhttp = \"127.0.0.1:8025\"\nhttp_names = [\"Console.Example.com\"]\n\
             http_public_url = \"https://proxy.example:8443/\"\n",
        )
        .unwrap()
        .config;
        let h = c.admin_http.settings(None);
        for ok in [
            "mx.example.com",
            "console.example.com:8025",
            "proxy.example:8443",
            "127.0.0.1:8025",
        ] {
            assert!(h.names.allows(ok), "{ok}: {:?}", h.names);
        }
        assert!(!h.names.allows("rebind.example"));
        assert_eq!(
            h.public_url
                .as_ref()
                .map(postern_admin::http::PublicUrl::origin)
                .as_deref(),
            Some("https://proxy.example:8443")
        );
        let c = load("[admin]\nhttp_trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]\n")
            .unwrap()
            .config;
        assert_eq!(c.admin_http.settings(None).trusted_proxies.len(), 2);
        let e = err("[admin]\nhttp_trusted_proxies = [\"0.0.0.0/0\"]\n");
        assert!(
            e.contains("admin.http_trusted_proxies[0]: trusts every address"),
            "{e}"
        );
        let e = err("[admin]\nhttp_trusted_proxies = [\"proxy.example\"]\n");
        assert!(e.contains("admin.http_trusted_proxies[0]"), "{e}");
        let l = load("[admin]\nhttp_public_url = \"http://proxy.example\"\n").unwrap();
        assert!(
            l.warnings
                .iter()
                .any(|w| w.to_string().contains("admin.http_public_url")),
            "{:?}",
            l.warnings
        );
        let l = load("[admin]\nhttp = \"192.0.2.1:8443\"\npublic_metrics = true\n").unwrap();
        assert!(
            l.warnings
                .iter()
                .any(|w| w.to_string().contains("admin.public_metrics")),
            "{:?}",
            l.warnings
        );
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
            "postern.toml:12:1: admin.port: unknown key; allowed: \"enabled\", \"socket\", \
             \"http\", \"http_tls\", \"users_file\", \"tokens_file\", \"session_idle\", \
             \"session_max\", \"public_metrics\", \"http_names\", \"http_public_url\", \
             \"http_trusted_proxies\""
        );
        assert!(
            err("[admin]\nenabled = \"yes\"\n").starts_with("postern.toml:12:11: admin.enabled:")
        );
    }
}
