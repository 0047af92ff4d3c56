//! `AdminSettings`: where the admin socket lives and whether it is served.
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
