//! The `policy.*` failure causes: what a TLS policy level demanded that a
//! connection did not give, each with the smallest safe fix. Handshake and
//! certificate problems keep their own ids (`tls.*`, `tls.out.*` from
//! `postern_tls`); these ids cover what only a policy can fail on.
//!
//! Ids are API (mail log, tracking DB, metrics): add ids, never rename or
//! reuse one. `policy.starttls_not_offered` and `policy.verification_failed`
//! are spelled exactly as delivery's catalogue spells them, so `tls verify`
//! and the delivery log name a problem the same way (ADR 0005).
//!
//! # Security
//! Summaries quote host names, patterns and remote text (untrusted): they are
//! printed and logged, never interpreted.
//!
//! # Standards
//! RFC 3207 (STARTTLS), RFC 7672 §2.2 (DANE: no plaintext, no unauthenticated
//! fallback when TLSA records are usable), RFC 8461 §4.1 (MX host
//! validation), §5 (policy application).

use postern_tls::cause::{Cause, route_snippet};

use crate::Level;

/// The policy requires TLS and the server does not offer STARTTLS.
pub const STARTTLS_NOT_OFFERED: &str = "policy.starttls_not_offered";
/// The policy requires a verified certificate and the check failed (used
/// when no finer `tls.out.*` id applies).
pub const VERIFY_FAILED: &str = "policy.verification_failed";
/// Authenticated, usable TLSA records match no certificate of the chain.
pub const DANE_NO_MATCH: &str = "policy.dane_no_match";
/// Authenticated TLSA records exist but none is usable for SMTP: TLS is
/// still mandatory, without authentication (RFC 7672 §2.2).
pub const DANE_UNUSABLE: &str = "policy.dane_unusable";
/// DANE was asked for but the host has no DNSSEC-authenticated TLSA records.
pub const DANE_UNAVAILABLE: &str = "policy.dane_unavailable";
/// The MX host is not listed in the domain's MTA-STS policy.
pub const MTA_STS_MX_MISMATCH: &str = "policy.mta_sts_mx_mismatch";
/// MTA-STS was asked for but the domain publishes no usable policy.
pub const MTA_STS_NOT_PUBLISHED: &str = "policy.mta_sts_not_published";
/// The `_mta-sts` TXT record announces a policy that cannot be fetched or
/// parsed.
pub const MTA_STS_FETCH_FAILED: &str = "policy.mta_sts_fetch_failed";

/// Every id of this catalogue.
pub const ALL: &[&str] = &[
    STARTTLS_NOT_OFFERED,
    VERIFY_FAILED,
    DANE_NO_MATCH,
    DANE_UNUSABLE,
    DANE_UNAVAILABLE,
    MTA_STS_MX_MISMATCH,
    MTA_STS_NOT_PUBLISHED,
    MTA_STS_FETCH_FAILED,
];

fn mk(id: &'static str, summary: String, fix: String, detail: String) -> Cause {
    Cause {
        id,
        summary,
        fix,
        detail,
    }
}

/// STARTTLS is not in the EHLO reply of `at` (an address or host), for mail
/// to the recipient `domains` (what a `[[route]]` matches; empty: unknown).
/// When `level` requires TLS the wording follows IronPort's `tlsverify`.
pub fn starttls_not_offered(at: &str, domains: &[String], level: Level) -> Cause {
    let summary = if level.requires_tls() {
        format!(
            "STARTTLS command not supported at {at}. TLS was required but could not be \
             successfully negotiated"
        )
    } else {
        format!(
            "STARTTLS command not supported at {at}: mail to it travels in plaintext (policy \
             {level} allows it)"
        )
    };
    let fix = if level.requires_tls() {
        let who = if domains.is_empty() {
            "the recipient domain".to_owned()
        } else {
            domains.join(", ")
        };
        format!(
            "the peer must enable STARTTLS (RFC 3207) on {at}; until then only plaintext \
             delivery works: if that is acceptable for {who}, add {} (routes match recipient \
             domains; levels that require TLS never fall back to plaintext)",
            route_snippet(domains, "opportunistic")
        )
    } else {
        format!(
            "none on our side: the level in force ({level}) already sends in plaintext when \
             STARTTLS is missing; for encryption the peer must enable STARTTLS (RFC 3207) on \
             {at}"
        )
    };
    mk(STARTTLS_NOT_OFFERED, summary, fix, String::new())
}

/// The level verifies certificates and `host` presented none (the
/// handshake completed without one: a broken server).
pub fn no_certificate(host: &str) -> Cause {
    mk(
        VERIFY_FAILED,
        format!("{host} presented no certificate"),
        "none on our side; the server's TLS setup is broken: tell its postmaster".to_owned(),
        String::new(),
    )
}

/// Usable TLSA records at `tlsa_name` match nothing the server presented.
/// `why` says what was compared; `suggested` is a record that would match
/// the current leaf (e.g. `3 1 1 ab…`), when known.
pub fn dane_no_match(host: &str, tlsa_name: &str, why: &str, suggested: Option<&str>) -> Cause {
    let publish = suggested.map_or_else(String::new, |s| format!(" (`{tlsa_name}. IN TLSA {s}`)"));
    mk(
        DANE_NO_MATCH,
        format!(
            "the DANE TLSA records at {tlsa_name} do not match the certificate {host} presented"
        ),
        format!(
            "the domain's operator must publish TLSA records matching the certificate in use{publish} \
             or put the matching certificate back; mail is deferred meanwhile, never sent \
             unauthenticated (RFC 7672 §2.2)"
        ),
        why.to_owned(),
    )
}

/// Authenticated TLSA records exist but none can be used for SMTP.
pub fn dane_unusable(host: &str, tlsa_name: &str, why: &str) -> Cause {
    mk(
        DANE_UNUSABLE,
        format!(
            "the TLSA records at {tlsa_name} are all unusable for SMTP, so {host} gets TLS \
             without authentication (RFC 7672 §2.2)"
        ),
        "the domain's operator should publish DANE-EE (3) or DANE-TA (2) records with \
         selector 0/1 and matching type 0/1/2; PKIX-TA/PKIX-EE (0/1) are not used for SMTP \
         (RFC 7672 §3.1.3)"
            .to_owned(),
        why.to_owned(),
    )
}

/// DANE was demanded for `host` but there is nothing authenticated to use.
pub fn dane_unavailable(host: &str, reason: &str) -> Cause {
    mk(
        DANE_UNAVAILABLE,
        format!("DANE cannot be used for {host}: {reason}"),
        "check with another level (`--policy verify` or `required`); for DANE the domain must \
         be DNSSEC-signed and publish TLSA records at _25._tcp.<mx host>, and our resolver must \
         validate (a local validating resolver, or `[dns] dnssec = \"validate\"`)"
            .to_owned(),
        String::new(),
    )
}

/// `host` matches none of the MTA-STS policy's `mx` patterns.
pub fn mta_sts_mx_mismatch(domain: &str, host: &str, patterns: &[String]) -> Cause {
    mk(
        MTA_STS_MX_MISMATCH,
        format!(
            "the MX host {host} is not allowed by the MTA-STS policy of {domain} (mx: {})",
            if patterns.is_empty() {
                "none".to_owned()
            } else {
                patterns.join(", ")
            }
        ),
        format!(
            "the domain's operator must add `mx: {host}` (or a `*.` pattern covering it) to \
             https://mta-sts.{domain}/.well-known/mta-sts.txt and change the id in the \
             _mta-sts.{domain} TXT record, or remove the MX record (RFC 8461 §4.1)"
        ),
        String::new(),
    )
}

/// MTA-STS was demanded for `domain` but it publishes no policy.
pub fn mta_sts_not_published(domain: &str, reason: &str) -> Cause {
    mk(
        MTA_STS_NOT_PUBLISHED,
        format!("{domain} publishes no usable MTA-STS policy: {reason}"),
        format!(
            "check with another level (`--policy verify`); to publish one, add a TXT record \
             `_mta-sts.{domain}. IN TXT \"v=STSv1; id=<id>\"` and serve the policy at \
             https://mta-sts.{domain}/.well-known/mta-sts.txt (RFC 8461 §3)"
        ),
        String::new(),
    )
}

/// The TXT record announces a policy that cannot be fetched or parsed.
pub fn mta_sts_fetch_failed(domain: &str, url: &str, detail: &str) -> Cause {
    mk(
        MTA_STS_FETCH_FAILED,
        format!("the MTA-STS policy of {domain} announced in DNS cannot be used: {detail}"),
        format!(
            "{url} must answer 200 with Content-Type text/plain, no redirect, a certificate \
             valid for mta-sts.{domain}, and a body of `version: STSv1`, `mode:`, `mx:` and \
             `max_age:` lines (RFC 8461 §3.2–3.3); senders without a cached policy deliver as \
             if there were none"
        ),
        detail.to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_namespaced() {
        let mut ids = ALL.to_vec();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), ALL.len());
        assert!(ALL.iter().all(|id| id.starts_with("policy.")));
    }

    #[test]
    fn starttls_wording_follows_the_seed() {
        let c = starttls_not_offered("192.0.2.10", &["example.com".to_owned()], Level::Verify);
        assert_eq!(
            c.summary,
            "STARTTLS command not supported at 192.0.2.10. TLS was required but could not be \
             successfully negotiated"
        );
        assert!(
            c.fix
                .contains("add `[[route]] domains = [\"example.com\"], tls = \"opportunistic\"`"),
            "{c}"
        );
        // Under a level that already sends in plaintext, no such advice.
        let c = starttls_not_offered(
            "192.0.2.10",
            &["example.com".to_owned()],
            Level::Opportunistic,
        );
        assert!(!c.fix.contains("[[route]]"), "{c}");
    }

    #[test]
    fn mismatch_names_host_and_patterns() {
        let c = mta_sts_mx_mismatch(
            "example.com",
            "mx9.other.net",
            &["mx1.example.com".into(), "*.example.net".into()],
        );
        assert!(c.summary.contains("mx9.other.net"));
        assert!(c.summary.contains("mx1.example.com, *.example.net"));
        assert!(c.fix.contains("mx: mx9.other.net"));
    }
}
