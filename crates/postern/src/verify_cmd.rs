//! `postern tls verify DOMAIN`: IronPort's `tlsverify`, done better (see
//! `postern_diag::verify`). Prints each step as it happens; `--json` prints
//! the structured report on stdout (the steps then go to stderr).
//!
//! Exit codes: 0 every MX host and address passes the policy level, 1 at
//! least one does not (or nothing could be checked), 2 usage error (bad
//! `--mx`, unreadable `--ca-file`).
//!
//! # Security
//! Connects only to the domain's MX hosts (or the `--mx` host) and to
//! `mta-sts.<domain>`; sends EHLO, STARTTLS and QUIT, never mail or
//! credentials. `--ca-file` adds trust for this run only.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use postern_diag::verify::{self, Event, Level, VerifyOptions};
use postern_dns::{DnsSettings, DnssecMode, Resolver};
use postern_tls::client::{Roots, load_roots};

/// `postern tls verify` arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct TlsVerifyArgs {
    /// The mail domain to verify (the part after @).
    pub(crate) domain: String,
    /// Check this host instead of the domain's MX hosts: HOST, HOST:PORT or
    /// [IPv6]:PORT.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub(crate) mx: Option<String>,
    /// SMTP port of the MX hosts (also the TLSA port, _PORT._tcp).
    #[arg(long, default_value_t = 25)]
    pub(crate) port: u16,
    /// Level to check: none, opportunistic, opportunistic-strict, required,
    /// verify, dane, mta-sts. Default: the strongest the domain publishes,
    /// per MX host: dane (DNSSEC-authenticated TLSA), else mta-sts (a policy
    /// in enforce or testing mode), else verify (PKIX + MX host name).
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    pub(crate) policy: Option<Level>,
    /// Print the structured report as JSON on stdout (steps go to stderr).
    #[arg(long)]
    pub(crate) json: bool,
    /// DNS server to ask, IP or IP:PORT ([IPv6]:PORT); repeatable. Default:
    /// the system's (/etc/resolv.conf).
    #[arg(long = "server", value_name = "DNS_IP[:PORT]", value_parser = parse_server)]
    pub(crate) servers: Vec<SocketAddr>,
    /// Where "DNSSEC-authenticated" comes from: `ad` trusts the AD bit of the
    /// DNS server (use a validating resolver on loopback), `validate` checks
    /// signatures in-process, `off` never (DANE then never applies).
    #[arg(long, value_enum, default_value_t = DnssecArg::Ad)]
    pub(crate) dnssec: DnssecArg,
    /// PEM file of extra trusted CA certificates (a private CA).
    #[arg(long, value_name = "FILE")]
    pub(crate) ca_file: Option<PathBuf>,
    /// Trust only --ca-file, not the system's CA store.
    #[arg(long, requires = "ca_file")]
    pub(crate) no_system_roots: bool,
    /// Name sent in EHLO.
    #[arg(long, default_value = "postern-verify")]
    pub(crate) ehlo: String,
    /// Seconds to wait for connect, each SMTP reply and the TLS handshake.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub(crate) timeout: u64,
    /// Also show every SMTP line sent (>>>) and received (<<<).
    #[arg(long)]
    pub(crate) transcript: bool,
}

/// `--dnssec` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DnssecArg {
    Off,
    Ad,
    Validate,
}

impl DnssecArg {
    fn mode(self) -> DnssecMode {
        match self {
            DnssecArg::Off => DnssecMode::Off,
            DnssecArg::Ad => DnssecMode::TrustAdBit,
            DnssecArg::Validate => DnssecMode::Validate,
        }
    }
}

fn parse_level(s: &str) -> Result<Level, String> {
    s.parse::<Level>().map_err(|e| e.to_string())
}

/// `IP`, `IP:PORT` or `[IPv6]:PORT`; port 53 when absent.
fn parse_server(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = s.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("{s:?} is not IP, IP:PORT or [IPv6]:PORT"))
}

/// `HOST`, `HOST:PORT`, `[IPv6]:PORT`, `[IPv6]` or a bare IPv6 address.
fn parse_mx(s: &str) -> Result<(String, Option<u16>), String> {
    let bad = || format!("--mx {s:?}: use HOST, HOST:PORT or [IPv6]:PORT");
    let s = s.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(bad)?,
            ),
        };
        return Ok((host.to_owned(), port));
    }
    if s.parse::<IpAddr>().is_ok() {
        return Ok((s.to_owned(), None));
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.contains(':') => {
            let port = port.parse::<u16>().map_err(|_| bad())?;
            Ok((host.to_owned(), Some(port)))
        }
        Some(_) => Err(bad()),
        None => Ok((s.to_owned(), None)),
    }
}

pub(crate) fn run(args: &TlsVerifyArgs) -> ExitCode {
    let mut port = args.port;
    let mx = match args.mx.as_deref().map(parse_mx).transpose() {
        Ok(Some((host, p))) => {
            port = p.unwrap_or(port);
            Some(host)
        }
        Ok(None) => None,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let roots = match load_roots(&Roots {
        system: !args.no_system_roots,
        ca_file: args.ca_file.clone(),
    }) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let resolver = match Resolver::new(&DnsSettings {
        nameservers: args.servers.clone(),
        dnssec: args.dnssec.mode(),
        ..DnsSettings::default()
    }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let mut opts = VerifyOptions::new(args.domain.clone(), roots);
    opts.mx = mx;
    opts.port = port;
    opts.policy = args.policy;
    opts.helo_name.clone_from(&args.ehlo);
    opts.timeout = Duration::from_secs(args.timeout);
    opts.transcript = args.transcript;

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
    let json = args.json;
    let mut print = |e: &Event| {
        // Steps are printed as they happen; with --json, stdout is the report.
        if json {
            let _ = writeln!(std::io::stderr(), "{e}");
        } else {
            crate::out::outln!("{e}");
        }
    };
    let report = runtime.block_on(verify::verify(&resolver, &opts, &mut print));
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(j) => crate::out::outln!("{j}"),
            Err(e) => {
                eprintln!("error: cannot write JSON: {e}");
                return ExitCode::from(1);
            }
        }
    }
    if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mx_forms() {
        let ok = |s: &str, host: &str, port: Option<u16>| {
            assert_eq!(parse_mx(s), Ok((host.to_owned(), port)), "{s}");
        };
        ok("mx1.example.com", "mx1.example.com", None);
        ok("mx1.example.com:2525", "mx1.example.com", Some(2525));
        ok("192.0.2.10:25", "192.0.2.10", Some(25));
        ok("[2001:db8::1]:587", "2001:db8::1", Some(587));
        ok("[2001:db8::1]", "2001:db8::1", None);
        ok("2001:db8::1", "2001:db8::1", None);
        for bad in ["", "mx:port", "mx:99999", "[2001:db8::1", "[::1]x", ":25"] {
            assert!(parse_mx(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn levels_and_servers() {
        assert_eq!(parse_level("mta-sts"), Ok(Level::MtaSts));
        assert!(parse_level("encrypt").is_err());
        assert_eq!(
            parse_server("127.0.0.1"),
            Ok("127.0.0.1:53".parse().unwrap_or_else(|_| unreachable!()))
        );
        assert!(parse_server("dns.example").is_err());
    }
}
