//! Relay and recipient policy: which recipients a session may use.
//!
//! Pure decisions over facts the session supplies; no I/O.
//!
//! # Security
//! This is the open-relay defence: a recipient outside the accepted domains is
//! refused unless the client address is in a relay network or the session
//! authenticated. The default (no relay networks) relays for nobody.
//!
//! # Standards
//! RFC 5321 §3.6 (relaying), RFC 5321 §7.1 (mail security and spoofing).

mod relay;

pub use relay::{Domains, RcptDecision, RelayPolicy, RelaySettings};
