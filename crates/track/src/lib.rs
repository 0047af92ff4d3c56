//! What happened to each message: the `MailEvent` catalogue with stable event
//! names, written as JSON lines (the mail log the tracking database will index).
//!
//! # Security
//! Records envelope addresses and TLS facts, never message bodies or AUTH
//! secrets.
