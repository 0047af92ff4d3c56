//! The pickup folder: a message file dropped into `<data_dir>/pickup/` is
//! queued as if it had arrived by SMTP (the IIS SMTP "Pickup" directory, or
//! Postfix's `sendmail -t`).
//!
//! An inbound path like the smtpd: it depends on the spool, the mail log and
//! proto, not on delivery (`docs/adr/0008-pickup-crate.md`).
//!
//! Each regular file is one RFC 5322 message, optionally preceded by IIS
//! envelope lines:
//!
//! ```text
//! X-Sender: app@example.com
//! X-Receiver: alice@example.net
//! X-Receiver: bob@example.org
//! From: Billing <app@example.com>
//! To: Alice <alice@example.net>
//! Subject: Invoice 42
//!
//! Hello.
//! ```
//!
//! The leading `X-Sender:`/`X-Receiver:` lines (any case) give the envelope
//! and are not stored. Without them the sender comes from `Sender:` or
//! `From:` and the recipients from every `To:`, `Cc:` and `Bcc:`. `Bcc:` is
//! always removed from the stored copy (RFC 5322 §3.6.3). A leading mbox
//! `From ` line is dropped. Bare LF and bare CR become CRLF. `Date:` and
//! `Message-ID:` are added when missing (RFC 5322 §3.6), and a `Received:`
//! trace header is prepended (`from pickup by <hostname> (Postern) with
//! local-pickup id <queue id>`).
//!
//! Writers must create the file elsewhere (or under a name starting with `.`
//! or ending in `.tmp`, which are skipped) and then `rename` it into the
//! folder, so the watcher never sees half a file. A file that changes while
//! it is read is left alone and read again on a later scan.
//!
//! The watcher scans on start and then every `interval`, in name order, at most
//! [`MAX_FILES_PER_SCAN`] files per scan and one file at a time: the file is
//! streamed to the spool; only when [`Incoming::commit`] has returned (the
//! message is durable) is the file unlinked and the folder fsynced, and then
//! the scheduler is told (the `on_queued` callback (the binary passes the scheduler's `Notifier::notify_pickup`)). A crash between the
//! commit and the unlink queues the file again at the next start: a
//! duplicate, never a loss.
//!
//! A file that cannot become a message (no recipients, a bad address, no
//! blank line after the header within [`MAX_HEADER_BLOCK`], too big, empty,
//! unreadable, not a regular file) is moved to the badmail folder under a
//! name of its own with `<name>.reason.txt` beside it saying why, and logged:
//! never deleted. When the spool cannot take messages (disk full, poisoned)
//! the files stay where they are and are tried again every `spool_retry`,
//! logged once.
//!
//! # Security
//! Write access to the folder is the right to send mail as anyone to anyone
//! (like `sendmail`): the folder is created owner-only (0700), and the
//! operator decides who else may write to it (docs/threat-model.md). Files
//! are opened with `O_NOFOLLOW|O_NONBLOCK` and must be regular files with one
//! link, so a symlink or hard link cannot make Postern mail a file the writer
//! could not read itself, and a FIFO cannot block the watcher. The header
//! block is bounded ([`MAX_HEADER_BLOCK`]); bodies are streamed, never held
//! whole. File owners (uid) are logged with each queued message.
//!
//! # Standards
//! RFC 5322 §2.3 (CRLF), §3.6 (Date required, Message-ID should be present),
//! §3.6.2 (Sender/From), §3.6.3 (To/Cc/Bcc; Bcc removed), RFC 5321 §4.4
//! (trace information), RFC 6152 (8BITMIME), RFC 6531 (SMTPUTF8 addresses).

mod parse;
mod settings;
mod watcher;

pub use parse::{MAX_HEADER_BLOCK, MAX_RECIPIENTS, Parsed, parse_header, received_header};
pub use settings::PickupSettings;
pub use watcher::{
    LISTENER, MAX_FILES_PER_SCAN, OnQueued, Pickup, PickupHandle, ScanReport, SharedSigning,
};
