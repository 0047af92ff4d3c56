//! `postern tls suites LIST`.
use std::process::ExitCode;

/// `postern tls suites` arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct SuitesArgs {
    /// Suites: names, hex or decimal ids, comma- or space-separated.
    #[arg(required = true, value_name = "SUITE")]
    pub(crate) suites: Vec<String>,
}

pub(crate) fn run(_args: &SuitesArgs) -> ExitCode {
    ExitCode::SUCCESS
}
