//! Session policy: the verdict at each stage of an SMTP session (relay and
//! recipient rules today; the gateway's sender groups, limits and filters
//! next).
//!
//! Pure decisions over facts the session supplies
//! (`postern_proto::session::{Stage, SessionFacts}`); no I/O.
//!
//! # Security
//! This is the open-relay defence: a recipient outside the accepted domains is
//! refused unless the client address is in a relay network or the session
//! authenticated. The default (no relay networks) relays for nobody.
//!
//! # Standards
//! RFC 5321 §3.6 (relaying), RFC 5321 §7.1 (mail security and spoofing).

pub mod admission;
pub mod authentication;
pub mod content;
pub mod recipients;
mod relay;
mod senders;
mod stages;

pub use relay::{Domains, RcptDecision, RelayPolicy, RelaySettings};
pub use senders::{BadSenderPattern, SenderLogins, check_sender_pattern, sender_not_owned};
pub use stages::{Policy, Refusal, relay_denied, sender_routing_denied};
