//! `postern cert check`: the certificate checks of `postern-diag`
//! (`certcheck`) as a command, on files (`--cert [--key] [--hostname]…`) or
//! on what a live server presents (`--remote HOST[:PORT] [--starttls
//! smtp|none]`). One PASS/WARN/FAIL line per check, or JSON with `--json`.
//!
//! Exit codes: 0 no FAIL, 1 at least one FAIL, 2 usage.
//!
//! # Security
//! Reads the named certificate and key files (the key only to compare public
//! keys; it is never printed). `--remote` sends EHLO and STARTTLS to the named
//! host and nothing else.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use postern_diag::certcheck::{self, RemoteTarget, Report};
use postern_diag::scan::{ScanTarget, StartTls};
use postern_smtpc::{Direction, Transcript};
use postern_tls::client::{Roots, load_roots};

/// Plaintext preamble before TLS for `--remote`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CertStartTls {
    /// SMTP: banner, EHLO, STARTTLS (ports 25 and 587).
    Smtp,
    /// Implicit TLS from the first byte (port 465).
    None,
}

/// `postern cert check` arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct CertCheckArgs {
    /// Certificate file (PEM): the leaf first, then the intermediates.
    #[arg(long, value_name = "FILE", conflicts_with = "remote")]
    pub(crate) cert: Option<PathBuf>,
    /// Private key file (PEM) that belongs to --cert.
    #[arg(
        long,
        value_name = "FILE",
        requires = "cert",
        conflicts_with = "remote"
    )]
    pub(crate) key: Option<PathBuf>,
    /// A hostname the certificate must cover (e.g. the MX name); repeatable.
    #[arg(long = "hostname", value_name = "NAME")]
    pub(crate) hostnames: Vec<String>,
    /// Check what a live server presents: HOST, HOST:PORT, [IPv6]:PORT (port 25 by default).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub(crate) remote: Option<String>,
    /// Preamble for --remote. Default: none for port 465, smtp otherwise.
    // `conflicts_with` as well: clap lets `requires` pass when the required
    // argument conflicts with one that is present (clap issue #4520).
    #[arg(long, value_enum, requires = "remote", conflicts_with = "cert")]
    pub(crate) starttls: Option<CertStartTls>,
    /// Name to send as SNI and to check the certificate against for
    /// --remote. Default: the host.
    #[arg(
        long,
        value_name = "NAME",
        requires = "remote",
        conflicts_with = "cert"
    )]
    pub(crate) name: Option<String>,
    /// Extra trusted CA certificates (PEM), e.g. a private CA; the system
    /// roots are always used.
    #[arg(long, value_name = "FILE")]
    pub(crate) ca: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Show the SMTP dialogue of --remote on stderr.
    #[arg(long, short)]
    pub(crate) verbose: bool,
    /// Seconds to wait for connect, each reply and the handshake (--remote).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub(crate) timeout: u64,
    /// Name sent in EHLO (--remote).
    #[arg(long, default_value = "postern-cert-check")]
    pub(crate) ehlo: String,
}

/// `postern cert check`. With neither `--cert` nor `--remote`, the global
/// `--config FILE` (or `POSTERN_CONFIG`) selects the configuration mode:
/// every certificate of the file, and for each TLS listener whether its
/// hostname and the PTR name of its listening IP are covered (the MailSite
/// rule: senders may check the name the IP resolves to).
pub(crate) fn run(config: Option<&Path>, args: &CertCheckArgs) -> ExitCode {
    let roots = match load_roots(&Roots {
        system: true,
        ca_file: args.ca.clone(),
    }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let now = time::OffsetDateTime::now_utc();
    if args.cert.is_none()
        && args.remote.is_none()
        && let Some(config) = config
    {
        return config_reports(config, &roots, now, args.json);
    }
    if args.cert.is_none() && args.remote.is_none() {
        eprintln!(
            "error: say what to check: --cert FILE [--key FILE], --remote HOST[:PORT], or --config FILE (every certificate of a postern.toml)"
        );
        return ExitCode::from(2);
    }
    let report = match (&args.cert, &args.remote) {
        (Some(cert), _) => {
            certcheck::check_local(cert, args.key.as_deref(), &args.hostnames, &roots, now)
        }
        (None, Some(remote)) => match remote_report(args, remote, roots, now) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        (None, None) => {
            eprintln!("error: give --cert FILE or --remote HOST[:PORT]");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = print_report(&report, args.json) {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    if report.has_failures() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn remote_report(
    args: &CertCheckArgs,
    remote: &str,
    roots: rustls::RootCertStore,
    now: time::OffsetDateTime,
) -> Result<Report, String> {
    let starttls = args.starttls.map(|s| match s {
        CertStartTls::Smtp => StartTls::Smtp,
        CertStartTls::None => StartTls::None,
    });
    let spec = ScanTarget::parse(remote, starttls).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let host = args.name.clone().unwrap_or_else(|| spec.host.clone());
    let addr = runtime
        .block_on(resolve(&spec.host, spec.port))
        .map_err(|e| format!("cannot resolve {}: {e}", spec.host))?;
    let target = RemoteTarget {
        addr,
        host,
        starttls: spec.starttls == StartTls::Smtp,
        hostnames: args.hostnames.clone(),
        helo_name: args.ehlo.clone(),
        timeout: Duration::from_secs(args.timeout),
    };
    let transcript: Option<Transcript> = args.verbose.then(|| {
        Box::new(|d: Direction, line: &str| eprintln!("{} {line}", d.marker())) as Transcript
    });
    Ok(runtime.block_on(certcheck::check_remote(
        &target,
        Arc::new(roots),
        transcript,
        now,
    )))
}

async fn resolve(host: &str, port: u16) -> std::io::Result<std::net::SocketAddr> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(std::net::SocketAddr::new(ip, port));
    }
    tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))
}

/// `--config FILE`: every configured certificate through the local checks, then
/// one report of the listeners (hostname and PTR coverage).
fn config_reports(
    path: &Path,
    roots: &rustls::RootCertStore,
    now: time::OffsetDateTime,
    json: bool,
) -> ExitCode {
    let loaded = match postern_config::load_file(path) {
        Ok(l) => l,
        Err(e) => {
            crate::config_cmd::print_errors(&e);
            return ExitCode::from(2);
        }
    };
    let cfg = &loaded.config;
    let mut reports: Vec<Report> = cfg
        .server
        .tls
        .certificates
        .iter()
        .map(|c| certcheck::check_local(&c.cert_path, Some(&c.key_path), &[], roots, now))
        .collect();
    let store = postern_tls::certs::load(&cfg.server.tls.certificates, now)
        .ok()
        .map(|l| l.store);
    reports.push(listener_report(cfg, store.as_ref()));
    let mut failed = false;
    for r in &reports {
        if let Err(e) = print_report(r, json) {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
        failed |= r.has_failures();
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Hostname and PTR coverage per TLS listener.
fn listener_report(cfg: &postern_config::Config, store: Option<&postern_tls::CertStore>) -> Report {
    use postern_diag::certcheck::{Check, Status};
    let mut report = Report {
        target: format!("listeners of {}", cfg.source),
        tls: None,
        chain: Vec::new(),
        checks: Vec::new(),
    };
    let mut push = |id: &'static str, status: Status, message: String| {
        report.checks.push(Check {
            id,
            status,
            message,
        });
    };
    let Some(store) = store else {
        push(
            "certificates",
            Status::Warn,
            "no usable certificate configured (a self-signed one is generated at start); see the reports above".into(),
        );
        return report;
    };
    let resolver = postern_dns::Resolver::new(&cfg.dns);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    for l in &cfg.server.listeners {
        let uses_tls = l.kind == postern_smtpd::ListenerKind::Submissions
            || l.tls != postern_smtpd::TlsMode::Off;
        if !uses_tls {
            continue;
        }
        if store.covers(&l.hostname) {
            push(
                "hostname",
                Status::Pass,
                format!("listener {}: hostname {} is covered", l.name, l.hostname),
            );
        } else {
            push(
                "hostname",
                Status::Fail,
                format!(
                    "listener {}: No certificates were found matching the Subject '{}': add a certificate for it or change the listener's hostname",
                    l.name, l.hostname
                ),
            );
        }
        let ip = l.addr.ip();
        if ip.is_unspecified() {
            push(
                "ptr",
                Status::Warn,
                format!(
                    "listener {}: listens on every address ({}); the PTR rule cannot be checked: run this with a listener bound to the public IP, or check `postern dns` for it",
                    l.name, l.addr
                ),
            );
            continue;
        }
        let names = match (&resolver, &runtime) {
            (Ok(r), Ok(rt)) => rt.block_on(r.ptr(ip)).map_err(|e| e.to_string()),
            (Err(e), _) => Err(e.to_string()),
            (_, Err(e)) => Err(e.to_string()),
        };
        match names {
            Ok(names) if names.is_empty() => push(
                "ptr",
                Status::Warn,
                format!(
                    "listener {}: {ip} has no PTR record; many receivers distrust such senders, and the certificate cannot be checked against it",
                    l.name
                ),
            ),
            Ok(names) => {
                for n in names {
                    if store.covers(&n) {
                        push(
                            "ptr",
                            Status::Pass,
                            format!(
                                "listener {}: PTR of {ip} is {n}, covered by the certificate",
                                l.name
                            ),
                        );
                    } else {
                        push(
                            "ptr",
                            Status::Warn,
                            format!(
                                "listener {}: PTR of {ip} is {n}, which no certificate covers; peers that check the name {ip} resolves to will refuse it: add {n} to a certificate's subjectAltName",
                                l.name
                            ),
                        );
                    }
                }
            }
            Err(e) => push(
                "ptr",
                Status::Warn,
                format!("listener {}: PTR lookup for {ip} failed: {e}", l.name),
            ),
        }
    }
    report
}

fn print_report(report: &Report, json: bool) -> Result<(), String> {
    if json {
        let text =
            serde_json::to_string_pretty(report).map_err(|e| format!("cannot write JSON: {e}"))?;
        crate::out::outln!("{text}");
    } else {
        crate::out::out!("{}", report.to_text());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> Result<CertCheckArgs, clap::Error> {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Wrap {
            #[command(flatten)]
            check: CertCheckArgs,
        }
        let mut all = vec!["check"];
        all.extend_from_slice(argv);
        Wrap::try_parse_from(all).map(|w| w.check)
    }

    #[test]
    fn argument_rules() {
        assert!(parse(&["--cert", "a.pem", "--key", "a.key", "--hostname", "mx"]).is_ok());
        assert!(parse(&["--remote", "mx.example.com:465", "--starttls", "none"]).is_ok());
        // Neither --cert nor --remote: the configuration mode (global
        // --config), refused in `run` when no file is given.
        assert!(parse(&[]).is_ok());
        assert!(parse(&["--cert", "a", "--remote", "b"]).is_err());
        assert!(
            parse(&["--key", "a.key", "--remote", "b"]).is_err(),
            "--key needs --cert"
        );
        assert!(parse(&["--cert", "a", "--starttls", "smtp"]).is_err());
        assert!(parse(&["--cert", "a", "--name", "mx"]).is_err());
        assert!(
            parse(&["--starttls", "smtp"]).is_err(),
            "--starttls needs --remote"
        );
    }
}
