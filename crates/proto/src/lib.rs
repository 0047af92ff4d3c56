//! Sans-I/O SMTP protocol core: commands, replies, paths, the command-line reader
//! and the DATA decoder.
//!
//! This crate does no I/O: no sockets, no TLS, no files, no clock. It turns bytes
//! into typed commands and typed replies into bytes, and it decides which reply a
//! malformed input deserves.
//!
//! # Security
//! Every byte handed to this crate comes from an untrusted peer. Nothing here may
//! panic on any input; all limits are enforced before allocation grows.
//!
//! # Standards
//! RFC 5321 (SMTP), RFC 3463 / RFC 2034 (enhanced status codes), RFC 1870 (SIZE),
//! RFC 6152 (8BITMIME), RFC 6531 (SMTPUTF8), RFC 3461 (DSN parameters),
//! RFC 3030 (CHUNKING), RFC 2920 (PIPELINING), RFC 4954 (AUTH).

mod limits;

pub use limits::Limits;
