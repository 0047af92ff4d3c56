//! Inbound SMTP: turns TCP connections into durably queued messages.
//!
//! Layout: `server` (listeners, admission, reload, shutdown) → `session` (one
//! task per connection: `commands`, `auth`, `starttls`, `data`) → `postern-spool`.
//! `gateway` looks up what sender groups need (PTR, FCrDNS, DNS lists);
//! `recipients` validates recipients at RCPT (table, call-ahead, Maildir).
//! `replies` is the table of every reply the session composes; `received` builds
//! the trace header; `transcript` writes the `<<<`/`>>>` log.
//!
//! # Security
//! Talks to untrusted peers on every listener. Touches disk only through
//! `postern-spool` and the transcript log.
//!
//! # Standards
//! RFC 5321, RFC 3207 (STARTTLS), RFC 8314 (implicit TLS for submission),
//! RFC 4954 (AUTH), RFC 1870 (SIZE), RFC 2920 (PIPELINING), RFC 3030 (CHUNKING).

mod admission;
mod auth;
mod conn;
pub mod content;
mod counting;
pub mod gateway;
mod mailauth;
mod proxy;
mod received;
pub mod recipients;
mod replies;
pub mod rewrite;
mod server;
mod session;
mod settings;
pub mod trace;
mod transcript;

pub use auth::hash_password;
pub use mailauth::MailAuthError;
pub use recipients::{
    CallAheadSettings, CallAheadTls, MaildirLookup, OnError, RecipientRule, RecipientSource,
};
pub use server::{Accepted, QueuedHook, Server, SmtpdError};
pub use settings::{
    ArcSealSettings, AuthMode, AuthenticationSettings, ContentSettings, ListenerKind,
    ListenerSettings, Notification, ProxyProtocol, RulesFile, ServerSettings, SessionLimits,
    TlsMode, TranscriptFormat, TranscriptSettings, User, VrfyMode,
};
pub use transcript::{Direction, Transcript};
