//! How the pickup folder works ([`PickupSettings`]), built by `postern-config`
//! from `[pickup]`.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the pickup folder works; built by `postern-config` from `[pickup]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickupSettings {
    /// Watch the folder at all. Default true.
    pub enabled: bool,
    /// The folder. Default `<data_dir>/pickup`.
    pub dir: PathBuf,
    /// Where malformed files go (`[delivery] badmail_dir`).
    pub badmail_dir: PathBuf,
    /// Time between scans. Default 1 s.
    pub interval: Duration,
    /// The largest file accepted, in octets (`[limits] max_message_size`).
    pub max_message_size: u64,
    /// Our name in the `Received:` header and generated `Message-ID:`s
    /// (`[delivery] hostname`).
    pub hostname: String,
    /// After the spool refused a message (disk full, poisoned), wait this long
    /// before trying again. Default 30 s.
    pub spool_retry: Duration,
}

impl PickupSettings {
    /// The defaults for a data directory.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            enabled: true,
            dir: data_dir.join("pickup"),
            badmail_dir: data_dir.join("badmail"),
            interval: Duration::from_secs(1),
            max_message_size: 25 * 1024 * 1024,
            hostname: "localhost".into(),
            spool_retry: Duration::from_secs(30),
        }
    }
}
