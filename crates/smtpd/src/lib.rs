//! Inbound SMTP: turns TCP connections into durably queued messages.
//!
//! # Security
//! Talks to untrusted peers on every listener. Touches disk only through
//! `postern-spool` and the transcript log.
//!
//! # Standards
//! RFC 5321, RFC 3207 (STARTTLS), RFC 8314 (implicit TLS for submission),
//! RFC 4954 (AUTH), RFC 1870 (SIZE), RFC 2920 (PIPELINING), RFC 3030 (CHUNKING).

mod settings;

pub use settings::{
    AuthMode, ListenerKind, ListenerSettings, ServerSettings, SessionLimits, TlsMode,
    TranscriptFormat, TranscriptSettings, User, VrfyMode,
};
