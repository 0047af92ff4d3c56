//! Content inspection for Postern's filters (issue 11): a decoded, bounded view
//! of a message ([`mime`]: header fields, subject, body text, attachments with
//! declared and detected types) and word-boundary dictionaries ([`dict`]).
//!
//! This crate does no policy: it answers "what does this message say and
//! carry?" and "which dictionary entries occur in this text?". The rule
//! language (`postern-filter`) decides what to do with the answers.
//!
//! # Security
//! Everything here reads untrusted input (the message, and dictionary files
//! an administrator wrote). Parsing never panics and every allocation is
//! bounded by [`ViewLimits`] or by the dictionary file-size cap.
//!
//! # Example
//! ```
//! use postern_content::{Dictionary, MessageView, ViewLimits};
//!
//! let raw = b"Subject: =?utf-8?q?Caf=C3=A9?=\r\n\
//!             Content-Type: multipart/mixed; boundary=b\r\n\r\n\
//!             --b\r\nContent-Type: text/html\r\n\r\n<p>Our fr<b>ee</b> offer</p>\r\n\
//!             --b\r\nContent-Type: image/png; name=cat.png\r\n\r\nMZ\x90\x00\r\n--b--\r\n";
//! let view = MessageView::parse(raw, &ViewLimits::default());
//! assert_eq!(view.subject, "Café");
//! assert_eq!(view.attachments[0].filename.as_deref(), Some("cat.png"));
//! assert_eq!(view.attachments[0].detected_type.as_deref(), Some("application/x-msdownload"));
//!
//! let spam = Dictionary::parse("spam", "free offer, 5\nfree\n# a comment\n")?;
//! let hits: Vec<_> = spam.find_in(&view.body_text).map(|m| m.entry).collect();
//! assert_eq!(hits, ["free offer"]);
//! assert_eq!(spam.score(&view.body_text), 5);
//! # Ok::<(), postern_content::DictError>(())
//! ```

pub mod dict;
pub mod mime;

pub use dict::{DictError, DictMatch, Dictionaries, Dictionary, RefreshOutcome, RefreshReport};
pub use mime::{Attachment, HeaderField, MessageView, ViewLimits, decode_unstructured};
