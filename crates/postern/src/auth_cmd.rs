//! `postern auth check FILE|-`: re-verifies a saved message offline (no
//! server): SPF (HELO and MAIL FROM), every DKIM signature, ARC and DMARC,
//! one verdict per line with its domain, selector and reason, then the
//! `Authentication-Results:` field we would add. Pairs with `postern
//! headers analyze`, which shows what *other* systems recorded.
//!
//! The SMTP facts come from the options (`--ip`, `--helo`, `--mail-from`);
//! when absent they are taken from the topmost `Received:` field (client
//! `[ip]` and `from` name) and `Return-Path:`, and the output says so.
//! Without any client IP, SPF is `none` ("no client IP given").
//!
//! Exit 0 when DMARC did not fail, 1 when it failed, 2 for usage errors
//! (unreadable file, bad resolver settings).
//!
//! # Security
//! Reads at most 64 MiB. DNS answers and message text are printed through
//! the verdicts, whose reasons are plain text; nothing is executed.

use std::io::Read as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use postern_auth::verify::{
    AuthResults, DmarcResult, SpfVerdict, SpfVerdicts, Verifier, VerifierSettings, VerifyInput,
};

const MAX_INPUT: u64 = 64 * 1024 * 1024;

/// `postern auth check` arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct AuthCheckArgs {
    /// The message file (as received: headers and body); `-` reads stdin.
    /// Bare LF line ends become CRLF.
    pub(crate) file: PathBuf,
    /// The client's IP address (default: the `[ip]` of the topmost Received field).
    #[arg(long)]
    pub(crate) ip: Option<IpAddr>,
    /// The HELO/EHLO name (default: the `from` name of the topmost Received field).
    #[arg(long)]
    pub(crate) helo: Option<String>,
    /// The MAIL FROM address, `""` for `<>` (default: the Return-Path field).
    #[arg(long, value_name = "ADDR")]
    pub(crate) mail_from: Option<String>,
    /// A DNS server to ask (repeatable); default: `[dns] nameservers` of
    /// `--config` when given, else /etc/resolv.conf.
    #[arg(long, value_name = "IP:PORT")]
    pub(crate) nameserver: Vec<SocketAddr>,
    /// The authserv-id for the Authentication-Results field (default: `hostname` of the configuration).
    #[arg(long)]
    pub(crate) authserv_id: Option<String>,
    /// A public-suffix list file instead of the one shipped in the binary.
    #[arg(long, value_name = "FILE")]
    pub(crate) public_suffix_list: Option<PathBuf>,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    pub(crate) json: bool,
}

fn read_input(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    if path.as_os_str() == "-" {
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

/// The unfolded value of the first header field named `name`.
fn first_field(message: &[u8], name: &str) -> Option<String> {
    let (headers, _) = postern_auth::canon::split_message(message);
    let text = String::from_utf8_lossy(headers);
    let mut value: Option<String> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.trim().eq_ignore_ascii_case(name)
        {
            value = Some(v.trim().to_owned());
        }
    }
    value
}

/// The client of the topmost Received field: (`[ip]`, `from` name).
fn received_client(message: &[u8]) -> (Option<IpAddr>, Option<String>) {
    let Some(received) = first_field(message, "Received") else {
        return (None, None);
    };
    // Only the `from` clause: up to " by ".
    let from_clause = received
        .to_ascii_lowercase()
        .find(" by ")
        .map_or(received.as_str(), |i| &received[..i]);
    let helo = from_clause
        .strip_prefix("from ")
        .and_then(|rest| rest.split_whitespace().next())
        .map(|h| h.trim_matches(|c| c == '(' || c == ')').to_owned())
        .filter(|h| !h.is_empty());
    let ip = from_clause.split('[').skip(1).find_map(|part| {
        let inside = part.split(']').next()?;
        let inside = inside
            .strip_prefix("IPv6:")
            .or_else(|| inside.strip_prefix("ipv6:"))
            .unwrap_or(inside);
        inside.parse::<IpAddr>().ok()
    });
    (ip, helo)
}

/// The Return-Path address (without angle brackets).
fn return_path(message: &[u8]) -> Option<String> {
    let v = first_field(message, "Return-Path")?;
    let v = v.trim();
    let v = v
        .strip_prefix('<')
        .and_then(|v| v.split('>').next())
        .unwrap_or(v);
    Some(v.to_owned())
}

fn nameservers(config: Option<&Path>, args: &AuthCheckArgs) -> Result<Vec<SocketAddr>, ExitCode> {
    if !args.nameserver.is_empty() {
        return Ok(args.nameserver.clone());
    }
    let Some(path) = config else {
        return Ok(Vec::new());
    };
    match postern_config::load_file(path) {
        Ok(loaded) => Ok(loaded.config.dns.nameservers),
        Err(e) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(2))
        }
    }
}

fn authserv_id(config: Option<&Path>, args: &AuthCheckArgs) -> String {
    if let Some(id) = &args.authserv_id {
        return id.clone();
    }
    config
        .and_then(|p| postern_config::load_file(p).ok())
        .map_or_else(
            || "localhost".to_owned(),
            |l| l.config.delivery.hostname.clone(),
        )
}

/// `postern auth check`.
pub(crate) fn check(config: Option<&Path>, args: &AuthCheckArgs) -> ExitCode {
    let raw = match read_input(&args.file) {
        Ok(raw) => raw,
        Err(e) => {
            eprintln!("error: {}: {e}", args.file.display());
            return ExitCode::from(2);
        }
    };
    let message = postern_auth::canon::to_crlf(&raw);
    let mut notes = Vec::new();
    let (received_ip, received_helo) = received_client(&message);
    let ip = args.ip.or_else(|| {
        received_ip.inspect(|ip| {
            notes.push(format!(
                "client IP {ip} taken from the topmost Received field"
            ));
        })
    });
    let helo = args.helo.clone().or_else(|| {
        received_helo
            .inspect(|h| notes.push(format!("HELO {h} taken from the topmost Received field")))
    });
    let helo = helo.unwrap_or_default();
    let mail_from = args.mail_from.clone().or_else(|| {
        return_path(&message)
            .inspect(|m| notes.push(format!("MAIL FROM <{m}> taken from Return-Path")))
    });
    let mail_from = mail_from.unwrap_or_default();

    let servers = match nameservers(config, args) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let verifier = match Verifier::new(&VerifierSettings {
        nameservers: servers,
        public_suffix_list: args.public_suffix_list.clone(),
        ..VerifierSettings::default()
    }) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let spf = if ip.is_none() {
        let none = SpfVerdict::none(
            &helo,
            "no client IP given (--ip) and no [ip] in a Received field",
        );
        Some(SpfVerdicts {
            helo: none.clone(),
            mail_from: none,
        })
    } else {
        None
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let our_hostname = authserv_id(config, args);
    let results = rt.block_on(verifier.verify(&VerifyInput {
        message: &message,
        ip: ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        helo: &helo,
        mail_from: &mail_from,
        our_hostname: &our_hostname,
        spf,
    }));
    let header = results.header_value(&our_hostname);
    if args.json {
        let doc = serde_json::json!({
            "client_ip": ip,
            "helo": helo,
            "mail_from": mail_from,
            "notes": notes,
            "results": results,
            "authentication_results": header,
        });
        crate::out::outln!("{doc}");
    } else {
        for n in &notes {
            crate::out::outln!("note: {n}");
        }
        crate::out::out!("{}", render(&results));
        crate::out::outln!("Authentication-Results: {header}");
    }
    if results.dmarc.result == DmarcResult::Fail {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn reason(r: &str) -> String {
    if r.is_empty() {
        String::new()
    } else {
        format!("  ({r})")
    }
}

/// One line per verdict.
fn render(r: &AuthResults) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let spf = |s: &mut String, which: &str, v: &SpfVerdict| {
        let _ = writeln!(
            s,
            "spf    {which:<9} {:<9} domain={}{}",
            v.result.as_str(),
            if v.domain.is_empty() { "-" } else { &v.domain },
            reason(&v.reason)
        );
    };
    spf(&mut s, "helo", &r.spf.helo);
    spf(&mut s, "mailfrom", &r.spf.mail_from);
    if r.dkim.is_empty() {
        let _ = writeln!(s, "dkim   {:<9} {:<9} (no DKIM-Signature)", "", "none");
    }
    for (i, d) in r.dkim.iter().enumerate() {
        let _ = writeln!(
            s,
            "dkim   {:<9} {:<9} d={} s={} a={} b={}{}",
            format!("#{}", i + 1),
            d.result.as_str(),
            d.domain,
            d.selector,
            d.algorithm,
            d.header_b,
            reason(&d.reason)
        );
    }
    let _ = writeln!(
        s,
        "arc    {:<9} {:<9} sets={} sealers={}{}",
        "",
        r.arc.result.as_str(),
        r.arc.instances,
        if r.arc.sealers.is_empty() {
            "-".to_owned()
        } else {
            r.arc.sealers.join(",")
        },
        reason(&r.arc.reason)
    );
    let d = &r.dmarc;
    let _ = writeln!(
        s,
        "dmarc  {:<9} {:<9} from={} org={} policy={} pct={}{} spf_aligned={} dkim_aligned={}{}",
        "",
        d.result.as_str(),
        if d.from_domain.is_empty() {
            "-"
        } else {
            &d.from_domain
        },
        if d.org_domain.is_empty() {
            "-"
        } else {
            &d.org_domain
        },
        d.policy.as_str(),
        d.pct,
        if d.result == DmarcResult::Fail && !d.sampled {
            " (not sampled)"
        } else {
            ""
        },
        d.spf_aligned,
        d.dkim_aligned,
        reason(&d.reason)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_from_the_topmost_received_field() {
        let m = b"Received: from mail.example.org (mail.example.org\r\n [192.0.2.7]) by mx.example.net with ESMTPS; Sun, 6 Dec 2026\r\n\
Received: from other ([198.51.100.1]) by x\r\nReturn-Path: <bounce@example.org>\r\n\r\nbody\r\n";
        let (ip, helo) = received_client(m);
        assert_eq!(
            ip,
            Some(
                "192.0.2.7"
                    .parse()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
            )
        );
        assert_eq!(helo.as_deref(), Some("mail.example.org"));
        assert_eq!(return_path(m).as_deref(), Some("bounce@example.org"));
        let v6 = b"Received: from h ([IPv6:2001:db8::1]) by mx\r\n\r\n";
        assert_eq!(
            received_client(v6).0,
            Some(
                "2001:db8::1"
                    .parse()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
            )
        );
        // An [ip] in the `by` clause is ours, not the client's.
        let by = b"Received: from h by mx [192.0.2.9]\r\n\r\n";
        assert_eq!(received_client(by).0, None);
        assert_eq!(received_client(b"Subject: x\r\n\r\n"), (None, None));
        assert_eq!(return_path(b"Return-Path: <>\r\n\r\n").as_deref(), Some(""));
    }
}
