//! The admin API: the running queue seen and steered by the operator, over a
//! Unix socket (`<data_dir>/admin.sock`), and the same views and verbs on the
//! spool while the server is stopped.
//!
//! Follow one command: `postern queue hold ID` connects with the [`client`] to
//! the socket the [`server`] serves (an axum router); the handler parses the id,
//! calls [`QueueControl::apply`] — implemented by the binary over delivery's
//! `DeliveryHandle`, since this crate does not depend on delivery — and answers
//! a [`VerbReport`] whose `text` is printed as is. When nobody answers on the
//! socket, the CLI calls [`offline::apply`] instead, which takes the spool lock
//! and writes the same records and events. Listings come from
//! [`QueueControl::messages`] (running) or [`view::read_spool`] (stopped) and
//! are shaped and filtered by [`view`].
//!
//! The same views and verbs, with tracking, metrics and the web console's
//! pages ([`ui`]), are served on TCP with authentication by [`http`].
//!
//! # Security
//! The socket is local only: it is created `0600`: its file permissions are the
//! access control (whoever can connect is the operator), so no password and no
//! TCP port is involved. Requests carry no bodies (limited to
//! [`server::MAX_BODY`]); ids are parsed [`postern_spool::QueueId`]s. See
//! `docs/threat-model.md`.
//!
//! # Standards
//! HTTP/1.1 (RFC 9112) over a Unix stream socket; JSON (RFC 8259).

pub mod client;
pub mod control;
pub mod health;
pub mod http;
pub mod offline;
pub mod server;
mod settings;
pub mod trace;
pub mod ui;
pub mod view;

pub use client::{AdminClient, ClientError};
pub use control::{
    BoxFuture, QueueControl, QueueStatus, Verb, VerbContext, VerbOutcome, VerbReport,
};
pub use health::{Poisoned, RecheckReport, SpoolHealth, Unreadable};
pub use server::{
    AdminError, AdminServer, ListBody, MAX_SOCKET_PATH, ShowBody, check_socket_path, start,
};
pub use settings::{AdminSettings, HttpSettings};
pub use view::{Filter, MessageInfo, QueuedMessage, RecipientInfo, State};
