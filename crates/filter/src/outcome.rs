//! What evaluating a rule set decided: the disposition, the edits to make, the rules that
//! matched. Printable (`Display`, for the dry run and logs) and serializable (JSON).
//!
//! The caller applies it: header edits and the subject prefix to the spooled copy
//! ([`crate::apply_header_edits`] does it on a header section),
//! redirect/bcc to the envelope, notifications through its DSN/notice sender,
//! `require_tls` to the delivery TLS policy, the disposition to the end-of-data reply.

use std::fmt;

use serde::Serialize;

use crate::ast::RuleReply;

/// A rule that matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleHit {
    pub rule: String,
    /// The rule file (the origin given to the parser).
    pub origin: String,
    /// Line of the `rule` keyword in the rule file.
    pub line: u32,
}

/// What happens to the message (or to the recipient group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(tag = "disposition", rename_all = "kebab-case")]
pub enum Disposition {
    /// Deliver (with the edits). The default when no final action matched.
    #[default]
    Deliver,
    /// Discard silently; the caller logs it.
    Drop,
    /// Refuse at end of data with this reply (RFC 5321 §4.2): the preferred way to say no.
    Reject(RuleReply),
    /// Accept, then send a DSN with this reply to the sender (RFC 3464). Where the caller
    /// can still reply to the session it may turn this into a reject.
    Bounce(RuleReply),
    /// Hold in the named quarantine.
    Quarantine { name: String },
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Disposition::Deliver => f.write_str("deliver"),
            Disposition::Drop => f.write_str("drop"),
            Disposition::Reject(r) => write!(f, "reject {r}"),
            Disposition::Bounce(r) => write!(f, "bounce {r}"),
            Disposition::Quarantine { name } => write!(f, "quarantine {name:?}"),
        }
    }
}

/// A header edit, in rule order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "edit", rename_all = "kebab-case")]
pub enum HeaderEdit {
    /// Add a field (at the end of the header section: [`crate::apply_header_edits`]).
    Add { name: String, value: String },
    /// Remove every field with this name (case-insensitive).
    Remove { name: String },
    /// Replace every field with this name by one field with this value; add it if absent.
    Set { name: String, value: String },
}

impl fmt::Display for HeaderEdit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderEdit::Add { name, value } => write!(f, "add-header {name:?} {value:?}"),
            HeaderEdit::Remove { name } => write!(f, "remove-header {name:?}"),
            HeaderEdit::Set { name, value } => write!(f, "change-header {name:?} {value:?}"),
        }
    }
}

/// A notification to send (the caller sends it with the named template).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notify {
    pub address: String,
    pub template: String,
    /// The rule that asked for it.
    pub rule: String,
}

/// The result of evaluating a rule set for a message (or one recipient group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Outcome {
    /// Rules whose condition held, in order.
    pub hits: Vec<RuleHit>,
    pub disposition: Disposition,
    /// The rule whose final action (or `stop`) ended evaluation, if one did.
    pub decided_by: Option<String>,
    pub header_edits: Vec<HeaderEdit>,
    /// Put in front of the subject (prefixes of several rules: the latest first).
    pub subject_prefix: Option<String>,
    /// Replace the recipients by this address.
    pub redirect: Option<String>,
    /// Add these recipients.
    pub bcc: Vec<String>,
    pub notify: Vec<Notify>,
    /// Deliver only over TLS verified at `verify` or better; otherwise defer, then bounce
    /// (the per-message REQUIRETLS idea of RFC 8689).
    pub require_tls: bool,
    /// Dictionaries named by rules but missing at evaluation time (tests on them were
    /// false). Empty in a consistent configuration.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_dictionaries: Vec<String>,
}

impl Outcome {
    /// True when the message goes on unchanged: deliver, no edit, no envelope change.
    pub fn is_unchanged(&self) -> bool {
        self.disposition == Disposition::Deliver
            && self.header_edits.is_empty()
            && self.subject_prefix.is_none()
            && self.redirect.is_none()
            && self.bcc.is_empty()
            && self.notify.is_empty()
            && !self.require_tls
    }
}

impl fmt::Display for Outcome {
    /// The disposition on the first line (with the deciding rule), then one line per
    /// edit, indented by two spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.disposition)?;
        if let Some(rule) = &self.decided_by {
            write!(f, " (rule {rule:?})")?;
        }
        for e in &self.header_edits {
            write!(f, "\n  {e}")?;
        }
        if let Some(p) = &self.subject_prefix {
            write!(f, "\n  prefix-subject {p:?}")?;
        }
        if let Some(r) = &self.redirect {
            write!(f, "\n  redirect {r:?}")?;
        }
        for b in &self.bcc {
            write!(f, "\n  bcc {b:?}")?;
        }
        for n in &self.notify {
            write!(f, "\n  notify {:?} template {:?}", n.address, n.template)?;
        }
        if self.require_tls {
            f.write_str("\n  require-tls")?;
        }
        for d in &self.missing_dictionaries {
            write!(
                f,
                "\n  warning: dictionary {d:?} is not loaded (its tests were false)"
            )?;
        }
        Ok(())
    }
}

/// Recipients that got the same outcome from a per-recipient evaluation: the caller
/// makes one copy of the message per group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecipientGroup {
    pub recipients: Vec<String>,
    pub outcome: Outcome,
}
