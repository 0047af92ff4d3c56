//! rspamd's JSON reply to `POST /checkv2`, read into a [`SpamVerdict`].
//!
//! The fields we read (rspamd 3.x; shapes checked against rspamd 3.4 and
//! its proxy's reader of the same block, `rspamd_milter_process_milter_block`):
//! - `action`: `no action`, `greylist`, `add header`, `rewrite subject`,
//!   `soft reject`, `reject` (and `discard`, `quarantine`, or a custom name);
//! - `score`, `required_score` (numbers);
//! - `symbols`: name → `{name, score, description?, options?[]}`;
//! - `messages.smtp_message`: the text rspamd suggests for the SMTP reply;
//! - `subject`: the rewritten Subject for `rewrite subject`;
//! - `milter.add_headers`: name → a string, or `{value, order}` (`order`
//!   alias `index`; ≥ 0 inserts at that position, negative counts from the
//!   end, absent appends), or an array of those;
//! - `milter.remove_headers`: name → integer (0 removes every instance, n
//!   the n-th, a negative one counts from the end);
//! - `dkim-signature`: a string or an array of strings (when rspamd signs).
//!
//! # Security
//! The reply is semi-trusted (our engine, but it quotes the message). Header
//! fields to add are checked here ([`sanitize::is_field_name`],
//! [`sanitize::folded_field_value`]); one that fails is dropped with a
//! warning, never written. `smtp_message` is reduced to one printable line.
//! The reply was bounded in size before parsing.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use crate::sanitize;

/// The action rspamd recommends.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SpamAction {
    /// `no action`: deliver.
    NoAction,
    /// `greylist`: defer once (rspamd's own greylisting needs Redis).
    Greylist,
    /// `add header`: deliver marked as spam.
    AddHeader,
    /// `rewrite subject`: deliver with [`SpamVerdict::subject`].
    RewriteSubject,
    /// `soft reject`: defer (4xx).
    SoftReject,
    /// `reject`: refuse (5xx).
    Reject,
    /// `discard`: accept and drop.
    Discard,
    /// `quarantine`: accept and hold.
    Quarantine,
    /// A custom action from rspamd's configuration, as named.
    Other(String),
}

impl SpamAction {
    /// rspamd's name for an action (`no action`, `add header`, …).
    pub fn parse(name: &str) -> SpamAction {
        match name {
            "no action" => SpamAction::NoAction,
            "greylist" => SpamAction::Greylist,
            "add header" | "add_header" => SpamAction::AddHeader,
            "rewrite subject" | "rewrite_subject" => SpamAction::RewriteSubject,
            "soft reject" | "soft_reject" => SpamAction::SoftReject,
            "reject" => SpamAction::Reject,
            "discard" => SpamAction::Discard,
            "quarantine" => SpamAction::Quarantine,
            other => SpamAction::Other(sanitize::reply_text(other, 64)),
        }
    }

    /// rspamd's name of this action.
    pub fn as_str(&self) -> &str {
        match self {
            SpamAction::NoAction => "no action",
            SpamAction::Greylist => "greylist",
            SpamAction::AddHeader => "add header",
            SpamAction::RewriteSubject => "rewrite subject",
            SpamAction::SoftReject => "soft reject",
            SpamAction::Reject => "reject",
            SpamAction::Discard => "discard",
            SpamAction::Quarantine => "quarantine",
            SpamAction::Other(name) => name,
        }
    }
}

impl fmt::Display for SpamAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rspamd symbol (rule) that matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Symbol {
    /// Symbol name (`GTUBE`, `R_SPF_FAIL`, …).
    pub name: String,
    /// Its contribution to the score.
    pub score: f64,
    /// rspamd's description, when it has one.
    pub description: Option<String>,
    /// Options (the matched domain, IP, …), as rspamd gives them.
    pub options: Vec<String>,
}

/// A header field rspamd asks the MTA to add (`milter.add_headers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MilterHeader {
    /// Field name (checked: printable ASCII, no colon).
    pub name: String,
    /// Field value, possibly folded with CRLF + white space (checked).
    pub value: String,
    /// Where to insert it: `Some(n)` with n ≥ 0 is the position from the
    /// top (0 = first), negative counts from the end, `None` appends.
    pub order: Option<i64>,
}

/// A header field rspamd asks the MTA to remove (`milter.remove_headers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveHeader {
    /// Field name (checked).
    pub name: String,
    /// 0: every instance; n > 0: the n-th (from 1); n < 0: the n-th from
    /// the end.
    pub index: i64,
}

/// What rspamd said about one message.
#[derive(Debug, Clone, PartialEq)]
pub struct SpamVerdict {
    /// The recommended action.
    pub action: SpamAction,
    /// The message's score.
    pub score: f64,
    /// The score of the `reject` action (rspamd's "required score").
    pub required_score: f64,
    /// Matched symbols, highest score first, then by name.
    pub symbols: Vec<Symbol>,
    /// `messages.smtp_message`, as one printable ASCII line.
    pub smtp_message: Option<String>,
    /// `milter.add_headers`, in rspamd's order; invalid ones dropped.
    pub add_headers: Vec<MilterHeader>,
    /// `milter.remove_headers`.
    pub remove_headers: Vec<RemoveHeader>,
    /// The rewritten Subject (with `rewrite subject`), checked like a
    /// header field value.
    pub subject: Option<String>,
    /// DKIM-Signature field values rspamd made (when it signs).
    pub dkim_signatures: Vec<String>,
}

impl SpamVerdict {
    /// The symbol called `name`, if it matched.
    pub fn symbol(&self, name: &str) -> Option<&Symbol> {
        self.symbols.iter().find(|s| s.name == name)
    }

    /// Whether the symbol called `name` matched.
    pub fn has_symbol(&self, name: &str) -> bool {
        self.symbol(name).is_some()
    }

    /// Reads rspamd's JSON reply (the body of a `200` to `/checkv2`).
    pub fn from_json(json: &[u8]) -> Result<SpamVerdict, ReplyError> {
        let raw: RawReply = serde_json::from_slice(json).map_err(ReplyError::Json)?;
        if let Some(error) = raw.error {
            return Err(ReplyError::Error(sanitize::reply_text(&error, 200)));
        }
        let action = raw.action.ok_or(ReplyError::Missing("action"))?;
        let score = raw.score.ok_or(ReplyError::Missing("score"))?;
        let mut symbols: Vec<Symbol> = raw
            .symbols
            .into_iter()
            .map(|(key, s)| Symbol {
                name: s.name.unwrap_or(key),
                score: s.score.unwrap_or(0.0),
                description: s.description,
                options: s.options.iter().filter_map(text).collect(),
            })
            .collect();
        symbols.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.name.cmp(&b.name))
        });
        let smtp_message = raw
            .messages
            .get("smtp_message")
            .and_then(Value::as_str)
            .map(|m| sanitize::reply_text(m, sanitize::MAX_REPLY_TEXT))
            .filter(|m| !m.is_empty());
        let (add_headers, remove_headers) = raw.milter.as_ref().map(milter).unwrap_or_default();
        let subject = raw.subject.as_deref().and_then(|s| {
            let checked = sanitize::folded_field_value(s);
            if checked.is_none() {
                tracing::warn!("rspamd's rewritten subject has a bare line break: ignored");
            }
            checked
        });
        let dkim_signatures = match raw.dkim_signature {
            Some(Value::String(s)) => vec![s],
            Some(Value::Array(a)) => a.iter().filter_map(text).collect(),
            _ => Vec::new(),
        }
        .into_iter()
        .filter_map(|s| sanitize::folded_field_value(&s))
        .collect();
        Ok(SpamVerdict {
            action: SpamAction::parse(&action),
            score,
            required_score: raw.required_score.unwrap_or(0.0),
            symbols,
            smtp_message,
            add_headers,
            remove_headers,
            subject,
            dkim_signatures,
        })
    }
}

/// A `200` body that is not a verdict.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    /// Not JSON, or a field of the wrong type.
    #[error("not rspamd's JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// A required field is missing.
    #[error("no {0:?} in the reply")]
    Missing(&'static str),
    /// rspamd answered `{"error": …}`.
    #[error("rspamd error: {0}")]
    Error(String),
}

/// Why a message was not sent to rspamd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Larger than the configured bound.
    TooLarge {
        /// The message's size in bytes.
        size: u64,
        /// The bound (`max_size`).
        limit: u64,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::TooLarge { size, limit } => write!(
                f,
                "not scanned: {size} bytes is above the scanning limit of {limit} bytes"
            ),
        }
    }
}

/// The result of [`RspamdClient::check`](crate::RspamdClient::check).
#[derive(Debug, Clone, PartialEq)]
pub enum SpamOutcome {
    /// rspamd scanned the message.
    Scanned(SpamVerdict),
    /// The message was not sent to rspamd.
    Skipped(SkipReason),
}

impl SpamOutcome {
    /// The verdict, when the message was scanned.
    pub fn verdict(&self) -> Option<&SpamVerdict> {
        match self {
            SpamOutcome::Scanned(v) => Some(v),
            SpamOutcome::Skipped(_) => None,
        }
    }
}

#[derive(Deserialize)]
struct RawReply {
    action: Option<String>,
    score: Option<f64>,
    required_score: Option<f64>,
    #[serde(default)]
    symbols: BTreeMap<String, RawSymbol>,
    #[serde(default)]
    messages: serde_json::Map<String, Value>,
    milter: Option<RawMilter>,
    subject: Option<String>,
    #[serde(rename = "dkim-signature")]
    dkim_signature: Option<Value>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct RawSymbol {
    name: Option<String>,
    score: Option<f64>,
    description: Option<String>,
    #[serde(default)]
    options: Vec<Value>,
}

#[derive(Deserialize)]
struct RawMilter {
    #[serde(default)]
    add_headers: serde_json::Map<String, Value>,
    #[serde(default)]
    remove_headers: serde_json::Map<String, Value>,
}

/// A JSON string or number as text.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn milter(raw: &RawMilter) -> (Vec<MilterHeader>, Vec<RemoveHeader>) {
    let mut add = Vec::new();
    for (name, value) in &raw.add_headers {
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            one => vec![one],
        };
        for item in items {
            let (value, order) = match item {
                Value::String(s) => (s.as_str(), None),
                Value::Object(o) => {
                    let Some(value) = o.get("value").and_then(Value::as_str) else {
                        continue;
                    };
                    let order = o.get("order").or_else(|| o.get("index"));
                    (value, order.and_then(Value::as_i64))
                }
                _ => continue,
            };
            match sanitize::folded_field_value(value) {
                Some(value) if sanitize::is_field_name(name) => add.push(MilterHeader {
                    name: name.clone(),
                    value,
                    order,
                }),
                _ => tracing::warn!(
                    header = %sanitize::reply_text(name, 80),
                    "rspamd asked to add an invalid header field: ignored"
                ),
            }
        }
    }
    let remove = raw
        .remove_headers
        .iter()
        .filter(|(name, _)| sanitize::is_field_name(name))
        .filter_map(|(name, index)| {
            Some(RemoveHeader {
                name: name.clone(),
                index: index.as_i64()?,
            })
        })
        .collect();
    (add, remove)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golden(name: &str) -> Vec<u8> {
        let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn gtube_reply_of_rspamd_3_4() {
        let v = SpamVerdict::from_json(&golden("rspamd-gtube.json")).unwrap();
        assert_eq!(v.action, SpamAction::Reject);
        assert!((v.score - 15.0).abs() < f64::EPSILON);
        assert!((v.required_score - 15.0).abs() < f64::EPSILON);
        assert!(v.has_symbol("GTUBE"));
        assert_eq!(v.smtp_message.as_deref(), Some("Gtube pattern"));
        assert!(v.add_headers.is_empty() && v.subject.is_none());
    }

    #[test]
    fn rewrite_subject_reply_with_milter_headers() {
        let v = SpamVerdict::from_json(&golden("rspamd-rewrite.json")).unwrap();
        assert_eq!(v.action, SpamAction::RewriteSubject);
        assert_eq!(
            v.subject.as_deref(),
            Some("*** SPAM *** please postern-rewrite me")
        );
        let status = v
            .add_headers
            .iter()
            .find(|h| h.name == "X-Spam-Status")
            .unwrap();
        assert_eq!(status.value, "Yes, score=0.00");
        assert_eq!(status.order, Some(-1));
        let ar = v
            .add_headers
            .iter()
            .find(|h| h.name == "Authentication-Results")
            .unwrap();
        assert_eq!(ar.order, Some(1));
        assert!(ar.value.contains("\r\n\tauth=pass"), "{:?}", ar.value);
        assert!(v.remove_headers.contains(&RemoveHeader {
            name: "X-Spam".into(),
            index: 0
        }));
    }

    #[test]
    fn clean_reply_symbols_are_sorted_by_score() {
        let v = SpamVerdict::from_json(&golden("rspamd-clean.json")).unwrap();
        assert_eq!(v.action, SpamAction::NoAction);
        assert!(v.symbols.windows(2).all(|w| w[0].score >= w[1].score));
        let mime = v.symbol("MIME_GOOD").unwrap();
        assert_eq!(mime.options, ["text/plain"]);
        assert!(mime.description.is_some());
    }

    #[test]
    fn every_add_headers_shape_is_read_and_injections_dropped() {
        let json = br#"{"action":"add header","score":7.5,"required_score":15,
            "milter":{"add_headers":{
                "X-Plain":"yes",
                "X-Object":{"value":"v","order":0},
                "X-Index":{"value":"i","index":2},
                "X-Many":[{"value":"one","order":-1},"two"],
                "X-Evil":"a\r\nBcc: victim@example.org",
                "Bad Name":"x"
            },
            "remove_headers":{"X-Spam":0,"X-Old":-1,"X-Str":"1"}},
            "messages":{"smtp_message":"spam\r\n250 OK"},
            "dkim-signature":["v=1; a=rsa-sha256;\r\n\tb=abc"]}"#;
        let v = SpamVerdict::from_json(json).unwrap();
        let got: Vec<(&str, &str, Option<i64>)> = v
            .add_headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str(), h.order))
            .collect();
        assert_eq!(
            got,
            [
                ("X-Index", "i", Some(2)),
                ("X-Many", "one", Some(-1)),
                ("X-Many", "two", None),
                ("X-Object", "v", Some(0)),
                ("X-Plain", "yes", None),
            ]
        );
        assert_eq!(v.remove_headers.len(), 2);
        assert_eq!(v.smtp_message.as_deref(), Some("spam 250 OK"));
        assert_eq!(v.dkim_signatures, ["v=1; a=rsa-sha256;\r\n\tb=abc"]);
    }

    #[test]
    fn actions_round_trip_and_custom_ones_are_kept() {
        for name in [
            "no action",
            "greylist",
            "add header",
            "rewrite subject",
            "soft reject",
            "reject",
            "discard",
            "quarantine",
        ] {
            assert_eq!(SpamAction::parse(name).as_str(), name);
        }
        assert_eq!(
            SpamAction::parse("my action"),
            SpamAction::Other("my action".into())
        );
    }

    #[test]
    fn replies_that_are_not_verdicts() {
        assert!(matches!(
            SpamVerdict::from_json(b"<html>"),
            Err(ReplyError::Json(_))
        ));
        assert!(matches!(
            SpamVerdict::from_json(br#"{"score":1}"#),
            Err(ReplyError::Missing("action"))
        ));
        assert!(matches!(
            SpamVerdict::from_json(br#"{"error":"bad request"}"#),
            Err(ReplyError::Error(e)) if e == "bad request"
        ));
        assert!(SpamVerdict::from_json(br#"{"action":"reject","score":"x"}"#).is_err());
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever rspamd (or an impostor) sends: no panic, and nothing
        /// we hand the caller can start a new header field.
        #[test]
        fn any_reply_parses_or_fails_cleanly(
            name in "[ -~]{0,20}",
            value in "(?s).{0,60}",
            message in "(?s).{0,60}",
            order in proptest::option::of(any::<i64>()),
        ) {
            let json = serde_json::json!({
                "action": "add header", "score": 1.0,
                "messages": {"smtp_message": message},
                "subject": value,
                "milter": {"add_headers": {name.clone(): {"value": value, "order": order}},
                           "remove_headers": {name: 0}},
            });
            let v = SpamVerdict::from_json(json.to_string().as_bytes()).unwrap();
            let no_bare_break = |s: &str| {
                let b = s.as_bytes();
                b.iter().enumerate().all(|(i, &c)| match c {
                    b'\r' => b.get(i + 1) == Some(&b'\n'),
                    b'\n' => i > 0 && b[i - 1] == b'\r' && matches!(b.get(i + 1), Some(b' ' | b'\t')),
                    _ => true,
                })
            };
            for h in &v.add_headers {
                prop_assert!(sanitize::is_field_name(&h.name));
                prop_assert!(no_bare_break(&h.value), "{:?}", h.value);
            }
            if let Some(s) = &v.subject {
                prop_assert!(no_bare_break(s), "{:?}", s);
            }
            if let Some(m) = &v.smtp_message {
                prop_assert!(m.bytes().all(|c| (0x20..0x7f).contains(&c)), "{:?}", m);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = SpamVerdict::from_json(&bytes);
        }
    }
}
