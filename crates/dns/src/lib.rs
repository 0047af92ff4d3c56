//! DNS for Postern: MX (with null MX, RFC 7505), A/AAAA, TXT, TLSA, PTR lookups
//! through hickory, static overrides (the HOSTS-file equivalent), and the DNSSEC
//! status of each answer.
//!
//! Start at [`Resolver`]: build it from [`DnsSettings`], then ask
//! [`Resolver::mx`], [`Resolver::addresses`], [`Resolver::txt`],
//! [`Resolver::tlsa`] or [`Resolver::ptr`]. Every failure is a [`DnsError`]
//! with [`DnsError::is_transient`] telling delivery whether to defer or bounce.
//!
//! # Security
//! Answers come from the network and may be forged unless DNSSEC-authenticated;
//! every lookup result says whether it was (`authenticated`), and DANE relies
//! only on that. Static overrides are never authenticated.
//!
//! # Standards
//! RFC 1035, RFC 5321 §5.1 (MX, implicit MX), RFC 7505 (null MX), RFC 6698 /
//! RFC 7672 (TLSA for SMTP), RFC 4033–4035 (DNSSEC), RFC 6840 §5.8 (AD bit).

pub mod cause;
mod error;
mod overrides;
mod records;
mod resolver;
mod settings;

pub use error::DnsError;
pub use records::{AddrLookup, MxHost, MxKind, MxLookup, Tlsa, TlsaLookup, TxtLookup, order_hosts};
pub use resolver::Resolver;
pub use settings::{DnsSettings, DnssecMode, StaticEntry};
