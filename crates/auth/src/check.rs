//! `postern dkim check`: does the key record published at
//! `SELECTOR._domainkey.DOMAIN` match our private key, and if not, what to
//! fix. Parsing and comparing ([`check_records`]) are pure; [`lookup`]
//! asks DNS through `postern_dns`.
//!
//! # Security
//! Records come from the network: parsed as tag=value text, only compared
//! and printed (quoted with `{:?}`), never executed or decoded further than
//! base64.
//!
//! # Standards
//! RFC 6376 §3.6.1 (tags `v`, `k`, `p`, `t`), §3.2 (tag-list syntax),
//! §3.6.2.2 (TXT strings joined), RFC 8463 §4.2 (Ed25519 key is raw).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use postern_dns::{DnsError, Resolver};

use crate::cause;
use crate::keys::{Algorithm, DkimKeyFile, record_name};

/// One thing found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable cause id ([`crate::cause`]).
    pub id: &'static str,
    /// What was found, in one sentence.
    pub summary: String,
    /// The smallest fix.
    pub fix: &'static str,
    /// Whether the finding makes the record unusable for our key (else a warning).
    pub fatal: bool,
}

impl Finding {
    fn new(id: &'static str, summary: String, fatal: bool) -> Finding {
        Finding {
            id,
            summary,
            fix: cause::fix(id),
            fatal,
        }
    }
}

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The name looked up.
    pub name: String,
    /// The TXT records found there.
    pub records: Vec<String>,
    /// Problems and warnings, most important first.
    pub findings: Vec<Finding>,
}

impl CheckReport {
    /// Whether the published record matches our key (warnings allowed).
    pub fn matches(&self) -> bool {
        !self.records.is_empty() && self.findings.iter().all(|f| !f.fatal)
    }
}

/// Parsed tags of one key record.
#[derive(Debug, Default)]
struct KeyRecord {
    k: Option<String>,
    p: Option<String>,
    t: Vec<String>,
}

/// Parses a key record (RFC 6376 §3.2 tag-list, §3.6.1 tags).
fn parse(text: &str) -> Result<KeyRecord, String> {
    let mut rec = KeyRecord::default();
    let mut seen: Vec<String> = Vec::new();
    for (i, part) in text.split(';').enumerate() {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((tag, value)) = part.split_once('=') else {
            return Err(format!("{part:?} is not tag=value"));
        };
        let tag = tag.trim().to_owned();
        let value = value.trim();
        if seen.contains(&tag) {
            return Err(format!("tag {tag}= appears twice (RFC 6376 §3.2)"));
        }
        match tag.as_str() {
            "v" if i != 0 => return Err("v= must be the first tag".into()),
            "v" if value != "DKIM1" => return Err(format!("v={value}, must be DKIM1")),
            "k" => rec.k = Some(value.to_ascii_lowercase()),
            "p" => rec.p = Some(value.split_ascii_whitespace().collect()),
            "t" => {
                rec.t = value
                    .split(':')
                    .map(|f| f.trim().to_ascii_lowercase())
                    .collect();
            }
            _ => {}
        }
        seen.push(tag);
    }
    if rec.p.is_none() {
        return Err("no p= tag (the public key; RFC 6376 §3.6.1 requires it)".into());
    }
    Ok(rec)
}

/// Compares the published records with our key.
pub fn check_records(name: &str, records: &[String], key: &DkimKeyFile) -> CheckReport {
    let mut findings = Vec::new();
    if records.is_empty() {
        findings.push(Finding::new(
            cause::RECORD_MISSING,
            format!("no TXT record at {name}"),
            true,
        ));
    } else if records.len() > 1 {
        findings.push(Finding::new(
            cause::SEVERAL_RECORDS,
            format!("{} TXT records at {name}; there must be one", records.len()),
            true,
        ));
    }
    if records.len() == 1 {
        findings.extend(check_record(&records[0], key));
    }
    CheckReport {
        name: name.to_owned(),
        records: records.to_vec(),
        findings,
    }
}

/// The findings for one record against our key (empty: it matches).
pub fn check_record(text: &str, key: &DkimKeyFile) -> Vec<Finding> {
    let rec = match parse(text) {
        Ok(r) => r,
        Err(e) => {
            return vec![Finding::new(
                cause::RECORD_SYNTAX,
                format!("the record does not parse: {e}"),
                true,
            )];
        }
    };
    let mut out = Vec::new();
    let k = rec.k.as_deref().unwrap_or("rsa");
    if k != key.algorithm.k_tag() {
        out.push(Finding::new(
            cause::ALGORITHM_MISMATCH,
            format!(
                "the record says k={k}, our key is {}",
                key.algorithm.k_tag()
            ),
            true,
        ));
    }
    let p = rec.p.unwrap_or_default();
    if p.is_empty() {
        out.push(Finding::new(
            cause::KEY_REVOKED,
            "p= is empty: the key of this selector is revoked".into(),
            true,
        ));
    } else if out.is_empty() {
        match STANDARD.decode(p.as_bytes()) {
            Err(e) => out.push(Finding::new(
                cause::RECORD_SYNTAX,
                format!("p= is not base64: {e}"),
                true,
            )),
            Ok(published) if !same_key(key, &published) => out.push(Finding::new(
                cause::KEY_MISMATCH,
                format!(
                    "p= is another public key than ours (ours: p={})",
                    key.public_base64()
                ),
                true,
            )),
            Ok(_) => {}
        }
    }
    if rec.t.iter().any(|f| f == "y") {
        out.push(Finding::new(
            cause::TESTING,
            "t=y: the domain is testing DKIM; receivers may treat failures as unsigned".into(),
            false,
        ));
    }
    out
}

/// Ours is SubjectPublicKeyInfo (RSA) or raw (Ed25519). Some records
/// publish the bare PKCS#1 RSAPublicKey, which is the tail of the SPKI.
fn same_key(key: &DkimKeyFile, published: &[u8]) -> bool {
    let ours = key.public_bytes();
    published == ours
        || (key.algorithm == Algorithm::Rsa && published.len() > 64 && ours.ends_with(published))
}

/// Looks the record up and checks it.
pub async fn lookup(
    resolver: &Resolver,
    domain: &str,
    selector: &str,
    key: &DkimKeyFile,
) -> CheckReport {
    let name = record_name(domain, selector);
    match resolver.txt(&name).await {
        Ok(txt) => check_records(&name, &txt.records, key),
        Err(DnsError::NxDomain { .. } | DnsError::NoRecords { .. }) => {
            check_records(&name, &[], key)
        }
        Err(e) => CheckReport {
            name,
            records: Vec::new(),
            findings: vec![Finding::new(cause::DNS_ERROR, e.to_string(), true)],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::generate;

    #[test]
    fn findings_per_case() {
        let (key, _) = generate(Algorithm::Ed25519).unwrap();
        let (other, _) = generate(Algorithm::Ed25519).unwrap();
        let ids = |text: &str| -> Vec<&'static str> {
            check_record(text, &key).iter().map(|f| f.id).collect()
        };
        assert!(ids(&key.record_text()).is_empty());
        assert_eq!(ids(&other.record_text()), [cause::KEY_MISMATCH]);
        assert_eq!(ids("v=DKIM1; k=ed25519; p="), [cause::KEY_REVOKED]);
        assert_eq!(
            ids(&format!("v=DKIM1; p={}", key.public_base64())),
            [cause::ALGORITHM_MISMATCH]
        );
        assert_eq!(
            ids(&format!("{}; t=y", key.record_text())),
            [cause::TESTING]
        );
        assert_eq!(ids("v=DKIM1; k=ed25519"), [cause::RECORD_SYNTAX]);
        assert_eq!(ids("k=ed25519; v=DKIM1; p=x"), [cause::RECORD_SYNTAX]);
        assert_eq!(ids("v=DKIM1; k=ed25519; p=!!!"), [cause::RECORD_SYNTAX]);
        let rep = check_records("n", &[key.record_text(), key.record_text()], &key);
        assert_eq!(rep.findings[0].id, cause::SEVERAL_RECORDS);
        assert!(!rep.matches());
        let rep = check_records("n", &[], &key);
        assert_eq!(rep.findings[0].id, cause::RECORD_MISSING);
        let rep = check_records("n", &[format!("{}; t=y", key.record_text())], &key);
        assert!(rep.matches());
    }

    #[test]
    fn rsa_pkcs1_form_of_p_matches() {
        let (key, _) = generate(Algorithm::Rsa).unwrap();
        // SPKI for RSA-2048 has a 24-octet prefix before the RSAPublicKey.
        let pkcs1 = &key.public_bytes()[24..];
        let text = format!("v=DKIM1; k=rsa; p={}", STANDARD.encode(pkcs1));
        assert!(check_record(&text, &key).is_empty());
        assert!(check_record(&key.record_text(), &key).is_empty());
    }

    #[test]
    fn every_cause_has_a_fix() {
        for id in cause::ALL {
            assert!(!cause::fix(id).is_empty(), "{id}");
        }
    }
}
