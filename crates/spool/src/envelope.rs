//! The envelope record stored after each message body: who sent it, to whom, with
//! which MAIL parameters, and how we received it.
//!
//! # Security
//! Fields come from the SMTP dialogue (untrusted) but are only stored and shown;
//! the spool interprets none of them. On read the JSON is parsed only after its
//! CRC matched, and its length is bounded (`format::MAX_ENVELOPE_LEN`).
//!
//! # Standards
//! RFC 5321 (paths), RFC 3461 (DSN: `NOTIFY`, `ORCPT`, `RET`, `ENVID`),
//! RFC 6152 / RFC 3030 (`BODY`), RFC 6531 (`SMTPUTF8`), RFC 1870 (`SIZE`),
//! RFC 3339 (`received_at`).

use serde::{Deserialize, Serialize};

use crate::id::QueueId;

/// Everything about an accepted message except its bytes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Envelope {
    /// Set by `Incoming::commit` to the id of the message it commits.
    pub queue_id: QueueId,
    /// RFC 3339 UTC time of acceptance. `Incoming::commit` fills it in when empty.
    pub received_at: String,
    /// The MAIL FROM path without angle brackets; `""` is the null path `<>`.
    pub reverse_path: String,
    /// The accepted recipients, in RCPT order.
    pub recipients: Vec<EnvelopeRecipient>,
    /// MAIL FROM parameters.
    #[serde(default)]
    pub params: MailParams,
    /// How the message reached us.
    pub receipt: Receipt,
    /// Body length in bytes as stored; set by `Incoming::commit`.
    #[serde(default)]
    pub message_size: u64,
    /// Header fields added once the whole message was seen (at end of data):
    /// our `Authentication-Results:` (RFC 8601) and `DKIM-Signature:` fields
    /// (RFC 6376), complete with their CRLFs. Delivery sends them before the
    /// stored body ([`crate::MessageReader`] yields them first), so the body
    /// streamed to disk as it arrived is never rewritten. Empty for most
    /// messages; absent in files written before it existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub added_headers: String,
    /// Accepted *held*, with the reason (a DMARC `p=quarantine` failure under
    /// a policy that quarantines, a filter rule, a virus): delivery does not
    /// attempt it until an operator releases it (`postern quarantine release`),
    /// which is recorded in `state/<id>` like any release, or its quarantine's
    /// retention ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
    /// The named quarantine a held message is in (`[[quarantine]]`; its
    /// retention and what happens at expiry). Absent with `hold` set (files
    /// written before named quarantines existed): [`DEFAULT_QUARANTINE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<String>,
    /// Deliver only over TLS with a verified peer (`verify`, `dane` or
    /// `mta-sts`; never plaintext, never an unverified certificate): set by a
    /// content filter's `require-tls` action (the idea of RFC 8689
    /// REQUIRETLS, decided by our policy rather than the sender). Attempts
    /// that cannot meet it defer, and the message bounces at the end of its
    /// lifetime.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_tls: bool,
    /// What the content engines (rspamd, ClamAV, milters) and the filter
    /// rules decided at end of data, in the order they ran: kept with the
    /// message for `postern queue show` / `quarantine show` and logged as
    /// the `filtered` event. Empty when nothing ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<ContentDecision>,
    /// Bounce every recipient with this reply (`550 5.7.1 …`) instead of
    /// delivering: a content filter refused these recipients of a message
    /// that others received, and one SMTP reply at end of data cannot refuse
    /// only some (the copy for the others is queued separately). Delivery
    /// records the bounce and sends the DSN the recipients' NOTIFY asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounce: Option<String>,
    /// The message's `Message-ID:` field value as received (unfolded,
    /// bounded), for message tracking; absent when the message has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The `Subject:` (decoded, unfolded, bounded), for message tracking;
    /// recorded only when `[tracking] subjects` allows it (privacy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// One content decision (`Envelope::content`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentDecision {
    /// Who decided: `rspamd`, `clamav`, `milter:<name>`, `rule:<name>`
    /// (`<file>:<line>` in `verdict`), `policy` (a mail-flow policy action).
    pub by: String,
    /// What it found: `spam suspect (score 7.20 of 15.00)`, `infected
    /// Eicar-Test-Signature`, `matched at message.rules:12`, `accept`.
    pub verdict: String,
    /// What was done because of it: `tag subject`, `quarantine "spam"`,
    /// `add-header X-Foo`, `redirect to a@b`, or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub action: String,
}

/// The quarantine of a message accepted held without a name: `policy`
/// (DMARC quarantines and files from before named quarantines).
pub const DEFAULT_QUARANTINE: &str = "policy";

impl Envelope {
    /// The quarantine this message is in: `None` unless it was accepted held.
    pub fn quarantine_name(&self) -> Option<&str> {
        self.hold
            .as_ref()
            .map(|_| self.quarantine.as_deref().unwrap_or(DEFAULT_QUARANTINE))
    }

    /// The message's length as delivered: the added header fields plus the
    /// stored body (RFC 1870 `SIZE=` on delivery).
    pub fn wire_size(&self) -> u64 {
        self.message_size + self.added_headers.len() as u64
    }
}

/// One accepted recipient (RCPT TO).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct EnvelopeRecipient {
    /// The forward path without angle brackets.
    pub address: String,
    /// RFC 3461 `NOTIFY=` value, as given.
    #[serde(default)]
    pub notify: Option<String>,
    /// RFC 3461 `ORCPT=` value, as given (`addr-type;xtext`).
    #[serde(default)]
    pub orcpt: Option<String>,
}

/// MAIL FROM parameters we keep.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MailParams {
    /// RFC 1870 `SIZE=` declared by the client.
    #[serde(default)]
    pub size: Option<u64>,
    /// `BODY=` (`7BIT`, `8BITMIME`, `BINARYMIME`).
    #[serde(default)]
    pub body: Option<String>,
    /// RFC 6531 `SMTPUTF8`.
    #[serde(default)]
    pub smtputf8: bool,
    /// RFC 3461 `RET=` (`FULL`, `HDRS`).
    #[serde(default)]
    pub ret: Option<String>,
    /// RFC 3461 `ENVID=`, as given (xtext).
    #[serde(default)]
    pub envid: Option<String>,
}

impl MailParams {
    /// The parameters as the client's MAIL command carried them (`SIZE=…`,
    /// `BODY=…`, `SMTPUTF8`, `RET=…`, `ENVID=…`): what a milter's `SMFIC_MAIL`
    /// lists after the address. The values were checked when the command was
    /// parsed (RFC 5321 §4.1.2 `esmtp-value`, RFC 3461 xtext).
    pub fn esmtp_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(n) = self.size {
            out.push(format!("SIZE={n}"));
        }
        if let Some(b) = &self.body {
            out.push(format!("BODY={b}"));
        }
        if self.smtputf8 {
            out.push("SMTPUTF8".to_owned());
        }
        if let Some(r) = &self.ret {
            out.push(format!("RET={r}"));
        }
        if let Some(e) = &self.envid {
            out.push(format!("ENVID={e}"));
        }
        out
    }
}

/// Where and how the message was received.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Receipt {
    /// Name of the listener that accepted the connection.
    pub listener: String,
    /// Peer address, `ip:port`.
    pub peer: String,
    /// The HELO/EHLO argument.
    pub helo: String,
    /// The authenticated user, if the session authenticated.
    #[serde(default)]
    pub auth_user: Option<String>,
    /// TLS parameters, if the session was encrypted.
    #[serde(default)]
    pub tls: Option<ReceiptTls>,
    /// The client's name, when its PTR record was forward-confirmed
    /// (FCrDNS; issue 9's `ptr` checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// The sender group that matched the client, if sender groups are configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_group: Option<String>,
    /// The mail-flow policy applied to the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// The TLS parameters of the receiving session.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReceiptTls {
    /// Protocol version, e.g. `TLSv1.3`.
    pub version: String,
    /// Cipher suite (IANA name).
    pub cipher: String,
    /// Key exchange group, e.g. `X25519MLKEM768`.
    #[serde(default)]
    pub group: Option<String>,
    /// Server name the client asked for.
    #[serde(default)]
    pub sni: Option<String>,
}

/// The current time as RFC 3339 UTC (for `Envelope::received_at`).
pub fn rfc3339_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_fields_default_when_missing() {
        let id = QueueId::generate();
        let json = format!(
            r#"{{"queue_id":"{id}","received_at":"2026-01-01T00:00:00Z","reverse_path":"",
               "recipients":[{{"address":"a@b"}}],
               "receipt":{{"listener":"mx","peer":"192.0.2.1:25","helo":"h"}},
               "some_future_field":1}}"#
        );
        let env: Envelope = serde_json::from_str(&json).expect("parse");
        assert_eq!(env.queue_id, id);
        assert_eq!(env.recipients[0].notify, None);
        assert_eq!(env.params, MailParams::default());
        assert_eq!(env.message_size, 0);
    }

    #[test]
    fn now_is_rfc3339_utc() {
        let s = rfc3339_now();
        assert!(s.ends_with('Z'), "{s}");
        assert_eq!(&s[4..5], "-", "{s}");
        assert_eq!(&s[10..11], "T", "{s}");
    }
}
