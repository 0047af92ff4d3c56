//! Verdict types of inbound verification: one per method, serialisable
//! (the mail log writes them as JSON, the spool envelope stores them).
//! Result enums give the RFC 8601 result words with `as_str()`.
//!
//! # Standards
//! RFC 8601 §2.7 (result words per method), RFC 7208 §2.6 (SPF results),
//! RFC 6376 §6.1 / RFC 8601 §2.7.1 (DKIM), RFC 8617 §4.4 (ARC), RFC 7489
//! §6.6 (DMARC).

use serde::{Deserialize, Serialize};

/// SPF result (RFC 7208 §2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpfResult {
    /// No SPF record, or no valid domain to check.
    None,
    /// `?` matched, or nothing matched and no `all`.
    Neutral,
    /// The client is authorised.
    Pass,
    /// The client is not authorised (`-`).
    Fail,
    /// Probably not authorised (`~`).
    SoftFail,
    /// A transient DNS error.
    TempError,
    /// A broken record or a lookup limit exceeded.
    PermError,
}

impl SpfResult {
    /// The RFC 8601 result word.
    pub fn as_str(self) -> &'static str {
        match self {
            SpfResult::None => "none",
            SpfResult::Neutral => "neutral",
            SpfResult::Pass => "pass",
            SpfResult::Fail => "fail",
            SpfResult::SoftFail => "softfail",
            SpfResult::TempError => "temperror",
            SpfResult::PermError => "permerror",
        }
    }
}

/// One SPF check (HELO or MAIL FROM identity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpfVerdict {
    /// The result.
    pub result: SpfResult,
    /// The domain checked (the HELO name, or the MAIL FROM domain; for a
    /// null reverse-path the HELO name, RFC 7208 §2.4).
    pub domain: String,
    /// The identity checked: the MAIL FROM address, or `postmaster@<domain>`
    /// for the HELO identity and a null reverse-path.
    #[serde(default)]
    pub identity: String,
    /// Why, in a few words (the `exp=` text when the domain gave one).
    pub reason: String,
}

impl SpfVerdict {
    /// A verdict `none` with a reason (nothing was checked).
    pub fn none(domain: &str, reason: &str) -> SpfVerdict {
        SpfVerdict {
            result: SpfResult::None,
            domain: domain.to_owned(),
            identity: String::new(),
            reason: reason.to_owned(),
        }
    }
}

/// Both SPF checks of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpfVerdicts {
    /// HELO/EHLO identity (RFC 7208 §2.3).
    pub helo: SpfVerdict,
    /// MAIL FROM identity (RFC 7208 §2.4).
    pub mail_from: SpfVerdict,
}

/// DKIM result for one signature (RFC 8601 §2.7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DkimResult {
    /// The message was not signed.
    None,
    /// The signature verified.
    Pass,
    /// The signature or body hash did not verify.
    Fail,
    /// Not verified for a reason that is not a failure (expired, ...).
    Neutral,
    /// Verified but not acceptable by local policy.
    Policy,
    /// Key lookup failed transiently.
    TempError,
    /// The signature or key record is broken.
    PermError,
}

impl DkimResult {
    /// The RFC 8601 result word.
    pub fn as_str(self) -> &'static str {
        match self {
            DkimResult::None => "none",
            DkimResult::Pass => "pass",
            DkimResult::Fail => "fail",
            DkimResult::Neutral => "neutral",
            DkimResult::Policy => "policy",
            DkimResult::TempError => "temperror",
            DkimResult::PermError => "permerror",
        }
    }
}

/// One DKIM signature's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkimVerdict {
    /// The result.
    pub result: DkimResult,
    /// `d=` (empty when the signature could not be parsed and had none).
    pub domain: String,
    /// `s=`.
    pub selector: String,
    /// `a=` (`rsa-sha256`, `ed25519-sha256`, `rsa-sha1`).
    pub algorithm: String,
    /// The first characters of `b=` (at least 8; more when two signatures
    /// share them), for `header.b` (RFC 6008).
    pub header_b: String,
    /// Why, in a few words.
    pub reason: String,
}

/// ARC chain result (RFC 8617 §4.4: none, pass, fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArcResult {
    /// No ARC sets.
    None,
    /// The chain validated.
    Pass,
    /// The chain is broken or a seal/signature did not verify.
    Fail,
}

impl ArcResult {
    /// The RFC 8601 result word.
    pub fn as_str(self) -> &'static str {
        match self {
            ArcResult::None => "none",
            ArcResult::Pass => "pass",
            ArcResult::Fail => "fail",
        }
    }
}

/// ARC chain validation (RFC 8617 §5.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArcVerdict {
    /// The result.
    pub result: ArcResult,
    /// Number of ARC sets (the highest `i=`).
    pub instances: u32,
    /// `d=` of each ARC-Seal, `i=1` first.
    pub sealers: Vec<String>,
    /// Why, in a few words.
    pub reason: String,
}

/// DMARC result (RFC 7489 §11.2 / RFC 8601 §2.7.1 words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DmarcResult {
    /// No policy published (or no single From domain to look up).
    None,
    /// An aligned SPF or DKIM pass.
    Pass,
    /// Neither aligned.
    Fail,
    /// A DNS lookup failed transiently: never treat as a failure.
    TempError,
    /// The message or record cannot be evaluated (several From domains).
    PermError,
}

impl DmarcResult {
    /// The RFC 8601 result word.
    pub fn as_str(self) -> &'static str {
        match self {
            DmarcResult::None => "none",
            DmarcResult::Pass => "pass",
            DmarcResult::Fail => "fail",
            DmarcResult::TempError => "temperror",
            DmarcResult::PermError => "permerror",
        }
    }
}

/// A DMARC policy (`p=` / `sp=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DmarcPolicy {
    /// Monitor only.
    None,
    /// Treat failing mail as suspicious.
    Quarantine,
    /// Reject failing mail.
    Reject,
}

impl DmarcPolicy {
    /// The record's word.
    pub fn as_str(self) -> &'static str {
        match self {
            DmarcPolicy::None => "none",
            DmarcPolicy::Quarantine => "quarantine",
            DmarcPolicy::Reject => "reject",
        }
    }
}

/// DMARC identifier alignment mode (`adkim=` / `aspf=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Alignment {
    /// Organisational domains equal (`r`, the default).
    Relaxed,
    /// Domains equal (`s`).
    Strict,
}

/// The published policy record, as aggregate reports need it (RFC 7489
/// §7.2.1.1 `policy_published`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmarcPublished {
    /// The domain where the record was found (From domain or organisational domain).
    pub domain: String,
    /// `adkim=`.
    pub adkim: Alignment,
    /// `aspf=`.
    pub aspf: Alignment,
    /// `p=`.
    pub p: DmarcPolicy,
    /// `sp=` (defaults to `p`).
    pub sp: DmarcPolicy,
    /// `pct=` (0–100, default 100).
    pub pct: u8,
}

/// The DMARC evaluation (RFC 7489 §6.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmarcVerdict {
    /// The result.
    pub result: DmarcResult,
    /// The RFC 5322.From domain (empty when there is none, or the first of several).
    pub from_domain: String,
    /// Its organisational domain (public-suffix list).
    pub org_domain: String,
    /// The policy that applies: `p`, or `sp` when the record was found at
    /// the organisational domain and the From domain is a subdomain.
    pub policy: DmarcPolicy,
    /// `pct=` of the record (100 without a record).
    pub pct: u8,
    /// Whether `pct` sampling selected this message for the policy (§6.6.4);
    /// when false, apply the next weaker policy (reject → quarantine → none).
    pub sampled: bool,
    /// An SPF pass whose domain aligns with the From domain.
    pub spf_aligned: bool,
    /// A DKIM pass whose `d=` aligns with the From domain.
    pub dkim_aligned: bool,
    /// `rua=` URIs of the record (aggregate report destinations, unverified).
    pub rua: Vec<String>,
    /// Why, in a few words.
    pub reason: String,
    /// The record, for aggregate reports.
    pub published: Option<DmarcPublished>,
}

impl DmarcVerdict {
    /// A verdict without a record.
    pub(crate) fn empty(result: DmarcResult, reason: &str) -> DmarcVerdict {
        DmarcVerdict {
            result,
            from_domain: String::new(),
            org_domain: String::new(),
            policy: DmarcPolicy::None,
            pct: 100,
            sampled: false,
            spf_aligned: false,
            dkim_aligned: false,
            rua: Vec::new(),
            reason: reason.to_owned(),
            published: None,
        }
    }

    /// The policy to act on after `pct` sampling (§6.6.4): the published
    /// one when sampled, else the next weaker one; `None` unless the result
    /// is `fail`.
    pub fn effective_policy(&self) -> DmarcPolicy {
        if self.result != DmarcResult::Fail {
            return DmarcPolicy::None;
        }
        match (self.policy, self.sampled) {
            (p, true) => p,
            (DmarcPolicy::Reject, false) => DmarcPolicy::Quarantine,
            (_, false) => DmarcPolicy::None,
        }
    }
}

/// Everything verified for one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthResults {
    /// SPF for HELO and MAIL FROM.
    pub spf: SpfVerdicts,
    /// One verdict per DKIM-Signature, in header order (empty: unsigned).
    pub dkim: Vec<DkimVerdict>,
    /// ARC chain.
    pub arc: ArcVerdict,
    /// DMARC.
    pub dmarc: DmarcVerdict,
}
