//! Mail authentication for Postern (issue 10), built on `mail-auth` 0.13.3:
//! DKIM key generation and loading with the exact DNS record to publish
//! ([`keys`]), DKIM signing ([`sign`]) with a workaround for the library's
//! relaxed-body bug ([`canon`]), and checking a published DKIM key record
//! against our key ([`check`], causes and fixes in [`cause`]); inbound
//! verification: SPF, every DKIM signature, ARC and DMARC (RFC 7489, with a
//! public-suffix list shipped in the binary) and the
//! `Authentication-Results:` field ([`verify`]); DMARC aggregate reports
//! ([`report`]: recorder, aggregation, report messages).
//!
//! A crate of its own, not a `policy` module (ADR 0011): it does I/O (DNS,
//! key files) and cryptography; `policy` stays pure.
//!
//! # Security
//! Private keys are written 0600 and never overwritten; key material is only
//! ever printed as the public half.
//!
//! # Standards
//! RFC 6376 (DKIM), RFC 8463 (Ed25519-SHA256 for DKIM), RFC 8301 (RSA ≥ 1024,
//! SHA-256 only), RFC 7208 (SPF), RFC 8617 (ARC), RFC 7489 (DMARC), RFC 8601
//! (Authentication-Results).

pub mod arc_seal;
pub mod canon;
pub mod cause;
pub mod check;
pub mod keys;
pub mod report;
pub mod sign;
pub mod signing;
pub mod verify;

pub use check::{CheckReport, Finding, check_record, check_records};
pub use keys::{Algorithm, DkimKeyFile, KeyError, generate, load_key, write_key};
pub use sign::{SignError, SignOptions, Signer};
pub use verify::{
    ArcResult, ArcVerdict, AuthResults, DkimResult, DkimVerdict, DmarcPolicy, DmarcPublished,
    DmarcResult, DmarcVerdict, SpfResult, SpfVerdict, SpfVerdicts, Verifier, VerifierSettings,
    VerifyError, VerifyInput,
};
