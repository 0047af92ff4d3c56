//! The outbound SMTP client session: connect, banner, EHLO, STARTTLS, AUTH,
//! MAIL/RCPT/DATA (pipelined when offered), QUIT — with a transcript hook and
//! the TLS facts of the handshake. Shared by delivery and diagnostics (ADR 0004).
//!
//! # Security
//! Talks to remote servers; every reply is untrusted input parsed with limits.
//! Outbound message data is always dot-stuffed and sent with CRLF line ends only
//! (we never relay a bare LF: the SMTP-smuggling defence, outbound side).
//!
//! # Standards
//! RFC 5321, RFC 3207 (STARTTLS), RFC 2920 (PIPELINING), RFC 4954 (AUTH),
//! RFC 3030 (CHUNKING), RFC 1870 (SIZE), RFC 3461 (DSN).
