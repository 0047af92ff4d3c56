//! Shared helpers for the configuration tests.
#![allow(dead_code)]

use std::path::Path;

use postern_config::{ConfigError, Loaded, load_str};

/// A small valid file; tests append to it or replace lines.
pub const MINIMAL: &str = r#"data_dir = "/var/lib/postern"
hostname = "mx.example.com"

[[listener]]
name = "smtp"
address = "127.0.0.1:25"
kind = "smtp"

[relay]
accepted_domains = ["example.com"]
"#;

pub fn load(src: &str) -> Result<Loaded, ConfigError> {
    load_str(src, "postern.toml", Path::new("/etc/postern"))
}

/// The error's Display; panics if the text loads.
pub fn error(src: &str) -> String {
    match load(src) {
        Ok(_) => panic!("expected an error for:\n{src}"),
        Err(e) => e.to_string(),
    }
}

/// Warnings' Display; panics on an error.
pub fn warnings(src: &str) -> Vec<String> {
    match load(src) {
        Ok(l) => l.warnings.iter().map(ToString::to_string).collect(),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// MINIMAL followed by `extra`.
pub fn with(extra: &str) -> String {
    format!("{MINIMAL}{extra}")
}
