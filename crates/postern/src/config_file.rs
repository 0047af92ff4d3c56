//! Which configuration a command reads, the same way for every command:
//! `--config FILE` (or `POSTERN_CONFIG=FILE`), else the first of
//! `/etc/postern/postern.toml` and `./postern.toml` that exists, else the
//! embedded default (loopback only, data in `./postern-data`).
//!
//! Also the one way errors are printed: each `source` of an error chain once
//! (several error types already write their source into their own text, and
//! `{:#}` would repeat it).
//!
//! # Security
//! The file is operator input; `postern_config` checks it. A file found at a
//! default path is named in what the command prints, so nobody runs on a
//! configuration they did not mean.

use std::path::{Path, PathBuf};

use postern_config::{ConfigError, Loaded};

/// The system-wide default path.
pub(crate) const SYSTEM_PATH: &str = "/etc/postern/postern.toml";
/// The default path in the current directory.
pub(crate) const LOCAL_PATH: &str = "postern.toml";

/// How to point a command at another configuration, for messages.
pub(crate) const HOW_TO_CHOOSE: &str =
    "choose the configuration with --config FILE (or POSTERN_CONFIG=FILE)";

/// The file to read: `explicit`, else the first default path that exists;
/// `None` means the embedded default.
pub(crate) fn choose(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    [SYSTEM_PATH, LOCAL_PATH]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Loads the chosen configuration (see [`choose`]).
pub(crate) fn load(chosen: Option<&Path>) -> Result<Loaded, ConfigError> {
    if let Some(p) = chosen {
        postern_config::load_file(p)
    } else {
        postern_config::load_default(&postern_config::base_dir(None))
    }
}

/// For a command: the configuration `--config` (or the usual places)
/// names, loaded; its errors printed (`config check`'s format) and exit
/// status 2 otherwise.
pub(crate) fn load_for_command(explicit: Option<&Path>) -> Result<Loaded, std::process::ExitCode> {
    let chosen = choose(explicit);
    load(chosen.as_deref()).map_err(|e| {
        crate::config_cmd::print_errors(&e);
        std::process::ExitCode::from(2)
    })
}

/// An error and its causes, `: `-separated, each text once: a cause whose
/// text the message so far already contains is left out.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !part.is_empty() && !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// [`chain`] for an `anyhow::Error`.
pub(crate) fn chain_anyhow(e: &anyhow::Error) -> String {
    chain(AsRef::<dyn std::error::Error + 'static>::as_ref(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot bind 127.0.0.1:25: {source}")]
    struct Repeats {
        source: std::io::Error,
    }

    #[test]
    fn chain_names_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use");
        let e = anyhow::Error::new(Repeats { source: io }).context("starting listeners");
        assert_eq!(
            chain_anyhow(&e),
            "starting listeners: cannot bind 127.0.0.1:25: Address already in use"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(chain_anyhow(&plain), "outer: inner");
    }
}
