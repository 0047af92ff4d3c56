//! Content engines reached over their own protocols: rspamd for spam
//! verdicts ([`RspamdClient`], HTTP `POST /checkv2`) and ClamAV's clamd for
//! virus verdicts ([`ClamdClient`], `INSTREAM`). The SMTP server calls them
//! at the end of DATA; mail-flow policy turns their verdicts into actions.
//! This crate only asks and reports: it decides nothing.
//!
//! Each client is built from plain settings ([`RspamdSettings`],
//! [`ClamdSettings`]; the configuration crate fills them), holds no
//! connection (one per call; both engines are local and cheap to reach), and
//! bounds every call by one deadline (connect and the whole exchange), the
//! message by a maximum size, and the reply by a maximum size. Every failure
//! is an [`EngineError`] with a catalogue cause ([`cause`]); the caller
//! applies its failure mode (`tempfail` or `accept`) to any of them.
//!
//! See docs/engines.md for what is sent and read, and troubleshooting.
//!
//! # Security
//! The message and the envelope are attacker-chosen. Envelope values become
//! HTTP request headers only through [`sanitize::header_value`] (no CR/LF:
//! CWE-113). What the engines return is checked before the caller can use
//! it: header fields to add are valid and cannot inject fields
//! ([`sanitize::folded_field_value`]), texts for SMTP replies are one
//! printable line. No credential reaches a log or an error.

mod addr;
pub mod cause;
pub mod clamd;
mod error;
pub mod rspamd;
pub mod sanitize;

pub use addr::{AddrError, EngineAddr};
pub use cause::EngineCause;
pub use clamd::{ClamdClient, ClamdSettings, SizeLimit, VirusVerdict};
pub use error::{Engine, EngineError, Stage};
pub use rspamd::{
    MilterHeader, RemoveHeader, RspamdClient, RspamdSettings, ScanRequest, SkipReason, SpamAction,
    SpamOutcome, SpamVerdict, Symbol,
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The server calls the clients from spawned session tasks: their
    /// futures must be `Send`, also with a borrowed reader.
    #[test]
    fn futures_are_send() {
        fn send<T: Send>(_: &T) {}
        let rspamd = RspamdClient::new(RspamdSettings::default());
        let rcpts = vec!["bob@example.org".to_owned()];
        let req = ScanRequest {
            rcpts: &rcpts,
            ..ScanRequest::default()
        };
        let message: &[u8] = b"Subject: x\r\n\r\nhi\r\n";
        send(&rspamd.check(&req, message, message.len() as u64));
        send(&rspamd.ping());
        let clamd = ClamdClient::new(ClamdSettings::default());
        send(&clamd.scan(message));
        send(&clamd.ping());
        send(&clamd.version());
    }
}
