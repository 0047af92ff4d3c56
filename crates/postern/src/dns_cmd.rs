//! `postern dns mx DOMAIN`: the `dig mx` / `nslookup -type=mx` of a mail
//! admin. Prints each MX with its preference and addresses (A and AAAA),
//! says plainly when the domain publishes a null MX or has no MX at all
//! (implicit MX), and whether DNSSEC vouches for the answer.
//!
//! Lookups and printing are apart: [`render_text`] and [`render_json`] are
//! pure functions over an [`MxReport`], tested without DNS.
//!
//! # Security
//! The domain comes from the command line; answers come from the network and
//! are printed as data (names and addresses only, already parsed by hickory).
//!
//! # Standards
//! RFC 5321 §5.1 (MX order, implicit MX), RFC 7505 (null MX), RFC 6840 §5.8
//! (AD bit).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use postern_dns::{AddrLookup, DnsError, DnsSettings, DnssecMode, MxKind, MxLookup, Resolver};

/// `postern dns mx` arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct DnsMxArgs {
    /// The mail domain to look up (the part after @).
    pub(crate) domain: String,
    /// Name server to ask, IP or IP:PORT ([IPv6]:PORT); repeatable.
    /// Default: the system's (/etc/resolv.conf).
    #[arg(long = "server", value_name = "IP[:PORT]", value_parser = parse_server)]
    pub(crate) servers: Vec<SocketAddr>,
    /// DNSSEC status: `ad` trusts the AD bit of the name server (use a
    /// validating resolver on loopback), `validate` checks signatures
    /// in-process, `off` does neither.
    #[arg(long, value_enum, default_value_t = DnssecArg::Ad)]
    pub(crate) dnssec: DnssecArg,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
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

/// Where the DNSSEC verdict came from, for the status line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DnssecSource {
    pub(crate) mode: DnssecMode,
    /// Whether the resolver could report "authenticated" at all.
    pub(crate) can_authenticate: bool,
    /// The name servers asked.
    pub(crate) servers: Vec<SocketAddr>,
}

/// Everything printed: the MX lookup and, per host (same order), its
/// address lookup.
#[derive(Clone, Debug)]
pub(crate) struct MxReport {
    pub(crate) lookup: MxLookup,
    pub(crate) addresses: Vec<Result<AddrLookup, DnsError>>,
    pub(crate) dnssec: DnssecSource,
}

pub(crate) fn run(args: &DnsMxArgs) -> ExitCode {
    let settings = DnsSettings {
        nameservers: args.servers.clone(),
        dnssec: args.dnssec.mode(),
        ..DnsSettings::default()
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
    let outcome = runtime.block_on(lookup(&settings, &args.domain));
    match outcome {
        Ok(report) => {
            if args.json {
                crate::out::outln!("{}", render_json(&report));
            } else {
                crate::out::out!("{}", render_text(&report));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if args.json {
                crate::out::outln!("{}", render_error_json(&args.domain, &e));
            } else {
                eprintln!("error: {e}");
                if e.is_transient() {
                    eprintln!(
                        "(a temporary failure: mail to this domain would be deferred, not bounced)"
                    );
                }
            }
            match e {
                DnsError::InvalidName { .. } => ExitCode::from(2),
                _ => ExitCode::from(1),
            }
        }
    }
}

async fn lookup(settings: &DnsSettings, domain: &str) -> Result<MxReport, DnsError> {
    let resolver = Resolver::new(settings)?;
    let lookup = resolver.mx(domain).await?;
    let mut addresses = Vec::with_capacity(lookup.hosts.len());
    for host in &lookup.hosts {
        addresses.push(resolver.addresses(&host.exchange).await);
    }
    Ok(MxReport {
        lookup,
        addresses,
        dnssec: DnssecSource {
            mode: resolver.dnssec_mode(),
            can_authenticate: resolver.can_authenticate(),
            servers: resolver.nameservers().to_vec(),
        },
    })
}

fn servers_text(servers: &[SocketAddr]) -> String {
    servers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The DNSSEC status in words.
pub(crate) fn dnssec_text(source: &DnssecSource, authenticated: bool) -> String {
    let servers = servers_text(&source.servers);
    match source.mode {
        DnssecMode::Off => "not checked (--dnssec off)".to_owned(),
        DnssecMode::TrustAdBit if !source.can_authenticate => format!(
            "not authenticated: the system name servers ({servers}) are not on loopback, so their AD bit is not trusted; \
             ask a validating resolver with --server 127.0.0.1, or use --dnssec validate"
        ),
        DnssecMode::TrustAdBit if authenticated => {
            format!("authenticated (AD bit from {servers})")
        }
        DnssecMode::TrustAdBit => format!(
            "not authenticated (no AD bit from {servers}: the zone is unsigned, or the server does not validate)"
        ),
        DnssecMode::Validate if authenticated => {
            "authenticated (signatures validated in-process)".to_owned()
        }
        DnssecMode::Validate => {
            "not authenticated (validated in-process: the zone is not signed)".to_owned()
        }
    }
}

/// Host indices in display order: preference, then name (the lookup's own
/// order shuffles equal preferences).
fn display_order(lookup: &MxLookup) -> Vec<usize> {
    let mut order: Vec<usize> = (0..lookup.hosts.len()).collect();
    order.sort_by(|&a, &b| {
        let (ha, hb) = (&lookup.hosts[a], &lookup.hosts[b]);
        ha.preference
            .cmp(&hb.preference)
            .then_with(|| ha.exchange.cmp(&hb.exchange))
    });
    order
}

fn addresses_text(result: Option<&Result<AddrLookup, DnsError>>) -> String {
    match result {
        Some(Ok(a)) => a
            .addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        Some(Err(e)) => format!("no addresses: {e}"),
        None => "addresses not looked up".to_owned(),
    }
}

/// The text report.
pub(crate) fn render_text(report: &MxReport) -> String {
    let l = &report.lookup;
    let mut out = String::new();
    let status = dnssec_text(&report.dnssec, l.authenticated);
    match l.kind {
        MxKind::NullMx => {
            let _ = writeln!(
                out,
                "{} publishes a null MX (RFC 7505): it accepts no mail.",
                l.domain
            );
            let _ = writeln!(out, "DNSSEC: {status}");
            return out;
        }
        MxKind::Implicit => {
            let _ = writeln!(
                out,
                "{} has no MX records: mail goes to the domain's own addresses (implicit MX, RFC 5321 §5.1).",
                l.domain
            );
        }
        MxKind::Mx => {
            let n = l.hosts.len();
            let _ = writeln!(
                out,
                "{} has {n} MX record{}:",
                l.domain,
                if n == 1 { "" } else { "s" }
            );
        }
    }
    let width = l.hosts.iter().map(|h| h.exchange.len()).max().unwrap_or(0);
    for i in display_order(l) {
        let host = &l.hosts[i];
        let addrs = addresses_text(report.addresses.get(i));
        let _ = writeln!(
            out,
            "  {:>5}  {:<width$}  {addrs}",
            host.preference, host.exchange
        );
    }
    let mut prefs: Vec<u16> = l.hosts.iter().map(|h| h.preference).collect();
    prefs.sort_unstable();
    if prefs.windows(2).any(|w| w[0] == w[1]) {
        let _ = writeln!(
            out,
            "Hosts with equal preference are tried in random order (RFC 5321 §5.1)."
        );
    }
    let _ = writeln!(out, "DNSSEC: {status}");
    out
}

fn kind_name(kind: MxKind) -> &'static str {
    match kind {
        MxKind::Mx => "mx",
        MxKind::NullMx => "null-mx",
        MxKind::Implicit => "implicit",
    }
}

/// The JSON report (one object).
pub(crate) fn render_json(report: &MxReport) -> serde_json::Value {
    let l = &report.lookup;
    let hosts: Vec<serde_json::Value> = display_order(l)
        .into_iter()
        .map(|i| {
            let host = &l.hosts[i];
            let (addresses, authenticated, error) = match report.addresses.get(i) {
                Some(Ok(a)) => (
                    a.addrs.iter().map(ToString::to_string).collect(),
                    a.authenticated,
                    None,
                ),
                Some(Err(e)) => (Vec::new(), false, Some(e.to_string())),
                None => (Vec::new(), false, None),
            };
            serde_json::json!({
                "preference": host.preference,
                "exchange": host.exchange,
                "addresses": addresses,
                "authenticated": authenticated,
                "error": error,
            })
        })
        .collect();
    serde_json::json!({
        "domain": l.domain,
        "kind": kind_name(l.kind),
        "accepts_mail": l.kind != MxKind::NullMx,
        "hosts": hosts,
        "authenticated": l.authenticated,
        "dnssec": {
            "mode": report.dnssec.mode,
            "servers": report.dnssec.servers.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "status": dnssec_text(&report.dnssec, l.authenticated),
        },
    })
}

fn render_error_json(domain: &str, e: &DnsError) -> serde_json::Value {
    serde_json::json!({
        "domain": domain,
        "error": e.to_string(),
        "transient": e.is_transient(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_dns::MxHost;

    fn source(mode: DnssecMode, can_authenticate: bool) -> DnssecSource {
        DnssecSource {
            mode,
            can_authenticate,
            servers: vec!["127.0.0.1:53".parse().unwrap()],
        }
    }

    fn host(preference: u16, exchange: &str) -> MxHost {
        MxHost {
            preference,
            exchange: exchange.to_owned(),
        }
    }

    fn addrs(host: &str, list: &[&str]) -> AddrLookup {
        AddrLookup {
            host: host.to_owned(),
            addrs: list.iter().map(|a| a.parse().unwrap()).collect(),
            authenticated: false,
        }
    }

    fn report(kind: MxKind, hosts: Vec<MxHost>, authenticated: bool) -> MxReport {
        MxReport {
            lookup: MxLookup {
                domain: "example.com".into(),
                kind,
                hosts,
                authenticated,
            },
            addresses: Vec::new(),
            dnssec: source(DnssecMode::TrustAdBit, true),
        }
    }

    #[test]
    fn mx_list_with_addresses_sorted_for_display() {
        let mut r = report(
            MxKind::Mx,
            vec![
                host(20, "backup.example.com"),
                host(10, "mx2.example.com"),
                host(10, "mx1.example.com"),
            ],
            true,
        );
        r.addresses = vec![
            Err(DnsError::NoRecords {
                name: "backup.example.com".into(),
                rtype: "A/AAAA",
            }),
            Ok(addrs("mx2.example.com", &["192.0.2.2"])),
            Ok(addrs("mx1.example.com", &["192.0.2.1", "2001:db8::1"])),
        ];
        let text = render_text(&r);
        let expected = "\
example.com has 3 MX records:
     10  mx1.example.com     192.0.2.1, 2001:db8::1
     10  mx2.example.com     192.0.2.2
     20  backup.example.com  no addresses: backup.example.com: the name exists but has no A/AAAA records
Hosts with equal preference are tried in random order (RFC 5321 §5.1).
DNSSEC: authenticated (AD bit from 127.0.0.1:53)
";
        assert_eq!(text, expected);
    }

    #[test]
    fn null_mx_says_no_mail() {
        let text = render_text(&report(MxKind::NullMx, vec![], false));
        assert!(
            text.starts_with("example.com publishes a null MX (RFC 7505): it accepts no mail.\n"),
            "{text}"
        );
        assert!(text.contains("DNSSEC: not authenticated (no AD bit from 127.0.0.1:53"));
        let json = render_json(&report(MxKind::NullMx, vec![], false));
        assert_eq!(json["kind"], "null-mx");
        assert_eq!(json["accepts_mail"], false);
    }

    #[test]
    fn implicit_mx_is_explained() {
        let mut r = report(MxKind::Implicit, vec![host(0, "example.com")], false);
        r.addresses = vec![Ok(addrs("example.com", &["192.0.2.9"]))];
        let text = render_text(&r);
        assert!(text.contains("has no MX records"), "{text}");
        assert!(text.contains("implicit MX"), "{text}");
        assert!(text.contains("      0  example.com  192.0.2.9\n"), "{text}");
        assert!(!text.contains("random order"));
    }

    #[test]
    fn dnssec_status_per_mode() {
        assert_eq!(
            dnssec_text(&source(DnssecMode::Off, false), false),
            "not checked (--dnssec off)"
        );
        assert_eq!(
            dnssec_text(&source(DnssecMode::TrustAdBit, true), true),
            "authenticated (AD bit from 127.0.0.1:53)"
        );
        assert!(
            dnssec_text(&source(DnssecMode::TrustAdBit, false), false).contains("not on loopback")
        );
        assert_eq!(
            dnssec_text(&source(DnssecMode::Validate, true), true),
            "authenticated (signatures validated in-process)"
        );
    }

    #[test]
    fn json_report() {
        let mut r = report(MxKind::Mx, vec![host(10, "mx.example.com")], true);
        r.addresses = vec![Ok(addrs("mx.example.com", &["192.0.2.1"]))];
        let j = render_json(&r);
        assert_eq!(j["domain"], "example.com");
        assert_eq!(j["kind"], "mx");
        assert_eq!(j["authenticated"], true);
        assert_eq!(j["dnssec"]["mode"], "trust-ad-bit");
        assert_eq!(j["hosts"][0]["exchange"], "mx.example.com");
        assert_eq!(j["hosts"][0]["preference"], 10);
        assert_eq!(j["hosts"][0]["addresses"][0], "192.0.2.1");
        assert!(j["hosts"][0]["error"].is_null());
        let e = render_error_json(
            "x.example",
            &DnsError::ServFail {
                name: "x.example".into(),
            },
        );
        assert_eq!(e["transient"], true);
    }

    #[test]
    fn server_argument_forms() {
        assert_eq!(
            parse_server("127.0.0.1").unwrap(),
            "127.0.0.1:53".parse().unwrap()
        );
        assert_eq!(
            parse_server("127.0.0.1:5353").unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(parse_server("::1").unwrap(), "[::1]:53".parse().unwrap());
        assert_eq!(
            parse_server("[::1]:5300").unwrap(),
            "[::1]:5300".parse().unwrap()
        );
        assert!(parse_server("dns.example").is_err());
    }

    /// End to end through the resolver, against the fake DNS.
    #[test]
    fn lookup_against_fake_dns() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let fake = postern_testkit::FakeDns::start().await;
            fake.add_mx("example.com", 10, "mx.example.com")
                .add_a("mx.example.com", [192, 0, 2, 1])
                .set_authentic("example.com", true);
            let settings = DnsSettings {
                nameservers: fake.nameservers(),
                ..DnsSettings::default()
            };
            let report = lookup(&settings, "example.com").await.unwrap();
            let text = render_text(&report);
            assert!(text.contains("mx.example.com  192.0.2.1"), "{text}");
            assert!(
                text.contains(&format!(
                    "DNSSEC: authenticated (AD bit from {})",
                    fake.addr()
                )),
                "{text}"
            );
            assert!(matches!(
                lookup(&settings, "nowhere.example").await,
                Err(DnsError::NxDomain { .. })
            ));
        });
    }
}
