//! `AdminSettings`: where the admin socket lives and whether it is served;
//! `HttpSettings`: the authenticated admin HTTP listener on TCP.
//!
//! # Security
//! The socket's file permissions are the access control (see the crate
//! documentation): put it in a directory only the server's user can enter.

use std::path::{Path, PathBuf};

/// The admin API's settings (`[admin]` in postern.toml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSettings {
    /// Serve the admin socket. Default true. Without it, `postern queue` verbs
    /// cannot reach a running server (they refuse rather than race it).
    pub enabled: bool,
    /// The Unix socket. Default `<data_dir>/admin.sock`.
    pub socket: PathBuf,
}

impl AdminSettings {
    /// The defaults for a server whose data directory is `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            enabled: true,
            socket: data_dir.join("admin.sock"),
        }
    }
}

/// The admin HTTP listener's settings (`[admin]` HTTP keys in postern.toml;
/// see `docs/admin-http.md`).
///
/// # Security
/// `listen` off loopback requires `tls` (the listener refuses to start
/// otherwise): passwords, session cookies and tokens never cross a network in
/// clear text.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The TCP address to serve on; `None`: no TCP listener (the default).
    /// Documented example: `127.0.0.1:8025`.
    pub listen: Option<std::net::SocketAddr>,
    /// TLS for the listener (the server's certificate configuration). Required
    /// when `listen` is not a loopback address.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// Admin users (argon2id PHC hashes). Default `<data_dir>/admin-users.json` (0600).
    pub users_file: PathBuf,
    /// API tokens (SHA-256 of each secret). Default `<data_dir>/admin-tokens.json` (0600).
    pub tokens_file: PathBuf,
    /// A session unused this long ends. Default 30 minutes.
    pub session_idle: std::time::Duration,
    /// A session ends this long after login, used or not. Default 12 hours.
    pub session_max: std::time::Duration,
    /// Serve `/metrics` without authentication. Default false (a Bearer token
    /// or a session is needed).
    pub public_metrics: bool,
    /// Names the listener answers to besides IP literals and `localhost`
    /// (the `Host` check against DNS rebinding): the server's hostname,
    /// `[admin] http_names`, and the public URL's host.
    pub names: crate::http::HostNames,
    /// The URL browsers use when a reverse proxy ending TLS stands in front
    /// (`[admin] http_public_url`): its origin passes the Origin check, and an
    /// `https` one makes cookies `Secure` with the `__Host-` prefix.
    pub public_url: Option<crate::http::PublicUrl>,
    /// Reverse proxies whose `X-Forwarded-For` names the client
    /// (`[admin] http_trusted_proxies`); empty: the connection's peer is the
    /// client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl HttpSettings {
    /// The defaults for a server whose data directory is `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            listen: None,
            tls: None,
            users_file: data_dir.join("admin-users.json"),
            tokens_file: data_dir.join("admin-tokens.json"),
            session_idle: std::time::Duration::from_mins(30),
            session_max: std::time::Duration::from_hours(12),
            public_metrics: false,
            names: crate::http::HostNames::default(),
            public_url: None,
            trusted_proxies: Vec::new(),
        }
    }
}
