//! `postern tls suites LIST…`: explains a cipher-suite list copied from
//! another server (names, hex or decimal ids; MailSite's decimal `0xCxx`
//! form too) the way the configuration check does: each suite with its
//! name, whether Postern can use it and why not, the closest suite it can,
//! and a `cipher_suites = [...]` line to paste into postern.toml.
//!
//! Exit status: 0 when every entry can be used as written, 1 otherwise.
//!
//! # Security
//! Reads operator input only; nothing is connected to.

use std::process::ExitCode;

use postern_tls::suites;

use crate::out::{out, outln};

/// `postern tls suites` arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct SuitesArgs {
    /// Suites: IANA or OpenSSL names, hex ids (0xc030, 0xC0,0x30) or decimal
    /// ids (49200), separated by commas, colons or spaces
    /// (`159,158,3112,3111`).
    #[arg(required = true, value_name = "SUITES")]
    pub(crate) suites: Vec<String>,
    /// Only TLS 1.2 is enabled (`max_version = "1.2"`): the line to paste
    /// gets no TLS 1.3 suites.
    #[arg(long)]
    pub(crate) tls12_only: bool,
}

pub(crate) fn run(args: &SuitesArgs) -> ExitCode {
    let items: Vec<String> = args
        .suites
        .iter()
        .flat_map(|s| suites::split_list(s))
        .collect();
    let explained = suites::explain_list(&items, !args.tls12_only);
    out!("{}\n", explained.render(""));
    let bad = explained.problems();
    if bad == 0 {
        outln!(
            "all {} suites can be used as written",
            explained.entries.len()
        );
        ExitCode::SUCCESS
    } else {
        outln!(
            "{bad} of {} suites cannot be used as written",
            explained.entries.len()
        );
        ExitCode::from(1)
    }
}
