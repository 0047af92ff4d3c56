//! What the evaluator looks at: the envelope and session facts the caller supplies, the
//! decoded message, and the dictionaries.
//!
//! Everything is borrowed: building a `Facts` costs nothing, and one `Facts` serves every
//! recipient of a per-recipient evaluation.
//!
//! # Security
//! The message view and most facts come from the peer; the evaluator only reads them.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use postern_content::{Dictionaries, Dictionary, MessageView};

/// TLS facts of the session the message came in on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// Protocol version as rustls names it: `"TLSv1.3"`, `"TLSv1.2"` (also accepted:
    /// `"1.3"`).
    pub version: String,
    /// Cipher suite name, e.g. `"TLS13_AES_256_GCM_SHA384"`.
    pub cipher: String,
    /// The client presented a certificate that verified.
    pub client_cert_verified: bool,
}

/// The spam verdict of the message (from rspamd or another engine).
#[derive(Debug, Clone, PartialEq)]
pub struct Spam {
    pub score: f64,
    /// The engine's action word, e.g. rspamd's `"no action"`, `"add header"`, `"reject"`.
    pub action: String,
}

/// A virus found in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Virus {
    /// The signature name the scanner reported.
    pub name: String,
}

/// Where the evaluator finds dictionaries by name. Implemented for the live
/// [`Dictionaries`] and for a plain map (tests, the dry run).
pub trait DictionaryLookup {
    /// The dictionary named `name`, if there is one.
    fn dictionary(&self, name: &str) -> Option<Arc<Dictionary>>;
}

impl DictionaryLookup for Dictionaries {
    fn dictionary(&self, name: &str) -> Option<Arc<Dictionary>> {
        self.get(name)
    }
}

impl DictionaryLookup for BTreeMap<String, Arc<Dictionary>> {
    fn dictionary(&self, name: &str) -> Option<Arc<Dictionary>> {
        self.get(name).cloned()
    }
}

/// Everything a rule can test. Absent facts (`None`) make every test on them false, so
/// `not dmarc is pass` is true for a message that was not checked.
#[derive(Clone, Copy)]
pub struct Facts<'a> {
    /// Envelope sender (MAIL FROM) without `<>`; `""` for the null reverse path.
    pub sender: &'a str,
    /// Envelope recipients (RCPT TO) without `<>`, as accepted.
    pub recipients: &'a [String],
    /// Name of the listener the message came in on.
    pub listener: &'a str,
    /// The sender group the client was classified into.
    pub sender_group: Option<&'a str>,
    /// The mail-flow policy applied.
    pub policy: Option<&'a str>,
    /// The SMTP AUTH identity, when the client authenticated.
    pub auth_user: Option<&'a str>,
    pub client_ip: Option<IpAddr>,
    /// The EHLO/HELO name.
    pub helo: Option<&'a str>,
    /// RFC 8601 result words (`pass`, `fail`, `softfail`, `none`, …).
    pub spf: Option<&'a str>,
    pub dkim: Option<&'a str>,
    pub dmarc: Option<&'a str>,
    /// `None`: the session was plaintext.
    pub tls: Option<&'a TlsInfo>,
    /// `None`: not scanned for spam.
    pub spam: Option<&'a Spam>,
    /// `None`: clean or not scanned.
    pub virus: Option<&'a Virus>,
    pub message: &'a MessageView,
    pub dictionaries: &'a dyn DictionaryLookup,
}

impl<'a> Facts<'a> {
    /// Facts with only the envelope and message set; the rest `None`/empty. Fill in the
    /// other fields with struct update syntax.
    pub fn new(
        sender: &'a str,
        recipients: &'a [String],
        message: &'a MessageView,
        dictionaries: &'a dyn DictionaryLookup,
    ) -> Self {
        Facts {
            sender,
            recipients,
            listener: "",
            sender_group: None,
            policy: None,
            auth_user: None,
            client_ip: None,
            helo: None,
            spf: None,
            dkim: None,
            dmarc: None,
            tls: None,
            spam: None,
            virus: None,
            message,
            dictionaries,
        }
    }
}
