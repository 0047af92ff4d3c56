//! The parsed form of a rule file: rules, their conditions (with regexes already
//! compiled and dictionaries resolved to indices) and their actions.
//!
//! Conditions are internal (the evaluator is their only reader); actions are public
//! because a dry-run report lists them.

use std::fmt;
use std::sync::Arc;

use postern_proto::{EnhancedCode, Reply};
use regex::Regex;
use serde::Serialize;

/// One rule: `rule "name" { if CONDITION then ACTIONS }`.
#[derive(Debug)]
pub(crate) struct Rule {
    pub name: String,
    /// The file the rule is in.
    pub origin: Arc<str>,
    pub line: u32,
    pub cond: Expr,
    pub actions: Vec<Action>,
}

/// A condition tree. `and`/`or` hold two or more operands.
#[derive(Debug)]
pub(crate) enum Expr {
    /// `true`: matches every message.
    True,
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Test(Box<Test>),
}

/// One predicate, e.g. `attachment filename matches /\.exe$/i`.
#[derive(Debug)]
pub(crate) struct Test {
    pub field: Field,
    pub op: Op,
    /// The predicate as written (whitespace collapsed), for the dry run.
    pub text: String,
    /// The field part (`attachment filename`) and the test part (`matches /x/`).
    pub field_text: String,
    pub op_text: String,
}

/// What a predicate looks at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Field {
    /// Envelope sender (empty for the null reverse path `<>`).
    Sender,
    SenderDomain,
    /// Envelope recipient(s): any of them, or the one being evaluated per recipient.
    Recipient,
    RecipientDomain,
    /// Every occurrence of the named header field, RFC 2047-decoded.
    Header(String),
    Subject,
    Body,
    AttachmentText,
    AttachmentFilename,
    AttachmentDeclaredType,
    AttachmentDetectedType,
    AttachmentSize,
    AttachmentCount,
    Size,
    SenderGroup,
    Policy,
    Listener,
    AuthUser,
    Helo,
    ClientIp,
    Spf,
    Dkim,
    Dmarc,
    TlsVersion,
    TlsCipher,
    SpamScore,
    SpamAction,
    VirusName,
    /// Bare predicates: `authenticated`, `tls`, `tls client-certificate verified`,
    /// `virus infected`.
    Flag(Flag),
}

/// A bare yes/no fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flag {
    Authenticated,
    Tls,
    TlsClientCertVerified,
    VirusInfected,
}

/// Comparison operators for numbers and TLS versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn from_token(s: &str) -> Option<Self> {
        Some(match s {
            "=" => Self::Eq,
            "!=" => Self::Ne,
            "<" => Self::Lt,
            "<=" => Self::Le,
            ">" => Self::Gt,
            ">=" => Self::Ge,
            _ => return None,
        })
    }

    pub fn holds<T: PartialOrd>(self, a: &T, b: &T) -> bool {
        match self {
            Self::Eq => a == b,
            Self::Ne => a != b,
            Self::Lt => a < b,
            Self::Le => a <= b,
            Self::Gt => a > b,
            Self::Ge => a >= b,
        }
    }
}

/// What a predicate tests.
#[derive(Debug)]
pub(crate) enum Op {
    /// `exists`: the field has at least one value.
    Exists,
    /// `is V` / `is (V1, V2)`: equal to one of them, ASCII case-insensitive (stored lowercase).
    Is(Vec<String>),
    /// `contains "w"` / `contains ("w1", "w2")`: a word or phrase, case-insensitive, on
    /// word boundaries (one regex per phrase; boundaries checked by the evaluator).
    Contains(Vec<Regex>),
    /// `matches "glob"` (compiled to an anchored regex) or `matches /re/flags`.
    Matches(Regex),
    /// `in dictionary "name"`: index into [`crate::RuleSet`]'s dictionary names.
    InDictionary(usize),
    /// `dictionary "name" score >= N`.
    DictionaryScore(usize, CmpOp, f64),
    /// `>= N` on a numeric field.
    Compare(CmpOp, f64),
    /// `tls version >= "1.2"`: (major, minor).
    Version(CmpOp, (u8, u8)),
    /// A bare flag: the field says it all.
    Flag,
}

/// An SMTP reply a rule gives: code, enhanced code and text, validated at parse time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleReply {
    /// 4xx or 5xx (RFC 5321 §4.2.1), never 421.
    pub code: u16,
    /// RFC 3463 code whose class matches the code's first digit.
    #[serde(serialize_with = "ser_enhanced")]
    pub enhanced: EnhancedCode,
    /// Printable ASCII, no CR/LF.
    pub text: String,
}

impl RuleReply {
    /// The SMTP reply to send (end-of-data reject) or to put in the DSN (bounce).
    pub fn to_reply(&self) -> Reply {
        Reply::new(self.code, Some(self.enhanced), self.text.clone())
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's serialize_with passes a reference
fn ser_enhanced<S: serde::Serializer>(e: &EnhancedCode, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(e)
}

impl fmt::Display for RuleReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} \"{}\" {:?}", self.code, self.enhanced, self.text)
    }
}

/// One action of a rule, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// `accept`: deliver, and stop evaluating rules.
    Accept,
    /// `drop`: discard silently (the caller logs it); final.
    Drop,
    /// `reject CODE "X.Y.Z" "text"`: refuse at end of data; final.
    Reject(RuleReply),
    /// `bounce CODE "X.Y.Z" "text"`: accept, then send a DSN; final.
    Bounce(RuleReply),
    /// `quarantine "name"`: hold in the named quarantine; final.
    Quarantine { name: String },
    /// `add-header "Name" "value"`.
    AddHeader { name: String, value: String },
    /// `remove-header "Name"`: every occurrence.
    RemoveHeader { name: String },
    /// `change-header "Name" "value"`: replace every occurrence, add it if absent.
    ChangeHeader { name: String, value: String },
    /// `prefix-subject "text"`.
    PrefixSubject { text: String },
    /// `redirect "addr"`: replace the recipients.
    Redirect { address: String },
    /// `bcc "addr"`: add a recipient.
    Bcc { address: String },
    /// `notify "addr" template "name"`.
    Notify { address: String, template: String },
    /// `require-tls`: deliver only under TLS verified at `verify` or better (RFC 8689 idea).
    RequireTls,
    /// `stop`: skip the remaining rules.
    Stop,
}

impl Action {
    /// True for the actions that decide the disposition and end evaluation.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Action::Accept
                | Action::Drop
                | Action::Reject(_)
                | Action::Bounce(_)
                | Action::Quarantine { .. }
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Accept => f.write_str("accept"),
            Action::Drop => f.write_str("drop"),
            Action::Reject(r) => write!(f, "reject {r}"),
            Action::Bounce(r) => write!(f, "bounce {r}"),
            Action::Quarantine { name } => write!(f, "quarantine {name:?}"),
            Action::AddHeader { name, value } => write!(f, "add-header {name:?} {value:?}"),
            Action::RemoveHeader { name } => write!(f, "remove-header {name:?}"),
            Action::ChangeHeader { name, value } => write!(f, "change-header {name:?} {value:?}"),
            Action::PrefixSubject { text } => write!(f, "prefix-subject {text:?}"),
            Action::Redirect { address } => write!(f, "redirect {address:?}"),
            Action::Bcc { address } => write!(f, "bcc {address:?}"),
            Action::Notify { address, template } => {
                write!(f, "notify {address:?} template {template:?}")
            }
            Action::RequireTls => f.write_str("require-tls"),
            Action::Stop => f.write_str("stop"),
        }
    }
}

/// What kind of configured object a rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NameKind {
    /// `in dictionary "x"`, `dictionary "x" score`.
    Dictionary,
    /// `quarantine "x"`.
    Quarantine,
    /// `notify … template "x"`.
    Template,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Dictionary => "dictionary",
            NameKind::Quarantine => "quarantine",
            NameKind::Template => "template",
        })
    }
}

/// One place a rule names a dictionary, quarantine or template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRef {
    pub kind: NameKind,
    pub name: String,
    /// The rule file, and the position of the name's string in it.
    pub origin: String,
    pub line: u32,
    pub column: u32,
}
