//! A progress bar on stderr for `postern tls scan`, shown only when stderr is a
//! terminal (never in pipes, CI logs or `--json` output).
//!
//! # Security
//! Prints only scan step names and counts.

use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::ScanProgress;

/// The bar; a no-op when stderr is not a terminal.
#[derive(Debug)]
pub struct TerminalProgress {
    bar: Option<ProgressBar>,
}

impl TerminalProgress {
    /// A bar when stderr is a terminal and `enabled`.
    pub fn new(enabled: bool) -> Self {
        if !enabled || !std::io::stderr().is_terminal() {
            return Self { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(8), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{spinner} [{bar:24}] {pos}/{len} steps, {prefix} connections  {wide_msg}",
        )
        .map_or_else(
            |_| ProgressStyle::default_bar(),
            |s| s.progress_chars("=> "),
        );
        bar.set_style(style);
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Self { bar: Some(bar) }
    }

    /// Feeds one progress event (use as the scan's callback).
    pub fn update(&self, p: &ScanProgress) {
        if let Some(bar) = &self.bar {
            bar.set_length(u64::from(p.total));
            bar.set_position(u64::from(p.done));
            bar.set_prefix(p.connections.to_string());
            bar.set_message(p.message.clone());
        }
    }

    /// Removes the bar before the report is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
