//! `[tracking]` settings, filled by crates/config.

use std::path::{Path, PathBuf};

/// What the tracking store does and where it lives.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrackingSettings {
    /// Index the mail log (the lead decides the default: off without a mail log).
    pub enabled: bool,
    /// The SQLite database; default `<data_dir>/tracking.db`.
    pub database: PathBuf,
    /// Events older than this many days are pruned; 0 keeps them forever.
    pub retention_days: u32,
    /// Record subjects (off by default: privacy).
    pub subjects: bool,
}

impl TrackingSettings {
    /// The defaults under `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            enabled: true,
            database: data_dir.join("tracking.db"),
            retention_days: 30,
            subjects: false,
        }
    }
}
