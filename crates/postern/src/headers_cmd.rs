//! `postern headers analyze FILE|-`: reads a saved message (or just its
//! headers, as pasted from a mail client) and prints the hop table, SPF/DKIM/
//! DMARC results, spam verdicts and anomalies (`postern_diag::headers`).
//! `--json` prints the same analysis for machines.
//!
//! Exit codes: 0 when the analysis was printed (anomalies are findings, not
//! failures), 2 when the input cannot be read or is empty.
//!
//! # Security
//! The message is untrusted input; the analyzer cleans every string it prints
//! of control characters. Reads at most [`MAX_INPUT`] bytes, so `-` on an
//! endless pipe cannot exhaust memory. Writes nothing but stdout/stderr.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use postern_diag::headers::{analyze, render_text};

/// Headers sit at the top of a message; anything past this is not needed.
const MAX_INPUT: u64 = 64 * 1024 * 1024;

/// Arguments of `postern headers analyze`.
#[derive(clap::Args, Debug)]
pub(crate) struct HeadersAnalyzeArgs {
    /// The message (.eml, or headers pasted into a file); `-` reads stdin.
    pub(crate) file: PathBuf,
    /// Print the analysis as JSON (times in RFC 3339 UTC, delays in seconds).
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn run(args: &HeadersAnalyzeArgs) -> ExitCode {
    let name = if is_stdin(&args.file) {
        "stdin".to_owned()
    } else {
        args.file.display().to_string()
    };
    let bytes = match read_input(&args.file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read {name}: {e}");
            return ExitCode::from(2);
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        eprintln!("error: {name} is empty: nothing to analyze");
        return ExitCode::from(2);
    }
    let analysis = analyze(&bytes);
    let text = if args.json {
        match serde_json::to_string_pretty(&analysis) {
            Ok(mut s) => {
                s.push('\n');
                s
            }
            Err(e) => {
                eprintln!("error: cannot encode the analysis as JSON: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        render_text(&analysis)
    };
    crate::out::out!("{text}");
    ExitCode::SUCCESS
}

fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

fn read_input(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    if is_stdin(path) {
        std::io::stdin()
            .lock()
            .take(MAX_INPUT)
            .read_to_end(&mut buf)?;
    } else {
        std::fs::File::open(path)?
            .take(MAX_INPUT)
            .read_to_end(&mut buf)?;
    }
    Ok(buf)
}
