//! Delivery: the queue manager that gets accepted mail to its destination
//! under the TLS policy an administrator chose, and explains every attempt.
//!
//! Follow one message: the smtpd commits it to the spool and calls
//! [`DeliveryHandle::notify`]; the [`scheduler`] loads its envelope and
//! `state/<id>`, puts it in the due-time heap ([`due`]), groups its recipients
//! by [`route`] (MX or smart host, TLS level and why), and hands each group to
//! a connection slot of the [`transport`] within the per-destination and global
//! limits. The SMTP transport ([`smtp`]) resolves MX records, connects, applies
//! the TLS level (`none` … `verify`), sends, and reports one result per
//! recipient plus one `attempt` event per connection with its TLS facts and,
//! on failure, a [`cause`] with the smallest safe fix. The scheduler records
//! outcomes in `state/<id>`, retries deferrals on the schedule, bounces
//! permanent failures and expired recipients with an RFC 3464 [`dsn`], and
//! removes the message when every recipient is final.
//!
//! Routes for domains that live here deliver into local Maildir folders
//! instead ([`maildir`]): no DNS, no TLS, one file per recipient.
//!
//! The level of each host is planned in [`tls_plan`]: routes' levels, raised
//! from the default to DANE (RFC 7672) or MTA-STS (RFC 8461) when the
//! destination publishes them.
//!
//! # Security
//! Talks to remote servers and handles untrusted replies; never falls back to
//! plaintext when the level requires TLS; never bounces an unknown error
//! (tenet 1: unknown errors defer); never sends a DSN to the null sender;
//! smart-host passwords are sent only over TLS and never logged.
//!
//! # Standards
//! RFC 5321 (SMTP, §5.1 MX, §4.5.4.1 retries), RFC 7505 (null MX), RFC 3207
//! (STARTTLS), RFC 7435 (opportunistic TLS), RFC 3461/3464 (DSN), RFC 4954
//! (AUTH), RFC 8314 (implicit TLS).

pub mod cause;
pub mod clock;
pub mod control;
pub mod dsn;
pub mod due;
mod handle;
pub mod maildir;
pub mod route;
pub mod scheduler;
pub mod settings;
pub mod smtp;
pub mod tls_plan;
pub mod transport;

pub use clock::{Clock, SystemClock, TokioClock};
pub use control::{LoadFailure, MessageView, Verb, VerbContext, VerbOutcome, VerbReport};
pub use handle::{Controller, DeliveryHandle, Notifier, start};
pub use route::{NextHop, Route, Router};
pub use scheduler::{Origin, QueueSnapshot};
pub use settings::{
    Credentials, DeliverySettings, DomainPattern, MaildirSettings, MaildirTemplate, RouteSettings,
    RouteTarget, SmartHost, TlsLevel,
};
pub use smtp::{SmtpTransport, TransportError};
pub use transport::{Job, JobFeed, JobOutcome, RcptResult, Transport, Verdict};
