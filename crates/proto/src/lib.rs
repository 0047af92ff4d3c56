//! Sans-I/O SMTP protocol core: commands, replies, paths, the command-line reader
//! and the DATA decoder.
//!
//! This crate does no I/O: no sockets, no TLS, no files, no clock. It turns bytes
//! into typed commands and typed replies into bytes, and it decides which reply a
//! malformed input deserves.
//!
//! A session uses it like this: received bytes go through [`LineReader`], each
//! complete line through [`parse_command`]; a [`CommandError`] becomes a reply
//! with [`CommandError::to_reply`]. After `354`, received bytes go through a
//! [`DataDecoder`] until [`DataStatus::Done`]; a [`DataError`] rejects the whole
//! message. BDAT chunks go through a [`BdatChecker`].
//!
//! # Security
//! Every byte handed to this crate comes from an untrusted peer. Nothing here may
//! panic on any input; all limits are enforced before allocation grows. The
//! parsers are fuzzed (`fuzz/`, `scripts/fuzz-smoke.sh`).
//!
//! # Standards
//! RFC 5321 (SMTP), RFC 3463 / RFC 2034 (enhanced status codes), RFC 1870 (SIZE),
//! RFC 6152 (8BITMIME), RFC 6531 (SMTPUTF8), RFC 3461 (DSN parameters),
//! RFC 3030 (CHUNKING), RFC 2920 (PIPELINING), RFC 4954 (AUTH), RFC 4616 (PLAIN),
//! HAProxy PROXY protocol v1/v2.

mod address;
mod command;
mod data;
mod ehlo;
mod header_fields;
mod limits;
mod line;
pub mod proxy;
mod reply;
mod reply_parser;
mod sasl;
pub mod session;
mod xtext;

pub use address::{
    AddressError, ForwardPath, Mailbox, ReversePath, is_valid_address_literal, is_valid_domain,
};
pub use command::{Body, Command, CommandError, MailFrom, Notify, RcptTo, Ret, parse_command};
pub use data::{BdatChecker, DataDecoder, DataError, DataStatus};
pub use ehlo::{Capabilities, ehlo_reply};
pub use header_fields::{header_values, is_bidi_format};
pub use limits::Limits;
pub use line::{Line, LineReader};
pub use proxy::{ProxyError, ProxyHeader};
pub use reply::{EnhancedCode, Reply};
pub use reply_parser::{
    EhloInfo, MAX_REPLY_LINE, MAX_REPLY_LINES, ReplyError, ReplyParser, parse_ehlo,
};
pub use sasl::{PlainCredentials, SaslError, decode_base64_line, decode_plain};
pub use xtext::{XtextError, decode_xtext, is_valid_xtext};
