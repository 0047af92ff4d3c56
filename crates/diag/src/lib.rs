//! Diagnostics: answers "is TLS right, and if not, why?" for our own listeners
//! and anyone else's, without a running daemon.
//!
//! Modules: `headers` (Received chain and authentication results),
//! `scan` (graded TLS scanner with hand-built ClientHellos).
//!
//! # Security
//! Talks to remote servers the operator names; parses their replies and
//! certificates as untrusted input. Never sends mail unless asked to.
//!
//! # Standards
//! RFC 5321 §4.4 (trace headers), RFC 8601 (Authentication-Results),
//! RFC 8446 / RFC 5246 (TLS), RFC 3207 (STARTTLS).

pub mod certcheck;
pub mod headers;
pub mod scan;
pub mod verify;
