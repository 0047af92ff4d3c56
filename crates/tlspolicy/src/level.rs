//! The outbound TLS policy levels (ARCHITECTURE.md, "Outbound TLS policy
//! levels"): what a connection to an MX host must achieve.
//!
//! # Standards
//! RFC 7435 (opportunistic security), RFC 3207 (STARTTLS), RFC 7672 (DANE
//! for SMTP), RFC 8461 (MTA-STS).

use std::fmt;
use std::str::FromStr;

/// A TLS policy level, weakest first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Never STARTTLS.
    None,
    /// STARTTLS when offered; after a failed handshake the transaction is
    /// retried in plaintext on a new connection (and the downgrade recorded).
    Opportunistic,
    /// STARTTLS when offered; a failed handshake defers (no plaintext retry).
    OpportunisticStrict,
    /// TLS is required; the certificate is not verified.
    Required,
    /// TLS with a PKIX-verified certificate that covers the MX host name.
    Verify,
    /// RFC 7672: authenticated TLSA records decide (DANE-EE / DANE-TA).
    Dane,
    /// RFC 8461: the MX host must match the policy and present a
    /// PKIX-verified certificate for its name.
    MtaSts,
}

impl Level {
    /// Every level, weakest first.
    pub const ALL: &'static [Level] = &[
        Level::None,
        Level::Opportunistic,
        Level::OpportunisticStrict,
        Level::Required,
        Level::Verify,
        Level::Dane,
        Level::MtaSts,
    ];

    /// The config / command-line spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Opportunistic => "opportunistic",
            Level::OpportunisticStrict => "opportunistic-strict",
            Level::Required => "required",
            Level::Verify => "verify",
            Level::Dane => "dane",
            Level::MtaSts => "mta-sts",
        }
    }

    /// A connection without TLS never satisfies this level (RFC 7672 §2.2,
    /// RFC 8461 §5: no plaintext fallback).
    pub fn requires_tls(self) -> bool {
        matches!(
            self,
            Level::Required | Level::Verify | Level::Dane | Level::MtaSts
        )
    }

    /// A failed TLS handshake is tolerated (plaintext retry).
    pub fn allows_plaintext_retry(self) -> bool {
        matches!(self, Level::None | Level::Opportunistic)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown level name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown TLS policy level {0:?}: use none, opportunistic, opportunistic-strict, required, verify, dane or mta-sts"
)]
pub struct ParseLevelError(pub String);

impl FromStr for Level {
    type Err = ParseLevelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase().replace('_', "-");
        Level::ALL
            .iter()
            .copied()
            .find(|l| l.as_str() == lower)
            .ok_or_else(|| ParseLevelError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for l in Level::ALL {
            assert_eq!(l.as_str().parse::<Level>(), Ok(*l));
        }
        assert_eq!("MTA_STS".parse::<Level>(), Ok(Level::MtaSts));
        assert!("encrypt".parse::<Level>().is_err());
    }

    #[test]
    fn tls_requirements() {
        assert!(!Level::Opportunistic.requires_tls());
        assert!(Level::Required.requires_tls());
        assert!(Level::Dane.requires_tls());
        assert!(Level::Opportunistic.allows_plaintext_retry());
        assert!(!Level::OpportunisticStrict.allows_plaintext_retry());
        assert!(Level::Verify > Level::Required);
    }
}
