//! `postern tls scan HOST[:PORT]`: the graded TLS scanner of `postern-diag`
//! (protocols, suites in server order, groups, chain, grade A+…F) as a
//! command. Prints the text report, or JSON with `--json`; a progress bar on
//! stderr when it is a terminal.
//!
//! Exit codes: 0 scan done (and grade at least `--fail-below`, when given),
//! 1 the scan could not run or the grade is below `--fail-below`, 2 usage.
//!
//! # Security
//! Connects only to the named host (bounded connections, timeouts); sends no
//! mail and no credentials.

use std::process::ExitCode;
use std::time::Duration;

use postern_diag::scan::progress::TerminalProgress;
use postern_diag::scan::{self, Grade, ScanOptions, ScanTarget, StartTls};

/// STARTTLS preamble.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StartTlsArg {
    /// SMTP: banner, EHLO, STARTTLS, 220, then TLS (ports 25 and 587).
    Smtp,
    /// TLS from the first byte (port 465).
    None,
}

#[derive(clap::Args, Debug)]
pub(crate) struct TlsScanArgs {
    /// HOST or HOST:PORT ([IPv6]:PORT); port 25 when omitted.
    pub(crate) target: String,
    /// Plaintext preamble before TLS. Default: none for port 465, smtp otherwise.
    #[arg(long, value_enum)]
    pub(crate) starttls: Option<StartTlsArg>,
    /// server_name (SNI) to send. Default: the host when it is a name.
    #[arg(long, value_name = "NAME")]
    pub(crate) sni: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Most connections open at once (be polite to other people's servers).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub(crate) max_connections: u16,
    /// Seconds to wait for connect, each SMTP reply and each TLS answer.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=120))]
    pub(crate) timeout: u64,
    /// Milliseconds to pause before each connection (servers that rate-limit).
    #[arg(long, default_value_t = 0)]
    pub(crate) delay_ms: u64,
    /// Name sent in EHLO.
    #[arg(long, default_value = "postern-scan")]
    pub(crate) ehlo: String,
    /// Exit 1 when the grade is worse than this (A+, A, A-, B, C, F).
    #[arg(long, value_name = "GRADE", value_parser = parse_grade)]
    pub(crate) fail_below: Option<Grade>,
    /// No progress bar even on a terminal.
    #[arg(long)]
    pub(crate) no_progress: bool,
}

fn parse_grade(s: &str) -> Result<Grade, String> {
    Grade::parse(s).ok_or_else(|| format!("'{s}' is not a grade: use A+, A, A-, B, C or F"))
}

pub(crate) fn run(args: &TlsScanArgs) -> ExitCode {
    let starttls = args.starttls.map(|s| match s {
        StartTlsArg::Smtp => StartTls::Smtp,
        StartTlsArg::None => StartTls::None,
    });
    let mut target = match ScanTarget::parse(&args.target, starttls) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(sni) = &args.sni {
        target.sni = Some(sni.clone());
    }
    let opts = ScanOptions {
        max_connections: usize::from(args.max_connections),
        timeout: Duration::from_secs(args.timeout),
        delay: Duration::from_millis(args.delay_ms),
        ehlo_name: args.ehlo.clone(),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let bar = TerminalProgress::new(!args.no_progress);
    let result = runtime.block_on(scan::scan(&target, &opts, &|p| bar.update(&p)));
    bar.finish();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(j) => crate::out::outln!("{j}"),
            Err(e) => {
                eprintln!("error: cannot write JSON: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        crate::out::out!("{}", scan::render_text(&report));
    }
    match args.fail_below {
        Some(min) if report.grade > min => {
            eprintln!("grade {} is below the required {min}", report.grade);
            ExitCode::from(1)
        }
        _ => ExitCode::SUCCESS,
    }
}
