//! DMARC per RFC 7489 (ADR 0012): policy discovery at `_dmarc.<From
//! domain>` with fallback to the organisational domain from the
//! public-suffix list (§6.6.3), identifier alignment (§3.1), `p`/`sp`,
//! `pct` sampling (§6.6.4). The record parser is ours (RFC 7489 §6.3/§6.4):
//! `mail-auth` 0.13.3 parses DMARCbis records (no `pct`, `np`/`psd`/`t`
//! instead) and walks the DNS tree instead of using the list.
//!
//! # Security
//! A DNS failure during discovery, or a transient SPF/DKIM failure of an
//! identifier that could have aligned, is `temperror`, never `fail`: a
//! reject must not follow from a timeout. Several RFC 5322.From domains is
//! `permerror` (§6.6.1: the receiver cannot pick one; an attacker would
//! choose). Several DMARC records at one name: no policy (§6.6.3 step 6).
//! `rua=` URIs are returned as published; the external-destination check
//! (§7.1) is the report sender's job.
//!
//! # Standards
//! RFC 7489 §3.1 (alignment), §3.2 (organisational domain), §6.3 (tags),
//! §6.6.1–§6.6.4 (evaluation), §6.4 (record syntax).

use mail_auth::hickory_resolver::proto::rr::{Name, RData};

use super::Inner;
use super::psl::PublicSuffixList;
use super::results::{
    Alignment, DkimResult, DkimVerdict, DmarcPolicy, DmarcPublished, DmarcResult, DmarcVerdict,
    SpfResult, SpfVerdicts,
};

/// A parsed DMARC record (RFC 7489 §6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `p=`.
    pub p: DmarcPolicy,
    /// `sp=` (defaults to `p`).
    pub sp: DmarcPolicy,
    /// `adkim=`.
    pub adkim: Alignment,
    /// `aspf=`.
    pub aspf: Alignment,
    /// `pct=`.
    pub pct: u8,
    /// `rua=` URIs (without `!size`).
    pub rua: Vec<String>,
}

/// Why a TXT record is not a usable DMARC record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// Does not start with `v=DMARC1`: not a DMARC record at all (ignored).
    NotDmarc,
    /// A DMARC record without a valid `p=` (or with a bad `sp=`) and no
    /// valid `rua=`: no DMARC processing (§6.6.3 step 6).
    Invalid(String),
}

fn policy(value: &str) -> Option<DmarcPolicy> {
    match value.to_ascii_lowercase().as_str() {
        "none" => Some(DmarcPolicy::None),
        "quarantine" => Some(DmarcPolicy::Quarantine),
        "reject" => Some(DmarcPolicy::Reject),
        _ => None,
    }
}

fn alignment(value: &str) -> Option<Alignment> {
    match value.to_ascii_lowercase().as_str() {
        "r" => Some(Alignment::Relaxed),
        "s" => Some(Alignment::Strict),
        _ => None,
    }
}

/// Parses a DMARC record. Unknown tags are ignored (§6.3); bad `adkim`,
/// `aspf` or `pct` values fall back to their defaults.
pub fn parse_record(text: &str) -> Result<Record, RecordError> {
    let mut tags = text.split(';').map(str::trim).filter(|t| !t.is_empty());
    let first = tags.next().unwrap_or_default();
    match first.split_once('=') {
        // The version tag's value is case-sensitive (§6.4 ABNF).
        Some((k, v)) if k.trim() == "v" && v.trim() == "DMARC1" => {}
        _ => return Err(RecordError::NotDmarc),
    }
    let mut p = None;
    let mut p_bad = false;
    let mut sp = None;
    let mut sp_bad = false;
    let mut rec = Record {
        p: DmarcPolicy::None,
        sp: DmarcPolicy::None,
        adkim: Alignment::Relaxed,
        aspf: Alignment::Relaxed,
        pct: 100,
        rua: Vec::new(),
    };
    for tag in tags {
        let Some((k, v)) = tag.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        match k.as_str() {
            "p" => {
                p = policy(v);
                p_bad = p.is_none();
            }
            "sp" => {
                sp = policy(v);
                sp_bad = sp.is_none();
            }
            "adkim" => rec.adkim = alignment(v).unwrap_or(Alignment::Relaxed),
            "aspf" => rec.aspf = alignment(v).unwrap_or(Alignment::Relaxed),
            "pct" => rec.pct = v.parse::<u8>().ok().filter(|n| *n <= 100).unwrap_or(100),
            "rua" => {
                rec.rua = v
                    .split(',')
                    .map(str::trim)
                    // `!size` suffix (§6.2); a URI needs a scheme.
                    .map(|u| u.split_once('!').map_or(u, |(uri, _)| uri).to_owned())
                    .filter(|u| {
                        u.split_once(':').is_some_and(|(scheme, rest)| {
                            !scheme.is_empty()
                                && scheme
                                    .bytes()
                                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                                && !rest.is_empty()
                        })
                    })
                    .collect();
            }
            _ => {}
        }
    }
    match p {
        Some(policy) if !sp_bad => {
            rec.p = policy;
            rec.sp = sp.unwrap_or(policy);
            Ok(rec)
        }
        // §6.6.3 step 6.1: no valid p (or a bad sp) but a valid rua: act as p=none.
        _ if !rec.rua.is_empty() => {
            rec.p = DmarcPolicy::None;
            rec.sp = DmarcPolicy::None;
            Ok(rec)
        }
        _ => Err(RecordError::Invalid(if p_bad || sp_bad {
            "invalid p= or sp= value".into()
        } else {
            "no p= tag".into()
        })),
    }
}

/// What discovery found at one name.
pub(crate) enum Found {
    Record(Record),
    Nothing(String),
    Several,
    TempError(String),
}

/// TXT lookup of `_dmarc.<domain>`, records filtered to DMARC ones.
async fn lookup(inner: &Inner, domain: &str) -> Found {
    let name = format!("_dmarc.{domain}.");
    let Ok(name) = Name::from_str_relaxed(&name) else {
        return Found::Nothing(format!("{domain} is not a valid domain name"));
    };
    let answer = match inner.auth.resolver().txt_lookup(name).await {
        Ok(answer) => answer,
        Err(e) if e.is_no_records_found() => {
            return Found::Nothing(format!("no DMARC record at _dmarc.{domain}"));
        }
        Err(e) => return Found::TempError(format!("DNS lookup of _dmarc.{domain} failed: {e}")),
    };
    let mut records = Vec::new();
    for record in answer.answers() {
        if let RData::TXT(txt) = &record.data {
            let mut text = Vec::new();
            for part in &txt.txt_data {
                text.extend_from_slice(part);
            }
            records.push(String::from_utf8_lossy(&text).into_owned());
        }
    }
    select(domain, &records)
}

/// §6.6.3 steps 2, 5 and 6 on the TXT records of one name.
pub(crate) fn select(domain: &str, records: &[String]) -> Found {
    let parsed: Vec<Result<Record, RecordError>> = records
        .iter()
        .map(|r| parse_record(r))
        .filter(|r| !matches!(r, Err(RecordError::NotDmarc)))
        .collect();
    match parsed.as_slice() {
        [] => Found::Nothing(format!("no DMARC record at _dmarc.{domain}")),
        [Ok(record)] => Found::Record(record.clone()),
        [Err(RecordError::Invalid(why))] => {
            Found::Nothing(format!("DMARC record at _dmarc.{domain} not usable: {why}"))
        }
        _ => Found::Several,
    }
}

fn aligned(psl: &PublicSuffixList, a: &str, b: &str, mode: Alignment) -> bool {
    let a = a.trim_end_matches('.').to_ascii_lowercase();
    let b = b.trim_end_matches('.').to_ascii_lowercase();
    if a.is_empty() || b.is_empty() {
        return false;
    }
    match mode {
        Alignment::Strict => a == b,
        Alignment::Relaxed => {
            a == b || psl.organizational_domain(&a) == psl.organizational_domain(&b)
        }
    }
}

/// The From domains of a message (lower case, A-labels for internationalised
/// names (RFC 6531 mail), deduplicated).
pub(crate) fn from_domains(froms: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for from in froms {
        let domain = from
            .rsplit_once('@')
            .map_or("", |(_, d)| d)
            .trim_end_matches('.');
        let domain = if domain.is_ascii() {
            domain.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii(domain).unwrap_or_else(|_| domain.to_lowercase())
        };
        if !domain.is_empty() && !out.contains(&domain) {
            out.push(domain);
        }
    }
    out
}

/// DMARC for a message whose From addresses are `froms`.
pub(crate) async fn check(
    inner: &Inner,
    froms: &[String],
    spf: &SpfVerdicts,
    dkim: &[DkimVerdict],
) -> DmarcVerdict {
    let domains = from_domains(froms);
    let from_domain = match domains.as_slice() {
        [] => {
            return DmarcVerdict::empty(DmarcResult::None, "no RFC5322.From domain to evaluate");
        }
        [one] => one.clone(),
        several => {
            let mut v = DmarcVerdict::empty(
                DmarcResult::PermError,
                &format!(
                    "several RFC5322.From domains ({}): cannot pick one (RFC 7489 §6.6.1)",
                    several.join(", ")
                ),
            );
            v.from_domain.clone_from(&several[0]);
            return v;
        }
    };
    let org = inner.psl.organizational_domain(&from_domain);
    let mut found_at = from_domain.clone();
    let mut found = lookup(inner, &from_domain).await;
    if matches!(found, Found::Nothing(_)) && org != from_domain {
        found_at.clone_from(&org);
        found = match lookup(inner, &org).await {
            Found::Nothing(why) => Found::Nothing(format!(
                "no DMARC record at _dmarc.{from_domain} or _dmarc.{org} ({why})"
            )),
            other => other,
        };
    }
    let sample = rand::random_range(0..100u8);
    evaluate(
        &inner.psl,
        &from_domain,
        &org,
        &found_at,
        found,
        spf,
        dkim,
        sample,
    )
}

/// The evaluation once discovery is done (pure; `sample` is a number in
/// 0..100 for `pct`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn evaluate(
    psl: &PublicSuffixList,
    from_domain: &str,
    org: &str,
    found_at: &str,
    found: Found,
    spf: &SpfVerdicts,
    dkim: &[DkimVerdict],
    sample: u8,
) -> DmarcVerdict {
    let mut v = DmarcVerdict::empty(DmarcResult::None, "");
    from_domain.clone_into(&mut v.from_domain);
    org.clone_into(&mut v.org_domain);
    let record = match found {
        Found::Record(r) => r,
        Found::Nothing(why) => {
            v.reason = why;
            return v;
        }
        Found::Several => {
            v.reason =
                format!("several DMARC records at _dmarc.{found_at}: no policy (RFC 7489 §6.6.3)");
            return v;
        }
        Found::TempError(why) => {
            v.result = DmarcResult::TempError;
            v.reason = why;
            return v;
        }
    };
    // sp applies when the record came from the organisational domain and
    // the From domain is below it (§6.6.3 step 3, §6.3 sp).
    v.policy = if found_at == from_domain {
        record.p
    } else {
        record.sp
    };
    v.pct = record.pct;
    v.sampled = record.pct >= 100 || sample < record.pct;
    v.rua.clone_from(&record.rua);
    v.published = Some(DmarcPublished {
        domain: found_at.to_owned(),
        adkim: record.adkim,
        aspf: record.aspf,
        p: record.p,
        sp: record.sp,
        pct: record.pct,
    });
    let mf = &spf.mail_from;
    v.spf_aligned =
        mf.result == SpfResult::Pass && aligned(psl, &mf.domain, from_domain, record.aspf);
    let dkim_pass = dkim.iter().find(|d| {
        d.result == DkimResult::Pass && aligned(psl, &d.domain, from_domain, record.adkim)
    });
    v.dkim_aligned = dkim_pass.is_some();
    if let Some(d) = dkim_pass {
        v.result = DmarcResult::Pass;
        v.reason = format!("aligned DKIM pass (d={})", d.domain);
        return v;
    }
    if v.spf_aligned {
        v.result = DmarcResult::Pass;
        v.reason = format!("aligned SPF pass ({})", mf.domain);
        return v;
    }
    // No aligned pass. A transient failure of an identifier that could have
    // aligned makes the result unknown, not a failure.
    let spf_temp =
        mf.result == SpfResult::TempError && aligned(psl, &mf.domain, from_domain, record.aspf);
    let dkim_temp = dkim.iter().any(|d| {
        d.result == DkimResult::TempError && aligned(psl, &d.domain, from_domain, record.adkim)
    });
    if spf_temp || dkim_temp {
        v.result = DmarcResult::TempError;
        v.reason = "an aligned SPF or DKIM check failed temporarily".into();
        return v;
    }
    v.result = DmarcResult::Fail;
    v.reason = fail_reason(from_domain, &record, spf, dkim);
    v
}

fn fail_reason(
    from_domain: &str,
    record: &Record,
    spf: &SpfVerdicts,
    dkim: &[DkimVerdict],
) -> String {
    let mf = &spf.mail_from;
    let spf_part = if mf.result == SpfResult::Pass {
        format!(
            "SPF passed for {} but is not aligned ({})",
            mf.domain,
            mode(record.aspf)
        )
    } else {
        format!("SPF {} for {}", mf.result.as_str(), mf.domain)
    };
    let passes: Vec<&str> = dkim
        .iter()
        .filter(|d| d.result == DkimResult::Pass)
        .map(|d| d.domain.as_str())
        .collect();
    let dkim_part = if passes.is_empty() {
        "no DKIM pass".to_owned()
    } else {
        format!(
            "DKIM passed for {} but is not aligned ({})",
            passes.join(", "),
            mode(record.adkim)
        )
    };
    format!("no aligned pass for {from_domain}: {spf_part}; {dkim_part}")
}

fn mode(a: Alignment) -> &'static str {
    match a {
        Alignment::Relaxed => "relaxed",
        Alignment::Strict => "strict",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records() {
        let r = parse_record("v=DMARC1; p=reject; sp=none; adkim=s; pct=20; rua=mailto:a@x.example!10m, mailto:b@y.example")
            .expect("record");
        assert_eq!(r.p, DmarcPolicy::Reject);
        assert_eq!(r.sp, DmarcPolicy::None);
        assert_eq!(r.adkim, Alignment::Strict);
        assert_eq!(r.aspf, Alignment::Relaxed);
        assert_eq!(r.pct, 20);
        assert_eq!(r.rua, ["mailto:a@x.example", "mailto:b@y.example"]);
        let r = parse_record("v=DMARC1;p=Quarantine").expect("record");
        assert_eq!(
            (r.p, r.sp, r.pct),
            (DmarcPolicy::Quarantine, DmarcPolicy::Quarantine, 100)
        );
        assert_eq!(parse_record("v=spf1 -all"), Err(RecordError::NotDmarc));
        assert_eq!(
            parse_record("p=reject; v=DMARC1"),
            Err(RecordError::NotDmarc)
        );
        assert_eq!(
            parse_record("v=dmarc1; p=reject"),
            Err(RecordError::NotDmarc)
        );
        assert!(matches!(
            parse_record("v=DMARC1; p=bogus"),
            Err(RecordError::Invalid(_))
        ));
        assert!(matches!(
            parse_record("v=DMARC1"),
            Err(RecordError::Invalid(_))
        ));
        // A bad p with a valid rua: p=none (§6.6.3 step 6.1).
        let r = parse_record("v=DMARC1; p=bogus; rua=mailto:r@x.example").expect("record");
        assert_eq!(r.p, DmarcPolicy::None);
        // Out-of-range pct: the default.
        assert_eq!(
            parse_record("v=DMARC1; p=none; pct=300").expect("r").pct,
            100
        );
    }

    #[test]
    fn several_records_mean_no_policy() {
        let records = vec![
            "v=DMARC1; p=reject".to_owned(),
            "v=DMARC1; p=none".to_owned(),
            "v=spf1 -all".to_owned(),
        ];
        assert!(matches!(select("x.example", &records), Found::Several));
        assert!(matches!(
            select("x.example", &records[1..]),
            Found::Record(_)
        ));
    }

    #[test]
    fn from_domains_are_deduplicated() {
        let f = from_domains(&["a@X.example".into(), "b@x.example".into()]);
        assert_eq!(f, ["x.example"]);
        let f = from_domains(&["a@bücher.example".into(), "b@xn--bcher-kva.example".into()]);
        assert_eq!(f, ["xn--bcher-kva.example"]);
        assert!(from_domains(&[]).is_empty());
    }
}
