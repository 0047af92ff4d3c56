//! Outbound TLS policy for SMTP, shared by delivery and diagnostics
//! (ADR 0005): the policy levels, DANE TLSA matching (RFC 7672) and MTA-STS
//! (RFC 8461: TXT record, HTTPS policy fetch, policy parse, MX pattern
//! matching, on-disk cache), plus the `policy.*` failure causes both report.
//!
//! What is here decides *whether a connection is good enough*; it does not
//! connect to MX hosts (that is `postern-smtpc`) and does not decide what to
//! do with a message (that is `postern-delivery`).
//!
//! - [`dane::match_tlsa`]: do the TLSA records match the presented chain?
//! - [`mta_sts::Policy::parse`], [`mta_sts::mx_matches`]: what does the
//!   domain's policy say, and does this MX host satisfy it?
//! - [`mta_sts::PolicyFetcher`]: fetch the policy over PKIX-verified HTTPS
//!   with bounded time and size; [`mta_sts::PolicyCache`]: remember it.
//! - [`judge`]: the decision table (level × what the connection showed →
//!   pass / warn / fail with the cause), so delivery and `tls verify` agree.
//!
//! # Security
//! Everything parsed here is untrusted: TLSA records, TXT records, HTTP
//! responses and certificates come from the network. DANE trusts TLSA
//! records only from DNSSEC-authenticated lookups; MTA-STS trusts a policy
//! only from an HTTPS server whose certificate verifies (PKIX) for
//! `mta-sts.<domain>`. The fetcher follows no redirect, reads at most a
//! bounded body, and gives up after a bounded time. The cache writes only
//! below the directory it is given, with file names derived from validated
//! domain names.
//!
//! # Standards
//! RFC 6698 (TLSA), RFC 7671 (DANE operations), RFC 7672 (SMTP security via
//! opportunistic DANE TLS), RFC 8461 (MTA-STS), RFC 7435 (opportunistic
//! security), RFC 6125 (name matching).

pub mod cause;
pub mod dane;
pub mod judge;
mod level;
pub mod mta_sts;

pub use dane::{DaneResult, match_tlsa};
pub use judge::Judgement;
pub use level::{Level, ParseLevelError};
