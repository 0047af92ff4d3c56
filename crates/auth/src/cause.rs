//! The DKIM key-record side of the failure-cause catalogue (ADR 0007): what
//! `postern dkim check` found, as stable `dkim.*` ids with a summary and the
//! smallest fix. Ids are API: add, never rename or reuse.
//!
//! # Standards
//! RFC 6376 §3.6.1 (key record tags), §3.6.2.2 (one record per selector),
//! RFC 8463 (`k=ed25519`).

/// No TXT record at `SELECTOR._domainkey.DOMAIN` (NXDOMAIN or no TXT).
pub const RECORD_MISSING: &str = "dkim.record_missing";
/// More than one TXT record at the name: verifiers may pick either.
pub const SEVERAL_RECORDS: &str = "dkim.several_records";
/// The record does not parse as a DKIM key record.
pub const RECORD_SYNTAX: &str = "dkim.record_syntax";
/// `p=` is empty: the key is revoked (RFC 6376 §3.6.1).
pub const KEY_REVOKED: &str = "dkim.key_revoked";
/// `k=` names another algorithm than our key's.
pub const ALGORITHM_MISMATCH: &str = "dkim.algorithm_mismatch";
/// `p=` is another public key than ours.
pub const KEY_MISMATCH: &str = "dkim.key_mismatch";
/// `t=y`: the domain is testing DKIM; verifiers may ignore failures.
pub const TESTING: &str = "dkim.testing";
/// The lookup failed temporarily (SERVFAIL, timeout, bogus DNSSEC).
pub const DNS_ERROR: &str = "dkim.dns_error";

/// Every id of this catalogue.
pub const ALL: &[&str] = &[
    RECORD_MISSING,
    SEVERAL_RECORDS,
    RECORD_SYNTAX,
    KEY_REVOKED,
    ALGORITHM_MISMATCH,
    KEY_MISMATCH,
    TESTING,
    DNS_ERROR,
];

/// The smallest fix for a cause id.
pub fn fix(id: &str) -> &'static str {
    match id {
        RECORD_MISSING => {
            "publish the TXT record `postern dkim keygen` printed (name SELECTOR._domainkey.DOMAIN) and wait for the zone to be served"
        }
        SEVERAL_RECORDS => {
            "keep exactly one TXT record at the selector's name; use a new selector for a new key"
        }
        RECORD_SYNTAX => {
            "replace the record with the exact text `postern dkim keygen` printed (tag=value pairs separated by ';', v=DKIM1 first)"
        }
        KEY_REVOKED => {
            "p= is empty (revoked): publish our key under this selector, or sign with a selector whose key is published"
        }
        ALGORITHM_MISMATCH => {
            "set k= to our key's algorithm (k=ed25519 or k=rsa), as `postern dkim keygen` printed"
        }
        KEY_MISMATCH => {
            "the published p= is another key: publish our key's record (`postern dkim keygen` output) or point --key at the key that matches"
        }
        TESTING => "remove t=y once signatures verify, so receivers act on DKIM failures",
        DNS_ERROR => {
            "retry; if it persists, check the DNS servers in `[dns] nameservers` and the domain's DNSSEC"
        }
        _ => "",
    }
}
