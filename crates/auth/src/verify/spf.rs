//! SPF (RFC 7208) for the HELO and MAIL FROM identities with `mail-auth`'s
//! `check_host()`, and the reasons we print.
//!
//! # Security
//! `mail-auth` enforces the limit of 10 DNS-querying mechanisms and
//! modifiers per check (§4.6.4: `include`, `a`, `mx`, `ptr`, `exists`,
//! `redirect`; exceeded → `permerror`), at most 10 MX names per `mx`, and a
//! 20-second wall-clock bound per check. It does not count void lookups
//! (§4.6.4's SHOULD of 2): we do, through the caches it is handed
//! ([`super::void`]; more than 2 → `permerror`). `tests/verify_spf.rs`
//! shows both limits.
//! A DNS failure is `temperror`, never `fail`.
//!
//! # Standards
//! RFC 7208 §2.3 (HELO), §2.4 (MAIL FROM, null reverse-path →
//! `postmaster@<helo>`), §2.6 (results), §4.6.4 (limits), §6.2 (`exp=`).

use std::net::IpAddr;

use mail_auth::spf::verify::SpfParameters;

use mail_auth::Parameters;

use super::Inner;
use super::results::{SpfResult, SpfVerdict, SpfVerdicts};
use super::void::{Counting, Kind, MAX_VOID_LOOKUPS, Tracker};

/// Both checks.
pub(crate) async fn check(
    inner: &Inner,
    ip: IpAddr,
    helo: &str,
    mail_from: &str,
    our_hostname: &str,
) -> SpfVerdicts {
    let helo_name = helo.trim().trim_end_matches('.').to_ascii_lowercase();
    let helo_verdict = if helo_name.starts_with('[') || helo_name.parse::<IpAddr>().is_ok() {
        SpfVerdict {
            identity: format!("postmaster@{helo_name}"),
            ..SpfVerdict::none(&helo_name, "HELO is an address literal, not a domain")
        }
    } else {
        one(inner, ip, &helo_name, &helo_name, "", our_hostname).await
    };
    let mail_from = mail_from.trim();
    let mail_from_verdict = if mail_from.is_empty() {
        // RFC 7208 §2.4: the null reverse-path is checked as postmaster@HELO:
        // the same check_host() as the HELO identity.
        helo_verdict.clone()
    } else {
        let domain = mail_from
            .rsplit_once('@')
            .map_or(mail_from, |(_, d)| d)
            .trim_end_matches('.')
            .to_ascii_lowercase();
        one(inner, ip, &helo_name, &domain, mail_from, our_hostname).await
    };
    SpfVerdicts {
        helo: helo_verdict,
        mail_from: mail_from_verdict,
    }
}

/// One `check_host()`: `sender` empty means the HELO identity.
async fn one(
    inner: &Inner,
    ip: IpAddr,
    helo: &str,
    domain: &str,
    sender: &str,
    our_hostname: &str,
) -> SpfVerdict {
    let params = if sender.is_empty() {
        SpfParameters::verify_ehlo(ip, helo, our_hostname)
    } else {
        SpfParameters::verify_mail_from(ip, helo, our_hostname, sender)
    };
    let tracker = Tracker::default();
    let (txt, mx) = (
        Counting::new(&inner.txt, &tracker, Kind::Txt),
        Counting::new(&inner.mx, &tracker, Kind::Mx),
    );
    let (v4, v6, ptr) = (
        Counting::new(&inner.ipv4, &tracker, Kind::V4),
        Counting::new(&inner.ipv6, &tracker, Kind::V6),
        Counting::new(&inner.ptr, &tracker, Kind::Ptr),
    );
    let params = Parameters::new(params)
        .with_txt_cache(&txt)
        .with_mx_cache(&mx)
        .with_ipv4_cache(&v4)
        .with_ipv6_cache(&v6)
        .with_ptr_cache(&ptr);
    let output = inner.auth.verify_spf(params).await;
    let voids = tracker.voids(output.result());
    if voids > MAX_VOID_LOOKUPS && output.result() != mail_auth::SpfResult::PermError {
        return SpfVerdict {
            result: SpfResult::PermError,
            domain: domain.to_owned(),
            identity: if sender.is_empty() {
                format!("postmaster@{domain}")
            } else {
                sender.to_owned()
            },
            reason: format!(
                "SPF evaluation for {domain} met {voids} DNS names without records; \
                 more than {MAX_VOID_LOOKUPS} is an error (RFC 7208 §4.6.4)"
            ),
        };
    }
    let result = map(output.result());
    let identity = if sender.is_empty() {
        format!("postmaster@{domain}")
    } else {
        sender.to_owned()
    };
    let reason = match (result, output.explanation()) {
        (SpfResult::Fail, Some(exp)) if !exp.is_empty() => {
            format!("{ip} not permitted by {domain}: {}", printable(exp))
        }
        _ => reason(result, ip, domain),
    };
    SpfVerdict {
        result,
        domain: domain.to_owned(),
        identity,
        reason,
    }
}

fn map(r: mail_auth::SpfResult) -> SpfResult {
    match r {
        mail_auth::SpfResult::Pass => SpfResult::Pass,
        mail_auth::SpfResult::Fail => SpfResult::Fail,
        mail_auth::SpfResult::SoftFail => SpfResult::SoftFail,
        mail_auth::SpfResult::Neutral => SpfResult::Neutral,
        mail_auth::SpfResult::TempError => SpfResult::TempError,
        mail_auth::SpfResult::PermError => SpfResult::PermError,
        mail_auth::SpfResult::None => SpfResult::None,
    }
}

fn reason(result: SpfResult, ip: IpAddr, domain: &str) -> String {
    match result {
        SpfResult::Pass => format!("{ip} is permitted by {domain}"),
        SpfResult::Fail => format!("{ip} is not permitted by {domain}"),
        SpfResult::SoftFail => format!("{ip} is probably not permitted by {domain} (~)"),
        SpfResult::Neutral => format!("{domain} makes no assertion about {ip}"),
        SpfResult::None => format!("no SPF record for {domain}"),
        SpfResult::TempError => {
            format!("DNS lookup for the SPF record of {domain} failed (temporary)")
        }
        SpfResult::PermError => format!(
            "SPF record of {domain} is invalid, or needs more than 10 DNS lookups (RFC 7208 §4.6.4)"
        ),
    }
}

/// An `exp=` text from DNS, safe to log and quote: printable ASCII, bounded.
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .filter(|c| *c != '"' && *c != '\\')
        .take(200)
        .collect()
}
